//! The CloudFormation custom resource end to end: real CloudFormation envelopes with our
//! ResourceProperties → handler → real SDK → Transfer stand-in, and the response PUT
//! recorded by the stand-in's response sink (standing in for the presigned S3 URL).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use transfer_standin::{Fault, FaultRule, Faults, ResponsePut};

const ALICE_ID: &str = "s-0123456789abcdef0/users/alice";
const CREATE: &str = "example-cloudformation-custom-resource-create-request.json";
const UPDATE: &str = "example-cloudformation-custom-resource-update-request.json";
const DELETE: &str = "example-cloudformation-custom-resource-delete-request.json";

fn response_url(t: &TestApp) -> String {
    format!(
        "{}/cfn-response/x?X-Amz-Signature=secret",
        t.standin.endpoint()
    )
}

/// A real CloudFormation envelope carrying `properties`, answering to our stand-in.
fn request(t: &TestApp, envelope_file: &str, properties: Value) -> Value {
    let mut event = envelope(envelope_file);
    event["ResourceProperties"] = properties;
    event["ResponseURL"] = response_url(t).into();
    event
}

fn update(t: &TestApp, physical_id: &str, properties: Value, old: Value) -> Value {
    let mut event = request(t, UPDATE, properties);
    event["PhysicalResourceId"] = physical_id.into();
    event["OldResourceProperties"] = old;
    event
}

fn delete(t: &TestApp, physical_id: &str, properties: Value) -> Value {
    let mut event = request(t, DELETE, properties);
    event["PhysicalResourceId"] = physical_id.into();
    event
}

fn alice() -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:eu-west-2:123456789012:function:custom-resource-handler",
        "ServiceTimeout": "300",
        "ServerId": SERVER,
        "UserName": "alice",
        "HomeDirectory": "/acme-sftp/home/alice",
        // CloudFormation turns every scalar into a string.
        "PosixProfile": {"Uid": "1001", "Gid": "1001", "SecondaryGids": ["2001"]},
        "DryRun": "false"
    })
}

/// Invokes the handler and returns the one response CloudFormation received, after
/// checking what every answer must satisfy: the PUT happened (no path leaves the stack
/// waiting), it is the last one recorded, it went to the presigned path and query, with
/// an empty Content-Type, an exact Content-Length, at most 4096 bytes, and it is what
/// the handler returned.
async fn answered(t: &TestApp, event: Value) -> Value {
    answered_within(t, event, Duration::from_secs(30)).await
}

async fn answered_within(t: &TestApp, event: Value, budget: Duration) -> Value {
    let before = t.standin.responses().len();
    let returned = t
        .invoke_with_budget(event, budget)
        .await
        .expect("handler answers");
    let responses = t.standin.responses();
    let new: Vec<&ResponsePut> = responses[before..].iter().collect();
    let last = new.last().expect("a response was PUT to the ResponseURL");
    assert_response_shape(last);
    assert!(last.accepted);
    assert_eq!(
        new.iter().filter(|r| r.accepted).count(),
        1,
        "exactly one accepted answer"
    );
    assert_eq!(returned, last.body, "the handler returns what it sent");
    last.body.clone()
}

fn assert_response_shape(put: &ResponsePut) {
    assert_eq!(put.path, "/cfn-response/x");
    assert_eq!(put.query.as_deref(), Some("X-Amz-Signature=secret"));
    assert_eq!(
        put.content_type.as_deref(),
        Some(""),
        "empty Content-Type, or the S3 signature breaks"
    );
    assert_eq!(put.content_length, Some(put.size));
    assert!(put.size <= 4096, "{} bytes", put.size);
    let keys: Vec<&str> = put
        .body
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "Status",
        "PhysicalResourceId",
        "StackId",
        "RequestId",
        "LogicalResourceId",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

fn reason(body: &Value) -> &str {
    body["Reason"].as_str().unwrap_or_default()
}

fn assert_names_log_stream(body: &Value) {
    assert!(
        reason(body).ends_with("See CloudWatch Logs group local, stream local, request local."),
        "{}",
        reason(body)
    );
}

#[tokio::test]
async fn create_chroots_the_user_and_returns_its_id_and_data() {
    let t = spawn_app().await;
    let event = request(&t, CREATE, alice());
    let body = answered(&t, event.clone()).await;

    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], ALICE_ID);
    for echoed in ["StackId", "RequestId", "LogicalResourceId"] {
        assert_eq!(body[echoed], event[echoed], "{echoed}");
    }
    assert_eq!(
        body["Data"],
        json!({"ServerId": SERVER, "UserName": "alice", "Target": "/acme-sftp/home/alice", "Status": "Updated"})
    );
    assert!(
        reason(&body).starts_with(&format!("Updated {ALICE_ID}: HomeDirectoryType")),
        "{body}"
    );

    let user = t.standin.user(SERVER, "alice").unwrap();
    assert_eq!(user["HomeDirectoryType"], "LOGICAL");
    assert_eq!(
        user["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/alice"}])
    );
    assert_eq!(
        user["PosixProfile"],
        json!({"Uid": 1001, "Gid": 1001, "SecondaryGids": [2001]}),
        "string scalars accepted"
    );
    assert_eq!(t.standin.calls("UpdateUser"), 1);
}

