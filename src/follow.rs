//! Following the directory (`IDENTITY_STORE_ID`): a trigger names a directory user or
//! group; what they belong to is read from the Identity Store *now*, and the profile
//! that gives is applied. The event's own idea of the groups is never used, so events
//! that arrive late, twice or out of order all end on the directory's current state.
//!
//! - [`user`]: the directory user's profile ([`crate::membership`]) applied to the
//!   Transfer user of the same `UserName` on every covered server where one exists, as
//!   an intent (the profile's home and settings written if they differ). A directory
//!   user with no Transfer user anywhere is `Skipped`: most are not SFTP users.
//! - [`group`]: every current member, each as [`user`]; with `COMMAND_QUEUE_URL`, one
//!   `ReconcileDirectoryUser` command per member instead, naming the directory user
//!   only (never a group or a home), applied when consumed.
//!
//! A directory that cannot be read fails the trigger retryably, and nothing is
//! written from a guess.

use serde_json::json;
use tokio::time::Instant;

use crate::apply::{BY_A_COMMAND, Chroot};
use crate::directory::Directory;
use crate::domain::{Action, DirectoryUserName, GroupId, ServerId, UserId, UserName};
use crate::input::CommandInput;
use crate::membership::{Choice, unread};
use crate::outcome::{DirectoryNote, ErrorBody, ErrorCode, Identity, Outcome, Status, echo};
use crate::profiles::GroupProfiles;
use crate::transfer::{IdentityProvider, Transfer, TransferErrorKind};

/// The action of a queued member's command.
pub const ACTION: &str = "ReconcileDirectoryUser";

/// How a trigger names a directory user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(UserId),
    /// Its `UserName` (Okta's login, a legacy event's `UserName`): found with
    /// `GetUserId`.
    Name(DirectoryUserName),
}

impl UserRef {
    fn label(&self) -> String {
        match self {
            Self::Id(id) => id.to_string(),
            Self::Name(n) => n.to_string(),
        }
    }
}

/// The command a group trigger queues for one member: the directory user, nothing
/// else.
pub fn message(user: &UserId) -> String {
    json!({"Action": ACTION, "UserId": user.as_str()}).to_string()
}

/// The directory and the profiles a trigger needs, or why it cannot run here at all.
fn ready<T: Transfer>(chroot: &Chroot<T>) -> Result<(&dyn Directory, &GroupProfiles), String> {
    let (Some(directory), Some(_)) = (&chroot.ports.directory, &chroot.config.identity_store)
    else {
        return Err(
            "IDENTITY_STORE_ID is not configured: directory events need the Identity Store to read membership from"
                .into(),
        );
    };
    let Some(profiles) = &chroot.config.group_profiles else {
        return Err("GROUP_PROFILES is not configured: there is no profile to apply".into());
    };
    Ok((&**directory, profiles))
}

fn user_identity(name: Option<&str>) -> Identity {
    Identity {
        action: Some(Action::UpdateUser),
        user_name: name.map(echo),
        ..Identity::default()
    }
}

/// The directory user `who`'s profile, read now, applied to its Transfer users
/// (`only` narrows them to one server), before `deadline`.
pub async fn user<T: Transfer>(
    chroot: &Chroot<T>,
    who: &UserRef,
    only: Option<&ServerId>,
    deadline: Instant,
) -> Outcome {
    let (directory, profiles) = match ready(chroot) {
        Ok(ready) => ready,
        Err(why) => return Outcome::skipped(user_identity(None), why),
    };
    match tokio::time::timeout_at(
        deadline,
        follow_user(chroot, directory, profiles, who, only, deadline),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(_) => Outcome::out_of_time(user_identity(None)),
    }
}

async fn follow_user<T: Transfer>(
    chroot: &Chroot<T>,
    directory: &dyn Directory,
    profiles: &GroupProfiles,
    who: &UserRef,
    only: Option<&ServerId>,
    deadline: Instant,
) -> Outcome {
    let mut note = DirectoryNote::default();
    let found = match who {
        UserRef::Id(id) => {
            note.user_id = Some(id.to_string());
            directory
                .user(id)
                .await
                .map(|u| u.map(|u| (u.id, u.user_name)))
        }
        UserRef::Name(name) => {
            note.user_name = Some(name.to_string());
            match directory.user_id(name).await {
                Ok(Some(id)) => Ok(Some((id, name.to_string()))),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        }
    };
    let (id, name) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            let mut o = Outcome::skipped(
                user_identity(None),
                format!(
                    "the directory has no user {} (deleted since?): nothing to apply",
                    echo(&who.label())
                ),
            );
            o.directory = Some(note);
            return o;
        }
        Err(e) => {
            let mut o = unread(user_identity(None), &e);
            o.directory = Some(note);
            return o;
        }
    };
    note.user_id = Some(id.to_string());
    note.user_name = Some(name.clone());
    let identity = user_identity(Some(&name));
    let transfer_name = match UserName::parse(&name) {
        Ok(n) => n,
        Err(e) => {
            let mut o = Outcome::skipped(
                identity,
                format!(
                    "the directory user name {:?} cannot be a Transfer user name: it {e}",
                    echo(&name)
                ),
            );
            o.directory = Some(note);
            return o;
        }
    };
    let choice = match chroot.env.directory.choice(directory, profiles, &id).await {
        Ok(c) => c,
        Err(e) => {
            let mut o = unread(identity, &e);
            o.directory = Some(note);
            return o;
        }
    };
    let mut outcome = apply_choice(chroot, &transfer_name, &choice, only, deadline).await;
    outcome.directory = Some(note);
    outcome
}

