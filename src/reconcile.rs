//! Reconcile: how every automatic fix writes. Level-triggered, as a controller works
//! (Kubernetes controller-runtime's `Reconcile(request)` gets a name and reads the
//! current state every time): a reconcile names one target, reads it *now*, classifies
//! that read with the audit's rules ([`crate::drift::classify`]), and writes only when
//! it is still `Drifted`, with the chroot derived from that same read.
//!
//! Every path that fixes what it did not ask for goes through [`reconcile`]: the
//! audit's in-place fixes, the audit's queued fixes (`{"Action": "Reconcile", ...}`,
//! which name the target and never carry a home), CloudTrail re-chroots, and any
//! redelivery of those. A fix planned from a listing, a queued message or an event is
//! right when planned and may be wrong when it lands: an administrator may have
//! re-homed the user meanwhile, and replaying the old plan would undo that newer
//! change. Reading first costs one `DescribeUser` per fix; it is what keeps a fix from
//! ever overwriting a newer change with an older one.
//!
//! Explicit commands (direct, API, CloudFormation, directory groups) are intents and
//! write what they ask for: they do not come through here.
//!
//! What is left: Transfer has no conditional write, so a change that lands between a
//! reconcile's own read and its write (one `UpdateUser` call, milliseconds) can still
//! be overwritten. docs/RELIABILITY.md measures that window under the chaos soak.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;
use tokio::time::Instant;

use crate::apply::Chroot;
use crate::config::Config;
use crate::domain::{
    DirectoryUserName, ExternalId, FieldError, ServerId, Subject, Target, UserName,
};
use crate::drift::{self, Expected, Finding};
use crate::input::{Given, ReconcileInput};
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome, Rejection, Status};
use crate::scope::Scope;
use crate::transfer::Transfer;

/// The action name of a reconcile command.
pub const ACTION: &str = "Reconcile";

/// A validated reconcile of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconcile {
    pub target: Target,
    /// The audit run that queued it, for the logs.
    pub run: Option<String>,
    /// Why it was queued, for the logs.
    pub reason: Option<String>,
    pub dry_run: bool,
}

/// What a reconcile found and did: the class of the fresh read (`None` when the read
/// failed) and the single-target result.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    pub finding: Option<Finding>,
    pub outcome: Outcome,
}

