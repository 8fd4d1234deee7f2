//! CloudFormation custom resource `Custom::TransferChroot`.
//!
//! `ResourceProperties` are the direct command's fields (`UserName` → a user,
//! `ExternalId` → an access; CloudFormation's stringly scalars accepted). The resource's
//! lifecycle:
//! - Create / Update apply the chroot (Update plans against the live state, like every
//!   source). PhysicalResourceId is `<ServerId>/users/<UserName>` or
//!   `<ServerId>/accesses/<ExternalId>`; an Update that changes it is a replacement, and
//!   CloudFormation's Delete of the old id changes nothing.
//! - Delete never touches Transfer and always succeeds.
//! - A failed Create answers the deterministic id `failed-create/<LogicalResourceId>`
//!   (never a random one), so the rollback's Delete is recognised as a no-op.
//!
//! CloudFormation waits for an answer PUT to `ResponseURL` (an hour by default), so one
//! is sent on every path — including an impending Lambda timeout, answered `FAILED`
//! shortly before the deadline (see [`response_reserve`]). The body is kept within
//! 4096 bytes ([`response`]) and the PUT is retried ([`responder`]).

pub mod responder;
pub mod response;
pub mod response_url;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::time::Instant;

pub use responder::{Delivered, PutError, Responder, RetryPolicy, Undelivered};
pub use response::{CfnResponse, CfnStatus, Draft, Encoded, MAX_BODY};
pub use response_url::{Refusal, ResponseUrl, ResponseUrlViolation, is_cloudformation_host};

use crate::apply::Chroot;
use crate::domain::{ResponseOrigins, Subject, Target};
use crate::input::{ActionRule, CommandInput, Reading, echo_identity, type_name};
use crate::invocation::Invocation;
use crate::outcome::{ErrorBody, Identity, Outcome, Status, echo};
use crate::sources::error::HandlerError;
use crate::transfer::Transfer;

/// How `ResourceProperties` are read: the subject decides the action, scalars may be
/// strings, and the properties addressed to CloudFormation itself (`ServiceToken`, and
/// `ServiceTimeout`, its own wait for the answer) are not command fields.
pub const READING: Reading = Reading {
    action: ActionRule::Inferred,
    lenient_scalars: true,
    ignore: &["ServiceToken", "ServiceTimeout"],
};

/// The PhysicalResourceId of a Create that failed: derived only from the request, so
/// the rollback's Delete (and any replay) sees the same id.
pub const FAILED_CREATE_PREFIX: &str = "failed-create/";

// Time kept back from the work to deliver the answer: room for the PUT's retries
// (4 attempts, 0.2 + 0.4 + 0.8 s of backoff) at the usual 30 s+ timeouts, and a
// quarter of what is left on short ones, so a 3 s function still gets 2.25 s of work.
const MAX_RESERVE: Duration = Duration::from_secs(3);
const MIN_RESERVE: Duration = Duration::from_millis(500);

/// The time kept for answering CloudFormation out of `remaining`: a quarter of it,
/// between 0.5 s and 3 s. The work (reading and writing Transfer) gets the rest and is
/// cut off, answering `FAILED`, when it runs out.
pub fn response_reserve(remaining: Duration) -> Duration {
    (remaining / 4).clamp(MIN_RESERVE, MAX_RESERVE)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// The parts of a custom resource request this function reads. Parsed leniently: as
/// long as there is a ResponseURL, CloudFormation gets an answer.
#[derive(Debug, Clone)]
pub struct CfnRequest {
    /// `Err` holds an unknown `RequestType` (echoed, truncated) to answer `FAILED` with.
    pub request_type: Result<RequestType, String>,
    pub response_url: ResponseUrl,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub physical_resource_id: Option<String>,
    pub resource_type: String,
    /// `Err` when `ResourceProperties` is present but not an object.
    pub properties: Result<Map<String, Value>, String>,
}

impl CfnRequest {
    /// Reads the request, its `ResponseURL` admitted first (CloudFormation's own, or an
    /// origin of `origins`): a request that cannot be answered is not read further.
    pub fn from_event(
        event: &Value,
        origins: &ResponseOrigins,
    ) -> Result<Self, ResponseUrlViolation> {
        let text = |key: &str| {
            event
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let response_url = event
            .get("ResponseURL")
            .and_then(Value::as_str)
            .ok_or(ResponseUrlViolation::Missing)
            .and_then(|raw| ResponseUrl::admit(raw, origins))?;
        let request_type = match event.get("RequestType").and_then(Value::as_str) {
            Some("Create") => Ok(RequestType::Create),
            Some("Update") => Ok(RequestType::Update),
            Some("Delete") => Ok(RequestType::Delete),
            Some(other) => Err(echo(other)),
            None => Err(String::new()),
        };
        let properties = match event.get("ResourceProperties") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(other) => Err(format!(
                "ResourceProperties must be an object, got {}",
                type_name(other)
            )),
        };
        Ok(Self {
            request_type,
            response_url,
            stack_id: text("StackId"),
            request_id: text("RequestId"),
            logical_resource_id: text("LogicalResourceId"),
            physical_resource_id: event
                .get("PhysicalResourceId")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            resource_type: text("ResourceType"),
            properties,
        })
    }

    /// The id to answer with when this request fails: the resource's current id when it
    /// has one (Update, Delete), else the deterministic failed-Create id.
    pub fn id_on_failure(&self) -> String {
        match (&self.request_type, &self.physical_resource_id) {
            (Ok(RequestType::Create), _) | (_, None) => failed_create_id(&self.logical_resource_id),
            (_, Some(id)) => id.clone(),
        }
    }
}

pub fn failed_create_id(logical_resource_id: &str) -> String {
    format!("{FAILED_CREATE_PREFIX}{logical_resource_id}")
}

/// `<ServerId>/users/<UserName>` or `<ServerId>/accesses/<ExternalId>`: the target's
/// own label.
pub fn physical_id(target: &Target) -> String {
    target.to_string()
}

/// What to answer, before it is addressed and fitted into a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: CfnStatus,
    pub physical_resource_id: String,
    pub detail: String,
    pub data: BTreeMap<String, String>,
}

