//! Hostile input for the SQS, API Gateway, CloudFormation and EventBridge sources
//! (direct commands and whole events: `tests/hostile.rs`), as property tests through
//! `App::dispatch` with the real SDK and the stand-in. Whatever comes in: no panic,
//! always a structured reply of that source's kind (a batch response, an HTTP reply, a
//! CloudFormation response PUT, an outcome or an `Err` carrying one), no Transfer call
//! for invalid input (the stand-in's request log), and nothing sent that Transfer's
//! service model rejects. Then huge batches and bodies.
//!
//! Every generated CloudFormation ResponseURL points at the stand-in's sink on
//! 127.0.0.1 (an origin of `CFN_RESPONSE_ORIGINS` here), or is malformed or refused so
//! that nothing is sent at all (the allowlist itself: `cloudformation_allowlist.rs`).

use std::collections::BTreeSet;
use std::time::Instant;

use crate::common::blocking::{Harness, run};
use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use transfer_chroot::Outcome;
use transfer_chroot::input::COMMAND_FIELDS;
use transfer_standin::{Recorded, ResponsePut};

/// Dispatches `event`; returns the reply (or the invocation error), what Transfer
/// saw and the CloudFormation responses PUT during it.
fn invoke(h: &Harness, event: Value) -> (Result<Value, String>, Vec<Recorded>, Vec<ResponsePut>) {
    let d = h.dispatch(event);
    (d.reply, d.requests, d.responses)
}

/// Nothing we sent was refused by the service model as malformed.
fn model_accepted(requests: &[Recorded]) -> Result<(), TestCaseError> {
    for r in requests {
        prop_assert!(
            !matches!(
                r.error.as_deref(),
                Some("InvalidRequestException" | "SerializationException")
            ),
            "Transfer's model rejected what we sent: {:?}",
            r
        );
    }
    Ok(())
}

/// Hostile fragments: traversal (plain and encoded), separators, NUL, control
/// characters, Unicode look-alikes, direction overrides, zero-width characters.
const POISON: &[&str] = &[
    "..",
    "../..",
    "%2e%2e",
    "%2E%2E",
    "%2e%2e%2f",
    "..%2F..",
    "%2F",
    "%2f",
    "%5C",
    "%00",
    "%",
    "%zz",
    "/",
    "//",
    "\\",
    "..\\..",
    "\0",
    "\r\n",
    "\t",
    " ",
    "\u{FF0E}\u{FF0E}",
    "\u{2215}",
    "\u{2044}",
    "\u{FF0F}",
    "\u{2024}\u{2024}",
    "\u{FE52}",
    "\u{202E}",
    "\u{200B}",
    "\u{0430}",
    "ａ",
    "é",
    "$(id)",
    "`id`",
    "${transfer:UserName}",
    "<script>",
    "'\"",
    "?x=1",
    "#f",
    ";",
    "|",
];

fn poison() -> impl Strategy<Value = String> {
    prop::sample::select(POISON).prop_map(str::to_owned)
}

/// A value that is invalid for the field it is put in: a hostile fragment alone, or
/// over every length limit, or with a fragment in the middle of a valid value that
/// cannot stay valid with it (the fragments that are fine inside a name, such as `..`
/// in `al..ice`, are left out there).
fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        poison(),
        (101usize..2000).prop_map(|n| "a".repeat(n)),
        prop::sample::select(
            POISON
                .iter()
                .copied()
                .filter(|p| !only_dots(p))
                .collect::<Vec<_>>()
        )
        .prop_map(|p| format!("al{p}ice")),
    ]
}

/// A JSON value of any shape, with this file's poison among its leaves.
fn any_json() -> impl Strategy<Value = Value> {
    crate::common::blocking::any_json(poison().boxed())
}

/// A direct command for alice with one field replaced by arbitrary JSON.
fn mutated_command() -> impl Strategy<Value = Value> {
    (prop::sample::select(COMMAND_FIELDS), any_json()).prop_map(|(field, value)| {
        let mut c = event("direct-update-user.json");
        c[field] = value;
        c
    })
}

/// Fragments that are harmless inside a name once decoded (`al..ice`, `al%2e%2eice`
/// are valid user names).
fn only_dots(p: &str) -> bool {
    p.replace("%2e", "")
        .replace("%2E", "")
        .replace('.', "")
        .is_empty()
}

