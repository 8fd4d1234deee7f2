//! Criterion benchmarks of the work the function does per event, without the network:
//!
//! - `parse_validate_plan/<event>`: JSON text → `CommandInput` → validated and admitted
//!   command (every field, guardrails) → `plan::desired` + `plan::changes` against the
//!   live state from `demo/seed.json`;
//! - `handler/<event>`: the whole handler (`App::dispatch`, including the outcome's
//!   JSON and its structured log line, written to a sink) with the in-memory Transfer
//!   (`transfer::memory`) seeded from `demo/seed.json`, answering at once: the handler's
//!   own overhead, excluding the Transfer round trips;
//! - `transfer_call/*`: one round trip to the stand-in on loopback, through the SDK and
//!   as a bare HTTP POST (what the SDK adds per call).
//!
//! Every `events/*.json` file is measured, so events of new sources join by being added
//! there (the direct-command files are the ones that exist today).
//!
//! `cargo bench --bench core` (docs/PERFORMANCE.md has the figures).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value};
use transfer_chroot::command::parse_command;
use transfer_chroot::domain::{ExternalId, ServerId, Target, UserName};
use transfer_chroot::input::{CommandInput, Reading};
use transfer_chroot::plan;
use transfer_chroot::sources::{Shape, shape};
use transfer_chroot::transfer::memory::MemoryTransfer;
use transfer_chroot::transfer::{
    HomeDirectoryType, LiveHome, LivePosix, Mapping, MappingType, Subject, Transfer,
};
use transfer_chroot::{App, Config, Invocation};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config() -> Config {
    let text = std::fs::read_to_string(root().join("demo/config.env")).expect("demo/config.env");
    let vars: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Config::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .expect("demo configuration is valid")
}

/// The sample events of the given shapes, as text: parsing is measured.
fn events(shapes: &[Shape]) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let event: Value = serde_json::from_str(&text).ok()?;
            let name = p.file_stem()?.to_string_lossy().into_owned();
            shapes.contains(&shape(&event)).then_some((name, text))
        })
        .collect()
}

fn live_from_seed(item: &Map<String, Value>) -> LiveHome {
    let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
    LiveHome {
        home_directory: s("HomeDirectory"),
        home_directory_type: s("HomeDirectoryType").map(|t| HomeDirectoryType::from_wire(&t)),
        home_directory_mappings: item
            .get("HomeDirectoryMappings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(Mapping {
                    entry: m.get("Entry")?.as_str()?.to_owned(),
                    target: m.get("Target")?.as_str()?.to_owned(),
                    r#type: m
                        .get("Type")
                        .and_then(Value::as_str)
                        .map(MappingType::from_wire),
                })
            })
            .collect(),
        role: s("Role"),
        policy: s("Policy"),
        posix_profile: item.get("PosixProfile").and_then(|p| {
            Some(LivePosix {
                uid: p.get("Uid")?.as_i64()?,
                gid: p.get("Gid")?.as_i64()?,
                secondary_gids: Vec::new(),
            })
        }),
    }
}

/// The in-memory Transfer holding what `demo/seed.json` holds.
fn seeded() -> MemoryTransfer {
    let text = std::fs::read_to_string(root().join("demo/seed.json")).expect("seed");
    let seed: Value = serde_json::from_str(&text).expect("seed is JSON");
    let transfer = MemoryTransfer::new();
    for server in seed["Servers"].as_array().into_iter().flatten() {
        let Some(id) = server["ServerId"]
            .as_str()
            .and_then(|s| ServerId::parse(s).ok())
        else {
            continue;
        };
        for (list, key) in [("Users", "UserName"), ("Accesses", "ExternalId")] {
            for item in server[list].as_array().into_iter().flatten() {
                let (Some(map), Some(name)) = (item.as_object(), item[key].as_str()) else {
                    continue;
                };
                let subject = match list {
                    "Users" => UserName::parse(name).ok().map(Subject::User),
                    _ => ExternalId::parse(name).ok().map(Subject::Access),
                };
                if let Some(subject) = subject {
                    transfer.insert(Target::new(id.clone(), subject), live_from_seed(map));
                }
            }
        }
    }
    transfer
}

