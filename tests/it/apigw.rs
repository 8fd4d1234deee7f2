//! The API Gateway endpoint end to end: real REST (v1) and HTTP API (v2) envelopes with
//! our paths and bodies → handler → core → real SDK → Transfer stand-in on loopback.
//! Every test asserts the status code, the headers and the JSON body.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use transfer_standin::{Fault, FaultRule};

const USERS: &str = "/servers/s-0123456789abcdef0/users";
const ALICE: &str = "/servers/s-0123456789abcdef0/users/alice";

/// A proxy-integration reply, parsed.
#[derive(Debug)]
struct Http {
    status: u64,
    headers: Value,
    body: Value,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    fn code(&self) -> &str {
        self.body["Error"]["Code"].as_str().unwrap_or("")
    }

    fn fields(&self) -> Vec<&str> {
        self.body["Error"]["Fields"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["Field"].as_str()).collect())
            .unwrap_or_default()
    }

    /// Every reply is JSON, says so, and is never cached.
    fn assert_json(&self) {
        assert_eq!(
            self.header("Content-Type"),
            Some("application/json"),
            "{self:?}"
        );
        assert_eq!(self.header("Cache-Control"), Some("no-store"));
    }

    fn assert_status(&self, status: u64) {
        assert_eq!(self.status, status, "{:#}", self.body);
        self.assert_json();
    }
}

/// `example-apigw-request.json` (REST, stage `testStage`, `Content-Type: application/json`,
/// a stray `?name=me`) with our method, path and body.
fn v1(method: &str, path: &str, body: Option<Value>) -> Value {
    let mut e = envelope("example-apigw-request.json");
    e["httpMethod"] = method.into();
    e["path"] = path.into();
    e["body"] = body.map_or(Value::Null, |b| b.to_string().into());
    e
}

/// `example-apigw-v2-request-iam.json` (HTTP API, `$default` stage, IAM caller, no
/// Content-Type header, a stray query string) with our method, path, query and body.
fn v2(method: &str, path: &str, query: &str, body: Option<Value>) -> Value {
    let mut e = envelope("example-apigw-v2-request-iam.json");
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = path.into();
    e["rawPath"] = path.into();
    e["rawQueryString"] = query.into();
    e["body"] = body.map_or(Value::Null, |b| b.to_string().into());
    e
}

fn v2_with_content_type(method: &str, path: &str, body: &str, content_type: &str) -> Value {
    let mut e = v2(method, path, "", None);
    e["body"] = body.into();
    e["headers"]["content-type"] = content_type.into();
    e
}

async fn call(t: &TestApp, event: Value) -> Http {
    let reply = t.invoke(event).await;
    let body = reply["body"].as_str().expect("body is a string");
    Http {
        status: reply["statusCode"].as_u64().expect("statusCode"),
        headers: reply["headers"].clone(),
        body: serde_json::from_str(body).expect("body is JSON"),
    }
}

fn home(body: &str) -> Value {
    json!({"HomeDirectory": body})
}

