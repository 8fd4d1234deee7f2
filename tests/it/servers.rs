//! Server awareness through the real SDK: `DescribeServer` once per server per
//! execution environment, and commands the server cannot hold refused before any read
//! or write (the stand-in records every call).

use serde_json::{Value, json};
use transfer_chroot::Status;
use transfer_chroot::outcome::ErrorCode;

use crate::common::*;

const EFS_SERVER: &str = "s-0123456789abcdef2";

fn update_user(server: &str, user: &str, home: &str) -> Value {
    json!({"Action": "UpdateUser", "ServerId": server, "UserName": user, "HomeDirectory": home})
}

fn update_access(server: &str, home: &str) -> Value {
    json!({"Action": "UpdateAccess", "ServerId": server, "ExternalId": FINANCE_SID, "HomeDirectory": home})
}

#[tokio::test]
async fn one_describe_server_per_server_per_environment() {
    let t = spawn_cold_app_with(&[]).await;
    for user in ["alice", "bob", "carol", "alice"] {
        t.invoke(update_user(
            SERVER,
            user,
            &format!("/acme-sftp/home/{user}"),
        ))
        .await;
    }
    t.invoke(update_access(DIRECTORY_SERVER, "/acme-sftp/groups/finance"))
        .await;
    t.invoke(update_access(DIRECTORY_SERVER, "/acme-sftp/groups/finance"))
        .await;
    let described: Vec<String> = t
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.operation == "DescribeServer")
        .map(|r| r.body["ServerId"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(described, [SERVER, DIRECTORY_SERVER]);
    // ... and the first command of each paid it before its own read.
    assert_eq!(t.standin.requests()[0].operation, "DescribeServer");
}

#[tokio::test]
async fn a_server_that_is_not_found_is_asked_again() {
    let unknown = "s-00000000000000001";
    let t = spawn_cold_app_with(&[(
        "ALLOWED_SERVER_IDS",
        "s-0123456789abcdef0,s-00000000000000001",
    )])
    .await;
    for _ in 0..2 {
        let out = t
            .outcome(update_user(unknown, "alice", "/acme-sftp/home/alice"))
            .await;
        assert_eq!(out.error_code(), Some(ErrorCode::NotFound), "{out:?}");
    }
    assert_eq!(t.standin.calls("DescribeServer"), 2);
    assert_eq!(t.standin.calls("DescribeUser"), 0);
}

#[tokio::test]
async fn the_wrong_kind_of_target_or_storage_is_refused_without_any_read_or_write() {
    let t = spawn_app().await;
    let cases = [
        // A user on the directory server: it has no users.
        (
            update_user(DIRECTORY_SERVER, "alice", "/acme-sftp/home/alice"),
            "ServerId",
            "AWS_DIRECTORY_SERVICE",
        ),
        // An access on a service-managed server: it has no accesses.
        (
            update_access(SERVER, "/acme-sftp/groups/finance"),
            "ServerId",
            "SERVICE_MANAGED",
        ),
        // An S3 server: the first segment must be a bucket name.
        (
            update_user(SERVER, "alice", "/acme-sftp/home/Alice_Home/x"),
            "",
            "",
        ),
        // An EFS server: the first segment must be a file system id.
        (
            update_user(EFS_SERVER, "erin", "/acme-sftp/home/erin"),
            "HomeDirectory",
            "EFS",
        ),
    ];
    for (command, field, names) in cases {
        let out = t.outcome(command.clone()).await;
        if field.is_empty() {
            // `/acme-sftp/...` is a bucket; only the first segment is judged.
            assert_ne!(
                out.error_code(),
                Some(ErrorCode::ValidationFailed),
                "{out:?}"
            );
            continue;
        }
        let error = out
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{command}: {out:?}"));
        assert_eq!(error.code, ErrorCode::ValidationFailed, "{command}");
        let f = error.fields.iter().find(|f| f.field == field).expect(field);
        assert!(f.message.contains(names), "{command}: {}", f.message);
    }
    let calls: Vec<String> = t
        .standin
        .requests()
        .into_iter()
        .map(|r| r.operation)
        .collect();
    // Only the third case (valid) read and wrote.
    assert_eq!(calls, ["DescribeUser", "UpdateUser"], "{calls:?}");
}

#[tokio::test]
async fn an_efs_user_is_chrooted_on_its_file_system() {
    let t = spawn_app_with(&[(
        "HOME_ROOTS",
        "/acme-sftp/home,/acme-sftp/groups,/fs-0123456789abcdef0/home",
    )])
    .await;
    let out = t
        .outcome(update_user(
            EFS_SERVER,
            "erin",
            "/fs-0123456789abcdef0/home/erin",
        ))
        .await;
    assert_eq!(out.status, Status::Updated, "{out:?}");
    let erin = t.standin.user(EFS_SERVER, "erin").unwrap();
    assert_eq!(
        erin["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/fs-0123456789abcdef0/home/erin"}])
    );
}

#[tokio::test]
async fn reads_through_the_api_are_held_to_the_server_kind_too() {
    let t = spawn_app().await;
    let reply = t
        .invoke(api_get(&format!("/servers/{DIRECTORY_SERVER}/users/alice")))
        .await;
    assert_eq!(reply["statusCode"], 400, "{reply}");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["Error"]["Fields"][0]["Field"], "ServerId");
    assert!(t.standin.requests().is_empty());
}

/// A REST (v1) GET of `path`, in the real envelope.
fn api_get(path: &str) -> Value {
    let mut e = envelope("example-apigw-request.json");
    e["httpMethod"] = "GET".into();
    e["path"] = path.into();
    e["resource"] = "/{proxy+}".into();
    e["pathParameters"] = Value::Null;
    e["requestContext"]["stage"] = "prod".into();
    e["body"] = Value::Null;
    e
}
