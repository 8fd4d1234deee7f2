//! Another writer acting between a client's read and its write ([`Interleave`] rules,
//! [`StandIn::apply_change`] and their control plane), as a client sees it on the wire:
//! plain HTTP/1.1 over std sockets with a SigV4-shaped `Authorization`, as `api.rs` does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use transfer_standin::{Change, Fault, FaultRule, Interleave, StandIn};

const S3: &str = "s-0123456789abcdef0";
const FINANCE: &str = "S-1-5-21-1004336348-1177238915-682003330-1105";
const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/20250101/us-east-1/transfer/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";

/// A stand-in on its own runtime, called from the test's thread with blocking sockets.
struct Api {
    standin: StandIn,
    // Dropped after the stand-in (fields drop in order).
    _rt: tokio::runtime::Runtime,
}

fn demo() -> Api {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/seed.json");
    let seed: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("demo seed")).expect("JSON");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let standin = rt.block_on(StandIn::start(&seed)).expect("stand-in starts");
    Api { standin, _rt: rt }
}

/// alice's home as another writer moves it: a logical `/` onto a new folder.
fn alice_moves() -> Change {
    Change::user(S3, "alice")
        .with("HomeDirectoryType", json!("LOGICAL"))
        .with("HomeDirectory", json!("/"))
        .with(
            "HomeDirectoryMappings",
            json!([{"Entry": "/", "Target": "/acme-sftp/home/alice-new"}]),
        )
}

impl Api {
    /// Status and JSON body (`Null` when empty).
    fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
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
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
        };
        (status, body)
    }

    /// A signed Transfer call.
    fn call(&self, operation: &str, input: Value) -> (u16, Value) {
        let target = format!("TransferService.{operation}");
        self.http(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", &target),
                ("Authorization", SIGNED),
            ],
            &input.to_string(),
        )
    }

    #[track_caller]
    fn ok(&self, operation: &str, input: Value) -> Value {
        let (status, body) = self.call(operation, input);
        assert_eq!(status, 200, "{body}");
        body
    }

    #[track_caller]
    fn describe_alice(&self) -> Value {
        self.ok("DescribeUser", json!({"ServerId": S3, "UserName": "alice"}))["User"].clone()
    }

    fn control(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.http(method, &format!("/_standin/{path}"), &[], &body.to_string())
    }

    fn alice(&self) -> Value {
        self.standin.user(S3, "alice").expect("alice is seeded")
    }
}

#[test]
fn the_answer_shows_the_old_state_and_the_next_read_the_new() {
    let api = demo();
    api.standin
        .interleave(Interleave::on("DescribeUser", alice_moves()).for_subject("alice"));
    assert_eq!(api.standin.pending_interleaves(), 1);

    // Another subject's answer does not count.
    api.ok("DescribeUser", json!({"ServerId": S3, "UserName": "bob"}));
    assert_eq!(api.standin.pending_interleaves(), 1);
    assert_eq!(api.alice()["HomeDirectoryType"], "PATH");

    let read = api.describe_alice();
    assert_eq!(read["HomeDirectoryType"], "PATH");
    assert_eq!(read["HomeDirectory"], "/acme-sftp/home/alice");
    assert!(read.get("HomeDirectoryMappings").is_none(), "{read}");
    assert_eq!(api.standin.pending_interleaves(), 0);

    let again = api.describe_alice();
    assert_eq!(again["HomeDirectoryType"], "LOGICAL");
    assert_eq!(again["HomeDirectory"], "/");
    assert_eq!(
        again["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/alice-new"}])
    );
    // The rest of alice is as seeded: the change merged, it did not replace.
    assert_eq!(again["Role"], "arn:aws:iam::111122223333:role/sftp-user");

    let log = api.standin.changes();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].change, alice_moves());
    assert_eq!(log[0].trigger.as_deref(), Some("DescribeUser #2"));
    assert_eq!(log[0].seq, 2);
    assert_eq!(log[0].error, None);
    // The trigger is the request at that place in the log.
    let requests = api.standin.requests();
    assert_eq!(requests[1].operation, "DescribeUser");
    assert_eq!(requests[1].body["UserName"], "alice");

    // Each rule fires once.
    api.describe_alice();
    assert_eq!(api.standin.changes().len(), 1);
}

#[test]
fn a_write_from_the_stale_read_meets_the_changed_state() {
    let api = demo();
    api.standin
        .interleave(Interleave::on("DescribeUser", alice_moves()).for_subject("alice"));
    let read = api.describe_alice();
    assert_eq!(read["HomeDirectoryType"], "PATH");
    // The client writes back what it read; Transfer merges it into what is there now.
    api.ok(
        "UpdateUser",
        json!({"ServerId": S3, "UserName": "alice", "HomeDirectory": read["HomeDirectory"]}),
    );
    let now = api.alice();
    assert_eq!(now["HomeDirectoryType"], "LOGICAL");
    assert_eq!(now["HomeDirectory"], "/acme-sftp/home/alice");
    assert_eq!(
        now["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/alice-new"}])
    );
}

