//! EventBridge directory group changes end to end: a real EventBridge envelope with our
//! `detail`, through the handler, the real SDK and the stand-in.

use crate::common::*;
use serde_json::{Value, json};
use transfer_chroot::outcome::ErrorCode;
use transfer_chroot::{Outcome, Status};
use transfer_standin::{Fault, FaultRule};

const FINANCE_ROLE: &str = "arn:aws:iam::111122223333:role/sftp-finance";
const USER_ROLE: &str = "arn:aws:iam::111122223333:role/sftp-user";
const ENGINEERING_SID: &str = "S-1-5-21-1004336348-1177238915-682003330-1106";

/// The demo's profiles (`demo/config.env`) plus roles, which need ALLOWED_ROLE_ARNS.
const PROFILES_WITH_ROLES: &str = r#"{"Profiles":[
  {"Group":"sftp-finance","Priority":20,"HomeDirectory":"/acme-sftp/groups/finance/${UserName}",
   "Role":"arn:aws:iam::111122223333:role/sftp-finance"},
  {"Group":"sftp-engineering","Priority":10,"HomeDirectory":"/acme-sftp/groups/engineering/${UserName}"}],
 "Default":{"HomeDirectory":"/acme-sftp/home/${UserName}","Role":"arn:aws:iam::111122223333:role/sftp-user"}}"#;

async fn app_with_roles() -> TestApp {
    spawn_app_with(&[("GROUP_PROFILES", PROFILES_WITH_ROLES)]).await
}

fn eventbridge(detail_type: &str, detail: Value) -> Value {
    eventbridge_event(detail_type, detail)
}

fn membership(user: &str, groups: &[&str]) -> Value {
    eventbridge(
        "Directory Group Membership Changed",
        json!({"ServerId": SERVER, "UserName": user, "Groups": groups,
               "Change": {"Type": "Added", "Group": groups.first().copied().unwrap_or("x")}}),
    )
}

/// A failed event fails the invocation; the error message carries the whole result.
fn failed(err: &str) -> Outcome {
    let json = &err[err
        .find('{')
        .unwrap_or_else(|| panic!("no result in {err:?}"))..];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {err}"))
}

async fn invoke_err(t: &TestApp, event: Value) -> (String, Outcome) {
    let err = t
        .invoke_with_budget(event, std::time::Duration::from_secs(30))
        .await
        .expect_err("a failed event fails the invocation");
    let outcome = failed(&err);
    (err, outcome)
}

fn mapping_target(v: &Value) -> &Value {
    &v["HomeDirectoryMappings"][0]["Target"]
}

#[tokio::test]
async fn membership_change_applies_the_highest_priority_profile() {
    let t = spawn_app().await;
    let out = t
        .outcome(event("eventbridge-membership-changed.json"))
        .await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    let alice = t.standin.user(SERVER, "alice").unwrap();
    assert_eq!(alice["HomeDirectoryType"], "LOGICAL");
    assert_eq!(
        alice["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/groups/finance/alice"}])
    );
    // The demo's profiles set no Role: the user's role is left as it is.
    assert_eq!(alice["Role"], USER_ROLE);
    assert_eq!(
        t.standin
            .requests()
            .iter()
            .map(|r| r.operation.as_str())
            .collect::<Vec<_>>(),
        ["DescribeUser", "UpdateUser"]
    );
}

#[tokio::test]
async fn precedence_does_not_depend_on_the_order_of_groups() {
    let t = app_with_roles().await;
    // engineering (10) loses to finance (20) in either order.
    for (user, groups) in [
        ("alice", ["sftp-engineering", "sftp-finance"]),
        ("carol", ["sftp-finance", "sftp-engineering"]),
    ] {
        let out = t.outcome(membership(user, &groups)).await;
        assert_eq!(out.status, Status::Updated, "{out:?}");
        let u = t.standin.user(SERVER, user).unwrap();
        assert_eq!(
            mapping_target(&u),
            &json!(format!("/acme-sftp/groups/finance/{user}"))
        );
        assert_eq!(u["Role"], FINANCE_ROLE);
    }
    // Only engineering: its profile, which leaves the role as it is.
    let out = t
        .outcome(membership("dave@example.com", &["SFTP-Engineering"]))
        .await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    let dave = t.standin.user(SERVER, "dave@example.com").unwrap();
    assert_eq!(
        mapping_target(&dave),
        "/acme-sftp/groups/engineering/dave@example.com"
    );
    assert_eq!(dave["Role"], USER_ROLE);
}