impl Reconcile {
    /// Validates `input` (every bad field listed) and admits its server through the
    /// guardrails (`NotAllowed` otherwise). No AWS call.
    pub fn parse(input: &ReconcileInput, config: &Config) -> Result<Self, Box<Rejection>> {
        let mut errs = input.refused_keys.clone();
        let mut check = |field: &str, given: &Option<Given<String>>| -> Option<String> {
            match given {
                None => None,
                Some(Ok(s)) => Some(s.clone()),
                Some(Err(e)) => {
                    errs.push(FieldError::new(field, e));
                    None
                }
            }
        };
        let server = check("ServerId", &input.server_id);
        let user = check("UserName", &input.user_name);
        let access = check("ExternalId", &input.external_id);
        let run = check("RunId", &input.run_id);
        let reason = check("Reason", &input.reason);
        let server = match server {
            Some(raw) => ServerId::parse(&raw)
                .map_err(|e| errs.push(FieldError::new("ServerId", e)))
                .ok(),
            None if input.server_id.is_some() => None,
            None => match &config.defaults.server {
                Some(s) => Some(s.clone()),
                None => {
                    errs.push(FieldError::new(
                        "ServerId",
                        "required (no DEFAULT_SERVER_ID is configured)",
                    ));
                    None
                }
            },
        };
        let subject = match (user, access) {
            (Some(_), Some(_)) => {
                errs.push(FieldError::new(
                    "ExternalId",
                    "give UserName or ExternalId, not both",
                ));
                None
            }
            (Some(u), None) => UserName::parse(&u)
                .map(Subject::User)
                .map_err(|e| errs.push(FieldError::new("UserName", e)))
                .ok(),
            (None, Some(a)) => ExternalId::parse(&a)
                .map(Subject::Access)
                .map_err(|e| errs.push(FieldError::new("ExternalId", e)))
                .ok(),
            (None, None) if input.user_name.is_some() || input.external_id.is_some() => None,
            (None, None) => {
                errs.push(FieldError::new(
                    "UserName",
                    "required: the user (UserName) or access (ExternalId) to reconcile",
                ));
                None
            }
        };
        let dry_run = match &input.dry_run {
            None => false,
            Some(Ok(b)) => *b,
            Some(Err(e)) => {
                errs.push(FieldError::new("DryRun", e));
                false
            }
        };
        let identity = Identity {
            action: subject.as_ref().map(Subject::action),
            server_id: server.as_ref().map(ToString::to_string),
            user_name: match &subject {
                Some(Subject::User(u)) => Some(u.to_string()),
                _ => None,
            },
            external_id: match &subject {
                Some(Subject::Access(a)) => Some(a.to_string()),
                _ => None,
            },
        };
        let (Some(server), Some(subject)) = (server, subject) else {
            return Err(Box::new(Rejection::invalid(identity, errs)));
        };
        if !errs.is_empty() {
            return Err(Box::new(Rejection::invalid(identity, errs)));
        }
        // The tag (SERVER_TAG) is looked up by the reconcile itself.
        if let Some(why) = config.unlisted(&server) {
            return Err(Box::new(Rejection::new(
                identity,
                ErrorCode::NotAllowed,
                vec![FieldError::new("ServerId", why)],
            )));
        }
        Ok(Self {
            target: Target::new(server, subject),
            run,
            reason,
            dry_run,
        })
    }

    /// The queued form: the target's identity, the run and the reason; never a home.
    pub fn message(target: &Target, run: &str, reason: &str) -> String {
        let mut body = json!({
            "Action": ACTION,
            "ServerId": target.server.as_str(),
            "RunId": run,
            "Reason": reason,
        });
        body[target.kind().field()] = target.subject.as_str().into();
        body.to_string()
    }
}

/// Whether writes may still start: closed by the audit at its hard stop, so an item
/// whose read is still in flight then is given up before it writes (and read again by
/// the continuation), while the writes already started are waited for and counted.
#[derive(Debug, Default)]
pub struct WriteGate {
    closed: AtomicBool,
    writing: AtomicUsize,
}

/// A write in progress ([`WriteGate::enter`]); its end when dropped.
#[derive(Debug)]
pub struct Writing<'a>(&'a WriteGate);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WriteGate {
    /// A write may start: `None` once closed.
    pub fn enter(&self) -> Option<Writing<'_>> {
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        self.writing.fetch_add(1, Ordering::SeqCst);
        Some(Writing(self))
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Writes started and not yet over.
    pub fn writing(&self) -> usize {
        self.writing.load(Ordering::SeqCst)
    }
}

/// What a reconcile holds a user to when the directory decides (`IDENTITY_STORE_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Read the directory now (a queued fix, a CloudTrail event): `GetUserId` of the
    /// user's name, then its profile ([`crate::membership`]). Without a directory:
    /// nothing.
    ReadNow,
    /// As an audit run's reading of the directory says (`None`: not a directory user,
    /// or no profile applies): its home judged as usual.
    Known(Option<Box<Expected>>),
}

/// The profile `target` has in the directory now, if the directory decides; an
/// outcome (failed, retryable) when the directory cannot be read.
pub async fn expected_now<T: Transfer>(
    chroot: &Chroot<T>,
    target: &Target,
) -> Result<Option<Expected>, Outcome> {
    let (Some(directory), Some(profiles), Some(_), Subject::User(user)) = (
        &chroot.ports.directory,
        &chroot.config.group_profiles,
        &chroot.config.identity_store,
        &target.subject,
    ) else {
        return Ok(None);
    };
    let unread =
        |e: crate::directory::DirectoryError| crate::membership::unread(Identity::of(target), &e);
    let Ok(name) = DirectoryUserName::parse(user.as_str()) else {
        return Ok(None);
    };
    let Some(id) = directory.user_id(&name).await.map_err(unread)? else {
        return Ok(None);
    };
    let choice = chroot
        .env
        .directory
        .choice(&**directory, profiles, &id)
        .await
        .map_err(unread)?;
    Ok(choice
        .profile
        .map(|p| Expected::of(p, &choice.why, user.as_str())))
}

