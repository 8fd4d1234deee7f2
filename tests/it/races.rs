//! Another writer acts between the function's read and its write: every automatic fix
//! keeps the newer change (docs/RELIABILITY.md, "Reconcile, not replay").
//!
//! Through the real binary under the Runtime API emulator, the real SDK, the stand-in
//! (whose interleave hook applies an administrator's change right after the Nth answer
//! to an operation, before that answer reaches the function) and moto's SQS:
//! - the audit's in-place fix, after the listing it planned from;
//! - the audit's queued fixes, consumed after a re-home and after a move to another
//!   PATH home;
//! - a CloudTrail record older than the live state;
//! - a dead-lettered fix redriven hours later;
//! - two records for the same user in one SQS batch (lane order kept).

use std::time::Duration;

use serde_json::{Map, Value, json};
use transfer_standin::{Change, Interleave, StandIn};

use crate::common::function::Function;
use crate::common::moto::{moto_queue, moto_queue_with_dlq, receive_all};
use crate::common::*;

/// `LOGICAL` with `/` → `target`: chrooted, as an administrator (or anyone) sets it.
fn chrooted_to(target: &str) -> Map<String, Value> {
    json!({"HomeDirectoryType": "LOGICAL", "HomeDirectory": "/",
           "HomeDirectoryMappings": [{"Entry": "/", "Target": target}]})
    .as_object()
    .cloned()
    .unwrap()
}

/// A `PATH` home: drifted, and derivable when below a root.
fn path_home(home: &str) -> Map<String, Value> {
    json!({"HomeDirectoryType": "PATH", "HomeDirectory": home})
        .as_object()
        .cloned()
        .unwrap()
}

fn user_change(user: &str, set: Map<String, Value>) -> Change {
    Change {
        server_id: SERVER.into(),
        user_name: Some(user.into()),
        external_id: None,
        set,
    }
}

/// Whether `user` holds exactly the chroot to `target`.
fn assert_chrooted(standin: &StandIn, user: &str, target: &str) {
    let u = standin.user(SERVER, user).expect("the user exists");
    assert_eq!(u["HomeDirectoryType"], "LOGICAL", "{user}: {u}");
    let mappings = u["HomeDirectoryMappings"].as_array().expect("mappings");
    assert_eq!(mappings.len(), 1, "{user}: {u}");
    assert_eq!(mappings[0]["Entry"], "/", "{user}: {u}");
    assert_eq!(mappings[0]["Target"], target, "{user}: {u}");
}

/// The update requests the stand-in received for `user`.
fn updates_of(standin: &StandIn, user: &str) -> Vec<Value> {
    standin
        .requests()
        .into_iter()
        .filter(|r| r.operation == "UpdateUser" && r.body["UserName"] == user)
        .map(|r| r.body)
        .collect()
}

fn finding<'a>(report: &'a Value, user: &str) -> Option<&'a Value> {
    report["Findings"]
        .as_array()?
        .iter()
        .find(|f| f["UserName"] == user)
}

/// `messages` as one SQS batch to the function; its `batchItemFailures`.
async fn deliver(function: &Function, messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records = messages.iter().map(|m| {
        (
            m.message_id.clone().unwrap_or_default(),
            Value::String(m.body.clone().unwrap_or_default()),
        )
    });
    function.invoke(&sqs_event(records)).await
}

