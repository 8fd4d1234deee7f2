//! The EMF metrics, a test per family, through the real SDK to the stand-in. Every
//! document is also checked against the EMF specification as it is written
//! (`common::emf`), here and in every other test.

use std::time::Duration;

use serde_json::{Value, json};
use transfer_chroot::Invocation;
use transfer_standin::{Fault, FaultRule};

use crate::common::emf::{self, Docs};
use crate::common::{DIRECTORY_SERVER, SERVER, TestApp, event, spawn_app, sqs_event};

async fn app_with_docs() -> (TestApp, Docs) {
    let mut t = spawn_app().await;
    let (emitter, docs) = emf::checked();
    t.app.metrics = emitter;
    (t, docs)
}

fn invocation(id: &str) -> Invocation {
    let mut i = Invocation::with_budget(Duration::from_secs(30));
    i.request_id = id.to_owned();
    i
}

fn dims(doc: &Value) -> Value {
    doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone()
}

/// The one `Invocation` document (it declares `TransferCalls`).
fn invocation_doc(docs: &Docs) -> Value {
    let all = docs.declaring("TransferCalls");
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

#[tokio::test]
async fn an_outcome_is_counted_by_source_with_its_transfer_calls_and_their_latency() {
    let (t, docs) = app_with_docs().await;
    let out = t
        .app
        .dispatch(event("direct-update-user.json"), &invocation("req-update"))
        .await
        .unwrap();
    assert_eq!(out["Status"], "Updated");
    let doc = invocation_doc(&docs);
    assert_eq!(doc["Source"], "direct");
    assert_eq!(doc["RequestId"], "req-update");
    assert_eq!(dims(&doc), json!([["Source"], []]));
    for (metric, n) in [
        ("Updated", 1),
        ("Unchanged", 0),
        ("Planned", 0),
        ("Skipped", 0),
        ("Failed", 0),
        ("Deferred", 0),
    ] {
        assert_eq!(doc[metric], n, "{metric}");
    }
    // DescribeUser then UpdateUser: two calls, each timed.
    let calls = t.standin.requests().len();
    assert_eq!(calls, 2);
    assert_eq!(doc["TransferCalls"], calls);
    let counts: u64 = doc["TransferLatency"]["Counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 2);
    assert!(
        doc["TransferLatency"]["Values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_f64().unwrap() > 0.0)
    );
    // No failure, no audit: nothing else.
    assert_eq!(docs.all().len(), 1);
}

#[tokio::test]
async fn a_failure_is_counted_by_its_error_code_and_bad_input_makes_no_call() {
    let (t, docs) = app_with_docs().await;
    t.app
        .dispatch(event("direct-invalid.json"), &invocation("req-bad"))
        .await
        .unwrap();
    let doc = invocation_doc(&docs);
    assert_eq!(doc["Failed"], 1);
    assert_eq!(doc["TransferCalls"], 0);
    assert!(doc.get("TransferLatency").is_none(), "no call, no latency");
    let failures = docs.declaring("Failed");
    let by_code: Vec<&Value> = failures
        .iter()
        .filter(|d| d.get("ErrorCode").is_some())
        .collect();
    assert_eq!(by_code.len(), 1);
    assert_eq!(by_code[0]["ErrorCode"], "ValidationFailed");
    assert_eq!(by_code[0]["Source"], "direct");
    assert_eq!(by_code[0]["Failed"], 1);
    assert_eq!(by_code[0]["RequestId"], "req-bad");
    assert_eq!(dims(by_code[0]), json!([["Source", "ErrorCode"]]));
}

#[tokio::test]
async fn every_attempt_is_a_transfer_call_retries_included() {
    let (t, docs) = app_with_docs().await;
    // Two throttled answers, then the read succeeds on the SDK's third attempt.
    t.standin
        .add_fault(FaultRule::new(Fault::Throttle, 2).on("DescribeUser"));
    t.app
        .dispatch(event("direct-unchanged.json"), &invocation("req-retry"))
        .await
        .unwrap();
    let doc = invocation_doc(&docs);
    assert_eq!(doc["Unchanged"], 1);
    assert_eq!(doc["TransferCalls"], 3);
    assert_eq!(t.standin.requests().len(), 3);
}

#[tokio::test]
async fn an_sqs_batch_counts_each_record_once() {
    let (t, docs) = app_with_docs().await;
    let batch = sqs_event([
        ("m1".to_owned(), event("direct-update-user.json")),
        ("m2".to_owned(), event("direct-unchanged.json")),
        ("m3".to_owned(), event("direct-invalid.json")),
        ("m4".to_owned(), event("direct-not-allowed.json")),
    ]);
    t.app.dispatch(batch, &invocation("req-sqs")).await.unwrap();
    let doc = invocation_doc(&docs);
    assert_eq!(doc["Source"], "sqs");
    assert_eq!(doc["Updated"], 1);
    assert_eq!(doc["Unchanged"], 1);
    assert_eq!(doc["Failed"], 2);
    assert_eq!(doc["TransferCalls"], t.standin.requests().len());
    let mut codes: Vec<(String, u64)> = docs
        .all()
        .iter()
        .filter(|d| d.get("ErrorCode").is_some())
        .map(|d| {
            (
                d["ErrorCode"].as_str().unwrap().to_owned(),
                d["Failed"].as_u64().unwrap(),
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("NotAllowed".to_owned(), 1),
            ("ValidationFailed".to_owned(), 1)
        ]
    );
}

#[tokio::test]
async fn an_audit_counts_each_class_per_server_as_its_report_does() {
    let (t, docs) = app_with_docs().await;
    let report = t
        .app
        .dispatch(json!({"Action": "Audit"}), &invocation("req-audit"))
        .await
        .unwrap();
    assert_eq!(report["Status"], "Audited");
    assert!(report["Continuation"].is_null());
    let per_server = docs.declaring("NeedsAttention");
    assert!(!per_server.is_empty());
    let mut totals = [0u64; 4];
    for d in &per_server {
        assert_eq!(dims(d), json!([["ServerId"], []]));
        assert_eq!(d["RequestId"], "req-audit");
        for (i, class) in ["Chrooted", "Drifted", "NeedsAttention", "Exempt"]
            .iter()
            .enumerate()
        {
            totals[i] += d[class].as_u64().unwrap();
        }
        assert_eq!(d["Fixed"], 0, "no Fix asked");
    }
    let counts = &report["Counts"];
    assert_eq!(
        totals,
        [
            counts["Chrooted"].as_u64().unwrap(),
            counts["Drifted"].as_u64().unwrap(),
            counts["NeedsAttention"].as_u64().unwrap(),
            counts["Exempt"].as_u64().unwrap(),
        ]
    );
    // The demo seed's users server and its directory server each have a document.
    let servers: Vec<&str> = per_server
        .iter()
        .map(|d| d["ServerId"].as_str().unwrap())
        .collect();
    assert!(
        servers.contains(&SERVER) && servers.contains(&DIRECTORY_SERVER),
        "{servers:?}"
    );
    // With Fix, what was drifted is fixed and counted so.
    let fixed = t
        .app
        .dispatch(
            json!({"Action": "Audit", "Fix": true}),
            &invocation("req-fix"),
        )
        .await
        .unwrap();
    let fixed_docs: u64 = docs
        .declaring("Fixed")
        .iter()
        .filter(|d| d["RequestId"] == "req-fix")
        .map(|d| d["Fixed"].as_u64().unwrap())
        .sum();
    assert_eq!(fixed_docs, fixed["Counts"]["Fixed"].as_u64().unwrap());
    assert!(fixed_docs > 0);
}

#[test]
fn the_checker_refuses_what_the_specification_forbids() {
    let ok = br#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"S":"x","M":1}"#;
    assert_eq!(emf::violations(ok), Vec::<String>::new());
    let too_many = (0..101)
        .map(|i| format!(r#"{{"Name":"M{i}"}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let values = (0..101)
        .map(|i| format!(r#""M{i}":1"#))
        .collect::<Vec<_>>()
        .join(",");
    let many = format!(
        r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"N","Dimensions":[[]],"Metrics":[{too_many}]}}]}},{values}}}"#
    );
    let dims31 = (0..31)
        .map(|i| format!(r#""D{i}""#))
        .collect::<Vec<_>>()
        .join(",");
    let dvals = (0..31)
        .map(|i| format!(r#""D{i}":"v""#))
        .collect::<Vec<_>>()
        .join(",");
    let wide = format!(
        r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"N","Dimensions":[[{dims31}]],"Metrics":[{{"Name":"M"}}]}}]}},{dvals},"M":1}}"#
    );
    for bad in [
        many.as_bytes(),
        wide.as_bytes(),
        // A declared metric without its value.
        br#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]}}"#,
        // A dimension without a string value.
        br#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}]},"S":3,"M":1}"#,
        // No Timestamp; an unknown unit; a string as the metric's value.
        br#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"M","Unit":"Ducks"}]}]},"M":"1"}"#,
        // Values and Counts of different lengths.
        br#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]},"M":{"Values":[1,2],"Counts":[1]}}"#,
        br#"not json"#,
    ] {
        assert!(
            !emf::violations(bad).is_empty(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
