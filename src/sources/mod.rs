//! Source adapters: each translates its envelope into a [`crate::input::CommandInput`]
//! for the core and the core's outcomes into its own reply. None builds an SDK request.
//!
//! Where an SQS record becomes a command: [`sqs`] → [`direct`] or [`eventbridge`] →
//! [`crate::apply::Chroot::run`]. Where a command becomes a request: [`crate::plan`].

pub mod apigw;
pub mod cloudformation;
pub mod direct;
pub mod eventbridge;
pub mod sqs;

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

/// Why an invocation itself fails (so that Lambda's own retries and on-failure
/// destinations take over); every other failure is a structured result. Each source
/// maps its failures here once; [`HandlerError::error_type`] carries the class.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// An EventBridge event whose outcome is `Failed`; the message is the whole result.
    #[error("event failed: {}: {result}", .code.as_str())]
    EventFailed {
        code: ErrorCode,
        retryable: bool,
        result: String,
    },
    /// An SQS record without a `messageId` cannot be reported on its own.
    #[error(
        "SQS record {index} has no messageId, so it cannot be reported on its own; \
         the whole batch is failed and will be redelivered"
    )]
    UnreportableRecord { index: usize },
    /// A CloudFormation request with nowhere to answer (no or a refused `ResponseURL`).
    #[error("Unanswerable: CloudFormation request cannot be answered: {0}")]
    Unanswerable(String),
    /// Every attempt to PUT the CloudFormation response failed.
    #[error("ResponseNotDelivered: CloudFormation {status} response {error}")]
    ResponseNotDelivered { status: &'static str, error: String },
    /// A reply could not be serialised (a bug).
    #[error("the reply could not be serialised: {0}")]
    Serialise(#[source] serde_json::Error),
}

impl HandlerError {
    /// The Lambda error type: `TransferChroot.<class>`, the class being the result's
    /// error code for a failed event (`TransferChroot.Throttled`).
    pub fn error_type(&self) -> String {
        let class = match self {
            Self::EventFailed { code, .. } => code.as_str(),
            Self::UnreportableRecord { .. } => "UnreportableRecord",
            Self::Unanswerable(_) => "Unanswerable",
            Self::ResponseNotDelivered { .. } => "ResponseNotDelivered",
            Self::Serialise(_) => ErrorCode::Internal.as_str(),
        };
        format!("TransferChroot.{class}")
    }

    /// Whether another delivery of the same event may succeed: Lambda retries either
    /// way; this is for the logs and the on-failure record.
    pub fn retryable(&self) -> bool {
        match self {
            Self::EventFailed { retryable, .. } => *retryable,
            Self::UnreportableRecord { .. } | Self::ResponseNotDelivered { .. } => true,
            Self::Unanswerable(_) | Self::Serialise(_) => false,
        }
    }

    /// An EventBridge event's failed outcome.
    pub fn event_failed(outcome: &Outcome) -> Self {
        Self::EventFailed {
            code: outcome.error_code().unwrap_or(ErrorCode::Internal),
            retryable: outcome.is_retryable_failure(),
            result: outcome.to_json().to_string(),
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        Self {
            error_type: e.error_type(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_carry_the_class() {
        let mut outcome = Outcome::failed(
            Identity::default(),
            ErrorBody::new(ErrorCode::Throttled, "slow down"),
        );
        let e = HandlerError::event_failed(&outcome);
        assert_eq!(e.error_type(), "TransferChroot.Throttled");
        assert!(e.retryable());
        assert!(e.to_string().starts_with("event failed: Throttled: {"));
        outcome.error = Some(ErrorBody::new(ErrorCode::NotFound, "gone"));
        let d = lambda_runtime::Diagnostic::from(HandlerError::event_failed(&outcome));
        assert_eq!(d.error_type, "TransferChroot.NotFound");
        assert!(!HandlerError::Unanswerable("no ResponseURL".into()).retryable());
        assert_eq!(
            HandlerError::UnreportableRecord { index: 3 }.error_type(),
            "TransferChroot.UnreportableRecord"
        );
    }
}