#[tokio::test]
async fn v1_put_chroots_a_path_user() {
    let t = spawn_app().await;
    let r = call(&t, event("apigw-v1-put-user.json")).await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Updated");
    assert_eq!(r.body["Action"], "UpdateUser");
    assert_eq!(r.body["UserName"], "alice");
    let changed: Vec<_> = r.body["Changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Field"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
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
    // The result shows exactly the request sent.
    let sent = t.standin.requests();
    assert_eq!(r.body["Request"], sent[1].body);
    // REST replies carry the headers in both maps.
    let raw = t.invoke(event("apigw-v1-put-user.json")).await;
    assert_eq!(
        raw["multiValueHeaders"]["Content-Type"],
        json!(["application/json"])
    );
    assert_eq!(raw["isBase64Encoded"], false);
}

#[tokio::test]
async fn real_v1_envelope_with_our_path_and_body() {
    let t = spawn_app().await;
    let r = call(
        &t,
        v1("PUT", ALICE, Some(json!({"HomeDirectory": "/acme-sftp/home/alice", "Role": "arn:aws:iam::111122223333:role/sftp-finance"}))),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Updated");
    assert_eq!(
        t.standin.user(SERVER, "alice").unwrap()["Role"],
        "arn:aws:iam::111122223333:role/sftp-finance"
    );
}

#[tokio::test]
async fn already_chrooted_user_is_unchanged_with_200() {
    let t = spawn_app().await;
    let r = call(
        &t,
        v2(
            "PUT",
            &format!("{USERS}/bob"),
            "",
            Some(home("/acme-sftp/home/bob")),
        ),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Unchanged");
    assert_eq!(r.body["Changes"], json!([]));
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn dry_run_plans_with_200_and_writes_nothing() {
    let t = spawn_app().await;
    let r = call(&t, event("apigw-v2-dry-run.json")).await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Planned");
    assert_eq!(
        r.body["Request"]["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/carol"}])
    );
    assert_eq!(t.writes(), 0);
    assert_eq!(
        t.standin.user(SERVER, "carol").unwrap()["HomeDirectoryType"],
        "PATH"
    );

    // REST: API Gateway hands over the decoded multi-value map; a bare `?dryRun` is true.
    for values in [json!(["true"]), json!([""]), json!(["TRUE", "true"])] {
        let mut e = v1("PUT", ALICE, Some(json!({})));
        e["multiValueQueryStringParameters"] = json!({"dryRun": values});
        let r = call(&t, e).await;
        r.assert_status(200);
        assert_eq!(r.body["Status"], "Planned", "{values}");
    }
    let r = call(&t, v2("PUT", ALICE, "dryRun=false&x=1", Some(json!({})))).await;
    assert_eq!(r.body["Status"], "Updated");

    for query in ["dryRun=maybe", "dryRun=true&dryRun=false"] {
        let r = call(
            &t,
            v2("PUT", &format!("{USERS}/carol"), query, Some(json!({}))),
        )
        .await;
        r.assert_status(400);
        assert_eq!(r.fields(), ["dryRun"], "{query}");
    }
}

#[tokio::test]
async fn every_invalid_field_is_listed_with_400_and_nothing_is_called() {
    let t = spawn_app().await;
    let r = call(&t, event("apigw-v1-invalid.json")).await;
    r.assert_status(400);
    assert_eq!(r.code(), "ValidationFailed");
    assert_eq!(r.body["Status"], "Failed");
    assert_eq!(r.body["Error"]["Retryable"], false);
    let fields = r.fields();
    for expected in [
        "HomeDirectoryType",
        "ServerId",
        "UserName",
        "HomeDirectory",
        "PosixProfile.Uid",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn each_validation_class_is_a_400_naming_the_field() {
    let t = spawn_app().await;
    let s = SERVER;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        // Path parameters.
        (
            v2("PUT", "/servers/s-1/users/alice", "", None),
            vec!["ServerId"],
        ),
        (
            v2("PUT", &format!("{USERS}/al"), "", None),
            vec!["UserName"],
        ),
        (
            v2("GET", &format!("/servers/{s}/accesses/S-2-1"), "", None),
            vec!["ExternalId"],
        ),
        // Body fields, with the path's problems in the same answer.
        (
            v2(
                "PUT",
                "/servers/s-1/users/al",
                "",
                Some(json!({"Role": "not-an-arn"})),
            ),
            vec!["ServerId", "UserName", "Role"],
        ),
        (
            v2(
                "PUT",
                ALICE,
                "",
                Some(json!({"PosixProfile": {"Uid": "x"}})),
            ),
            vec!["PosixProfile.Uid", "PosixProfile.Gid"],
        ),
        (
            v2("PUT", ALICE, "", Some(json!({"Policy": 5}))),
            vec!["Policy"],
        ),
        (
            v2("PUT", ALICE, "", Some(json!({"Colour": "blue"}))),
            vec!["Colour"],
        ),
        (
            v2("PUT", ALICE, "", Some(json!({"HomeDirectoryMappings": []}))),
            vec!["HomeDirectoryMappings"],
        ),
        (
            v2("PUT", ALICE, "", Some(json!({"Action": "UpdateAccess"}))),
            vec!["Action"],
        ),
        // The body may repeat the path's ids but not contradict them, nor set DryRun.
        (
            v2(
                "PUT",
                ALICE,
                "",
                Some(json!({"ServerId": "s-00000000000000000"})),
            ),
            vec!["ServerId"],
        ),
        (
            v2("PUT", ALICE, "", Some(json!({"UserName": "bob"}))),
            vec!["UserName"],
        ),
        (
            v2("PUT", ALICE, "", Some(json!({"DryRun": true}))),
            vec!["DryRun"],
        ),
        (
            v2("PUT", ALICE, "", Some(json!({"ExternalId": FINANCE_SID}))),
            vec!["ExternalId"],
        ),
        // An access needs its target.
        (
            v2(
                "PUT",
                &format!("/servers/{DIRECTORY_SERVER}/accesses/{FINANCE_SID}"),
                "",
                None,
            ),
            vec!["HomeDirectory"],
        ),
    ];
    for (e, expected) in cases {
        let path = e["rawPath"].clone();
        let r = call(&t, e).await;
        r.assert_status(400);
        assert_eq!(r.code(), "ValidationFailed");
        assert_eq!(r.fields(), expected, "{path}");
    }
    // Repeating the path's own ids is fine.
    let r = call(
        &t,
        v2(
            "PUT",
            ALICE,
            "",
            Some(json!({"ServerId": SERVER, "UserName": "alice"})),
        ),
    )
    .await;
    r.assert_status(200);
    assert_eq!(t.writes(), 1, "only the last request wrote");
}

#[tokio::test]
async fn bad_json_non_json_and_oversized_bodies() {
    let t = spawn_app().await;
    // Malformed JSON (declared JSON, or undeclared): 400 on the body, plus any bad path id.
    let r = call(
        &t,
        v1("PUT", ALICE, None).pipe(|mut e| {
            e["body"] = "{\"HomeDirectory\": ".into();
            e
        }),
    )
    .await;
    r.assert_status(400);
    assert_eq!(r.fields(), ["body"]);
    assert!(
        r.body["Error"]["Fields"][0]["Message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let r = call(
        &t,
        v2_with_content_type("PUT", &format!("{USERS}/x"), "nope", "application/json"),
    )
    .await;
    r.assert_status(400);
    assert_eq!(r.fields(), ["body", "UserName"]);
    let r = call(
        &t,
        v2("PUT", ALICE, "", Some(json!(["/acme-sftp/home/alice"]))),
    )
    .await;
    r.assert_status(400);
    assert_eq!(r.fields(), ["body"]);

    // Declared as something else: 415.
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = call(
            &t,
            v2_with_content_type("PUT", ALICE, "HomeDirectory=/x", ct),
        )
        .await;
        r.assert_status(415);
        assert_eq!(r.code(), "ValidationFailed");
        assert!(
            r.body["Error"]["Message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    let r = call(
        &t,
        v2_with_content_type("PUT", ALICE, "{}", "application/json; charset=utf-8"),
    )
    .await;
    r.assert_status(200);

    // Over 16 KiB: 413, whether or not API Gateway base64-encoded it.
    let big = json!({"HomeDirectory": "/acme-sftp/home/alice", "Policy": "x".repeat(17 * 1024)});
    let r = call(&t, v2("PUT", ALICE, "", Some(big.clone()))).await;
    r.assert_status(413);
    assert_eq!(r.fields(), ["body"]);
    let mut e = v2("PUT", ALICE, "", None);
    e["body"] = STANDARD.encode(big.to_string()).into();
    e["isBase64Encoded"] = true.into();
    call(&t, e).await.assert_status(413);
    assert_eq!(
        t.standin.calls("UpdateUser"),
        1,
        "only the charset request wrote"
    );
}

#[tokio::test]
async fn base64_encoded_bodies_are_decoded() {
    let t = spawn_app().await;
    let mut e = v2("PUT", ALICE, "", None);
    e["body"] = STANDARD
        .encode(home("/acme-sftp/home/alice").to_string())
        .into();
    e["isBase64Encoded"] = true.into();
    let r = call(&t, e).await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Updated");

    let mut e = v2("PUT", ALICE, "", None);
    e["body"] = "!!not base64!!".into();
    e["isBase64Encoded"] = true.into();
    let r = call(&t, e).await;
    r.assert_status(400);
    assert_eq!(r.fields(), ["body"]);
}

#[tokio::test]
async fn guardrails_answer_403() {
    let t = spawn_app().await;
    let r = call(
        &t,
        v2(
            "PUT",
            ALICE,
            "",
            Some(json!({
        "HomeDirectory": "/acme-sftp/home2/alice",
        "Role": "arn:aws:iam::111122223333:role/admin"})),
        ),
    )
    .await;
    r.assert_status(403);
    assert_eq!(r.code(), "NotAllowed");
    assert_eq!(r.fields(), ["HomeDirectory", "Role"]);

    // A server outside ALLOWED_SERVER_IDS, for a write and for a read.
    for method in ["PUT", "GET"] {
        let r = call(
            &t,
            v1(method, "/servers/s-99999999999999999/users/alice", None),
        )
        .await;
        r.assert_status(403);
        assert_eq!(r.fields(), ["ServerId"], "{method}");
    }
    // A home equal to a root would expose every other home.
    let r = call(&t, v2("PUT", ALICE, "", Some(home("/acme-sftp/home")))).await;
    r.assert_status(403);
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn missing_user_access_and_server_are_404() {
    let t = spawn_app_with(&[(
        "ALLOWED_SERVER_IDS",
        "s-0123456789abcdef0,s-0123456789abcdef1,s-11111111111111111",
    )])
    .await;
    for e in [
        v2("PUT", &format!("{USERS}/nobody"), "", None),
        v2("GET", &format!("{USERS}/nobody"), "", None),
        v1(
            "PUT",
            &format!("/servers/{DIRECTORY_SERVER}/accesses/S-1-5-21-9"),
            Some(home("/acme-sftp/groups/x")),
        ),
        v1("GET", "/servers/s-11111111111111111/users/alice", None),
    ] {
        let r = call(&t, e).await;
        r.assert_status(404);
        assert_eq!(r.code(), "NotFound");
        assert!(
            r.body["RequestId"]
                .as_str()
                .is_some_and(|id| id.starts_with("standin-"))
        );
    }
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn throttled_after_retries_is_429_with_retry_after() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, 10).on("UpdateUser"));
    let r = call(&t, event("apigw-v1-put-user.json")).await;
    r.assert_status(429);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert_eq!(r.code(), "Throttled");
    assert_eq!(r.body["Error"]["Retryable"], true);
    assert_eq!(r.body["Error"]["RetryAfterSeconds"], 1);
    assert_eq!(t.standin.calls("UpdateUser"), 3, "the SDK retried first");

    // A throttled read says nothing about when: the documented default.
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, 10).on("DescribeUser"));
    let r = call(&t, event("apigw-v2-get-user.json")).await;
    r.assert_status(429);
    assert_eq!(r.header("Retry-After"), Some("1"));
}

#[tokio::test]
async fn upstream_unavailable_is_503_without_internals() {
    for fault in [Fault::Status(503), Fault::Status(500), Fault::Drop] {
        let t = spawn_app().await;
        t.standin
            .add_fault(FaultRule::new(fault.clone(), u32::MAX).on("UpdateUser"));
        let r = call(&t, event("apigw-v2-put-user.json")).await;
        r.assert_status(503);
        assert_eq!(r.header("Retry-After"), Some("1"));
        assert_eq!(r.code(), "Upstream");
        assert_eq!(r.body["Error"]["Retryable"], true);
        let text = r.body.to_string();
        for internal in INTERNALS {
            assert!(!text.contains(internal), "{fault:?}: {internal} in {text}");
        }
    }
}

#[tokio::test]
async fn upstream_refusal_that_retrying_cannot_fix_is_502() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::Status(403), u32::MAX).on("UpdateUser"));
    let r = call(&t, event("apigw-v1-put-user.json")).await;
    r.assert_status(502);
    assert_eq!(r.header("Retry-After"), None);
    assert_eq!(r.code(), "Upstream");
    assert_eq!(r.body["Error"]["Retryable"], false);
    assert_eq!(t.standin.calls("UpdateUser"), 1, "not retried");
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let t = spawn_app().await;
    for method in ["POST", "DELETE", "PATCH", "HEAD"] {
        let r = call(&t, v2(method, ALICE, "", Some(json!({})))).await;
        r.assert_status(405);
        assert_eq!(r.header("Allow"), Some("GET, PUT"), "{method}");
        assert_eq!(r.body["Status"], "Failed");
        assert!(
            r.body["Error"]["Message"]
                .as_str()
                .unwrap()
                .contains(method)
        );
    }
    let r = call(
        &t,
        v1(
            "DELETE",
            &format!("/servers/{SERVER}/accesses/{FINANCE_SID}"),
            None,
        ),
    )
    .await;
    r.assert_status(405);
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn unknown_route_is_404_naming_the_routes() {
    let t = spawn_app().await;
    // The envelopes' own paths, and near misses.
    let paths = [
        "/hello/world",
        "/",
        "/servers",
        &format!("/servers/{SERVER}/users"),
        &format!("{ALICE}/keys"),
    ];
    for path in paths {
        for e in [v1("PUT", path, Some(json!({}))), v2("GET", path, "", None)] {
            let r = call(&t, e).await;
            r.assert_status(404);
            assert_eq!(r.code(), "NotFound");
            let message = r.body["Error"]["Message"].as_str().unwrap();
            assert!(
                message.contains("/servers/{ServerId}/users/{UserName}"),
                "{message}"
            );
            assert!(
                message.contains("/servers/{ServerId}/accesses/{ExternalId}"),
                "{message}"
            );
        }
    }
    let r = call(&t, envelope("example-apigw-request.json")).await;
    r.assert_status(404);
    assert!(t.standin.requests().is_empty());
}