/// Reads `target` now, classifies that read, and chroots it only if it is still
/// drifted, to the chroot that read derives (with `IDENTITY_STORE_ID`, against the
/// user's profile in the directory now). Exempt targets are not read.
pub async fn reconcile<T: Transfer>(
    chroot: &Chroot<T>,
    target: &Target,
    dry_run: bool,
) -> Reconciled {
    let open = WriteGate::default();
    match reconcile_gated(chroot, target, dry_run, &open, &Expectation::ReadNow).await {
        Some(done) => done,
        None => never_given_up(target),
    }
}

/// How a reconcile's resolution reads in Security Hub.
pub const BY_A_RECONCILE: &str = "chrooted by a reconcile";

/// A reconcile that could not read what it needs (the server's scope, the target).
fn unread(identity: Identity, e: &crate::transfer::TransferError) -> Reconciled {
    let mut outcome = Outcome::failed(identity, e.into());
    outcome.request_id = e.request_id.clone();
    Reconciled {
        finding: None,
        outcome,
    }
}

/// An open gate never gives up: kept total without a panic in the handler path.
fn never_given_up(target: &Target) -> Reconciled {
    Reconciled {
        finding: None,
        outcome: Outcome::failed(
            Identity::of(target),
            ErrorBody::new(ErrorCode::Internal, "the reconcile was given up"),
        ),
    }
}

/// [`reconcile`], writing only while `gate` is open: `None` when it was drifted but
/// the gate had closed by then (nothing written).
pub async fn reconcile_gated<T: Transfer>(
    chroot: &Chroot<T>,
    target: &Target,
    dry_run: bool,
    gate: &WriteGate,
    expectation: &Expectation,
) -> Option<Reconciled> {
    let identity = Identity::of(target);
    if drift::is_exempt(target, &chroot.config) {
        return Some(Reconciled {
            finding: Some(Finding::Exempt),
            outcome: Outcome::skipped(identity, "exempt (EXEMPT_USERS): left as it is"),
        });
    }
    // The server's configuration now (its roots, with SERVER_TAG): a server untagged
    // since is left alone.
    let config = match chroot.scope(&target.server).await {
        Ok(Scope::Allowed(config)) => config,
        Ok(Scope::Refused(why)) => {
            return Some(Reconciled {
                finding: None,
                outcome: Outcome::skipped(identity, format!("{why}: left as it is")),
            });
        }
        Err(e) => return Some(unread(identity, &e)),
    };
    // On a custom identity provider no stored user is used at login: nothing to
    // reconcile (the server itself is the finding: the audit's ServerFindings).
    if let Ok(facts) = chroot
        .env
        .servers
        .facts(&chroot.ports.transfer, &target.server)
        .await
        && let Some(reason) = crate::servers::chroots_no_one(&facts)
    {
        return Some(Reconciled {
            finding: None,
            outcome: Outcome::skipped(identity, format!("{reason}: left as it is")),
        });
    }
    let expected = match expectation {
        Expectation::Known(e) => e.as_deref().cloned(),
        Expectation::ReadNow => match expected_now(chroot, target).await {
            Ok(e) => e,
            Err(outcome) => {
                return Some(Reconciled {
                    finding: None,
                    outcome,
                });
            }
        },
    };
    let live = match chroot.inspect(target).await {
        Ok(live) => live,
        Err(e) => return Some(unread(identity, &e)),
    };
    let finding = drift::classify_expecting(target, &live.value, &config, expected.as_ref());
    let outcome = match &finding {
        Finding::Chrooted { .. } => {
            let mut outcome = Outcome::new(Status::Unchanged, identity);
            outcome.request_id = live.request_id;
            outcome
        }
        Finding::Exempt => Outcome::skipped(identity, "exempt (EXEMPT_USERS): left as it is"),
        Finding::NeedsAttention { reason } => {
            let mut outcome = Outcome::skipped(identity, format!("needs attention: {reason}"));
            outcome.request_id = live.request_id;
            outcome
        }
        Finding::Drifted { reason, .. } => {
            match finding.fix_expecting(target, dry_run, expected.as_ref()) {
                None => Outcome::skipped(identity, "nothing to fix"),
                Some(command) => match chroot.fits_server(&command).await {
                    Err(refused) => *refused,
                    Ok(facts) => {
                        let _writing = gate.enter()?;
                        let mut outcome = chroot.write(&command, live, &facts).await;
                        outcome.reason = Some(reason.clone());
                        outcome
                    }
                },
            }
        }
    };
    let mut outcome = outcome;
    outcome.profile = expected.map(|e| e.profile);
    Some(Reconciled {
        finding: Some(finding),
        outcome,
    })
}

