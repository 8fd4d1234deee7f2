//! The structured result every source returns or embeds (docs/CONTRACT.md "Results").

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::domain::Action;
use crate::domain::{FieldError, Subject, Target, TargetKind};
use crate::transfer::{TransferError, TransferErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Updated,
    Unchanged,
    Planned,
    Skipped,
    Failed,
    /// Handed to the command queue: one command each, applied when consumed (a
    /// directory group's members).
    Queued,
}

impl Status {
    pub const ALL: [Self; 6] = [
        Self::Updated,
        Self::Unchanged,
        Self::Planned,
        Self::Skipped,
        Self::Failed,
        Self::Queued,
    ];

    /// The wire name (as results and logs spell it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "Updated",
            Self::Unchanged => "Unchanged",
            Self::Planned => "Planned",
            Self::Skipped => "Skipped",
            Self::Failed => "Failed",
            Self::Queued => "Queued",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    ValidationFailed,
    NotAllowed,
    NotFound,
    Throttled,
    Upstream,
    Internal,
}

impl ErrorCode {
    pub const ALL: [Self; 6] = [
        Self::ValidationFailed,
        Self::NotAllowed,
        Self::NotFound,
        Self::Throttled,
        Self::Upstream,
        Self::Internal,
    ];

    /// The wire name (`Error.Code`, log fields, the Lambda error type).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "ValidationFailed",
            Self::NotAllowed => "NotAllowed",
            Self::NotFound => "NotFound",
            Self::Throttled => "Throttled",
            Self::Upstream => "Upstream",
            Self::Internal => "Internal",
        }
    }
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
            // Rounded up: retrying before the hint has passed would be throttled again.
            retry_after_seconds: e
                .retry_after
                .map(|d| (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)),
        }
    }
}

/// Who the result is about, echoed from the input even when it was invalid
/// (truncated, so a hostile value cannot bloat a reply or a log line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A valid target, with the write that chroots it.
    pub fn of(target: &Target) -> Self {
        let (user_name, external_id) = match &target.subject {
            Subject::User(u) => (Some(u.to_string()), None),
            Subject::Access(a) => (None, Some(a.to_string())),
        };
        Self {
            action: Some(target.action()),
            server_id: Some(target.server.to_string()),
            user_name,
            external_id,
        }
    }

    /// The target's label, `s-…/users/alice` as [`Target`] displays it, from what was
    /// echoed (so also for an invalid one); `?` for what is unknown.
    pub fn label(&self) -> String {
        let server = self.server_id.as_deref().unwrap_or("?");
        match (&self.user_name, &self.external_id) {
            (Some(u), _) => format!("{server}/{}/{u}", TargetKind::User.collection()),
            (None, Some(a)) => format!("{server}/{}/{a}", TargetKind::Access.collection()),
            _ => server.to_owned(),
        }
    }

    /// Whether the server and the user or access are known.
    pub fn names_a_target(&self) -> bool {
        self.server_id.is_some() && (self.user_name.is_some() || self.external_id.is_some())
    }
}

pub const ECHO_LIMIT: usize = 256;

pub fn echo(raw: &str) -> String {
    match raw.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

/// A request refused before any AWS call: invalid fields or a guardrail.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub identity: Identity,
    pub error: ErrorBody,
}

/// A rejection lists at most this many field errors (the first, in input order): an
/// event with thousands of bad keys would otherwise get a reply larger than itself, past
/// Lambda's 6 MB response limit, and the caller would see no structured result at all.
pub const MAX_REPORTED_FIELDS: usize = 50;

impl Rejection {
    pub fn new(identity: Identity, code: ErrorCode, mut fields: Vec<FieldError>) -> Self {
        let total = fields.len();
        fields.truncate(MAX_REPORTED_FIELDS);
        let names = fields
            .iter()
            .map(|f| f.field.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let more = match total - fields.len() {
            0 => String::new(),
            n => format!(" and {n} more not listed"),
        };
        let message = match code {
            ErrorCode::NotAllowed => format!("refused by a guardrail: {names}{more}"),
            _ => format!(
                "{total} invalid field{}: {names}{more}",
                if total == 1 { "" } else { "s" },
            ),
        };
        Self {
            identity,
            error: ErrorBody::new(code, message).with_fields(fields),
        }
    }

    pub fn invalid(identity: Identity, fields: Vec<FieldError>) -> Self {
        Self::new(identity, ErrorCode::ValidationFailed, fields)
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
    /// The group profile applied (`sftp-finance`, `Default`): a directory trigger's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Who in the directory a trigger named, and what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryNote>,
    /// One result per target when a trigger wrote several (a user on several servers,
    /// a group's members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<Outcome>,
    /// A server read again (CloudTrail's `UpdateServer`): what it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerNote>,
}

/// A server as `DescribeServer` answered after a change, and what that means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerNote {
    pub server_id: String,
    pub identity_provider_type: String,
    /// What was known before the change, when something was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_identity_provider_type: Option<String>,
    /// Why per-user chroot cannot be enforced there (`AWS_LAMBDA`, `API_GATEWAY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
}

/// A directory trigger's subject: the user (its id and name) or the group (its id,
/// its members and how many were queued).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DirectoryNote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
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
            profile: None,
            directory: None,
            results: Vec::new(),
            server: None,
        }
    }

    pub fn failed(identity: Identity, error: ErrorBody) -> Self {
        Self {
            error: Some(error),
            ..Self::new(Status::Failed, identity)
        }
    }

    /// A request refused before any AWS call.
    pub fn rejected(rejection: Rejection) -> Self {
        Self::failed(rejection.identity, rejection.error)
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
        // A directory trigger that named no one target (a group, a user on several
        // servers or none): the directory's own name for what it named.
        if !self.identity.names_a_target()
            && let Some(d) = &self.directory
        {
            return match (&d.group_id, &d.user_name, &d.user_id) {
                (Some(g), _, _) => format!("directory group {g}"),
                (None, Some(u), _) => format!("directory user {u}"),
                (None, None, Some(id)) => format!("directory user {id}"),
                _ => self.identity.label(),
            };
        }
        self.identity.label()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| {
            serde_json::json!({"Status": "Failed", "Error": {"Code": "Internal", "Message": "result could not be serialised", "Retryable": false}})
        })
    }

    /// One structured log line per outcome: target, status, error code, request id (the
    /// source and Lambda's request id come from the enclosing spans).
    pub fn log(&self) {
        let code = self.error_code().map(ErrorCode::as_str);
        crate::metrics::outcome(self.status.as_str(), code);
        let message = self.error.as_ref().map(|e| e.message.as_str());
        match self.status {
            Status::Failed => tracing::warn!(
                target_resource = %self.target_label(),
                status = self.status.as_str(),
                error_code = code,
                error_message = message,
                aws_request_id = self.request_id.as_deref(),
                "outcome"
            ),
            _ => tracing::info!(
                target_resource = %self.target_label(),
                status = self.status.as_str(),
                changes = self.changes.len(),
                aws_request_id = self.request_id.as_deref(),
                "outcome"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_serde_names() {
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn an_identity_is_labelled_as_its_target() {
        let t: Target = "s-0123456789abcdef0/accesses/S-1-5-21-1".parse().unwrap();
        let id = Identity::of(&t);
        assert_eq!(id.label(), t.to_string());
        assert_eq!(id.action, Some(Action::UpdateAccess));
        assert!(id.names_a_target());
        assert_eq!(Identity::default().label(), "?");
    }
}