/// Fragments that make a path segment or a role name invalid on their own.
fn segment_poison() -> impl Strategy<Value = String> {
    prop::sample::select(
        POISON
            .iter()
            .copied()
            .filter(|p| !p.chars().all(|c| c == '.' || c == '/'))
            .collect::<Vec<_>>(),
    )
    .prop_map(str::to_owned)
}

/// A direct command for alice that is invalid by construction (one hostile field).
fn invalid_command() -> impl Strategy<Value = (&'static str, Value)> {
    let set = |field: &'static str, v: String| {
        let mut c = event("direct-update-user.json");
        c[field] = v.into();
        (field, c)
    };
    prop_oneof![
        hostile_name().prop_map(move |v| set("ServerId", v)),
        hostile_name().prop_map(move |v| set("UserName", v)),
        // A hostile segment, a traversal, or a path over 1024 bytes.
        prop_oneof![
            segment_poison().prop_map(|p| format!("/acme-sftp/home/{p}/x")),
            prop::sample::select(
                &[
                    "/acme-sftp/home/../../etc",
                    "/acme-sftp/home/./x",
                    "/acme-sftp/home//x"
                ][..]
            )
            .prop_map(str::to_owned),
            (1100usize..3000).prop_map(|n| format!("/acme-sftp/home/{}", "a".repeat(n))),
        ]
        .prop_map(move |v| set("HomeDirectory", v)),
        prop_oneof![
            segment_poison(),
            (65usize..2000).prop_map(|n| "r".repeat(n)),
        ]
        .prop_map(move |v| set("Role", format!("arn:aws:iam::111122223333:role/{v}"))),
    ]
}

// ------------------------------------------------------------------------------ SQS

fn sqs_batch(records: &[(String, String)]) -> Value {
    sqs_event(
        records
            .iter()
            .map(|(id, body)| (id.clone(), Value::String(body.clone()))),
    )
}

/// The reply is a batch response naming only messageIds of the batch.
fn batch_failures(
    reply: &Result<Value, String>,
    ids: &BTreeSet<String>,
) -> Result<BTreeSet<String>, TestCaseError> {
    let reply = reply
        .as_ref()
        .map_err(|e| TestCaseError::fail(format!("the batch failed as a whole: {e}")))?;
    let obj = reply
        .as_object()
        .ok_or_else(|| TestCaseError::fail(format!("not an object: {reply}")))?;
    prop_assert_eq!(obj.len(), 1, "{}", reply);
    let items = reply["batchItemFailures"]
        .as_array()
        .ok_or_else(|| TestCaseError::fail(format!("not a batch response: {reply}")))?;
    let mut out = BTreeSet::new();
    for item in items {
        let id = item["itemIdentifier"]
            .as_str()
            .ok_or_else(|| TestCaseError::fail(format!("{item}")))?;
        prop_assert!(ids.contains(id), "unknown id {}", id);
        out.insert(id.to_owned());
    }
    Ok(out)
}

/// A body: arbitrary text, arbitrary JSON, or a direct command with an arbitrary field.
fn any_body() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        poison(),
        any_json().prop_map(|v| v.to_string()),
        mutated_command().prop_map(|v| v.to_string()),
        // An EventBridge event with arbitrary detail.
        any_json().prop_map(|d| {
            json!({"detail-type": "Directory Group Membership Changed", "detail": d}).to_string()
        }),
    ]
}

/// A body that must be refused: not JSON, not a command or event, or invalid.
fn invalid_body() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_filter("not JSON", |s| serde_json::from_str::<Value>(s).is_err()),
        poison().prop_map(|p| format!("{{\"Action\": \"UpdateUser\", \"UserName\": {p:?}")),
        any_json()
            .prop_filter("no Action, not an event", |v| {
                v.get("Action").is_none() && v.get("detail-type").is_none()
            })
            .prop_map(|v| v.to_string()),
        invalid_command().prop_map(|(_, c)| c.to_string()),
        hostile_name().prop_map(|u| {
            json!({"detail-type": "Directory Group Membership Changed",
                   "detail": {"ServerId": SERVER, "UserName": u, "Groups": ["staff"]}})
            .to_string()
        }),
    ]
}

fn message_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-f0-9-]{1,40}",
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        poison(),
    ]
}