#[tokio::test]
async fn encoded_user_names_are_decoded_once() {
    let t = spawn_app().await;
    let r = call(&t, event("apigw-v2-put-user.json")).await;
    r.assert_status(200);
    assert_eq!(r.body["UserName"], "dave@example.com");
    assert_eq!(r.body["Status"], "Updated");
    assert_eq!(
        t.standin.user(SERVER, "dave@example.com").unwrap()["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/dave"}])
    );
    let r = call(&t, v1("GET", &format!("{USERS}/dave%40example.com"), None)).await;
    r.assert_status(200);
    assert_eq!(r.body["UserName"], "dave@example.com");
    assert_eq!(r.body["Chrooted"], true);

    // An encoded slash is part of the name (so it is invalid), never a new segment.
    let r = call(&t, v2("PUT", &format!("{USERS}/alice%2Fbob"), "", None)).await;
    r.assert_status(400);
    assert_eq!(r.fields(), ["UserName"]);
    // Decoded once only: %2540 is the text "%40", not "@".
    let r = call(
        &t,
        v2("GET", &format!("{USERS}/dave%2540example.com"), "", None),
    )
    .await;
    r.assert_status(400);
    assert_eq!(r.fields(), ["UserName"]);
}

#[tokio::test]
async fn stage_prefixes_are_stripped() {
    let t = spawn_app().await;
    // HTTP API on a named stage: rawPath starts with the stage.
    let mut e = v2("GET", &format!("/prod{ALICE}"), "", None);
    e["requestContext"]["stage"] = "prod".into();
    let r = call(&t, e).await;
    r.assert_status(200);
    assert_eq!(r.body["UserName"], "alice");
    // REST with the stage in the path (`testStage` in the real envelope).
    let r = call(
        &t,
        v1(
            "PUT",
            &format!("/testStage{ALICE}"),
            Some(home("/acme-sftp/home/alice")),
        ),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Updated");
    // Another leading segment is not a stage.
    let r = call(&t, v1("GET", &format!("/other{ALICE}"), None)).await;
    r.assert_status(404);
}

#[tokio::test]
async fn explicit_route_parameters_stand_in_for_a_path_that_does_not_match() {
    let t = spawn_app().await;
    // A REST API mapped under a base path of a custom domain: the path carries the
    // mapping, `resource` and `pathParameters` the route API Gateway matched.
    let mut e = v1(
        "GET",
        &format!("/chroot/v1{USERS}/dave%40example.com"),
        None,
    );
    e["resource"] = "/servers/{ServerId}/users/{UserName}".into();
    e["pathParameters"] = json!({"ServerId": SERVER, "UserName": "dave%40example.com"});
    let r = call(&t, e).await;
    r.assert_status(200);
    assert_eq!(r.body["UserName"], "dave@example.com");
    // HTTP API: the route key names the route.
    let mut e = v2("PUT", "/chroot/anything", "", Some(json!({})));
    e["routeKey"] = "PUT /servers/{ServerId}/accesses/{ExternalId}".into();
    e["pathParameters"] = json!({"ServerId": DIRECTORY_SERVER, "ExternalId": FINANCE_SID});
    let r = call(&t, e).await;
    r.assert_status(400);
    assert_eq!(r.fields(), ["HomeDirectory"], "an access needs its target");
}

#[tokio::test]
async fn get_reports_chrooted_false_for_a_path_user_then_true_after_put() {
    let t = spawn_app().await;
    let r = call(&t, event("apigw-v2-get-user.json")).await;
    r.assert_status(200);
    assert_eq!(r.body["Chrooted"], false);
    assert_eq!(r.body["ChrootTarget"], Value::Null);
    assert_eq!(r.body["HomeDirectoryType"], "PATH");
    assert_eq!(r.body["HomeDirectory"], "/acme-sftp/home/alice");
    assert_eq!(r.body["Role"], "arn:aws:iam::111122223333:role/sftp-user");
    assert_eq!(r.body["ServerId"], SERVER);
    assert!(
        r.body.get("Status").is_none(),
        "a read-back is not a write result"
    );
    assert_eq!(t.writes(), 0);

    call(&t, event("apigw-v1-put-user.json"))
        .await
        .assert_status(200);

    let r = call(&t, event("apigw-v2-get-user.json")).await;
    r.assert_status(200);
    assert_eq!(r.body["Chrooted"], true);
    assert_eq!(r.body["ChrootTarget"], "/acme-sftp/home/alice");
    assert_eq!(r.body["HomeDirectoryType"], "LOGICAL");
    assert_eq!(r.body["HomeDirectory"], "/");
    assert_eq!(
        r.body["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/alice"}])
    );
    assert_eq!(
        r.body["PosixProfile"],
        json!({"Uid": 1001, "Gid": 1001, "SecondaryGids": [2001]})
    );
    assert_eq!(t.standin.calls("UpdateUser"), 1, "GETs never write");
}

