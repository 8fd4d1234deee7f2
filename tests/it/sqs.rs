//! SQS batches end to end: the real SQS envelope with our bodies (direct commands and
//! whole EventBridge events) inside, through the handler, the real SDK and the stand-in.
//!
//! What is reported in `batchItemFailures` (docs/directory-events.md): every `Failed`
//! record (retryable or not, so permanent failures reach the dead-letter queue), every
//! record abandoned or not started at the deadline, and records held back behind a
//! retryable failure for the same target. Everything else was applied.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use transfer_chroot::sources::sqs::DEADLINE_MARGIN;
use transfer_chroot::transfer::sdk::SdkTransfer;
use transfer_standin::{Fault, FaultRule, StandIn};

const ENGINEERING_SID: &str = "S-1-5-21-1004336348-1177238915-682003330-1106";

fn sqs(records: &[(&str, Value)]) -> Value {
    sqs_event(
        records
            .iter()
            .map(|(id, body)| ((*id).to_owned(), body.clone())),
    )
}

/// A whole EventBridge event, as an EventBridge→SQS target delivers it.
fn eventbridge(detail_type: &str, detail: Value) -> Value {
    eventbridge_event(detail_type, detail)
}

fn membership(user: &str, groups: &[&str]) -> Value {
    eventbridge(
        "Directory Group Membership Changed",
        json!({"UserName": user, "Groups": groups}),
    )
}

fn update_user(user: &str, home: &str) -> Value {
    json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": user, "HomeDirectory": home})
}

fn failures(reply: &Value) -> BTreeSet<String> {
    let items = reply["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch response: {reply}"));
    items
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// `(operation, subject)` of every request the stand-in received.
fn calls(t: &TestApp) -> Vec<(String, String)> {
    t.standin
        .requests()
        .iter()
        .map(|r| {
            let subject = r.body["UserName"]
                .as_str()
                .or(r.body["ExternalId"].as_str())
                .unwrap_or_default();
            (r.operation.clone(), subject.to_owned())
        })
        .collect()
}

fn calls_for(t: &TestApp, subject: &str) -> Vec<String> {
    calls(t)
        .into_iter()
        .filter(|(_, s)| s == subject)
        .map(|(op, _)| op)
        .collect()
}

/// A stand-in seeded with `n` PATH-style users `user01`.. that each need a write.
async fn app_with_users(n: usize, overrides: &[(&str, &str)]) -> TestApp {
    let users: Vec<Value> = (1..=n)
        .map(|i| {
            json!({"UserName": format!("user{i:02}"), "HomeDirectoryType": "PATH",
                   "HomeDirectory": format!("/acme-sftp/home/user{i:02}")})
        })
        .collect();
    let seed = json!({"Servers": [{"ServerId": SERVER, "Users": users, "Accesses": []}]});
    let standin = StandIn::start(&seed).await.expect("stand-in starts");
    let transfer = SdkTransfer::new(sdk_client(&standin.endpoint(), 3));
    TestApp {
        app: crate::common::app(config_with(overrides), transfer),
        standin,
    }
    .warmed()
    .await
}