#[test]
fn after_two_fires_on_the_second_answer_not_the_first() {
    let api = demo();
    let carol = Change::user(S3, "carol").with("HomeDirectory", json!("/acme-sftp/home/carol"));
    api.standin
        .interleave(Interleave::on("ListUsers", carol.clone()).after(2));

    let first = api.ok("ListUsers", json!({"ServerId": S3, "MaxResults": 2}));
    let token = first["NextToken"].as_str().expect("a second page");
    assert_eq!(api.standin.pending_interleaves(), 1);
    assert!(api.standin.changes().is_empty());
    assert_eq!(
        api.standin.user(S3, "carol").expect("carol")["HomeDirectory"],
        "/acme-sftp"
    );

    let second = api.ok(
        "ListUsers",
        json!({"ServerId": S3, "MaxResults": 2, "NextToken": token}),
    );
    // The second page is the one read before the change.
    let listed: Vec<&str> = second["Users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["UserName"].as_str())
        .collect();
    assert_eq!(listed, ["carol", "dave@example.com"]);
    assert_eq!(second["Users"][0]["HomeDirectory"], "/acme-sftp");

    assert_eq!(api.standin.pending_interleaves(), 0);
    assert_eq!(
        api.standin.user(S3, "carol").expect("carol")["HomeDirectory"],
        "/acme-sftp/home/carol"
    );
    let log = api.standin.changes();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].change, carol);
    assert_eq!(log[0].trigger.as_deref(), Some("ListUsers #2"));
    assert_eq!(log[0].seq, 2);
}

#[test]
fn faulted_refused_and_unsigned_answers_do_not_count() {
    let api = demo();
    api.standin
        .add_fault(FaultRule::new(Fault::Throttle, 1).on("DescribeUser"));
    api.standin
        .interleave(Interleave::on("DescribeUser", alice_moves()));

    let (status, body) = api.call("DescribeUser", json!({"ServerId": S3, "UserName": "alice"}));
    assert_eq!(
        (status, body["__type"].as_str()),
        (429, Some("ThrottlingException"))
    );
    let (status, body) = api.call(
        "DescribeUser",
        json!({"ServerId": S3, "UserName": "nobody"}),
    );
    assert_eq!(
        (status, body["__type"].as_str()),
        (404, Some("ResourceNotFoundException"))
    );
    let (status, _) = api.http(
        "POST",
        "/",
        &[("X-Amz-Target", "TransferService.DescribeUser")],
        &json!({"ServerId": S3, "UserName": "alice"}).to_string(),
    );
    assert_eq!(status, 403);
    assert_eq!(api.standin.pending_interleaves(), 1);
    assert_eq!(api.alice()["HomeDirectoryType"], "PATH");

    // The first successful answer fires it, and still shows the old state.
    assert_eq!(api.describe_alice()["HomeDirectoryType"], "PATH");
    assert_eq!(api.standin.pending_interleaves(), 0);
    assert_eq!(api.alice()["HomeDirectoryType"], "LOGICAL");
    let log = api.standin.changes();
    assert_eq!(log[0].trigger.as_deref(), Some("DescribeUser #4"));
}

#[test]
fn a_delayed_answer_counts() {
    let api = demo();
    api.standin
        .add_fault(FaultRule::new(Fault::DelayMs(10), 1).on("DescribeUser"));
    api.standin
        .interleave(Interleave::on("DescribeUser", alice_moves()));
    assert_eq!(api.describe_alice()["HomeDirectoryType"], "PATH");
    assert_eq!(api.alice()["HomeDirectoryType"], "LOGICAL");
}

#[test]
fn a_rule_whose_change_fails_is_logged_with_its_error() {
    let api = demo();
    let ghost = Change::user(S3, "ghost").with("HomeDirectory", json!("/acme-sftp/home/ghost"));
    // Mappings on a user that stays PATH: the merge refuses it, as UpdateUser would.
    let unmapped = Change::user(S3, "alice").with(
        "HomeDirectoryMappings",
        json!([{"Entry": "/", "Target": "/acme-sftp/home/alice"}]),
    );
    api.standin
        .interleave(Interleave::on("DescribeUser", ghost.clone()));
    api.standin
        .interleave(Interleave::on("DescribeUser", unmapped.clone()));
    let before = api.alice();

    // The answer that fired them is answered as usual.
    api.describe_alice();
    assert_eq!(api.standin.pending_interleaves(), 0);
    assert_eq!(api.alice(), before);
    assert!(api.standin.user(S3, "ghost").is_none());

    let log = api.standin.changes();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((&log[0].change, &log[1].change), (&ghost, &unmapped));
    let errors: Vec<&str> = log.iter().filter_map(|c| c.error.as_deref()).collect();
    assert_eq!(errors.len(), 2, "{log:?}");
    assert!(
        errors[0].contains("ResourceNotFoundException"),
        "{errors:?}"
    );
    assert!(errors[0].contains("ghost"), "{errors:?}");
    assert!(errors[1].contains("LOGICAL"), "{errors:?}");
}