#[tokio::test]
async fn access_put_and_get() {
    let t = spawn_app().await;
    let path = format!("/servers/{DIRECTORY_SERVER}/accesses/{FINANCE_SID}");
    let r = call(&t, v2("GET", &path, "", None)).await;
    r.assert_status(200);
    assert_eq!(r.body["ExternalId"], FINANCE_SID);
    assert_eq!(r.body["Chrooted"], false);

    let r = call(&t, event("apigw-v1-put-access.json")).await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Updated");
    assert_eq!(r.body["Action"], "UpdateAccess");
    assert_eq!(t.standin.calls("UpdateAccess"), 1);

    let r = call(&t, v2("GET", &path, "", None)).await;
    assert_eq!(r.body["Chrooted"], true);
    assert_eq!(
        r.body["ChrootTarget"],
        "/acme-sftp/groups/finance/${transfer:UserName}"
    );
}

#[tokio::test]
async fn sam_local_envelopes_work_too() {
    let t = spawn_app().await;
    // `sam local start-api` REST: stage `Prod`, body null.
    let mut e = envelope("example-apigw-sam-rest-request.json");
    e["path"] = ALICE.into();
    let r = call(&t, e).await;
    r.assert_status(200);
    assert_eq!(r.body["Chrooted"], false);

    // HTTP API with an empty body: every field is optional, HOME_TEMPLATE gives the home.
    let mut e = envelope("example-apigw-sam-http-request.json");
    e["rawPath"] = ALICE.into();
    e["requestContext"]["http"]["method"] = "PUT".into();
    let r = call(&t, e).await;
    r.assert_status(200);
    assert_eq!(r.body["Status"], "Updated");
    assert_eq!(
        r.body["Request"]["HomeDirectoryMappings"][0]["Target"],
        "/acme-sftp/home/alice"
    );
}

