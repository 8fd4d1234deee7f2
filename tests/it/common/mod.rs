//! One helper for every integration test: starts the Transfer stand-in on loopback
//! (seeded with `demo/seed.json`), points the real SDK at it, and builds the function's
//! dependencies from `demo/config.env` — the same data the README's demo uses.
#![allow(dead_code)]

pub mod blocking;
pub mod cfn;
pub mod directory;
pub mod emf;
pub mod function;
pub mod moto;

use std::path::Path;
use std::time::Duration;

use aws_sdk_transfer::config::retry::RetryConfig;
use aws_sdk_transfer::config::timeout::TimeoutConfig;
use aws_sdk_transfer::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use transfer_chroot::transfer::sdk::SdkTransfer;
use transfer_chroot::{App, Config, Invocation, Outcome};
use transfer_standin::StandIn;

pub const SERVER: &str = "s-0123456789abcdef0";
/// The directory (AWS_DIRECTORY_SERVICE) server of the demo seed: where accesses live.
pub const DIRECTORY_SERVER: &str = "s-0123456789abcdef1";
pub const FINANCE_SID: &str = "S-1-5-21-1004336348-1177238915-682003330-1105";

/// What a reply must never show: SDK and transport internals, code locations, panics,
/// the endpoint Transfer was reached at, raw AWS headers.
pub const INTERNALS: &[&str] = &[
    "dispatch",
    "SdkError",
    "ServiceError {",
    "hyper",
    "connector",
    "panicked",
    "src/",
    "127.0.0.1",
    "X-Amz",
    "backtrace",
    "RUST_BACKTRACE",
];

pub struct TestApp {
    pub standin: StandIn,
    pub app: App<SdkTransfer>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A sample event from `events/`, parsed.
pub fn event(name: &str) -> Value {
    let path = root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A real AWS envelope from `tests/fixtures/aws-events/` (see its SOURCE.md).
pub fn envelope(name: &str) -> Value {
    let path = root().join("tests/fixtures/aws-events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The real EventBridge envelope with our detail-type, source and detail inside.
pub fn eventbridge_event(detail_type: impl Into<Value>, detail: Value) -> Value {
    let mut e = envelope("example-eventbridge-event-obj.json");
    e["detail-type"] = detail_type.into();
    e["source"] = "acme.directory".into();
    e["detail"] = detail;
    e
}

/// The real SQS envelope, one copy of its record per `(messageId, body)`; a body that
/// is not a JSON string is sent as its JSON text.
pub fn sqs_event(records: impl IntoIterator<Item = (String, Value)>) -> Value {
    let mut batch = envelope("example-sqs-event.json");
    let template = batch["Records"][0].clone();
    batch["Records"] = records
        .into_iter()
        .map(|(id, body)| {
            let mut r = template.clone();
            r["messageId"] = id.into();
            r["body"] = match body {
                Value::String(s) => s.into(),
                other => other.to_string().into(),
            };
            r
        })
        .collect();
    batch
}

/// How many calls the stand-in answered with an injected fault (a slow call that was
/// abandoned is not recorded, so a delay shows only in the ones that outlived it).
pub fn faulted(t: &TestApp) -> usize {
    t.standin
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count()
}

pub fn seed() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("demo/seed.json")).unwrap()).unwrap()
}

pub use function::demo_vars;

/// Adds `count` users named `prefix` + a number to `server` of `standin`, each with
/// `kind` (`PATH`, `LOGICAL`) and `home` (`${UserName}` replaced by the name).
pub fn generate_users(
    standin: &StandIn,
    server: &str,
    prefix: &str,
    count: usize,
    kind: &str,
    home: &str,
) {
    standin
        .generate_users(
            server,
            &transfer_standin::GenerateUsers {
                count,
                prefix: prefix.to_owned(),
                start: 1,
                home_directory_type: kind.to_owned(),
                home_directory: home.to_owned(),
                role: "arn:aws:iam::111122223333:role/sftp-user".to_owned(),
            },
        )
        .expect("generated");
}

/// The real SDK client against `endpoint`, with millisecond backoff so retries are fast.
pub fn sdk_client(endpoint: &str, max_attempts: u32) -> aws_sdk_transfer::Client {
    sdk_client_with(endpoint, max_attempts, Duration::from_secs(2))
}

/// [`sdk_client`] with a chosen per-attempt timeout (slow-answer cases use a short one).
pub fn sdk_client_with(
    endpoint: &str,
    max_attempts: u32,
    attempt_timeout: Duration,
) -> aws_sdk_transfer::Client {
    let conf = aws_sdk_transfer::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDSTANDIN",
            "standin-secret",
            None,
            None,
            "tests",
        ))
        .endpoint_url(endpoint)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build();
    aws_sdk_transfer::Client::from_conf(conf)
}