#[tokio::test]
async fn create_of_an_access_is_keyed_by_external_id() {
    let t = spawn_app().await;
    let body = answered(
        &t,
        request(
            &t,
            CREATE,
            json!({"ServerId": DIRECTORY_SERVER, "ExternalId": FINANCE_SID,
                   "HomeDirectory": "/acme-sftp/groups/finance/${transfer:UserName}"}),
        ),
    )
    .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(
        body["PhysicalResourceId"],
        format!("{DIRECTORY_SERVER}/accesses/{FINANCE_SID}")
    );
    assert_eq!(body["Data"]["ExternalId"], FINANCE_SID);
    assert_eq!(
        body["Data"]["Target"],
        "/acme-sftp/groups/finance/${transfer:UserName}"
    );
    assert!(body["Data"].get("UserName").is_none());
    assert_eq!(t.standin.calls("UpdateAccess"), 1);
}

#[tokio::test]
async fn update_in_place_keeps_the_id_and_diffs_against_the_live_state() {
    let t = spawn_app().await;
    answered(&t, request(&t, CREATE, alice())).await;

    let mut changed = alice();
    changed["PosixProfile"]["SecondaryGids"] = json!(["2001", "2002"]);
    let body = answered(&t, update(&t, ALICE_ID, changed.clone(), alice())).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(
        body["PhysicalResourceId"], ALICE_ID,
        "same id: no replacement"
    );
    assert_eq!(body["Data"]["Status"], "Updated");
    assert_eq!(
        reason(&body),
        format!("Updated {ALICE_ID}: PosixProfile changed.")
    );
    assert_eq!(
        t.standin.user(SERVER, "alice").unwrap()["PosixProfile"]["SecondaryGids"],
        json!([2001, 2002])
    );

    // The same properties again: nothing to write.
    let body = answered(&t, update(&t, ALICE_ID, changed.clone(), changed)).await;
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["Data"]["Status"], "Unchanged");
    assert_eq!(t.standin.calls("UpdateUser"), 2);
}

#[tokio::test]
async fn failed_update_keeps_the_current_id() {
    let t = spawn_app().await;
    let mut bad = alice();
    bad["HomeDirectory"] = "/elsewhere/alice".into();
    let body = answered(&t, update(&t, ALICE_ID, bad, alice())).await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], ALICE_ID);
    assert!(reason(&body).starts_with("NotAllowed: "), "{body}");
    assert_names_log_stream(&body);
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn update_that_changes_the_user_is_a_replacement_and_the_old_delete_is_a_no_op() {
    let t = spawn_app().await;
    answered(&t, request(&t, CREATE, alice())).await;

    let carol =
        json!({"ServerId": SERVER, "UserName": "carol", "HomeDirectory": "/acme-sftp/home/carol"});
    let body = answered(&t, update(&t, ALICE_ID, carol.clone(), alice())).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], format!("{SERVER}/users/carol"));
    assert_eq!(body["Data"]["UserName"], "carol");
    assert!(
        reason(&body).contains(&format!("Replaces {ALICE_ID}, which is left as it is.")),
        "{body}"
    );
    assert_eq!(
        t.standin.user(SERVER, "carol").unwrap()["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/carol"}])
    );

    // CloudFormation then deletes the old resource: alice keeps her chroot.
    t.standin.clear_requests();
    let alice_before = t.standin.user(SERVER, "alice");
    let body = answered(&t, delete(&t, ALICE_ID, alice())).await;
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["PhysicalResourceId"], ALICE_ID);
    assert!(t.standin.requests().is_empty(), "Delete calls nothing");
    assert_eq!(t.standin.user(SERVER, "alice"), alice_before);
}

