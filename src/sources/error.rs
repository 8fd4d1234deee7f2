//! The one way a source fails the invocation itself.

#[cfg(test)]
use crate::outcome::{ErrorBody, Identity};
use crate::outcome::{ErrorCode, Outcome};

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