#[tokio::test]
async fn a_request_without_method_or_path_is_400_in_its_format() {
    let t = spawn_app().await;
    let r = call(&t, json!({"requestContext": {}})).await;
    r.assert_status(400);
    assert_eq!(r.code(), "ValidationFailed");
    let r = call(
        &t,
        json!({"version": "2.0", "requestContext": {"http": {}}}),
    )
    .await;
    r.assert_status(400);
}

/// Every log line of this test binary. A global subscriber, because a thread-local one
/// (`set_default`) races with other tests over tracing's per-callsite interest cache
/// and loses lines.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::default());
        // The function's own JSON format (spans included), all levels.
        let subscriber = transfer_chroot::telemetry::json(
            transfer_chroot::telemetry::filter_from(Some("INFO"), None),
            move || LogWriter(logs),
        );
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        logs
    })
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_caller_is_logged_with_each_outcome_and_bodies_are_not() {
    let logs = logs();
    let t = spawn_app().await;
    // Callers and names no other test uses, to pick this test's lines out.
    let caller_v2 = "arn:aws:sts::111122223333:assumed-role/log-test/v2";
    let caller_v1 = "arn:aws:sts::111122223333:assumed-role/log-test/v1";
    let secret = "policy-marker-7f3a";
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": secret, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
    let mut e = v2("PUT", ALICE, "", Some(json!({"Policy": policy})));
    e["requestContext"]["authorizer"]["iam"]["userArn"] = caller_v2.into();
    call(&t, e).await.assert_status(200);
    let mut e = v1("PUT", &format!("{USERS}/-log-test"), None);
    e["requestContext"]["identity"]["userArn"] = caller_v1.into();
    call(&t, e).await.assert_status(400);

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let api = |caller: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "api request" && l["caller"] == caller)
            .unwrap_or_else(|| panic!("no api request line for {caller}"))
    };
    let line = api(caller_v2);
    assert_eq!(line["http_status"], 200);
    assert_eq!(line["http_method"], "PUT");
    assert_eq!(line["route"], "PUT /servers/{ServerId}/users/{UserName}");
    assert_eq!(line["target_resource"], format!("{SERVER}/users/alice"));
    assert_eq!(line["outcome"], "Updated");
    let line = api(caller_v1);
    assert_eq!(line["http_status"], 400);
    assert_eq!(line["error_code"], "ValidationFailed");
    assert!(
        lines.iter().any(|l| l["message"] == "outcome"
            && l["spans"].as_array().is_some_and(|s| s
                .iter()
                .any(|s| s["name"] == "invocation" && s["source"] == "apigw"))
            && l["target_resource"] == format!("{SERVER}/users/-log-test")),
        "the core's outcome line is kept, inside the invocation's span naming its source"
    );
    assert!(!text.contains(secret), "bodies are not logged");
}