#[tokio::test]
async fn delete_never_touches_transfer_and_always_succeeds() {
    let t = spawn_app().await;
    // Even with properties that would be refused, and a Transfer that is down.
    t.standin
        .add_fault(FaultRule::new(Fault::Status(503), u32::MAX).on("DescribeUser"));
    let event = delete(
        &t,
        &format!("{SERVER}/users/bob"),
        json!({"ServerId": "bad", "UserName": "bob"}),
    );
    let body = answered(&t, event.clone()).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], format!("{SERVER}/users/bob"));
    assert_eq!(body["RequestId"], event["RequestId"]);
    assert!(body.get("Data").is_none());
    assert!(reason(&body).starts_with("Delete leaves"), "{body}");
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn delete_after_failed_create_is_a_no_op_on_the_same_deterministic_id() {
    let t = spawn_app().await;
    let bad = json!({"ServerId": SERVER, "UserName": "no spaces allowed"});
    let first = answered(&t, request(&t, CREATE, bad.clone())).await;
    assert_eq!(first["Status"], "FAILED");
    assert_eq!(first["PhysicalResourceId"], "failed-create/CustomResource");
    // Not random: the same request gets the same id (and the same bytes).
    let again = answered(&t, request(&t, CREATE, bad.clone())).await;
    assert_eq!(again, first);

    let body = answered(&t, delete(&t, "failed-create/CustomResource", bad)).await;
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["PhysicalResourceId"], "failed-create/CustomResource");
    assert_eq!(
        reason(&body),
        "Nothing to delete: the Create failed, so nothing was created."
    );
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn invalid_properties_fail_naming_every_bad_field() {
    let t = spawn_app().await;
    let body = answered(
        &t,
        request(
            &t,
            CREATE,
            json!({
                "ServiceToken": "arn:aws:lambda:eu-west-2:123456789012:function:x",
                "ServerId": "s-bad",
                "UserName": "bad name!",
                "HomeDirectory": "relative/path",
                "HomeDirectoryType": "PATH",
                "PosixProfile": {"Uid": "one", "Gid": "1001"},
                "DryRun": "maybe",
                "Colour": "blue"
            }),
        ),
    )
    .await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], "failed-create/CustomResource");
    let why = reason(&body);
    assert!(
        why.starts_with("ValidationFailed: 7 invalid fields"),
        "{why}"
    );
    for field in [
        "ServerId: ",
        "UserName: ",
        "HomeDirectory: ",
        "HomeDirectoryType: ",
        "PosixProfile.Uid: ",
        "DryRun: ",
        "Colour: ",
    ] {
        assert!(why.contains(field), "{field} missing from {why}");
    }
    assert!(!why.contains("ServiceToken"), "ServiceToken is not a field");
    assert_names_log_stream(&body);
    assert!(body.get("Data").is_none());
    assert!(t.standin.requests().is_empty(), "no AWS call");
}

#[tokio::test]
async fn missing_user_fails_with_not_found() {
    let t = spawn_app().await;
    let body = answered(
        &t,
        request(
            &t,
            CREATE,
            json!({"ServerId": SERVER, "UserName": "nobody"}),
        ),
    )
    .await;
    assert_eq!(body["Status"], "FAILED");
    let why = reason(&body);
    assert!(why.starts_with("NotFound: "), "{why}");
    assert!(why.contains("AWS request id standin-"), "{why}");
    assert!(!why.contains("transient"), "{why}");
    assert_names_log_stream(&body);
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn throttled_upstream_fails_as_transient_after_the_sdk_retries() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, u32::MAX).on("UpdateUser"));
    let body = answered(&t, request(&t, CREATE, alice())).await;
    assert_eq!(body["Status"], "FAILED");
    let why = reason(&body);
    assert!(why.starts_with("Throttled: "), "{why}");
    assert!(
        why.contains("This is transient: retry the stack operation."),
        "{why}"
    );
    assert_names_log_stream(&body);
    assert_eq!(t.standin.calls("UpdateUser"), 3, "the SDK's retries");
}

#[tokio::test]
async fn response_endpoint_failing_twice_is_retried_until_accepted() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Status(500), 2).on("CfnResponse"));
    let body = answered(&t, request(&t, CREATE, alice())).await;
    assert_eq!(body["Status"], "SUCCESS");
    let puts = t.standin.responses();
    assert_eq!(
        puts.iter().map(|p| p.accepted).collect::<Vec<_>>(),
        [false, false, true]
    );
    for put in &puts {
        assert_response_shape(put);
        assert_eq!(put.body, body, "every attempt sends the same answer");
    }
    assert_eq!(t.standin.calls("UpdateUser"), 1, "the work is not redone");
}

