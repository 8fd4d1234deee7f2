//! SQS batches: each record's body is a direct command or a whole EventBridge event
//! (what an EventBridge→SQS target delivers). The reply is a partial batch response,
//! `{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`, so only the reported
//! records come back; the event source mapping must enable `ReportBatchItemFailures`.
//!
//! No record is ever lost: each one is either done (Updated, Unchanged, Planned,
//! Skipped) or reported, and each gets one structured log line saying which and why.
//! The rules (docs/directory-events.md has the reasoning):
//! - every `Failed` record is reported, retryable or not: a permanent failure goes
//!   through the queue's redrive policy (maxReceiveCount) to its dead-letter queue,
//!   where the original message waits for a fix and a redrive, instead of vanishing;
//! - records for the same target (server + user, server + access) run one after the
//!   other in batch order; different targets run concurrently, at most
//!   `SQS_MAX_CONCURRENCY` at once;
//! - after a *retryable* failure, the target's later records in the batch are held back
//!   (reported unprocessed): applying them now and the failed one on redelivery would
//!   leave the older settings in place;
//! - the Lambda deadline is watched: nothing starts within [`DEADLINE_MARGIN`] of it,
//!   and a record still running then is abandoned; both are reported. Abandoning a
//!   call mid-way is safe because applying is idempotent (read, diff, write).
//! - a record without a `messageId` cannot be reported, so the whole batch fails (every
//!   record comes back; the ones already applied are then `Unchanged`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;

use crate::apply::Chroot;
use crate::config::Config;
use crate::domain::TargetKind;
use crate::invocation::Invocation;
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome, Status};
use crate::sources::error::HandlerError;
use crate::sources::shape::{Shape, shape};
use crate::sources::{direct, directory, eventbridge};
use crate::transfer::Transfer;

/// Time kept free before the Lambda deadline: no record starts after `deadline -
/// DEADLINE_MARGIN`, and one still running then is abandoned and reported. One second
/// covers writing the reply and the log lines with room to spare, while leaving almost
/// the whole function timeout to the work.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Processed to an outcome (which may be `Failed`).
    Done {
        outcome: Box<Outcome>,
        profile: Option<String>,
    },
    /// Still running at the cutoff; abandoned.
    TimedOut,
    /// The cutoff had passed before it could start.
    NotStarted,
    /// An earlier record for the same target failed retryably, so this one waits for
    /// redelivery rather than overtaking it.
    HeldBack,
}

/// A record's status in the logs and the batch tally: its outcome's, or why it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordStatus {
    Outcome(Status),
    TimedOut,
    NotStarted,
    HeldBack,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outcome(s) => s.as_str(),
            Self::TimedOut => "TimedOut",
            Self::NotStarted => "NotStarted",
            Self::HeldBack => "HeldBack",
        }
    }
}

impl Disposition {
    /// Whether the record goes into `batchItemFailures` (to be redelivered, and after
    /// maxReceiveCount receives, dead-lettered).
    pub fn reported(&self) -> bool {
        match self {
            Self::Done { outcome, .. } => outcome.status == Status::Failed,
            Self::TimedOut | Self::NotStarted | Self::HeldBack => true,
        }
    }

    /// A failure that another delivery may well fix.
    fn retryable(&self) -> bool {
        match self {
            Self::Done { outcome, .. } => outcome.is_retryable_failure(),
            Self::TimedOut | Self::NotStarted | Self::HeldBack => true,
        }
    }

    pub fn status(&self) -> RecordStatus {
        match self {
            Self::Done { outcome, .. } => RecordStatus::Outcome(outcome.status),
            Self::TimedOut => RecordStatus::TimedOut,
            Self::NotStarted => RecordStatus::NotStarted,
            Self::HeldBack => RecordStatus::HeldBack,
        }
    }
}

/// One record of the batch, as far as we need it.
struct Record {
    index: usize,
    message_id: String,
    body: Option<String>,
    receive_count: Option<u64>,
    /// `s-…/users/alice`: records with the same key run in order.
    key: String,
}

/// The result of one record, for the reply and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordResult {
    pub index: usize,
    pub message_id: String,
    pub target: String,
    pub disposition: Disposition,
    pub elapsed: Duration,
    /// SQS's `ApproximateReceiveCount`: how close the record is to the dead-letter queue.
    pub receive_count: Option<u64>,
}

