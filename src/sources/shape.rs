//! Which source an event comes from, judged by its own shape.

use serde_json::Value;

use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome};

/// What kind of event this is, judged by its own shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    CloudFormation,
    Sqs,
    ApiGateway,
    EventBridge,
    Direct,
    Unknown,
}

impl Shape {
    /// The `source` every log line of the invocation carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudFormation => "cloudformation",
            Self::Sqs => "sqs",
            Self::ApiGateway => "apigw",
            Self::EventBridge => "eventbridge",
            Self::Direct => "direct",
            Self::Unknown => "unknown",
        }
    }
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

pub fn unknown_shape() -> Outcome {
    Outcome::failed(
        Identity::default(),
        ErrorBody::new(
            ErrorCode::ValidationFailed,
            format!("unrecognised event: expected {EXPECTED_SHAPES}"),
        ),
    )
}