#[test]
fn sample_events_are_valid_api_gateway_envelopes() {
    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
    for name in [
        "apigw-v1-put-user.json",
        "apigw-v1-put-access.json",
        "apigw-v1-invalid.json",
    ] {
        let e = event(name);
        let typed: ApiGatewayProxyRequest =
            serde_json::from_value(e.clone()).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(typed.path.as_deref(), e["path"].as_str(), "{name}");
        assert_eq!(
            transfer_chroot::sources::shape(&e),
            transfer_chroot::sources::Shape::ApiGateway
        );
    }
    for name in [
        "apigw-v2-put-user.json",
        "apigw-v2-get-user.json",
        "apigw-v2-dry-run.json",
    ] {
        let e = event(name);
        let typed: ApiGatewayV2httpRequest =
            serde_json::from_value(e.clone()).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(typed.raw_path.as_deref(), e["rawPath"].as_str(), "{name}");
        assert_eq!(
            typed.request_context.http.method.as_str(),
            e["requestContext"]["http"]["method"]
        );
        assert_eq!(
            transfer_chroot::sources::shape(&e),
            transfer_chroot::sources::Shape::ApiGateway
        );
    }
}

/// `value.pipe(f)`: edit an envelope in place within an expression.
trait Pipe: Sized {
    fn pipe(self, f: impl FnOnce(Self) -> Self) -> Self {
        f(self)
    }
}
impl Pipe for Value {}

#[tokio::test]
async fn transfer_slower_than_the_deadline_is_503_before_lambda_stops() {
    let t = spawn_app().await;
    t.standin
        .add_fault(FaultRule::new(Fault::DelayMs(5_000), 2).on("DescribeUser"));
    for name in ["apigw-v1-put-user.json", "apigw-v2-get-user.json"] {
        let started = std::time::Instant::now();
        let reply = t
            .invoke_with_budget(event(name), std::time::Duration::from_millis(1_500))
            .await
            .expect("an HTTP answer");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(1_500),
            "{name}"
        );
        assert_eq!(reply["statusCode"], 503, "{name}: {reply:#}");
        let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["Error"]["Code"], "Upstream", "{name}");
        assert_eq!(body["Error"]["Retryable"], true, "{name}");
    }
    assert_eq!(t.standin.successful_calls("UpdateUser"), 0);
}