#[test]
fn sqs_invalid_bodies_are_all_reported_without_any_call() {
    let h = Harness::new();
    let records = prop::collection::vec((message_id(), invalid_body()), 1..12);
    run(192, records, |records| {
        let mut records = records;
        // Unique ids, so each reported id names one record.
        for (i, (id, _)) in records.iter_mut().enumerate() {
            id.push_str(&format!("#{i}"));
        }
        let ids: BTreeSet<String> = records.iter().map(|(id, _)| id.clone()).collect();
        let (reply, requests, _) = invoke(&h, sqs_batch(&records));
        let failed = batch_failures(&reply, &ids)?;
        prop_assert_eq!(&failed, &ids, "every invalid record is reported");
        prop_assert!(
            requests.is_empty(),
            "Transfer called for invalid input: {:?}",
            requests
        );
        Ok(())
    });
}

#[test]
fn sqs_arbitrary_bodies_get_a_batch_response_and_nothing_malformed_is_sent() {
    let h = Harness::new();
    let records = prop::collection::vec((message_id(), any_body()), 1..10);
    run(192, records, |records| {
        let ids: BTreeSet<String> = records.iter().map(|(id, _)| id.clone()).collect();
        let (reply, requests, _) = invoke(&h, sqs_batch(&records));
        batch_failures(&reply, &ids)?;
        model_accepted(&requests)?;
        Ok(())
    });
}

#[test]
fn sqs_arbitrary_records_never_panic() {
    // Records of any shape (still marked aws:sqs, so they reach the SQS source): a
    // record without a usable messageId fails the whole batch (documented), anything
    // else gets a batch response.
    let h = Harness::new();
    let record = any_json().prop_map(|mut v| {
        if let Some(o) = v.as_object_mut() {
            o.insert("eventSource".into(), "aws:sqs".into());
            v
        } else {
            json!({"eventSource": "aws:sqs", "messageId": "m", "body": v})
        }
    });
    run(192, prop::collection::vec(record, 1..6), |records| {
        let all_ids = records
            .iter()
            .all(|r| r["messageId"].as_str().is_some_and(|m| !m.is_empty()));
        let ids: BTreeSet<String> = records
            .iter()
            .filter_map(|r| r["messageId"].as_str().map(str::to_owned))
            .collect();
        let (reply, requests, _) = invoke(&h, json!({"Records": records}));
        if all_ids {
            batch_failures(&reply, &ids)?;
        } else {
            let err = reply.expect_err("a record without a messageId fails the batch");
            prop_assert!(err.contains("messageId"), "{}", err);
            prop_assert!(requests.is_empty());
        }
        model_accepted(&requests)?;
        Ok(())
    });
}

#[test]
fn sqs_huge_batches_and_bodies() {
    let h = Harness::new();
    // 10 000 records: every tenth a valid command for one of the demo's users, the rest
    // hostile or invalid. Only the valid ones reach Transfer.
    let users = ["alice", "bob", "carol"];
    let records: Vec<(String, String)> = (0..10_000)
        .map(|i| {
            let body = if i % 10 == 0 {
                let u = users[(i / 10) % users.len()];
                json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": u,
                       "HomeDirectory": format!("/acme-sftp/home/{u}")})
                .to_string()
            } else {
                let u = POISON[i % POISON.len()];
                json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": u}).to_string()
            };
            (format!("m-{i:05}"), body)
        })
        .collect();
    let ids: BTreeSet<String> = records.iter().map(|(id, _)| id.clone()).collect();
    let started = Instant::now();
    let (reply, requests, _) = invoke(&h, sqs_batch(&records));
    let elapsed = started.elapsed();
    let failed = batch_failures(&reply, &ids).expect("a batch response");
    let invalid: BTreeSet<String> = (0..10_000)
        .filter(|i| i % 10 != 0)
        .map(|i| format!("m-{i:05}"))
        .collect();
    assert_eq!(failed, invalid, "exactly the invalid records are reported");
    let subjects: BTreeSet<&str> = requests
        .iter()
        .filter_map(|r| r.body["UserName"].as_str())
        .collect();
    assert!(subjects.iter().all(|s| users.contains(s)), "{subjects:?}");
    model_accepted(&requests).expect("accepted");
    let size = reply.as_ref().map(|r| r.to_string().len()).unwrap_or(0);
    assert!(size < 6 * 1024 * 1024, "{size} bytes");
    println!(
        "sqs 10 000 records: {} reported, {} Transfer calls (1 000 valid records for 3 users), \
         reply {size} bytes, {elapsed:.2?}",
        failed.len(),
        requests.len()
    );

    // One record with a 1 MiB body, one with 100 000 unknown keys, one 1 MiB user name.
    let big_keys: Map<String, Value> = (0..100_000)
        .map(|i| (format!("k{i}"), Value::from(i)))
        .collect();
    let mut big_command = event("direct-update-user.json");
    big_command["Extra"] = Value::Object(big_keys);
    let records = vec![
        ("a".to_owned(), "x".repeat(1 << 20)),
        ("b".to_owned(), big_command.to_string()),
        (
            "c".to_owned(),
            json!({"Action": "UpdateUser", "UserName": "u".repeat(1 << 20)}).to_string(),
        ),
    ];
    let ids: BTreeSet<String> = records.iter().map(|(id, _)| id.clone()).collect();
    let (reply, requests, _) = invoke(&h, sqs_batch(&records));
    assert_eq!(batch_failures(&reply, &ids).expect("a batch response"), ids);
    assert!(requests.is_empty(), "{requests:?}");
}