pub async fn handle<T: Transfer>(
    chroot: &Chroot<T>,
    event: Value,
    invocation: &Invocation,
) -> Result<Value, HandlerError> {
    let started = Instant::now();
    // Fixed now, so every record sees the same cutoff.
    let cutoff = started + invocation.remaining().saturating_sub(DEADLINE_MARGIN);
    let records = read_records(&event, &chroot.config)?;
    let total = records.len();
    let results = run_batch(chroot, records, cutoff).await;

    let mut response = SqsBatchResponse::default();
    for r in &results {
        if r.disposition.reported() {
            response.add_failure(r.message_id.clone());
        }
    }
    log_summary(
        &results,
        total,
        started,
        invocation,
        chroot.config.sqs_concurrency,
    );
    serde_json::to_value(&response).map_err(HandlerError::Serialise)
}

/// One record as `aws_lambda_events` types it; a record that does not fit the type (a
/// body that is not a string, say) is still read as far as it can be, so that it is
/// reported on its own rather than failing the batch.
fn read_message(item: &Value) -> SqsMessage {
    SqsMessage::deserialize(item).unwrap_or_else(|_| {
        let text = |pointer: &str| {
            item.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut m = SqsMessage::default();
        m.message_id = text("/messageId");
        m.body = text("/body");
        if let Some(count) = text("/attributes/ApproximateReceiveCount") {
            m.attributes
                .insert("ApproximateReceiveCount".to_owned(), count);
        }
        m
    })
}

/// Reads the records; fails the whole batch if one cannot be reported individually.
fn read_records(event: &Value, config: &Config) -> Result<Vec<Record>, HandlerError> {
    let items = event
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut records = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let message = read_message(item);
        let Some(message_id) = message.message_id.filter(|m| !m.is_empty()) else {
            tracing::error!(
                record = index,
                "SQS record without a messageId: failing the whole batch so that every record is redelivered"
            );
            return Err(HandlerError::UnreportableRecord { index });
        };
        let key = message
            .body
            .as_deref()
            .and_then(|b| target_key(b, config))
            // Unidentifiable records share nothing with any other record.
            .unwrap_or_else(|| format!("#{index}"));
        records.push(Record {
            index,
            message_id,
            receive_count: message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok()),
            body: message.body,
            key,
        });
    }
    Ok(records)
}

/// The target a body is about, read leniently (validation comes later): direct command
/// fields, or an EventBridge event's `detail`. Spelt as [`crate::domain::Target`] is.
pub fn target_key(body: &str, config: &Config) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let fields = match shape(&value) {
        Shape::EventBridge
            if value.get("detail-type").and_then(Value::as_str)
                == Some(crate::sources::cloudtrail::API_CALL) =>
        {
            return cloudtrail_key(value.pointer("/detail/requestParameters")?);
        }
        Shape::EventBridge => value.get("detail")?,
        Shape::Direct => &value,
        _ => return None,
    };
    let server = match fields.get("ServerId") {
        Some(v) => v.as_str()?.to_owned(),
        None => config.defaults.server.as_ref()?.to_string(),
    };
    let text = |k: &str| fields.get(k).and_then(Value::as_str);
    let kind = if text("Action") == Some("UpdateAccess") || text("UserName").is_none() {
        TargetKind::Access
    } else {
        TargetKind::User
    };
    text(kind.field()).map(|s| format!("{server}/{}/{s}", kind.collection()))
}

/// A CloudTrail record's target, from its camelCase `requestParameters`.
fn cloudtrail_key(params: &Value) -> Option<String> {
    let text = |k: &str| params.get(k).and_then(Value::as_str);
    let server = text("serverId")?;
    match (text("userName"), text("externalId")) {
        (Some(u), _) => Some(format!("{server}/{}/{u}", TargetKind::User.collection())),
        (None, Some(a)) => Some(format!("{server}/{}/{a}", TargetKind::Access.collection())),
        _ => None,
    }
}

/// Runs the records: one sequential lane per target, lanes concurrently up to the cap.
async fn run_batch<T: Transfer>(
    chroot: &Chroot<T>,
    records: Vec<Record>,
    cutoff: Instant,
) -> Vec<RecordResult> {
    let mut lanes: Vec<Vec<Record>> = Vec::new();
    let mut lane_of: HashMap<String, usize> = HashMap::new();
    for record in records {
        match lane_of.get(&record.key) {
            Some(&i) => lanes[i].push(record),
            None => {
                lane_of.insert(record.key.clone(), lanes.len());
                lanes.push(vec![record]);
            }
        }
    }
    let cap = chroot.config.sqs_concurrency.max(1);
    let mut results: Vec<RecordResult> = futures::stream::iter(lanes)
        .map(|lane| run_lane(chroot, lane, cutoff))
        .buffer_unordered(cap)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    results.sort_by_key(|r| r.index);
    results
}