impl Answer {
    fn failed(physical_resource_id: String, detail: String) -> Self {
        Self {
            status: CfnStatus::Failed,
            physical_resource_id,
            detail,
            data: BTreeMap::new(),
        }
    }

    /// The response for `request`; a failure's Reason also says where the logs are.
    pub fn draft(self, request: &CfnRequest, invocation: &Invocation) -> Draft {
        let pointer = match self.status {
            CfnStatus::Success => String::new(),
            CfnStatus::Failed => format!(
                "See CloudWatch Logs group {}, stream {}, request {}.",
                invocation.log_group, invocation.log_stream, invocation.request_id
            ),
        };
        Draft {
            status: self.status,
            physical_resource_id: self.physical_resource_id,
            stack_id: request.stack_id.clone(),
            request_id: request.request_id.clone(),
            logical_resource_id: request.logical_resource_id.clone(),
            detail: self.detail,
            pointer,
            data: self.data,
        }
    }
}

/// Handles one custom resource request and PUTs the answer. Returns the response sent.
///
/// If every PUT attempt fails the invocation fails too (`Err`), on purpose: CloudFormation
/// invokes custom resources asynchronously, so Lambda retries the event (twice, over a few
/// minutes) and each retry answers again — the work is idempotent (an applied chroot
/// is `Unchanged` the second time; Delete does nothing).
///
/// `origins` are the origins admitted besides CloudFormation's own (the function passes
/// `Config::response_origins`, from `CFN_RESPONSE_ORIGINS`).
pub async fn handle<T: Transfer>(
    chroot: &Chroot<T>,
    responder: &Responder,
    origins: &ResponseOrigins,
    event: Value,
    invocation: &Invocation,
) -> Result<Value, HandlerError> {
    let remaining = invocation.remaining();
    let deadline = Instant::now() + remaining;
    // The ResponseURL is judged before anything else is done: a request whose URL is
    // not CloudFormation's (nor one of CFN_RESPONSE_ORIGINS) is never worked on, and
    // the URL is never contacted.
    let request = match CfnRequest::from_event(&event, origins) {
        Ok(r) => r,
        Err(e) => {
            // Nowhere to answer: fail loudly so the invocation shows up as an error. The
            // message names the URL's origin at most, never its path or query.
            let text = |key: &str| event.get(key).and_then(Value::as_str).map(echo);
            tracing::error!(
                error = %e,
                request_type = text("RequestType"),
                stack_id = text("StackId"),
                logical_resource_id = text("LogicalResourceId"),
                "CloudFormation request cannot be answered: nothing sent, nothing done"
            );
            return Err(HandlerError::Unanswerable(format!(
                "{e}. Nothing was sent and nothing was done"
            )));
        }
    };
    tracing::info!(
        request_type = ?request.request_type,
        resource_type = %request.resource_type,
        logical_resource_id = %request.logical_resource_id,
        physical_resource_id = request.physical_resource_id.as_deref(),
        stack_id = %request.stack_id,
        response_endpoint = %request.response_url,
        "CloudFormation request"
    );

    let reserve = response_reserve(remaining);
    let budget = remaining.saturating_sub(reserve);
    let answer = match tokio::time::timeout(budget, answer(chroot, &request)).await {
        Ok(answer) => answer,
        Err(_) => timed_out(&request, budget, reserve),
    };

    let draft = answer.draft(&request, invocation);
    let encoded = draft.encode();
    if encoded.truncated {
        tracing::warn!(
                full_reason = %draft.full_reason(),
            size = encoded.body.len(),
            "CloudFormation response cut to fit 4096 bytes"
        );
    }
    let sent: Value = serde_json::from_slice(&encoded.body).unwrap_or_default();
    let size = encoded.body.len();
    let status = encoded.response.status;
    match responder
        .put(&request.response_url, Bytes::from(encoded.body), deadline)
        .await
    {
        Ok(delivered) => {
            tracing::info!(
                        status = status.as_str(),
                physical_resource_id = %encoded.response.physical_resource_id,
                attempts = delivered.attempts,
                http_status = delivered.status,
                size,
                response_endpoint = %request.response_url,
                "CloudFormation response delivered"
            );
            Ok(sent)
        }
        Err(e) => {
            tracing::error!(
                        status = status.as_str(),
                physical_resource_id = %encoded.response.physical_resource_id,
                attempts = e.attempts,
                error = %e,
                response_endpoint = %request.response_url,
                "CloudFormation response NOT delivered: the stack waits until Lambda retries this event or CloudFormation times out"
            );
            Err(HandlerError::ResponseNotDelivered {
                status: status.as_str(),
                error: e.to_string(),
            })
        }
    }
}

