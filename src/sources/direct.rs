//! Direct commands: Lambda invoke, Step Functions, or an SQS body.

use serde_json::Value;

use crate::apply::Chroot;
use crate::audit::Audit;
use crate::input::{AuditInput, CommandInput, Reading};
use crate::invocation::Invocation;
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome};
use crate::transfer::Transfer;

/// Reads a direct command (`{"Action": "UpdateUser", ...}`); `None` if it is not an
/// object.
pub fn read(event: &Value) -> Option<CommandInput> {
    event
        .as_object()
        .map(|map| CommandInput::read(map, Reading::default()))
}

pub fn not_an_object() -> Outcome {
    Outcome::failed(
        Identity::default(),
        ErrorBody::new(
            ErrorCode::ValidationFailed,
            "a direct command must be a JSON object with an Action",
        ),
    )
}

/// Whether `event` asks for a fleet audit (`"Action": "Audit"`).
pub fn is_audit(event: &Value) -> bool {
    event.get("Action").and_then(Value::as_str) == Some("Audit")
}

/// Runs an audit (or resumes one): its report, or the structured refusal of a bad one.
pub async fn audit<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    invocation: &Invocation,
) -> Value {
    let input = event
        .as_object()
        .map(|m| AuditInput::read(m, false))
        .unwrap_or_default();
    match Audit::parse(&input, &chroot.config.guardrails.servers) {
        Ok(audit) => {
            let report = crate::audit::run(
                chroot,
                &audit,
                &invocation.request_id,
                invocation.work_deadline(),
            )
            .await;
            serde_json::to_value(&report).unwrap_or_else(|_| {
                Outcome::failed(
                    Identity::default(),
                    ErrorBody::new(
                        ErrorCode::Internal,
                        "the audit report could not be serialised",
                    ),
                )
                .to_json()
            })
        }
        Err(rejection) => {
            let outcome = Outcome::rejected(*rejection);
            outcome.log();
            let mut v = outcome.to_json();
            v["Action"] = "Audit".into();
            v
        }
    }
}

/// Runs one direct command and logs its outcome.
pub async fn handle<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    invocation: &Invocation,
) -> Outcome {
    let outcome = match read(event) {
        Some(input) => chroot.run_before(&input, invocation.work_deadline()).await,
        None => not_an_object(),
    };
    outcome.log();
    outcome
}