#[tokio::test]
async fn mixed_batch_reports_exactly_the_failed_records() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, u32::MAX).for_subject("carol"));
    let batch = sqs(&[
        ("good-direct", event("direct-update-user.json")),
        (
            "invalid",
            json!({"Action": "UpdateUser", "ServerId": "s-123", "UserName": "bob",
                   "HomeDirectoryType": "PATH"}),
        ),
        ("throttled", membership("carol", &["sftp-engineering"])),
        ("not-found", update_user("nobody", "/acme-sftp/home/nobody")),
        ("malformed", json!("Message Body")),
        (
            "good-eventbridge",
            membership("dave@example.com", &["staff"]),
        ),
        (
            "good-access",
            eventbridge(
                "Directory Group Changed",
                json!({"ServerId": DIRECTORY_SERVER, "ExternalId": ENGINEERING_SID, "GroupName": "sftp-engineering"}),
            ),
        ),
        (
            "not-allowed",
            json!({"Action": "UpdateUser", "UserName": "bob",
                   "Role": "arn:aws:iam::111122223333:role/admin"}),
        ),
    ]);
    let reply = t.invoke(batch).await;
    // Permanent failures are reported too, so they reach the dead-letter queue.
    assert_eq!(
        failures(&reply),
        set(&[
            "invalid",
            "throttled",
            "not-found",
            "malformed",
            "not-allowed"
        ]),
        "{reply}"
    );

    // The applied records really were applied.
    let alice = t.standin.user(SERVER, "alice").unwrap();
    assert_eq!(alice["HomeDirectoryType"], "LOGICAL");
    let dave = t.standin.user(SERVER, "dave@example.com").unwrap();
    assert_eq!(
        dave["HomeDirectoryMappings"][0]["Target"],
        "/acme-sftp/home/dave@example.com"
    );
    let access = t.standin.access(DIRECTORY_SERVER, ENGINEERING_SID).unwrap();
    assert_eq!(
        access["HomeDirectoryMappings"][0]["Target"],
        "/acme-sftp/groups/engineering/${transfer:UserName}"
    );

    // And the request log shows exactly which calls were made.
    assert_eq!(calls_for(&t, "alice"), ["DescribeUser", "UpdateUser"]);
    assert_eq!(
        calls_for(&t, "dave@example.com"),
        ["DescribeUser", "UpdateUser"]
    );
    assert_eq!(
        calls_for(&t, ENGINEERING_SID),
        ["DescribeAccess", "UpdateAccess"]
    );
    // Throttled on every attempt the SDK made; never written.
    let carol = calls_for(&t, "carol");
    assert_eq!(carol, ["DescribeUser"; 3], "the SDK retried");
    assert!(
        t.standin
            .requests()
            .iter()
            .filter(|r| r.body["UserName"] == "carol")
            .all(|r| r.fault == Some(Fault::Throttle))
    );
    assert_eq!(calls_for(&t, "nobody"), ["DescribeUser"]);
    // Invalid, malformed and refused records never reached AWS.
    assert!(calls_for(&t, "bob").is_empty());
    assert_eq!(t.standin.requests().len(), 2 + 2 + 2 + 3 + 1);
}

fn ten_user_batch() -> Value {
    let records: Vec<(String, Value)> = (1..=10)
        .map(|i| {
            let user = format!("user{i:02}");
            let body = update_user(&user, &format!("/acme-sftp/home/{user}"));
            (format!("m{i:02}"), body)
        })
        .collect();
    let refs: Vec<(&str, Value)> = records
        .iter()
        .map(|(i, b)| (i.as_str(), b.clone()))
        .collect();
    sqs(&refs)
}

/// A warm function: the SDK client has resolved its endpoint and credentials and holds
/// a connection, as it does after the first invocation of a Lambda instance.
async fn warm_up(t: &TestApp) {
    let plan = json!({"Action": "UpdateUser", "UserName": "user01", "DryRun": true});
    t.invoke(plan).await;
    t.standin.clear_requests();
}

#[tokio::test]
async fn ten_records_with_50ms_latency_finish_well_under_ten_times_50ms() {
    let t = app_with_users(10, &[("SQS_MAX_CONCURRENCY", "10")]).await;
    warm_up(&t).await;
    t.standin.set_latency(Duration::from_millis(50));

    let started = Instant::now();
    let reply = t.invoke(ten_user_batch()).await;
    let elapsed = started.elapsed();

    assert!(failures(&reply).is_empty(), "{reply}");
    assert_eq!(t.standin.successful_calls("UpdateUser"), 10);
    // Each record is a read and a write (100 ms in a row): 1 s one after the other,
    // about 100 ms all at once.
    let peak = t.standin.peak_concurrency();
    eprintln!("10 records, 50 ms latency, cap 10: {elapsed:?}, peak {peak} requests in flight");
    assert!(
        elapsed < Duration::from_millis(10 * 50),
        "took {elapsed:?}: not concurrent"
    );
    assert!(peak <= 10, "peak {peak} exceeds SQS_MAX_CONCURRENCY=10");
    assert!(peak >= 5, "peak {peak}: records did not overlap");
}

#[tokio::test]
async fn concurrency_never_exceeds_the_cap() {
    let t = app_with_users(10, &[("SQS_MAX_CONCURRENCY", "3")]).await;
    warm_up(&t).await;
    t.standin.set_latency(Duration::from_millis(50));

    let started = Instant::now();
    let reply = t.invoke(ten_user_batch()).await;
    let elapsed = started.elapsed();

    assert!(failures(&reply).is_empty(), "{reply}");
    assert_eq!(t.standin.successful_calls("UpdateUser"), 10);
    let peak = t.standin.peak_concurrency();
    eprintln!("10 records, 50 ms latency, cap 3: {elapsed:?}, peak {peak} requests in flight");
    assert!(peak <= 3, "peak {peak} exceeds SQS_MAX_CONCURRENCY=3");
    assert!(peak >= 2, "peak {peak}: nothing ran concurrently");
}

