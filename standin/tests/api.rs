//! The stand-in's Transfer API as a client sees it on the wire: plain HTTP/1.1 requests
//! over std sockets (awsJson1.1, `X-Amz-Target`, a SigV4-shaped `Authorization`), no SDK.
//! ListServers/ListUsers/ListAccesses pagination and tokens, DescribeServer, model
//! statuses, LOGICAL home checks, rate limits, and seeding large fleets.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
mod common;

use common::{Api, Reply, start};
use transfer_standin::{Fault, FaultRule, GenerateUsers, StandIn};

const S3: &str = "s-0123456789abcdef0";
const EMPTY: &str = "s-00000000000000000";
const DIRECTORY: &str = "s-0123456789abcdef1";
const EFS: &str = "s-0123456789abcdef2";
const NOWHERE: &str = "s-99999999999999999";
const FINANCE: &str = "S-1-5-21-1004336348-1177238915-682003330-1105";
const ENGINEERING: &str = "S-1-5-21-1004336348-1177238915-682003330-1106";
const ROLE: &str = "arn:aws:iam::111122223333:role/sftp-user";
const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/20250101/us-east-1/transfer/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";

impl Reply {
    fn kind(&self) -> &str {
        self.body["__type"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{:?}", self.body);
        &self.body
    }

    #[track_caller]
    fn assert_error(&self, status: u16, kind: &str) {
        assert_eq!(
            (self.status, self.kind()),
            (status, kind),
            "{:?}",
            self.body
        );
        assert!(self.body["Message"].is_string(), "{:?}", self.body);
        assert!(self.headers.contains_key("x-amzn-requestid"));
    }
}

fn demo_seed() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/seed.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("demo seed")).expect("JSON")
}

fn demo() -> Api {
    start(&demo_seed())
}

impl Api {
    /// A signed Transfer call.
    fn call(&self, operation: &str, input: Value) -> Reply {
        let target = format!("TransferService.{operation}");
        self.http(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", &target),
                ("Authorization", SIGNED),
            ],
            &input.to_string(),
        )
    }

    fn control(&self, method: &str, path: &str, body: Value) -> Reply {
        self.http(method, &format!("/_standin/{path}"), &[], &body.to_string())
    }

    /// Every page of `operation` (`items` the list's field), asserting each page's size.
    fn pages(
        &self,
        operation: &str,
        items: &str,
        mut input: Value,
        max: Option<u64>,
    ) -> Vec<Vec<Value>> {
        if let Some(m) = max {
            input["MaxResults"] = json!(m);
        }
        let limit = max.unwrap_or(1000) as usize;
        let mut pages = Vec::new();
        loop {
            let reply = self.call(operation, input.clone());
            let body = reply.assert_ok();
            let page = body[items].as_array().expect("items").clone();
            let next = body.get("NextToken").and_then(Value::as_str);
            match next {
                Some(t) => {
                    assert_eq!(page.len(), limit, "only the last page may be short");
                    input["NextToken"] = json!(t);
                }
                None => assert!(page.len() <= limit),
            }
            pages.push(page);
            if next.is_none() {
                return pages;
            }
            assert!(pages.len() < 1_000_000, "runaway pagination");
        }
    }

    fn names(&self, operation: &str, server: Option<&str>, max: Option<u64>) -> Vec<String> {
        let (items, key) = match operation {
            "ListServers" => ("Servers", "ServerId"),
            "ListUsers" => ("Users", "UserName"),
            _ => ("Accesses", "ExternalId"),
        };
        let input = server.map_or(json!({}), |s| json!({"ServerId": s}));
        self.pages(operation, items, input, max)
            .into_iter()
            .flatten()
            .map(|i| i[key].as_str().expect("name").to_owned())
            .collect()
    }

    fn first_token(&self, operation: &str, input: Value) -> String {
        let mut input = input;
        input["MaxResults"] = json!(1);
        let reply = self.call(operation, input);
        reply.assert_ok()["NextToken"]
            .as_str()
            .expect("a token")
            .to_owned()
    }
}

#[track_caller]
fn assert_each_once_in_order(got: &[String], expected: &BTreeSet<String>) {
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "an item was listed twice");
    assert_eq!(&unique, expected, "listing differs from the stored set");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "not in name order");
}

// ------------------------------------------------------------------ servers

