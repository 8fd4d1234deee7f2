#![recursion_limit = "256"]

use aws_config::BehaviorVersion;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;

use transfer_chroot::apply::Ports;
use transfer_chroot::directory::store::IdentityStore;
use transfer_chroot::findings::Hub;
use transfer_chroot::findings::hub::SdkHub;
use transfer_chroot::folders::s3::SdkFolders;
use transfer_chroot::metrics::Emitter;
use transfer_chroot::queue::sqs::SdkQueue;
use transfer_chroot::reports::s3::SdkReports;
use transfer_chroot::sources::cloudformation::Responder;
use transfer_chroot::transfer::sdk::{self, SdkTransfer};
use transfer_chroot::{App, Config, telemetry};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    // Retries (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE) and the endpoint
    // (AWS_ENDPOINT_URL_TRANSFER) come from the standard SDK settings. The timeouts
    // bound one call so the retry budget fits the function's Timeout (see template.yaml).
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).timeout_config(sdk::timeout_config());
    // AWS_CA_BUNDLE, read once: an unusable bundle fails the cold start, not a call.
    let trust = sdk::tls_context_from_env()
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    if let Some(context) = &trust {
        loader = loader.http_client(sdk::http_client(context.clone()));
    }
    let sdk = loader.load().await;
    // What goes out, built once: each optional service only when configured.
    let mut ports = Ports::new(SdkTransfer::new(aws_sdk_transfer::Client::new(&sdk)));
    if let Some(bucket) = config.report_bucket.clone() {
        ports.reports = Some(Arc::new(SdkReports::from_conf(&sdk, bucket)));
    }
    if config.security_hub {
        let client = SdkHub::from_conf(&sdk, trust.clone());
        ports.hub = Some(Arc::new(Hub::new(Arc::new(client))));
    }
    if config.check_home_folders {
        ports.folders = Some(Arc::new(SdkFolders::from_conf(&sdk)));
    }
    if let Some(url) = config.command_queue_url.clone() {
        ports.queue = Some(Arc::new(SdkQueue::from_conf(&sdk, url)));
    }
    if let Some(store) = config.identity_store.clone() {
        let max_rps = config.identity_store_max_rps;
        ports.directory = Some(Arc::new(IdentityStore::from_conf(
            &sdk,
            store,
            max_rps,
            trust.clone(),
        )));
    }
    let mut app = App::with_ports(config, ports).with_metrics(Emitter::stdout());
    if let Some(context) = trust {
        // The CloudFormation responder trusts what the SDK trusts.
        app.cfn = Responder::new().trusting(context);
    }
    // The TLS connection to Transfer opened now, at init's full speed (bounded; a
    // failure is logged and ignored).
    app.chroot.warm_up(sdk::WARM_UP_TIMEOUT).await;
    // One App for the execution environment: with AWS_LAMBDA_MAX_CONCURRENCY (Lambda
    // Managed Instances) the runtime polls that many invocations at once, each a task
    // sharing it; without the variable, one invocation at a time as before.
    let app = Arc::new(app);
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move { app.handle(event).await }
    }))
    .await
}