#[tokio::test]
async fn the_cap_holds_when_it_is_one() {
    let t = app_with_users(4, &[("SQS_MAX_CONCURRENCY", "1")]).await;
    t.standin.set_latency(Duration::from_millis(10));
    let batch = sqs(&[
        ("a", update_user("user01", "/acme-sftp/home/user01")),
        ("b", update_user("user02", "/acme-sftp/home/user02")),
        ("c", update_user("user03", "/acme-sftp/home/user03")),
        ("d", update_user("user04", "/acme-sftp/home/user04")),
    ]);
    assert!(failures(&t.invoke(batch).await).is_empty());
    assert_eq!(t.standin.peak_concurrency(), 1);
    assert_eq!(t.standin.successful_calls("UpdateUser"), 4);
}

#[tokio::test]
async fn records_for_the_same_user_are_applied_in_batch_order() {
    let t = app_with_users(6, &[("SQS_MAX_CONCURRENCY", "8")]).await;
    t.standin.set_latency(Duration::from_millis(15));
    let homes = [
        "/acme-sftp/home/user01/first",
        "/acme-sftp/home/user01/second",
        "/acme-sftp/home/user01/third",
    ];
    let batch = sqs(&[
        ("1", update_user("user01", homes[0])),
        ("2", update_user("user02", "/acme-sftp/home/user02")),
        ("3", update_user("user01", homes[1])),
        ("4", update_user("user03", "/acme-sftp/home/user03")),
        // The same user again, as a whole EventBridge event (DEFAULT_SERVER_ID).
        (
            "5",
            eventbridge(
                "Directory Group Membership Changed",
                json!({"UserName": "user04", "Groups": ["sftp-finance"]}),
            ),
        ),
        ("6", update_user("user01", homes[2])),
        ("7", membership("user04", &["staff"])),
    ]);
    assert!(failures(&t.invoke(batch).await).is_empty());

    let written: Vec<String> = t
        .standin
        .requests()
        .iter()
        .filter(|r| r.operation == "UpdateUser" && r.body["UserName"] == "user01")
        .map(|r| {
            r.body["HomeDirectoryMappings"][0]["Target"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(written, homes, "applied in batch order");
    let user01 = t.standin.user(SERVER, "user01").unwrap();
    assert_eq!(user01["HomeDirectoryMappings"][0]["Target"], homes[2]);
    // The later membership (Default) wins over the earlier one (finance).
    let user04 = t.standin.user(SERVER, "user04").unwrap();
    assert_eq!(
        user04["HomeDirectoryMappings"][0]["Target"],
        "/acme-sftp/home/user04"
    );
    assert!(
        t.standin.peak_concurrency() >= 2,
        "other users ran alongside"
    );
}

#[tokio::test]
async fn a_retryable_failure_holds_back_later_records_for_the_same_user() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, u32::MAX).for_subject("carol"));
    let batch = sqs(&[
        ("carol-1", update_user("carol", "/acme-sftp/home/carol/old")),
        ("alice", update_user("alice", "/acme-sftp/home/alice")),
        ("carol-2", update_user("carol", "/acme-sftp/home/carol")),
    ]);
    let reply = t.invoke(batch).await;
    assert_eq!(failures(&reply), set(&["carol-1", "carol-2"]), "{reply}");
    // carol-2 was never tried: it must not overtake carol-1's redelivery.
    assert_eq!(calls_for(&t, "carol"), ["DescribeUser"; 3]);
    assert_eq!(calls_for(&t, "alice"), ["DescribeUser", "UpdateUser"]);
}

#[tokio::test]
async fn a_permanent_failure_does_not_hold_back_the_next_record() {
    let t = spawn_app().await;
    let batch = sqs(&[
        ("bad", update_user("carol", "/etc/carol")),
        ("good", update_user("carol", "/acme-sftp/home/carol")),
    ]);
    let reply = t.invoke(batch).await;
    assert_eq!(failures(&reply), set(&["bad"]), "{reply}");
    assert_eq!(calls_for(&t, "carol"), ["DescribeUser", "UpdateUser"]);
}