#[tokio::test]
async fn response_dropped_connection_is_retried() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Drop, 1).on("CfnResponse"));
    answered(&t, request(&t, CREATE, alice())).await;
    assert_eq!(t.standin.responses().len(), 2);
}

#[tokio::test]
async fn response_endpoint_that_never_accepts_fails_the_invocation() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Status(503), u32::MAX).on("CfnResponse"));
    let err = t
        .invoke_with_budget(request(&t, CREATE, alice()), Duration::from_secs(30))
        .await
        .expect_err("an undelivered answer fails the invocation, so Lambda retries the event");
    assert!(err.contains("not delivered after 4 attempt(s)"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    let puts = t.standin.responses();
    assert_eq!(puts.len(), 4);
    assert!(puts.iter().all(|p| !p.accepted));

    // Lambda's retry of the event answers again; the work is idempotent.
    t.standin.set_faults(Faults::default());
    let body = answered(&t, request(&t, CREATE, alice())).await;
    assert_eq!(body["Data"]["Status"], "Unchanged");
}

#[tokio::test]
async fn a_refused_signature_is_not_retried() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Status(403), u32::MAX).on("CfnResponse"));
    let err = t
        .invoke_with_budget(request(&t, CREATE, alice()), Duration::from_secs(30))
        .await
        .expect_err("undelivered");
    assert!(err.contains("HTTP 403"), "{err}");
    assert_eq!(t.standin.responses().len(), 1);
}

#[tokio::test]
async fn a_deadline_shorter_than_the_upstream_answers_failed_before_it() {
    let t = spawn_app().await;
    t.standin.set_latency(Duration::from_secs(5));
    let budget = Duration::from_secs(2);
    let started = Instant::now();
    let body = answered_within(&t, request(&t, CREATE, alice()), budget).await;
    // The issue asks for an answer shortly *before* the deadline.
    assert!(
        started.elapsed() < budget,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], "failed-create/CustomResource");
    let why = reason(&body);
    assert!(
        why.starts_with("Timeout: no result from Transfer within 1.5 s"),
        "{why}"
    );
    assert_names_log_stream(&body);
}

#[tokio::test]
async fn a_slow_update_near_the_deadline_keeps_the_current_id() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::DelayMs(5_000), 1).on("DescribeUser"));
    let body = answered_within(
        &t,
        update(&t, ALICE_ID, alice(), alice()),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], ALICE_ID);
    assert!(reason(&body).starts_with("Timeout: "), "{body}");
}

#[tokio::test]
async fn huge_properties_are_answered_within_4096_bytes_deterministically() {
    let t = spawn_app().await;
    let mut props = json!({
        "ServerId": "s-".to_owned() + &"z".repeat(5_000),
        "UserName": "u ".repeat(5_000),
        "HomeDirectory": "/acme-sftp/home/".to_owned() + &"x/".repeat(10_000),
    });
    for i in 0..300 {
        props[format!("Unexpected{i:03}")] = "y".repeat(1_000).into();
    }
    let body = answered(&t, request(&t, CREATE, props.clone())).await;
    assert_eq!(body["Status"], "FAILED");
    let why = reason(&body);
    assert!(
        why.starts_with("ValidationFailed: 303 invalid fields"),
        "{why}"
    );
    assert!(
        why.ends_with("…[truncated] See CloudWatch Logs group local, stream local, request local."),
        "{why}"
    );
    let size = t.standin.responses().last().unwrap().size;
    assert!(
        size > 4000,
        "Reason uses the room it has ({size} bytes) and no more"
    );
    assert_eq!(
        answered(&t, request(&t, CREATE, props)).await,
        body,
        "cut the same way every time"
    );
}

#[tokio::test]
async fn unknown_request_type_is_answered_failed() {
    let t = spawn_app().await;
    let mut event = request(&t, CREATE, alice());
    event["RequestType"] = "Refresh".into();
    let body = answered(&t, event).await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        reason(&body).starts_with("unsupported RequestType \"Refresh\""),
        "{body}"
    );
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn a_request_without_a_usable_response_url_fails_the_invocation() {
    let t = spawn_app().await;
    let mut event = request(&t, CREATE, alice());
    event["ResponseURL"] = "ftp://example.com/x".into();
    let err = t
        .invoke_with_budget(event, Duration::from_secs(5))
        .await
        .expect_err("nowhere to answer");
    assert!(err.starts_with("TransferChroot.Unanswerable: "), "{err}");
    assert!(err.contains("the scheme is not https"), "{err}");
    assert!(t.standin.requests().is_empty());
    assert!(t.standin.responses().is_empty());
}

