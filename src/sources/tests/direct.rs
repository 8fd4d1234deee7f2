//! Direct commands (`{"Action": ...}`): the reply is the result itself.

use serde_json::{Value, json};

use super::*;
use crate::sources::direct;
use crate::transfer::TransferErrorKind;

/// The reply Lambda returns for a direct invoke.
async fn invoke(c: &Chroot<MemoryTransfer>, event: Value) -> Value {
    direct::handle(c, &event, &invocation()).await.to_json()
}

#[tokio::test]
async fn a_user_and_an_access_are_updated_then_unchanged() {
    let alice = user("alice");
    let finance = access(FINANCE_SID);
    let cases = [
        (
            json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": "alice",
                   "HomeDirectory": "/acme-sftp/home/alice", "Role": USER_ROLE,
                   "PosixProfile": {"Uid": 1001, "Gid": 1001, "SecondaryGids": [2001]}}),
            &alice,
            "UpdateUser",
            "/acme-sftp/home/alice",
            &[
                "HomeDirectoryType",
                "HomeDirectoryMappings",
                "HomeDirectory",
                "PosixProfile",
            ][..],
        ),
        (
            json!({"Action": "UpdateAccess", "ServerId": DIRECTORY_SERVER, "ExternalId": FINANCE_SID,
                   "HomeDirectory": "/acme-sftp/groups/finance/${transfer:UserName}"}),
            &finance,
            "UpdateAccess",
            "/acme-sftp/groups/finance/${transfer:UserName}",
            &[
                "HomeDirectoryType",
                "HomeDirectoryMappings",
                "HomeDirectory",
            ][..],
        ),
    ];
    for (event, t, action, dir, changed) in cases {
        let c = chroot();
        let describe = if action == "UpdateUser" {
            "DescribeUser"
        } else {
            "DescribeAccess"
        };

        let first = invoke(&c, event.clone()).await;
        assert_eq!(first["Status"], "Updated", "{first}");
        assert_eq!(first["Action"], action);
        assert_eq!(first["ServerId"], t.server.as_str());
        assert_eq!(change_fields(&first), changed, "{first}");
        assert_eq!(
            first["Request"]["HomeDirectoryMappings"],
            json!([{"Entry": "/", "Target": dir}])
        );
        assert_eq!(first["Request"]["HomeDirectoryType"], "LOGICAL");
        assert_eq!(first["Request"]["HomeDirectory"], "/");
        assert_eq!(first["RequestId"], "memory-2", "the write's request id");
        assert!(first.get("Error").is_none());
        assert_eq!(calls_on(&c, t), [describe, action]);
        assert_eq!(chroot_dir(&c, t).as_deref(), Some(dir));

        let second = invoke(&c, event).await;
        assert_eq!(second["Status"], "Unchanged", "{second}");
        assert_eq!(second["Changes"], json!([]));
        assert!(second.get("Request").is_none());
        assert_eq!(calls_on(&c, t), [describe, action, describe]);
        assert_eq!(c.ports.transfer.writes(), 1);
    }
    let c = chroot();
    let o = invoke(&c, json!({"Action": "UpdateUser", "UserName": "alice"})).await;
    assert_eq!(o["UserName"], "alice");
    assert_eq!(
        o["ServerId"], SERVER,
        "DEFAULT_SERVER_ID and HOME_TEMPLATE fill in"
    );
    assert_eq!(
        chroot_dir(&c, &alice).as_deref(),
        Some("/acme-sftp/home/alice")
    );
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once_without_a_call() {
    let c = chroot();
    let o = invoke(
        &c,
        json!({
            "Action": "UpdateUser",
            "ServerId": "s-NOT-A-SERVER",
            "UserName": "ålice",
            "HomeDirectory": "/acme-sftp/home/../../etc",
            "HomeDirectoryType": "PATH",
            "Role": "admin",
            "Policy": 7,
            "PosixProfile": {"Uid": -1, "Gid": 1001,
                             "SecondaryGids": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]},
            "DryRun": "yes",
            "Colour": "blue"
        }),
    )
    .await;
    assert_eq!(o["Status"], "Failed");
    assert_eq!(o["Error"]["Code"], "ValidationFailed");
    assert_eq!(o["Error"]["Retryable"], false);
    // Refused keys first (in input order), then the fields in the parser's fixed order.
    let fields = [
        "HomeDirectoryType",
        "Colour",
        "ServerId",
        "UserName",
        "HomeDirectory",
        "Role",
        "Policy",
        "PosixProfile.Uid",
        "PosixProfile.SecondaryGids",
        "DryRun",
    ];
    assert_eq!(error_fields(&o), fields, "{o}");
    assert_eq!(
        o["Error"]["Message"],
        format!("10 invalid fields: {}", fields.join(", "))
    );
    // The identity is echoed as given, so the caller sees which request this was.
    assert_eq!(o["ServerId"], "s-NOT-A-SERVER");
    assert_eq!(o["UserName"], "ålice");
    assert!(c.ports.transfer.calls().is_empty());

    // A missing or unknown Action is a field like any other.
    for (event, fields) in [
        (json!({"UserName": "alice"}), vec!["Action"]),
        (
            json!({"Action": "DeleteUser", "UserName": "alice"}),
            vec!["Action"],
        ),
        (
            json!({"Action": "UpdateUser", "ExternalId": FINANCE_SID}),
            vec!["ExternalId", "UserName"],
        ),
        (
            json!({"Action": "UpdateAccess", "ExternalId": FINANCE_SID}),
            vec!["HomeDirectory"],
        ),
    ] {
        let o = invoke(&c, event.clone()).await;
        assert_eq!(o["Error"]["Code"], "ValidationFailed", "{event}");
        assert_eq!(error_fields(&o), fields, "{event}");
    }
    assert!(c.ports.transfer.calls().is_empty());
}