async fn answer<T: Transfer>(chroot: &Chroot<T>, request: &CfnRequest) -> Answer {
    match &request.request_type {
        Ok(RequestType::Delete) => delete(request),
        Ok(RequestType::Create | RequestType::Update) => apply(chroot, request).await,
        Err(other) => Answer::failed(
            request.id_on_failure(),
            format!("unsupported RequestType {other:?}: expected Create, Update or Delete"),
        ),
    }
}

/// Delete changes nothing: users and accesses belong to the server (or whoever created
/// them), and un-chrooting one would widen its access. The id is answered unchanged.
fn delete(request: &CfnRequest) -> Answer {
    let id = request.id_on_failure();
    let detail = if id.starts_with(FAILED_CREATE_PREFIX) {
        "Nothing to delete: the Create failed, so nothing was created.".to_owned()
    } else {
        format!(
            "Delete leaves {id} as it is: this resource never deletes users or accesses, nor lifts their chroot."
        )
    };
    Outcome::skipped(identity_of(&id), detail.clone()).log();
    Answer {
        status: CfnStatus::Success,
        physical_resource_id: id,
        detail,
        data: BTreeMap::new(),
    }
}

async fn apply<T: Transfer>(chroot: &Chroot<T>, request: &CfnRequest) -> Answer {
    let on_failure = request.id_on_failure();
    let properties = match &request.properties {
        Ok(p) => p,
        Err(e) => return Answer::failed(on_failure, format!("ValidationFailed: {e}.")),
    };
    let command = match chroot.parse(&CommandInput::read(properties, READING)).await {
        Ok(command) => command,
        Err(refused) => {
            let outcome = refused.into_outcome();
            outcome.log();
            return Answer::failed(on_failure, failure_detail(&outcome));
        }
    };
    let outcome = chroot.apply(&command).await;
    chroot
        .resolved(&command.target, &outcome, crate::apply::BY_A_COMMAND, None)
        .await;
    outcome.log();
    if outcome.status == Status::Failed {
        return Answer::failed(on_failure, failure_detail(&outcome));
    }

    let id = physical_id(&command.target);
    let mut detail = match outcome.status {
        Status::Updated => format!("Updated {id}: {} changed.", changed_fields(&outcome)),
        Status::Planned => format!(
            "Planned {id} (dry run, nothing written): {} would change.",
            changed_fields(&outcome)
        ),
        _ => format!("{id} is already chrooted to {}.", command.chroot),
    };
    if let (Ok(RequestType::Update), Some(old)) =
        (&request.request_type, &request.physical_resource_id)
        && *old != id
    {
        detail.push_str(&format!(" Replaces {old}, which is left as it is."));
    }
    for warning in &outcome.warnings {
        detail.push_str(&format!(" Warning: {warning}"));
    }
    let mut data = BTreeMap::from([
        ("ServerId".to_owned(), command.target.server.to_string()),
        ("Target".to_owned(), command.chroot.to_string()),
        ("Status".to_owned(), outcome.status.as_str().to_owned()),
    ]);
    match &command.target.subject {
        Subject::User(u) => data.insert("UserName".to_owned(), u.to_string()),
        Subject::Access(a) => data.insert("ExternalId".to_owned(), a.to_string()),
    };
    Answer {
        status: CfnStatus::Success,
        physical_resource_id: id,
        detail,
        data,
    }
}

