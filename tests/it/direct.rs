//! Direct commands end to end: handler → core → real SDK → stand-in on loopback.

use crate::common::*;
use serde_json::json;
use transfer_chroot::Status;
use transfer_chroot::outcome::ErrorCode;
use transfer_standin::{Fault, FaultRule};

#[tokio::test]
async fn path_user_becomes_logical_with_the_single_root_mapping() {
    let t = spawn_app().await;
    let out = t.outcome(event("direct-update-user.json")).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert!(
        out.request_id
            .as_deref()
            .is_some_and(|id| id.starts_with("standin-"))
    );
    let fields: Vec<_> = out.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "HomeDirectoryType",
            "HomeDirectoryMappings",
            "HomeDirectory",
            "PosixProfile"
        ]
    );

    let user = t.standin.user(SERVER, "alice").unwrap();
    assert_eq!(user["HomeDirectoryType"], "LOGICAL");
    assert_eq!(
        user["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/alice"}])
    );
    // The stale PATH-style home would be read as a logical folder that does not exist.
    assert_eq!(user["HomeDirectory"], "/");
    assert_eq!(
        user["PosixProfile"],
        json!({"Uid": 1001, "Gid": 1001, "SecondaryGids": [2001]})
    );

    let calls = t.standin.requests();
    assert_eq!(
        calls
            .iter()
            .map(|r| r.operation.as_str())
            .collect::<Vec<_>>(),
        ["DescribeUser", "UpdateUser"]
    );
    assert!(calls.iter().all(|r| r.signed), "requests are SigV4-signed");
    // The result shows exactly the request that was sent.
    assert_eq!(out.request.as_ref(), Some(&calls[1].body));
}

#[tokio::test]
async fn already_chrooted_user_is_unchanged_and_not_written() {
    let t = spawn_app().await;
    let out = t.outcome(event("direct-unchanged.json")).await;
    assert_eq!(out.status, Status::Unchanged, "{out:?}");
    assert!(out.changes.is_empty());
    assert_eq!(t.standin.calls("DescribeUser"), 1);
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn applying_twice_writes_once() {
    let t = spawn_app().await;
    assert_eq!(
        t.outcome(event("direct-update-user.json")).await.status,
        Status::Updated
    );
    assert_eq!(
        t.outcome(event("direct-update-user.json")).await.status,
        Status::Unchanged
    );
    assert_eq!(t.standin.calls("UpdateUser"), 1);
}

#[tokio::test]
async fn missing_user_is_not_found() {
    let t = spawn_app().await;
    let out = t
        .outcome(json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": "nobody"}))
        .await;
    assert_eq!(out.status, Status::Failed);
    let err = out.error.unwrap();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(!err.retryable);
    assert!(out.request_id.is_some(), "AWS request id kept");
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn missing_server_is_not_found() {
    let t = spawn_app_with(&[(
        "ALLOWED_SERVER_IDS",
        "s-0123456789abcdef0,s-11111111111111111",
    )])
    .await;
    let out = t
        .outcome(
            json!({"Action": "UpdateUser", "ServerId": "s-11111111111111111", "UserName": "alice"}),
        )
        .await;
    assert_eq!(out.error_code(), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn throttled_twice_succeeds_on_retry() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, 2).on("UpdateUser"));
    let out = t.outcome(event("direct-update-user.json")).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert_eq!(t.standin.calls("UpdateUser"), 3);
    assert_eq!(t.standin.successful_calls("UpdateUser"), 1);
}

#[tokio::test]
async fn throttled_past_the_retry_budget_is_throttled_and_retryable() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, 10).on("UpdateUser"));
    let out = t.outcome(event("direct-update-user.json")).await;
    let err = out.error.clone().unwrap();
    assert_eq!(err.code, ErrorCode::Throttled);
    assert!(err.retryable);
    assert_eq!(err.retry_after_seconds, Some(1));
    assert_eq!(
        t.standin.calls("UpdateUser"),
        3,
        "AWS_MAX_ATTEMPTS-style budget of 3"
    );
    assert!(out.request.is_some(), "the planned request is still shown");
}