#[tokio::test]
async fn a_guardrail_refusal_lists_every_refused_field_without_a_call() {
    let c = chroot();
    let o = invoke(
        &c,
        json!({"Action": "UpdateUser", "ServerId": FOREIGN_SERVER, "UserName": "carol",
               "HomeDirectory": "/acme-sftp/home",
               "Role": "arn:aws:iam::111122223333:role/admin"}),
    )
    .await;
    assert_eq!(o["Status"], "Failed");
    assert_eq!(o["Error"]["Code"], "NotAllowed");
    assert_eq!(o["Error"]["Retryable"], false);
    assert_eq!(error_fields(&o), ["ServerId", "HomeDirectory", "Role"]);
    assert_eq!(
        o["Error"]["Message"],
        "refused by a guardrail: ServerId, HomeDirectory, Role"
    );

    // Invalid values outrank guardrails: only the validation failure is reported.
    let o = invoke(
        &c,
        json!({"Action": "UpdateUser", "ServerId": FOREIGN_SERVER, "UserName": "carol",
               "HomeDirectory": "/etc/carol", "PosixProfile": {"Uid": 1}}),
    )
    .await;
    assert_eq!(o["Error"]["Code"], "ValidationFailed");
    assert_eq!(error_fields(&o), ["PosixProfile.Gid"]);
    assert!(c.ports.transfer.calls().is_empty());
}

#[tokio::test]
async fn a_dry_run_plans_reading_only() {
    let event = json!({"Action": "UpdateUser", "UserName": "carol", "DryRun": true});
    for (c, event) in [
        (chroot(), event),
        (
            chroot_with(&[("DRY_RUN", "true")]),
            json!({"Action": "UpdateUser", "UserName": "carol"}),
        ),
    ] {
        let before = c.ports.transfer.get(&user("carol"));
        let o = invoke(&c, event).await;
        assert_eq!(o["Status"], "Planned", "{o}");
        assert_eq!(
            change_fields(&o),
            [
                "HomeDirectoryType",
                "HomeDirectoryMappings",
                "HomeDirectory"
            ]
        );
        assert_eq!(
            o["Changes"][1],
            json!({"Field": "HomeDirectoryMappings", "Before": null,
                   "After": [{"Entry": "/", "Target": "/acme-sftp/home/carol"}]})
        );
        assert_eq!(o["Request"]["ServerId"], SERVER);
        assert_eq!(o["Request"]["UserName"], "carol");
        assert_eq!(calls(&c), [("DescribeUser", user("carol").to_string())]);
        assert_eq!(
            c.ports.transfer.get(&user("carol")),
            before,
            "nothing written"
        );
    }
}