fn changed_fields(outcome: &Outcome) -> String {
    outcome
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Code: message [Field: why; ...]`, with a hint when trying again may work.
fn failure_detail(outcome: &Outcome) -> String {
    let Some(ErrorBody {
        code,
        message,
        retryable,
        fields,
        ..
    }) = &outcome.error
    else {
        return "Failed.".to_owned();
    };
    let mut detail = format!("{}: {message}", code.as_str());
    if !fields.is_empty() {
        let listed: Vec<String> = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        detail.push_str(&format!(" [{}]", listed.join("; ")));
    }
    detail.push('.');
    if *retryable {
        detail.push_str(" This is transient: retry the stack operation.");
    }
    if let Some(id) = &outcome.request_id {
        detail.push_str(&format!(" AWS request id {id}."));
    }
    detail
}

fn timed_out(request: &CfnRequest, budget: Duration, reserve: Duration) -> Answer {
    let mut identity = request
        .properties
        .as_ref()
        .map(echo_identity)
        .unwrap_or_default();
    identity.action = None;
    let outcome = Outcome::failed(
        identity,
        ErrorBody::new(
            crate::outcome::ErrorCode::Upstream,
            format!("timed out after {budget:?}"),
        ),
    );
    outcome.log();
    Answer::failed(
        request.id_on_failure(),
        format!(
            "Timeout: no result from Transfer within {:.1} s, so the function answers now, \
             {:.1} s before Lambda would stop it. The change may or may not have been applied; \
             retrying the stack operation applies it safely.",
            budget.as_secs_f64(),
            reserve.as_secs_f64()
        ),
    )
}

/// The identity a PhysicalResourceId names, for the log line of a Delete; best effort
/// for an id that is not a target's (a failed Create's, or a hand-edited one).
fn identity_of(id: &str) -> Identity {
    if let Ok(target) = id.parse::<Target>() {
        return Identity {
            action: None,
            ..Identity::of(&target)
        };
    }
    let mut identity = Identity::default();
    if let Some((server, user)) = id.split_once("/users/") {
        identity.server_id = Some(echo(server));
        identity.user_name = Some(echo(user));
    } else if let Some((server, access)) = id.split_once("/accesses/") {
        identity.server_id = Some(echo(server));
        identity.external_id = Some(echo(access));
    } else {
        identity.server_id = Some(echo(id));
    }
    identity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_quarter_between_half_a_second_and_three() {
        assert_eq!(response_reserve(Duration::ZERO), MIN_RESERVE);
        assert_eq!(response_reserve(Duration::from_secs(1)), MIN_RESERVE);
        assert_eq!(
            response_reserve(Duration::from_secs(3)),
            Duration::from_millis(750)
        );
        assert_eq!(response_reserve(Duration::from_secs(30)), MAX_RESERVE);
        assert_eq!(response_reserve(Duration::from_secs(900)), MAX_RESERVE);
    }

    fn request(kind: &str, physical: Option<&str>) -> CfnRequest {
        let mut event = serde_json::json!({
            "RequestType": kind,
            "ResponseURL": "http://127.0.0.1:9/r?sig=1",
            "LogicalResourceId": "ChrootAlice",
        });
        if let Some(p) = physical {
            event["PhysicalResourceId"] = p.into();
        }
        let origins = ResponseOrigins::parse("http://127.0.0.1:9").unwrap();
        CfnRequest::from_event(&event, &origins).unwrap()
    }

    #[test]
    fn failure_ids_are_deterministic() {
        assert_eq!(
            request("Create", None).id_on_failure(),
            "failed-create/ChrootAlice"
        );
        assert_eq!(
            request("Update", Some("s-1/users/a")).id_on_failure(),
            "s-1/users/a"
        );
        assert_eq!(
            request("Delete", Some("failed-create/ChrootAlice")).id_on_failure(),
            "failed-create/ChrootAlice"
        );
        assert_eq!(request("Bogus", None).request_type, Err("Bogus".to_owned()));
    }

    #[test]
    fn delete_after_failed_create_is_recognised() {
        let a = delete(&request("Delete", Some("failed-create/ChrootAlice")));
        assert_eq!(a.status, CfnStatus::Success);
        assert!(a.detail.starts_with("Nothing to delete"));
    }

    #[test]
    fn no_response_url_no_request() {
        let e = CfnRequest::from_event(
            &serde_json::json!({"RequestType": "Create", "ResponseURL": 5}),
            &ResponseOrigins::none(),
        );
        assert_eq!(e.err(), Some(ResponseUrlViolation::Missing));
    }
}
