//! Reliability of the SQS, CloudFormation, API Gateway and EventBridge sources under
//! faults injected by the Transfer stand-in (direct commands: `tests/reliability.rs`).
//!
//! The same fault cases for every source: none, a throttling burst, HTTP 500, HTTP 503,
//! connection resets, and answers slower than the SDK's attempt timeout. What each
//! source must guarantee (docs/RELIABILITY.md):
//! - SQS: nothing is lost. Every messageId is either applied (checked against the
//!   stand-in's final state) or in `batchItemFailures`; redelivering the reported ones
//!   after the faults stop converges to every record applied.
//! - CloudFormation: every request (Create, Update, Delete) is answered by exactly one
//!   accepted PUT, also when Transfer is slow past the deadline and when the response
//!   endpoint fails; when the endpoint never accepts, the invocation fails so Lambda
//!   retries it.
//! - API Gateway: only the documented codes (200, 429, 502, 503), `Retry-After` with 429
//!   and 503, and never a body with internals.
//! - EventBridge: a failure returns `Err` (so Lambda retries), success otherwise, and
//!   a success is true in Transfer.
//!
//! Retries stay within the deadline: every invocation is answered within its budget.
//! Each case prints one tally line (`--nocapture`); the figures in docs/RELIABILITY.md
//! come from them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use transfer_chroot::Outcome;
use transfer_chroot::sources::cloudformation::{Responder, RetryPolicy};
use transfer_chroot::sources::sqs::DEADLINE_MARGIN;
use transfer_chroot::transfer::sdk::SdkTransfer;
use transfer_standin::{Fault, FaultRule, Faults, StandIn};

const ATTEMPTS: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);
/// Slower than [`ATTEMPT_TIMEOUT`]: an attempt that meets it is abandoned by the SDK.
const SLOW_MS: u64 = 1_500;
/// The longest one Transfer call may take with every attempt abandoned, plus slack for
/// the backoff and a loaded machine.
const ONE_CALL_BOUND: Duration = Duration::from_millis(ATTEMPTS as u64 * 300 + 600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    NoFault,
    Throttle,
    Http500,
    Http503,
    Reset,
    Slow,
}

const CASES: [Case; 6] = [
    Case::NoFault,
    Case::Throttle,
    Case::Http500,
    Case::Http503,
    Case::Reset,
    Case::Slow,
];

impl Case {
    fn fault(self) -> Option<Fault> {
        match self {
            Case::NoFault => None,
            Case::Throttle => Some(Fault::Throttle),
            Case::Http500 => Some(Fault::Status(500)),
            Case::Http503 => Some(Fault::Status(503)),
            Case::Reset => Some(Fault::Drop),
            Case::Slow => Some(Fault::DelayMs(SLOW_MS)),
        }
    }
}

/// Faults on the next `times` calls of every Transfer operation (not on the
/// CloudFormation response sink, which has its own cases).
fn inject(t: &TestApp, case: Case, times: u32) {
    if let Some(fault) = case.fault() {
        for op in [
            "DescribeUser",
            "UpdateUser",
            "DescribeAccess",
            "UpdateAccess",
        ] {
            t.standin
                .add_fault(FaultRule::new(fault.clone(), times).on(op));
        }
    }
}

fn clear_faults(t: &TestApp) {
    t.standin.set_faults(Faults::default());
}

/// The demo seed plus `n` PATH users `user01`.. that each need a write.
fn seed_with_users(n: usize) -> Value {
    let mut seed = seed();
    if let Some(users) = seed["Servers"][0]["Users"].as_array_mut() {
        for i in 1..=n {
            users.push(
                json!({"UserName": format!("user{i:02}"), "HomeDirectoryType": "PATH",
                "HomeDirectory": format!("/acme-sftp/home/user{i:02}"),
                "Role": "arn:aws:iam::111122223333:role/sftp-user"}),
            );
        }
    }
    seed
}