/// `choice` applied to `name` on each covered server where that user exists.
async fn apply_choice<T: Transfer>(
    chroot: &Chroot<T>,
    name: &UserName,
    choice: &Choice<'_>,
    only: Option<&ServerId>,
    deadline: Instant,
) -> Outcome {
    let identity = user_identity(Some(name.as_str()));
    // EXEMPT_USERS (an administrator with a deliberately wide home): a membership
    // event, or a Default profile, never re-homes them.
    if chroot.config.exempt.contains(name.as_str()) {
        return Outcome::skipped(identity, "exempt (EXEMPT_USERS): left as it is");
    }
    let Some(profile) = choice.profile else {
        return Outcome::skipped(identity, choice.why.clone());
    };
    let servers = match only {
        Some(s) => vec![s.clone()],
        None => match chroot.covered_servers().await {
            Ok(s) => s,
            Err(e) => {
                let mut o = Outcome::failed(identity, ErrorBody::from(&e));
                o.request_id = e.request_id.clone();
                return o;
            }
        },
    };
    let mut results = Vec::new();
    let mut absent = Vec::new();
    for server in &servers {
        // Users live on SERVICE_MANAGED servers only: the others are not asked.
        match chroot
            .env
            .servers
            .facts(&chroot.ports.transfer, server)
            .await
        {
            Ok(f) if f.identity_provider != IdentityProvider::ServiceManaged && only.is_none() => {
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                let mut o = Outcome::failed(
                    Identity {
                        server_id: Some(server.to_string()),
                        ..identity.clone()
                    },
                    ErrorBody::from(&e),
                );
                o.request_id = e.request_id.clone();
                results.push(o);
                continue;
            }
        }
        let mut input = CommandInput::fixed(Action::UpdateUser);
        input.server_id = Some(Ok(server.to_string()));
        input.user_name = Some(Ok(name.to_string()));
        input.home_directory = profile.user_home(name.as_str()).map(Ok);
        input.preset = profile.settings().clone();
        match tokio::time::timeout_at(deadline, on_server(chroot, &input)).await {
            Ok(Some(outcome)) => results.push(outcome),
            Ok(None) => absent.push(server.to_string()),
            Err(_) => results.push(Outcome::out_of_time(Identity {
                server_id: Some(server.to_string()),
                ..identity.clone()
            })),
        }
    }
    let mut outcome = match results.len() {
        0 => Outcome::skipped(
            identity,
            format!(
                "no Transfer user named {name} on the covered servers{}: nothing to apply",
                if absent.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", absent.join(", "))
                }
            ),
        ),
        1 => results.remove(0),
        _ => combined(identity, results),
    };
    outcome.profile = Some(profile.label().to_owned());
    if outcome.reason.is_none() {
        outcome.reason = Some(choice.why.clone());
    }
    outcome
}

/// The profile's command on one server: `None` when the user does not exist there
/// (most servers hold only some users). The user is read first, so a server whose
/// storage the profile's home does not fit is only an error for users it holds.
async fn on_server<T: Transfer>(chroot: &Chroot<T>, input: &CommandInput) -> Option<Outcome> {
    let command = match chroot.parse(input).await {
        Ok(command) => command,
        Err(refused) => return Some(refused.into_outcome()),
    };
    let live = match chroot.inspect(&command.target).await {
        Ok(live) => live,
        Err(e) if e.kind == TransferErrorKind::NotFound => return None,
        Err(e) => {
            let mut o = Outcome::failed(command.identity(), ErrorBody::from(&e));
            o.request_id = e.request_id.clone();
            return Some(o);
        }
    };
    let facts = match chroot.fits_server(&command).await {
        Ok(facts) => facts,
        Err(refused) => return Some(*refused),
    };
    let outcome = chroot.write(&command, live, &facts).await;
    chroot
        .resolved(&command.target, &outcome, BY_A_COMMAND, None)
        .await;
    Some(outcome)
}