#[tokio::test]
async fn the_sample_events_run_create_update_delete() {
    let t = spawn_app().await;
    let run = |name: &str| {
        let mut e = event(name);
        // The samples answer to the demo's stand-in on 127.0.0.1:9124; point them at ours.
        assert!(
            e["ResponseURL"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:9124/cfn-response/")
        );
        e["ResponseURL"] = response_url(&t).into();
        e
    };
    let created = answered(&t, run("cfn-create.json")).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    assert_eq!(
        created["PhysicalResourceId"],
        "s-0123456789abcdef0/users/carol"
    );
    let updated = answered(&t, run("cfn-update.json")).await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(updated["PhysicalResourceId"], created["PhysicalResourceId"]);
    assert_eq!(
        reason(&updated),
        "Updated s-0123456789abcdef0/users/carol: PosixProfile changed."
    );
    let writes = t.writes();
    let deleted = answered(&t, run("cfn-delete.json")).await;
    assert_eq!(deleted["Status"], "SUCCESS");
    assert_eq!(t.writes(), writes);
    assert_eq!(
        t.standin.user(SERVER, "carol").unwrap()["HomeDirectoryType"],
        "LOGICAL",
        "Delete keeps the chroot"
    );
}

#[test]
fn the_demo_configuration_admits_the_sample_events_sink_and_nothing_else_local() {
    use transfer_chroot::sources::cloudformation::ResponseUrl;
    let demo = config_with(&[]).response_origins;
    for name in ["cfn-create.json", "cfn-update.json", "cfn-delete.json"] {
        let url = event(name)["ResponseURL"].as_str().unwrap().to_owned();
        assert!(ResponseUrl::admit(&url, &demo).is_ok(), "{name}: {url}");
        let elsewhere = url.replace(":9124/", ":9125/");
        assert!(
            ResponseUrl::admit(&elsewhere, &demo).is_err(),
            "{elsewhere}"
        );
    }
    // The real envelopes' ResponseURL is CloudFormation's own: admitted with no origins.
    let real = envelope(CREATE)["ResponseURL"].as_str().unwrap().to_owned();
    assert!(
        ResponseUrl::admit(&real, &Default::default()).is_ok(),
        "{real}"
    );
}

/// Everything the function logs while answering, retries included, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn logs_never_contain_the_presigned_query_string() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Status(500), 1).on("CfnResponse"));
    answered(&t, request(&t, CREATE, alice())).await;
    answered(&t, request(&t, CREATE, json!({"UserName": "x y"}))).await;
    t.standin
        .add_fault(FaultRule::new(Fault::Status(503), u32::MAX).on("CfnResponse"));
    let _ = t
        .invoke_with_budget(delete(&t, ALICE_ID, alice()), Duration::from_secs(30))
        .await;
    // Refused ResponseURLs: logged by their origin at most.
    for url in [
        "http://127.0.0.1:9/cfn-response/x?X-Amz-Signature=secret",
        "https://user:pw@s3.amazonaws.com/cfn-response/x?X-Amz-Signature=secret",
    ] {
        let mut event = request(&t, CREATE, alice());
        event["ResponseURL"] = url.into();
        let err = t
            .invoke_with_budget(event, Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert!(!err.contains("secret") && !err.contains("pw"), "{err}");
    }

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("ResponseURL http://127.0.0.1:9 is not CloudFormation's"),
        "a refusal is logged with the origin it names"
    );
    assert!(text.contains("CloudFormation request cannot be answered"));
    let endpoint = format!("{}/cfn-response/x", t.standin.endpoint());
    assert!(
        text.contains(&endpoint),
        "the endpoint is logged without its query"
    );
    assert!(text.contains("CloudFormation response PUT failed"));
    assert!(text.contains("CloudFormation response NOT delivered"));
    // ("secret" alone appears in the SDK's own trace of its redacted credentials.)
    for secret in ["X-Amz-Signature", "=secret", "/cfn-response/x?", "user:pw"] {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "{secret} leaked into the logs: {leaks:#?}"
        );
    }
}