// ----------------------------------------------------------------------- API Gateway

/// The documented statuses (docs/api.md); 500 is documented but never expected here.
const API_STATUSES: [u64; 10] = [200, 400, 403, 404, 405, 413, 415, 429, 502, 503];
/// Statuses that refuse the input: no Transfer call may precede them.
const API_REFUSALS: [u64; 5] = [400, 403, 405, 413, 415];
/// A v2 HTTP API request with our method, raw path, headers, body.
fn api(method: &str, path: &str, headers: Map<String, Value>, body: Option<String>) -> Value {
    let mut e = envelope("example-apigw-v2-request-iam.json");
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = path.into();
    e["rawPath"] = path.into();
    e["rawQueryString"] = "".into();
    e["headers"] = Value::Object(headers);
    e["body"] = body.map_or(Value::Null, Value::String);
    e
}

/// A structured HTTP reply with a documented status and a JSON body without internals.
fn check_http(reply: &Result<Value, String>) -> Result<(u64, Value), TestCaseError> {
    let reply = reply
        .as_ref()
        .map_err(|e| TestCaseError::fail(format!("the API invocation failed: {e}")))?;
    let status = reply["statusCode"]
        .as_u64()
        .ok_or_else(|| TestCaseError::fail(format!("no statusCode: {reply}")))?;
    prop_assert!(
        API_STATUSES.contains(&status),
        "status {}: {}",
        status,
        reply
    );
    prop_assert_eq!(&reply["headers"]["Content-Type"], "application/json");
    let text = reply["body"]
        .as_str()
        .ok_or_else(|| TestCaseError::fail(format!("no body: {reply}")))?;
    let body: Value = serde_json::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("body is not JSON ({e}): {text}")))?;
    for internal in INTERNALS {
        prop_assert!(!text.contains(internal), "{} in {}", internal, text);
    }
    if status != 200 {
        prop_assert_eq!(&body["Status"], "Failed", "{}", text);
        prop_assert!(body["Error"]["Code"].is_string(), "{}", text);
        prop_assert!(
            text.len() < 64 * 1024,
            "bounded error body: {} bytes",
            text.len()
        );
    }
    Ok((status, body))
}

fn hostile_path() -> impl Strategy<Value = String> {
    let user = "/servers/s-0123456789abcdef0/users/";
    let access = "/servers/s-0123456789abcdef1/accesses/";
    prop_oneof![
        hostile_name().prop_map(move |n| format!("{user}{n}")),
        hostile_name().prop_map(move |n| format!("{access}{n}")),
        hostile_name().prop_map(|n| format!("/servers/{n}/users/alice")),
        // A fragment where a separator or a segment is expected (a lone `/` there
        // would rebuild the valid path).
        segment_poison().prop_map(|p| format!("/servers/s-0123456789abcdef0/{p}/users/alice")),
        segment_poison().prop_map(move |p| format!("{user}alice/{p}")),
        segment_poison().prop_map(|p| format!("/servers{p}s-0123456789abcdef0/users/alice")),
    ]
}