#[tokio::test]
async fn default_profile_when_no_group_matches_and_server_from_default_server_id() {
    let t = app_with_roles().await;
    let event = eventbridge(
        "Directory Group Membership Changed",
        json!({"UserName": "carol", "Groups": ["staff"],
               "Change": {"Type": "Removed", "Group": "sftp-finance"}}),
    );
    let out = t.outcome(event).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert_eq!(out.identity.server_id.as_deref(), Some(SERVER));
    let carol = t.standin.user(SERVER, "carol").unwrap();
    assert_eq!(mapping_target(&carol), "/acme-sftp/home/carol");
    assert_eq!(carol["Role"], USER_ROLE);

    // The same membership again changes nothing and writes nothing.
    let again = t
        .outcome(eventbridge(
            "Directory Group Membership Changed",
            json!({"UserName": "carol", "Groups": []}),
        ))
        .await;
    assert_eq!(again.status, Status::Unchanged, "{again:?}");
    assert_eq!(t.standin.calls("UpdateUser"), 1);
}

#[tokio::test]
async fn no_matching_profile_and_no_default_is_skipped_without_an_aws_call() {
    let t = spawn_app_with(&[(
        "GROUP_PROFILES",
        r#"{"Profiles":[{"Group":"sftp-finance","Priority":1,"HomeDirectory":"/acme-sftp/groups/finance/${UserName}"}]}"#,
    )])
    .await;
    let out = t.outcome(membership("alice", &["staff", "vpn"])).await;
    assert_eq!(out.status, Status::Skipped, "{out:?}");
    let reason = out.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("no GROUP_PROFILES profile") && reason.contains("\"staff\""),
        "{reason}"
    );
    assert_eq!(out.identity.user_name.as_deref(), Some("alice"));
    // A group with no profile is skipped the same way.
    let out = t
        .outcome(eventbridge(
            "Directory Group Changed",
            json!({"ExternalId": ENGINEERING_SID, "GroupName": "sftp-engineering"}),
        ))
        .await;
    assert_eq!(out.status, Status::Skipped, "{out:?}");
    assert!(t.standin.requests().is_empty(), "no AWS call when skipped");
}

#[tokio::test]
async fn without_group_profiles_membership_changes_are_skipped() {
    let t = spawn_app_with(&[("GROUP_PROFILES", "")]).await;
    let out = t.outcome(membership("alice", &["sftp-finance"])).await;
    assert_eq!(out.status, Status::Skipped, "{out:?}");
    assert!(out.reason.unwrap().contains("not configured"));
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn group_change_chroots_the_access_so_each_member_gets_a_folder() {
    let t = app_with_roles().await;
    let out = t.outcome(event("eventbridge-group-changed.json")).await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    assert_eq!(out.identity.external_id.as_deref(), Some(FINANCE_SID));
    let access = t.standin.access(DIRECTORY_SERVER, FINANCE_SID).unwrap();
    assert_eq!(access["HomeDirectoryType"], "LOGICAL");
    // `${UserName}` in the profile becomes Transfer's own login-time variable.
    assert_eq!(
        access["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/groups/finance/${transfer:UserName}"}])
    );
    assert_eq!(access["Role"], FINANCE_ROLE);
    assert_eq!(t.standin.calls("UpdateAccess"), 1);
    assert_eq!(t.standin.calls("UpdateUser"), 0);
}

