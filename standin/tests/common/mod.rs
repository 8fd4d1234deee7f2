//! What the stand-in's wire tests share: a stand-in on its own runtime, called from
//! the test's thread with blocking sockets, and what it answered.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use transfer_standin::StandIn;

/// A stand-in on its own runtime, called from the test's thread with blocking sockets.
pub struct Api {
    pub standin: StandIn,
    // Dropped after the stand-in (fields drop in order).
    _rt: tokio::runtime::Runtime,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

pub fn start(seed: &Value) -> Api {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let standin = rt.block_on(StandIn::start(seed)).expect("stand-in starts");
    Api { standin, _rt: rt }
}

impl Api {
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let addr = self.standin.addr();
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("head written");
        s.write_all(body.as_bytes()).expect("body written");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("reply read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }
}