/// The demo app with short timeouts (SDK attempts, CloudFormation PUTs) so the slow
/// cases run in seconds, and `n` extra users.
async fn app(n: usize) -> TestApp {
    let standin = StandIn::start(&seed_with_users(n))
        .await
        .expect("stand-in starts");
    let transfer = SdkTransfer::new(sdk_client_with(
        &standin.endpoint(),
        ATTEMPTS,
        ATTEMPT_TIMEOUT,
    ));
    let mut app = crate::common::app(config_for(&standin, &[]), transfer);
    app.cfn = Responder::with_policy(RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        attempt_timeout: ATTEMPT_TIMEOUT,
    });
    TestApp { standin, app }.warmed().await
}

/// The mapping target of a chrooted subject, `None` when it is not chrooted.
fn chroot_target(live: &Value) -> Option<String> {
    let mappings = live["HomeDirectoryMappings"].as_array()?;
    (live["HomeDirectoryType"] == "LOGICAL" && mappings.len() == 1)
        .then(|| mappings[0]["Target"].as_str().map(str::to_owned))
        .flatten()
}

fn user_target(t: &TestApp, user: &str) -> Option<String> {
    t.standin
        .user(SERVER, user)
        .as_ref()
        .and_then(chroot_target)
}

// ------------------------------------------------------------------------------ SQS

/// One SQS message: its body, and (for a valid one) the user and the home it asks for.
#[derive(Debug, Clone)]
struct Msg {
    id: String,
    body: Value,
    want: Option<(String, String)>,
}

fn update(id: &str, user: &str, home: &str) -> Msg {
    Msg {
        id: id.to_owned(),
        body: json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": user,
                     "HomeDirectory": home}),
        want: Some((user.to_owned(), home.to_owned())),
    }
}

fn invalid(id: &str, body: Value) -> Msg {
    Msg {
        id: id.to_owned(),
        body,
        want: None,
    }
}

const INVALID_NAMES: [&str; 2] = ["../etc", "intruder"];

/// `users` users with one record each, the first four again with a later home (same
/// target, later in the batch: order matters), an EventBridge event inside a body, and
/// three invalid records.
fn messages(users: usize) -> Vec<Msg> {
    let mut msgs: Vec<Msg> = (1..=users)
        .map(|i| {
            let u = format!("user{i:02}");
            update(&format!("m-{u}"), &u, &format!("/acme-sftp/home/{u}"))
        })
        .collect();
    for i in 1..=4.min(users) {
        let u = format!("user{i:02}");
        msgs.push(update(
            &format!("m-{u}-v2"),
            &u,
            &format!("/acme-sftp/home/{u}/v2"),
        ));
    }
    msgs.push(Msg {
        id: "m-dave-event".into(),
        body: json!({"version": "0", "id": "e-1", "detail-type": "Directory Group Membership Changed",
            "source": "acme.directory", "account": "123456789012", "time": "2021-11-11T21:29:54Z",
            "region": "us-east-1", "resources": [],
            "detail": {"UserName": "dave@example.com", "Groups": ["staff"]}}),
        want: Some((
            "dave@example.com".into(),
            "/acme-sftp/home/dave@example.com".into(),
        )),
    });
    msgs.push(invalid("m-not-json", Value::String("{not json".into())));
    msgs.push(invalid(
        "m-traversal",
        json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": INVALID_NAMES[0],
               "HomeDirectory": "/acme-sftp/home/../../etc"}),
    ));
    msgs.push(invalid(
        "m-outside-roots",
        json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": INVALID_NAMES[1],
               "HomeDirectory": "/etc"}),
    ));
    msgs
}

/// The real SQS envelope with one record per message.
fn sqs_batch(msgs: &[&Msg]) -> Value {
    sqs_event(msgs.iter().map(|m| (m.id.clone(), m.body.clone())))
}

fn reported(reply: &Value) -> BTreeSet<String> {
    reply["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch response: {reply}"))
        .iter()
        .map(|f| {
            f["itemIdentifier"]
                .as_str()
                .expect("an itemIdentifier")
                .to_owned()
        })
        .collect()
}

