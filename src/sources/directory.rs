//! Directory triggers (EventBridge, directly or as an SQS body): envelopes that name a
//! directory user or group, read into a [`Trigger`] and followed
//! ([`crate::follow`]). What an event says about groups is never used.
//!
//! - Identity Store notifications (`source` `aws.identitystore`, any `detail-type` but
//!   CloudTrail's): ids from `resources` (ARNs ending `user/<UserId>`, `group/<GroupId>`)
//!   and from `detail` (`userId`, `groupId`, `memberId.userId`, any letter case). One
//!   that names a user is about that user; one that names only a group, its members.
//! - CloudTrail records of Identity Store calls: `identitystore.amazonaws.com`
//!   `CreateGroupMembership` names its member; `DeleteGroupMembership` names only a
//!   membership id that no longer exists (`Skipped`: the audit finds its user);
//!   `identitystore-scim.amazonaws.com` `PatchGroup` names the group (SCIM values are
//!   redacted in CloudTrail, so not the member). A failed call (`errorCode`) is
//!   `Skipped`.
//! - Okta's System Log through EventBridge (`detail-type` `SystemLog`,
//!   `group.user_membership.add` / `.remove`): the `target[]` entry of `type` `User`,
//!   its `alternateId` the Identity Store `UserName`.
//! - `Directory Group Membership Changed` with `IDENTITY_STORE_ID`: its `UserName` (and
//!   `ServerId`, when given); its `Groups` are ignored.
//!
//! Every id is validated against the Identity Store's patterns before any call, and an
//! event of another Identity Store is `Skipped`.

use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::apply::Chroot;
use crate::domain::{DirectoryUserName, FieldError, GroupId, ServerId, UserId};
use crate::follow::{self, UserRef};
use crate::input::Fields;
use crate::outcome::{Identity, Outcome, Rejection, echo};
use crate::transfer::Transfer;

pub const IDENTITY_STORE_SOURCE: &str = "aws.identitystore";
pub const OKTA_SYSTEM_LOG: &str = "SystemLog";
const OKTA_MEMBERSHIP: [&str; 2] = ["group.user_membership.add", "group.user_membership.remove"];

/// What a directory event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    User {
        who: UserRef,
        /// Only this server (a legacy event's `ServerId`); else every covered one.
        only: Option<ServerId>,
    },
    Group(GroupId),
    /// Nothing to follow, and why (no AWS call).
    Skip(String),
    /// Malformed: every bad field (no AWS call).
    Invalid(Vec<FieldError>),
}

/// Whether `source` is the Identity Store's (its notifications, its CloudTrail
/// records; the SCIM endpoint's source is not documented, so its prefix).
pub fn is_identity_store(source: Option<&str>) -> bool {
    source.is_some_and(|s| s.starts_with(IDENTITY_STORE_SOURCE))
}

/// Case-insensitive lookup of a `detail` key.
fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn parse_id<I>(
    raw: &Value,
    field: String,
    parse: impl Fn(&str) -> Result<I, crate::domain::directory::DirectoryIdViolation>,
    errs: &mut Vec<FieldError>,
) -> Option<I> {
    match raw.as_str() {
        Some(s) => parse(s)
            .map_err(|e| errs.push(FieldError::new(field, e)))
            .ok(),
        None => {
            errs.push(FieldError::new(field, "must be a string"));
            None
        }
    }
}

/// An event of an Identity Store other than `IDENTITY_STORE_ID`'s, if it says so.
fn other_store<T: Transfer>(
    chroot: &Chroot<T>,
    detail: &Map<String, Value>,
    params: Option<&Map<String, Value>>,
) -> Option<String> {
    let ours = chroot.config.identity_store.as_ref()?;
    let said = get(detail, "identityStoreId")
        .or_else(|| params.and_then(|p| get(p, "identityStoreId")))
        .and_then(Value::as_str)?;
    (said != ours.as_str()).then(|| {
        format!(
            "an event of Identity Store {:?}, not IDENTITY_STORE_ID's ({ours})",
            echo(said)
        )
    })
}

