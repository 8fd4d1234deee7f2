//! Directory group events from EventBridge: `Ok(result)` unless the result is `Failed`,
//! which fails the invocation with the whole result in the error.

use serde_json::{Value, json};

use super::*;
use crate::sources::HandlerError;
use crate::sources::eventbridge::{self, GROUP_CHANGED, MEMBERSHIP_CHANGED};
use crate::transfer::TransferErrorKind;

fn event(detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "0c8a2f54-6a1d-4a53-9a43-5f1b3b7d2a01",
        "detail-type": detail_type,
        "source": "acme.directory",
        "account": "123456789012",
        "time": "2021-11-11T21:29:54Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

fn membership(user_name: &str, groups: &[&str]) -> Value {
    event(
        MEMBERSHIP_CHANGED,
        json!({"ServerId": SERVER, "UserName": user_name, "Groups": groups}),
    )
}

fn group_changed(external_id: &str, group: &str) -> Value {
    event(
        GROUP_CHANGED,
        json!({"ServerId": DIRECTORY_SERVER, "ExternalId": external_id, "GroupName": group}),
    )
}

async fn invoke(c: &Chroot<MemoryTransfer>, event: Value) -> Result<Value, HandlerError> {
    eventbridge::handle(c, event, &invocation()).await
}

/// The failed result carried by `EventFailed`, with its code and retryability.
fn failed(e: HandlerError) -> (String, bool, Value) {
    let error_type = e.error_type();
    let retryable = e.retryable();
    let HandlerError::EventFailed { result, .. } = e else {
        panic!("expected EventFailed, got {e:?}");
    };
    let result: Value = serde_json::from_str(&result).expect("the result is JSON");
    assert_eq!(result["Status"], "Failed");
    assert_eq!(result["Error"]["Retryable"], retryable);
    (error_type, retryable, result)
}

#[tokio::test]
async fn a_membership_change_applies_the_highest_priority_profile_with_its_settings() {
    let c = chroot();
    let alice = user("alice");
    let mut e = membership("alice", &["staff", "sftp-engineering", "sftp-finance"]);
    // `Change` is informational: the current Groups decide.
    e["detail"]["Change"] = json!({"Type": "Removed", "Group": "sftp-finance"});

    let o = invoke(&c, e).await.expect("not a failure");
    assert_eq!(o["Status"], "Updated", "{o}");
    assert_eq!(o["Action"], "UpdateUser");
    assert_eq!(o["UserName"], "alice");
    assert_eq!(
        change_fields(&o),
        [
            "HomeDirectoryType",
            "HomeDirectoryMappings",
            "HomeDirectory",
            "Role",
            "PosixProfile"
        ]
    );
    assert_eq!(o["Request"]["Role"], FINANCE_ROLE);
    assert_eq!(
        o["Request"]["PosixProfile"],
        json!({"Uid": 2001, "Gid": 2001, "SecondaryGids": [3001]})
    );
    assert_eq!(calls_on(&c, &alice), ["DescribeUser", "UpdateUser"]);
    let live = c.ports.transfer.get(&alice).unwrap();
    assert_eq!(live.role.as_deref(), Some(FINANCE_ROLE));
    assert_eq!(
        live.posix_profile,
        Some(LivePosix {
            uid: 2001,
            gid: 2001,
            secondary_gids: vec![3001]
        })
    );
    assert_eq!(
        chroot_dir(&c, &alice).as_deref(),
        Some("/acme-sftp/groups/finance/alice")
    );

    // The same event again converges to nothing to do.
    let again = invoke(&c, membership("alice", &["sftp-finance"])).await;
    assert_eq!(again.unwrap()["Status"], "Unchanged");
    assert_eq!(c.ports.transfer.writes(), 1);
}

#[tokio::test]
async fn the_profile_is_resolved_from_the_current_groups() {
    // (groups, profile, chroot target); a profile without a Role leaves the live one.
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["sftp-engineering", "sftp-finance"],
            "sftp-finance",
            "/acme-sftp/groups/finance/alice",
        ),
        (
            &["SFTP-Finance"],
            "sftp-finance",
            "/acme-sftp/groups/finance/alice",
        ),
        (
            &["staff", "sftp-engineering"],
            "sftp-engineering",
            "/acme-sftp/groups/engineering/alice",
        ),
        (&["staff"], "Default", "/acme-sftp/home/alice"),
        (&[], "Default", "/acme-sftp/home/alice"),
    ];
    for (groups, profile, dir) in cases {
        let c = chroot();
        let applied = eventbridge::run(
            &c,
            &membership("alice", groups),
            tokio::time::Instant::now() + Duration::from_secs(10),
        )
        .await;
        assert_eq!(applied.profile.as_deref(), Some(profile), "{groups:?}");
        assert_eq!(
            applied.outcome.status,
            crate::outcome::Status::Updated,
            "{groups:?}"
        );
        assert_eq!(
            chroot_dir(&c, &user("alice")).as_deref(),
            Some(dir),
            "{groups:?}"
        );
        let role = if profile == "sftp-finance" {
            FINANCE_ROLE
        } else {
            USER_ROLE
        };
        let live = c.ports.transfer.get(&user("alice")).unwrap();
        assert_eq!(live.role.as_deref(), Some(role), "{groups:?}");
        assert_eq!(
            live.posix_profile.is_some(),
            profile == "sftp-finance",
            "{groups:?}"
        );
    }
}