/// The demo configuration with `overrides` applied (`""` removes a variable).
pub fn config_with(overrides: &[(&str, &str)]) -> Config {
    let mut vars = demo_vars();
    for (k, v) in overrides {
        if v.is_empty() {
            vars.remove(*k);
        } else {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("test configuration is valid")
}

/// [`config_with`] whose `CFN_RESPONSE_ORIGINS` is `standin`'s own origin, so the
/// stand-in's response sink is where CloudFormation responses may go (the demo's
/// `http://127.0.0.1:9124` is replaced; `overrides` still win).
pub fn config_for(standin: &StandIn, overrides: &[(&str, &str)]) -> Config {
    let sink = standin.endpoint();
    let mut vars = vec![("CFN_RESPONSE_ORIGINS", sink.as_str())];
    vars.extend_from_slice(overrides);
    config_with(&vars)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// The function as a *warm* execution environment runs it (see [`TestApp::warmed`]).
/// [`spawn_cold_app_with`] is the first invocation after a cold start.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_cold_app_with(overrides).await.warmed().await
}

/// A freshly started function: nothing known of any server yet.
pub async fn spawn_cold_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let standin = StandIn::start(&seed()).await.expect("stand-in starts");
    let transfer = SdkTransfer::new(sdk_client(&standin.endpoint(), 3));
    let app = app(config_for(&standin, overrides), transfer);
    TestApp { standin, app }
}

/// The function's `App`, its EMF metrics checked against the specification as they are
/// written ([`emf::checked`]): every test that runs an invocation checks its documents.
pub fn app<T: transfer_chroot::transfer::Transfer>(config: Config, transfer: T) -> App<T> {
    App::new(config, transfer).with_metrics(emf::checked().0)
}

impl TestApp {
    /// As a warm execution environment: every allowed server described once (the
    /// per-environment `DescribeServer` cache), and the stand-in's request log started
    /// anew, so a test sees exactly the calls its events cause.
    pub async fn warmed(self) -> Self {
        let chroot = &self.app.chroot;
        for server in &chroot.config.guardrails.servers {
            // A server the seed does not hold stays unknown, as on AWS.
            let _ = chroot
                .env
                .servers
                .facts(&chroot.ports.transfer, server)
                .await;
        }
        self.standin.clear_requests();
        self
    }

    /// Invokes the handler as Lambda would, with `budget` before the deadline.
    pub async fn invoke_with_budget(
        &self,
        event: Value,
        budget: Duration,
    ) -> Result<Value, String> {
        self.app
            .dispatch(event, &Invocation::with_budget(budget))
            .await
            .map_err(|e| format!("{}: {e}", e.error_type()))
    }

    pub async fn invoke(&self, event: Value) -> Value {
        self.invoke_with_budget(event, Duration::from_secs(30))
            .await
            .expect("handler answers")
    }

    pub async fn outcome(&self, event: Value) -> Outcome {
        serde_json::from_value(self.invoke(event).await).expect("an Outcome")
    }

    pub fn writes(&self) -> usize {
        self.standin.calls("UpdateUser") + self.standin.calls("UpdateAccess")
    }
}
