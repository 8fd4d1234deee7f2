//! The structured result every source returns or embeds (DESIGN.md "Results").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::FieldError;
use crate::transfer::{TransferError, TransferErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Updated,
    Unchanged,
    Planned,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    UpdateUser,
    UpdateAccess,
}

impl Action {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "UpdateUser" => Some(Self::UpdateUser),
            "UpdateAccess" => Some(Self::UpdateAccess),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    ValidationFailed,
    NotAllowed,
    NotFound,
    Throttled,
    Upstream,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// Seconds Transfer asked us to wait (throttling), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retryable: matches!(code, ErrorCode::Throttled),
            fields: Vec::new(),
            retry_after_seconds: None,
        }
    }

    pub fn with_fields(mut self, fields: Vec<FieldError>) -> Self {
        self.fields = fields;
        self
    }
}

impl From<&TransferError> for ErrorBody {
    fn from(e: &TransferError) -> Self {
        let code = match e.kind {
            TransferErrorKind::NotFound => ErrorCode::NotFound,
            TransferErrorKind::Throttled => ErrorCode::Throttled,
            TransferErrorKind::InvalidRequest => ErrorCode::ValidationFailed,
            TransferErrorKind::Rejected | TransferErrorKind::Unavailable => ErrorCode::Upstream,
        };
        Self {
            code,
            message: e.message.clone(),
            retryable: e.kind.retryable(),
            fields: Vec::new(),
            retry_after_seconds: e.retry_after.map(|d| d.as_secs().max(1)),
        }
    }
}

/// Who the result is about, echoed from the input even when it was invalid
/// (truncated, so a hostile value cannot bloat a reply or a log line).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl Identity {
    /// Who an input object is about, echoed as given (even when invalid).
    pub fn echo_from(input: &serde_json::Map<String, Value>) -> Self {
        let field = |name: &str| input.get(name).and_then(Value::as_str).map(echo);
        Self {
            action: input
                .get("Action")
                .and_then(Value::as_str)
                .and_then(Action::parse),
            server_id: field("ServerId"),
            user_name: field("UserName"),
            external_id: field("ExternalId"),
        }
    }
}

pub const ECHO_LIMIT: usize = 256;

pub fn echo(raw: &str) -> String {
    match raw.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Outcome {
    pub status: Status,
    #[serde(flatten)]
    pub identity: Identity,
    #[serde(default)]
    pub changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why nothing was done (`Skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The AWS request id of the last Transfer call made for this result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Outcome {
    pub fn new(status: Status, identity: Identity) -> Self {
        Self {
            status,
            identity,
            changes: Vec::new(),
            request: None,
            warnings: Vec::new(),
            reason: None,
            request_id: None,
            error: None,
        }
    }

    pub fn failed(identity: Identity, error: ErrorBody) -> Self {
        Self {
            error: Some(error),
            ..Self::new(Status::Failed, identity)
        }
    }

    /// Transfer did not answer before the invocation's deadline. The write may or may
    /// not have landed; the update is idempotent, so retrying is safe.
    pub fn out_of_time(identity: Identity) -> Self {
        let mut error = ErrorBody::new(
            ErrorCode::Upstream,
            "Transfer Family did not answer before the function's deadline; the change may \
             or may not have been applied, and retrying is safe",
        );
        error.retryable = true;
        Self::failed(identity, error)
    }

    pub fn skipped(identity: Identity, reason: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::new(Status::Skipped, identity)
        }
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }

    pub fn is_retryable_failure(&self) -> bool {
        self.error.as_ref().is_some_and(|e| e.retryable)
    }

    /// A short label for logs: `s-…/users/alice`.
    pub fn target_label(&self) -> String {
        let server = self.identity.server_id.as_deref().unwrap_or("?");
        match (&self.identity.user_name, &self.identity.external_id) {
            (Some(u), _) => format!("{server}/users/{u}"),
            (None, Some(a)) => format!("{server}/accesses/{a}"),
            _ => server.to_owned(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| {
            serde_json::json!({"Status": "Failed", "Error": {"Code": "Internal", "Message": "result could not be serialised", "Retryable": false}})
        })
    }

    /// One structured log line per outcome: target, status, error code, request id.
    pub fn log(&self, source: &str) {
        let code = self.error_code().map(|c| format!("{c:?}"));
        let message = self.error.as_ref().map(|e| e.message.as_str());
        match self.status {
            Status::Failed => tracing::warn!(
                source,
                target_resource = %self.target_label(),
                status = ?self.status,
                error_code = code.as_deref(),
                error_message = message,
                aws_request_id = self.request_id.as_deref(),
                "outcome"
            ),
            _ => tracing::info!(
                source,
                target_resource = %self.target_label(),
                status = ?self.status,
                changes = self.changes.len(),
                aws_request_id = self.request_id.as_deref(),
                "outcome"
            ),
        }
    }
}
