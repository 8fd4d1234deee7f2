//! Source adapters: each translates its envelope into commands for the core and the
//! core's outcomes into its own reply. None builds an SDK request.

pub mod apigw;
pub mod cloudformation;
pub mod direct;
pub mod eventbridge;
pub mod sqs;

use serde_json::Value;

use crate::handler::{App, HandlerError, Invocation};
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome};
use crate::transfer::Transfer;

/// What kind of event this is, judged by its own shape (DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    CloudFormation,
    Sqs,
    ApiGateway,
    EventBridge,
    Direct,
    Unknown,
}

pub const EXPECTED_SHAPES: &str = "a CloudFormation custom resource request (RequestType + ResponseURL), \
     an SQS batch (Records[].eventSource = aws:sqs), an API Gateway request (requestContext), \
     an EventBridge event (detail-type + detail) or a direct command (Action)";

pub fn shape(event: &Value) -> Shape {
    let Some(obj) = event.as_object() else {
        return Shape::Unknown;
    };
    if obj.contains_key("RequestType") && obj.contains_key("ResponseURL") {
        Shape::CloudFormation
    } else if obj
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|r| {
            !r.is_empty()
                && r.iter()
                    .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
    {
        Shape::Sqs
    } else if obj.contains_key("requestContext") {
        Shape::ApiGateway
    } else if obj.contains_key("detail-type") && obj.contains_key("detail") {
        Shape::EventBridge
    } else if obj.contains_key("Action") {
        Shape::Direct
    } else {
        Shape::Unknown
    }
}

pub async fn dispatch<T: Transfer>(
    app: &App<T>,
    event: Value,
    invocation: &Invocation,
) -> Result<Value, HandlerError> {
    match shape(&event) {
        Shape::CloudFormation => cloudformation::handle(app, event, invocation).await,
        Shape::Sqs => sqs::handle(app, event, invocation).await,
        Shape::ApiGateway => apigw::handle(app, event, invocation).await,
        Shape::EventBridge => eventbridge::handle(app, event, invocation).await,
        Shape::Direct => Ok(direct::handle(app, &event, invocation).await.to_json()),
        Shape::Unknown => {
            let outcome = unknown_shape();
            outcome.log("unknown");
            Ok(outcome.to_json())
        }
    }
}

pub fn unknown_shape() -> Outcome {
    Outcome::failed(
        Identity::default(),
        ErrorBody::new(
            ErrorCode::ValidationFailed,
            format!("unrecognised event: expected {EXPECTED_SHAPES}"),
        ),
    )
}