#[tokio::test]
async fn no_matching_profile_is_skipped_without_a_call() {
    const NO_DEFAULT: &str = r#"{"Profiles": [{"Group": "sftp-finance", "Priority": 20,
        "HomeDirectory": "/acme-sftp/groups/finance/${UserName}"}]}"#;
    let cases = [
        (
            NO_DEFAULT,
            membership("alice", &["staff", "sftp-engineering"]),
            r#"no GROUP_PROFILES profile matches the user's groups ("staff", "sftp-engineering") and no Default is configured"#,
        ),
        (
            NO_DEFAULT,
            group_changed(FINANCE_SID, "staff"),
            r#"no GROUP_PROFILES profile for group "staff" and no Default is configured"#,
        ),
        (
            "",
            membership("alice", &["sftp-finance"]),
            "GROUP_PROFILES is not configured",
        ),
        (
            "",
            group_changed(FINANCE_SID, "sftp-finance"),
            "GROUP_PROFILES is not configured",
        ),
    ];
    for (profiles, event, reason) in cases {
        let c = chroot_with(&[("GROUP_PROFILES", profiles)]);
        let server = event["detail"]["ServerId"].clone();
        let o = invoke(&c, event).await.expect("Skipped is not a failure");
        assert_eq!(o["Status"], "Skipped", "{o}");
        assert_eq!(o["Reason"], reason);
        assert_eq!(o["ServerId"], server);
        assert!(o.get("Error").is_none() && o.get("Request").is_none());
        assert!(c.ports.transfer.calls().is_empty(), "{reason}");
    }
}

#[tokio::test]
async fn a_malformed_event_fails_the_invocation_without_a_call() {
    let mut no_detail = membership("alice", &[]);
    no_detail.as_object_mut().unwrap().remove("detail");
    let auditors = r#"{"Profiles": [{"Group": "auditors", "Priority": 5,
        "Role": "arn:aws:iam::111122223333:role/sftp-user"}]}"#;
    // (GROUP_PROFILES override, event, the fields reported)
    let cases: Vec<(&'static str, Value, &[&str])> = vec![
        ("", no_detail, &["detail"]),
        ("", event(MEMBERSHIP_CHANGED, json!("alice")), &["detail"]),
        (
            "",
            event("Directory User Deleted", json!({"UserName": "alice"})),
            &["detail-type"],
        ),
        (
            GROUP_PROFILES,
            event(MEMBERSHIP_CHANGED, json!({"UserName": "alice"})),
            &["Groups"],
        ),
        (
            GROUP_PROFILES,
            event(
                MEMBERSHIP_CHANGED,
                json!({"UserName": "alice", "Groups": "sftp-finance"}),
            ),
            &["Groups"],
        ),
        (
            GROUP_PROFILES,
            event(
                MEMBERSHIP_CHANGED,
                json!({"UserName": "-alice", "Groups": ["sftp-finance", 7]}),
            ),
            &["Groups[1]", "UserName"],
        ),
        (
            GROUP_PROFILES,
            event(MEMBERSHIP_CHANGED, json!({"Groups": ["sftp-finance"]})),
            &["UserName"],
        ),
        (
            GROUP_PROFILES,
            event(
                MEMBERSHIP_CHANGED,
                json!({"ServerId": "s-NOT-A-SERVER", "UserName": "alice", "Groups": []}),
            ),
            &["ServerId"],
        ),
        (
            GROUP_PROFILES,
            event(GROUP_CHANGED, json!({"ExternalId": FINANCE_SID})),
            &["GroupName"],
        ),
        (
            GROUP_PROFILES,
            group_changed("alice", "sftp-finance"),
            &["ExternalId"],
        ),
        (
            auditors,
            group_changed(FINANCE_SID, "auditors"),
            &["HomeDirectory"],
        ),
    ];
    for (profiles, event, fields) in cases {
        let c = chroot_with(&[("GROUP_PROFILES", profiles)]);
        let e = invoke(&c, event.clone()).await.expect_err("a failure");
        let (error_type, retryable, result) = failed(e);
        assert_eq!(error_type, "TransferChroot.ValidationFailed", "{event}");
        assert!(!retryable, "{event}");
        assert_eq!(result["Error"]["Code"], "ValidationFailed");
        assert_eq!(error_fields(&result), fields, "{event}");
        assert!(c.ports.transfer.calls().is_empty(), "{event}");
    }
}