/// An Identity Store notification: the user it names, else its group.
pub fn notification(resources: &[Value], detail: &Map<String, Value>) -> Trigger {
    let mut errs = Vec::new();
    let mut user: Option<UserId> = None;
    let mut group: Option<GroupId> = None;
    for (i, r) in resources.iter().enumerate() {
        let Some(arn) = r.as_str() else { continue };
        // arn:aws:identitystore:::user/<UserId>, ...:::group/<GroupId>
        let tail = arn.rsplit(':').next().unwrap_or_default();
        if let Some(id) = tail.strip_prefix("user/") {
            user = user.or(parse_id(
                &Value::from(id),
                format!("resources[{i}]"),
                UserId::parse,
                &mut errs,
            ));
        } else if let Some(id) = tail.strip_prefix("group/") {
            group = group.or(parse_id(
                &Value::from(id),
                format!("resources[{i}]"),
                GroupId::parse,
                &mut errs,
            ));
        }
    }
    if let Some(v) = get(detail, "userId") {
        user = user.or(parse_id(
            v,
            "detail.userId".into(),
            UserId::parse,
            &mut errs,
        ));
    }
    if let Some(member) = get(detail, "memberId").and_then(Value::as_object)
        && let Some(v) = get(member, "userId")
    {
        user = user.or(parse_id(
            v,
            "detail.memberId.userId".into(),
            UserId::parse,
            &mut errs,
        ));
    }
    if let Some(v) = get(detail, "groupId") {
        group = group.or(parse_id(
            v,
            "detail.groupId".into(),
            GroupId::parse,
            &mut errs,
        ));
    }
    if !errs.is_empty() {
        return Trigger::Invalid(errs);
    }
    match (user, group) {
        (Some(u), _) => Trigger::User {
            who: UserRef::Id(u),
            only: None,
        },
        (None, Some(g)) => Trigger::Group(g),
        (None, None) => Trigger::Skip(
            "the notification names no user or group (resources, detail.userId, detail.groupId)"
                .into(),
        ),
    }
}

/// A CloudTrail record of an Identity Store call (its `detail`).
pub fn api_call(detail: &Map<String, Value>) -> Trigger {
    let f = Fields::new(detail, false);
    let text = |k: &str| f.value(k).and_then(Value::as_str).unwrap_or_default();
    let (source, name) = (text("eventSource"), text("eventName"));
    if let Some(code) = f.value("errorCode").and_then(Value::as_str) {
        return Trigger::Skip(format!(
            "{} failed ({}): nothing changed",
            echo(name),
            echo(code)
        ));
    }
    let params = f.value("requestParameters").and_then(Value::as_object);
    let mut errs = Vec::new();
    match (source, name) {
        ("identitystore.amazonaws.com", "CreateGroupMembership") => {
            let raw = params
                .and_then(|p| get(p, "memberId"))
                .and_then(Value::as_object)
                .and_then(|m| get(m, "userId"));
            match raw {
                None => Trigger::Invalid(vec![FieldError::new(
                    "detail.requestParameters.memberId.userId",
                    "required: the member CreateGroupMembership added",
                )]),
                Some(v) => match parse_id(
                    v,
                    "detail.requestParameters.memberId.userId".into(),
                    UserId::parse,
                    &mut errs,
                ) {
                    Some(u) => Trigger::User {
                        who: UserRef::Id(u),
                        only: None,
                    },
                    None => Trigger::Invalid(errs),
                },
            }
        }
        ("identitystore.amazonaws.com", "DeleteGroupMembership") => Trigger::Skip(
            "DeleteGroupMembership names only the membership, which no longer exists: its user \
             cannot be told, and the next audit finds and fixes them"
                .into(),
        ),
        ("identitystore-scim.amazonaws.com", "PatchGroup") => {
            match params.and_then(|p| get(p, "id")) {
                None => Trigger::Invalid(vec![FieldError::new(
                    "detail.requestParameters.id",
                    "required: the SCIM group PatchGroup changed",
                )]),
                Some(v) => match parse_id(
                    v,
                    "detail.requestParameters.id".into(),
                    GroupId::parse,
                    &mut errs,
                ) {
                    Some(g) => Trigger::Group(g),
                    None => Trigger::Invalid(errs),
                },
            }
        }
        _ => Trigger::Skip(format!(
            "{} {} does not change a group membership (CreateGroupMembership, \
             DeleteGroupMembership and SCIM PatchGroup do)",
            echo(source),
            echo(name)
        )),
    }
}

