//! The real binary under the compiled Runtime API emulator
//! (`transfer_standin::runtime_api`, the one `bench/` uses): Lambda Managed Instances'
//! `AWS_LAMBDA_MAX_CONCURRENCY` serves that many invocations at once in one process;
//! without it, one at a time. Every invocation is answered with its own result, and
//! every outcome line carries its own request id.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use transfer_standin::StandIn;

use crate::common::function::Function;
use crate::common::{event, seed};

/// Each Transfer call takes this long, so one invocation (one DescribeUser) does too.
const CALL: Duration = Duration::from_millis(200);
const INVOCATIONS: usize = 8;

/// Starts the function, warms it (one invocation: the server's DescribeServer is then
/// cached), then sends `INVOCATIONS` at once and reports how long they all took, the
/// stand-in's peak of concurrent requests, and the results with their request ids.
async fn burst(extra: &[(&str, &str)]) -> (Duration, usize, Vec<(String, Value)>, Function) {
    let standin = StandIn::start(&seed()).await.expect("stand-in starts");
    let function = Function::start(&standin, extra).await;
    let api = &function.api;
    let unchanged = event("direct-unchanged.json").to_string();
    let warm = api
        .invoke(unchanged.clone())
        .await
        .expect("warm-up answered");
    assert_eq!(warm.kind, "response", "{:?}", warm.body);

    standin.set_latency(CALL);
    standin.clear_requests();
    let started = Instant::now();
    let results =
        futures::future::join_all((0..INVOCATIONS).map(|_| api.invoke(unchanged.clone()))).await;
    let elapsed = started.elapsed();
    let results = results
        .into_iter()
        .map(|r| {
            let r = r.expect("every invocation is answered");
            assert_eq!(r.kind, "response");
            let body: Value = serde_json::from_slice(&r.body).expect("a JSON result");
            (r.request_id, body)
        })
        .collect::<Vec<_>>();
    // One DescribeUser per invocation, nothing more, whatever the concurrency.
    assert_eq!(standin.calls("DescribeUser"), INVOCATIONS);
    assert_eq!(standin.requests().len(), INVOCATIONS);
    (elapsed, standin.peak_concurrency(), results, function)
}

fn assert_each_answered_and_logged(results: &[(String, Value)], function: &Function) {
    for (_, body) in results {
        assert_eq!(body["Status"], "Unchanged", "{body}");
        assert_eq!(body["UserName"], "bob");
    }
    let ids: BTreeSet<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), INVOCATIONS, "one request id per invocation");
    // The outcome line of every invocation carries that invocation's request id (the
    // runtime's span), so interleaved invocations stay attributable.
    let lines = function.log_lines();
    let logged: BTreeSet<String> = lines
        .iter()
        .filter(|l| l["message"] == "outcome" && l["status"] == "Unchanged")
        .filter_map(request_id)
        .collect();
    for id in &ids {
        assert!(
            logged.contains(*id),
            "no outcome line with requestId {id}: {lines:#?}"
        );
    }
    // The binary's own EMF documents: each passes the specification, and each
    // invocation's carries its request id.
    let docs: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    for d in &docs {
        let bad = crate::common::emf::violations(d.to_string().as_bytes());
        assert!(bad.is_empty(), "{bad:?}: {d}");
        // Kept by Lambda's log-level filter at the configured level (INFO here).
        assert_eq!(d["level"], "INFO", "{d}");
    }
    let measured: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d["Unchanged"] == 1)
        .filter_map(|d| d["RequestId"].as_str())
        .collect();
    for id in &ids {
        assert!(measured.contains(id), "no metrics with RequestId {id}");
    }
}

/// The request id a log line is attributed to (its runtime span's `requestId`).
fn request_id(line: &Value) -> Option<String> {
    line["spans"]
        .as_array()?
        .iter()
        .find_map(|s| s["requestId"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_max_concurrency_four_eight_invocations_finish_in_two_waves() {
    let (elapsed, peak, results, function) = burst(&[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]).await;
    assert_eq!(peak, 4, "four invocations in flight at once, never more");
    // Two waves of 200 ms, not eight: a run at one at a time takes 1.6 s or more.
    assert!(elapsed >= CALL * 2, "{elapsed:?}");
    assert!(elapsed < CALL * 6, "{elapsed:?}: not concurrent");
    assert_each_answered_and_logged(&results, &function);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_variable_one_invocation_at_a_time() {
    let (elapsed, peak, results, function) = burst(&[]).await;
    assert_eq!(peak, 1, "one invocation at a time");
    assert!(elapsed >= CALL * INVOCATIONS as u32, "{elapsed:?}");
    assert_each_answered_and_logged(&results, &function);
}