async fn run_lane<T: Transfer>(
    chroot: &Chroot<T>,
    lane: Vec<Record>,
    cutoff: Instant,
) -> Vec<RecordResult> {
    let mut results = Vec::with_capacity(lane.len());
    let mut blocked = false;
    for record in lane {
        // One span per record: every line about it carries its message id and target.
        let span = tracing::info_span!(
            "record",
            messageId = %record.message_id,
            target = %key_label(&record.key),
        );
        let result = run_record(chroot, record, blocked, cutoff, &span)
            .instrument(span.clone())
            .await;
        blocked |= result.disposition.reported() && result.disposition.retryable();
        span.in_scope(|| log_record(&result));
        results.push(result);
    }
    results
}

async fn run_record<T: Transfer>(
    chroot: &Chroot<T>,
    record: Record,
    blocked: bool,
    cutoff: Instant,
    span: &tracing::Span,
) -> RecordResult {
    let start = Instant::now();
    let disposition = if blocked {
        Disposition::HeldBack
    } else if start >= cutoff {
        Disposition::NotStarted
    } else {
        match tokio::time::timeout_at(
            cutoff.into(),
            process(
                chroot,
                record.body.as_deref(),
                &record.message_id,
                cutoff.into(),
            ),
        )
        .await
        {
            Ok((outcome, profile)) => Disposition::Done {
                outcome: Box::new(outcome),
                profile,
            },
            Err(_) => Disposition::TimedOut,
        }
    };
    let target = target_label(&disposition, &record.key);
    span.record("target", target.as_str());
    RecordResult {
        index: record.index,
        message_id: record.message_id,
        target,
        disposition,
        elapsed: start.elapsed(),
        receive_count: record.receive_count,
    }
}

fn key_label(key: &str) -> &str {
    if key.starts_with('#') { "?" } else { key }
}

fn target_label(disposition: &Disposition, key: &str) -> String {
    match disposition {
        Disposition::Done { outcome, .. } if outcome.identity.names_a_target() => {
            outcome.target_label()
        }
        _ => key_label(key).to_owned(),
    }
}

/// One body to one outcome. Nothing here fails the batch.
async fn process<T: Transfer>(
    chroot: &Chroot<T>,
    body: Option<&str>,
    message_id: &str,
    cutoff: tokio::time::Instant,
) -> (Outcome, Option<String>) {
    let Some(body) = body else {
        return (malformed("the record has no body"), None);
    };
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return (malformed(&format!("the body is not JSON: {e}")), None),
    };
    match shape(&value) {
        Shape::EventBridge => {
            let applied = eventbridge::run(chroot, &value, cutoff).await;
            (applied.outcome, applied.profile)
        }
        // An audit, or its continuation sent back to the queue by the function itself.
        Shape::Direct if direct::is_audit(&value) => (
            direct::audit_record(chroot, &value, message_id, cutoff).await,
            None,
        ),
        // A directory group's member, queued by its trigger: followed from the
        // directory as it is when consumed.
        Shape::Direct if directory::is_reconcile_user(&value) => {
            let outcome = directory::reconcile_user(chroot, &value, cutoff).await;
            let profile = outcome.profile.clone();
            (outcome, profile)
        }
        // A fix the audit queued: reconciled from the state as it is when consumed.
        Shape::Direct if direct::is_reconcile(&value) => {
            (direct::reconcile(chroot, &value, cutoff).await, None)
        }
        Shape::Direct => match direct::read(&value) {
            Some(input) => (chroot.run(&input).await, None),
            None => (direct::not_an_object(), None),
        },
        _ => (
            malformed(
                "the body must be a direct command (an object with Action) or an EventBridge \
                 event (an object with detail-type and detail)",
            ),
            None,
        ),
    }
}

fn malformed(message: &str) -> Outcome {
    Outcome::failed(
        Identity::default(),
        ErrorBody::new(ErrorCode::ValidationFailed, message),
    )
}