#[tokio::test]
async fn records_not_started_before_the_deadline_are_reported() {
    let t = spawn_app_with(&[("SQS_MAX_CONCURRENCY", "1")]).await;
    t.standin.set_latency(Duration::from_millis(500));
    let batch = sqs(&[
        // bob is already chrooted: one 500 ms read, done before the cutoff.
        ("bob", update_user("bob", "/acme-sftp/home/bob")),
        // alice needs a read and a write (1 s): still running at the cutoff.
        ("alice", update_user("alice", "/acme-sftp/home/alice")),
        ("carol", update_user("carol", "/acme-sftp/home/carol")),
        ("dave", membership("dave@example.com", &["staff"])),
    ]);
    // 750 ms of work time before the deadline margin.
    let budget = DEADLINE_MARGIN + Duration::from_millis(750);
    let started = Instant::now();
    let reply = t
        .invoke_with_budget(batch, budget)
        .await
        .expect("a batch response");
    assert!(
        started.elapsed() < budget,
        "answered before the deadline ({:?})",
        started.elapsed()
    );
    assert_eq!(
        failures(&reply),
        set(&["alice", "carol", "dave"]),
        "{reply}"
    );
    // Give an abandoned request time to land on the stand-in's side (the stand-in
    // logs a request when it answers, so an abandoned one may not show), then check.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(calls_for(&t, "bob"), ["DescribeUser"]);
    assert!(
        !calls_for(&t, "alice").contains(&"UpdateUser".to_owned()),
        "abandoned before writing"
    );
    assert_eq!(
        t.standin.user(SERVER, "alice").unwrap()["HomeDirectoryType"],
        "PATH"
    );
    assert!(calls_for(&t, "carol").is_empty(), "never started");
    assert!(
        calls_for(&t, "dave@example.com").is_empty(),
        "never started"
    );
}

#[tokio::test]
async fn a_batch_arriving_inside_the_margin_starts_nothing_and_loses_nothing() {
    let t = spawn_app().await;
    let batch = sqs(&[
        ("a", update_user("alice", "/acme-sftp/home/alice")),
        ("b", membership("bob", &["staff"])),
    ]);
    let reply = t
        .invoke_with_budget(batch, DEADLINE_MARGIN / 2)
        .await
        .expect("a batch response");
    assert_eq!(failures(&reply), set(&["a", "b"]));
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn a_record_without_a_message_id_fails_the_whole_batch() {
    let t = spawn_app().await;
    let mut batch = sqs(&[
        ("a", update_user("alice", "/acme-sftp/home/alice")),
        ("b", update_user("carol", "/acme-sftp/home/carol")),
    ]);
    batch["Records"][1]
        .as_object_mut()
        .unwrap()
        .remove("messageId");
    let err = t
        .invoke_with_budget(batch, Duration::from_secs(30))
        .await
        .expect_err("the whole batch is redelivered");
    assert!(err.contains("messageId"), "{err}");
    assert!(t.standin.requests().is_empty(), "nothing half-done");
}

#[tokio::test]
async fn skipped_and_unchanged_records_are_done() {
    let t = spawn_app_with(&[(
        "GROUP_PROFILES",
        r#"{"Profiles":[{"Group":"sftp-finance","Priority":1,"HomeDirectory":"/acme-sftp/groups/finance/${UserName}"}]}"#,
    )])
    .await;
    let batch = sqs(&[
        ("skipped", membership("alice", &["staff"])),
        ("unchanged", event("direct-unchanged.json")),
    ]);
    let reply = t.invoke(batch).await;
    assert!(failures(&reply).is_empty(), "{reply}");
    assert_eq!(calls(&t), [("DescribeUser".to_owned(), "bob".to_owned())]);
}

#[tokio::test]
async fn the_sample_batch_reports_only_its_invalid_record() {
    let t = spawn_app().await;
    let reply = t.invoke(event("sqs-batch.json")).await;
    assert_eq!(
        failures(&reply),
        set(&["3f1c2d4e-0003-4a5b-8c9d-0e1f2a3b4c5d"]),
        "{reply}"
    );
    // The reply has exactly the shape Lambda expects.
    assert_eq!(
        reply,
        json!({"batchItemFailures": [{"itemIdentifier": "3f1c2d4e-0003-4a5b-8c9d-0e1f2a3b4c5d"}]})
    );
}
