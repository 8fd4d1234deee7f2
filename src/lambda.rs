//! The Lambda entry: one handler for every source, routed by the event's own shape.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::Instrument;

use crate::apply::Chroot;
use crate::config::Config;
use crate::invocation::Invocation;
use crate::metrics::{self, Emitter};
use crate::sources::cloudformation::Responder;
use crate::sources::{self, HandlerError, Shape};
use crate::transfer::Transfer;

/// Everything an invocation needs that is not the event: built once per cold start.
pub struct App<T> {
    pub chroot: Chroot<T>,
    /// The CloudFormation source's HTTP client for its `ResponseURL` answers.
    pub cfn: Responder,
    /// Where each invocation's EMF metrics go (off unless set: main sets stdout).
    pub metrics: Emitter,
}

impl<T: Transfer> App<T> {
    pub fn new(config: Config, transfer: T) -> Self {
        Self::with_ports(config, crate::apply::Ports::new(transfer))
    }

    /// With every outbound service main.rs built.
    pub fn with_ports(config: Config, ports: crate::apply::Ports<T>) -> Self {
        Self {
            chroot: Chroot::with_ports(config, ports),
            cfn: Responder::new(),
            metrics: Emitter::off(),
        }
    }

    /// With the directory (`IDENTITY_STORE_ID`).
    pub fn with_directory(
        mut self,
        directory: std::sync::Arc<dyn crate::directory::Directory>,
    ) -> Self {
        self.chroot.ports.directory = Some(directory);
        self
    }

    /// With a store for the audit's reports (`REPORT_BUCKET`).
    pub fn with_reports(
        mut self,
        reports: std::sync::Arc<dyn crate::reports::ReportStore>,
    ) -> Self {
        self.chroot = self.chroot.with_reports(reports);
        self
    }

    /// With Security Hub findings (`SECURITY_HUB`).
    pub fn with_hub(mut self, hub: std::sync::Arc<crate::findings::Hub>) -> Self {
        self.chroot = self.chroot.with_hub(hub);
        self
    }

    /// With the invocations' EMF metrics written to `metrics`.
    pub fn with_metrics(mut self, metrics: Emitter) -> Self {
        self.metrics = metrics;
        self
    }

    /// With the home-folder check's S3 calls.
    pub fn with_folders(mut self, folders: std::sync::Arc<dyn crate::folders::Folders>) -> Self {
        self.chroot = self.chroot.with_folders(folders);
        self
    }

    /// With the command queue an audit sends its fixes to.
    pub fn with_queue(mut self, queue: std::sync::Arc<dyn crate::queue::CommandQueue>) -> Self {
        self.chroot = self.chroot.with_queue(queue);
        self
    }

    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
        let invocation = Invocation::from_context(&event.context);
        self.dispatch(event.payload, &invocation).await
    }

    /// Routes `event` to its source, inside a span that names the source (the runtime's
    /// own span around it carries Lambda's `requestId`), and writes the invocation's
    /// metrics once it is answered.
    pub async fn dispatch(
        &self,
        event: Value,
        invocation: &Invocation,
    ) -> Result<Value, HandlerError> {
        let shape = sources::shape(&event);
        self.chroot.learn(invocation.invoked_arn.as_deref());
        let (result, tally) = metrics::scope(self.route(shape, event, invocation)).await;
        self.metrics
            .emit(shape.as_str(), &invocation.request_id, tally);
        result
    }

    async fn route(
        &self,
        shape: Shape,
        event: Value,
        invocation: &Invocation,
    ) -> Result<Value, HandlerError> {
        let span = tracing::info_span!("invocation", source = shape.as_str());
        let chroot = &self.chroot;
        // Each source's future boxed: unboxed, this one was the sum of them (14.7 KB in
        // a release build), and every layer above it (the metrics scope, the span, the
        // runtime's own) copied it as it was built, about twenty copies of 14.7 KB an
        // invocation (docs/PERFORMANCE.md, "Warm CPU against the floor").
        async move {
            match shape {
                Shape::CloudFormation => {
                    let origins = &chroot.config.response_origins;
                    Box::pin(sources::cloudformation::handle(
                        chroot, &self.cfn, origins, event, invocation,
                    ))
                    .await
                }
                Shape::Sqs => Box::pin(sources::sqs::handle(chroot, event, invocation)).await,
                Shape::ApiGateway => {
                    Box::pin(sources::apigw::handle(chroot, event, invocation)).await
                }
                Shape::EventBridge => {
                    Box::pin(sources::eventbridge::handle(chroot, event, invocation)).await
                }
                Shape::Direct if sources::direct::is_audit(&event) => {
                    Ok(Box::pin(sources::direct::audit(chroot, &event, invocation)).await)
                }
                Shape::Direct => Ok(
                    Box::pin(sources::direct::handle(chroot, &event, invocation))
                        .await
                        .to_json(),
                ),
                Shape::Unknown => {
                    let outcome = sources::unknown_shape();
                    outcome.log();
                    Ok(outcome.to_json())
                }
            }
        }
        .instrument(span)
        .await
    }
}