/// A reconcile command: validated, then [`reconcile`]d before `deadline` (a retryable
/// result past it). Its outcome is logged with the run and reason it came with.
pub async fn run_before<T: Transfer>(
    chroot: &Chroot<T>,
    input: &ReconcileInput,
    deadline: Instant,
) -> Outcome {
    let command = match Reconcile::parse(input, &chroot.config) {
        Ok(command) => command,
        Err(rejection) => return Outcome::rejected(*rejection),
    };
    let work = Box::pin(reconcile(chroot, &command.target, command.dry_run));
    let outcome = match tokio::time::timeout_at(deadline, work).await {
        Ok(done) => done.outcome,
        Err(_) => Outcome::out_of_time(Identity::of(&command.target)),
    };
    chroot
        .resolved(&command.target, &outcome, BY_A_RECONCILE, Some(deadline))
        .await;
    tracing::info!(
        target_resource = %command.target,
        run = command.run.as_deref(),
        queued_because = command.reason.as_deref(),
        status = outcome.status.as_str(),
        "reconcile"
    );
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::memory::MemoryTransfer;
    use crate::transfer::{HomeDirectoryType, LiveHome, Mapping};
    use serde_json::Value;

    const S: &str = "s-0123456789abcdef0";

    fn config() -> Config {
        Config::from_pairs(&[
            ("ALLOWED_SERVER_IDS", S),
            ("DEFAULT_SERVER_ID", S),
            ("HOME_ROOTS", "/acme-sftp/home"),
            ("HOME_TEMPLATE", "/acme-sftp/home/${UserName}"),
            ("EXEMPT_USERS", "admin"),
        ])
        .unwrap()
    }

    fn user(name: &str) -> Target {
        format!("{S}/users/{name}").parse().unwrap()
    }

    fn path(home: &str) -> LiveHome {
        LiveHome {
            home_directory: Some(home.into()),
            home_directory_type: Some(HomeDirectoryType::Path),
            ..LiveHome::default()
        }
    }

    fn logical(target: &str) -> LiveHome {
        LiveHome {
            home_directory: Some("/".into()),
            home_directory_type: Some(HomeDirectoryType::Logical),
            home_directory_mappings: vec![Mapping::directory("/", target)],
            ..LiveHome::default()
        }
    }

    fn parse(v: Value) -> Result<Reconcile, Box<Rejection>> {
        Reconcile::parse(&ReconcileInput::read(v.as_object().unwrap()), &config())
    }

    #[test]
    fn a_reconcile_names_its_target_and_refuses_a_home_with_every_bad_field() {
        let ok = parse(
            json!({"Action": "Reconcile", "UserName": "alice", "RunId": "r-1",
                              "Reason": "home is not chrooted"}),
        )
        .unwrap();
        assert_eq!(ok.target, user("alice"), "DEFAULT_SERVER_ID fills ServerId");
        assert_eq!(ok.run.as_deref(), Some("r-1"));
        let bad = parse(
            json!({"Action": "Reconcile", "ServerId": "s-1", "UserName": "a",
                               "HomeDirectory": "/acme-sftp/home/x", "DryRun": "yes"}),
        )
        .unwrap_err();
        let fields: Vec<&str> = bad.error.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["HomeDirectory", "ServerId", "UserName", "DryRun"]);
        assert!(bad.error.fields[0].message.contains("never carries one"));
        let both = parse(json!({"Action": "Reconcile", "UserName": "alice",
                                "ExternalId": "S-1-5-21-1"}))
        .unwrap_err();
        assert_eq!(both.error.fields[0].field, "ExternalId");
        let none = parse(json!({"Action": "Reconcile"})).unwrap_err();
        assert_eq!(none.error.fields[0].field, "UserName");
        let other = parse(
            json!({"Action": "Reconcile", "ServerId": "s-11111111111111111",
                                 "UserName": "alice"}),
        )
        .unwrap_err();
        assert_eq!(other.error.code, ErrorCode::NotAllowed);
    }

    #[test]
    fn the_queued_message_reads_back_as_the_same_reconcile_and_has_no_home() {
        let message = Reconcile::message(&user("alice"), "run-9", "home /x is not chrooted");
        let v: Value = serde_json::from_str(&message).unwrap();
        assert!(v.get("HomeDirectory").is_none(), "{v}");
        let back = parse(v).unwrap();
        assert_eq!(back.target, user("alice"));
        assert_eq!(back.run.as_deref(), Some("run-9"));
        assert_eq!(back.reason.as_deref(), Some("home /x is not chrooted"));
    }

    #[tokio::test]
    async fn it_writes_what_the_fresh_read_derives_and_nothing_when_it_is_chrooted_or_unclear() {
        let t = MemoryTransfer::new()
            .with(user("alice"), path("/acme-sftp/home/alice-new"))
            .with(user("bob"), logical("/acme-sftp/home/bob-elsewhere"))
            .with(user("carol"), path("/acme-sftp"))
            .with(user("admin"), path("/"));
        let c = Chroot::new(config(), t);
        let alice = reconcile(&c, &user("alice"), false).await;
        assert_eq!(alice.outcome.status, Status::Updated, "{alice:?}");
        let request = alice.outcome.request.unwrap();
        assert_eq!(
            request["HomeDirectoryMappings"][0]["Target"],
            "/acme-sftp/home/alice-new"
        );
        let bob = reconcile(&c, &user("bob"), false).await;
        assert_eq!(bob.outcome.status, Status::Unchanged, "chrooted by anyone");
        let carol = reconcile(&c, &user("carol"), false).await;
        assert_eq!(carol.outcome.status, Status::Skipped);
        assert!(
            carol
                .outcome
                .reason
                .as_deref()
                .unwrap()
                .starts_with("needs attention")
        );
        let admin = reconcile(&c, &user("admin"), false).await;
        assert_eq!(admin.finding, Some(Finding::Exempt));
        let ops: Vec<&str> = c
            .ports
            .transfer
            .calls()
            .iter()
            .map(|c| c.operation)
            .collect();
        assert_eq!(
            ops,
            ["DescribeUser", "UpdateUser", "DescribeUser", "DescribeUser"],
            "one read each (none for the exempt one), one write for the drifted one"
        );
    }

    #[tokio::test]
    async fn a_dry_run_reads_and_plans_but_writes_nothing() {
        let t = MemoryTransfer::new().with(user("alice"), path("/acme-sftp/home/alice"));
        let c = Chroot::new(config(), t);
        let r = reconcile(&c, &user("alice"), true).await;
        assert_eq!(r.outcome.status, Status::Planned);
        assert_eq!(c.ports.transfer.writes(), 0);
    }
}
