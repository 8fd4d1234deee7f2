//! The fleet audit (`{"Action": "Audit", "ServerId"?, "Fix"?, "DryRun"?}`): every user
//! and access of the allowed servers classified as [`crate::drift`] does it, counted
//! exactly, the non-chrooted ones reported, and the drifted ones fixed on request.
//!
//! - Listed page by page (`ListUsers` where users exist, `ListAccesses` where accesses
//!   exist, from the server's identity provider), never the whole fleet in memory:
//!   the counts and at most [`MAX_FINDINGS`] findings are all that is kept.
//! - Only `LOGICAL` targets are described to classify them (a listing shows a `PATH`
//!   one's home, but no mappings). A fix is a [`crate::reconcile`]: the target is read
//!   again when it is fixed and written only if that read is still drifted, from that
//!   read (a `PATH` one's fix costs a read and a write); with a queue, the fix is a
//!   `Reconcile` command naming the target, read afresh when it is consumed.
//! - A page's items are looked at `AUDIT_CONCURRENCY` at a time and counted in the
//!   listing's order; their Transfer calls share the environment's pace
//!   ([`crate::transfer::pace`]).
//! - An audit that cannot finish before the deadline stops starting items when one more
//!   would not fit ([`Budget`]), gives up at the hard stop the items still reading (no
//!   write starts past it; the writes started are waited for, [`WRITE_GRACE`]), and
//!   answers a `Continuation`: itself an event (`{"Action": "Audit", ...,
//!   "Continuation": "<cursor>"}`) that resumes exactly there. The cursor names the run,
//!   the server, the kind, the page's token, the position in the page and the
//!   positions after it already counted, and carries a digest of its content and of
//!   the allowed servers, so that an edited cursor, or one made for another
//!   deployment, is refused with a clear error rather than resuming somewhere else. It
//!   is integrity, not secrecy: anyone who may invoke the function may start an audit
//!   anyway, and the guardrails hold for every fix.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::apply::Chroot;
use crate::config::Config;
use crate::domain::{ExternalId, FieldError, ServerId, Subject, Target, TargetKind, UserName};
pub use crate::drift::Class;
use crate::drift::{self, Expected, Finding};
use crate::findings::{self, Account, Asff, Hub, HubCounts, Observed, Verdict};
use crate::input::{AuditInput, Given};
use crate::membership::DirectoryView;
use crate::metrics;
use crate::outcome::{ErrorBody, ErrorCode, Outcome, Rejection, Status};
use crate::queue::{BATCH, CommandQueue};
use crate::reconcile::{Expectation, Reconcile, WriteGate, reconcile_gated};
use crate::scope::Scope;
use crate::transfer::{HomeDirectoryType, IdentityProvider, Listed, Transfer};

/// The time kept at the end of an audit invocation for Security Hub (the last findings
/// and, when the run completes, the sweep); the Lambda keeps it out of the audit's own
/// time when `SECURITY_HUB` is on.
pub const HUB_TIME: Duration = Duration::from_secs(2);
/// `deadline`, less `reserve` (now at the earliest).
pub fn keep_out(
    deadline: tokio::time::Instant,
    reserve: std::time::Duration,
) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    deadline
        .checked_sub(reserve)
        .filter(|at| *at > now)
        .unwrap_or(now)
}

/// The least a send is given, however late.
const MIN_HUB_SEND: Duration = Duration::from_millis(200);

/// Findings listed in one result; past it the result says `Truncated` (the counts stay
/// exact, and every finding has its log line).
pub const MAX_FINDINGS: usize = 100;

/// A validated audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub servers: Vec<ServerId>,
    pub fix: bool,
    pub dry_run: bool,
    pub resume: Option<Cursor>,
    /// What its continuations are bound to ([`Coverage::binding`]).
    pub binding: String,
    /// A server was named (`ServerId`): its continuations name it too.
    pub named: bool,
    /// Its continuations carry the run's servers (with `SERVER_TAG`: the tagged servers
    /// may change while it runs, and the cursor's index must keep its meaning).
    pub carries_servers: bool,
}

/// What an audit may cover: `ALLOWED_SERVER_IDS`, or the servers carrying `SERVER_TAG`
/// now (those listed too, when both are set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub servers: Vec<ServerId>,
    /// `SERVER_TAG`, when the servers are the tagged ones.
    pub tag: Option<String>,
    /// What a continuation's digest binds it to: the list, or the tag (and the list).
    pub binding: String,
}

impl Coverage {
    /// The deployment's coverage, with `servers` the servers it covers now.
    pub fn of(config: &crate::config::Config, servers: Vec<ServerId>) -> Self {
        let list = fingerprint(&config.guardrails.servers);
        let tag = config.server_tag.as_ref().map(ToString::to_string);
        let binding = match &tag {
            None => list,
            Some(t) => format!("tag {t}\n{list}"),
        };
        Self {
            servers,
            tag,
            binding,
        }
    }

    /// Why `server` is not covered.
    pub fn refusal(&self, server: &ServerId) -> String {
        match &self.tag {
            None => format!("{server} is not in ALLOWED_SERVER_IDS"),
            Some(t) => format!("{server} does not carry the tag {t} (SERVER_TAG)"),
        }
    }
}

/// Where a run stands: the next item to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The run's id (the first invocation's request id).
    pub run: String,
    /// Index into the run's servers.
    pub server: usize,
    pub kind: CursorKind,
    /// The token of the page holding the next item (`None`: the first page).
    pub token: Option<String>,
    /// The next item's position in that page.
    pub position: usize,
    /// Positions past `position` already counted (items done while an earlier one was
    /// given up at a hard stop): at most `AUDIT_CONCURRENCY` of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<usize>,
    /// The run's servers, when they are the tagged ones ([`Audit::carries_servers`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// When the run started (RFC 3339), with Security Hub: its sweep's line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorKind {
    Users,
    Accesses,
}

impl CursorKind {
    fn of(kind: TargetKind) -> Self {
        match kind {
            TargetKind::User => Self::Users,
            TargetKind::Access => Self::Accesses,
        }
    }

    fn kind(self) -> TargetKind {
        match self {
            Self::Users => TargetKind::User,
            Self::Accesses => TargetKind::Access,
        }
    }
}

/// The allowed servers as a cursor's digest binds them.
fn fingerprint(allowed: &[ServerId]) -> String {
    let mut ids: Vec<&str> = allowed.iter().map(ServerId::as_str).collect();
    ids.sort_unstable();
    ids.join(",")
}