/// One structured line per record: status, error code, AWS request id, and whether it
/// was reported for redelivery (the message id and target are the record span's).
fn log_record(r: &RecordResult) {
    let status = r.disposition.status().as_str();
    let reported = r.disposition.reported();
    let elapsed_ms = r.elapsed.as_millis() as u64;
    let receive_count = r.receive_count;
    match &r.disposition {
        Disposition::Done { outcome, profile } => {
            let code = outcome.error_code().map(ErrorCode::as_str);
            crate::metrics::outcome(outcome.status.as_str(), code);
            let message = outcome.error.as_ref().map(|e| e.message.as_str());
            let fields = outcome
                .error
                .as_ref()
                .filter(|e| !e.fields.is_empty())
                .and_then(|e| serde_json::to_string(&e.fields).ok());
            let profile = profile.as_deref();
            let aws_request_id = outcome.request_id.as_deref();
            let reason = outcome.reason.as_deref();
            let changes = outcome.changes.len();
            if outcome.status != Status::Failed {
                tracing::info!(
                    status,
                    profile,
                    reason,
                    changes,
                    aws_request_id,
                    reported,
                    receive_count,
                    elapsed_ms,
                    "record"
                );
            } else if outcome.is_retryable_failure() {
                tracing::warn!(
                    status,
                    profile,
                    error_code = code,
                    error_message = message,
                    retryable = true,
                    aws_request_id,
                    reported,
                    receive_count,
                    elapsed_ms,
                    "record"
                );
            } else {
                // Permanent: another delivery will fail the same way until the input
                // or the configuration is fixed; ERROR so alarms fire at once.
                tracing::error!(
                    status,
                    profile,
                    error_code = code,
                    error_message = message,
                    error_fields = fields.as_deref(),
                    retryable = false,
                    aws_request_id,
                    reported,
                    receive_count,
                    elapsed_ms,
                    "record"
                );
            }
        }
        other => {
            crate::metrics::outcome(crate::metrics::DEFERRED, None);
            let why = match other {
                Disposition::TimedOut => "still running at the deadline margin; abandoned",
                Disposition::NotStarted => "not started before the deadline margin",
                _ => "an earlier record for the same target failed and will be retried first",
            };
            tracing::warn!(
                status,
                reason = why,
                retryable = true,
                reported,
                receive_count,
                elapsed_ms,
                "record"
            );
        }
    }
}

fn log_summary(
    results: &[RecordResult],
    total: usize,
    started: Instant,
    invocation: &Invocation,
    concurrency: usize,
) {
    let mut tally: HashMap<RecordStatus, usize> = HashMap::new();
    for r in results {
        *tally.entry(r.disposition.status()).or_default() += 1;
    }
    let count = |s: RecordStatus| tally.get(&s).copied().unwrap_or_default();
    let outcome = |s: Status| count(RecordStatus::Outcome(s));
    let reported = results.iter().filter(|r| r.disposition.reported()).count();
    tracing::info!(
        records = total,
        succeeded = total - reported,
        reported,
        updated = outcome(Status::Updated),
        unchanged = outcome(Status::Unchanged),
        planned = outcome(Status::Planned),
        skipped = outcome(Status::Skipped),
        failed = outcome(Status::Failed),
        timed_out = count(RecordStatus::TimedOut),
        not_started = count(RecordStatus::NotStarted),
        held_back = count(RecordStatus::HeldBack),
        concurrency,
        elapsed_ms = started.elapsed().as_millis() as u64,
        remaining_ms = invocation.remaining().as_millis() as u64,
        "batch"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        let vars = [
            ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
            ("HOME_ROOTS", "/acme-sftp/home"),
            ("DEFAULT_SERVER_ID", "s-0123456789abcdef0"),
        ];
        Config::from_pairs(&vars).unwrap()
    }

    #[test]
    fn a_direct_command_and_an_event_for_the_same_user_share_a_key() {
        let c = config();
        let direct =
            json!({"Action": "UpdateUser", "ServerId": "s-0123456789abcdef0", "UserName": "alice"});
        let event = json!({"detail-type": "Directory Group Membership Changed",
                           "detail": {"UserName": "alice", "Groups": []}});
        let key = target_key(&direct.to_string(), &c);
        assert_eq!(key.as_deref(), Some("s-0123456789abcdef0/users/alice"));
        assert_eq!(target_key(&event.to_string(), &c), key);
    }

    #[test]
    fn accesses_and_unreadable_bodies() {
        let c = config();
        let access = json!({"detail-type": "Directory Group Changed",
                            "detail": {"ExternalId": "S-1-5-21-1", "GroupName": "g"}});
        assert_eq!(
            target_key(&access.to_string(), &c).as_deref(),
            Some("s-0123456789abcdef0/accesses/S-1-5-21-1")
        );
        let direct = json!({"Action": "UpdateAccess", "ExternalId": "S-1-5-21-1", "UserName": "x"});
        assert_eq!(
            target_key(&direct.to_string(), &c),
            target_key(&access.to_string(), &c)
        );
        assert_eq!(target_key("not json", &c), None);
        assert_eq!(target_key("{\"Action\": \"UpdateUser\"}", &c), None);
        assert_eq!(target_key("[1]", &c), None);
    }

    #[test]
    fn what_is_reported() {
        let done = |status| Disposition::Done {
            outcome: Box::new(Outcome::new(status, Identity::default())),
            profile: None,
        };
        for status in [
            Status::Updated,
            Status::Unchanged,
            Status::Planned,
            Status::Skipped,
        ] {
            assert!(!done(status).reported(), "{status:?}");
        }
        assert!(done(Status::Failed).reported());
        for d in [
            Disposition::TimedOut,
            Disposition::NotStarted,
            Disposition::HeldBack,
        ] {
            assert!(d.reported() && d.retryable(), "{d:?}");
        }
    }
}