/// Every message is applied or reported. Per user, the records that were not reported
/// are a prefix of its records (a retryable failure holds back the later ones), and
/// the live state is the last of them, or a later reported record whose write landed
/// before it was reported (redelivery applies it again). A user with no record done is
/// untouched or holds one of its records. Invalid records are reported and never reach
/// Transfer.
fn check_nothing_lost(t: &TestApp, msgs: &[&Msg], failed: &BTreeSet<String>) {
    let ids: BTreeSet<String> = msgs.iter().map(|m| m.id.clone()).collect();
    assert!(failed.is_subset(&ids), "unknown ids reported: {failed:?}");
    let mut by_user: BTreeMap<&str, Vec<&Msg>> = BTreeMap::new();
    for m in msgs {
        match &m.want {
            Some((user, _)) => by_user.entry(user).or_default().push(m),
            None => assert!(failed.contains(&m.id), "invalid {} not reported", m.id),
        }
    }
    for (user, records) in by_user {
        let done = records
            .iter()
            .take_while(|m| !failed.contains(&m.id))
            .count();
        assert!(
            records[done..].iter().all(|m| failed.contains(&m.id)),
            "{user}: a record was applied after an earlier one failed: {:?}",
            records.iter().map(|m| &m.id).collect::<Vec<_>>()
        );
        let live = user_target(t, user);
        let allowed: Vec<Option<String>> = records[done.saturating_sub(1)..]
            .iter()
            .map(|m| m.want.as_ref().map(|(_, h)| h.clone()))
            .chain((done == 0).then_some(None))
            .collect();
        assert!(
            allowed.contains(&live),
            "{user}: live {live:?}, done {done} of {}, allowed {allowed:?}",
            records.len()
        );
    }
    let called: BTreeSet<String> = t
        .standin
        .requests()
        .iter()
        .filter_map(|r| r.body["UserName"].as_str().map(str::to_owned))
        .collect();
    for name in INVALID_NAMES {
        assert!(
            !called.contains(name),
            "invalid input reached Transfer: {name}"
        );
    }
}

/// After redelivery every valid user holds its last record.
fn check_converged(t: &TestApp, msgs: &[Msg]) {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for m in msgs {
        if let Some((user, home)) = &m.want {
            last.insert(user, home);
        }
    }
    for (user, home) in last {
        assert_eq!(
            user_target(t, user).as_deref(),
            Some(home),
            "{user} after redelivery"
        );
    }
}

/// Runs a batch within `budget`, checks it, then redelivers what was reported (as SQS
/// does, in order, same ids) with the faults gone until only the invalid records are
/// left. Returns (reported on the first delivery, deliveries needed, elapsed).
async fn deliver_until_done(
    t: &TestApp,
    msgs: &[Msg],
    budget: Duration,
) -> (usize, usize, Duration) {
    let all: Vec<&Msg> = msgs.iter().collect();
    let started = Instant::now();
    let reply = t
        .invoke_with_budget(sqs_batch(&all), budget)
        .await
        .expect("a batch response, never an invocation error");
    let elapsed = started.elapsed();
    assert!(
        elapsed < budget,
        "answered after {elapsed:?} (budget {budget:?})"
    );
    let mut failed = reported(&reply);
    check_nothing_lost(t, &all, &failed);
    let first = failed.len();

    clear_faults(t);
    let invalid: BTreeSet<String> = msgs
        .iter()
        .filter(|m| m.want.is_none())
        .map(|m| m.id.clone())
        .collect();
    let mut deliveries = 1;
    while failed != invalid {
        assert!(deliveries < 4, "not converging: {failed:?}");
        let again: Vec<&Msg> = msgs.iter().filter(|m| failed.contains(&m.id)).collect();
        let reply = t
            .invoke_with_budget(sqs_batch(&again), Duration::from_secs(30))
            .await
            .expect("a batch response");
        failed = reported(&reply);
        check_nothing_lost(t, &again, &failed);
        deliveries += 1;
    }
    check_converged(t, msgs);
    (first, deliveries, elapsed)
}

#[tokio::test]
async fn sqs_loses_nothing_under_each_fault() {
    const USERS: usize = 20;
    for case in CASES {
        let t = app(USERS).await;
        let msgs = messages(USERS);
        // Enough faults that some records exhaust their retries and some recover.
        inject(&t, case, 12);
        let (first, deliveries, elapsed) =
            deliver_until_done(&t, &msgs, Duration::from_secs(10)).await;
        println!(
            "sqs {case:?}: {} records, {} faulted calls, {first} reported on the first delivery \
             (3 invalid), converged after {deliveries} deliveries, first answered in {elapsed:.2?}",
            msgs.len(),
            faulted(&t)
        );
    }
}