fn digest(payload: &str, binding: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"transfer-chroot audit cursor v1\n");
    h.update(binding.as_bytes());
    h.update(b"\n");
    h.update(payload.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Cursor {
    /// `<base64url(JSON)>.<digest>`.
    pub fn encode(&self, binding: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let tag = digest(&payload, binding);
        format!("{payload}.{tag}")
    }

    pub fn decode(raw: &str, binding: &str) -> Result<Self, String> {
        let (payload, tag) = raw
            .rsplit_once('.')
            .ok_or("is not a continuation made by this function")?;
        if digest(payload, binding) != tag {
            return Err(
                "was altered, or made for another deployment (other ALLOWED_SERVER_IDS or SERVER_TAG): \
                        start a new audit instead"
                    .to_owned(),
            );
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| "is not a continuation made by this function")?;
        serde_json::from_slice(&bytes)
            .map_err(|_| "is not a continuation made by this function".into())
    }
}

impl Audit {
    /// Validates `input` against what the deployment covers (a named server must be
    /// covered; a continuation must be this deployment's).
    pub fn parse(input: &AuditInput, coverage: &Coverage) -> Result<Self, Box<Rejection>> {
        let mut errs = input.refused_keys.clone();
        let mut push = |f: &str, m: String| errs.push(FieldError::new(f, m));
        let mut refused = Vec::new();
        let resumed = match &input.continuation {
            None => None,
            Some(Err(e)) => {
                push("Continuation", e.clone());
                None
            }
            Some(Ok(raw)) => match Cursor::decode(raw, &coverage.binding) {
                Ok(c) => Some(c),
                Err(e) => {
                    push("Continuation", e);
                    None
                }
            },
        };
        let servers = match &input.server_id {
            // A run over the tagged servers resumes over the servers it started with.
            None => match resumed.as_ref().filter(|c| !c.servers.is_empty()) {
                // Made by this deployment (its digest): valid ids, unless edited.
                Some(c) => c
                    .servers
                    .iter()
                    .filter_map(|s| ServerId::parse(s).ok())
                    .collect(),
                None => coverage.servers.clone(),
            },
            Some(Err(e)) => {
                push("ServerId", e.clone());
                Vec::new()
            }
            Some(Ok(raw)) => match ServerId::parse(raw) {
                Ok(s) if coverage.servers.contains(&s) => vec![s],
                Ok(s) => {
                    refused.push(FieldError::new("ServerId", coverage.refusal(&s)));
                    Vec::new()
                }
                Err(e) => {
                    push("ServerId", e.to_string());
                    Vec::new()
                }
            },
        };
        let mut flag = |name: &str, given: &Option<Given<bool>>| match given {
            None => false,
            Some(Ok(b)) => *b,
            Some(Err(e)) => {
                push(name, e.clone());
                false
            }
        };
        let fix = flag("Fix", &input.fix);
        let dry_run = flag("DryRun", &input.dry_run);
        let resume = match resumed {
            Some(c) if c.server < servers.len() || !refused.is_empty() => Some(c),
            Some(_) => {
                errs.push(FieldError::new(
                    "Continuation",
                    "names a server this audit does not cover",
                ));
                None
            }
            None => None,
        };
        let identity = crate::outcome::Identity::default();
        if !errs.is_empty() {
            return Err(Box::new(Rejection::invalid(identity, errs)));
        }
        if !refused.is_empty() {
            return Err(Box::new(Rejection::new(
                identity,
                ErrorCode::NotAllowed,
                refused,
            )));
        }
        Ok(Self {
            servers,
            fix,
            dry_run,
            resume,
            named: input.server_id.is_some(),
            binding: coverage.binding.clone(),
            carries_servers: coverage.tag.is_some(),
        })
    }
}

/// Validates `input` against what the deployment covers now. With `SERVER_TAG`, every
/// field is checked first with no call; only a valid audit reads the tagged servers.
pub async fn admit<T: Transfer>(
    chroot: &Chroot<T>,
    input: &AuditInput,
) -> Result<Audit, Box<Outcome>> {
    let config = &chroot.config;
    if config.server_tag.is_some()
        && let Err(r) = Audit::parse(input, &Coverage::of(config, Vec::new()))
        && r.error.code == ErrorCode::ValidationFailed
    {
        return Err(Box::new(Outcome::rejected(*r)));
    }
    let servers = chroot.covered_servers().await.map_err(|e| {
        let mut outcome = Outcome::failed(crate::outcome::Identity::default(), ErrorBody::from(&e));
        outcome.request_id = e.request_id.clone();
        Box::new(outcome)
    })?;
    Audit::parse(input, &Coverage::of(config, servers)).map_err(|r| Box::new(Outcome::rejected(*r)))
}

/// The exact counts of one invocation's part of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Counts {
    pub chrooted: u64,
    pub drifted: u64,
    pub needs_attention: u64,
    pub exempt: u64,
    pub fixed: u64,
    pub queued: u64,
    pub failed: u64,
}

impl Counts {
    fn count(&mut self, class: Class) {
        match class {
            Class::Chrooted => self.chrooted += 1,
            Class::Drifted => self.drifted += 1,
            Class::NeedsAttention => self.needs_attention += 1,
            Class::Exempt => self.exempt += 1,
        }
    }

    pub fn add(&mut self, other: &Counts) {
        self.chrooted += other.chrooted;
        self.drifted += other.drifted;
        self.needs_attention += other.needs_attention;
        self.exempt += other.exempt;
        self.fixed += other.fixed;
        self.queued += other.queued;
        self.failed += other.failed;
    }

    pub fn seen(&self) -> u64 {
        self.chrooted + self.drifted + self.needs_attention + self.exempt
    }
}

/// One non-chrooted user or access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuditFinding {
    pub server_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The derived chroot of a drifted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What the fix did (`Updated`, `Planned`, `Failed`), when one was attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// What the fix's result warned of (a missing home folder, a session policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The directory profile it was held to (`IDENTITY_STORE_ID`); `Reason` says why
    /// that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The result of one invocation of an audit run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuditReport {
    /// `Audited`; `Failed` when a listing failed (with `Error`, and a `Continuation`
    /// that retries from where it stopped).
    pub status: String,
    pub action: String,
    pub run_id: String,
    pub servers: Vec<String>,
    pub counts: Counts,
    /// Covered servers on a custom identity provider, found in this invocation.
    #[serde(default)]
    pub server_findings: Vec<ServerFinding>,
    pub findings: Vec<AuditFinding>,
    pub truncated: bool,
    /// The event that resumes the run, or `null` when it is complete.
    pub continuation: Option<Value>,
    /// The continuation was sent to the command queue: the run goes on by itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continuation_queued: bool,
    /// Where the whole run's report was written (`REPORT_BUCKET`), once it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// What went to Security Hub in this invocation (`SECURITY_HUB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<HubCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A run in progress: counts, the findings kept, and where it stands.
struct Run<'a> {
    audit: &'a Audit,
    run_id: String,
    counts: Counts,
    server_findings: Vec<ServerFinding>,
    findings: Vec<AuditFinding>,
    truncated: bool,
    /// Where fixes go when the deployment has a command queue (and it is no dry run).
    queue: Option<&'a dyn CommandQueue>,
    /// Fix commands not yet sent (at most a batch).
    pending: Vec<String>,
    /// Items in flight given up at the hard stop (looked at again by the continuation).
    abandoned: usize,
    watch: &'a mut dyn Watch,
    /// Where findings go (`SECURITY_HUB`), and the account they belong to, once known.
    hub: Option<(&'a Hub, &'a Account)>,
    /// Findings not yet sent (at most a batch).
    hub_pending: Vec<Asff>,
    hub_counts: HubCounts,
    /// When the run started (its first invocation), RFC 3339: the sweep's line.
    started: String,
    /// Mid-run sends to Security Hub end by the budget's hard stop.
    hub_until: Option<Instant>,
}

