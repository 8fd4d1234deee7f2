//! Directory group changes delivered by EventBridge (directly, or inside an SQS body).
//!
//! Two `detail-type`s (docs/CONTRACT.md "Directory group changes"):
//! - `Directory Group Membership Changed`: the user's profile is resolved from their
//!   *current* `Groups` (not from `Change`, which is informational), so applying an
//!   event is idempotent and a lost or reordered event cannot leave a stale profile:
//!   the next one for the user converges. Applied with UpdateUser.
//! - `Directory Group Changed`: the group's profile (else `Default`) is applied to the
//!   group's access with UpdateAccess.
//!
//! The event fills the same [`CommandInput`] a direct caller's command does (the
//! profile's settings as already validated values), so validation and guardrails are
//! exactly the same. Users are never deleted: no event leads to anything but an update.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::apply::Chroot;
use crate::config::Config;
use crate::domain::{Action, ExternalId, FieldError, ServerId, TargetKind, UserName, Violations};
use crate::input::{CommandInput, Fields, echo_identity, type_name};
use crate::invocation::Invocation;
use crate::outcome::{ErrorCode, Identity, Outcome, Rejection, Status, echo};
use crate::profiles::Profile;
use crate::sources::error::HandlerError;
use crate::sources::{cloudtrail, directory};
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
    chroot: &Chroot<T>,
    event: Value,
    invocation: &Invocation,
) -> Result<Value, HandlerError> {
    let deadline = invocation.work_deadline();
    let applied = tokio::time::timeout_at(deadline, run(chroot, &event, deadline))
        .await
        .unwrap_or_else(|_| {
            let detail = event.get("detail").and_then(Value::as_object);
            Applied::bare(Outcome::out_of_time(
                detail.map(echo_identity).unwrap_or_default(),
            ))
        });
    log(&applied);
    let outcome = applied.outcome;
    if outcome.status == Status::Failed {
        return Err(HandlerError::event_failed(&outcome));
    }
    Ok(outcome.to_json())
}

