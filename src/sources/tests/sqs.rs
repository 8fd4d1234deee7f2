//! SQS batches: the reply is a partial batch response naming exactly the records to
//! redeliver.

use serde_json::{Value, json};

use super::*;
use crate::sources::HandlerError;
use crate::sources::eventbridge::MEMBERSHIP_CHANGED;
use crate::sources::sqs;
use crate::transfer::TransferErrorKind;

/// One SQS record; a `body` that is a JSON string is sent as it is, anything else as
/// its JSON text.
fn record(message_id: &str, body: Value) -> Value {
    let body = match body {
        Value::String(s) => s,
        other => other.to_string(),
    };
    json!({
        "messageId": message_id,
        "receiptHandle": "MessageReceiptHandle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:transfer-chroot",
        "awsRegion": "us-east-1",
    })
}

fn batch(records: Vec<Value>) -> Value {
    json!({"Records": records})
}

fn update_user(name: &str, home: &str) -> Value {
    json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": name, "HomeDirectory": home})
}

fn membership(name: &str, groups: &[&str]) -> Value {
    json!({"detail-type": MEMBERSHIP_CHANGED, "source": "acme.directory",
           "detail": {"UserName": name, "Groups": groups}})
}

async fn invoke(c: &Chroot<MemoryTransfer>, event: Value) -> Result<Value, HandlerError> {
    sqs::handle(c, event, &invocation()).await
}

/// The reply naming `ids` (in batch order) for redelivery.
fn failures(ids: &[&str]) -> Value {
    let items: Vec<Value> = ids.iter().map(|id| json!({"itemIdentifier": id})).collect();
    json!({"batchItemFailures": items})
}