#[test]
fn apply_change_refuses_what_update_user_would_and_changes_nothing() {
    let api = demo();
    let state = |api: &Api| api.control("GET", "state", Value::Null).1;
    let before = state(&api);

    let refused = [
        (
            Change::user(S3, "nobody").with("HomeDirectory", json!("/acme-sftp/x")),
            "Unknown user: nobody",
        ),
        (
            Change::user("s-99999999999999999", "alice").with("Policy", json!("{}")),
            "Unknown server",
        ),
        (
            Change::access(S3, "S-1-5-21-0-0-0-1").with("Policy", json!("{}")),
            "Unknown access",
        ),
        (
            Change::user(S3, "alice").with("HomeDirectoryType", json!("SYMLINK")),
            "HomeDirectoryType must be PATH or LOGICAL",
        ),
        (
            Change::user(S3, "alice").with("Role", json!("not-a-role-arn-at-all")),
            "Role",
        ),
        (
            Change::user(S3, "alice")
                .with("HomeDirectoryType", json!("LOGICAL"))
                .with("HomeDirectory", json!("/elsewhere"))
                .with(
                    "HomeDirectoryMappings",
                    json!([{"Entry": "/home", "Target": "/acme-sftp/home/alice"}]),
                ),
            "must map to one of the logical HomeDirectoryMappings",
        ),
        (
            Change::user(S3, "alice").with("HomeDirectry", json!("/acme-sftp")),
            "cannot set HomeDirectry",
        ),
        (
            Change::user(S3, "alice").with("UserName", json!("mallory")),
            "cannot set UserName",
        ),
        (
            Change {
                external_id: Some(FINANCE.into()),
                ..Change::user(S3, "alice")
            },
            "exactly one of UserName and ExternalId",
        ),
    ];
    for (change, reason) in refused {
        let err = api.standin.apply_change(&change).expect_err("refused");
        assert!(err.contains(reason), "{change:?}: {err}");
    }
    assert_eq!(state(&api), before);
    assert!(api.standin.changes().is_empty());

    // A good one applies at once, logged with no trigger at its place in the log.
    api.describe_alice();
    api.standin.apply_change(&alice_moves()).expect("applies");
    assert_eq!(api.alice()["HomeDirectoryType"], "LOGICAL");
    let finance = Change::access(S3, FINANCE).with("HomeDirectory", json!("/acme-sftp/groups/fin"));
    api.standin.apply_change(&finance).expect("applies");
    assert_eq!(
        api.standin.access(S3, FINANCE).expect("finance")["HomeDirectory"],
        "/acme-sftp/groups/fin"
    );
    let log = api.standin.changes();
    assert_eq!(log.len(), 2);
    // One request (the describe) came before it; the control plane's are not recorded.
    assert_eq!((log[0].trigger.as_deref(), log[0].seq), (None, 1));
    assert_eq!(log[1].change, finance);

    api.standin.clear_requests();
    assert!(api.standin.changes().is_empty());
}

#[test]
fn an_access_changes_between_describe_access_answers() {
    let api = demo();
    let change = Change::access(S3, FINANCE).with("HomeDirectory", json!("/acme-sftp/groups/fin"));
    api.standin
        .interleave(Interleave::on("DescribeAccess", change).for_subject(FINANCE));
    let describe = || {
        api.ok(
            "DescribeAccess",
            json!({"ServerId": S3, "ExternalId": FINANCE}),
        )
    };
    assert_eq!(
        describe()["Access"]["HomeDirectory"],
        "/acme-sftp/groups/finance"
    );
    assert_eq!(
        describe()["Access"]["HomeDirectory"],
        "/acme-sftp/groups/fin"
    );
}

#[test]
#[should_panic(expected = "After counts answers from 1")]
fn a_rule_after_zero_answers_is_a_mistake() {
    let api = demo();
    api.standin
        .interleave(Interleave::on("DescribeUser", alice_moves()).after(0));
}