/// One structured line per event: the outcome's fields plus the profile applied.
fn log(applied: &Applied) {
    let o = &applied.outcome;
    let code = o.error_code().map(ErrorCode::as_str);
    crate::metrics::outcome(o.status.as_str(), code);
    let message = o.error.as_ref().map(|e| e.message.as_str());
    let profile = applied.profile.as_deref();
    match o.status {
        // Retryable: Lambda's own retries will likely fix it, so WARN; permanent: it
        // will fail the same way until input or configuration changes, so ERROR.
        Status::Failed if o.is_retryable_failure() => tracing::warn!(
            target_resource = %o.target_label(),
            status = o.status.as_str(),
            profile,
            error_code = code,
            error_message = message,
            retryable = true,
            aws_request_id = o.request_id.as_deref(),
            "outcome"
        ),
        Status::Failed => tracing::error!(
            target_resource = %o.target_label(),
            status = o.status.as_str(),
            profile,
            error_code = code,
            error_message = message,
            retryable = false,
            aws_request_id = o.request_id.as_deref(),
            "outcome"
        ),
        _ => tracing::info!(
            target_resource = %o.target_label(),
            status = o.status.as_str(),
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
pub async fn run<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    deadline: tokio::time::Instant,
) -> Applied {
    // Directory triggers (the Identity Store's own events and CloudTrail records, Okta's
    // System Log): sources/directory.rs.
    let source = event.get("source").and_then(Value::as_str);
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    if let Some(Value::Object(detail)) = event.get("detail") {
        let resources: &[Value] = event
            .get("resources")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if directory::is_identity_store(source) {
            let o = directory::identity_store(
                chroot,
                detail_type.unwrap_or_default(),
                resources,
                detail,
                deadline,
            )
            .await;
            return applied(o);
        }
        if detail_type == Some(directory::OKTA_SYSTEM_LOG) {
            let o = directory::follow(chroot, directory::okta(detail), deadline).await;
            return applied(o);
        }
        if detail_type == Some(MEMBERSHIP_CHANGED) && chroot.config.identity_store.is_some() {
            let trigger = directory::membership_changed(detail);
            return applied(directory::follow(chroot, trigger, deadline).await);
        }
    }
    // The envelope as `aws_lambda_events` types it, when it fits (it needs `source`, a
    // valid `time`, an object `detail`); otherwise read field by field, to say exactly
    // what is wrong with it.
    if let Ok(typed) = EventBridgeEvent::<Map<String, Value>>::deserialize(event) {
        match typed.detail_type.as_str() {
            MEMBERSHIP_CHANGED => return membership_changed(chroot, &typed.detail).await,
            GROUP_CHANGED => return group_changed(chroot, &typed.detail).await,
            cloudtrail::API_CALL => {
                return Applied::bare(
                    cloudtrail::run(chroot, Some(&typed.source), &typed.detail).await,
                );
            }
            _ => {}
        }
    }
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
        Some(MEMBERSHIP_CHANGED) => membership_changed(chroot, detail).await,
        Some(GROUP_CHANGED) => group_changed(chroot, detail).await,
        Some(cloudtrail::API_CALL) => {
            let source = event.get("source").and_then(Value::as_str);
            Applied::bare(cloudtrail::run(chroot, source, detail).await)
        }
        other => Applied::bare(invalid(
            Identity::default(),
            vec![FieldError::new(
                "detail-type",
                format!(
                    "must be {MEMBERSHIP_CHANGED:?}, {GROUP_CHANGED:?}, {:?} (or an event of \
                     the Identity Store, or Okta's {:?}), got {}",
                    cloudtrail::API_CALL,
                    directory::OKTA_SYSTEM_LOG,
                    match other {
                        Some(s) => format!("{:?}", echo(s)),
                        None => detail_type.map_or("nothing", type_name).to_owned(),
                    }
                ),
            )],
        )),
    }
}

/// A directory trigger's outcome, with the profile it applied.
fn applied(outcome: Outcome) -> Applied {
    Applied {
        profile: outcome.profile.clone(),
        outcome,
    }
}

async fn membership_changed<T: Transfer>(
    chroot: &Chroot<T>,
    detail: &Map<String, Value>,
) -> Applied {
    let config = &chroot.config;
    let f = Fields::new(detail, false);
    let mut errs = Violations::default();
    let groups = read_groups(&f, &mut errs);
    let identity = identity(&f, Action::UpdateUser, config);

    let profile = match (&groups, &config.group_profiles) {
        (Some(groups), Some(profiles)) => profiles.resolve(groups),
        _ => None,
    };
    let Some(profile) = profile.filter(|_| errs.is_empty()) else {
        // Nothing to apply, or the event itself is malformed: either way no AWS call.
        // The user's identity is still checked, so a bad event is never "Skipped".
        check_identity(&f, TargetKind::User, config, &mut errs);
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

    let mut input = command_base(&f, Action::UpdateUser);
    if let Some(Ok(user)) = &input.user_name {
        input.home_directory = profile.user_home(user).map(Ok);
    }
    apply(chroot, input, profile).await
}

async fn group_changed<T: Transfer>(chroot: &Chroot<T>, detail: &Map<String, Value>) -> Applied {
    let config = &chroot.config;
    let f = Fields::new(detail, false);
    let mut errs = Violations::default();
    let group = match f.name("GroupName") {
        None => {
            errs.push("GroupName", "required: the directory group's name");
            None
        }
        Some(given) => errs.check("GroupName", given),
    };
    let identity = identity(&f, Action::UpdateAccess, config);
    let profile = match (&group, &config.group_profiles) {
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
        check_identity(&f, TargetKind::Access, config, &mut errs);
        if !errs.is_empty() {
            return Applied::bare(invalid(identity, errs.into_vec()));
        }
        let reason = match &config.group_profiles {
            None => "GROUP_PROFILES is not configured".to_owned(),
            Some(_) => format!(
                "no GROUP_PROFILES profile for group {:?} and no Default is configured",
                echo(group.as_deref().unwrap_or_default())
            ),
        };
        return Applied::bare(Outcome::skipped(identity, reason));
    };

    let mut input = command_base(&f, Action::UpdateAccess);
    input.home_directory = profile.access_home().map(Ok);
    apply(chroot, input, profile).await
}

async fn apply<T: Transfer>(
    chroot: &Chroot<T>,
    mut input: CommandInput,
    profile: &Profile,
) -> Applied {
    input.preset = profile.settings().clone();
    Applied {
        outcome: chroot.run(&input).await,
        profile: Some(profile.label().to_owned()),
    }
}

/// The command's `ServerId` and subject as the event gives them; what is wrong with
/// them is reported by validation, like any command's. An absent `ServerId` falls
/// back to `DEFAULT_SERVER_ID` there.
fn command_base(f: &Fields<'_>, action: Action) -> CommandInput {
    let mut input = CommandInput::fixed(action);
    input.server_id = f.string("ServerId");
    match action.kind() {
        TargetKind::User => input.user_name = f.string("UserName"),
        TargetKind::Access => input.external_id = f.string("ExternalId"),
    }
    input
}

/// `Groups`: the user's current groups, an array of strings (may be empty).
fn read_groups(f: &Fields<'_>, errs: &mut Violations) -> Option<Vec<String>> {
    match f.strings("Groups", "an array of group names") {
        None => {
            errs.push(
                "Groups",
                "required: the user's current groups (an array of names, may be empty)",
            );
            None
        }
        Some(Ok(items)) => {
            let before = errs.len();
            let groups: Vec<String> = items
                .into_iter()
                .enumerate()
                .filter_map(|(i, g)| errs.check(&format!("Groups[{i}]"), g))
                .collect();
            (errs.len() == before).then_some(groups)
        }
        Some(Err(e)) => {
            errs.push("Groups", e);
            None
        }
    }
}

/// Who the event is about, echoed for the result even when invalid.
fn identity(f: &Fields<'_>, action: Action, config: &Config) -> Identity {
    let text = |k: &str| f.value(k).and_then(Value::as_str).map(echo);
    Identity {
        action: Some(action),
        server_id: text("ServerId")
            .or_else(|| config.defaults.server.as_ref().map(|s| s.to_string())),
        user_name: (action == Action::UpdateUser)
            .then(|| text("UserName"))
            .flatten(),
        external_id: (action == Action::UpdateAccess)
            .then(|| text("ExternalId"))
            .flatten(),
    }
}

/// Checks `ServerId` and the subject where no command is validated (a skipped or
/// malformed event), with the same rules validation applies.
fn check_identity(f: &Fields<'_>, kind: TargetKind, config: &Config, errs: &mut Violations) {
    match f.string("ServerId") {
        None if config.defaults.server.is_none() => {
            errs.push("ServerId", "required (no DEFAULT_SERVER_ID is configured)")
        }
        None => {}
        Some(given) => {
            errs.check(
                "ServerId",
                given.and_then(|s| ServerId::parse(&s).map_err(|e| e.to_string())),
            );
        }
    }
    let field = kind.field();
    match f.string(field) {
        None => errs.push(field, "required"),
        Some(given) => {
            errs.check(
                field,
                given.and_then(|s| match kind {
                    TargetKind::User => UserName::parse(&s).map(drop).map_err(|e| e.to_string()),
                    TargetKind::Access => {
                        ExternalId::parse(&s).map(drop).map_err(|e| e.to_string())
                    }
                }),
            );
        }
    }
}

fn invalid(identity: Identity, fields: Vec<FieldError>) -> Outcome {
    Outcome::rejected(Rejection::invalid(identity, fields))
}