impl Run<'_> {
    /// A covered server on a custom identity provider: a HIGH finding (logged, counted,
    /// and with Security Hub an active finding on the server).
    fn server_finding(
        &mut self,
        server: &ServerId,
        facts: &crate::transfer::ServerFacts,
        reason: String,
    ) {
        let provider = facts.identity_provider.as_str();
        tracing::error!(
            server = %server,
            identity_provider = provider,
            severity = "HIGH",
            reason = %reason,
            run = %self.run_id,
            "server finding: per-user chroot cannot be enforced on this server"
        );
        metrics::audit(
            server.as_str(),
            metrics::AuditCounts {
                custom_identity_provider: 1,
                ..Default::default()
            },
        );
        if let Some((_, account)) = self.hub {
            let now = findings::timestamp(std::time::SystemTime::now());
            let seen = findings::ServerObserved {
                server,
                identity_provider: provider,
                reason: &reason,
                custom: true,
            };
            self.hub_pending.push(account.server_finding(&seen, &now));
        }
        let finding = ServerFinding {
            server_id: server.to_string(),
            identity_provider_type: provider.to_owned(),
            reason,
        };
        self.watch.server_found(&finding);
        self.server_findings.push(finding);
    }

    /// The Security Hub finding of one target as the audit saw it: active while
    /// drifted or needing attention (a failed fix is HIGH), resolved once its fix is
    /// written.
    async fn report_to_hub(
        &mut self,
        target: &Target,
        finding: &Finding,
        fix: &Option<(&'static str, Option<ErrorBody>, Vec<String>)>,
        wrote: Option<bool>,
        home_type: &'static str,
    ) {
        let Some((_, account)) = self.hub else {
            return;
        };
        let failed_fix = fix
            .as_ref()
            .and_then(|(_, e, _)| e.as_ref())
            .map(|e| e.message.clone());
        let (verdict, reason) = match (finding, wrote) {
            (_, Some(true)) => (Verdict::Chrooted, "chrooted by the audit's fix".to_owned()),
            (Finding::Drifted { reason, .. }, Some(false)) => (
                Verdict::NeedsAttention,
                format!(
                    "{reason}; the fix failed: {}",
                    failed_fix.unwrap_or_default()
                ),
            ),
            (Finding::Drifted { reason, .. }, _) => (Verdict::Drifted, reason.clone()),
            (Finding::NeedsAttention { reason }, _) => (Verdict::NeedsAttention, reason.clone()),
            _ => return,
        };
        let seen = Observed {
            target,
            verdict,
            reason: &reason,
            home_type,
        };
        let now = findings::timestamp(std::time::SystemTime::now());
        self.hub_pending.push(account.finding(&seen, &now));
        if self.hub_pending.len() >= findings::BATCH {
            self.flush_hub(None).await;
        }
    }

    /// Sends the pending findings, by `until` at the latest (else the run's hard
    /// stop): what is not sent by then is counted failed (the next run reports it again).
    async fn flush_hub(&mut self, until: Option<Instant>) {
        let Some((hub, _)) = self.hub else { return };
        if self.hub_pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.hub_pending);
        let sent = match until.or(self.hub_until) {
            None => Some(hub.send(&pending).await),
            Some(at) => {
                tokio::time::timeout_at(at.max(Instant::now() + MIN_HUB_SEND), hub.send(&pending))
                    .await
                    .ok()
            }
        };
        match sent {
            Some(sent) => self.hub_counts.add(sent),
            None => {
                self.hub_counts.failed += pending.len() as u64;
                tracing::error!(
                    findings = pending.len(),
                    "Security Hub: findings not sent in time"
                );
            }
        }
    }

    /// Sends the pending fix commands in one batch.
    async fn flush(&mut self) {
        let Some(queue) = self.queue else { return };
        if self.pending.is_empty() {
            return;
        }
        let sent = self.pending.len() as u64;
        match queue.send_batch(&self.pending).await {
            Ok(()) => self.counts.queued += sent,
            Err(e) => {
                let unsent = e.unsent as u64;
                self.counts.queued += sent - unsent.min(sent);
                self.counts.failed += unsent.min(sent);
                tracing::error!(run = %self.run_id, error = %e, retryable = e.retryable, "audit: fixes not queued");
            }
        }
        self.pending.clear();
    }

    /// Counts and reports one finding; `fix` is what became of its fix (`Updated`,
    /// `Planned`, `Queued`, `Failed` and its error), when one was attempted.
    fn record(
        &mut self,
        target: &Target,
        finding: &Finding,
        fix: Option<(&'static str, Option<ErrorBody>, Vec<String>)>,
        profile: Option<String>,
    ) {
        let class = finding.class();
        self.counts.count(class);
        count_class(&target.server, class);
        if class == Class::Chrooted {
            self.watch
                .counted(&target.server, Some(class), None, &self.counts);
            return;
        }
        let (reason, chroot) = match finding {
            Finding::Drifted { chroot, reason } => (Some(reason.clone()), Some(chroot.to_string())),
            Finding::NeedsAttention { reason } => (Some(reason.clone()), None),
            Finding::Exempt => (Some("exempt (EXEMPT_USERS)".to_owned()), None),
            Finding::Chrooted { .. } => (None, None),
        };
        let (status, error, warnings) = match fix {
            Some((status, error, warnings)) => (Some(status.to_owned()), error, warnings),
            None => (None, None, Vec::new()),
        };
        tracing::warn!(
            target_resource = %target,
            class = class.as_str(),
            reason = reason.as_deref(),
            chroot = chroot.as_deref(),
            fix = status.as_deref(),
            warnings = (!warnings.is_empty()).then(|| warnings.join("; ")),
            run = %self.run_id,
            "audit finding"
        );
        let (user_name, external_id) = match &target.subject {
            Subject::User(u) => (Some(u.to_string()), None),
            Subject::Access(a) => (None, Some(a.to_string())),
        };
        let found = AuditFinding {
            server_id: target.server.to_string(),
            user_name,
            external_id,
            class: class.as_str().to_owned(),
            reason,
            target: chroot,
            status,
            error,
            warnings,
            profile,
        };
        self.watch
            .counted(&target.server, Some(class), Some(&found), &self.counts);
        if self.findings.len() >= MAX_FINDINGS {
            self.truncated = true;
            return;
        }
        self.findings.push(found);
    }

    fn continuation(&self, cursor: &Cursor) -> Value {
        let mut cursor = cursor.clone();
        if self.audit.carries_servers {
            cursor.servers = self.audit.servers.iter().map(ToString::to_string).collect();
        }
        if self.hub.is_some() {
            cursor.started = Some(self.started.clone());
        }
        let mut event = json!({
            "Action": "Audit",
            "Fix": self.audit.fix,
            "DryRun": self.audit.dry_run,
            "Continuation": cursor.encode(&self.audit.binding),
        });
        if self.audit.named && self.audit.servers.len() == 1 {
            event["ServerId"] = self.audit.servers[0].as_str().into();
        }
        event
    }
}

/// The kinds of target a server holds, by its identity provider.
pub fn kinds_of(provider: &IdentityProvider) -> &'static [TargetKind] {
    match provider {
        IdentityProvider::ServiceManaged => &[TargetKind::User],
        IdentityProvider::AwsDirectoryService => &[TargetKind::Access],
        _ => &[],
    }
}

fn subject_of(kind: TargetKind, name: &str) -> Option<Subject> {
    match kind {
        TargetKind::User => UserName::parse(name).ok().map(Subject::User),
        TargetKind::Access => ExternalId::parse(name).ok().map(Subject::Access),
    }
}

/// What an invocation may still do before its deadline, asked by the audit before it
/// starts an item or a page, and while items are in flight.
pub trait Budget: Send {
    /// Whether work expected to take `need` may start now.
    fn may_start(&mut self, need: Duration) -> bool;
    /// When the items still in flight are given up (`None`: never), so the invocation
    /// answers in time: an item given up is resumed by the continuation, from its start.
    fn hard_stop(&self) -> Option<Instant>;
    /// How long the writes already started at the hard stop are waited for.
    fn writes_until(&self) -> Option<Instant> {
        self.hard_stop()
    }
}

/// How far into the answer's reserve ([`crate::invocation::ANSWER_RESERVE`], 0.5 s) a
/// write in flight at the hard stop is waited for, so what it did is counted: the rest
/// is left for answering.
pub const WRITE_GRACE: Duration = Duration::from_millis(300);

/// No deadline: the run goes on to its end (the command line's audit).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unbounded;

impl Budget for Unbounded {
    fn may_start(&mut self, _: Duration) -> bool {
        true
    }

    fn hard_stop(&self) -> Option<Instant> {
        None
    }
}

/// Told of each target as it is counted, in the listing's order: its server, its class
/// (`None`: its read failed), its finding (every one, not only the first
/// [`MAX_FINDINGS`]) and the counts so far. The command line's progress bar, tables and
/// report are one.
pub trait Watch: Send {
    fn counted(
        &mut self,
        server: &ServerId,
        class: Option<Class>,
        finding: Option<&AuditFinding>,
        counts: &Counts,
    );

    /// A server found on a custom identity provider (its users not looked at).
    fn server_found(&mut self, _finding: &ServerFinding) {}
}

/// A covered server on a custom identity provider (`AWS_LAMBDA`, `API_GATEWAY`): per
/// user chroot cannot be enforced there, so its stored users are neither written nor
/// counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerFinding {
    pub server_id: String,
    pub identity_provider_type: String,
    pub reason: String,
}

/// Watches nothing.
struct Unwatched;

impl Watch for Unwatched {
    fn counted(&mut self, _: &ServerId, _: Option<Class>, _: Option<&AuditFinding>, _: &Counts) {}
}

/// An invocation's budget: work must be over by `.0` (the answer's own reserve is
/// already kept out of it, [`crate::invocation::Invocation::work_deadline`]).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

impl Budget for Deadline {
    fn may_start(&mut self, need: Duration) -> bool {
        Instant::now() + need <= self.0
    }

    fn hard_stop(&self) -> Option<Instant> {
        Some(self.0)
    }

    fn writes_until(&self) -> Option<Instant> {
        Some(self.0 + WRITE_GRACE)
    }
}

/// What reading one page of the directory is given of the budget (a call at its pace,
/// with its round trip).
const DIRECTORY_PAGE: Duration = Duration::from_millis(300);

/// Runs (or resumes) an audit until it is done or `deadline` (the end of the
/// invocation's work time) is near.
pub async fn run<T: Transfer>(
    chroot: &Chroot<T>,
    audit: &Audit,
    run_id: &str,
    deadline: Instant,
) -> AuditReport {
    run_until(chroot, audit, run_id, &mut Deadline(deadline)).await
}

/// [`run`] within `budget`: the items of each page are looked at
/// `AUDIT_CONCURRENCY` at a time and counted in the listing's order, so counts,
/// findings and the cursor are those of one at a time. An invocation always looks at
/// one item at least (a run moves on however short its invocations); past that, it
/// starts an item or a page only while the budget allows what one is seen to take, and
/// gives up the items in flight at the hard stop.
pub async fn run_until<T: Transfer>(
    chroot: &Chroot<T>,
    audit: &Audit,
    run_id: &str,
    budget: &mut dyn Budget,
) -> AuditReport {
    run_watched(chroot, audit, run_id, budget, &mut Unwatched).await
}

/// [`run_until`], telling `watch` of each target as it is counted.
pub async fn run_watched<T: Transfer>(
    chroot: &Chroot<T>,
    audit: &Audit,
    run_id: &str,
    budget: &mut dyn Budget,
    watch: &mut dyn Watch,
) -> AuditReport {
    let pacer = std::sync::Arc::clone(&chroot.env.pacer);
    let work = pipeline(chroot, audit, run_id, budget, watch);
    crate::transfer::pace::scope(pacer, work).await
}

