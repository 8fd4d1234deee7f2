//! Directory group changes delivered by EventBridge (directly, or inside an SQS body).
//!
//! Two `detail-type`s (DESIGN.md "Directory group changes"):
//! - `Directory Group Membership Changed`: the user's profile is resolved from their
//!   *current* `Groups` (not from `Change`, which is informational), so applying an
//!   event is idempotent and a lost or reordered event cannot leave a stale profile:
//!   the next one for the user converges. Applied with UpdateUser.
//! - `Directory Group Changed`: the group's profile (else `Default`) is applied to the
//!   group's access with UpdateAccess.
//!
//! The command is built as the JSON object a direct caller would send and goes through
//! the one command parser, so validation and guardrails are exactly the same. Users are
//! never deleted: no event leads to anything but an update.

use serde_json::{Map, Value};

use crate::command::{InputRules, type_name};
use crate::domain::{ExternalId, FieldError, ServerId, UserName, Violations};
use crate::handler::{App, HandlerError, Invocation};
use crate::outcome::{Action, ErrorCode, Identity, Outcome, Status, echo};
use crate::profiles::Profile;
use crate::transfer::Transfer;

pub const MEMBERSHIP_CHANGED: &str = "Directory Group Membership Changed";
pub const GROUP_CHANGED: &str = "Directory Group Changed";

/// The outcome of one event and the profile that decided it (for the logs).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    /// `sftp-finance`, `Default`; `None` when no profile was applied.
    pub profile: Option<String>,
}

impl Applied {
    fn bare(outcome: Outcome) -> Self {
        Self {
            outcome,
            profile: None,
        }
    }
}

/// Lambda entry for an EventBridge event. Any `Failed` outcome fails the invocation
/// (`HandlerError::EventFailed`, carrying the whole result) so Lambda's asynchronous
/// retries and the on-failure destination take over; see docs/directory-events.md for
/// why permanent failures do too.
pub async fn handle<T: Transfer>(
    app: &App<T>,
    event: Value,
    invocation: &Invocation,
) -> Result<Value, HandlerError> {
    let applied = tokio::time::timeout_at(invocation.work_deadline(), run(app, &event))
        .await
        .unwrap_or_else(|_| {
            let detail = event.get("detail").and_then(Value::as_object);
            Applied::bare(Outcome::out_of_time(
                detail.map(Identity::echo_from).unwrap_or_default(),
            ))
        });
    log(&applied);
    let outcome = applied.outcome;
    if outcome.status == Status::Failed {
        let code = outcome
            .error_code()
            .map_or_else(|| "Failed".to_owned(), |c| format!("{c:?}"));
        return Err(HandlerError::EventFailed {
            status: code,
            message: outcome.to_json().to_string(),
        });
    }
    Ok(outcome.to_json())
}

/// One structured line per event: the outcome's fields plus the profile applied.
fn log(applied: &Applied) {
    let o = &applied.outcome;
    let code = o.error_code().map(|c| format!("{c:?}"));
    let message = o.error.as_ref().map(|e| e.message.as_str());
    let profile = applied.profile.as_deref();
    match o.status {
        // Retryable: Lambda's own retries will likely fix it, so WARN; permanent: it
        // will fail the same way until input or configuration changes, so ERROR.
        Status::Failed if o.is_retryable_failure() => tracing::warn!(
            source = "eventbridge",
            target_resource = %o.target_label(),
            status = ?o.status,
            profile,
            error_code = code.as_deref(),
            error_message = message,
            retryable = true,
            aws_request_id = o.request_id.as_deref(),
            "outcome"
        ),
        Status::Failed => tracing::error!(
            source = "eventbridge",
            target_resource = %o.target_label(),
            status = ?o.status,
            profile,
            error_code = code.as_deref(),
            error_message = message,
            retryable = false,
            aws_request_id = o.request_id.as_deref(),
            "outcome"
        ),
        _ => tracing::info!(
            source = "eventbridge",
            target_resource = %o.target_label(),
            status = ?o.status,
            profile,
            reason = o.reason.as_deref(),
            changes = o.changes.len(),
            aws_request_id = o.request_id.as_deref(),
            "outcome"
        ),
    }
}

