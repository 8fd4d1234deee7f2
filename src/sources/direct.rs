//! Direct commands: Lambda invoke, Step Functions, or an SQS body.

use serde_json::Value;

use crate::apply::Chroot;
use crate::audit::AuditReport;
use crate::input::{AuditInput, CommandInput, Reading, ReconcileInput};
use crate::invocation::Invocation;
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome, Status};
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

/// Whether `event` asks for a reconcile of one target (`"Action": "Reconcile"`): what
/// an audit queues for each drifted target, and usable by hand.
pub fn is_reconcile(event: &Value) -> bool {
    event.get("Action").and_then(Value::as_str) == Some(crate::reconcile::ACTION)
}

/// A reconcile command (direct or an SQS body): the target read now, and chrooted only
/// if still drifted (see [`crate::reconcile`]).
pub async fn reconcile<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    deadline: tokio::time::Instant,
) -> Outcome {
    let input = event
        .as_object()
        .map(ReconcileInput::read)
        .unwrap_or_default();
    crate::reconcile::run_before(chroot, &input, deadline).await
}

/// Runs an audit (or resumes one) until `deadline`: its report, or the structured
/// refusal of a bad one.
pub async fn audit_report<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    run_id: &str,
    deadline: tokio::time::Instant,
) -> Result<AuditReport, Outcome> {
    let input = event
        .as_object()
        .map(|m| AuditInput::read(m, false))
        .unwrap_or_default();
    let admitted = tokio::time::timeout_at(deadline, crate::audit::admit(chroot, &input))
        .await
        .unwrap_or_else(|_| {
            Err(Box::new(Outcome::out_of_time(
                crate::outcome::Identity::default(),
            )))
        });
    // Security Hub's time at the end of the part, kept out of the audit's own.
    let hub_on = chroot.ports.hub.is_some() && chroot.env.account.get().is_some();
    let deadline = if hub_on {
        crate::audit::keep_out(deadline, crate::audit::HUB_TIME)
    } else {
        deadline
    };
    match admitted {
        Ok(audit) => Ok(match &chroot.ports.reports {
            None => crate::audit::run(chroot, &audit, run_id, deadline).await,
            Some(store) => {
                crate::report::run_and_keep(chroot, store.as_ref(), &audit, run_id, deadline).await
            }
        }),
        Err(outcome) => {
            outcome.log();
            Err(*outcome)
        }
    }
}

/// An audit invoked directly: the report JSON (or the refusal, as a result).
pub async fn audit<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    invocation: &Invocation,
) -> Value {
    match audit_report(
        chroot,
        event,
        &invocation.request_id,
        invocation.work_deadline(),
    )
    .await
    {
        Ok(report) => serde_json::to_value(&report).unwrap_or_else(|_| {
            Outcome::failed(
                Identity::default(),
                ErrorBody::new(
                    ErrorCode::Internal,
                    "the audit report could not be serialised",
                ),
            )
            .to_json()
        }),
        Err(refused) => {
            let mut v = refused.to_json();
            v["Action"] = "Audit".into();
            v
        }
    }
}

/// An audit as one SQS record's outcome: done (`Updated` when it fixed or queued
/// something, else `Unchanged`, its counts in `Reason`), or `Failed` to be redelivered
/// (it then resumes from the record's own continuation).
pub async fn audit_record<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    message_id: &str,
    deadline: tokio::time::Instant,
) -> Outcome {
    match audit_report(chroot, event, message_id, deadline).await {
        Err(refused) => refused,
        Ok(report) => {
            if let Some(error) = report.error {
                return Outcome::failed(Identity::default(), error);
            }
            let c = report.counts;
            let status = if c.fixed + c.queued > 0 {
                Status::Updated
            } else {
                Status::Unchanged
            };
            let mut outcome = Outcome::new(status, Identity::default());
            outcome.reason = Some(format!(
                "audit {}: {} chrooted, {} drifted, {} need attention, {} exempt, {} fixed, {} queued, {} failed{}",
                report.run_id,
                c.chrooted,
                c.drifted,
                c.needs_attention,
                c.exempt,
                c.fixed,
                c.queued,
                c.failed,
                match (&report.continuation, report.continuation_queued) {
                    (None, _) => "; complete",
                    (Some(_), true) => "; continued on the queue",
                    (Some(_), false) => "; NOT continued: the continuation could not be queued",
                }
            ));
            outcome
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
        Some(_) if is_reconcile(event) => {
            reconcile(chroot, event, invocation.work_deadline()).await
        }
        Some(_) if crate::sources::directory::is_reconcile_user(event) => {
            crate::sources::directory::reconcile_user(chroot, event, invocation.work_deadline())
                .await
        }
        Some(input) => chroot.run_before(&input, invocation.work_deadline()).await,
        None => not_an_object(),
    };
    outcome.log();
    outcome
}