#[tokio::test]
async fn describe_throttling_is_retried_too() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, 2).on("DescribeUser"));
    let out = t.outcome(event("direct-update-user.json")).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert_eq!(t.standin.calls("DescribeUser"), 3);
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    for fault in [Fault::Status(500), Fault::Status(503), Fault::Drop] {
        let t = spawn_app().await;
        t.standin
            .add_fault(FaultRule::new(fault.clone(), 1).on("UpdateUser"));
        let out = t.outcome(event("direct-update-user.json")).await;
        assert_eq!(out.status, Status::Updated, "{fault:?}: {out:?}");
        assert_eq!(t.standin.calls("UpdateUser"), 2, "{fault:?}");
    }
}

#[tokio::test]
async fn persistent_503_is_upstream_and_retryable() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Status(503), u32::MAX).on("UpdateUser"));
    let out = t.outcome(event("direct-update-user.json")).await;
    let err = out.error.unwrap();
    assert_eq!(err.code, ErrorCode::Upstream);
    assert!(err.retryable);
    assert!(
        !err.message.contains("dispatch"),
        "no SDK internals: {}",
        err.message
    );
}

#[tokio::test]
async fn invalid_input_lists_every_bad_field_and_calls_nothing() {
    let t = spawn_app().await;
    let out = t.outcome(event("direct-invalid.json")).await;
    assert_eq!(out.status, Status::Failed);
    let err = out.error.unwrap();
    assert_eq!(err.code, ErrorCode::ValidationFailed);
    let fields: Vec<_> = err.fields.iter().map(|f| f.field.as_str()).collect();
    for expected in [
        "HomeDirectoryType",
        "ServerId",
        "UserName",
        "HomeDirectory",
        "PosixProfile.Uid",
        "PosixProfile.SecondaryGids",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }
    assert!(
        t.standin.requests().is_empty(),
        "no AWS call for invalid input"
    );
}

#[tokio::test]
async fn guardrails_refuse_with_not_allowed_and_call_nothing() {
    let t = spawn_app().await;
    let out = t.outcome(event("direct-not-allowed.json")).await;
    let err = out.error.unwrap();
    assert_eq!(err.code, ErrorCode::NotAllowed);
    let fields: Vec<_> = err.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["HomeDirectory", "Role"]);

    let out = t
        .outcome(
            json!({"Action": "UpdateUser", "ServerId": "s-99999999999999999", "UserName": "alice"}),
        )
        .await;
    assert_eq!(out.error_code(), Some(ErrorCode::NotAllowed));
    let out = t
        .outcome(json!({"Action": "UpdateUser", "UserName": "alice", "HomeDirectory": "/acme-sftp/home2/alice"}))
        .await;
    assert_eq!(
        out.error_code(),
        Some(ErrorCode::NotAllowed),
        "whole segments only"
    );
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn role_is_refused_when_no_roles_are_configured() {
    let t = spawn_app_with(&[("ALLOWED_ROLE_ARNS", "")]).await;
    let out = t.outcome(event("direct-update-user.json")).await;
    assert_eq!(out.error_code(), Some(ErrorCode::NotAllowed));
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn dry_run_plans_without_writing() {
    let t = spawn_app().await;
    let out = t.outcome(event("direct-dry-run.json")).await;
    assert_eq!(out.status, Status::Planned, "{out:?}");
    assert_eq!(
        out.request.as_ref().unwrap()["HomeDirectoryMappings"][0]["Target"],
        "/acme-sftp/home/dave@example.com"
    );
    assert_eq!(t.writes(), 0);
    assert_eq!(
        t.standin.user(SERVER, "dave@example.com").unwrap()["HomeDirectoryType"],
        "PATH"
    );

    let t = spawn_app_with(&[("DRY_RUN", "true")]).await;
    let out = t.outcome(event("direct-update-user.json")).await;
    assert_eq!(out.status, Status::Planned);
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn access_keeps_transfer_username_variable() {
    let t = spawn_app().await;
    let out = t.outcome(event("direct-update-access.json")).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    let access = t.standin.access(DIRECTORY_SERVER, FINANCE_SID).unwrap();
    assert_eq!(
        access["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/groups/finance/${transfer:UserName}"}])
    );
    assert_eq!(t.standin.calls("UpdateAccess"), 1);
}

