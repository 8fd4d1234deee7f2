//! No request forgery through the custom resource: a `ResponseURL` is contacted only
//! when it is CloudFormation's or an origin of `CFN_RESPONSE_ORIGINS` (here: the
//! stand-in's response sink, as `common::spawn_app` configures it).
//!
//! A listener on another loopback port stands for whatever an invoker would like the
//! function to reach (an internal service, the metadata endpoint). Every refused
//! variant of a `ResponseURL` points at it; the listener must receive nothing, the
//! stand-in no Transfer call and no response, and the invocation must fail saying why.
//! The allowed origin gets exactly one PUT. A control run with the listener's origin
//! allowed shows the same URL does reach it, so its silence means something.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::blocking::{Harness, run};
use crate::common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const CREATE: &str = "example-cloudformation-custom-resource-create-request.json";
const UPDATE: &str = "example-cloudformation-custom-resource-update-request.json";
const DELETE: &str = "example-cloudformation-custom-resource-delete-request.json";
const TAIL: &str = "/cfn-response/x?X-Amz-Signature=secret";

/// Records every connection made to it (on 127.0.0.1, and on 127.0.0.2 and [::1] where
/// they can be bound, all on one port) and answers each HTTP request `200 OK`.
struct Listener {
    port: u16,
    contacts: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Listener {
    async fn start() -> Self {
        let first = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for also in [format!("127.0.0.2:{port}"), format!("[::1]:{port}")] {
            let addr: SocketAddr = also.parse().unwrap();
            if let Ok(l) = TcpListener::bind(addr).await {
                listeners.push(l);
            }
        }
        let contacts = Arc::new(Mutex::new(Vec::new()));
        let tasks = listeners
            .into_iter()
            .map(|listener| {
                let contacts = contacts.clone();
                tokio::spawn(async move {
                    while let Ok((mut stream, peer)) = listener.accept().await {
                        let local = stream.local_addr().map(|a| a.to_string());
                        let at = contacts.lock().unwrap().len();
                        contacts
                            .lock()
                            .unwrap()
                            .push(format!("{peer} -> {}", local.unwrap_or_default()));
                        let contacts = contacts.clone();
                        tokio::spawn(async move {
                            let head = read_request(&mut stream).await;
                            if let Some(entry) = contacts.lock().unwrap().get_mut(at) {
                                entry.push_str(&format!(": {head}"));
                            }
                            let _ = stream
                                .write_all(
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                )
                                .await;
                        });
                    }
                })
            })
            .collect();
        Self {
            port,
            contacts,
            tasks,
        }
    }

    fn contacts(&self) -> Vec<String> {
        self.contacts.lock().unwrap().clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reads one request (headers and a `Content-Length` body); returns its first line.
async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            let text = String::from_utf8_lossy(&buf);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("(nothing read)")
        .to_owned()
}

fn cfn_event(envelope_file: &str, url: &str) -> Value {
    let mut event = envelope(envelope_file);
    event["ResourceProperties"] = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:transfer-chroot",
        "ServerId": SERVER, "UserName": "alice", "HomeDirectory": "/acme-sftp/home/alice"
    });
    if envelope_file != CREATE {
        event["PhysicalResourceId"] = format!("{SERVER}/users/alice").into();
    }
    event["ResponseURL"] = url.into();
    event
}