fn parse_validate_plan(c: &mut Criterion) {
    let config = config();
    let transfer = seeded();
    let mut group = c.benchmark_group("parse_validate_plan");
    for (name, text) in events(&[Shape::Direct]) {
        group.bench_with_input(BenchmarkId::from_parameter(&name), &text, |b, text| {
            b.iter(|| {
                let event: Value = serde_json::from_str(black_box(text)).expect("event JSON");
                let Some(map) = event.as_object() else {
                    return 0;
                };
                let input = CommandInput::read(map, Reading::default());
                match parse_command(&input, &config.defaults, &config.guardrails) {
                    Ok(command) => {
                        let request = plan::desired(&command);
                        let live = transfer.get(&command.target).unwrap_or_default();
                        let changes = plan::changes(&request, &live);
                        black_box(serde_json::to_value(&request).ok());
                        changes.len()
                    }
                    Err(rejection) => black_box(rejection).error.fields.len(),
                }
            })
        });
    }
    group.finish();
}

fn handler(c: &mut Criterion) {
    // The production log format (one JSON line per outcome), written nowhere.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::sink)
        .try_init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let app = App::new(config(), seeded());
    let invocation = Invocation::with_budget(Duration::from_secs(30));
    let mut group = c.benchmark_group("handler");
    // Not CloudFormation: its handler PUTs to the event's ResponseURL, a network call.
    let shapes = [
        Shape::Direct,
        Shape::EventBridge,
        Shape::Sqs,
        Shape::ApiGateway,
        Shape::Unknown,
    ];
    for (name, text) in events(&shapes) {
        group.bench_with_input(BenchmarkId::from_parameter(&name), &text, |b, text| {
            b.iter(|| {
                let event: Value = serde_json::from_str(black_box(text)).expect("event JSON");
                let reply = rt.block_on(app.dispatch(event, &invocation));
                serde_json::to_vec(&reply.expect("answers")).map(|v| v.len())
            })
        });
    }
    group.finish();
}

/// One Transfer round trip on loopback to the stand-in, two ways: through the real SDK
/// adapter (signing, serialisation, retry and timeout machinery, parsing), and as a bare
/// HTTP POST of the same awsJson1.1 request. The difference is the SDK's own cost per
/// call; the bare POST is the floor any client pays to this stand-in.
fn transfer_call(c: &mut Criterion) {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use transfer_chroot::transfer::sdk::SdkTransfer;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let seed: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("demo/seed.json")).expect("seed"),
    )
    .expect("seed is JSON");
    let standin = rt
        .block_on(transfer_standin::StandIn::start(&seed))
        .expect("stand-in");
    let endpoint = standin.endpoint();
    let conf = aws_sdk_transfer::Config::builder()
        .behavior_version(aws_sdk_transfer::config::BehaviorVersion::latest())
        .region(aws_sdk_transfer::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_transfer::config::Credentials::new(
            "AKIDBENCH",
            "secret",
            None,
            None,
            "bench",
        ))
        .endpoint_url(&endpoint)
        .build();
    let sdk = SdkTransfer::new(aws_sdk_transfer::Client::from_conf(conf));
    let server = ServerId::parse("s-0123456789abcdef0").expect("server");
    let bob = Target::new(
        server.clone(),
        Subject::User(UserName::parse("bob").expect("user")),
    );

    let raw = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let body = Bytes::from_static(br#"{"ServerId":"s-0123456789abcdef0","UserName":"bob"}"#);
    let uri: hyper::Uri = endpoint.parse().expect("uri");

    let mut group = c.benchmark_group("transfer_call");
    group.bench_function("sdk_describe_user", |b| {
        b.iter(|| {
            let reply = rt.block_on(sdk.describe(&bob)).expect("described");
            standin.clear_requests();
            reply.value.home_directory_mappings.len()
        })
    });
    group.bench_function("bare_http_describe_user", |b| {
        b.iter(|| {
            let req = hyper::Request::post(uri.clone())
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-target", "TransferService.DescribeUser")
                // The stand-in checks that a SigV4 header for `transfer` is present.
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/transfer/aws4_request",
                )
                .body(Full::new(body.clone()))
                .expect("request");
            let bytes = rt
                .block_on(async {
                    let resp = raw.request(req).await.expect("answered");
                    resp.into_body().collect().await.map(|b| b.to_bytes())
                })
                .expect("body");
            standin.clear_requests();
            bytes.len()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short: these are evidence, not a tuning loop, and the machine is shared.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = parse_validate_plan, handler, transfer_call
}
criterion_main!(benches);