#[tokio::test]
async fn a_mixed_batch_reports_exactly_the_failed_records() {
    let c = chroot();
    let reply = invoke(
        &c,
        batch(vec![
            // Updated (a direct command)
            record("m1", update_user("alice", "/acme-sftp/home/alice")),
            // ValidationFailed: permanent, but still reported (it goes to the DLQ)
            record(
                "m2",
                json!({"Action": "UpdateUser", "UserName": "carol", "HomeDirectoryType": "PATH"}),
            ),
            // Updated (an EventBridge event, DEFAULT_SERVER_ID)
            record("m3", membership("carol", &["sftp-engineering"])),
            // NotFound
            record("m4", update_user("nobody", "/acme-sftp/home/nobody")),
            // Unchanged
            record("m5", json!({"Action": "UpdateUser", "UserName": "bob"})),
            // NotAllowed
            record("m6", update_user("dave", "/etc/dave")),
        ]),
    )
    .await
    .expect("a batch reply");
    assert_eq!(reply, failures(&["m2", "m4", "m6"]));

    assert_eq!(
        chroot_dir(&c, &user("alice")).as_deref(),
        Some("/acme-sftp/home/alice")
    );
    assert_eq!(
        chroot_dir(&c, &user("carol")).as_deref(),
        Some("/acme-sftp/groups/engineering/carol")
    );
    assert_eq!(calls_on(&c, &user("alice")), ["DescribeUser", "UpdateUser"]);
    assert_eq!(calls_on(&c, &user("carol")), ["DescribeUser", "UpdateUser"]);
    assert_eq!(calls_on(&c, &user("nobody")), ["DescribeUser"]);
    assert_eq!(calls_on(&c, &user("bob")), ["DescribeUser"]);
    assert!(calls_on(&c, &user("dave")).is_empty(), "refused: no call");
    assert_eq!(c.ports.transfer.calls().len(), 6);

    // A batch in which nothing fails reports nothing; Skipped is done, not failed.
    let c = chroot_with(&[("GROUP_PROFILES", "")]);
    let reply = invoke(
        &c,
        batch(vec![
            record("s1", membership("alice", &["sftp-finance"])),
            record("s2", json!({"Action": "UpdateUser", "UserName": "bob"})),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(reply, failures(&[]));
    assert_eq!(calls(&c), [("DescribeUser", user("bob").to_string())]);
}

#[tokio::test]
async fn records_for_one_target_run_in_batch_order() {
    let c = chroot();
    let reply = invoke(
        &c,
        batch(vec![
            record("a1", update_user("alice", "/acme-sftp/home/alice")),
            record("b1", json!({"Action": "UpdateUser", "UserName": "bob"})),
            record("a2", membership("alice", &["sftp-engineering"])),
            record("a3", update_user("alice", "/acme-sftp/home/alice-new")),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(reply, failures(&[]));
    // One after the other: each read sees the previous write, and the last one wins.
    assert_eq!(
        calls_on(&c, &user("alice")),
        [
            "DescribeUser",
            "UpdateUser",
            "DescribeUser",
            "UpdateUser",
            "DescribeUser",
            "UpdateUser"
        ]
    );
    assert_eq!(
        chroot_dir(&c, &user("alice")).as_deref(),
        Some("/acme-sftp/home/alice-new")
    );
}

#[tokio::test]
async fn a_retryable_failure_holds_back_the_targets_later_records() {
    let c = chroot();
    // bob is already chrooted, so the one UpdateUser made is alice's first.
    c.ports
        .transfer
        .fail_next_on("UpdateUser", TransferErrorKind::Throttled);
    let reply = invoke(
        &c,
        batch(vec![
            record("a1", update_user("alice", "/acme-sftp/home/alice")),
            record("b1", json!({"Action": "UpdateUser", "UserName": "bob"})),
            // Same target as a1, once as an event and once as a command: held back.
            record("a2", membership("alice", &["sftp-finance"])),
            record("a3", update_user("alice", "/acme-sftp/home/alice")),
            record("b2", json!({"Action": "UpdateUser", "UserName": "bob"})),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(reply, failures(&["a1", "a2", "a3"]));
    assert_eq!(
        calls_on(&c, &user("alice")),
        ["DescribeUser", "UpdateUser"],
        "the held-back records never reach Transfer"
    );
    assert_eq!(calls_on(&c, &user("bob")), ["DescribeUser", "DescribeUser"]);
    assert_eq!(chroot_dir(&c, &user("alice")), None);

    // A permanent failure holds nothing back: redelivery would not fix it, and the
    // later records are newer anyway.
    let c = chroot();
    c.ports
        .transfer
        .fail_next_on("UpdateUser", TransferErrorKind::Rejected);
    let reply = invoke(
        &c,
        batch(vec![
            record("a1", update_user("alice", "/acme-sftp/home/alice")),
            record("a2", update_user("alice", "/acme-sftp/home/alice-new")),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(reply, failures(&["a1"]));
    assert_eq!(
        chroot_dir(&c, &user("alice")).as_deref(),
        Some("/acme-sftp/home/alice-new")
    );
}

#[tokio::test]
async fn a_record_without_a_message_id_fails_the_whole_batch_before_any_call() {
    for missing in [Value::Null, json!(""), json!(7)] {
        let c = chroot();
        let mut anonymous = record("x", update_user("carol", "/acme-sftp/home/carol"));
        anonymous["messageId"] = missing.clone();
        let e = invoke(
            &c,
            batch(vec![
                record("m1", update_user("alice", "/acme-sftp/home/alice")),
                anonymous,
            ]),
        )
        .await
        .expect_err("the batch fails");
        assert!(
            matches!(e, HandlerError::UnreportableRecord { index: 1 }),
            "{missing}: {e:?}"
        );
        assert_eq!(e.error_type(), "TransferChroot.UnreportableRecord");
        assert!(e.retryable());
        assert!(c.ports.transfer.calls().is_empty(), "{missing}");
    }
}

#[tokio::test]
async fn an_unreadable_body_is_reported_on_its_own() {
    let c = chroot();
    let mut no_body = record("r3", json!({}));
    no_body.as_object_mut().unwrap().remove("body");
    let mut number_body = record("r4", json!({}));
    number_body["body"] = json!(42);
    let reply = invoke(
        &c,
        batch(vec![
            record("r1", json!("{\"Action\": \"UpdateUser\", ")),
            record("r2", json!([update_user("alice", "/acme-sftp/home/alice")])),
            no_body,
            number_body,
            record("r5", json!({"detail": {"UserName": "alice"}})),
            record("ok", update_user("alice", "/acme-sftp/home/alice")),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(reply, failures(&["r1", "r2", "r3", "r4", "r5"]));
    assert_eq!(
        calls(&c),
        [
            ("DescribeUser", user("alice").to_string()),
            ("UpdateUser", user("alice").to_string())
        ],
        "only the readable record reached Transfer"
    );
}