/// Every refused variant, pointing at the listener's port `l` (or the stand-in's `s`
/// with what the allowlist does not admit), with what the refusal must say.
fn refused_variants(l: u16, s: u16) -> Vec<(String, &'static str)> {
    let ip = "the host is an IP address";
    let host = "the host is not amazonaws.com";
    let scheme = "the scheme is not https";
    let user = "carries user info";
    let mut v: Vec<(String, &str)> = Vec::new();
    let mut add = |url: String, why| v.push((url, why));
    // Plain http, and https to loopback written every way a URL parser reads it.
    add(format!("http://127.0.0.1:{l}{TAIL}"), scheme);
    add(format!("HTTP://LOCALHOST:{l}{TAIL}"), scheme);
    for h in [
        "127.0.0.1",
        "2130706433",      // decimal
        "0x7f000001",      // hex
        "0x7F.0.0.1",      // hex octet
        "0177.0.0.1",      // octal
        "127.1",           // short form
        "127.0.0.1.",      // trailing dot
        "%31%32%37.0.0.1", // percent-encoded
        "0",
        "0.0.0.0",
        "127.0.0.2",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[::ffff:127.0.0.1]",
    ] {
        add(format!("https://{h}:{l}{TAIL}"), ip);
    }
    // Names that are not CloudFormation's, some of them resolving to loopback.
    for h in [
        "localhost",
        "LocalHost.",
        "s3.amazonaws.com.localhost",
        "amazonaws.com.localhost",
        "xamazonaws.com",
        "s3.amazonaws.com.evil.example",
        "amazonaws.com.evil",
        "s3.amazonaws.com.",
    ] {
        add(format!("https://{h}:{l}{TAIL}"), host);
    }
    // CloudFormation's domain on another port: refused before any name is looked up.
    add(
        format!("https://s3.amazonaws.com:{l}{TAIL}"),
        "the port is not https's default",
    );
    // User info: a CloudFormation host or the allowed origin in front of the listener.
    add(
        format!("https://s3.amazonaws.com@127.0.0.1:{l}{TAIL}"),
        user,
    );
    add(
        format!("https://s3.amazonaws.com:443@127.0.0.1:{l}{TAIL}"),
        user,
    );
    add(format!("https://user:pw@127.0.0.1:{l}{TAIL}"), user);
    add(format!("http://127.0.0.1:{s}@127.0.0.1:{l}{TAIL}"), user);
    add(format!("http://u:p@127.0.0.1:{s}{TAIL}"), user);
    // Other schemes.
    for sch in ["ftp", "ws", "wss", "gopher"] {
        add(format!("{sch}://127.0.0.1:{l}{TAIL}"), scheme);
    }
    add("file:///etc/passwd".to_owned(), scheme);
    // The allowed origin with another scheme, or its host on another port.
    add(format!("https://127.0.0.1:{s}{TAIL}"), ip);
    add(format!("http://localhost:{s}{TAIL}"), scheme);
    add(format!("http://[::1]:{s}{TAIL}"), scheme);
    v
}