#[tokio::test]
async fn an_event_that_is_not_an_object_fails_without_a_call() {
    let c = chroot();
    for event in [
        json!(["UpdateUser"]),
        json!("UpdateUser"),
        json!(42),
        Value::Null,
    ] {
        let o = invoke(&c, event.clone()).await;
        assert_eq!(
            o,
            json!({"Status": "Failed", "Changes": [],
                   "Error": {"Code": "ValidationFailed",
                             "Message": "a direct command must be a JSON object with an Action",
                             "Retryable": false}}),
            "{event}"
        );
    }
    assert!(c.ports.transfer.calls().is_empty());
}

#[tokio::test]
async fn transfer_failures_are_classified() {
    // (failure, code, retryable, the write is attempted)
    let cases = [
        (None, "NotFound", false, false),
        (
            Some(("DescribeUser", TransferErrorKind::Unavailable)),
            "Upstream",
            true,
            false,
        ),
        (
            Some(("UpdateUser", TransferErrorKind::Throttled)),
            "Throttled",
            true,
            true,
        ),
        (
            Some(("UpdateUser", TransferErrorKind::Rejected)),
            "Upstream",
            false,
            true,
        ),
        (
            Some(("UpdateUser", TransferErrorKind::InvalidRequest)),
            "ValidationFailed",
            false,
            true,
        ),
    ];
    for (failure, code, retryable, wrote) in cases {
        let c = chroot();
        let name = match failure {
            Some((op, kind)) => {
                c.ports.transfer.fail_next_on(op, kind);
                "alice"
            }
            None => "nobody",
        };
        let o = invoke(&c, json!({"Action": "UpdateUser", "UserName": name})).await;
        assert_eq!(o["Status"], "Failed", "{failure:?}");
        assert_eq!(o["Error"]["Code"], code, "{failure:?}");
        assert_eq!(o["Error"]["Retryable"], retryable, "{failure:?}");
        let expected: &[&str] = if wrote {
            &["DescribeUser", "UpdateUser"]
        } else {
            &["DescribeUser"]
        };
        assert_eq!(calls_on(&c, &user(name)), expected, "{failure:?}");
        // A failed write still shows what it would have changed.
        assert_eq!(o.get("Request").is_some(), wrote, "{failure:?}");
        assert_eq!(chroot_dir(&c, &user(name)), None, "{failure:?}");
    }
}

#[tokio::test]
async fn a_target_the_server_cannot_hold_is_refused_before_any_read() {
    let c = chroot();
    for event in [
        json!({"Action": "UpdateAccess", "ServerId": SERVER, "ExternalId": FINANCE_SID,
               "HomeDirectory": "/acme-sftp/groups/finance/${transfer:UserName}"}),
        json!({"Action": "UpdateUser", "ServerId": DIRECTORY_SERVER, "UserName": "alice"}),
        json!({"Action": "UpdateAccess", "ServerId": SERVER, "ExternalId": FINANCE_SID,
               "HomeDirectory": "/acme-sftp/groups/finance/${transfer:UserName}"}),
    ] {
        let o = invoke(&c, event.clone()).await;
        assert_eq!(o["Error"]["Code"], "ValidationFailed", "{event}");
        assert_eq!(error_fields(&o), ["ServerId"], "{event}");
    }
    assert!(c.ports.transfer.calls().is_empty(), "no read of the target");
    let described: Vec<String> = c
        .ports
        .transfer
        .server_calls()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(described, [SERVER, DIRECTORY_SERVER], "once per server");
}
