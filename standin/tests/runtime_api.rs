//! The benchmark's Lambda Runtime API emulator (`lambda-runtime-api`) speaks the
//! Runtime API to a runtime client and measures what `bench/runtime_emulator.py` says
//! it measures. Plain HTTP/1.1 over std sockets on both sides, no client library.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Emulator {
    child: Child,
    addr: String,
}

impl Emulator {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-runtime-api"))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("emulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let addr = line.trim().rsplit(' ').next().expect("address").to_owned();
        assert!(line.contains("listening on 127.0.0.1:"), "{line}");
        Self { child, addr }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

fn call(addr: &str, method: &str, path: &str, body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request written");
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
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// A runtime that answers `n` events: `respond(event) -> (kind, body)` after `work`.
fn runtime(
    addr: String,
    n: usize,
    work: Duration,
    respond: fn(&str) -> (&'static str, String),
) -> thread::JoinHandle<Vec<Reply>> {
    thread::spawn(move || {
        (0..n)
            .map(|_| {
                let event = call(&addr, "GET", NEXT, "");
                let id = event.headers["lambda-runtime-aws-request-id"].clone();
                thread::sleep(work);
                let (kind, body) = respond(&event.body);
                let posted = call(
                    &addr,
                    "POST",
                    &format!("/2018-06-01/runtime/invocation/{id}/{kind}"),
                    &body,
                );
                assert_eq!(posted.status, 202, "{}", posted.body);
                event
            })
            .collect()
    })
}

#[test]
fn hands_out_events_and_measures_each_from_handout_to_result() {
    let emu = Emulator::start();
    let rt = runtime(emu.addr.clone(), 2, Duration::from_millis(30), |event| {
        if event.contains("fail") {
            ("error", r#"{"errorType":"Boom"}"#.to_owned())
        } else {
            ("response", format!(r#"{{"echo":{event}}}"#))
        }
    });

    let ready = call(&emu.addr, "GET", "/_emulator/ready", "");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(
        ready.body.contains(r#""FirstNextMonotonicNs":"#),
        "{}",
        ready.body
    );

    let ok = call(&emu.addr, "POST", "/_emulator/invoke", r#"{"n":1}"#);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body, r#"{"echo":{"n":1}}"#);
    assert_eq!(ok.headers["x-emulator-kind"], "response");
    let latency: u64 = ok.headers["x-emulator-latency-ns"].parse().expect("ns");
    // The runtime worked 30 ms between receiving the event and posting the result.
    assert!(latency >= 30_000_000, "{latency} ns");
    assert!(latency < 5_000_000_000, "{latency} ns");

    let failed = call(&emu.addr, "POST", "/_emulator/invoke", r#"{"fail":true}"#);
    assert_eq!(failed.status, 200);
    assert_eq!(failed.headers["x-emulator-kind"], "error");
    assert_eq!(failed.body, r#"{"errorType":"Boom"}"#);

    let events = rt.join().expect("runtime thread");
    let first = &events[0];
    assert_eq!(first.status, 200);
    assert_eq!(first.body, r#"{"n":1}"#);
    assert_ne!(
        first.headers["lambda-runtime-aws-request-id"],
        events[1].headers["lambda-runtime-aws-request-id"]
    );
    let deadline: u128 = first.headers["lambda-runtime-deadline-ms"]
        .parse()
        .expect("epoch ms");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    assert!(
        deadline > now && deadline <= now + 31_000,
        "{deadline} vs {now}"
    );
    assert!(first.headers["lambda-runtime-invoked-function-arn"].starts_with("arn:aws:lambda:"));
    assert!(first.headers.contains_key("lambda-runtime-trace-id"));
}

#[test]
fn a_failed_cold_start_is_reported_to_the_driver() {
    let emu = Emulator::start();
    let init = call(
        &emu.addr,
        "POST",
        "/2018-06-01/runtime/init/error",
        r#"{"errorType":"Config"}"#,
    );
    assert_eq!(init.status, 202);
    let ready = call(&emu.addr, "GET", "/_emulator/ready", "");
    assert_eq!(ready.status, 500);
    assert_eq!(ready.body, r#"{"errorType":"Config"}"#);
    let invoke = call(&emu.addr, "POST", "/_emulator/invoke", "{}");
    assert_eq!(invoke.status, 500);
}

#[test]
fn a_result_for_an_unknown_request_is_refused() {
    let emu = Emulator::start();
    let r = call(
        &emu.addr,
        "POST",
        "/2018-06-01/runtime/invocation/nope/response",
        "{}",
    );
    assert_eq!(r.status, 400);
    let r = call(&emu.addr, "GET", "/2018-06-01/runtime/other", "");
    assert_eq!(r.status, 404);
}

#[test]
fn an_invocation_can_be_handed_a_shorter_deadline() {
    use transfer_standin::runtime_api::{DEFAULT_DEADLINE, RuntimeApi};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let api = rt
        .block_on(RuntimeApi::start(
            "127.0.0.1:0".parse().expect("address"),
            DEFAULT_DEADLINE,
        ))
        .expect("emulator starts");
    let runtime = runtime(api.addr().to_string(), 2, Duration::ZERO, |_| {
        ("response", "{}".to_owned())
    });
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis()
    };
    let before = now_ms();
    let short = rt.block_on(api.invoke_with_deadline("{}", Duration::from_millis(700)));
    assert_eq!(short.expect("answered").kind, "response");
    let usual = rt.block_on(api.invoke("{}"));
    assert_eq!(usual.expect("answered").kind, "response");
    let after = now_ms();
    let events = runtime.join().expect("runtime thread");
    let deadline = |e: &Reply| -> u128 {
        e.headers["lambda-runtime-deadline-ms"]
            .parse()
            .expect("epoch ms")
    };
    let d = deadline(&events[0]);
    assert!(
        d >= before + 700 && d <= after + 700,
        "{d}: {before}..{after}"
    );
    let d = deadline(&events[1]);
    let usual = DEFAULT_DEADLINE.as_millis();
    assert!(
        d >= before + usual && d <= after + usual,
        "{d}: {before}..{after}"
    );
}