async fn pipeline<T: Transfer>(
    chroot: &Chroot<T>,
    audit: &Audit,
    run_id: &str,
    budget: &mut dyn Budget,
    watch: &mut dyn Watch,
) -> AuditReport {
    use futures::StreamExt;
    use futures::stream::FuturesUnordered;
    use std::collections::{BTreeMap, BTreeSet};

    let dry_run = audit.dry_run || chroot.config.dry_run;
    let mut run = Run {
        audit,
        run_id: audit
            .resume
            .as_ref()
            .map_or_else(|| run_id.to_owned(), |c| c.run.clone()),
        counts: Counts::default(),
        server_findings: Vec::new(),
        findings: Vec::new(),
        truncated: false,
        queue: chroot
            .ports
            .queue
            .as_deref()
            .filter(|_| audit.fix && !dry_run),
        pending: Vec::new(),
        abandoned: 0,
        watch,
        hub: chroot.ports.hub.as_deref().zip(chroot.env.account.get()),
        hub_pending: Vec::new(),
        hub_counts: HubCounts::default(),
        started: audit
            .resume
            .as_ref()
            .and_then(|c| c.started.clone())
            .unwrap_or_else(|| findings::timestamp(std::time::SystemTime::now())),
        hub_until: budget.hard_stop(),
    };
    let concurrency = chroot.config.audit_concurrency.max(1);
    let mut cursor = audit.resume.clone().unwrap_or(Cursor {
        run: run.run_id.clone(),
        server: 0,
        kind: CursorKind::Users,
        token: None,
        position: 0,
        skip: Vec::new(),
        servers: Vec::new(),
        started: None,
    });
    let times = &chroot.env.pacer;
    let mut progressed = false;

    // With IDENTITY_STORE_ID, the run's reading of the directory comes first (each
    // user's profile, in bulk), page by page within the budget: a run stopped in the
    // middle of it goes on from there in this execution environment.
    let mut view = None;
    if let (Some(directory), Some(profiles), Some(_)) = (
        &chroot.ports.directory,
        &chroot.config.group_profiles,
        &chroot.config.identity_store,
    ) {
        loop {
            if progressed && !budget.may_start(DIRECTORY_PAGE) {
                return finish(chroot, run, Some(&cursor), None).await;
            }
            let step = chroot
                .env
                .directory
                .read_step(&**directory, profiles, &run.run_id);
            let stepped = match (progressed, budget.hard_stop()) {
                (true, Some(at)) => match tokio::time::timeout_at(at, step).await {
                    Ok(stepped) => stepped,
                    Err(_) => return finish(chroot, run, Some(&cursor), None).await,
                },
                _ => step.await,
            };
            progressed = true;
            match stepped {
                Ok(Some(read)) => {
                    view = Some(read);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    let mut error = ErrorBody::new(
                        ErrorCode::Upstream,
                        format!(
                            "{e}: the directory decides each user's profile; the run goes on once it can be read"
                        ),
                    );
                    error.retryable = e.retryable;
                    return finish(chroot, run, Some(&cursor), Some(error)).await;
                }
            }
        }
    }
    let look = Looking {
        run_id: run.run_id.clone(),
        dry_run,
        fix: audit.fix,
        queued: run.queue.is_some(),
        view,
    };

    let failure = 'servers: loop {
        let Some(server) = audit.servers.get(cursor.server) else {
            break None;
        };
        // The configuration on this server (its roots, with SERVER_TAG); a server no
        // longer covered since the run started is passed over.
        let on = match chroot.scope(server).await {
            Ok(Scope::Allowed(on)) => on,
            Ok(Scope::Refused(why)) => {
                tracing::warn!(server = %server, reason = %why, "audit: server no longer covered, passed over");
                cursor = next_server(&cursor);
                continue;
            }
            Err(e) => break Some(ErrorBody::from(&e)),
        };
        let facts = match chroot
            .env
            .servers
            .facts(&chroot.ports.transfer, server)
            .await
        {
            Ok(f) => f,
            Err(e) => break Some(ErrorBody::from(&e)),
        };
        // On a custom identity provider no stored user is used: the server itself is
        // the finding, and its users are neither written nor counted.
        if let Some(reason) = crate::servers::chroots_no_one(&facts) {
            run.server_finding(server, &facts, reason);
            cursor = next_server(&cursor);
            continue;
        }
        let kinds = kinds_of(&facts.identity_provider);
        // A resumed cursor for a kind this server does not hold moves to the next server.
        if !kinds.contains(&cursor.kind.kind()) {
            match kinds.first() {
                Some(k) if cursor.token.is_none() && cursor.position == 0 => {
                    cursor.kind = CursorKind::of(*k);
                }
                _ => {
                    cursor = next_server(&cursor);
                    continue;
                }
            }
        }
        let kind = cursor.kind.kind();
        loop {
            if progressed && !budget.may_start(times.need()) {
                return finish(chroot, run, Some(&cursor), None).await;
            }
            let listing = chroot
                .ports
                .transfer
                .list(server, kind, cursor.token.as_deref());
            let listed = match (progressed, budget.hard_stop()) {
                (true, Some(at)) => match tokio::time::timeout_at(at, listing).await {
                    Ok(listed) => listed,
                    Err(_) => return finish(chroot, run, Some(&cursor), None).await,
                },
                _ => listing.await,
            };
            let page = match listed {
                Ok(p) => p.value,
                Err(e) => break 'servers Some(ErrorBody::from(&e)),
            };
            let items = page.items.len();
            // Positions past the cursor that an earlier invocation already counted.
            let skip: BTreeSet<usize> = std::mem::take(&mut cursor.skip)
                .into_iter()
                .filter(|i| *i >= cursor.position)
                .collect();
            let mut todo = page
                .items
                .into_iter()
                .enumerate()
                .skip(cursor.position)
                .filter(|(i, _)| !skip.contains(i))
                .peekable();
            let gate = WriteGate::default();
            let mut inflight = FuturesUnordered::new();
            // Started and not yet counted; results waiting for an earlier one.
            let mut pending: BTreeSet<usize> = BTreeSet::new();
            let mut done: BTreeMap<usize, Seen> = BTreeMap::new();
            let mut stopped;
            loop {
                // Asked again after each item: what items take is better known by then.
                stopped = false;
                while inflight.len() < concurrency {
                    if (progressed || !inflight.is_empty()) && !budget.may_start(times.need()) {
                        stopped = true;
                        break;
                    }
                    let Some((i, listed)) = todo.next() else {
                        break;
                    };
                    pending.insert(i);
                    let (look, gate, on) = (&look, &gate, &*on);
                    inflight.push(async move {
                        let began = Instant::now();
                        let (seen, called) = look.at(chroot, on, server, kind, listed, gate).await;
                        (i, seen, called.then(|| began.elapsed()))
                    });
                }
                let next = match (progressed, budget.hard_stop()) {
                    (true, Some(at)) if !inflight.is_empty() => {
                        match tokio::time::timeout_at(at, inflight.next()).await {
                            Ok(next) => next,
                            Err(_) => {
                                // The hard stop: no write starts any more; the ones
                                // started are waited for (a little into the answer's
                                // reserve) and everything done is counted. The items
                                // still reading are given up: the continuation starts
                                // at the first of them and skips what was counted.
                                gate.close();
                                let until = budget.writes_until().unwrap_or(at);
                                while gate.writing() > 0 {
                                    match tokio::time::timeout_at(until, inflight.next()).await {
                                        Ok(Some((i, Some(seen), _))) => {
                                            done.insert(i, seen);
                                        }
                                        Ok(Some((_, None, _))) => {}
                                        Ok(None) | Err(_) => break,
                                    }
                                }
                                drop(inflight);
                                let counted: Vec<usize> = done.keys().copied().collect();
                                for (i, seen) in std::mem::take(&mut done) {
                                    pending.remove(&i);
                                    run.absorb(server, seen).await;
                                }
                                run.abandoned = pending.len();
                                cursor.position = pending
                                    .first()
                                    .copied()
                                    .or_else(|| todo.peek().map(|(i, _)| *i))
                                    .unwrap_or(items);
                                let position = cursor.position;
                                cursor.skip = counted
                                    .into_iter()
                                    .chain(skip.iter().copied())
                                    .filter(|i| *i > position)
                                    .collect::<BTreeSet<_>>()
                                    .into_iter()
                                    .collect();
                                return finish(chroot, run, Some(&cursor), None).await;
                            }
                        }
                    }
                    _ => inflight.next().await,
                };
                let Some((i, seen, took)) = next else { break };
                if let Some(took) = took {
                    times.took(took);
                }
                // The gate only closes at the hard stop: here every item has its result.
                if let Some(seen) = seen {
                    done.insert(i, seen);
                }
                // Counted in the listing's order.
                while let Some(first) = pending.first().copied() {
                    let Some(seen) = done.remove(&first) else {
                        break;
                    };
                    pending.remove(&first);
                    run.absorb(server, seen).await;
                    progressed = true;
                    cursor.position = first + 1;
                }
            }
            if stopped && let Some((next, _)) = todo.peek() {
                cursor.position = *next;
                let position = cursor.position;
                cursor.skip = skip.into_iter().filter(|i| *i > position).collect();
                return finish(chroot, run, Some(&cursor), None).await;
            }
            cursor.position = 0;
            match page.next_token {
                Some(next) if items > 0 => cursor.token = Some(next),
                _ => break,
            }
        }
        cursor = next_server(&cursor);
    };
    match failure {
        None => finish(chroot, run, None, None).await,
        Some(error) => finish(chroot, run, Some(&cursor), Some(error)).await,
    }
}