#[tokio::test]
async fn cloudformation_refused_response_urls_reach_nothing_and_the_allowed_origin_gets_one_put() {
    let listener = Listener::start().await;
    let t = spawn_app().await;
    let (l, s) = (listener.port, t.standin.addr().port());

    let variants = refused_variants(l, s);
    for (i, (url, why)) in variants.iter().enumerate() {
        let file = [CREATE, UPDATE, DELETE][i % 3];
        let err = t
            .invoke_with_budget(cfn_event(file, url), Duration::from_secs(5))
            .await
            .expect_err(url);
        assert!(
            err.starts_with("TransferChroot.Unanswerable: "),
            "{url}: {err}"
        );
        assert!(err.contains(why), "{url}: {err}");
        assert!(
            err.contains("Nothing was sent and nothing was done"),
            "{url}: {err}"
        );
        assert!(
            !err.contains("secret") && !err.contains("cfn-response"),
            "{url}: {err}"
        );
        assert!(
            t.standin.requests().is_empty(),
            "{url}: Transfer was called"
        );
        assert!(
            t.standin.responses().is_empty(),
            "{url}: a response was sent"
        );
    }
    // A connection attempt would be accepted by now; give the accept loop its turn.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        listener.contacts(),
        Vec::<String>::new(),
        "the listener was reached"
    );

    // The allowed origin: exactly one PUT, and the chroot applied.
    let allowed = format!("{}{TAIL}", t.standin.endpoint());
    let body = t
        .invoke_with_budget(cfn_event(CREATE, &allowed), Duration::from_secs(30))
        .await
        .expect("answered");
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let puts = t.standin.responses();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(puts[0].accepted);
    assert_eq!(puts[0].path, "/cfn-response/x");
    assert_eq!(puts[0].query.as_deref(), Some("X-Amz-Signature=secret"));
    assert_eq!(t.standin.calls("UpdateUser"), 1);

    // URLs that name the listener but whose host, as a URL parser reads them, is the
    // allowed origin: each is answered there, once, and the listener still hears nothing.
    for url in [
        format!("http://127.0.0.1:{s}\\@127.0.0.1:{l}{TAIL}"),
        format!("http://127.0.0.1:{s}#@127.0.0.1:{l}{TAIL}"),
        format!("http://127.0.0.1:{s}?@127.0.0.1:{l}{TAIL}"),
        format!("http://2130706433:{s}{TAIL}"),
        format!("http://0x7f000001:{s}{TAIL}"),
    ] {
        let before = t.standin.responses().len();
        let body = t
            .invoke_with_budget(cfn_event(CREATE, &url), Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(body["Status"], "SUCCESS", "{url}: {body}");
        let new = t.standin.responses()[before..].to_vec();
        assert_eq!(new.len(), 1, "{url}: {new:?}");
        assert!(new[0].accepted, "{url}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        listener.contacts(),
        Vec::<String>::new(),
        "the listener was reached"
    );
    println!(
        "cloudformation allowlist: {} refused ResponseURLs, none contacted, no Transfer call; \
         the allowed origin got 1 PUT; 5 look-alikes of the listener went to the allowed origin",
        variants.len()
    );
}

/// The control: with the listener's origin allowed, the same URL reaches it, once.
#[tokio::test]
async fn cloudformation_an_allowed_listener_is_reached_so_the_refusals_are_meaningful() {
    let listener = Listener::start().await;
    let origin = format!("http://127.0.0.1:{}", listener.port);
    let t = spawn_app_with(&[("CFN_RESPONSE_ORIGINS", &origin)]).await;
    let body = t
        .invoke_with_budget(
            cfn_event(CREATE, &format!("{origin}{TAIL}")),
            Duration::from_secs(30),
        )
        .await
        .expect("delivered to the listener");
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let contacts = listener.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(
        contacts[0].ends_with("PUT /cfn-response/x?X-Amz-Signature=secret HTTP/1.1"),
        "{contacts:?}"
    );
    // ...and the stand-in's sink, no longer allowed, is refused.
    let err = t
        .invoke_with_budget(
            cfn_event(CREATE, &format!("{}{TAIL}", t.standin.endpoint())),
            Duration::from_secs(5),
        )
        .await
        .expect_err("the stand-in is not an allowed origin here");
    assert!(err.contains("the scheme is not https"), "{err}");
    assert!(t.standin.responses().is_empty());
}

/// Any text made of URL pieces around the allowed origin and the listener (no
/// CloudFormation names, so nothing is ever looked up or sent off the machine): either
/// it is refused with nothing sent and no Transfer call, or it is answered by exactly
/// one PUT at the allowed origin. The listener hears nothing.
#[test]
fn cloudformation_any_response_url_text_reaches_only_the_allowed_origin() {
    let h = Harness::new();
    let listener = h.rt.block_on(Listener::start());
    let (l, s) = (listener.port, h.t.standin.addr().port());
    let owned = |v: &[&str]| v.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    let schemes = owned(&[
        "http://", "https://", "HTTP://", "ftp://", "//", "http:", "",
    ]);
    let mut authority = owned(&[
        "@",
        ":",
        "\\",
        "/",
        "?",
        "#",
        "%40",
        "%2e",
        ".",
        "user:pw",
        "localhost",
        "[::1]",
        "0x7f000001",
        "127.1",
        "\t",
    ]);
    authority.extend([
        // The allowed origin, several times over so that some texts are admitted.
        format!("127.0.0.1:{s}"),
        format!("127.0.0.1:{s}"),
        format!("127.0.0.1:{s}"),
        format!("127.0.0.1:{s}"),
        format!("127.0.0.1:{s}"),
        format!("127.0.0.1:{l}"),
        format!("2130706433:{s}"),
        format!("2130706433:{l}"),
        format!("[::1]:{l}"),
        format!(":{s}"),
        format!(":{l}"),
    ]);
    let tail = owned(&[
        "/",
        "/cfn-response",
        "/x",
        "?X-Amz-Signature=secret",
        "#",
        "@",
        "\\",
        "%2F",
        "..",
        " ",
        "\r\n",
    ]);
    let url = (
        prop::sample::select(schemes),
        prop::collection::vec(prop::sample::select(authority), 1..5),
        prop::collection::vec(prop::sample::select(tail), 0..5),
    )
        .prop_map(|(scheme, authority, tail)| {
            format!("{scheme}{}{}", authority.concat(), tail.concat())
        });
    let (refused, answered) = (Cell::new(0), Cell::new(0));
    run(384, url, |url| {
        let d = h.dispatch(cfn_event(CREATE, &url));
        match &d.reply {
            Err(e) => {
                prop_assert!(
                    e.starts_with("TransferChroot.Unanswerable: "),
                    "{}: {}",
                    url,
                    e
                );
                prop_assert!(!e.contains("secret"), "{}: {}", url, e);
                prop_assert!(d.responses.is_empty(), "{}: {:?}", url, d.responses);
                prop_assert!(d.requests.is_empty(), "{}: Transfer was called", url);
                refused.set(refused.get() + 1);
            }
            Ok(body) => {
                prop_assert_eq!(d.responses.len(), 1, "{}: {:?}", url, d.responses);
                prop_assert!(d.responses[0].accepted);
                prop_assert_eq!(&d.responses[0].body, body);
                answered.set(answered.get() + 1);
            }
        }
        Ok(())
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        listener.contacts(),
        Vec::<String>::new(),
        "the listener was reached"
    );
    println!(
        "cloudformation allowlist, any text: {} refused, {} answered at the allowed origin, \
         0 contacts elsewhere",
        refused.get(),
        answered.get()
    );
}