#[tokio::test]
async fn unknown_detail_type_fails_with_validation_failed_and_no_call() {
    let t = spawn_app().await;
    // The envelope exactly as AWS sends it: an EC2 state change, not ours.
    let (err, out) = invoke_err(&t, envelope("example-eventbridge-event-obj.json")).await;
    assert!(err.contains("ValidationFailed"), "{err}");
    assert_eq!(out.error_code(), Some(ErrorCode::ValidationFailed));
    let fields = &out.error.unwrap().fields;
    assert_eq!(fields[0].field, "detail-type");
    assert!(
        fields[0]
            .message
            .contains("EC2 Instance State-change Notification")
    );
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn every_bad_field_of_an_event_is_reported_at_once() {
    let t = spawn_app().await;
    let (_, out) = invoke_err(
        &t,
        eventbridge(
            "Directory Group Membership Changed",
            json!({"ServerId": "s-123", "UserName": "../x", "Groups": "sftp-finance"}),
        ),
    )
    .await;
    assert_eq!(out.error_code(), Some(ErrorCode::ValidationFailed));
    let mut fields: Vec<_> = out
        .error
        .unwrap()
        .fields
        .into_iter()
        .map(|f| f.field)
        .collect();
    fields.sort();
    assert_eq!(fields, ["Groups", "ServerId", "UserName"]);

    // With valid groups, the command parser reports the rest (including the rendered home).
    let (_, out) = invoke_err(&t, membership("../x", &["sftp-finance"])).await;
    assert_eq!(out.error_code(), Some(ErrorCode::ValidationFailed));
    let fields: Vec<_> = out
        .error
        .unwrap()
        .fields
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert!(fields.contains(&"UserName".to_owned()), "{fields:?}");
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn guardrails_apply_to_events_too() {
    let t = spawn_app_with(&[
        ("ALLOWED_SERVER_IDS", "s-00000000000000000"),
        ("DEFAULT_SERVER_ID", ""),
    ])
    .await;
    let (_, out) = invoke_err(&t, membership("alice", &["sftp-finance"])).await;
    assert_eq!(out.error_code(), Some(ErrorCode::NotAllowed), "{out:?}");
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn not_found_and_throttled_fail_the_invocation_for_lambda_to_retry() {
    let t = spawn_app().await;
    let (err, out) = invoke_err(&t, membership("nobody", &["sftp-finance"])).await;
    assert!(
        err.starts_with("TransferChroot.NotFound: event failed: NotFound"),
        "{err}"
    );
    assert_eq!(out.error_code(), Some(ErrorCode::NotFound));
    assert!(out.request_id.is_some(), "the AWS request id is kept");

    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, u32::MAX).for_subject("carol"));
    let (err, out) = invoke_err(&t, membership("carol", &["sftp-finance"])).await;
    assert!(
        err.starts_with("TransferChroot.Throttled: event failed: Throttled"),
        "{err}"
    );
    assert!(out.is_retryable_failure());
    assert_eq!(t.standin.successful_calls("UpdateUser"), 0);
}

#[tokio::test]
async fn dry_run_plans_the_profile_without_writing() {
    let t = spawn_app_with(&[("DRY_RUN", "true")]).await;
    let out = t.outcome(membership("alice", &["sftp-finance"])).await;
    assert_eq!(out.status, Status::Planned, "{out:?}");
    assert_eq!(
        mapping_target(out.request.as_ref().unwrap()),
        "/acme-sftp/groups/finance/alice"
    );
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn transfer_slower_than_the_deadline_fails_the_event_in_time() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::DelayMs(5_000), 1).on("DescribeAccess"));
    let started = std::time::Instant::now();
    let err = t
        .invoke_with_budget(
            event("eventbridge-group-changed.json"),
            std::time::Duration::from_millis(1_500),
        )
        .await
        .expect_err("a failed event fails the invocation, for Lambda to retry");
    assert!(started.elapsed() < std::time::Duration::from_millis(1_500));
    let outcome = failed(&err);
    assert_eq!(outcome.error_code(), Some(ErrorCode::Upstream));
    assert!(outcome.is_retryable_failure());
}