/// Sends what is pending and, with a queue, the continuation of a run stopped by the
/// deadline (so a fleet of any size completes on its own), then reports.
async fn finish<T: Transfer>(
    chroot: &Chroot<T>,
    mut run: Run<'_>,
    cursor: Option<&Cursor>,
    error: Option<ErrorBody>,
) -> AuditReport {
    run.flush().await;
    // Security Hub's share of the end: HUB_TIME for the last findings and the sweep.
    let until = Instant::now() + HUB_TIME;
    run.flush_hub(Some(until)).await;
    let complete = cursor.is_none() && error.is_none();
    if let (Some((hub, account)), true) = (run.hub, complete) {
        match tokio::time::timeout_at(
            until.max(Instant::now() + MIN_HUB_SEND),
            hub.sweep(account, &run.audit.servers, &run.started),
        )
        .await
        {
            Ok(swept) => run.hub_counts.add(swept),
            Err(_) => {
                run.hub_counts.failed += 1;
                tracing::error!(run = %run.run_id, "Security Hub: sweep not finished in time (the next completed run sweeps again)");
            }
        }
    }
    let mut report = report(&run, cursor, error);
    if let (Some(queue), Some(next), None) = (
        chroot.ports.queue.as_deref(),
        &report.continuation,
        &report.error,
    ) {
        match queue.send_batch(&[next.to_string()]).await {
            Ok(()) => report.continuation_queued = true,
            Err(e) => {
                tracing::error!(run = %report.run_id, error = %e, "audit: continuation not queued; invoke with the result's Continuation to resume")
            }
        }
    }
    let c = &report.counts;
    let pace = chroot.env.pacer.snapshot();
    tracing::info!(
        run = %report.run_id,
        status = %report.status,
        chrooted = c.chrooted,
        drifted = c.drifted,
        needs_attention = c.needs_attention,
        exempt = c.exempt,
        fixed = c.fixed,
        queued = c.queued,
        failed = c.failed,
        complete = report.continuation.is_none(),
        continuation_queued = report.continuation_queued,
        given_up = run.abandoned,
        pace = pace.rate.map(f64::round),
        throttled = pace.throttled,
        directory_requests = chroot.ports.directory.as_ref().map(|d| d.requests()),
        server_findings = report.server_findings.len(),
        "audit"
    );
    report
}

fn next_server(c: &Cursor) -> Cursor {
    Cursor {
        run: c.run.clone(),
        server: c.server + 1,
        kind: CursorKind::Users,
        token: None,
        position: 0,
        skip: Vec::new(),
        servers: Vec::new(),
        started: None,
    }
}

/// What looking at one listed item found, to be counted in the listing's order.
// Held only while a page's items wait to be counted in order (AUDIT_CONCURRENCY of
// them at most): boxing the large variant would allocate for every item instead.
#[allow(clippy::large_enum_variant)]
enum Seen {
    /// Transfer holds a name its own model refuses: nothing to derive from.
    Invalid(String),
    /// Its read failed: not classified (counted `Failed`).
    Unread { target: Target, error: String },
    Classified {
        target: Target,
        finding: Finding,
        /// What became of its fix (`Updated`, `Planned`, `Queued`, `Failed` and its
        /// error, the fix's warnings), when one was attempted.
        fix: Option<(&'static str, Option<ErrorBody>, Vec<String>)>,
        /// A fix written (`true`) or failed (`false`) in place.
        wrote: Option<bool>,
        /// The `Reconcile` command queued for it.
        command: Option<String>,
        /// Its home's type as seen (`PATH`, `LOGICAL`), for its Security Hub finding.
        home_type: &'static str,
        /// The directory profile it was held to (`IDENTITY_STORE_ID`).
        profile: Option<String>,
    },
}

/// How the items of a run are looked at (what [`Looking::at`] needs of the run).
struct Looking {
    run_id: String,
    dry_run: bool,
    fix: bool,
    queued: bool,
    /// The run's reading of the directory (`IDENTITY_STORE_ID`): each user's profile.
    view: Option<std::sync::Arc<DirectoryView>>,
}

impl Looking {
    /// Classifies one listed target (describing it only when `LOGICAL`) and, when asked,
    /// fixes it if drifted: in place, as a [`reconcile`] (read now, write only if still
    /// drifted, from that read); with a queue, as a `Reconcile` command naming it. Also
    /// says whether it called Transfer.
    async fn at<T: Transfer>(
        &self,
        chroot: &Chroot<T>,
        config: &Config,
        server: &ServerId,
        kind: TargetKind,
        listed: Listed,
        gate: &WriteGate,
    ) -> (Option<Seen>, bool) {
        let Some(subject) = subject_of(kind, &listed.name) else {
            return (Some(Seen::Invalid(listed.name)), false);
        };
        let target = Target::new(server.clone(), subject);
        // What the directory expects of a user: its profile's home and role.
        let expected = match (&self.view, &chroot.config.group_profiles, kind) {
            (Some(view), Some(profiles), TargetKind::User) => view
                .choice(profiles, &listed.name)
                .and_then(|c| c.profile.map(|p| Expected::of(p, &c.why, &listed.name))),
            _ => None,
        };
        let profile = expected.as_ref().map(|e| e.profile.clone());
        let home_type = match &listed.home.home_directory_type {
            Some(HomeDirectoryType::Logical) => "LOGICAL",
            Some(HomeDirectoryType::Path) => "PATH",
            _ => "",
        };
        let exempt = drift::is_exempt(&target, config);
        let logical = listed.home.home_directory_type == Some(HomeDirectoryType::Logical);
        // What the listing alone tells (a PATH home is all there is to know of it).
        let listed_finding = (!logical)
            .then(|| drift::classify_expecting(&target, &listed.home, config, expected.as_ref()));
        let in_place = self.fix && !self.queued;
        if in_place
            && !exempt
            && (logical || matches!(listed_finding, Some(Finding::Drifted { .. })))
        {
            // The listing may be seconds old when its item is fixed: a reconcile reads
            // the target again and derives from that read, so a newer change is never
            // undone.
            let expectation = Expectation::Known(expected.clone().map(Box::new));
            let Some(done) =
                reconcile_gated(chroot, &target, self.dry_run, gate, &expectation).await
            else {
                // Drifted, and the hard stop came before its write: looked at again.
                return (None, true);
            };
            let outcome = done.outcome;
            let finding = match (done.finding, listed_finding) {
                (Some(fresh), _) => fresh,
                (None, Some(listed)) => listed,
                (None, None) => {
                    let error = format!("{:?}", outcome.error);
                    return (Some(Seen::Unread { target, error }), true);
                }
            };
            let attempted = matches!(finding, Finding::Drifted { .. });
            let wrote = match outcome.status {
                Status::Updated => Some(true),
                Status::Failed => Some(false),
                _ => None,
            };
            let fix = attempted.then(|| (outcome.status.as_str(), outcome.error, outcome.warnings));
            let seen = Seen::Classified {
                target,
                finding,
                fix,
                wrote,
                command: None,
                home_type,
                profile,
            };
            return (Some(seen), true);
        }
        let (finding, called) = match listed_finding {
            Some(finding) => (finding, false),
            None if exempt => (Finding::Exempt, false),
            None => match chroot.inspect(&target).await {
                Ok(live) => (
                    drift::classify_expecting(&target, &live.value, config, expected.as_ref()),
                    true,
                ),
                Err(e) => {
                    let error = e.to_string();
                    return (Some(Seen::Unread { target, error }), true);
                }
            },
        };
        let seen = match (&finding, self.queued) {
            // One reconcile per drifted target, applied by the SQS path like any
            // command: it names the target, never a home, and is read afresh when
            // consumed.
            (Finding::Drifted { reason, .. }, true) => Seen::Classified {
                command: Some(Reconcile::message(&target, &self.run_id, reason)),
                target,
                finding,
                fix: Some(("Queued", None, Vec::new())),
                wrote: None,
                home_type,
                profile,
            },
            _ => Seen::Classified {
                target,
                finding,
                fix: None,
                wrote: None,
                command: None,
                home_type,
                profile,
            },
        };
        (Some(seen), called)
    }
}

impl Run<'_> {
    /// Counts what one item was seen to be, in the listing's order.
    async fn absorb(&mut self, server: &ServerId, seen: Seen) {
        match seen {
            Seen::Invalid(name) => {
                self.counts.count(Class::NeedsAttention);
                count_class(server, Class::NeedsAttention);
                self.watch
                    .counted(server, Some(Class::NeedsAttention), None, &self.counts);
                tracing::warn!(server = %server, name = %crate::outcome::echo(&name), "audit: listed name is not valid");
            }
            Seen::Unread { target, error } => {
                self.counts.failed += 1;
                self.watch.counted(server, None, None, &self.counts);
                tracing::warn!(target_resource = %target, error = %error, "audit: describe failed");
            }
            Seen::Classified {
                target,
                finding,
                fix,
                wrote,
                command,
                home_type,
                profile,
            } => {
                self.report_to_hub(&target, &finding, &fix, wrote, home_type)
                    .await;
                match wrote {
                    Some(true) => self.counts.fixed += 1,
                    Some(false) => self.counts.failed += 1,
                    None => {}
                }
                if let Some(written) = wrote {
                    count_fix(server, written);
                }
                self.record(&target, &finding, fix, profile);
                if let Some(command) = command {
                    self.pending.push(command);
                    if self.pending.len() >= BATCH {
                        self.flush().await;
                    }
                }
            }
        }
    }
}

