//! For property tests: proptest's runner is synchronous, so the app and its stand-in
//! live on a multi-threaded runtime whose workers serve the stand-in while a case
//! blocks on the handler. One harness per test function (tests run in parallel and the
//! request log is per stand-in).

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::Value;
use transfer_standin::{Recorded, ResponsePut};

use super::{TestApp, spawn_app};

pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub t: TestApp,
}

/// What one dispatched event produced: the reply (or the invocation's error), the
/// Transfer requests and the CloudFormation responses made during it.
pub struct Dispatched {
    pub reply: Result<Value, String>,
    pub requests: Vec<Recorded>,
    pub responses: Vec<ResponsePut>,
}

impl Harness {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let t = rt.block_on(spawn_app());
        Self { rt, t }
    }

    pub fn dispatch(&self, event: Value) -> Dispatched {
        self.t.standin.clear_requests();
        let before = self.t.standin.responses().len();
        let reply = self
            .rt
            .block_on(self.t.invoke_with_budget(event, Duration::from_secs(30)));
        Dispatched {
            reply,
            requests: self.t.standin.requests(),
            responses: self.t.standin.responses()[before..].to_vec(),
        }
    }
}

/// Runs `cases` cases of `strategy` without persisting failures to disk.
pub fn run<S: Strategy>(
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    if let Err(e) = runner.run(&strategy, check) {
        panic!("{e}");
    }
}

/// A JSON value of any shape (depth up to 4), with `hostile` strings among its leaves.
pub fn any_json(hostile: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        hostile.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
