//! The admin API behind API Gateway (REST payload 1.0, HTTP API payload 2.0): every
//! answer is the proxy-integration response in the request's own format, its body the
//! JSON result or read-back.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::*;
use crate::sources::apigw;
use crate::transfer::{Reply, Transfer, TransferError, TransferErrorKind, UpdateRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V1,
    V2,
}
use Format::{V1, V2};

/// A proxy request: `query` as decoded pairs, `body` as its raw text.
fn request(
    format: Format,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    match format {
        V1 => {
            let params: Map<String, Value> = query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect();
            json!({
                "resource": "/{proxy+}",
                "path": path,
                "httpMethod": method,
                "headers": {"Content-Type": "application/json"},
                "queryStringParameters": if params.is_empty() { Value::Null } else { params.into() },
                "pathParameters": {"proxy": path.trim_start_matches('/')},
                "requestContext": {
                    "stage": "prod",
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                    "httpMethod": method,
                    "identity": {"userArn": "arn:aws:sts::111122223333:assumed-role/platform-admin/alex"},
                },
                "body": body,
                "isBase64Encoded": false,
            })
        }
        V2 => {
            let raw_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": path,
                "rawQueryString": raw_query.join("&"),
                "headers": {"content-type": "application/json"},
                "requestContext": {
                    "stage": "$default",
                    "requestId": "JKJaXmPLvHcESHA=",
                    "http": {"method": method, "path": path},
                },
                "body": body,
                "isBase64Encoded": false,
            })
        }
    }
}

fn put(format: Format, path: &str, body: Value) -> Value {
    request(format, "PUT", path, &[], Some(&body.to_string()))
}

fn get(format: Format, path: &str) -> Value {
    request(format, "GET", path, &[], None)
}

fn user_path(server: &str, name: &str) -> String {
    format!("/servers/{server}/users/{name}")
}

/// A proxy-integration response, checked for its format's shape.
#[derive(Debug)]
struct Http {
    status: u64,
    headers: Map<String, Value>,
    body: Value,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}

async fn call<T: Transfer>(c: &Chroot<T>, event: Value) -> Http {
    let v2 = event.get("version").is_some();
    let reply = apigw::handle(c, event, &invocation())
        .await
        .expect("API Gateway always gets an HTTP answer");
    assert_eq!(reply["isBase64Encoded"], false);
    let headers = reply["headers"].as_object().expect("headers").clone();
    assert_eq!(headers["Content-Type"], "application/json");
    assert_eq!(headers["Cache-Control"], "no-store");
    if v2 {
        assert!(reply.get("multiValueHeaders").is_none(), "{reply}");
    } else {
        let multi: Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.clone(), json!([v])))
            .collect();
        assert_eq!(reply["multiValueHeaders"], Value::Object(multi));
    }
    let body = reply["body"].as_str().expect("the body is a JSON string");
    Http {
        status: reply["statusCode"].as_u64().expect("statusCode"),
        headers,
        body: serde_json::from_str(body).expect("the body is JSON"),
    }
}

#[tokio::test]
async fn put_applies_the_chroot_then_answers_unchanged() {
    let alice = user("alice");
    let finance = access(FINANCE_SID);
    let cases = [
        (
            V1,
            user_path(SERVER, "alice"),
            json!({"HomeDirectory": "/acme-sftp/home/alice", "Role": USER_ROLE,
                   "PosixProfile": {"Uid": 1001, "Gid": 1001, "SecondaryGids": [2001]}}),
            &alice,
        ),
        (
            V2,
            user_path(SERVER, "alice"),
            // The body may repeat the path's ids.
            json!({"ServerId": SERVER, "UserName": "alice"}),
            &alice,
        ),
        (
            V2,
            format!("/servers/{DIRECTORY_SERVER}/accesses/{FINANCE_SID}"),
            json!({"HomeDirectory": "/acme-sftp/groups/finance/${transfer:UserName}"}),
            &finance,
        ),
    ];
    for (format, path, body, t) in cases {
        let c = chroot();
        let (action, describe) = match t.kind() {
            crate::domain::TargetKind::User => ("UpdateUser", "DescribeUser"),
            crate::domain::TargetKind::Access => ("UpdateAccess", "DescribeAccess"),
        };
        let first = call(&c, put(format, &path, body.clone())).await;
        assert_eq!(first.status, 200, "{format:?} {path}: {:?}", first.body);
        assert_eq!(first.header("Retry-After"), None);
        assert_eq!(first.body["Status"], "Updated");
        assert_eq!(first.body["Action"], action);
        assert_eq!(first.body["ServerId"], t.server.as_str());
        assert!(first.body["Request"]["HomeDirectoryMappings"].is_array());
        assert_eq!(calls_on(&c, t), [describe, action]);
        assert!(chroot_dir(&c, t).is_some());

        let second = call(&c, put(format, &path, body)).await;
        assert_eq!(second.status, 200);
        assert_eq!(second.body["Status"], "Unchanged");
        assert_eq!(calls_on(&c, t), [describe, action, describe]);
    }
}