#[tokio::test]
async fn a_group_change_updates_the_groups_access_for_every_member() {
    // (group, chroot target, Role written)
    let cases = [
        (
            "sftp-finance",
            "/acme-sftp/groups/finance/${transfer:UserName}",
            FINANCE_ROLE,
        ),
        ("staff", "/acme-sftp/home/${transfer:UserName}", USER_ROLE),
    ];
    for (group, dir, role) in cases {
        let c = chroot();
        let finance = access(FINANCE_SID);
        let o = invoke(&c, group_changed(FINANCE_SID, group))
            .await
            .expect("not a failure");
        assert_eq!(o["Status"], "Updated", "{o}");
        assert_eq!(o["Action"], "UpdateAccess");
        assert_eq!(o["ExternalId"], FINANCE_SID);
        assert!(o.get("UserName").is_none());
        assert_eq!(
            calls(&c),
            [
                ("DescribeAccess", finance.to_string()),
                ("UpdateAccess", finance.to_string())
            ]
        );
        assert_eq!(chroot_dir(&c, &finance).as_deref(), Some(dir), "{group}");
        let live = c.ports.transfer.get(&finance).unwrap();
        assert_eq!(live.role.as_deref(), Some(role), "{group}");
    }
}

#[tokio::test]
async fn a_transfer_failure_fails_the_invocation_saying_whether_to_retry() {
    // (failing operation, kind, error type, retryable)
    let cases = [
        (
            "UpdateUser",
            TransferErrorKind::Throttled,
            "TransferChroot.Throttled",
            true,
        ),
        (
            "DescribeUser",
            TransferErrorKind::Unavailable,
            "TransferChroot.Upstream",
            true,
        ),
        (
            "UpdateUser",
            TransferErrorKind::Rejected,
            "TransferChroot.Upstream",
            false,
        ),
    ];
    for (operation, kind, error_type, retryable) in cases {
        let c = chroot();
        c.ports.transfer.fail_next_on(operation, kind);
        let e = invoke(&c, membership("alice", &["sftp-finance"]))
            .await
            .expect_err("a failure");
        let (got_type, got_retryable, result) = failed(e);
        assert_eq!(got_type, error_type, "{kind:?}");
        assert_eq!(got_retryable, retryable, "{kind:?}");
        assert_eq!(result["UserName"], "alice");
        let wrote = operation == "UpdateUser";
        let expected: &[&str] = if wrote {
            &["DescribeUser", "UpdateUser"]
        } else {
            &["DescribeUser"]
        };
        assert_eq!(calls_on(&c, &user("alice")), expected, "{kind:?}");
        // A failed write still shows the plan.
        assert_eq!(!change_fields(&result).is_empty(), wrote, "{kind:?}");
        assert_eq!(chroot_dir(&c, &user("alice")), None, "nothing was applied");
    }
}