#[test]
fn demo_servers_are_listed_in_id_order_with_their_attributes() {
    let api = demo();
    let body = api.call("ListServers", json!({})).assert_ok().clone();
    assert!(body.get("NextToken").is_none());
    let servers = body["Servers"].as_array().unwrap();
    let ids: Vec<_> = servers
        .iter()
        .map(|s| s["ServerId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [EMPTY, S3, DIRECTORY, EFS]);
    let by_id: HashMap<_, _> = servers
        .iter()
        .map(|s| (s["ServerId"].as_str().unwrap(), s))
        .collect();
    for (id, idp, domain, users) in [
        (EMPTY, "SERVICE_MANAGED", "S3", 0),
        (S3, "SERVICE_MANAGED", "S3", 4),
        (DIRECTORY, "AWS_DIRECTORY_SERVICE", "S3", 0),
        (EFS, "SERVICE_MANAGED", "EFS", 1),
    ] {
        assert_eq!(
            by_id[id],
            &json!({
                "Arn": format!("arn:aws:transfer:us-east-1:111122223333:server/{id}"),
                "ServerId": id, "Domain": domain, "IdentityProviderType": idp,
                "EndpointType": "PUBLIC", "State": "ONLINE", "UserCount": users,
            })
        );
    }
    let names = api.names("ListServers", None, Some(1));
    assert_eq!(names, [EMPTY, S3, DIRECTORY, EFS]);
}

#[test]
fn describe_server_answers_the_seeded_attributes() {
    let api = demo();
    let s3 = api.call("DescribeServer", json!({"ServerId": S3}));
    assert_eq!(
        s3.assert_ok(),
        &json!({"Server": {
            "Arn": format!("arn:aws:transfer:us-east-1:111122223333:server/{S3}"),
            "ServerId": S3, "Domain": "S3", "IdentityProviderType": "SERVICE_MANAGED",
            "EndpointType": "PUBLIC", "State": "ONLINE", "Protocols": ["SFTP"], "UserCount": 4,
            "S3StorageOptions": {"DirectoryListingOptimization": "DISABLED"},
        }})
    );
    let directory = api.call("DescribeServer", json!({"ServerId": DIRECTORY}));
    let d = &directory.assert_ok()["Server"];
    assert_eq!(d["IdentityProviderType"], "AWS_DIRECTORY_SERVICE");
    assert_eq!(d["UserCount"], 0);
    let efs = api.call("DescribeServer", json!({"ServerId": EFS}));
    let e = &efs.assert_ok()["Server"];
    assert_eq!((&e["Domain"], &e["UserCount"]), (&json!("EFS"), &json!(1)));
    assert!(e.get("S3StorageOptions").is_none(), "EFS has no S3 options");

    // Every attribute from a seed.
    let api = start(&json!({"Servers": [{
        "ServerId": S3, "IdentityProviderType": "AWS_LAMBDA", "DirectoryListingOptimization": "ENABLED",
        "State": "OFFLINE", "EndpointType": "VPC",
        "LoggingRole": "arn:aws:iam::111122223333:role/transfer-logging",
    }]}));
    let s = api.call("DescribeServer", json!({"ServerId": S3}));
    let s = &s.assert_ok()["Server"];
    assert_eq!(s["IdentityProviderType"], "AWS_LAMBDA");
    assert_eq!(
        s["S3StorageOptions"]["DirectoryListingOptimization"],
        "ENABLED"
    );
    assert_eq!(s["State"], "OFFLINE");
    assert_eq!(s["EndpointType"], "VPC");
    assert_eq!(
        s["LoggingRole"],
        "arn:aws:iam::111122223333:role/transfer-logging"
    );
    let listed = api.call("ListServers", json!({}));
    assert_eq!(
        listed.assert_ok()["Servers"][0]["LoggingRole"],
        "arn:aws:iam::111122223333:role/transfer-logging"
    );
}

#[test]
fn an_unknown_server_is_404_for_every_operation() {
    let api = demo();
    for (op, input) in [
        ("DescribeServer", json!({"ServerId": NOWHERE})),
        ("ListUsers", json!({"ServerId": NOWHERE})),
        (
            "ListAccesses",
            json!({"ServerId": NOWHERE, "MaxResults": 5}),
        ),
        (
            "DescribeUser",
            json!({"ServerId": NOWHERE, "UserName": "alice"}),
        ),
        (
            "UpdateUser",
            json!({"ServerId": NOWHERE, "UserName": "alice", "Role": ROLE}),
        ),
        (
            "DescribeAccess",
            json!({"ServerId": NOWHERE, "ExternalId": FINANCE}),
        ),
        (
            "UpdateAccess",
            json!({"ServerId": NOWHERE, "ExternalId": FINANCE}),
        ),
    ] {
        let r = api.call(op, input);
        r.assert_error(404, "ResourceNotFoundException");
        assert_eq!(
            (&r.body["Resource"], &r.body["ResourceType"]),
            (&json!(NOWHERE), &json!("Server")),
            "{op}"
        );
    }
    let r = api.call("DescribeUser", json!({"ServerId": S3, "UserName": "zoe"}));
    r.assert_error(404, "ResourceNotFoundException");
    assert_eq!(r.body["ResourceType"], "User");
    // The directory server holds accesses, not users.
    let r = api.call(
        "DescribeAccess",
        json!({"ServerId": EFS, "ExternalId": FINANCE}),
    );
    r.assert_error(404, "ResourceNotFoundException");
    assert_eq!(r.body["ResourceType"], "Access");
}

#[test]
fn every_field_is_checked_before_anything_is_looked_up() {
    let api = demo();
    for (op, input, kind) in [
        ("DescribeServer", json!({}), "InvalidRequestException"),
        (
            "DescribeServer",
            json!({"ServerId": "s-123"}),
            "InvalidRequestException",
        ),
        (
            "ListUsers",
            json!({"ServerId": NOWHERE, "MaxResults": 0}),
            "InvalidRequestException",
        ),
        (
            "ListUsers",
            json!({"ServerId": NOWHERE, "NextToken": ""}),
            "InvalidRequestException",
        ),
        (
            "ListUsers",
            json!({"ServerId": NOWHERE, "NextToken": "bm9wZQ"}),
            "InvalidNextTokenException",
        ),
        (
            "ListAccesses",
            json!({"ServerId": NOWHERE, "MaxResults": "1"}),
            "SerializationException",
        ),
        (
            "DescribeUser",
            json!({"ServerId": NOWHERE, "UserName": "-x"}),
            "InvalidRequestException",
        ),
        (
            "UpdateUser",
            json!({"ServerId": NOWHERE, "UserName": "alice", "Role": "nope"}),
            "InvalidRequestException",
        ),
        (
            "DescribeAccess",
            json!({"ServerId": NOWHERE, "ExternalId": "bad"}),
            "InvalidRequestException",
        ),
        (
            "UpdateAccess",
            json!({"ServerId": NOWHERE, "ExternalId": FINANCE, "HomeDirectoryType": "X"}),
            "InvalidRequestException",
        ),
    ] {
        api.call(op, input.clone()).assert_error(400, kind);
    }
    // Unimplemented operations and unsigned calls are refused as before.
    api.call("CreateUser", json!({}))
        .assert_error(400, "UnknownOperationException");
    let unsigned = api.http(
        "POST",
        "/",
        &[("X-Amz-Target", "TransferService.ListServers")],
        "{}",
    );
    unsigned.assert_error(403, "MissingAuthenticationTokenException");
}

// ------------------------------------------------------------------ pagination

#[test]
fn pages_cover_every_user_exactly_once_whatever_the_page_size() {
    let api = demo();
    // The demo's four users, one page size after another.
    let demo_users: BTreeSet<String> = ["alice", "bob", "carol", "dave@example.com"]
        .map(String::from)
        .into();
    for max in [1, 2, 3, 4, 5, 1000] {
        assert_each_once_in_order(&api.names("ListUsers", Some(S3), Some(max)), &demo_users);
    }
    // A fleet of 2 345 more, in pages of 1 000, 999, 7 and the default.
    let spec = GenerateUsers::new(2_345);
    assert_eq!(api.standin.generate_users(S3, &spec), Ok(2_349));
    let mut all = demo_users.clone();
    all.extend((0..spec.count).map(|i| spec.name(i)));
    for max in [Some(1000), Some(999), Some(7), None] {
        let names = api.names("ListUsers", Some(S3), max);
        assert_each_once_in_order(&names, &all);
    }
    let default = api.call("ListUsers", json!({"ServerId": S3}));
    assert_eq!(default.assert_ok()["Users"].as_array().unwrap().len(), 1000);
    let server = api.call("DescribeServer", json!({"ServerId": S3}));
    assert_eq!(server.assert_ok()["Server"]["UserCount"], 2_349);
    // An empty server: one empty page, no token.
    assert_eq!(
        api.pages("ListUsers", "Users", json!({"ServerId": EMPTY}), Some(1)),
        [Vec::<Value>::new()]
    );
}

#[test]
fn listed_users_and_accesses_carry_the_listed_fields_only() {
    let api = demo();
    let users = api.call("ListUsers", json!({"ServerId": S3}));
    let users = users.assert_ok();
    assert_eq!(users["ServerId"], S3);
    assert_eq!(
        users["Users"][0],
        json!({"Arn": format!("arn:aws:transfer:us-east-1:111122223333:user/{S3}/alice"),
               "UserName": "alice", "HomeDirectory": "/acme-sftp/home/alice",
               "HomeDirectoryType": "PATH", "Role": ROLE, "SshPublicKeyCount": 0})
    );
    // bob is LOGICAL: his mappings are not part of a listing.
    assert_eq!(users["Users"][1]["UserName"], "bob");
    assert!(users["Users"][1].get("HomeDirectoryMappings").is_none());

    for server in [S3, DIRECTORY] {
        let pages = api.pages(
            "ListAccesses",
            "Accesses",
            json!({"ServerId": server}),
            Some(1),
        );
        assert_eq!(
            pages,
            [
                vec![
                    json!({"ExternalId": FINANCE, "HomeDirectory": "/acme-sftp/groups/finance",
                            "HomeDirectoryType": "PATH", "Role": ROLE})
                ],
                vec![
                    json!({"ExternalId": ENGINEERING, "HomeDirectory": "/acme-sftp/groups/engineering",
                            "HomeDirectoryType": "PATH", "Role": ROLE})
                ],
            ]
        );
    }
    let efs = api.call("ListUsers", json!({"ServerId": EFS}));
    assert_eq!(
        efs.assert_ok()["Users"][0]["HomeDirectory"],
        "/fs-0123456789abcdef0/home/erin"
    );
    let empty = api.call("ListAccesses", json!({"ServerId": EFS}));
    assert_eq!(empty.assert_ok(), &json!({"ServerId": EFS, "Accesses": []}));
}

#[test]
fn a_listing_resumes_after_its_last_name_when_users_come_and_go() {
    let api = demo();
    let first = api.call("ListUsers", json!({"ServerId": S3, "MaxResults": 2}));
    let first = first.assert_ok().clone();
    let names: Vec<_> = first["Users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["UserName"].clone())
        .collect();
    assert_eq!(names, [json!("alice"), json!("bob")]);
    // Between pages: one user sorts before the position, one after it.
    let added = api.standin.seed_users(
        S3,
        [json!({"UserName": "aaron"}), json!({"UserName": "bobby"})],
    );
    assert_eq!(added, Ok(6));
    let rest = api.call(
        "ListUsers",
        json!({"ServerId": S3, "MaxResults": 10, "NextToken": first["NextToken"]}),
    );
    let rest: Vec<_> = rest.assert_ok()["Users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["UserName"].clone())
        .collect();
    assert_eq!(
        rest,
        [json!("bobby"), json!("carol"), json!("dave@example.com")]
    );
}

#[test]
fn tampered_foreign_and_malformed_tokens_are_refused() {
    let api = demo();
    let token = api.first_token("ListUsers", json!({"ServerId": S3}));
    assert!(token.len() <= 6144);
    let next = |t: &str| api.call("ListUsers", json!({"ServerId": S3, "NextToken": t}));
    next(&token).assert_ok();

    // Any one character changed.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for i in 0..token.len() {
        let mut edited = token.clone().into_bytes();
        edited[i] = *alphabet.iter().find(|&&c| c != edited[i]).unwrap();
        let edited = String::from_utf8(edited).unwrap();
        next(&edited).assert_error(400, "InvalidNextTokenException");
    }
    // Cut short, lengthened.
    next(&token[..token.len() - 1]).assert_error(400, "InvalidNextTokenException");
    next(&format!("{token}A")).assert_error(400, "InvalidNextTokenException");

    // Foreign: another server (that exists), another operation, another stand-in.
    api.call("ListUsers", json!({"ServerId": EFS, "NextToken": token}))
        .assert_error(400, "InvalidNextTokenException");
    api.call("ListAccesses", json!({"ServerId": S3, "NextToken": token}))
        .assert_error(400, "InvalidNextTokenException");
    api.call("ListServers", json!({"NextToken": token}))
        .assert_error(400, "InvalidNextTokenException");
    let servers_token = api.first_token("ListServers", json!({}));
    next(&servers_token).assert_error(400, "InvalidNextTokenException");
    let access_token = api.first_token("ListAccesses", json!({"ServerId": S3}));
    next(&access_token).assert_error(400, "InvalidNextTokenException");
    api.call(
        "ListAccesses",
        json!({"ServerId": DIRECTORY, "NextToken": access_token}),
    )
    .assert_error(400, "InvalidNextTokenException");
    let other = demo();
    let foreign = other.first_token("ListUsers", json!({"ServerId": S3}));
    next(&foreign).assert_error(400, "InvalidNextTokenException");

    // Malformed, and out of the model's bounds (1..6144 characters, a string).
    for t in [
        "!",
        "a",
        "====",
        "bm9wZQ",
        "\u{e9}t\u{e9}",
        &"A".repeat(6144),
    ] {
        next(t).assert_error(400, "InvalidNextTokenException");
    }
    next("").assert_error(400, "InvalidRequestException");
    next(&"A".repeat(6145)).assert_error(400, "InvalidRequestException");
    api.call("ListUsers", json!({"ServerId": S3, "NextToken": 5}))
        .assert_error(400, "SerializationException");

    // The genuine token still works, as often as asked (tokens are not single-use).
    let again = next(&token);
    assert_eq!(again.assert_ok()["Users"][0]["UserName"], "bob");
    let recorded = api.standin.requests();
    assert!(
        recorded
            .iter()
            .any(|r| r.error.as_deref() == Some("InvalidNextTokenException"))
    );
}

#[test]
fn max_results_is_1_to_1000_and_an_integer() {
    let api = demo();
    for (op, input) in [
        ("ListServers", json!({})),
        ("ListUsers", json!({"ServerId": S3})),
        ("ListAccesses", json!({"ServerId": S3})),
    ] {
        let with = |max: Value| {
            let mut i = input.clone();
            i["MaxResults"] = max;
            api.call(op, i)
        };
        for bad in [
            json!(0),
            json!(-1),
            json!(1001),
            json!(1u64 << 40),
            json!(u64::MAX),
        ] {
            let r = with(bad.clone());
            r.assert_error(400, "InvalidRequestException");
            assert!(
                r.body["Message"].as_str().unwrap().contains("maxResults"),
                "{op} {bad}"
            );
        }
        for bad in [json!("5"), json!(2.5), json!(1.0), json!(null), json!([1])] {
            with(bad).assert_error(400, "SerializationException");
        }
        for good in [1, 1000] {
            with(json!(good)).assert_ok();
        }
    }
}

// ------------------------------------------------------------------ updates

#[test]
fn a_logical_home_outside_the_mappings_is_refused() {
    let api = demo();
    let before = api.standin.user(S3, "alice");
    let update = |home: &str, entry: &str| {
        api.call(
            "UpdateUser",
            json!({"ServerId": S3, "UserName": "alice", "HomeDirectoryType": "LOGICAL",
                   "HomeDirectory": home,
                   "HomeDirectoryMappings": [{"Entry": entry, "Target": "/acme-sftp/home/alice"}]}),
        )
    };
    for (home, entry) in [
        ("/other", "/home"),
        ("/homework", "/home"),
        ("/", "/home"),
        ("/hom", "/home"),
        ("/home2/alice", "/home/"),
    ] {
        update(home, entry).assert_error(400, "InvalidRequestException");
        assert_eq!(
            api.standin.user(S3, "alice"),
            before,
            "{home} under {entry}: nothing written"
        );
    }
    for (home, entry) in [
        ("/home", "/home"),
        ("/home/alice", "/home"),
        ("/home/alice/", "/home/"),
        ("/anything/at/all", "/"),
        ("/", "/"),
    ] {
        update(home, entry).assert_ok();
        assert_eq!(
            api.standin.user(S3, "alice").unwrap()["HomeDirectory"],
            home
        );
    }
    // Accesses too.
    let r = api.call(
        "UpdateAccess",
        json!({"ServerId": S3, "ExternalId": FINANCE, "HomeDirectoryType": "LOGICAL",
               "HomeDirectory": "/groups/engineering",
               "HomeDirectoryMappings": [{"Entry": "/groups/finance", "Target": "/acme-sftp/groups/finance"}]}),
    );
    r.assert_error(400, "InvalidRequestException");
    assert_eq!(
        api.standin.access(S3, FINANCE).unwrap()["HomeDirectoryType"],
        "PATH"
    );
}

// ------------------------------------------------------------------ faults and limits

#[test]
fn fault_statuses_are_the_ones_the_model_binds() {
    let api = demo();
    let describe = || api.call("DescribeUser", json!({"ServerId": S3, "UserName": "alice"}));
    api.standin
        .add_fault(FaultRule::new(Fault::Throttle, 1).on("DescribeUser"));
    let r = describe();
    r.assert_error(429, "ThrottlingException");
    assert_eq!(r.body["RetryAfterSeconds"], "1");
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
    for (status, kind) in [
        (500, "InternalFailure"),
        (503, "ServiceUnavailableException"),
        (403, "AccessDeniedException"),
    ] {
        api.standin
            .add_fault(FaultRule::new(Fault::Status(status), 1).on("DescribeUser"));
        describe().assert_error(status, kind);
    }
    describe().assert_ok();
}

#[test]
fn a_rate_limit_throttles_past_the_burst_and_recovers() {
    let api = demo();
    let describe = || api.call("DescribeUser", json!({"ServerId": S3, "UserName": "alice"}));
    api.standin.set_rate_limit("DescribeUser", 1.0, 3);
    let t0 = Instant::now();
    for _ in 0..3 {
        describe().assert_ok();
    }
    let throttled = describe();
    // With one token a second, a fourth call inside the first second finds none (the
    // check is skipped on a machine too slow to make four calls in 0.9 s).
    let fast = t0.elapsed() < Duration::from_millis(900);
    if fast {
        throttled.assert_error(429, "ThrottlingException");
        assert_eq!(throttled.body["RetryAfterSeconds"], "1");
        assert_eq!(throttled.headers["retry-after"], "1");
    } else {
        eprintln!("four calls took {:?}: throttling not checked", t0.elapsed());
    }
    // Other operations have their own (absent) limits.
    api.call(
        "DescribeAccess",
        json!({"ServerId": S3, "ExternalId": FINANCE}),
    )
    .assert_ok();
    api.call("ListUsers", json!({"ServerId": S3})).assert_ok();
    // A token a second: back after one.
    std::thread::sleep(Duration::from_millis(1_100));
    describe().assert_ok();
    let recorded = api.standin.requests();
    let limited: Vec<_> = recorded.iter().filter(|r| r.throttled).collect();
    assert!(
        limited
            .iter()
            .all(|r| r.operation == "DescribeUser" && !r.succeeded() && r.fault.is_none())
    );
    if fast {
        assert_eq!(limited.len(), 1);
    }
    assert_eq!(
        api.standin.successful_calls("DescribeUser") + limited.len(),
        5
    );
    // Lifted: no limit at all.
    api.standin.clear_rate_limits();
    for _ in 0..10 {
        describe().assert_ok();
    }
}

#[test]
fn rate_limits_are_set_through_the_control_plane() {
    let api = demo();
    let list = || api.call("ListUsers", json!({"ServerId": S3, "MaxResults": 1}));
    let set = api.control(
        "POST",
        "rate-limits",
        json!([{"Operation": "ListUsers", "RequestsPerSecond": 0, "Burst": 2}]),
    );
    assert_eq!(set.status, 200, "{:?}", set.body);
    list().assert_ok();
    list().assert_ok();
    let r = list();
    r.assert_error(429, "ThrottlingException");
    // A bucket that never refills: the longest wait the stand-in names.
    assert_eq!(r.body["RetryAfterSeconds"], "3600");
    let faults = api.control("GET", "faults", json!(null));
    assert_eq!(
        faults.body["RateLimits"],
        json!([{"Operation": "ListUsers", "RequestsPerSecond": 0.0, "Burst": 2}])
    );
    // Replacing the faults replaces the limits, and refills the buckets.
    let set = api.control(
        "POST",
        "faults",
        json!({"RateLimits": [{"Operation": "ListUsers", "RequestsPerSecond": 0, "Burst": 1}]}),
    );
    assert_eq!(set.status, 200);
    list().assert_ok();
    list().assert_error(429, "ThrottlingException");
    // Refused settings leave the current ones in place.
    for bad in [
        json!([{"Operation": "ListUsers", "RequestsPerSecond": -1, "Burst": 1}]),
        json!([{"Operation": "ListUsers", "Burst": 1}]),
        json!({"Operation": "ListUsers"}),
    ] {
        assert_eq!(api.control("POST", "rate-limits", bad).status, 400);
    }
    list().assert_error(429, "ThrottlingException");
    assert_eq!(api.control("POST", "rate-limits", json!([])).status, 200);
    list().assert_ok();
}

// ------------------------------------------------------------------ seeding

#[test]
fn seeding_a_hundred_thousand_users_is_exact() {
    const N: usize = 100_000;
    let api = demo();

    // Generated by the stand-in.
    let spec = GenerateUsers::new(N);
    let t = Instant::now();
    let count = api.standin.generate_users(EFS, &spec);
    let generated = t.elapsed();
    assert_eq!(count, Ok(N + 1));

    // Built by the caller, as JSON objects.
    let users: Vec<Value> = (0..N)
        .map(|i| {
            let name = format!("member{i:06}");
            json!({"UserName": name, "HomeDirectoryType": "PATH",
                   "HomeDirectory": format!("/acme-sftp/home/{name}"), "Role": ROLE})
        })
        .collect();
    let t = Instant::now();
    let count = api.standin.seed_users(EMPTY, users);
    let given = t.elapsed();
    assert_eq!(count, Ok(N));

    // From a seed file's GenerateUsers, at start.
    let seed = json!({"Servers": [{"ServerId": S3, "GenerateUsers": {"Count": N, "Prefix": "u",
        "HomeDirectoryType": "LOGICAL", "HomeDirectory": "/acme-sftp/home/${UserName}"}}]});
    let t = Instant::now();
    let fleet = start(&seed);
    let started = t.elapsed();
    assert_eq!(fleet.standin.user_count(S3), Some(N));
    eprintln!(
        "seeding {N} users: generate_users {generated:?}, seed_users {given:?}, \
         stand-in start with GenerateUsers {started:?}"
    );

    // Every one of them listed once, in order, in 100-odd pages.
    let mut expected: BTreeSet<String> = (0..N).map(|i| spec.name(i)).collect();
    expected.insert("erin".into());
    let t = Instant::now();
    let names = api.names("ListUsers", Some(EFS), Some(1000));
    eprintln!(
        "listing {} users in pages of 1000: {:?}",
        names.len(),
        t.elapsed()
    );
    assert_eq!(names.first().map(String::as_str), Some("erin"));
    assert_eq!(names[1], "user000001");
    assert_eq!(names.last().map(String::as_str), Some("user100000"));
    assert_each_once_in_order(&names, &expected);
    let server = api.call("DescribeServer", json!({"ServerId": EMPTY}));
    assert_eq!(server.assert_ok()["Server"]["UserCount"], N);

    // A generated user is a whole user.
    let u = fleet.call(
        "DescribeUser",
        json!({"ServerId": S3, "UserName": "u042000"}),
    );
    assert_eq!(
        u.assert_ok()["User"],
        json!({"UserName": "u042000", "HomeDirectoryType": "LOGICAL", "HomeDirectory": "/",
               "HomeDirectoryMappings": [{"Entry": "/", "Target": "/acme-sftp/home/u042000"}],
               "Role": ROLE,
               "Arn": format!("arn:aws:transfer:us-east-1:111122223333:user/{S3}/u042000")})
    );
    let u = api.call(
        "DescribeUser",
        json!({"ServerId": EMPTY, "UserName": "member099999"}),
    );
    assert_eq!(
        u.assert_ok()["User"]["HomeDirectory"],
        "/acme-sftp/home/member099999"
    );
}

#[test]
fn seeding_users_is_all_or_nothing() {
    let api = demo();
    let users = vec![
        json!({"UserName": "frank"}),
        json!({"UserName": "-frank"}),
        json!({"UserName": "grace"}),
    ];
    assert!(api.standin.seed_users(S3, users).is_err());
    assert!(api.standin.seed_users(S3, [json!("frank")]).is_err());
    assert!(
        api.standin
            .seed_users(S3, [json!({"Name": "frank"})])
            .is_err()
    );
    assert!(
        api.standin
            .seed_users(NOWHERE, [json!({"UserName": "frank"})])
            .is_err()
    );
    let bad = GenerateUsers {
        prefix: "-".into(),
        ..GenerateUsers::new(10)
    };
    assert!(api.standin.generate_users(S3, &bad).is_err());
    assert_eq!(api.standin.user_count(S3), Some(4));
    assert!(api.standin.user(S3, "frank").is_none());
    // A name already there is replaced, not duplicated.
    let again = api
        .standin
        .seed_users(S3, [json!({"UserName": "alice", "HomeDirectory": "/x"})]);
    assert_eq!(again, Ok(4));
    assert_eq!(
        api.standin.user(S3, "alice"),
        Some(json!({"UserName": "alice", "HomeDirectory": "/x"}))
    );
}

#[test]
fn users_are_seeded_through_the_control_plane() {
    let api = demo();
    let r = api.control(
        "POST",
        "users",
        json!({"ServerId": EMPTY, "Users": [{"UserName": "zed"}],
               "Generate": {"Count": 1500, "Prefix": "bulk"}}),
    );
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"Added": 1501, "UserCount": 1501}))
    );
    assert_eq!(api.names("ListUsers", Some(EMPTY), None).len(), 1501);
    for bad in [
        json!({"ServerId": NOWHERE, "Users": [{"UserName": "zed"}]}),
        json!({"ServerId": EMPTY, "Users": [{"UserName": "z"}]}),
        json!({"ServerId": EMPTY, "Generate": {"Count": 5, "Prefix": "a b"}}),
        json!({"Users": []}),
    ] {
        let r = api.control("POST", "users", bad);
        assert_eq!(r.status, 400, "{:?}", r.body);
    }
    assert_eq!(api.standin.user_count(EMPTY), Some(1501));
}