#[tokio::test]
async fn dry_run_plans_without_writing() {
    for (format, value) in [(V1, "true"), (V2, "true"), (V2, ""), (V1, "TRUE")] {
        let c = chroot();
        let event = request(
            format,
            "PUT",
            &user_path(SERVER, "carol"),
            &[("dryRun", value)],
            Some(r#"{"HomeDirectory": "/acme-sftp/home/carol"}"#),
        );
        let http = call(&c, event).await;
        assert_eq!(http.status, 200, "{format:?} {value:?}");
        assert_eq!(http.body["Status"], "Planned");
        assert_eq!(
            http.body["Request"]["HomeDirectoryMappings"],
            json!([{"Entry": "/", "Target": "/acme-sftp/home/carol"}])
        );
        assert_eq!(calls_on(&c, &user("carol")), ["DescribeUser"]);
        assert_eq!(c.ports.transfer.writes(), 0);
    }
}

#[tokio::test]
async fn invalid_requests_are_400_listing_every_field_without_a_call() {
    let c = chroot();
    let alice = user_path(SERVER, "alice");
    let cases: Vec<(Value, &[&str])> = vec![
        (
            put(
                V1,
                &user_path("s-123", "-alice"),
                json!({"HomeDirectory": "/acme-sftp/home/../bob", "HomeDirectoryType": "PATH",
                       "PosixProfile": {"Uid": -1, "Gid": 1001}}),
            ),
            &[
                "HomeDirectoryType",
                "ServerId",
                "UserName",
                "HomeDirectory",
                "PosixProfile.Uid",
            ],
        ),
        (
            request(
                V2,
                "PUT",
                &alice,
                &[("dryRun", "maybe")],
                Some(r#"{"UserName": "bob", "DryRun": true}"#),
            ),
            &["UserName", "DryRun", "dryRun"],
        ),
        (
            // Problems found by the source join the core's, before them.
            put(
                V2,
                &alice,
                json!({"ServerId": FOREIGN_SERVER, "Role": "admin"}),
            ),
            &["ServerId", "Role"],
        ),
        (
            request(V1, "PUT", &alice, &[], Some("{\"HomeDirectory\": ")),
            &["body"],
        ),
        (
            request(V2, "PUT", &user_path("s-123", "alice"), &[], Some("[1]")),
            &["body", "ServerId"],
        ),
        (
            get(V2, &user_path("s-123", "-alice")),
            &["ServerId", "UserName"],
        ),
    ];
    for (event, fields) in cases {
        let http = call(&c, event.clone()).await;
        assert_eq!(http.status, 400, "{event}: {:?}", http.body);
        assert_eq!(http.body["Status"], "Failed");
        assert_eq!(http.body["Error"]["Code"], "ValidationFailed");
        assert_eq!(error_fields(&http.body), fields, "{event}");
    }
    assert!(c.ports.transfer.calls().is_empty());
}

#[tokio::test]
async fn http_refusals_say_what_was_wrong_with_the_request() {
    let c = chroot();
    let alice = user_path(SERVER, "alice");
    let mut text = put(V1, &alice, json!({}));
    text["headers"] = json!({"Content-Type": "text/plain"});
    let huge = format!(r#"{{"HomeDirectory": "{}"}}"#, "a".repeat(20_000));
    // (event, status, Allow header)
    let cases = [
        (
            request(V1, "DELETE", &alice, &[], None),
            405,
            Some("GET, PUT"),
        ),
        (
            request(V2, "PATCH", &alice, &[], Some("{}")),
            405,
            Some("GET, PUT"),
        ),
        (text, 415, None),
        (request(V2, "PUT", &alice, &[], Some(&huge)), 413, None),
    ];
    for (event, status, allow) in cases {
        let http = call(&c, event.clone()).await;
        assert_eq!(http.status, status, "{event}: {:?}", http.body);
        assert_eq!(http.header("Allow"), allow);
        assert_eq!(http.body["Status"], "Failed");
        assert_eq!(http.body["Error"]["Code"], "ValidationFailed");
        assert_eq!(http.body["UserName"], "alice");
    }
    assert!(c.ports.transfer.calls().is_empty());
}

#[tokio::test]
async fn guardrails_are_403_for_writes_and_reads() {
    let c = chroot();
    let foreign = user_path(FOREIGN_SERVER, "alice");
    let cases: [(Value, &[&str]); 3] = [
        (
            put(
                V1,
                &foreign,
                json!({"HomeDirectory": "/etc/alice",
                       "Role": "arn:aws:iam::111122223333:role/admin"}),
            ),
            &["ServerId", "HomeDirectory", "Role"],
        ),
        (
            put(
                V2,
                &user_path(SERVER, "alice"),
                json!({"HomeDirectory": "/acme-sftp"}),
            ),
            &["HomeDirectory"],
        ),
        (get(V2, &foreign), &["ServerId"]),
    ];
    for (event, fields) in cases {
        let http = call(&c, event.clone()).await;
        assert_eq!(http.status, 403, "{event}: {:?}", http.body);
        assert_eq!(http.body["Error"]["Code"], "NotAllowed");
        assert_eq!(error_fields(&http.body), fields, "{event}");
    }
    assert!(c.ports.transfer.calls().is_empty());
}

#[tokio::test]
async fn unknown_users_and_routes_are_404() {
    let c = chroot();
    // The path segment is decoded once: the user is dave@example.com.
    let dave = "/servers/s-0123456789abcdef0/users/dave%40example.com";
    for event in [
        put(V2, dave, json!({"HomeDirectory": "/acme-sftp/home/dave"})),
        get(V1, dave),
    ] {
        let http = call(&c, event).await;
        assert_eq!(http.status, 404, "{:?}", http.body);
        assert_eq!(http.body["Error"]["Code"], "NotFound");
        assert_eq!(http.body["UserName"], "dave@example.com");
    }
    assert_eq!(
        calls_on(&c, &user("dave@example.com")),
        ["DescribeUser", "DescribeUser"]
    );
    for path in ["/hello", "/servers/s-0123456789abcdef0/groups/staff"] {
        let http = call(&c, get(V2, path)).await;
        assert_eq!(http.status, 404, "{path}");
        assert_eq!(http.body["Error"]["Code"], "NotFound");
        assert!(
            http.body["Error"]["Message"]
                .as_str()
                .unwrap()
                .starts_with("no route for GET "),
            "{:?}",
            http.body
        );
    }
    assert_eq!(
        c.ports.transfer.calls().len(),
        2,
        "no call for an unknown route"
    );
}

#[tokio::test]
async fn transfer_failures_have_their_status_and_retry_after() {
    // (kind, status, Retry-After)
    let cases = [
        (TransferErrorKind::NotFound, 404, None),
        (TransferErrorKind::Throttled, 429, Some("1")),
        (TransferErrorKind::Unavailable, 503, Some("1")),
        (TransferErrorKind::Rejected, 502, None),
        (TransferErrorKind::InvalidRequest, 400, None),
    ];
    for (kind, status, retry_after) in cases {
        let c = chroot();
        c.ports.transfer.fail_next_on("UpdateUser", kind);
        let http = call(&c, put(V2, &user_path(SERVER, "alice"), json!({}))).await;
        assert_eq!(http.status, status, "{kind:?}: {:?}", http.body);
        assert_eq!(http.header("Retry-After"), retry_after, "{kind:?}");
        assert_eq!(http.body["Status"], "Failed");
        assert_eq!(http.body["Error"]["Retryable"], retry_after.is_some());
        assert_eq!(calls_on(&c, &user("alice")), ["DescribeUser", "UpdateUser"]);
    }
    // A read is throttled the same way.
    let c = chroot();
    c.ports.transfer.fail_next(TransferErrorKind::Throttled);
    let http = call(&c, get(V1, &user_path(SERVER, "bob"))).await;
    assert_eq!(http.status, 429);
    assert_eq!(http.header("Retry-After"), Some("1"));
}

/// The fake with Transfer's own wait hint on every failure (the SDK reads it from
/// the response; the fake has none).
struct Hinted(MemoryTransfer);

fn hint(mut e: TransferError) -> TransferError {
    e.retry_after = Some(Duration::from_secs(7));
    e
}

impl Transfer for Hinted {
    async fn describe(&self, target: &Target) -> Result<Reply<LiveHome>, TransferError> {
        self.0.describe(target).await.map_err(hint)
    }
    async fn update(&self, request: &UpdateRequest) -> Result<Reply<()>, TransferError> {
        self.0.update(request).await.map_err(hint)
    }
    async fn describe_server(
        &self,
        server: &crate::domain::ServerId,
    ) -> Result<Reply<crate::transfer::ServerFacts>, TransferError> {
        self.0.describe_server(server).await.map_err(hint)
    }
    async fn list_servers(
        &self,
        next_token: Option<&str>,
    ) -> Result<Reply<crate::transfer::ServerIds>, TransferError> {
        self.0.list_servers(next_token).await.map_err(hint)
    }
    async fn list(
        &self,
        server: &crate::domain::ServerId,
        kind: crate::domain::TargetKind,
        next_token: Option<&str>,
    ) -> Result<Reply<crate::transfer::Page>, TransferError> {
        self.0.list(server, kind, next_token).await.map_err(hint)
    }
}

#[tokio::test]
async fn retry_after_is_transfers_own_hint_when_known() {
    let c = Chroot::new(config(&[]), Hinted(seed()));
    c.ports
        .transfer
        .0
        .fail_next_on("UpdateUser", TransferErrorKind::Throttled);
    let http = call(&c, put(V1, &user_path(SERVER, "alice"), json!({}))).await;
    assert_eq!(http.status, 429);
    assert_eq!(http.header("Retry-After"), Some("7"));
    assert_eq!(http.body["Error"]["Code"], "Throttled");
    assert_eq!(http.body["Error"]["RetryAfterSeconds"], 7);
}

#[tokio::test]
async fn get_reads_back_the_live_settings() {
    let cases = [
        (
            V1,
            user_path(SERVER, "alice"),
            json!({"ServerId": SERVER, "UserName": "alice",
                   "Chrooted": false, "ChrootTarget": null,
                   "HomeDirectory": "/acme-sftp/home/alice", "HomeDirectoryType": "PATH",
                   "HomeDirectoryMappings": [], "Role": USER_ROLE, "RequestId": "memory-1"}),
        ),
        (
            // A REST API on its execute-api address puts the stage in the path.
            V1,
            format!("/prod{}", user_path(SERVER, "bob")),
            json!({"ServerId": SERVER, "UserName": "bob",
                   "Chrooted": true, "ChrootTarget": "/acme-sftp/home/bob",
                   "HomeDirectory": "/", "HomeDirectoryType": "LOGICAL",
                   "HomeDirectoryMappings": [{"Entry": "/", "Target": "/acme-sftp/home/bob"}],
                   "Role": USER_ROLE, "RequestId": "memory-1"}),
        ),
        (
            V2,
            format!("/servers/{DIRECTORY_SERVER}/accesses/{FINANCE_SID}"),
            json!({"ServerId": DIRECTORY_SERVER, "ExternalId": FINANCE_SID,
                   "Chrooted": false, "ChrootTarget": null,
                   "HomeDirectory": "/acme-sftp/groups/finance", "HomeDirectoryType": "PATH",
                   "HomeDirectoryMappings": [], "Role": USER_ROLE, "RequestId": "memory-1"}),
        ),
    ];
    for (format, path, expected) in cases {
        let c = chroot();
        let http = call(&c, get(format, &path)).await;
        assert_eq!(http.status, 200, "{path}");
        assert_eq!(http.body, expected, "{path}");
        assert_eq!(c.ports.transfer.calls().len(), 1, "one read");
        assert_eq!(c.ports.transfer.writes(), 0);
    }

    // After a PUT the read-back shows the chroot.
    let c = chroot();
    let path = user_path(SERVER, "carol");
    assert_eq!(call(&c, put(V2, &path, json!({}))).await.status, 200);
    let http = call(&c, get(V2, &path)).await;
    assert_eq!(http.body["Chrooted"], true);
    assert_eq!(http.body["ChrootTarget"], "/acme-sftp/home/carol");
}