/// One outcome for several: `Failed` if any failed (a retry applies them all again,
/// the done ones then `Unchanged`), else the most that happened.
fn combined(identity: Identity, results: Vec<Outcome>) -> Outcome {
    let has = |s: Status| results.iter().any(|r| r.status == s);
    let status = [
        Status::Failed,
        Status::Updated,
        Status::Planned,
        Status::Queued,
        Status::Unchanged,
    ]
    .into_iter()
    .find(|s| has(*s))
    .unwrap_or(Status::Skipped);
    let mut outcome = Outcome::new(status, identity);
    if status == Status::Failed {
        let failed: Vec<&Outcome> = results
            .iter()
            .filter(|r| r.status == Status::Failed)
            .collect();
        let mut body = ErrorBody::new(
            ErrorCode::Upstream,
            format!("{} of {} failed (see Results)", failed.len(), results.len()),
        );
        body.retryable = failed.iter().all(|r| r.is_retryable_failure());
        outcome.error = Some(body);
    }
    outcome.results = results;
    outcome
}

/// At most this many member results are carried in a group's result (the counts and
/// the logs have every one).
pub const MEMBER_RESULTS: usize = 100;

/// Every current member of `group`: each followed ([`user`]) before `deadline`, or,
/// with a command queue, one `ReconcileDirectoryUser` command each.
pub async fn group<T: Transfer>(chroot: &Chroot<T>, group: &GroupId, deadline: Instant) -> Outcome {
    let identity = user_identity(None);
    let (directory, profiles) = match ready(chroot) {
        Ok(ready) => ready,
        Err(why) => return Outcome::skipped(identity, why),
    };
    let note = DirectoryNote {
        group_id: Some(group.to_string()),
        ..DirectoryNote::default()
    };
    let work = async {
        let profiled = match chroot.env.directory.profiled(directory, profiles).await {
            Ok(p) => p,
            Err(e) => return Err(unread(identity.clone(), &e)),
        };
        let Some((_, index)) = profiled.ids.iter().find(|(g, _)| g == group) else {
            return Ok(Outcome::skipped(
                identity.clone(),
                format!(
                    "group {group} is none of GROUP_PROFILES' groups: no member's profile depends on it"
                ),
            ));
        };
        let label = profiles
            .profiles()
            .get(*index)
            .map(|p| p.label().to_owned());
        let queue = chroot
            .ports
            .queue
            .as_ref()
            .filter(|_| !chroot.config.dry_run);
        let mut members = 0usize;
        let mut queued = 0usize;
        let mut results = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match directory.members(group, token.as_deref()).await {
                Ok(p) => p,
                Err(e) => return Err(unread(identity.clone(), &e)),
            };
            for member in &page.items {
                members += 1;
                if let Some(queue) = queue {
                    pending.push(message(member));
                    if pending.len() == crate::queue::BATCH {
                        queue
                            .send_batch(&pending)
                            .await
                            .map_err(|e| queue_failed(&identity, &e))?;
                        queued += pending.len();
                        pending.clear();
                    }
                } else {
                    let o =
                        Box::pin(user(chroot, &UserRef::Id(member.clone()), None, deadline)).await;
                    results.push(o);
                }
            }
            match page.next_token {
                Some(t) if !page.items.is_empty() => token = Some(t),
                _ => break,
            }
        }
        if let (Some(queue), false) = (queue, pending.is_empty()) {
            queue
                .send_batch(&pending)
                .await
                .map_err(|e| queue_failed(&identity, &e))?;
            queued += pending.len();
        }
        let mut outcome = if queue.is_some() {
            let mut o = Outcome::new(Status::Queued, identity.clone());
            o.reason = Some(format!(
                "{queued} member(s) of {} queued, each reconciled from the directory when consumed",
                label.as_deref().unwrap_or("the group")
            ));
            o
        } else if results.is_empty() {
            Outcome::skipped(identity.clone(), "the group has no members now")
        } else {
            let mut o = combined(identity.clone(), results);
            o.results.truncate(MEMBER_RESULTS);
            o
        };
        outcome.profile = label;
        outcome.directory = Some(DirectoryNote {
            members: Some(members),
            queued: queue.map(|_| queued),
            ..note.clone()
        });
        Ok(outcome)
    };
    let mut outcome = match tokio::time::timeout_at(deadline, work).await {
        Ok(Ok(o)) | Ok(Err(o)) => o,
        Err(_) => {
            let mut o = Outcome::out_of_time(identity);
            if let Some(e) = &mut o.error {
                e.message.push_str(
                    " (a large group is better followed through the command queue: COMMAND_QUEUE_URL)",
                );
            }
            o
        }
    };
    outcome.directory.get_or_insert(note);
    outcome
}

fn queue_failed(identity: &Identity, e: &crate::queue::QueueError) -> Outcome {
    let mut body = ErrorBody::new(
        ErrorCode::Upstream,
        format!(
            "queuing the group's members failed: {e} (a retry queues them again; each is applied once it is read)"
        ),
    );
    body.retryable = true;
    Outcome::failed(identity.clone(), body)
}
