//! What one Transfer call costs the function, through the AWS SDK and as a bare HTTP
//! POST of the same request, against a stand-in in another process. Evidence for
//! docs/PERFORMANCE.md ("Where the time goes"), not part of the function.
//!
//! ```sh
//! target/release/transfer-standin --listen 127.0.0.1:9124 --seed demo/seed.json &
//! cargo build --release --example sdk_call_cost
//! AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \
//!   ENDPOINT=http://127.0.0.1:9124 MODE=sdk N=2000 target/release/examples/sdk_call_cost
//! # instructions, repeatable whatever the machine is doing (two N, then subtract):
//! ... N=50 valgrind --tool=callgrind target/release/examples/sdk_call_cost
//! ```
//!
//! `MODE=sdk` (the function's `SdkTransfer::describe`, with its timeouts) or
//! `bare` (hyper, no signing); `N` calls per round, three rounds; `GAP_US` idle time
//! between calls (a warm function is idle between invocations).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use transfer_chroot::domain::Target;
use transfer_chroot::domain::{ServerId, UserName};
use transfer_chroot::transfer::sdk::{self, SdkTransfer};
use transfer_chroot::transfer::{Subject, Transfer};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("ENDPOINT").map_err(|_| "set ENDPOINT to the stand-in's URL")?;
    let n = env_num("N", 2000);
    let gap = Duration::from_micros(env_num("GAP_US", 0));
    let bare = std::env::var("MODE").is_ok_and(|m| m == "bare");

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .timeout_config(sdk::timeout_config())
        .load()
        .await;
    let transfer = SdkTransfer::new(aws_sdk_transfer::Client::new(&sdk));
    let server = ServerId::parse("s-0123456789abcdef0")?;
    let bob = Target::new(server.clone(), Subject::User(UserName::parse("bob")?));

    let raw = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let body = Bytes::from_static(br#"{"ServerId":"s-0123456789abcdef0","UserName":"bob"}"#);
    let uri: hyper::Uri = endpoint.parse()?;

    for round in 0..3 {
        let mut spent = Duration::ZERO;
        for _ in 0..n {
            let started = Instant::now();
            if bare {
                let req = hyper::Request::post(uri.clone())
                    .header("content-type", "application/x-amz-json-1.1")
                    .header("x-amz-target", "TransferService.DescribeUser")
                    // The stand-in only checks that a SigV4 header for `transfer` is there.
                    .header(
                        "authorization",
                        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/transfer/aws4_request",
                    )
                    .body(Full::new(body.clone()))?;
                raw.request(req).await?.into_body().collect().await?;
            } else {
                transfer.describe(&bob).await?;
            }
            spent += started.elapsed();
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
        let mode = if bare { "bare HTTP" } else { "SDK" };
        println!(
            "round {round}: {mode} {:.1} µs per call",
            spent.as_secs_f64() * 1e6 / n as f64
        );
    }
    Ok(())
}