/// The invocation's metrics: one target of `class` on `server`.
fn count_class(server: &ServerId, class: Class) {
    let mut c = metrics::AuditCounts::default();
    match class {
        Class::Chrooted => c.chrooted = 1,
        Class::Drifted => c.drifted = 1,
        Class::NeedsAttention => c.needs_attention = 1,
        Class::Exempt => c.exempt = 1,
    }
    metrics::audit(server.as_str(), c);
}

/// The invocation's metrics: one fix written (or failed) on `server`.
fn count_fix(server: &ServerId, written: bool) {
    let mut c = metrics::AuditCounts::default();
    if written {
        c.fixed = 1;
    } else {
        c.fix_failed = 1;
    }
    metrics::audit(server.as_str(), c);
}

fn report(run: &Run<'_>, cursor: Option<&Cursor>, error: Option<ErrorBody>) -> AuditReport {
    let continuation = cursor.map(|c| run.continuation(c));
    AuditReport {
        status: if error.is_some() {
            Status::Failed.as_str()
        } else {
            "Audited"
        }
        .to_owned(),
        action: "Audit".to_owned(),
        run_id: run.run_id.clone(),
        servers: run.audit.servers.iter().map(ToString::to_string).collect(),
        counts: run.counts,
        server_findings: run.server_findings.clone(),
        findings: run.findings.clone(),
        truncated: run.truncated,
        continuation,
        continuation_queued: false,
        report: None,
        security_hub: run.hub.map(|_| run.hub_counts),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::findings::memory::MemoryHub;
    use crate::input::AuditInput;
    use crate::transfer::memory::MemoryTransfer;
    use crate::transfer::{LiveHome, Mapping, ServerFacts, StorageDomain};
    use serde_json::json;
    use std::sync::Arc;

    const S: &str = "s-0123456789abcdef0";
    const D: &str = "s-0123456789abcdef1";

    fn config() -> Config {
        Config::from_pairs(&[
            (
                "ALLOWED_SERVER_IDS",
                "s-0123456789abcdef0,s-0123456789abcdef1",
            ),
            ("HOME_ROOTS", "/acme-sftp/home,/acme-sftp/groups"),
            ("HOME_TEMPLATE", "/acme-sftp/home/${UserName}"),
            ("EXEMPT_USERS", "admin"),
        ])
        .unwrap()
    }

    fn path(home: Option<&str>) -> LiveHome {
        LiveHome {
            home_directory: home.map(str::to_owned),
            home_directory_type: Some(HomeDirectoryType::Path),
            ..LiveHome::default()
        }
    }

    fn logical(targets: &[&str]) -> LiveHome {
        LiveHome {
            home_directory: Some("/".into()),
            home_directory_type: Some(HomeDirectoryType::Logical),
            home_directory_mappings: targets
                .iter()
                .enumerate()
                .map(|(i, t)| Mapping::directory(if i == 0 { "/" } else { "/more" }, t))
                .collect(),
            ..LiveHome::default()
        }
    }

    /// A fleet with each class, on a users server and a directory server.
    fn fleet(page: usize) -> Chroot<MemoryTransfer> {
        let user = |n: &str| -> Target { format!("{S}/users/{n}").parse().unwrap() };
        let t = MemoryTransfer::new()
            .with_page_size(page)
            .with(user("alice"), path(Some("/acme-sftp/home/alice"))) // drifted (home)
            .with(user("bob"), logical(&["/acme-sftp/home/bob"])) // chrooted
            .with(user("carol"), path(Some("/acme-sftp"))) // needs attention
            .with(user("dave"), path(None)) // drifted (template)
            .with(user("admin"), path(Some("/"))) // exempt
            .with(
                user("erin"),
                logical(&["/acme-sftp/home/erin", "/acme-sftp/x"]),
            ) // needs attention
            .with(
                format!("{D}/accesses/S-1-5-21-1").parse().unwrap(),
                path(Some("/acme-sftp/groups/finance")),
            ) // drifted
            .with_server(
                ServerId::parse(D).unwrap(),
                ServerFacts {
                    identity_provider: IdentityProvider::AwsDirectoryService,
                    domain: StorageDomain::S3,
                    directory_listing_optimization: true,
                    tags: Vec::new(),
                },
            );
        Chroot::new(config(), t)
    }

    fn audit(c: &Chroot<MemoryTransfer>, v: Value) -> Result<Audit, Box<Rejection>> {
        Audit::parse(
            &AuditInput::read(v.as_object().unwrap(), false),
            &Coverage::of(&c.config, c.config.guardrails.servers.clone()),
        )
    }

    async fn run_to_end(c: &Chroot<MemoryTransfer>, v: Value) -> AuditReport {
        let a = audit(c, v).unwrap();
        run(c, &a, "run-1", Instant::now() + Duration::from_secs(60)).await
    }

    #[tokio::test]
    async fn every_class_is_counted_and_only_logical_targets_are_described() {
        let c = fleet(2);
        let r = run_to_end(&c, json!({"Action": "Audit"})).await;
        assert_eq!(
            r.counts,
            Counts {
                chrooted: 1,
                drifted: 3,
                needs_attention: 2,
                exempt: 1,
                ..Counts::default()
            }
        );
        assert_eq!(r.findings.len(), 6, "{:#?}", r.findings);
        assert!(r.continuation.is_none() && !r.truncated);
        let described: Vec<String> = c
            .ports
            .transfer
            .calls()
            .iter()
            .map(|c| c.target.to_string())
            .collect();
        assert_eq!(
            described,
            [format!("{S}/users/bob"), format!("{S}/users/erin")]
        );
        assert_eq!(c.ports.transfer.writes(), 0, "no Fix: nothing written");
        // Users where users exist, accesses where accesses exist; pages of 2.
        let lists: Vec<String> = c
            .ports
            .transfer
            .list_calls()
            .iter()
            .map(|(o, s)| format!("{o} {s}"))
            .collect();
        assert_eq!(
            lists,
            [
                format!("ListUsers {S}"),
                format!("ListUsers {S}"),
                format!("ListUsers {S}"),
                format!("ListAccesses {D}")
            ]
        );
        let dave = r
            .findings
            .iter()
            .find(|f| f.user_name.as_deref() == Some("dave"))
            .unwrap();
        assert_eq!(dave.class, "Drifted");
        assert_eq!(dave.target.as_deref(), Some("/acme-sftp/home/dave"));
        assert!(dave.reason.as_deref().unwrap().contains("HOME_TEMPLATE"));
    }

    #[tokio::test]
    async fn fix_writes_exactly_the_drifted_and_a_second_audit_is_all_chrooted_or_left() {
        let c = fleet(1000);
        let r = run_to_end(&c, json!({"Action": "Audit", "Fix": true})).await;
        assert_eq!(r.counts.fixed, 3);
        assert_eq!(c.ports.transfer.writes(), 3);
        let written: Vec<String> = c
            .ports
            .transfer
            .calls()
            .iter()
            .filter(|c| c.operation.starts_with("Update"))
            .map(|c| c.target.subject.as_str().to_owned())
            .collect();
        assert_eq!(written, ["alice", "dave", "S-1-5-21-1"]);
        // Each fix is a reconcile: the drifted target is read right before its write
        // (PATH ones too, although the listing showed their home).
        let calls: Vec<String> = c
            .ports
            .transfer
            .calls()
            .iter()
            .map(|c| format!("{} {}", c.operation, c.target.subject.as_str()))
            .collect();
        for fixed in ["alice", "dave", "S-1-5-21-1"] {
            let describe = calls
                .iter()
                .position(|c| c.starts_with("Describe") && c.ends_with(&format!(" {fixed}")))
                .unwrap_or_else(|| panic!("{fixed} read: {calls:?}"));
            let update = calls
                .iter()
                .position(|c| c.starts_with("Update") && c.ends_with(&format!(" {fixed}")))
                .unwrap();
            assert_eq!(update, describe + 1, "{calls:?}");
        }
        let again = run_to_end(&c, json!({"Action": "Audit", "Fix": true})).await;
        assert_eq!(again.counts.chrooted, 4);
        assert_eq!(again.counts.drifted, 0);
        assert_eq!(c.ports.transfer.writes(), 3, "nothing more written");
    }

    #[tokio::test]
    async fn dry_run_writes_nothing() {
        let c = fleet(1000);
        let r = run_to_end(&c, json!({"Action": "Audit", "Fix": true, "DryRun": true})).await;
        assert_eq!(r.counts.drifted, 3);
        assert_eq!(r.counts.fixed, 0);
        assert_eq!(c.ports.transfer.writes(), 0);
        assert!(
            r.findings
                .iter()
                .filter(|f| f.class == "Drifted")
                .all(|f| f.status.as_deref() == Some("Planned"))
        );
    }

    #[tokio::test]
    async fn a_deadline_mid_fleet_yields_a_continuation_that_completes_the_run_exactly() {
        let c = fleet(2);
        let whole = run_to_end(&c, json!({"Action": "Audit"})).await.counts;
        // Stop after every item: the sum of all parts is the whole, nothing twice.
        let mut total = Counts::default();
        let mut event = json!({"Action": "Audit"});
        let mut parts = 0;
        loop {
            let a = audit(&c, event.clone()).unwrap();
            // Time for the first item and one more, then the deadline.
            let r = run_until(&c, &a, "run-2", &mut Steps(1)).await;
            total.chrooted += r.counts.chrooted;
            total.drifted += r.counts.drifted;
            total.needs_attention += r.counts.needs_attention;
            total.exempt += r.counts.exempt;
            parts += 1;
            assert_eq!(r.run_id, "run-2");
            match r.continuation {
                Some(next) => event = next,
                None => break,
            }
            assert!(parts < 100, "the run ends");
        }
        assert_eq!(total, whole);
    }

    #[test]
    fn tampered_foreign_and_malformed_continuations_are_refused() {
        let c = fleet(2);
        let coverage = Coverage::of(&c.config, c.config.guardrails.servers.clone());
        let allowed = coverage.binding.as_str();
        let cursor = Cursor {
            run: "r".into(),
            server: 0,
            kind: CursorKind::Users,
            token: Some("memory:2".into()),
            position: 1,
            skip: vec![3],
            servers: Vec::new(),
            started: None,
        };
        let good = cursor.encode(allowed);
        assert_eq!(Cursor::decode(&good, allowed).unwrap(), cursor);
        let (payload, tag) = good.rsplit_once('.').unwrap();
        let other = cursor_with_position(&cursor, 0).encode(allowed);
        let forged = format!("{}.{tag}", other.rsplit_once('.').unwrap().0);
        let foreign = cursor.encode(&fingerprint(&[
            ServerId::parse("s-00000000000000000").unwrap()
        ]));
        for bad in [
            forged.as_str(),
            foreign.as_str(),
            "nonsense",
            &format!("{payload}x.{tag}"),
        ] {
            let refused = audit(&c, json!({"Action": "Audit", "Continuation": bad})).unwrap_err();
            assert_eq!(refused.error.fields[0].field, "Continuation", "{bad}");
        }
        assert!(audit(&c, json!({"Action": "Audit", "Continuation": good})).is_ok());
    }

    /// A budget of `n` starts after the first item (which always runs), never a hard stop.
    struct Steps(usize);

    impl Budget for Steps {
        fn may_start(&mut self, _: Duration) -> bool {
            let more = self.0 > 0;
            self.0 = self.0.saturating_sub(1);
            more
        }

        fn hard_stop(&self) -> Option<Instant> {
            None
        }
    }

    fn cursor_with_position(c: &Cursor, position: usize) -> Cursor {
        Cursor {
            position,
            ..c.clone()
        }
    }

    #[test]
    fn bad_input_lists_every_field_and_another_server_is_not_allowed() {
        let c = fleet(2);
        let r = audit(
            &c,
            json!({"Action": "Audit", "ServerId": 1, "Fix": "yes", "Extra": 1}),
        )
        .unwrap_err();
        let fields: Vec<&str> = r.error.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["Extra", "ServerId", "Fix"]);
        let r = audit(
            &c,
            json!({"Action": "Audit", "ServerId": "s-11111111111111111"}),
        )
        .unwrap_err();
        assert_eq!(r.error.code, ErrorCode::NotAllowed);
        let one = audit(&c, json!({"Action": "Audit", "ServerId": D})).unwrap();
        assert_eq!(one.servers, [ServerId::parse(D).unwrap()]);
    }

    #[tokio::test]
    async fn what_a_fix_warns_of_is_in_its_finding() {
        // An S3 server without directory listing optimisation, and no folder objects.
        let c = Chroot::new(
            config(),
            MemoryTransfer::new()
                .with(
                    format!("{S}/users/alice").parse().unwrap(),
                    path(Some("/acme-sftp/home/alice")),
                )
                .with_server(
                    ServerId::parse(S).unwrap(),
                    ServerFacts {
                        identity_provider: IdentityProvider::ServiceManaged,
                        domain: StorageDomain::S3,
                        directory_listing_optimization: false,
                        tags: Vec::new(),
                    },
                ),
        )
        .with_folders(std::sync::Arc::new(
            crate::folders::memory::MemoryFolders::new(),
        ));
        let r = run_to_end(&c, json!({"Action": "Audit", "ServerId": S, "Fix": true})).await;
        assert_eq!(r.counts.fixed, 1);
        let alice = &r.findings[0];
        assert_eq!(alice.status.as_deref(), Some("Updated"));
        assert!(
            alice
                .warnings
                .iter()
                .any(|w| w.contains("s3://acme-sftp/home/alice/ does not exist")),
            "{alice:?}"
        );
    }

    /// Security Hub in memory, for the audit's findings.
    fn with_hub(mut c: Chroot<MemoryTransfer>) -> (Chroot<MemoryTransfer>, Arc<MemoryHub>) {
        let memory = Arc::new(MemoryHub::new());
        let account = findings::Account::from_function_arn(
            "arn:aws:lambda:eu-west-1:111122223333:function:f",
        )
        .unwrap();
        c = c.with_hub(Arc::new(Hub::new(memory.clone())));
        let _ = c.env.account.set(account);
        (c, memory)
    }

    fn states(hub: &MemoryHub) -> Vec<(String, String, String, String)> {
        let mut v: Vec<_> = hub
            .findings()
            .into_iter()
            .map(|f| {
                let other = &f.resources[0].details.other;
                let name = other
                    .get("UserName")
                    .or_else(|| other.get("ExternalId"))
                    .cloned()
                    .unwrap_or_default();
                (name, f.severity.label, f.compliance.status, f.record_state)
            })
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn findings_go_to_security_hub_and_a_fix_resolves_them() {
        let (c, hub) = with_hub(fleet(2));
        let first = run_to_end(&c, json!({"Action": "Audit"})).await;
        let counts = first.security_hub.unwrap();
        assert_eq!((counts.imported, counts.failed, counts.archived), (5, 0, 0));
        let s = |n: &str, sev: &str, status: &str, state: &str| {
            (
                n.to_owned(),
                sev.to_owned(),
                status.to_owned(),
                state.to_owned(),
            )
        };
        assert_eq!(
            states(&hub),
            [
                s("S-1-5-21-1", "MEDIUM", "FAILED", "ACTIVE"),
                s("alice", "MEDIUM", "FAILED", "ACTIVE"),
                s("carol", "HIGH", "FAILED", "ACTIVE"),
                s("dave", "MEDIUM", "FAILED", "ACTIVE"),
                s("erin", "HIGH", "FAILED", "ACTIVE"),
            ],
            "one per drifted or needs-attention target, none for bob (chrooted) or admin (exempt)"
        );
        // Fix: the three drifted resolved, the two that need a person still active.
        let fixed = run_to_end(&c, json!({"Action": "Audit", "Fix": true})).await;
        assert_eq!(fixed.counts.fixed, 3);
        let done = |n: &str| s(n, "INFORMATIONAL", "PASSED", "ARCHIVED");
        assert_eq!(
            states(&hub),
            [
                done("S-1-5-21-1"),
                done("alice"),
                s("carol", "HIGH", "FAILED", "ACTIVE"),
                done("dave"),
                s("erin", "HIGH", "FAILED", "ACTIVE"),
            ]
        );
    }

    #[tokio::test]
    async fn a_security_hub_failure_never_fails_or_undoes_a_fix() {
        let (c, hub) = with_hub(fleet(100));
        hub.fail_next(100);
        let report = run_to_end(&c, json!({"Action": "Audit", "Fix": true})).await;
        assert_eq!(report.status, "Audited", "{report:?}");
        assert_eq!(report.counts.fixed, 3, "the fixes are written");
        let counts = report.security_hub.unwrap();
        assert!(counts.failed >= 5 && counts.imported == 0, "{counts:?}");
        assert!(hub.findings().is_empty());
        // And a command's fix stands when its finding cannot be resolved.
        let again =
            crate::reconcile::reconcile(&c, &format!("{S}/users/carol").parse().unwrap(), false)
                .await;
        assert_ne!(again.outcome.status, Status::Failed, "{:?}", again.outcome);
    }

    #[tokio::test]
    async fn the_sweep_archives_what_a_completed_run_did_not_report_again() {
        let (c, hub) = with_hub(fleet(2));
        run_to_end(&c, json!({"Action": "Audit"})).await;
        // Chrooted by someone else, and a refused finding: neither changes the others.
        c.ports.transfer.insert(
            format!("{S}/users/alice").parse().unwrap(),
            logical(&["/acme-sftp/home/alice"]),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = run_to_end(&c, json!({"Action": "Audit"})).await;
        assert_eq!(second.security_hub.unwrap().archived, 1, "{second:?}");
        let alice = states(&hub).into_iter().find(|f| f.0 == "alice").unwrap();
        assert_eq!((alice.2.as_str(), alice.3.as_str()), ("PASSED", "ARCHIVED"));
        assert_eq!(states(&hub).iter().filter(|f| f.3 == "ACTIVE").count(), 4);
        // A run over one server sweeps only that server's findings.
        c.ports.transfer.insert(
            format!("{D}/accesses/S-1-5-21-1").parse().unwrap(),
            logical(&["/acme-sftp/groups/finance"]),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let one = run_to_end(&c, json!({"Action": "Audit", "ServerId": S})).await;
        assert_eq!(
            one.security_hub.unwrap().archived,
            0,
            "the access is on the other server"
        );
    }

    mod directory {
        use super::*;
        use crate::directory::memory::{MemoryDirectory, id};
        use crate::domain::{GroupId, UserId};

        const PROFILES: &str = r#"{"Profiles": [
            {"Group": "sftp-finance", "Priority": 20,
             "HomeDirectory": "/acme-sftp/groups/finance/${UserName}",
             "Role": "arn:aws:iam::111122223333:role/sftp-finance"}],
          "Default": {"HomeDirectory": "/acme-sftp/home/${UserName}"}}"#;

        fn user(n: &str) -> Target {
            format!("{S}/users/{n}").parse().unwrap()
        }

        /// alice (finance) chrooted into her old home; bob (no group) chrooted into
        /// his Default one; carol (finance) chrooted into finance with the wrong role;
        /// dave, not in the directory, chrooted anywhere below a root; 250 more users
        /// so the directory is more than a page.
        fn setup() -> (Chroot<MemoryTransfer>, Arc<MemoryDirectory>) {
            let finance = GroupId::parse(&id(2, 1)).unwrap();
            let mut d = MemoryDirectory::new().with_group(&finance, "sftp-finance");
            let mut t = MemoryTransfer::new()
                .with(user("alice"), logical(&["/acme-sftp/home/alice"]))
                .with(user("bob"), logical(&["/acme-sftp/home/bob"]))
                .with(user("carol"), {
                    let mut l = logical(&["/acme-sftp/groups/finance/carol"]);
                    l.role = Some("arn:aws:iam::111122223333:role/other".into());
                    l
                })
                .with(user("dave"), logical(&["/acme-sftp/home/elsewhere"]));
            for (n, name) in ["alice", "bob", "carol"].iter().enumerate() {
                d = d.with_user(&UserId::parse(&id(1, n as u32)).unwrap(), name);
            }
            for n in 0..250u32 {
                let name = format!("user{n:03}");
                d = d.with_user(&UserId::parse(&id(1, 100 + n)).unwrap(), &name);
                t = t.with(user(&name), logical(&[&format!("/acme-sftp/home/{name}")]));
            }
            d.add(&finance, &UserId::parse(&id(1, 0)).unwrap());
            d.add(&finance, &UserId::parse(&id(1, 2)).unwrap());
            let d = Arc::new(d);
            let config = Config::from_pairs(&[
                ("ALLOWED_SERVER_IDS", S),
                ("HOME_ROOTS", "/acme-sftp/home,/acme-sftp/groups"),
                (
                    "ALLOWED_ROLE_ARNS",
                    "arn:aws:iam::111122223333:role/sftp-finance",
                ),
                ("GROUP_PROFILES", PROFILES),
                ("IDENTITY_STORE_ID", "d-9067a1b2c3"),
            ])
            .unwrap();
            let mut c = Chroot::new(config, t);
            c.ports.directory = Some(d.clone());
            (c, d)
        }

        #[tokio::test]
        async fn each_user_is_held_to_its_profile_and_the_directory_is_read_in_bulk() {
            let (c, d) = setup();
            let r = run_to_end(&c, json!({"Action": "Audit"})).await;
            assert_eq!(r.counts.drifted, 2, "{:#?}", r.findings);
            assert_eq!(r.counts.chrooted, 252, "bob, dave and the 250");
            let alice = r
                .findings
                .iter()
                .find(|f| f.user_name.as_deref() == Some("alice"))
                .unwrap();
            assert_eq!(alice.profile.as_deref(), Some("sftp-finance"));
            assert_eq!(
                alice.target.as_deref(),
                Some("/acme-sftp/groups/finance/alice")
            );
            let why = alice.reason.as_deref().unwrap();
            assert!(
                why.contains("chrooted into /acme-sftp/home/alice")
                    && why.contains("member of sftp-finance"),
                "{why}"
            );
            let carol = r
                .findings
                .iter()
                .find(|f| f.user_name.as_deref() == Some("carol"))
                .unwrap();
            assert!(
                carol.reason.as_deref().unwrap().contains("holds role"),
                "{carol:?}"
            );
            // One page of members, three of users: never a call per Transfer user.
            let calls = d.calls();
            assert_eq!(
                calls,
                [
                    "GetGroupId",
                    "ListGroupMemberships",
                    "ListUsers",
                    "ListUsers",
                    "ListUsers"
                ]
            );
        }

        #[tokio::test]
        async fn the_fix_applies_the_profile_home_and_role() {
            let (c, _) = setup();
            let r = run_to_end(&c, json!({"Action": "Audit", "Fix": true})).await;
            assert_eq!(r.counts.fixed, 2, "{:#?}", r.findings);
            let alice = c.ports.transfer.get(&user("alice")).unwrap();
            assert_eq!(
                alice.home_directory_mappings[0].target,
                "/acme-sftp/groups/finance/alice"
            );
            assert_eq!(
                alice.role.as_deref(),
                Some("arn:aws:iam::111122223333:role/sftp-finance")
            );
            let again = run_to_end(&c, json!({"Action": "Audit"})).await;
            assert_eq!(again.counts.drifted, 0, "{:#?}", again.findings);
        }

        #[tokio::test]
        async fn a_directory_that_cannot_be_read_fails_the_run_retryably_and_writes_nothing() {
            let (c, d) = setup();
            d.fail_next(1, true);
            let r = run_to_end(&c, json!({"Action": "Audit", "Fix": true})).await;
            assert_eq!(r.status, "Failed");
            assert!(r.error.as_ref().unwrap().retryable);
            assert!(r.continuation.is_some());
            assert_eq!(c.ports.transfer.writes(), 0);
        }

        #[tokio::test]
        async fn a_queued_fix_reads_the_directory_again_when_applied() {
            let (c, d) = setup();
            // alice leaves finance after the audit queued her fix: the reconcile reads
            // the directory now and holds her to Default, where she already is.
            d.remove(
                &GroupId::parse(&id(2, 1)).unwrap(),
                &UserId::parse(&id(1, 0)).unwrap(),
            );
            let done = crate::reconcile::reconcile(&c, &user("alice"), false).await;
            assert_eq!(done.outcome.status, Status::Unchanged, "{done:?}");
            assert_eq!(done.outcome.profile.as_deref(), Some("Default"));
        }
    }
}
