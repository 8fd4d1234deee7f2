//! Drift corrected as it happens: CloudTrail records of Transfer API calls, in the real
//! EventBridge envelope (`events/cloudtrail-*.json`), through the real SDK to the
//! stand-in, whose request log shows exactly which calls each event caused.

use serde_json::{Value, json};
use transfer_chroot::{Outcome, Status};

use crate::common::*;

fn operations(t: &TestApp) -> Vec<String> {
    t.standin
        .requests()
        .into_iter()
        .map(|r| r.operation)
        .collect()
}

fn with_params(name: &str, event_name: &str, params: Value) -> Value {
    let mut e = event(name);
    e["detail"]["eventName"] = event_name.into();
    e["detail"]["requestParameters"] = params;
    e
}

#[tokio::test]
async fn a_hand_made_path_user_is_chrooted_and_the_echo_of_that_write_ends_unchanged() {
    let t = spawn_app().await;
    let out = t.outcome(event("cloudtrail-update-user.json")).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert!(
        out.reason
            .as_deref()
            .unwrap()
            .contains("/acme-sftp/home/alice")
    );
    assert_eq!(operations(&t), ["DescribeUser", "UpdateUser"]);
    let alice = t.standin.user(SERVER, "alice").unwrap();
    assert_eq!(alice["HomeDirectoryType"], "LOGICAL");
    assert_eq!(
        alice["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/alice"}])
    );
    assert_eq!(
        alice["Role"], "arn:aws:iam::111122223333:role/sftp-user",
        "nothing else changed"
    );

    // The function's own UpdateUser comes back through CloudTrail: one Describe, no write.
    t.standin.clear_requests();
    let mut echo = event("cloudtrail-own-update.json");
    echo["detail"]["requestParameters"]["userName"] = "alice".into();
    let out = t.outcome(echo).await;
    assert_eq!(out.status, Status::Unchanged, "{out:?}");
    assert_eq!(operations(&t), ["DescribeUser"]);
}

#[tokio::test]
async fn every_sample_gets_its_documented_answer() {
    let t = spawn_app().await;
    for (name, status, calls) in [
        (
            "cloudtrail-create-user.json",
            Status::Updated,
            vec!["DescribeUser", "UpdateUser"],
        ),
        (
            "cloudtrail-own-update.json",
            Status::Unchanged,
            vec!["DescribeUser"],
        ),
        (
            "cloudtrail-needs-attention.json",
            Status::Skipped,
            vec!["DescribeUser"],
        ),
        ("cloudtrail-failed-call.json", Status::Skipped, vec![]),
    ] {
        t.standin.clear_requests();
        let out: Outcome = t.outcome(event(name)).await;
        assert_eq!(out.status, status, "{name}: {out:?}");
        assert_eq!(operations(&t), calls, "{name}");
    }
    let carol = t.standin.user(SERVER, "carol").unwrap();
    assert_eq!(
        carol["HomeDirectoryType"], "PATH",
        "needs attention: never written"
    );
}

#[tokio::test]
async fn an_access_on_the_directory_server_is_chrooted_too() {
    let t = spawn_app().await;
    let e = with_params(
        "cloudtrail-update-user.json",
        "UpdateAccess",
        json!({"serverId": DIRECTORY_SERVER, "externalId": FINANCE_SID,
               "homeDirectory": "/acme-sftp/groups/finance"}),
    );
    let out = t.outcome(e).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert_eq!(out.identity.external_id.as_deref(), Some(FINANCE_SID));
    assert_eq!(operations(&t), ["DescribeAccess", "UpdateAccess"]);
}

#[tokio::test]
async fn skipped_events_make_no_call() {
    let t = spawn_app_with(&[("EXEMPT_USERS", "alice")]).await;
    let params = json!({"serverId": SERVER, "userName": "alice"});
    for (e, why) in [
        (
            with_params("cloudtrail-update-user.json", "DeleteUser", params.clone()),
            "DeleteUser",
        ),
        (
            with_params("cloudtrail-update-user.json", "UpdateUser", params.clone()),
            "exempt",
        ),
        (
            with_params(
                "cloudtrail-update-user.json",
                "UpdateUser",
                json!({"serverId": "s-11111111111111111", "userName": "bob"}),
            ),
            "ALLOWED_SERVER_IDS",
        ),
    ] {
        let out = t.outcome(e).await;
        assert_eq!(out.status, Status::Skipped, "{out:?}");
        assert!(out.reason.as_deref().unwrap().contains(why), "{out:?}");
    }
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn bad_parameters_fail_the_invocation_without_a_call() {
    let t = spawn_app().await;
    let e = with_params(
        "cloudtrail-update-user.json",
        "UpdateUser",
        json!({"serverId": "s-1", "userName": 7}),
    );
    let err = t
        .invoke_with_budget(e, std::time::Duration::from_secs(30))
        .await
        .expect_err("fails for Lambda to retry and park");
    assert!(err.starts_with("TransferChroot.ValidationFailed"), "{err}");
    assert!(
        err.contains("requestParameters.serverId") && err.contains("requestParameters.userName")
    );
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn through_sqs_a_cloudtrail_event_is_a_record_like_any_other() {
    let t = spawn_app().await;
    let reply = t
        .invoke(sqs_event([
            ("ct-1".to_owned(), event("cloudtrail-update-user.json")),
            ("ct-2".to_owned(), event("cloudtrail-failed-call.json")),
        ]))
        .await;
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    assert_eq!(t.standin.calls("UpdateUser"), 1);
}