#[test]
fn seeds_the_model_refuses_are_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (seed, says) in [
        (json!({}), "Servers"),
        (json!({"Servers": [{"ServerId": "s-1"}]}), "ServerId"),
        (
            json!({"Servers": [{"ServerId": S3}, {"ServerId": S3}]}),
            "twice",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "IdentityProviderType": "LDAP"}]}),
            "IdentityProviderType",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "Domain": "FSX"}]}),
            "Domain",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "Domain": "EFS", "DirectoryListingOptimization": "ENABLED"}]}),
            "S3 servers only",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "DirectoryListingOptimization": "ON"}]}),
            "DirectoryListingOptimization",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "State": "RUNNING"}]}),
            "State",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "LoggingRole": "arn:aws:iam::1:user/x"}]}),
            "LoggingRole",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "Users": [{"UserName": "x"}]}]}),
            "UserName",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "Accesses": [{"ExternalId": "group"}]}]}),
            "ExternalId",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "GenerateUsers": {"Count": 3, "Prefix": "."}}]}),
            "GenerateUsers",
        ),
        (
            json!({"Servers": [{"ServerId": S3, "GenerateUsers": {"Prefix": "x"}}]}),
            "GenerateUsers",
        ),
    ] {
        let err = match rt.block_on(StandIn::start(&seed)) {
            Ok(_) => panic!("{seed} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(says), "{seed}: {err}");
    }
}

#[test]
fn a_shared_limit_meters_every_operation_together() {
    let api = demo();
    let set = api.control(
        "POST",
        "rate-limits",
        json!([{"Operation": "*", "RequestsPerSecond": 0, "Burst": 3}]),
    );
    assert_eq!(set.status, 200, "{:?}", set.body);
    // Three calls of three different operations share the one bucket of three.
    api.call("DescribeUser", json!({"ServerId": S3, "UserName": "alice"}))
        .assert_ok();
    api.call("ListUsers", json!({"ServerId": S3})).assert_ok();
    api.call("DescribeServer", json!({"ServerId": S3}))
        .assert_ok();
    api.call(
        "DescribeAccess",
        json!({"ServerId": S3, "ExternalId": FINANCE}),
    )
    .assert_error(429, "ThrottlingException");
    api.call("ListUsers", json!({"ServerId": S3}))
        .assert_error(429, "ThrottlingException");
    // An operation's own limit applies on top of the shared one.
    api.standin.clear_rate_limits();
    api.standin.set_rate_limit("*", 0.0, 10);
    api.standin.set_rate_limit("ListUsers", 0.0, 1);
    api.call("ListUsers", json!({"ServerId": S3})).assert_ok();
    api.call("ListUsers", json!({"ServerId": S3}))
        .assert_error(429, "ThrottlingException");
    api.call("DescribeServer", json!({"ServerId": S3}))
        .assert_ok();
}

#[test]
fn a_seed_may_generate_a_mixed_fleet_from_several_specs() {
    let seed = json!({"Servers": [{"ServerId": S3, "GenerateUsers": [
        {"Count": 3, "Prefix": "path"},
        {"Count": 2, "Prefix": "logical", "HomeDirectoryType": "LOGICAL"},
    ]}]});
    let api = start(&seed);
    let standin = &api.standin;
    assert_eq!(standin.user_count(S3), Some(5));
    assert_eq!(
        standin.user(S3, "path2").unwrap()["HomeDirectory"],
        "/acme-sftp/home/path2"
    );
    let logical = standin.user(S3, "logical1").unwrap();
    assert_eq!(logical["HomeDirectoryType"], "LOGICAL");
    assert_eq!(
        logical["HomeDirectoryMappings"],
        json!([{"Entry": "/", "Target": "/acme-sftp/home/logical1"}])
    );
    let bad =
        json!({"Servers": [{"ServerId": S3, "GenerateUsers": [{"Count": 1, "Prefix": "a b"}]}]});
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(rt.block_on(StandIn::start(&bad)).is_err());
}