#[tokio::test]
async fn access_without_target_and_user_variable_are_refused() {
    let t = spawn_app().await;
    let out = t
        .outcome(json!({"Action": "UpdateAccess", "ExternalId": FINANCE_SID}))
        .await;
    assert_eq!(out.error_code(), Some(ErrorCode::ValidationFailed));
    let out = t
        .outcome(json!({"Action": "UpdateUser", "UserName": "alice",
                        "HomeDirectory": "/acme-sftp/home/${transfer:UserName}"}))
        .await;
    assert_eq!(out.error_code(), Some(ErrorCode::ValidationFailed));
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn policy_with_logical_directories_warns() {
    let t = spawn_app().await;
    let out = t
        .outcome(json!({"Action": "UpdateUser", "UserName": "alice",
            "Policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}}))
        .await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert_eq!(out.warnings.len(), 1);
    assert!(t.standin.user(SERVER, "alice").unwrap()["Policy"].is_string());
}

#[tokio::test]
async fn unknown_event_shape_names_what_was_expected() {
    let t = spawn_app().await;
    let out = t.outcome(json!({"hello": "world"})).await;
    assert_eq!(out.error_code(), Some(ErrorCode::ValidationFailed));
    assert!(out.error.unwrap().message.contains("direct command"));
    let out = t.outcome(json!([1, 2, 3])).await;
    assert_eq!(out.status, Status::Failed);
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn slow_transfer_is_answered_before_the_deadline() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::DelayMs(5_000), 1).on("DescribeUser"));
    let started = std::time::Instant::now();
    let reply = t
        .invoke_with_budget(
            event("direct-update-user.json"),
            std::time::Duration::from_millis(1_500),
        )
        .await
        .expect("a structured result, not a failed invocation");
    let out: transfer_chroot::Outcome = serde_json::from_value(reply).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1_500),
        "answered in time"
    );
    let err = out.error.unwrap();
    assert_eq!(err.code, ErrorCode::Upstream);
    assert!(err.retryable);
    assert_eq!(out.identity.user_name.as_deref(), Some("alice"));
    assert_eq!(t.standin.successful_calls("UpdateUser"), 0);
}

#[tokio::test]
async fn a_reconcile_by_hand_chroots_a_drifted_user_to_its_own_home() {
    let t = spawn_app().await;
    let out = t.outcome(event("direct-reconcile.json")).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert!(
        out.reason
            .as_deref()
            .unwrap()
            .contains("/acme-sftp/home/dave")
    );
    let dave = t.standin.user(SERVER, "dave@example.com").unwrap();
    assert_eq!(dave["HomeDirectoryType"], "LOGICAL");
    assert_eq!(
        dave["HomeDirectoryMappings"][0]["Target"],
        "/acme-sftp/home/dave"
    );
    // Again: chrooted now, one read and no write.
    t.standin.clear_requests();
    let again = t.outcome(event("direct-reconcile.json")).await;
    assert_eq!(again.status, Status::Unchanged);
    assert_eq!(t.standin.calls("DescribeUser"), 1);
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn a_reconcile_of_an_underivable_home_writes_nothing_and_says_why() {
    let t = spawn_app().await;
    let out = t
        .outcome(json!({"Action": "Reconcile", "ServerId": SERVER, "UserName": "carol"}))
        .await;
    assert_eq!(out.status, Status::Skipped, "{out:?}");
    assert!(
        out.reason
            .as_deref()
            .unwrap()
            .starts_with("needs attention: home /acme-sftp"),
        "{out:?}"
    );
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn a_reconcile_carrying_a_home_or_for_another_server_makes_no_call() {
    let t = spawn_app().await;
    let out = t
        .outcome(
            json!({"Action": "Reconcile", "ServerId": SERVER, "UserName": "alice",
                        "HomeDirectory": "/acme-sftp/home/mallory", "Role": "x"}),
        )
        .await;
    assert_eq!(out.error_code(), Some(ErrorCode::ValidationFailed));
    let fields: Vec<String> = out
        .error
        .unwrap()
        .fields
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(fields, ["HomeDirectory", "Role"]);
    let out = t
        .outcome(
            json!({"Action": "Reconcile", "ServerId": "s-11111111111111111",
                        "UserName": "alice"}),
        )
        .await;
    assert_eq!(out.error_code(), Some(ErrorCode::NotAllowed));
    assert!(t.standin.requests().is_empty());
}