#[test]
fn interleaving_through_the_control_plane() {
    let api = demo();
    let rule = json!({
        "Operation": "DescribeUser",
        "Subject": "alice",
        "After": 2,
        "Change": {
            "ServerId": S3,
            "UserName": "alice",
            "Set": {"HomeDirectory": "/acme-sftp/home/alice2"}
        }
    });
    assert_eq!(
        api.control("POST", "interleave", rule.clone()),
        (200, json!({"ok": true}))
    );
    // After defaults to 1.
    let mut once = rule.clone();
    once.as_object_mut().expect("object").remove("After");
    once["Change"]["Set"] = json!({"Policy": "{}"});
    assert_eq!(api.control("POST", "interleave", once).0, 200);

    let (status, pending) = api.control("GET", "interleave", Value::Null);
    assert_eq!(status, 200);
    assert_eq!(pending[0]["Remaining"], 2);
    assert_eq!(pending[0]["Change"], rule["Change"]);
    assert_eq!(pending[1]["After"], 1);
    assert_eq!(api.standin.pending_interleaves(), 2);

    for (bad, reason) in [
        (
            json!({"Operation": "DescribeUsers", "Change": rule["Change"]}),
            "unknown operation",
        ),
        (
            json!({"Operation": "DescribeUser", "After": 0, "Change": rule["Change"]}),
            "After",
        ),
        (
            json!({"Operation": "DescribeUser", "Change": {"ServerId": S3, "UserName": "alice",
                "Set": {"HomeDirectoryType": "SYMLINK"}}}),
            "HomeDirectoryType",
        ),
        (
            json!({"Operation": "DescribeUser", "Change": {"ServerId": "s-1", "UserName": "alice",
                "Set": {}}}),
            "ServerId",
        ),
        (json!({"Operation": "DescribeUser"}), "Change"),
    ] {
        let (status, body) = api.control("POST", "interleave", bad);
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{reason}: {error}");
    }
    assert_eq!(api.standin.pending_interleaves(), 2);

    api.describe_alice();
    assert_eq!(api.alice()["Policy"], "{}");
    assert_eq!(api.alice()["HomeDirectory"], "/acme-sftp/home/alice");
    api.describe_alice();
    assert_eq!(api.alice()["HomeDirectory"], "/acme-sftp/home/alice2");
    assert_eq!(api.control("GET", "interleave", Value::Null).1, json!([]));

    // A change applied now.
    let change = json!({"ServerId": S3, "UserName": "bob", "Set": {"Policy": "{}"}});
    assert_eq!(
        api.control("POST", "change", change.clone()),
        (200, json!({"ok": true}))
    );
    assert_eq!(api.standin.user(S3, "bob").expect("bob")["Policy"], "{}");
    let (status, body) = api.control(
        "POST",
        "change",
        json!({"ServerId": S3, "UserName": "nobody", "Set": {"Policy": "{}"}}),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("Unknown user: nobody")),
        "{body}"
    );

    let (status, log) = api.control("GET", "changes", Value::Null);
    assert_eq!(status, 200);
    let triggers: Vec<&Value> = log
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| &c["Trigger"])
        .collect();
    assert_eq!(
        triggers,
        [
            &json!("DescribeUser #1"),
            &json!("DescribeUser #2"),
            &Value::Null
        ]
    );
    assert_eq!(log[2]["Change"], change);
    assert_eq!(log[2]["Seq"], 2);
    assert_eq!(log[0]["Error"], Value::Null);

    assert_eq!(api.control("POST", "clear", Value::Null).0, 200);
    assert_eq!(api.control("GET", "changes", Value::Null).1, json!([]));
}

#[test]
fn versions_order_every_write_and_say_what_each_read_saw() {
    let api = demo();
    let first = api.standin.requests().len();
    assert_eq!(first, 0);
    api.describe_alice();
    api.standin.apply_change(&alice_moves()).expect("applied");
    api.describe_alice();
    api.ok(
        "UpdateUser",
        json!({"ServerId": S3, "UserName": "bob", "HomeDirectory": "/acme-sftp/home/bob"}),
    );
    // Refused and faulted calls read or make nothing.
    api.standin
        .add_fault(FaultRule::new(Fault::Status(500), 1).on("DescribeUser"));
    assert_eq!(
        api.call("DescribeUser", json!({"ServerId": S3, "UserName": "alice"}))
            .0,
        500
    );
    let (status, _) = api.call(
        "DescribeUser",
        json!({"ServerId": S3, "UserName": "nobody"}),
    );
    assert_eq!(status, 404, "ResourceNotFoundException");

    let r = api.standin.requests();
    let versions: Vec<Option<u64>> = r.iter().map(|r| r.version).collect();
    // The first read saw version 0; the change made 1, which the next read saw; bob's
    // update made 2.
    assert_eq!(versions, [Some(0), Some(1), Some(2), None, None]);
    assert_eq!(api.standin.changes()[0].version, Some(1));
    assert!(
        r.iter()
            .all(|r| r.access_key.as_deref() == Some("AKIDSTANDIN")),
        "{r:?}"
    );
    // Versions survive a cleared log: they only go up.
    api.standin.clear_requests();
    api.describe_alice();
    assert_eq!(api.standin.requests()[0].version, Some(2));
}