#[tokio::test]
async fn sqs_loses_nothing_when_transfer_is_slow_past_the_deadline() {
    const USERS: usize = 10;
    let t = app(USERS).await;
    let msgs = messages(USERS);
    // Every call slower than the attempt timeout, and a budget that cannot fit them.
    t.standin
        .add_fault(FaultRule::new(Fault::DelayMs(SLOW_MS), u32::MAX));
    let budget = DEADLINE_MARGIN + Duration::from_millis(700);
    let (first, deliveries, elapsed) = deliver_until_done(&t, &msgs, budget).await;
    assert_eq!(first, msgs.len(), "nothing can finish in time");
    println!(
        "sqs slow past the deadline: {} records, budget {budget:?}, all {first} reported, \
         answered in {elapsed:.2?}, converged after {deliveries} deliveries",
        msgs.len()
    );
}

#[tokio::test]
async fn sqs_loses_nothing_in_a_throttling_burst_across_a_large_batch() {
    const USERS: usize = 60;
    let t = app(USERS).await;
    let msgs = messages(USERS);
    t.standin.add_fault(FaultRule::new(Fault::Throttle, 150));
    let (first, deliveries, elapsed) = deliver_until_done(&t, &msgs, Duration::from_secs(10)).await;
    println!(
        "sqs throttling burst: {} records, {} throttled calls, {first} reported, answered in \
         {elapsed:.2?}, converged after {deliveries} deliveries",
        msgs.len(),
        faulted(&t)
    );
}

// --------------------------------------------------------------------- CloudFormation

const CREATE: &str = "example-cloudformation-custom-resource-create-request.json";
const UPDATE: &str = "example-cloudformation-custom-resource-update-request.json";
const DELETE: &str = "example-cloudformation-custom-resource-delete-request.json";

fn cfn_request(t: &TestApp, file: &str, user: &str, physical: Option<&str>) -> Value {
    let mut event = envelope(file);
    event["ResponseURL"] = format!(
        "{}/cfn-response/{user}?X-Amz-Signature=secret",
        t.standin.endpoint()
    )
    .into();
    event["ResourceProperties"] = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:transfer-chroot",
        "ServerId": SERVER, "UserName": user, "HomeDirectory": format!("/acme-sftp/home/{user}")
    });
    if let Some(id) = physical {
        event["PhysicalResourceId"] = id.into();
        event["OldResourceProperties"] = event["ResourceProperties"].clone();
    }
    event
}

/// Invokes one request and checks it was answered exactly once within `budget`:
/// `Ok(body)` when one PUT was accepted (and it is what the handler returned, and
/// every attempt sent the same body), `Err` only when none was.
async fn cfn_answer(t: &TestApp, event: Value, budget: Duration) -> Result<Value, String> {
    let before = t.standin.responses().len();
    let started = Instant::now();
    let result = t.invoke_with_budget(event, budget).await;
    let elapsed = started.elapsed();
    assert!(elapsed < budget, "answered after {elapsed:?}");
    let puts = t.standin.responses()[before..].to_vec();
    assert!(puts.len() <= 4, "at most the responder's 4 attempts");
    let accepted: Vec<_> = puts.iter().filter(|p| p.accepted).collect();
    for p in &puts {
        assert!(p.size <= 4096);
        assert_eq!(p.query.as_deref(), Some("X-Amz-Signature=secret"));
    }
    match result {
        Ok(body) => {
            assert_eq!(accepted.len(), 1, "exactly one accepted answer: {puts:?}");
            assert_eq!(puts.last().map(|p| p.accepted), Some(true));
            assert!(
                puts.iter().all(|p| p.body == body),
                "every attempt sends the same answer"
            );
            Ok(body)
        }
        Err(e) => {
            assert!(accepted.is_empty(), "Err although delivered: {e}");
            assert!(!e.contains("secret"), "{e}");
            Err(e)
        }
    }
}