#[test]
fn api_hostile_paths_are_refused_without_any_call() {
    let h = Harness::new();
    let method = prop::sample::select(&["GET", "PUT"][..]);
    run(256, (method, hostile_path()), |(method, path)| {
        let body = (method == "PUT").then(|| r#"{"HomeDirectory":"/acme-sftp/home/alice"}"#.into());
        let (reply, requests, _) = invoke(&h, api(method, &path, Map::new(), body));
        let (status, body) = check_http(&reply)?;
        prop_assert!(
            matches!(status, 400 | 404),
            "{} {:?}: {} {}",
            method,
            path,
            status,
            body
        );
        prop_assert!(requests.is_empty(), "{:?}: called {:?}", path, requests);
        Ok(())
    });
}

#[test]
fn api_hostile_bodies_are_refused_without_any_call() {
    let h = Harness::new();
    let path = "/servers/s-0123456789abcdef0/users/alice";
    let body = prop_oneof![
        invalid_command().prop_map(|(_, mut c)| {
            // The path names the user and server; the body carries the rest.
            if let Some(o) = c.as_object_mut() {
                o.remove("Action");
            }
            c.to_string()
        }),
        // Not JSON (an empty body is a PUT without fields: the template applies).
        any::<String>().prop_filter("not JSON", |s| !s.trim().is_empty()
            && serde_json::from_str::<Value>(s).is_err()),
        segment_poison()
            .prop_map(|n| json!({"HomeDirectory": format!("/acme-sftp/home/{n}")}).to_string()),
        any_json()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(|v| v.to_string()),
    ];
    run(256, body, |body| {
        let (reply, requests, _) = invoke(&h, api("PUT", path, Map::new(), Some(body.clone())));
        let (status, out) = check_http(&reply)?;
        // The body names alice's user on an allowed server: an invalid body is a 400
        // (or 403 for a guardrail) before any call.
        prop_assert!(
            matches!(status, 400 | 403),
            "{:?}: {} {}",
            body,
            status,
            out
        );
        prop_assert!(requests.is_empty(), "{:?}: called {:?}", body, requests);
        Ok(())
    });
}

#[test]
fn api_arbitrary_requests_get_a_documented_answer() {
    let h = Harness::new();
    let method = prop_oneof![
        prop::sample::select(&["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"][..])
            .prop_map(str::to_owned),
        any::<String>(),
    ];
    let path = prop_oneof![
        any::<String>(),
        hostile_path(),
        "/servers/s-0123456789abcdef0/(users|accesses)/[ -~]{0,40}",
    ];
    let headers = prop::collection::btree_map(
        prop_oneof![Just("content-type".to_owned()), any::<String>()],
        prop_oneof![any_json(), any::<String>().prop_map(Value::String)],
        0..4,
    )
    .prop_map(|m| m.into_iter().collect::<Map<String, Value>>());
    let body = prop::option::of(prop_oneof![any::<String>(), any_body()]);
    run(
        256,
        (method, path, headers, body, any::<bool>()),
        |(method, path, headers, body, base64)| {
            let mut e = api(&method, &path, headers, body);
            e["isBase64Encoded"] = base64.into();
            let (reply, requests, _) = invoke(&h, e);
            let (status, _) = check_http(&reply)?;
            if API_REFUSALS.contains(&status) {
                prop_assert!(requests.is_empty(), "{} after calls {:?}", status, requests);
            }
            model_accepted(&requests)?;
            Ok(())
        },
    );
}

#[test]
fn api_huge_bodies_and_paths() {
    let h = Harness::new();
    let path = "/servers/s-0123456789abcdef0/users/alice";
    for (body, want) in [
        ("x".repeat(16 * 1024 + 1), 413),
        (
            json!({"HomeDirectory": "/acme-sftp/home/alice", "Pad": "p".repeat(10 << 20)})
                .to_string(),
            413,
        ),
    ] {
        let (reply, requests, _) = invoke(&h, api("PUT", path, Map::new(), Some(body)));
        let (status, _) = check_http(&reply).expect("structured");
        assert_eq!(status, want);
        assert!(requests.is_empty());
    }
    // A 1 MiB user name in the path, and 10 000 path segments.
    for path in [
        format!("/servers/s-0123456789abcdef0/users/{}", "a".repeat(1 << 20)),
        "/x".repeat(10_000),
    ] {
        let (reply, requests, _) = invoke(&h, api("GET", &path, Map::new(), None));
        let (status, _) = check_http(&reply).expect("structured, echo bounded");
        assert!(matches!(status, 400 | 404), "{status}");
        assert!(requests.is_empty());
    }
}

#[test]
fn api_separators_and_encodings_are_decoded_once_and_never_collapsed() {
    let h = Harness::new();
    let s = "/servers/s-0123456789abcdef0";
    // (path, status, Transfer calls): empty segments are not collapsed into a route,
    // encoded separators stay in the parameter (and are refused there), a name is
    // decoded exactly once; one trailing slash is tolerated.
    for (path, want, calls) in [
        (
            format!("/servers/{}/users/alice", "/s-0123456789abcdef0"),
            404,
            0,
        ),
        (format!("{s}//users/alice"), 404, 0),
        (format!("/{s}/users/alice"), 404, 0),
        (format!("{s}/users/alice//"), 404, 0),
        (format!("{s}/users/alice%2F"), 400, 0),
        (format!("{s}/users/%2e%2e%2F%2e%2e%2Fetc"), 400, 0),
        (format!("{s}/users/al%252Fice"), 400, 0),
        (format!("{s}/users/al%00ice"), 400, 0),
        (format!("{s}/users/al%5Cice"), 400, 0),
        (format!("{s}/users/%61lice"), 200, 1),
        (format!("{s}/users/alice/"), 200, 1),
    ] {
        let (reply, requests, _) = invoke(&h, api("GET", &path, Map::new(), None));
        let (status, body) = check_http(&reply).expect("structured");
        assert_eq!((status, requests.len()), (want, calls), "{path}: {body}");
        if status == 200 {
            assert_eq!(body["UserName"], "alice", "{path}");
        }
    }
}

// --------------------------------------------------------------------- CloudFormation

const CFN_CREATE: &str = "example-cloudformation-custom-resource-create-request.json";

/// ResponseURLs that are malformed or not admitted: nothing may be sent anywhere.
const MALFORMED_URLS: &[&str] = &[
    "",
    "not a url",
    "ftp://127.0.0.1:1/x",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "http://",
    "https:///no-host",
    "//127.0.0.1/no-scheme",
    "http://[::1",
];

fn cfn_event(properties: Value, request_type: Value, url: Value) -> Value {
    let mut e = envelope(CFN_CREATE);
    e["ResourceProperties"] = properties;
    e["RequestType"] = request_type;
    e["ResponseURL"] = url;
    e
}

/// What a delivered answer must be: one accepted PUT to the sink, the handler returned
/// it, a CloudFormation response of at most 4096 bytes.
fn check_cfn(reply: &Result<Value, String>, puts: &[ResponsePut]) -> Result<Value, TestCaseError> {
    let body = reply
        .as_ref()
        .map_err(|e| TestCaseError::fail(format!("not answered: {e}")))?;
    prop_assert_eq!(puts.len(), 1, "exactly one PUT: {:?}", puts);
    prop_assert!(puts[0].accepted);
    prop_assert_eq!(&puts[0].body, body);
    prop_assert!(puts[0].size <= 4096, "{} bytes", puts[0].size);
    prop_assert!(
        matches!(body["Status"].as_str(), Some("SUCCESS" | "FAILED")),
        "{}",
        body
    );
    for key in [
        "PhysicalResourceId",
        "StackId",
        "RequestId",
        "LogicalResourceId",
    ] {
        prop_assert!(body[key].is_string(), "{} missing: {}", key, body);
    }
    Ok(body.clone())
}

fn cfn_properties(command: Value) -> Value {
    let mut p = command;
    if let Some(o) = p.as_object_mut() {
        o.remove("Action");
        o.insert(
            "ServiceToken".into(),
            "arn:aws:lambda:us-east-1:123456789012:function:transfer-chroot".into(),
        );
    }
    p
}

#[test]
fn cfn_hostile_properties_are_answered_failed_without_any_call() {
    let h = Harness::new();
    let url = format!("{}/cfn/x?X-Amz-Signature=s", h.t.standin.endpoint());
    let properties = prop_oneof![
        invalid_command().prop_map(|(_, c)| cfn_properties(c)),
        any_json().prop_filter("not an object", |v| !v.is_object() && !v.is_null()),
    ];
    run(192, properties, |properties| {
        let event = cfn_event(properties.clone(), "Create".into(), url.clone().into());
        let (reply, requests, puts) = invoke(&h, event);
        let body = check_cfn(&reply, &puts)?;
        prop_assert_eq!(&body["Status"], "FAILED", "{} -> {}", properties, body);
        prop_assert!(requests.is_empty(), "called {:?}", requests);
        Ok(())
    });
}

#[test]
fn cfn_arbitrary_requests_are_answered_once_and_send_nothing_malformed() {
    let h = Harness::new();
    let endpoint = h.t.standin.endpoint();
    let properties = prop_oneof![
        any_json(),
        mutated_command().prop_map(cfn_properties),
        prop::collection::btree_map(
            prop::sample::select(COMMAND_FIELDS).prop_map(str::to_owned),
            any_json(),
            0..6
        )
        .prop_map(|m| Value::Object(m.into_iter().collect())),
    ];
    let request_type = prop_oneof![
        prop::sample::select(&["Create", "Update", "Delete"][..]).prop_map(Value::from),
        any_json(),
    ];
    // Paths and queries on the sink (always at 127.0.0.1: the suffix starts with `/x`).
    let suffix = prop_oneof![
        "/x[A-Za-z0-9%._~!$&'()*+,;=:@/-]{0,40}(\\?[A-Za-z0-9%._~&=/-]{0,40})?",
        prop::sample::select(
            &[
                "/x/../../etc",
                "/x/%2e%2e/%2e%2e",
                "/x//y",
                "/x/%00",
                "/x?X-Amz-Signature=a&X-Amz-Signature=b",
                "/x/%2F..%2F",
                // Not valid in a URI: refused before anything is sent.
                "/x/a b",
                "/x/\0",
                "/x/\\..\\y",
                "/x/é",
                "/x\r\nHost: elsewhere",
            ][..]
        )
        .prop_map(str::to_owned),
    ];
    run(
        256,
        (properties, request_type, suffix),
        |(properties, request_type, suffix)| {
            let url = format!("{endpoint}{suffix}");
            let event = cfn_event(properties, request_type, url.into());
            let (reply, requests, puts) = invoke(&h, event);
            if let Err(e) = &reply {
                // A URL that does not parse: nowhere to answer, nothing done.
                prop_assert!(e.contains("Unanswerable"), "{}", e);
                prop_assert!(puts.is_empty() && requests.is_empty());
                return Ok(());
            }
            check_cfn(&reply, &puts)?;
            model_accepted(&requests)?;
            Ok(())
        },
    );
}

#[test]
fn cfn_malformed_response_urls_fail_the_invocation_and_send_nothing() {
    let h = Harness::new();
    let url = prop_oneof![
        prop::sample::select(MALFORMED_URLS).prop_map(Value::from),
        any_json().prop_filter("not a string", |v| !v.is_string()),
        // Arbitrary text without "://" cannot name a host.
        any::<String>()
            .prop_filter("no scheme separator", |s| !s.contains("://"))
            .prop_map(Value::from),
    ];
    run(192, (url, mutated_command()), |(url, command)| {
        let (reply, requests, puts) = invoke(
            &h,
            cfn_event(cfn_properties(command), "Create".into(), url.clone()),
        );
        let err = reply.expect_err("nowhere to answer: the invocation fails");
        prop_assert!(err.contains("Unanswerable"), "{}", err);
        prop_assert!(puts.is_empty(), "{:?}", puts);
        prop_assert!(requests.is_empty(), "no work without a way to answer");
        Ok(())
    });
}

// ------------------------------------------------------------------------ EventBridge

/// An EventBridge reply: `Ok` with a non-failed outcome, or `Err` carrying a failed one.
fn eventbridge_outcome(reply: &Result<Value, String>) -> Result<Outcome, TestCaseError> {
    match reply {
        Ok(v) => {
            let out: Outcome = serde_json::from_value(v.clone())
                .map_err(|e| TestCaseError::fail(format!("not a result ({e}): {v}")))?;
            prop_assert!(out.error.is_none(), "Ok with an error: {}", v);
            Ok(out)
        }
        Err(e) => {
            let at = e
                .find('{')
                .ok_or_else(|| TestCaseError::fail(format!("no result in {e}")))?;
            let out: Outcome = serde_json::from_str(&e[at..])
                .map_err(|err| TestCaseError::fail(format!("not a result ({err}): {e}")))?;
            prop_assert!(out.error.is_some(), "Err without an error: {}", e);
            Ok(out)
        }
    }
}

fn eb(detail_type: Value, detail: Value) -> Value {
    eventbridge_event(detail_type, detail)
}

#[test]
fn eventbridge_hostile_details_are_refused_without_any_call() {
    let h = Harness::new();
    let detail = prop_oneof![
        hostile_name().prop_map(|u| (
            "Directory Group Membership Changed",
            json!({"ServerId": SERVER, "UserName": u, "Groups": ["sftp-finance"]})
        )),
        hostile_name().prop_map(|s| (
            "Directory Group Membership Changed",
            json!({"ServerId": s, "UserName": "alice", "Groups": ["staff"]})
        )),
        hostile_name().prop_map(|a| (
            "Directory Group Changed",
            json!({"ServerId": SERVER, "ExternalId": a, "GroupName": "sftp-finance"})
        )),
        any_json()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(|d| ("Directory Group Membership Changed", d)),
    ];
    // Or an unknown detail-type (any text but the two known ones) with any detail.
    let unknown = (
        any::<String>().prop_filter("unknown", |t| {
            !t.starts_with("Directory Group") || !t.ends_with("Changed")
        }),
        any_json(),
    );
    let detail = prop_oneof![
        detail.prop_map(|(t, d)| (t.to_owned(), d)),
        unknown.prop_map(|(t, d)| (
            t,
            json!({"ServerId": SERVER, "UserName": "alice", "Groups": [], "X": d})
        )),
    ];
    run(256, detail, |(detail_type, detail)| {
        let (reply, requests, _) = invoke(&h, eb(detail_type.into(), detail.clone()));
        let out = eventbridge_outcome(&reply)?;
        prop_assert!(reply.is_err(), "invalid input must fail: {:?}", reply);
        let code = out.error.map(|e| format!("{:?}", e.code));
        prop_assert!(
            matches!(code.as_deref(), Some("ValidationFailed" | "NotAllowed")),
            "{:?}: {}",
            code,
            detail
        );
        prop_assert!(requests.is_empty(), "called {:?}", requests);
        Ok(())
    });
}

#[test]
fn eventbridge_arbitrary_events_are_structured_and_send_nothing_malformed() {
    let h = Harness::new();
    let detail_type = prop_oneof![
        Just(Value::from("Directory Group Membership Changed")),
        Just(Value::from("Directory Group Changed")),
        any_json(),
    ];
    let detail = prop_oneof![
        any_json(),
        prop::collection::btree_map(
            prop::sample::select(
                &[
                    "ServerId",
                    "UserName",
                    "ExternalId",
                    "Groups",
                    "GroupName",
                    "Change",
                    "DryRun"
                ][..]
            )
            .prop_map(str::to_owned),
            prop_oneof![
                any_json(),
                Just(Value::from("alice")),
                Just(Value::from(SERVER)),
                Just(json!(["sftp-finance", "staff"]))
            ],
            0..6
        )
        .prop_map(|m| Value::Object(m.into_iter().collect())),
    ];
    run(256, (detail_type, detail), |(detail_type, detail)| {
        let (reply, requests, _) = invoke(&h, eb(detail_type, detail));
        eventbridge_outcome(&reply)?;
        model_accepted(&requests)?;
        Ok(())
    });
}

#[test]
fn eventbridge_huge_details() {
    let h = Harness::new();
    let groups: Vec<Value> = (0..100_000).map(|i| Value::from(format!("g{i}"))).collect();
    for detail in [
        json!({"ServerId": SERVER, "UserName": "u".repeat(1 << 20), "Groups": []}),
        json!({"ServerId": SERVER, "UserName": "alice", "Groups": groups}),
        json!({"ServerId": SERVER, "UserName": "alice", "Groups": ["x".repeat(1 << 20)]}),
    ] {
        let (reply, requests, _) =
            invoke(&h, eb("Directory Group Membership Changed".into(), detail));
        let out = eventbridge_outcome(&reply).expect("structured");
        let size = match &reply {
            Ok(v) => v.to_string().len(),
            Err(e) => e.len(),
        };
        assert!(size < 64 * 1024, "bounded reply: {size} bytes");
        // A valid user with many groups may be applied (default profile); otherwise no call.
        if reply.is_err() {
            assert!(requests.is_empty(), "{out:?}");
        }
        model_accepted(&requests).expect("accepted");
    }
}