/// Okta's System Log event (`detail`): the user whose membership changed.
pub fn okta(detail: &Map<String, Value>) -> Trigger {
    let event_type = get(detail, "eventType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !OKTA_MEMBERSHIP.contains(&event_type) {
        return Trigger::Skip(format!(
            "Okta eventType {:?} is not a group membership change ({})",
            echo(event_type),
            OKTA_MEMBERSHIP.join(", ")
        ));
    }
    let user = get(detail, "target")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|t| t.get("type").and_then(Value::as_str) == Some("User"));
    let Some(login) = user
        .and_then(|u| u.get("alternateId"))
        .and_then(Value::as_str)
    else {
        return Trigger::Invalid(vec![FieldError::new(
            "detail.target",
            "required: an entry of type User with its alternateId (the login)",
        )]);
    };
    match DirectoryUserName::parse(login) {
        Ok(name) => Trigger::User {
            who: UserRef::Name(name),
            only: None,
        },
        Err(e) => Trigger::Invalid(vec![FieldError::new("detail.target[User].alternateId", e)]),
    }
}

/// `Directory Group Membership Changed` when the directory decides: its user (and
/// server), never its `Groups`.
pub fn membership_changed(detail: &Map<String, Value>) -> Trigger {
    let mut errs = Vec::new();
    let who = match get(detail, "UserName").and_then(Value::as_str) {
        None => {
            errs.push(FieldError::new(
                "UserName",
                "required: the directory user's UserName",
            ));
            None
        }
        Some(raw) => DirectoryUserName::parse(raw)
            .map_err(|e| errs.push(FieldError::new("UserName", e)))
            .ok(),
    };
    let only = match get(detail, "ServerId") {
        None => None,
        Some(v) => match v.as_str().map(ServerId::parse) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                errs.push(FieldError::new("ServerId", e));
                None
            }
            None => {
                errs.push(FieldError::new("ServerId", "must be a string"));
                None
            }
        },
    };
    match who {
        Some(name) if errs.is_empty() => Trigger::User {
            who: UserRef::Name(name),
            only,
        },
        _ => Trigger::Invalid(errs),
    }
}

/// Follows `trigger` before `deadline`.
pub async fn follow<T: Transfer>(
    chroot: &Chroot<T>,
    trigger: Trigger,
    deadline: Instant,
) -> Outcome {
    match trigger {
        Trigger::User { who, only } => {
            Box::pin(follow::user(chroot, &who, only.as_ref(), deadline)).await
        }
        Trigger::Group(g) => Box::pin(follow::group(chroot, &g, deadline)).await,
        Trigger::Skip(why) => Outcome::skipped(Identity::default(), why),
        Trigger::Invalid(fields) => {
            Outcome::rejected(Rejection::invalid(Identity::default(), fields))
        }
    }
}

/// An EventBridge event from the Identity Store (notification or CloudTrail record),
/// followed.
pub async fn identity_store<T: Transfer>(
    chroot: &Chroot<T>,
    detail_type: &str,
    resources: &[Value],
    detail: &Map<String, Value>,
    deadline: Instant,
) -> Outcome {
    let params = detail.get("requestParameters").and_then(Value::as_object);
    if let Some(why) = other_store(chroot, detail, params) {
        return Outcome::skipped(Identity::default(), why);
    }
    let trigger = if detail_type == crate::sources::cloudtrail::API_CALL {
        api_call(detail)
    } else {
        notification(resources, detail)
    };
    follow(chroot, trigger, deadline).await
}

/// A `ReconcileDirectoryUser` command (queued by a group trigger, or by hand): the
/// directory user it names, followed. It carries the user and nothing else.
pub async fn reconcile_user<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    deadline: Instant,
) -> Outcome {
    let Some(map) = event.as_object() else {
        return Outcome::rejected(Rejection::invalid(
            Identity::default(),
            vec![FieldError::new("Action", "a command must be a JSON object")],
        ));
    };
    let mut errs: Vec<FieldError> = map
        .keys()
        .filter(|k| !["Action", "UserId"].contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                k.clone(),
                format!(
                    "not a field of {}: it names the directory user (UserId) only; the \
                     directory decides the rest",
                    follow::ACTION
                ),
            )
        })
        .collect();
    let user = match map.get("UserId") {
        None => {
            errs.push(FieldError::new(
                "UserId",
                "required: the directory user's id",
            ));
            None
        }
        Some(v) => parse_id(v, "UserId".into(), UserId::parse, &mut errs),
    };
    match user {
        Some(u) if errs.is_empty() => follow::user(chroot, &UserRef::Id(u), None, deadline).await,
        _ => Outcome::rejected(Rejection::invalid(Identity::default(), errs)),
    }
}

/// Whether `event` is a `ReconcileDirectoryUser` command.
pub fn is_reconcile_user(event: &Value) -> bool {
    event.get("Action").and_then(Value::as_str) == Some(follow::ACTION)
}