fn check_cfn_body(t: &TestApp, body: &Value, user: &str, request: &str) {
    let reason = body["Reason"].as_str().unwrap_or_default();
    match body["Status"].as_str() {
        Some("SUCCESS") if request == DELETE => {}
        Some("SUCCESS") => assert_eq!(
            user_target(t, user),
            Some(format!("/acme-sftp/home/{user}")),
            "SUCCESS is true in Transfer"
        ),
        Some("FAILED") => {
            assert_ne!(request, DELETE, "Delete never fails: {body}");
            assert!(
                ["Throttled: ", "Upstream: ", "Timeout: "]
                    .iter()
                    .any(|p| reason.starts_with(p)),
                "{reason}"
            );
        }
        _ => panic!("not a CloudFormation response: {body}"),
    }
}

#[tokio::test]
async fn cloudformation_answers_every_request_exactly_once_under_each_fault() {
    let budget = Duration::from_secs(4);
    for case in CASES {
        let t = app(3).await;
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        let requests = [
            (CREATE, "user01", None),
            (UPDATE, "user02", Some("s-0123456789abcdef0/users/user02")),
            (DELETE, "user03", Some("s-0123456789abcdef0/users/user03")),
        ];
        for (file, user, physical) in requests {
            // Transfer faults for every call, and the response endpoint failing the
            // first two PUTs the same way (a slow one past the PUT's attempt timeout).
            inject(&t, case, u32::MAX);
            if let Some(fault) = case.fault() {
                t.standin
                    .add_fault(FaultRule::new(fault, 2).on("CfnResponse"));
            }
            let event = cfn_request(&t, file, user, physical);
            let body = cfn_answer(&t, event.clone(), budget)
                .await
                .unwrap_or_else(|e| panic!("{case:?} {file}: not delivered: {e}"));
            check_cfn_body(&t, &body, user, file);
            *tally
                .entry(body["Status"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;

            // CloudFormation (or the operator) retries the stack: it converges.
            clear_faults(&t);
            let body = cfn_answer(&t, event, budget).await.expect("delivered");
            assert_eq!(body["Status"], "SUCCESS", "{case:?} {file}: {body}");
            check_cfn_body(&t, &body, user, file);
        }
        println!(
            "cloudformation {case:?}: Create/Update/Delete under persistent Transfer faults and 2 \
             failed PUTs each: {tally:?}, {} PUTs in all, every request answered once; SUCCESS \
             for all three after the faults",
            t.standin.responses().len()
        );
    }
}

#[tokio::test]
async fn cloudformation_fails_the_invocation_when_the_endpoint_never_accepts() {
    let budget = Duration::from_secs(4);
    for fault in [
        Fault::Status(500),
        Fault::Status(503),
        Fault::Drop,
        Fault::DelayMs(SLOW_MS),
    ] {
        let t = app(1).await;
        t.standin
            .add_fault(FaultRule::new(fault.clone(), u32::MAX).on("CfnResponse"));
        let event = cfn_request(&t, CREATE, "user01", None);
        let err = cfn_answer(&t, event.clone(), budget)
            .await
            .expect_err("no answer accepted: the invocation fails, so Lambda retries it");
        assert!(err.contains("ResponseNotDelivered"), "{fault:?}: {err}");
        // Lambda's retry answers; the work is idempotent.
        clear_faults(&t);
        let body = cfn_answer(&t, event, budget).await.expect("delivered");
        assert_eq!(body["Status"], "SUCCESS");
        assert_eq!(body["Data"]["Status"], "Unchanged", "applied once already");
        println!(
            "cloudformation endpoint never accepting ({fault:?}): Err, then answered on retry"
        );
    }
}

#[tokio::test]
async fn cloudformation_answers_before_the_deadline_when_transfer_is_slower() {
    let t = app(1).await;
    t.standin.set_latency(Duration::from_secs(5));
    let budget = Duration::from_millis(1500);
    for (file, physical) in [
        (CREATE, None),
        (UPDATE, Some("s-0123456789abcdef0/users/user01")),
    ] {
        let body = cfn_answer(&t, cfn_request(&t, file, "user01", physical), budget)
            .await
            .expect("answered before the deadline");
        assert_eq!(body["Status"], "FAILED");
        // Whichever gives up first: the SDK's attempts (3 × 300 ms) or the work budget.
        assert!(
            body["Reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("Timeout: ") || r.starts_with("Upstream: ")),
            "{body}"
        );
    }
}

// ----------------------------------------------------------------------- API Gateway

fn api(method: &str, path: &str, body: Option<Value>) -> Value {
    let mut e = envelope("example-apigw-v2-request-iam.json");
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = path.into();
    e["rawPath"] = path.into();
    e["rawQueryString"] = "".into();
    e["body"] = body.map_or(Value::Null, |b| b.to_string().into());
    e
}

/// Checks one reply against the documented codes; returns its status.
fn check_http(reply: &Value, case: Case) -> u64 {
    let status = reply["statusCode"].as_u64().expect("statusCode");
    let headers = &reply["headers"];
    assert_eq!(headers["Content-Type"], "application/json", "{reply}");
    let text = reply["body"].as_str().expect("a string body");
    // A result, or for a successful GET the live settings read back.
    let body: Value = serde_json::from_str(text).expect("the body is JSON");
    for internal in INTERNALS {
        assert!(!text.contains(internal), "{case:?}: {internal} in {text}");
    }
    let error = &body["Error"];
    let retryable = error["Retryable"].as_bool();
    match (status, error["Code"].as_str()) {
        (200, None) => {}
        (429, Some("Throttled")) | (503, Some("Upstream")) => {
            assert!(headers["Retry-After"].as_str().is_some(), "{reply}");
            assert_eq!(retryable, Some(true), "{text}");
            assert!(error["Message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        (502, Some("Upstream")) => assert_eq!(retryable, Some(false), "{text}"),
        other => panic!("{case:?}: undocumented answer {other:?}: {text}"),
    }
    if case == Case::NoFault {
        assert_eq!(status, 200, "{text}");
    }
    status
}

#[tokio::test]
async fn api_gateway_answers_documented_codes_under_each_fault() {
    let routes = || {
        vec![
            api(
                "PUT",
                "/servers/s-0123456789abcdef0/users/alice",
                Some(json!({"HomeDirectory": "/acme-sftp/home/alice"})),
            ),
            api("GET", "/servers/s-0123456789abcdef0/users/bob", None),
            api(
                "PUT",
                &format!("/servers/{DIRECTORY_SERVER}/accesses/{FINANCE_SID}"),
                Some(json!({"HomeDirectory": "/acme-sftp/groups/finance"})),
            ),
        ]
    };
    for case in CASES {
        let mut tally: BTreeMap<u64, usize> = BTreeMap::new();
        // Persistent faults: every retry fails, the answer says so with its code.
        let t = app(0).await;
        inject(&t, case, u32::MAX);
        for event in routes() {
            let started = Instant::now();
            let status = check_http(&t.invoke(event).await, case);
            assert!(started.elapsed() < 2 * ONE_CALL_BOUND, "{case:?}");
            let want = match case {
                Case::NoFault => 200,
                Case::Throttle => 429,
                _ => 503,
            };
            assert_eq!(status, want, "{case:?}");
            *tally.entry(status).or_default() += 1;
        }
        // Two faulted calls per operation: the SDK's retries may absorb them. A 200 is
        // true in Transfer.
        let t = app(0).await;
        inject(&t, case, 2);
        for event in routes() {
            let status = check_http(&t.invoke(event).await, case);
            *tally.entry(status).or_default() += 1;
        }
        if user_target(&t, "alice").is_none() {
            assert_eq!(
                t.standin.user(SERVER, "alice").unwrap()["HomeDirectoryType"],
                "PATH"
            );
        }
        println!("api gateway {case:?}: status codes {tally:?}");
    }
}

#[tokio::test]
async fn api_gateway_answers_many_concurrent_requests_during_faults() {
    let t = app(40).await;
    t.standin.add_fault(FaultRule::new(Fault::Throttle, 30));
    t.standin.add_fault(FaultRule::new(Fault::Status(503), 30));
    t.standin.add_fault(FaultRule::new(Fault::Drop, 20));
    let events: Vec<Value> = (1..=40)
        .map(|i| {
            api(
                "PUT",
                &format!("/servers/s-0123456789abcdef0/users/user{i:02}"),
                Some(json!({"HomeDirectory": format!("/acme-sftp/home/user{i:02}")})),
            )
        })
        .collect();
    let started = Instant::now();
    let replies = futures::future::join_all(events.into_iter().map(|e| t.invoke(e))).await;
    let mut tally: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, reply) in replies.iter().enumerate() {
        let status = check_http(reply, Case::Throttle);
        let user = format!("user{:02}", i + 1);
        if status == 200 {
            assert_eq!(
                user_target(&t, &user),
                Some(format!("/acme-sftp/home/{user}"))
            );
        }
        *tally.entry(status).or_default() += 1;
    }
    println!(
        "api gateway, 40 concurrent PUTs with 80 faulted calls: {tally:?} in {:.2?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------------------ EventBridge

fn membership(user: &str) -> Value {
    eventbridge_event(
        "Directory Group Membership Changed",
        json!({"ServerId": SERVER, "UserName": user, "Groups": ["staff"]}),
    )
}

fn group_changed() -> Value {
    eventbridge_event(
        "Directory Group Changed",
        json!({"ServerId": DIRECTORY_SERVER, "ExternalId": FINANCE_SID, "GroupName": "sftp-finance"}),
    )
}

/// `Ok` is true in Transfer; `Err` carries a retryable `Throttled`/`Upstream` result.
async fn eventbridge_once(t: &TestApp, event: Value, case: Case) -> Result<String, String> {
    let started = Instant::now();
    let result = t.invoke_with_budget(event, Duration::from_secs(30)).await;
    assert!(started.elapsed() < 2 * ONE_CALL_BOUND, "{case:?}");
    match result {
        Ok(reply) => {
            let out: Outcome = serde_json::from_value(reply.clone()).expect("a result");
            let status = format!("{:?}", out.status);
            assert!(
                matches!(status.as_str(), "Updated" | "Unchanged"),
                "{reply}"
            );
            match (&out.identity.user_name, &out.identity.external_id) {
                (Some(u), _) => assert_eq!(user_target(t, u), Some(format!("/acme-sftp/home/{u}"))),
                (_, Some(a)) => assert!(
                    t.standin
                        .access(DIRECTORY_SERVER, a)
                        .as_ref()
                        .and_then(chroot_target)
                        .is_some()
                ),
                _ => panic!("no identity: {reply}"),
            }
            Ok(status)
        }
        Err(e) => {
            let json = &e[e.find('{').unwrap_or_else(|| panic!("no result in {e}"))..];
            let out: Outcome = serde_json::from_str(json).expect("the error carries the result");
            let error = out.error.expect("an error");
            let code = format!("{:?}", error.code);
            assert!(matches!(code.as_str(), "Throttled" | "Upstream"), "{e}");
            assert!(error.retryable, "{e}");
            assert_ne!(case, Case::NoFault, "{e}");
            Err(code)
        }
    }
}

#[tokio::test]
async fn eventbridge_fails_the_invocation_exactly_when_a_fault_wins() {
    let users = ["alice", "carol", "dave@example.com"];
    for case in CASES {
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for times in [u32::MAX, 2] {
            let t = app(0).await;
            inject(&t, case, times);
            let events: Vec<Value> = users
                .iter()
                .map(|u| membership(u))
                .chain([group_changed()])
                .collect();
            for event in &events {
                let r = eventbridge_once(&t, event.clone(), case).await;
                if times == u32::MAX && case != Case::NoFault {
                    assert!(r.is_err(), "{case:?}: a persistent fault must fail: {r:?}");
                }
                *tally.entry(r.unwrap_or_else(|e| e)).or_default() += 1;
            }
            // Lambda's retry after the faults: every event succeeds.
            clear_faults(&t);
            for event in events {
                assert!(eventbridge_once(&t, event, Case::NoFault).await.is_ok());
            }
        }
        println!("eventbridge {case:?} (persistent, then 2 per operation): {tally:?}");
    }
}