/// The function with its command queue on moto.
async fn with_queue(standin: &StandIn, url: &str) -> Function {
    let moto = std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT (scripts/test.sh)");
    Function::start(
        standin,
        &[("COMMAND_QUEUE_URL", url), ("AWS_ENDPOINT_URL_SQS", &moto)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_audit_fix_keeps_a_change_made_after_its_listing() {
    let standin = StandIn::start(&seed()).await.expect("stand-in starts");
    // Right after the audit's listing (alice PATH, dave PATH): an administrator
    // chroots alice elsewhere, and moves dave to another PATH home.
    for change in [
        user_change("alice", chrooted_to("/acme-sftp/home/alice-new")),
        user_change("dave@example.com", path_home("/acme-sftp/home/dave-moved")),
    ] {
        standin.interleave(Interleave {
            operation: "ListUsers".into(),
            subject: None,
            after: 1,
            change,
        });
    }
    let function = Function::start(&standin, &[]).await;
    let report = function
        .invoke(&json!({"Action": "Audit", "ServerId": SERVER, "Fix": true}))
        .await;
    assert_eq!(standin.pending_interleaves(), 0, "the changes were made");
    assert_eq!(report["Continuation"], Value::Null, "{report}");

    // alice: chrooted by someone else meanwhile; read again, found chrooted, not written.
    assert_chrooted(&standin, "alice", "/acme-sftp/home/alice-new");
    assert!(updates_of(&standin, "alice").is_empty());
    assert!(finding(&report, "alice").is_none(), "{report}");
    // dave: still drifted, but chrooted to the home it has now, not the listed one.
    assert_chrooted(&standin, "dave@example.com", "/acme-sftp/home/dave-moved");
    let dave = finding(&report, "dave@example.com").expect("dave's finding");
    assert_eq!(dave["Status"], "Updated", "{dave}");
    assert_eq!(dave["Target"], "/acme-sftp/home/dave-moved", "{dave}");
    // Each in-place fix of a PATH user costs one read and one write.
    let describes = standin.calls("DescribeUser");
    assert_eq!(
        describes, 3,
        "alice and dave read again, bob described: {describes}"
    );
    assert_eq!(report["Counts"]["Fixed"], 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_fixes_consumed_after_a_re_home_or_a_move_keep_the_newer_home() {
    let (sqs, url) = moto_queue("race-queued-fixes").await;
    let standin = StandIn::start(&seed()).await.expect("stand-in starts");
    let function = with_queue(&standin, &url).await;
    let report = function
        .invoke(&json!({"Action": "Audit", "ServerId": SERVER, "Fix": true}))
        .await;
    assert_eq!(report["Counts"]["Queued"], 2, "alice and dave: {report}");
    assert!(
        updates_of(&standin, "alice").is_empty(),
        "nothing written yet"
    );

    // Before the queue is consumed: alice re-homed (chrooted), dave moved (PATH).
    standin
        .apply_change(&user_change(
            "alice",
            chrooted_to("/acme-sftp/home/alice-new"),
        ))
        .expect("re-home");
    standin
        .apply_change(&user_change(
            "dave@example.com",
            path_home("/acme-sftp/home/dave-moved"),
        ))
        .expect("move");

    let messages = receive_all(&sqs, &url).await;
    assert_eq!(messages.len(), 2);
    for m in &messages {
        let body: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("JSON");
        assert_eq!(body["Action"], "Reconcile", "{body}");
        assert_eq!(body["ServerId"], SERVER, "{body}");
        assert!(body["RunId"].is_string(), "{body}");
        assert!(body["Reason"].is_string(), "{body}");
        assert!(body.get("HomeDirectory").is_none(), "never a home: {body}");
    }
    let reply = deliver(&function, &messages).await;
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");

    assert_chrooted(&standin, "alice", "/acme-sftp/home/alice-new");
    assert!(updates_of(&standin, "alice").is_empty(), "alice not undone");
    assert_chrooted(&standin, "dave@example.com", "/acme-sftp/home/dave-moved");
    assert_eq!(updates_of(&standin, "dave@example.com").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudtrail_record_older_than_the_live_state_is_read_as_the_state() {
    let standin = StandIn::start(&seed()).await.expect("stand-in starts");
    let function = Function::start(&standin, &[]).await;
    // The record says alice was set to PATH /acme-sftp/home/alice; since then she was
    // chrooted elsewhere: nothing to do.
    standin
        .apply_change(&user_change(
            "alice",
            chrooted_to("/acme-sftp/home/alice-new"),
        ))
        .expect("re-home");
    let record = event("cloudtrail-update-user.json");
    let outcome = function.invoke(&record).await;
    assert_eq!(outcome["Status"], "Unchanged", "{outcome}");
    assert!(updates_of(&standin, "alice").is_empty());
    assert_chrooted(&standin, "alice", "/acme-sftp/home/alice-new");

    // The same old record once she is on another PATH home: chrooted there, not to
    // the home the record names.
    standin
        .apply_change(&user_change("alice", path_home("/acme-sftp/home/alice-2")))
        .expect("move");
    let outcome = function.invoke(&record).await;
    assert_eq!(outcome["Status"], "Updated", "{outcome}");
    assert_chrooted(&standin, "alice", "/acme-sftp/home/alice-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_fix_redriven_hours_later_keeps_what_changed_meanwhile() {
    // One receive, then the dead-letter queue (the fix failed, say, during an outage).
    let (sqs, url, dlq) = moto_queue_with_dlq("race-redrive", 1).await;
    let standin = StandIn::start(&seed()).await.expect("stand-in starts");
    let function = with_queue(&standin, &url).await;
    let report = function
        .invoke(&json!({"Action": "Audit", "ServerId": SERVER, "Fix": true}))
        .await;
    assert_eq!(report["Counts"]["Queued"], 2, "{report}");
    // Received once and never deleted: after the visibility timeout, the next receive
    // moves both to the DLQ.
    assert_eq!(receive_all(&sqs, &url).await.len(), 2);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(receive_all(&sqs, &url).await.is_empty());
    let dead = receive_all(&sqs, &dlq).await;
    assert_eq!(dead.len(), 2, "both dead-lettered");

    // "Hours later": alice was chrooted elsewhere by an administrator, and dave by an
    // explicit API call (an intent) to a home of his own.
    standin
        .apply_change(&user_change(
            "alice",
            chrooted_to("/acme-sftp/home/alice-new"),
        ))
        .expect("re-home");
    // events/apigw-v2-put-user.json is dave's; another home in its body.
    let mut put = event("apigw-v2-put-user.json");
    put["body"] = json!({"HomeDirectory": "/acme-sftp/home/dave-api"})
        .to_string()
        .into();
    let answer = function.invoke(&put).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_chrooted(&standin, "dave@example.com", "/acme-sftp/home/dave-api");
    standin.clear_requests();

    // The redrive: the same messages back on the queue, consumed as any.
    let reply = deliver(&function, &dead).await;
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    assert_chrooted(&standin, "alice", "/acme-sftp/home/alice-new");
    assert_chrooted(&standin, "dave@example.com", "/acme-sftp/home/dave-api");
    assert_eq!(standin.calls("UpdateUser"), 0, "nothing undone");
    assert_eq!(standin.calls("DescribeUser"), 2, "each read once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_records_for_one_user_in_a_batch_run_in_order() {
    let standin = StandIn::start(&seed()).await.expect("stand-in starts");
    let function = Function::start(&standin, &[("SQS_MAX_CONCURRENCY", "4")]).await;
    let intent = |home: &str| {
        json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": "alice",
               "HomeDirectory": home})
    };
    let reconcile = json!({"Action": "Reconcile", "ServerId": SERVER, "UserName": "alice"});
    // Other users' records in between run concurrently; alice's lane keeps its order.
    let other = |i: usize| {
        json!({"Action": "Reconcile", "ServerId": SERVER,
               "UserName": if i.is_multiple_of(2) { "bob" } else { "carol" }})
    };

    // An intent, then a reconcile: the reconcile reads the intent's result, writes nothing.
    let batch = sqs_event([
        ("m1".to_owned(), intent("/acme-sftp/home/alice-a")),
        ("o1".to_owned(), other(0)),
        ("m2".to_owned(), reconcile.clone()),
        ("o2".to_owned(), other(1)),
    ]);
    let reply = function.invoke(&batch).await;
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    assert_chrooted(&standin, "alice", "/acme-sftp/home/alice-a");
    assert_eq!(updates_of(&standin, "alice").len(), 1, "the intent only");

    // Drifted again, then a reconcile followed by an intent: the intent lands last.
    standin
        .apply_change(&user_change("alice", path_home("/acme-sftp/home/alice")))
        .expect("drift");
    standin.clear_requests();
    let batch = sqs_event([
        ("m3".to_owned(), reconcile),
        ("o3".to_owned(), other(0)),
        ("m4".to_owned(), intent("/acme-sftp/home/alice-b")),
    ]);
    let reply = function.invoke(&batch).await;
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    let written: Vec<Value> = updates_of(&standin, "alice")
        .iter()
        .map(|b| b["HomeDirectoryMappings"][0]["Target"].clone())
        .collect();
    assert_eq!(
        written,
        ["/acme-sftp/home/alice", "/acme-sftp/home/alice-b"],
        "the reconcile's write, then the intent's"
    );
    assert_chrooted(&standin, "alice", "/acme-sftp/home/alice-b");
}