/// Turns one EventBridge event into an outcome (no logging: the caller logs, with its
/// own context such as an SQS message id).
pub async fn run<T: Transfer>(app: &App<T>, event: &Value) -> Applied {
    let detail_type = event.get("detail-type");
    let detail = match event.get("detail") {
        Some(Value::Object(d)) => d,
        other => {
            return Applied::bare(invalid(
                Identity::default(),
                vec![FieldError::new(
                    "detail",
                    format!(
                        "must be an object, got {}",
                        other.map_or("nothing", type_name)
                    ),
                )],
            ));
        }
    };
    match detail_type.and_then(Value::as_str) {
        Some(MEMBERSHIP_CHANGED) => membership_changed(app, detail).await,
        Some(GROUP_CHANGED) => group_changed(app, detail).await,
        other => Applied::bare(invalid(
            Identity::default(),
            vec![FieldError::new(
                "detail-type",
                format!(
                    "must be {MEMBERSHIP_CHANGED:?} or {GROUP_CHANGED:?}, got {}",
                    match other {
                        Some(s) => format!("{:?}", echo(s)),
                        None => detail_type.map_or("nothing", type_name).to_owned(),
                    }
                ),
            )],
        )),
    }
}

async fn membership_changed<T: Transfer>(app: &App<T>, detail: &Map<String, Value>) -> Applied {
    let config = &app.chroot.config;
    let mut errs = Violations::default();
    let groups = read_groups(detail, &mut errs);
    let identity = identity(detail, Action::UpdateUser, config);

    let profile = match (&groups, &config.group_profiles) {
        (Some(groups), Some(profiles)) => profiles.resolve(groups),
        _ => None,
    };
    let Some(profile) = profile.filter(|_| errs.is_empty()) else {
        // Nothing to apply, or the event itself is malformed: either way no AWS call.
        // The user's identity is still checked, so a bad event is never "Skipped".
        check_identity(detail, "UserName", config, &mut errs);
        if !errs.is_empty() {
            return Applied::bare(invalid(identity, errs.into_vec()));
        }
        let reason = match &config.group_profiles {
            None => "GROUP_PROFILES is not configured".to_owned(),
            Some(_) => format!(
                "no GROUP_PROFILES profile matches the user's groups ({}) and no Default is configured",
                groups
                    .unwrap_or_default()
                    .iter()
                    .map(|g| format!("{:?}", echo(g)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Applied::bare(Outcome::skipped(identity, reason));
    };

    let mut input = command_base(detail, Action::UpdateUser, "UserName");
    if let Some(Value::String(user)) = detail.get("UserName")
        && let Some(home) = profile.user_home(user)
    {
        input.insert("HomeDirectory".into(), home.into());
    }
    input.extend(profile.command_fields());
    apply(app, &input, profile).await
}

async fn group_changed<T: Transfer>(app: &App<T>, detail: &Map<String, Value>) -> Applied {
    let config = &app.chroot.config;
    let mut errs = Violations::default();
    let group = match detail.get("GroupName") {
        None => {
            errs.push("GroupName", "required: the directory group's name");
            None
        }
        Some(Value::String(g)) if !g.trim().is_empty() => Some(g.as_str()),
        Some(other) => {
            errs.push(
                "GroupName",
                format!("must be a non-empty string, got {}", type_name(other)),
            );
            None
        }
    };
    let identity = identity(detail, Action::UpdateAccess, config);
    let profile = match (group, &config.group_profiles) {
        (Some(g), Some(profiles)) => profiles.for_group(g),
        _ => None,
    };
    if let Some(p) = profile
        && p.access_home().is_none()
    {
        errs.push(
            "HomeDirectory",
            format!(
                "the {} profile sets no HomeDirectory, and an access needs its chroot target",
                p.label()
            ),
        );
    }
    let Some(profile) = profile.filter(|_| errs.is_empty()) else {
        check_identity(detail, "ExternalId", config, &mut errs);
        if !errs.is_empty() {
            return Applied::bare(invalid(identity, errs.into_vec()));
        }
        let reason = match &config.group_profiles {
            None => "GROUP_PROFILES is not configured".to_owned(),
            Some(_) => format!(
                "no GROUP_PROFILES profile for group {:?} and no Default is configured",
                echo(group.unwrap_or_default())
            ),
        };
        return Applied::bare(Outcome::skipped(identity, reason));
    };

    let mut input = command_base(detail, Action::UpdateAccess, "ExternalId");
    if let Some(home) = profile.access_home() {
        input.insert("HomeDirectory".into(), home.into());
    }
    input.extend(profile.command_fields());
    apply(app, &input, profile).await
}

async fn apply<T: Transfer>(
    app: &App<T>,
    input: &Map<String, Value>,
    profile: &Profile,
) -> Applied {
    Applied {
        outcome: app.chroot.run(input, InputRules::default()).await,
        profile: Some(profile.label().to_owned()),
    }
}

/// `{"Action": ..., "ServerId"?, <subject>}` as a direct caller would write it. Values
/// are passed through untouched: the command parser reports what is wrong with them.
fn command_base(detail: &Map<String, Value>, action: Action, subject: &str) -> Map<String, Value> {
    let mut input = Map::new();
    input.insert("Action".into(), format!("{action:?}").into());
    // Absent: the parser falls back to DEFAULT_SERVER_ID.
    if let Some(server) = detail.get("ServerId") {
        input.insert("ServerId".into(), server.clone());
    }
    if let Some(s) = detail.get(subject) {
        input.insert(subject.into(), s.clone());
    }
    input
}

/// `Groups`: the user's current groups, an array of strings (may be empty).
fn read_groups(detail: &Map<String, Value>, errs: &mut Violations) -> Option<Vec<String>> {
    match detail.get("Groups") {
        None => {
            errs.push(
                "Groups",
                "required: the user's current groups (an array of names, may be empty)",
            );
            None
        }
        Some(Value::Array(items)) => {
            let before = errs.len();
            let groups: Vec<String> = items
                .iter()
                .enumerate()
                .filter_map(|(i, g)| match g {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        errs.push(
                            format!("Groups[{i}]"),
                            format!("must be a string, got {}", type_name(other)),
                        );
                        None
                    }
                })
                .collect();
            (errs.len() == before).then_some(groups)
        }
        Some(other) => {
            errs.push(
                "Groups",
                format!("must be an array of group names, got {}", type_name(other)),
            );
            None
        }
    }
}

/// Who the event is about, echoed for the result even when invalid.
fn identity(detail: &Map<String, Value>, action: Action, config: &crate::Config) -> Identity {
    let text = |k: &str| detail.get(k).and_then(Value::as_str).map(echo);
    Identity {
        action: Some(action),
        server_id: text("ServerId")
            .or_else(|| config.default_server.as_ref().map(|s| s.to_string())),
        user_name: (action == Action::UpdateUser)
            .then(|| text("UserName"))
            .flatten(),
        external_id: (action == Action::UpdateAccess)
            .then(|| text("ExternalId"))
            .flatten(),
    }
}

/// Checks `ServerId` and the subject where no command is parsed (a skipped or
/// malformed event), with the same rules the command parser applies.
fn check_identity(
    detail: &Map<String, Value>,
    subject: &str,
    config: &crate::Config,
    errs: &mut Violations,
) {
    match detail.get("ServerId") {
        None if config.default_server.is_none() => {
            errs.push("ServerId", "required (no DEFAULT_SERVER_ID is configured)")
        }
        None => {}
        Some(Value::String(s)) => {
            errs.check("ServerId", ServerId::parse(s));
        }
        Some(other) => errs.push(
            "ServerId",
            format!("must be a string, got {}", type_name(other)),
        ),
    }
    match detail.get(subject) {
        None => errs.push(subject, "required"),
        Some(Value::String(s)) if subject == "UserName" => {
            errs.check(subject, UserName::parse(s));
        }
        Some(Value::String(s)) => {
            errs.check(subject, ExternalId::parse(s));
        }
        Some(other) => errs.push(
            subject,
            format!("must be a string, got {}", type_name(other)),
        ),
    }
}

fn invalid(identity: Identity, fields: Vec<FieldError>) -> Outcome {
    let rejection = crate::command::Rejection::new(identity, ErrorCode::ValidationFailed, fields);
    Outcome::failed(rejection.identity, rejection.error)
}
