//! The chaos soak (issue 19, docs/RELIABILITY.md "Reconcile, not replay"): the real
//! function binary, several processes of it under the Runtime API emulator, against the
//! Transfer stand-in and moto's SQS (with a dead-letter queue), under concurrent traffic
//! and random faults, bounded in time and in count. At quiescence it checks:
//!
//! 1. **latest intent kept**: every audited user and access ends as the last change
//!    that was not a derived fix (an API or directory-group intent, or an
//!    administrator's change straight to Transfer) leaves it: chrooted there, or, when
//!    that change left it drifted, chrooted to its derivable home, or, when it left it
//!    needing a person, untouched. A derived fix that broke this is a violation, unless
//!    the newer change landed inside that fix's own read → write window (Transfer has no
//!    conditional write): those are counted and shown, the one race no client can close;
//! 2. **guardrails**: no call at all for a refused request, and no write to a server
//!    outside `ALLOWED_SERVER_IDS` or to a home outside the roots;
//! 3. **nothing lost**: every message the function queued was received, and each one
//!    was deleted after a success or sits in the DLQ; the queue is empty; a `Reconcile`
//!    record reported done was read (its `Describe*` answered) in that invocation;
//! 4. **exact audit**: a final audit's counts equal a recount of the stand-in's state;
//! 5. **the directory's intent kept** (`IDENTITY_STORE_ID`, moto's Identity Store):
//!    users whose groups churn in the directory, their triggers sent late, out of
//!    order, twice or not at all, each end on the profile of the membership the
//!    directory holds at the end (the audit being the safety net for what no event
//!    named).
//!
//! Run it with `bash scripts/soak.sh [SECONDS]` (which starts moto, builds and runs
//! this). It prints the figures and the invariants, writes `target/soak-summary.json`,
//! and exits 1 on any violation. `SOAK_SEED` replays a run's random choices (the
//! interleaving of processes still varies); `SOAK_MAX_EVENTS` bounds the count.

#[path = "../tests/it/common/directory.rs"]
#[allow(dead_code)]
mod directory;
#[path = "../tests/it/common/function.rs"]
#[allow(dead_code)]
mod function;
#[path = "../tests/it/common/moto.rs"]
#[allow(dead_code)]
mod moto;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, QueueAttributeName};
use function::{Function, demo_vars};
use serde_json::{Map, Value, json};
use transfer_standin::{Change, Fault, FaultRule, Faults, Interleave, Recorded, StandIn};

/// Users live here (SERVICE_MANAGED).
const USERS_SERVER: &str = "s-0123456789abcdef0";
/// Accesses live here (AWS_DIRECTORY_SERVICE).
const ACCESS_SERVER: &str = "s-0123456789abcdef1";
/// A well-formed server id that `ALLOWED_SERVER_IDS` does not hold.
const OUTSIDE_SERVER: &str = "s-0fedcba987654321f";
const ROLE: &str = "arn:aws:iam::111122223333:role/sftp-user";
const SID: &str = "S-1-5-21-1004336348-1177238915-682003330-";
const GROUPS: [&str; 3] = ["sftp-finance", "sftp-engineering", "sftp-staff"];
/// Access keys: each process signs with its own, so the stand-in's log says who wrote.
/// Keys starting `AKIDAUTO` are the derived fixes' (reconciles); the others' writes are
/// intents.
const KEY_INTENT: &str = "AKIDINTENT";
const KEY_GUARD: &str = "AKIDGUARD";
const KEY_AUTO: [&str; 2] = ["AKIDAUTO1", "AKIDAUTO2"];
const KEY_FINAL: &str = "AKIDAUTOFINAL";
const VISIBILITY_SECONDS: u64 = 10;
/// The demo's profiled groups (demo/config.env's GROUP_PROFILES), and none.
const PROFILED: [Option<&str>; 3] = [Some("sftp-finance"), Some("sftp-engineering"), None];
const MAX_RECEIVES: u32 = 3;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read_json(relative: &str) -> Value {
    let text = std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One audited target: a user on [`USERS_SERVER`] or an access on [`ACCESS_SERVER`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Target {
    User(String),
    Access(String),
}

impl Target {
    fn name(&self) -> &str {
        match self {
            Self::User(n) | Self::Access(n) => n,
        }
    }
    fn live(&self, standin: &StandIn) -> Option<Value> {
        match self {
            Self::User(n) => standin.user(USERS_SERVER, n),
            Self::Access(n) => standin.access(ACCESS_SERVER, n),
        }
    }
    fn change(&self) -> Change {
        match self {
            Self::User(n) => Change::user(USERS_SERVER, n),
            Self::Access(n) => Change::access(ACCESS_SERVER, n),
        }
    }
    /// The target a request body or a change names, if it is one of the audited ones.
    fn of(server: &str, body: &Map<String, Value>) -> Option<Self> {
        match (server, body.get("UserName"), body.get("ExternalId")) {
            (USERS_SERVER, Some(Value::String(n)), _) => Some(Self::User(n.clone())),
            (ACCESS_SERVER, _, Some(Value::String(e))) => Some(Self::Access(e.clone())),
            _ => None,
        }
    }
    /// A home of its own below a root, new for every `n`.
    fn home(&self, tag: &str, n: u64) -> String {
        match self {
            Self::User(u) => format!("/acme-sftp/home/{u}-{tag}{n}"),
            Self::Access(e) => format!("/acme-sftp/groups/{}-{tag}{n}", &e[e.len() - 4..]),
        }
    }
}

/// The home fields that decide a target's class.
#[derive(Debug, Clone, Default, PartialEq)]
struct Home {
    kind: Option<String>,
    directory: Option<String>,
    mappings: Option<Value>,
}

impl Home {
    fn of(v: &Value) -> Self {
        Self {
            kind: v["HomeDirectoryType"].as_str().map(str::to_owned),
            directory: v["HomeDirectory"].as_str().map(str::to_owned),
            mappings: v.get("HomeDirectoryMappings").cloned(),
        }
    }
    /// An update merged as Transfer (and the stand-in) merges it.
    fn merge(&mut self, set: &Map<String, Value>) {
        if let Some(k) = set.get("HomeDirectoryType").and_then(Value::as_str) {
            self.kind = Some(k.to_owned());
        }
        if let Some(d) = set.get("HomeDirectory").and_then(Value::as_str) {
            self.directory = Some(d.to_owned());
        }
        if let Some(m) = set.get("HomeDirectoryMappings") {
            self.mappings = Some(m.clone());
        }
        if self.kind.as_deref() != Some("LOGICAL") {
            self.mappings = None;
        }
    }
}

/// The soak's own classification (written apart from the function's `drift`, for the
/// homes the soak makes): what a target's home means.
#[derive(Debug, Clone, PartialEq)]
enum Class {
    Chrooted(String),
    Drifted(String),
    NeedsAttention,
}

fn below_a_root(path: &str, roots: &[String]) -> bool {
    let clean = !path
        .split('/')
        .skip(1)
        .any(|s| s.is_empty() || s == "." || s == "..");
    clean && roots.iter().any(|r| path.starts_with(&format!("{r}/")))
}

fn classify(home: &Home, roots: &[String]) -> Class {
    let mappings = home
        .mappings
        .as_ref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if home.kind.as_deref() == Some("LOGICAL") && !mappings.is_empty() {
        return match mappings.as_slice() {
            [m] if m["Entry"] == "/" => match m["Target"].as_str() {
                Some(t) if below_a_root(t, roots) => Class::Chrooted(t.to_owned()),
                _ => Class::NeedsAttention,
            },
            _ => Class::NeedsAttention,
        };
    }
    match home.directory.as_deref() {
        Some(d) if below_a_root(d, roots) => Class::Drifted(d.to_owned()),
        _ => Class::NeedsAttention,
    }
}

/// Counters by name, and the violations found.
#[derive(Default)]
struct Tally {
    counts: Mutex<BTreeMap<String, u64>>,
    violations: Mutex<Vec<String>>,
}

impl Tally {
    fn bump(&self, name: impl Into<String>) {
        self.add(name, 1);
    }
    fn add(&self, name: impl Into<String>, n: u64) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.into())
            .or_default() += n;
    }
    fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }
}

/// One process of the function, and the access key it signs with.
struct Process {
    function: Function,
    key: &'static str,
}

/// Everything the actors share.
struct Soak {
    standin: StandIn,
    intent: Process,
    guard: Process,
    auto: Vec<Process>,
    /// Each invocation's span in the stand-in's arrival order: (key, arrivals before,
    /// arrivals after). A process runs one invocation at a time, so its calls that
    /// arrived in that span are that invocation's (or, when invocations queued, its
    /// predecessor's). A call abandoned at the deadline may be answered, and logged,
    /// later: it still arrived in its invocation's span.
    invocations: Mutex<Vec<(&'static str, u64, u64)>>,
    sqs: aws_sdk_sqs::Client,
    queue: String,
    dlq: String,
    users: Vec<Target>,
    accesses: Vec<Target>,
    end: Instant,
    stop: AtomicBool,
    events: AtomicU64,
    max_events: u64,
    serial: AtomicU64,
    tally: Tally,
    received: Mutex<HashSet<String>>,
    deleted: Mutex<HashSet<String>>,
    api_template: Value,
    group_template: Value,
    trail_template: Value,
    sqs_template: Value,
    directory: Churn,
}

/// The directory's side: a store on moto, its users (name, id) and groups, and each
/// user's current membership (its group and membership id).
struct Churn {
    store: directory::MotoDirectory,
    users: Vec<(String, String)>,
    groups: HashMap<String, String>,
    membership: Mutex<HashMap<String, Option<(String, String)>>>,
    /// Triggers the soak put on the queue itself (not the function's).
    sent: AtomicU64,
    trail_template: Value,
    okta_template: Value,
}

impl Churn {
    /// The home the directory's membership of `user` gives it (demo/config.env's profiles).
    fn expected_home(&self, user: &str) -> String {
        let membership = self.membership.lock().unwrap_or_else(|p| p.into_inner());
        match membership
            .get(user)
            .cloned()
            .flatten()
            .map(|(g, _)| g)
            .as_deref()
        {
            Some("sftp-finance") => format!("/acme-sftp/groups/finance/{user}"),
            Some("sftp-engineering") => format!("/acme-sftp/groups/engineering/{user}"),
            _ => format!("/acme-sftp/home/{user}"),
        }
    }

    /// A trigger naming the directory user `(name, id)`: a CloudTrail
    /// `CreateGroupMembership` record of it or Okta's System Log line.
    fn trigger(&self, name: &str, id: &str, group: &str, okta: bool) -> Value {
        let mut e = if okta {
            self.okta_template.clone()
        } else {
            self.trail_template.clone()
        };
        if okta {
            for t in e["detail"]["target"].as_array_mut().into_iter().flatten() {
                if t["type"] == "User" {
                    t["alternateId"] = name.into();
                }
            }
        } else {
            e["detail"]["requestParameters"] = json!({"identityStoreId": self.store.store,
                "groupId": group, "memberId": {"userId": id}});
        }
        e
    }
}

impl Soak {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
            && Instant::now() < self.end
            && self.events.load(Ordering::Relaxed) < self.max_events
    }
    fn event(&self, kind: &str) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.tally.bump(format!("events.{kind}"));
    }
    fn next(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed)
    }

    /// Invokes `process`, cutting its deadline short when `deadline` says so: the
    /// result, or the error it reported (`Err`). No answer at all is a violation.
    async fn call(
        &self,
        process: &Process,
        event: &Value,
        deadline: Option<Duration>,
    ) -> Option<Result<Value, Value>> {
        let api = &process.function.api;
        let first = self.standin.arrivals();
        let answer = match deadline {
            Some(d) => {
                self.tally.bump("deadlines cut short");
                api.invoke_with_deadline(event.to_string(), d).await
            }
            None => api.invoke(event.to_string()).await,
        };
        let end = self.standin.arrivals();
        self.invocations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((process.key, first, end));
        match answer {
            Ok(r) => {
                if deadline.is_some_and(|d| r.latency > d) {
                    self.tally.bump("answers after the deadline");
                }
                let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                Some(if r.kind == "response" {
                    Ok(body)
                } else {
                    Err(body)
                })
            }
            Err(e) => {
                self.tally.violation(format!("no answer: {e:?}"));
                None
            }
        }
    }

    /// A synchronous source's invocation (API Gateway, SQS, a direct audit): it must
    /// answer with a result, never an error.
    async fn invoke(
        &self,
        function: &Process,
        event: &Value,
        deadline: Option<Duration>,
    ) -> Option<Value> {
        match self.call(function, event, deadline).await? {
            Ok(result) => Some(result),
            Err(error) => {
                self.tally.violation(format!("the handler failed: {error}"));
                None
            }
        }
    }

    /// An asynchronous source's invocation (EventBridge): a failure is a
    /// `TransferChroot.*` error, retried twice as Lambda's asynchronous invocation does,
    /// then counted as sent to the on-failure destination.
    async fn invoke_async(
        &self,
        function: &Process,
        event: &Value,
        deadline: Option<Duration>,
    ) -> Option<Value> {
        for attempt in 0..3 {
            match self.call(function, event, deadline).await? {
                Ok(result) => return Some(result),
                Err(error) => {
                    let kind = error["errorType"].as_str().unwrap_or_default();
                    if !kind.starts_with("TransferChroot.") {
                        self.tally
                            .violation(format!("an unstructured failure: {error}"));
                        return None;
                    }
                    self.tally.bump(format!("async failures.{kind}"));
                    if attempt < 2 {
                        self.tally.bump("async retries");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
        self.tally
            .bump("async events to the on-failure destination");
        None
    }

    fn api_put(&self, server: &str, user: &str, home: &str) -> Value {
        let mut e = self.api_template.clone();
        let path = format!("/servers/{server}/users/{user}");
        e["rawPath"] = path.clone().into();
        e["requestContext"]["http"]["path"] = path.into();
        e["pathParameters"] = json!({"ServerId": server, "UserName": user});
        e["requestContext"]["requestId"] = format!("soak-{}", self.next()).into();
        e["body"] = json!({"HomeDirectory": home}).to_string().into();
        e
    }

    fn group_event(&self, external_id: &str, group: &str) -> Value {
        let mut e = self.group_template.clone();
        e["id"] = format!("soak-group-{}", self.next()).into();
        e["detail"] =
            json!({"ServerId": ACCESS_SERVER, "ExternalId": external_id, "GroupName": group});
        e
    }

    fn trail_record(&self, server: &str, user: &str, stale_home: &str) -> Value {
        let mut e = self.trail_template.clone();
        let n = self.next();
        e["id"] = format!("soak-trail-{n}").into();
        e["detail"]["eventID"] = format!("soak-trail-{n}").into();
        e["detail"]["requestParameters"] = json!({"serverId": server, "userName": user,
            "homeDirectoryType": "PATH", "homeDirectory": stale_home});
        e["detail"]["responseElements"] = json!({"serverId": server, "userName": user});
        e
    }

    fn sqs_batch(&self, messages: &[Message]) -> Value {
        let template = self.sqs_template["Records"][0].clone();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut r = template.clone();
                r["messageId"] = m.message_id().unwrap_or_default().into();
                r["receiptHandle"] = m.receipt_handle().unwrap_or_default().into();
                r["body"] = m.body().unwrap_or_default().into();
                r["eventSourceARN"] = "arn:aws:sqs:us-east-1:111122223333:soak".into();
                r
            })
            .collect();
        json!({"Records": records})
    }
}

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn maybe_short(rng: &mut fastrand::Rng, chance: f64, from_ms: u64, to_ms: u64) -> Option<Duration> {
    (rng.f64() < chance).then(|| Duration::from_millis(rng.u64(from_ms..to_ms)))
}

async fn pause(rng: &mut fastrand::Rng, from_ms: u64, to_ms: u64) {
    tokio::time::sleep(Duration::from_millis(rng.u64(from_ms..to_ms))).await;
}

/// API re-homes (intents) of users, through API Gateway's v2 shape.
async fn api_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    while soak.running() {
        let user = pick(&mut rng, &soak.users).clone();
        let home = user.home("api", soak.next());
        let event = soak.api_put(USERS_SERVER, user.name(), &home);
        soak.event("api re-home");
        let deadline = maybe_short(&mut rng, 0.1, 600, 1_500);
        if let Some(r) = soak.invoke(&soak.intent, &event, deadline).await {
            soak.tally.bump(format!("api status {}", r["statusCode"]));
        }
        pause(&mut rng, 60, 180).await;
    }
}

/// Requests the guardrails refuse: no call may follow any of them.
async fn guard_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    while soak.running() {
        let user = pick(&mut rng, &soak.users).clone();
        let n = soak.next();
        let (server, home, why) = match rng.u8(..4) {
            0 => (OUTSIDE_SERVER, user.home("api", n), "server not allowed"),
            1 => (
                USERS_SERVER,
                "/etc/ssh".to_owned(),
                "home outside the roots",
            ),
            2 => (
                USERS_SERVER,
                "/acme-sftp/home/../../etc".to_owned(),
                "path traversal",
            ),
            _ => (USERS_SERVER, "/acme-sftp/home".to_owned(), "a root itself"),
        };
        soak.event("refused request");
        let event = soak.api_put(server, user.name(), &home);
        if let Some(r) = soak.invoke(&soak.guard, &event, None).await {
            let status = r["statusCode"].as_u64().unwrap_or(0);
            if !(400..500).contains(&status) {
                soak.tally
                    .violation(format!("{why} ({server} {home}) answered {status}: {r}"));
            }
        }
        pause(&mut rng, 400, 1_200).await;
    }
}

/// Directory-group changes (intents) of accesses, in EventBridge's shape.
async fn group_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    while soak.running() {
        let access = pick(&mut rng, &soak.accesses).clone();
        let event = soak.group_event(access.name(), GROUPS[rng.usize(..GROUPS.len())]);
        soak.event("directory group change");
        let deadline = maybe_short(&mut rng, 0.1, 600, 1_500);
        if let Some(r) = soak.invoke_async(&soak.intent, &event, deadline).await {
            soak.tally.bump(format!(
                "group status {}",
                r["Status"].as_str().unwrap_or("?")
            ));
        }
        pause(&mut rng, 150, 450).await;
    }
}

/// Membership churn in the directory: a user moved between the profiled groups (or
/// out of them), and a trigger for it sent now, later (so triggers overtake one
/// another), through the queue, or not at all (the audit's job).
async fn directory_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    let churn = &soak.directory;
    while soak.running() {
        let (name, id) = pick(&mut rng, &churn.users).clone();
        let to = *pick(&mut rng, &PROFILED);
        let before = churn
            .membership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), None)
            .flatten();
        if let Some((_, membership)) = before {
            churn.store.remove(&membership).await;
        }
        let group = to.map(|g| churn.groups[g].clone());
        if let (Some(g), Some(gid)) = (to, &group) {
            let membership = churn.store.add(gid, &id).await;
            churn
                .membership
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), Some((g.to_owned(), membership)));
        }
        soak.event("directory membership change");
        let trigger = churn.trigger(
            &name,
            &id,
            group.as_deref().unwrap_or(&churn.groups["sftp-finance"]),
            rng.bool(),
        );
        match rng.u8(..10) {
            0 | 1 => soak.tally.bump("directory triggers dropped"),
            2..=4 => {
                // Late: sent after the next changes, in another task.
                let soak = soak.clone();
                let wait = Duration::from_millis(rng.u64(100..1_500));
                soak.tally.bump("directory triggers late");
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    soak.invoke_async(&soak.intent, &trigger, None).await;
                });
            }
            5..=7 => {
                soak.tally.bump("directory triggers now");
                soak.invoke_async(&soak.intent, &trigger, None).await;
            }
            _ => {
                soak.tally.bump("directory triggers queued");
                match soak
                    .sqs
                    .send_message()
                    .queue_url(&soak.queue)
                    .message_body(trigger.to_string())
                    .send()
                    .await
                {
                    Ok(_) => {
                        churn.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => soak.tally.violation(format!("send failed: {e}")),
                }
            }
        }
        pause(&mut rng, 150, 400).await;
    }
}

/// The administrator: changes straight to Transfer, now or right after the next
/// listing answer (between an audit's listing and its fixes).
async fn admin_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    while soak.running() {
        let target = if rng.f64() < 0.75 {
            pick(&mut rng, &soak.users).clone()
        } else {
            pick(&mut rng, &soak.accesses).clone()
        };
        let n = soak.next();
        let (change, kind) = match rng.u8(..10) {
            0..=3 => (
                target
                    .change()
                    .with("HomeDirectoryType", json!("LOGICAL"))
                    .with("HomeDirectory", json!("/"))
                    .with(
                        "HomeDirectoryMappings",
                        json!([{"Entry": "/", "Target": target.home("admin", n)}]),
                    ),
                "admin chroot",
            ),
            4..=7 => (
                target
                    .change()
                    .with("HomeDirectoryType", json!("PATH"))
                    .with("HomeDirectory", json!(target.home("moved", n))),
                "admin move (drifted)",
            ),
            _ => (
                target
                    .change()
                    .with("HomeDirectoryType", json!("PATH"))
                    .with("HomeDirectory", json!("/acme-sftp")),
                "admin home outside the roots",
            ),
        };
        if rng.f64() < 0.25 {
            let listing = match target {
                Target::User(_) => "ListUsers",
                Target::Access(_) => "ListAccesses",
            };
            soak.event(&format!("{kind}, after the next {listing}"));
            soak.standin.interleave(Interleave::on(listing, change));
        } else {
            soak.event(kind);
            if let Err(e) = soak.standin.apply_change(&change) {
                soak.tally
                    .violation(format!("the administrator's change failed: {e}"));
            }
        }
        pause(&mut rng, 100, 300).await;
    }
}

/// CloudTrail records of user updates, naming a home that is long gone (the record is
/// older than the state), now and then for a server outside the allowed ones.
async fn trail_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    while soak.running() {
        let user = pick(&mut rng, &soak.users).clone();
        let server = if rng.f64() < 0.1 {
            OUTSIDE_SERVER
        } else {
            USERS_SERVER
        };
        let record = soak.trail_record(server, user.name(), &user.home("old", 0));
        soak.event("CloudTrail record");
        let process = pick(&mut rng, &soak.auto);
        if let Some(r) = soak.invoke_async(process, &record, None).await {
            soak.tally.bump(format!(
                "CloudTrail {}",
                r["Status"].as_str().unwrap_or("?")
            ));
        }
        pause(&mut rng, 150, 400).await;
    }
}

/// Audits with `Fix` through the queue; some invocations cut short, so runs continue
/// through the queue. A run whose listing failed is resumed by hand (as a scheduler's
/// next run would).
async fn audit_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    while soak.running() {
        let server = if rng.bool() {
            USERS_SERVER
        } else {
            ACCESS_SERVER
        };
        let mut event = json!({"Action": "Audit", "ServerId": server, "Fix": true});
        soak.event("audit with Fix");
        for _ in 0..5 {
            let process = pick(&mut rng, &soak.auto);
            let deadline = maybe_short(&mut rng, 0.3, 1_000, 3_000);
            let Some(r) = soak.invoke(process, &event, deadline).await else {
                break;
            };
            soak.tally
                .bump(format!("audit {}", r["Status"].as_str().unwrap_or("?")));
            match (&r["Continuation"], &r["ContinuationQueued"]) {
                (Value::Null, _) | (_, Value::Bool(true)) => break,
                (next, _) => event = next.clone(),
            }
        }
        pause(&mut rng, 2_500, 5_000).await;
    }
}

/// Random faults on the stand-in: throttles (with `RetryAfterSeconds`), 500s, 503s,
/// dropped connections and slow answers, each for the next one or two matching calls.
async fn fault_actor(soak: Arc<Soak>, mut rng: fastrand::Rng) {
    const OPERATIONS: [Option<&str>; 7] = [
        None,
        Some("DescribeUser"),
        Some("UpdateUser"),
        Some("ListUsers"),
        Some("DescribeAccess"),
        Some("UpdateAccess"),
        Some("ListAccesses"),
    ];
    while soak.running() {
        let (fault, name) = match rng.u8(..20) {
            0..=5 => (Fault::Throttle, "429"),
            6..=8 => (Fault::Status(500), "500"),
            9..=11 => (Fault::Status(503), "503"),
            12..=14 => (Fault::Drop, "dropped connection"),
            _ => (Fault::DelayMs(rng.u64(50..400)), "added latency"),
        };
        let mut rule = FaultRule::new(fault, rng.u32(1..3));
        if let Some(op) = pick(&mut rng, &OPERATIONS) {
            rule = rule.on(op);
        }
        soak.tally.bump(format!("faults armed.{name}"));
        soak.standin.add_fault(rule);
        pause(&mut rng, 150, 500).await;
    }
}

/// One receive from the queue, delivered to `process` as Lambda's event source mapping
/// would: the records not reported in `batchItemFailures` are deleted; on no answer,
/// none is. Whether the queue had anything.
async fn consume_once(soak: &Soak, process: &Process, deadline: Option<Duration>) -> bool {
    let got = soak
        .sqs
        .receive_message()
        .queue_url(&soak.queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await;
    let messages = match got {
        Ok(g) => g.messages.unwrap_or_default(),
        Err(e) => {
            soak.tally.violation(format!("receive failed: {e}"));
            return false;
        }
    };
    if messages.is_empty() {
        return false;
    }
    {
        let mut received = soak.received.lock().unwrap_or_else(|p| p.into_inner());
        for m in &messages {
            received.insert(m.message_id().unwrap_or_default().to_owned());
        }
    }
    soak.tally
        .add("SQS records delivered", messages.len() as u64);
    let before = soak.standin.request_count();
    let Some(reply) = soak
        .invoke(process, &soak.sqs_batch(&messages), deadline)
        .await
    else {
        return true;
    };
    let failed: HashSet<&str> = reply["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    soak.tally
        .add("SQS records reported failed", failed.len() as u64);
    let window = soak.standin.requests_from(before);
    let mut done = Vec::new();
    for m in &messages {
        let id = m.message_id().unwrap_or_default();
        if failed.contains(id) {
            continue;
        }
        if let Ok(body) = serde_json::from_str::<Value>(m.body().unwrap_or_default())
            && body["Action"] == "Reconcile"
            && !read_in(&window, process.key, &body)
        {
            soak.tally.violation(format!(
                "{id} reported done without a read of its target: {body}"
            ));
        }
        done.push(m);
    }
    for chunk in done.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        match soak
            .sqs
            .delete_message_batch()
            .queue_url(&soak.queue)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(_) => {
                let mut deleted = soak.deleted.lock().unwrap_or_else(|p| p.into_inner());
                for m in chunk {
                    deleted.insert(m.message_id().unwrap_or_default().to_owned());
                }
            }
            Err(e) => soak.tally.violation(format!("delete failed: {e}")),
        }
    }
    true
}

/// Whether `window` holds an answered `Describe*` of the command's target signed `key`.
fn read_in(window: &[Recorded], key: &str, command: &Value) -> bool {
    window.iter().any(|r| {
        r.access_key.as_deref() == Some(key)
            && r.succeeded()
            && r.operation.starts_with("Describe")
            && r.body["ServerId"] == command["ServerId"]
            && (r.body["UserName"] == command["UserName"]
                || (r.body["ExternalId"] == command["ExternalId"]
                    && !command["ExternalId"].is_null()))
    })
}

async fn consumer_actor(soak: Arc<Soak>, index: usize, mut rng: fastrand::Rng) {
    while soak.running() {
        let deadline = maybe_short(&mut rng, 0.25, 800, 3_000)
            .or(Some(Duration::from_secs(VISIBILITY_SECONDS - 2)));
        consume_once(&soak, &soak.auto[index], deadline).await;
    }
}

/// The population: the demo's fleet, plus soak users (drifted, chrooted, needing a
/// person) and accesses on the directory server.
fn seed(users: usize, accesses: usize) -> (Value, Vec<Target>, Vec<Target>) {
    let mut seed = read_json("demo/seed.json");
    let mut soak_users = Vec::new();
    let mut soak_accesses = Vec::new();
    for server in seed["Servers"].as_array_mut().expect("Servers") {
        match server["ServerId"].as_str() {
            Some(USERS_SERVER) => {
                let list = server["Users"].as_array_mut().expect("Users");
                for i in 0..users {
                    let name = format!("soak-{i:03}");
                    let home = format!("/acme-sftp/home/{name}");
                    list.push(match i % 3 {
                        0 => json!({"UserName": name, "HomeDirectoryType": "PATH",
                                    "HomeDirectory": home, "Role": ROLE}),
                        1 => json!({"UserName": name, "HomeDirectoryType": "LOGICAL",
                                    "HomeDirectory": "/",
                                    "HomeDirectoryMappings": [{"Entry": "/", "Target": home}],
                                    "Role": ROLE}),
                        _ => json!({"UserName": name, "HomeDirectoryType": "PATH",
                                    "HomeDirectory": "/acme-sftp", "Role": ROLE}),
                    });
                    soak_users.push(Target::User(name));
                }
            }
            Some(ACCESS_SERVER) => {
                let list = server["Accesses"].as_array_mut().expect("Accesses");
                for i in 0..accesses {
                    let id = format!("{SID}{}", 2000 + i);
                    list.push(json!({"ExternalId": id, "HomeDirectoryType": "PATH",
                        "HomeDirectory": format!("/acme-sftp/groups/{}", 2000 + i), "Role": ROLE}));
                    soak_accesses.push(Target::Access(id));
                }
            }
            _ => {}
        }
    }
    (seed, soak_users, soak_accesses)
}

/// Every audited target (the demo's and the soak's) with its seeded home.
fn initial_homes(seed: &Value) -> BTreeMap<Target, Home> {
    let mut homes = BTreeMap::new();
    for server in seed["Servers"].as_array().into_iter().flatten() {
        let (list, user) = match server["ServerId"].as_str() {
            Some(USERS_SERVER) => ("Users", true),
            Some(ACCESS_SERVER) => ("Accesses", false),
            _ => continue,
        };
        for entry in server[list].as_array().into_iter().flatten() {
            let target = if user {
                Target::User(entry["UserName"].as_str().unwrap_or_default().to_owned())
            } else {
                Target::Access(entry["ExternalId"].as_str().unwrap_or_default().to_owned())
            };
            homes.insert(target, Home::of(entry));
        }
    }
    homes
}

/// A write to a target, in the state's version order.
struct Write {
    version: u64,
    derived: bool,
    set: Map<String, Value>,
    /// For a derived write: the version its process's last read of the target saw.
    read: Option<u64>,
    /// Who wrote, when it arrived, and (derived) its process's last read's arrival and
    /// the invocation span it fell in: what a violation shows.
    trace: String,
}

/// The writes to each audited target, from the request log and the administrator's
/// changes, in version order. A derived write's read is its process's last `Describe*`
/// of the target, when both arrived within one invocation (`invocations`); none is a
/// blind write.
fn histories(
    requests: &[Recorded],
    changes: &[transfer_standin::AppliedChange],
    invocations: &[(&'static str, u64, u64)],
) -> HashMap<Target, Vec<Write>> {
    // Whether a read and a write arrived in one invocation's span (spans of one
    // process overlap when its invocations queued).
    let one_invocation = |key: &str, read: u64, write: u64| {
        invocations.iter().any(|(k, before, after)| {
            *k == key && *before < read && read < write && write <= *after
        })
    };
    let mut last_read: HashMap<(Target, String), (u64, u64)> = HashMap::new();
    let mut writes: HashMap<Target, Vec<Write>> = HashMap::new();
    for r in requests {
        let (Some(body), Some(version), Some(key)) =
            (r.body.as_object(), r.version, r.access_key.as_ref())
        else {
            continue;
        };
        let server = body
            .get("ServerId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(target) = Target::of(server, body) else {
            continue;
        };
        if r.operation.starts_with("Describe") {
            last_read.insert((target, key.clone()), (version, r.arrival));
        } else if r.operation.starts_with("Update") && r.succeeded() {
            let derived = key.starts_with("AKIDAUTO");
            let last = last_read.get(&(target.clone(), key.clone()));
            let trace = format!(
                "{} {key} arrival {}, last read {last:?}",
                r.operation, r.arrival
            );
            let read = last
                .filter(|(_, at)| one_invocation(key, *at, r.arrival))
                .map(|(v, _)| *v);
            writes.entry(target).or_default().push(Write {
                version,
                derived,
                set: body.clone(),
                read: derived.then_some(read).flatten(),
                trace,
            });
        }
    }
    for c in changes {
        let (Some(version), None) = (c.version, &c.error) else {
            continue;
        };
        let mut body = c.change.set.clone();
        if let Some(u) = &c.change.user_name {
            body.insert("UserName".into(), json!(u));
        }
        if let Some(e) = &c.change.external_id {
            body.insert("ExternalId".into(), json!(e));
        }
        if let Some(target) = Target::of(&c.change.server_id, &body) {
            writes.entry(target).or_default().push(Write {
                version,
                derived: false,
                set: c.change.set.clone(),
                read: None,
                trace: "the administrator".into(),
            });
        }
    }
    for w in writes.values_mut() {
        w.sort_by_key(|w| w.version);
    }
    writes
}

/// Invariant 1 for one target; `Some(true)` when a break is the read → write window's.
fn check_latest(
    target: &Target,
    initial: &Home,
    writes: &[Write],
    now: &Home,
    roots: &[String],
) -> Result<(), (String, bool)> {
    // The state right after the last write that was not a derived fix.
    let last = writes.iter().rposition(|w| !w.derived);
    let mut home = initial.clone();
    for w in &writes[..last.map_or(0, |i| i + 1)] {
        home.merge(&w.set);
    }
    let since = last.map_or(0, |i| writes[i].version);
    let expected = match classify(&home, roots) {
        Class::Chrooted(t) | Class::Drifted(t) => Class::Chrooted(t),
        Class::NeedsAttention => {
            if *now == home {
                return Ok(());
            }
            Class::NeedsAttention
        }
    };
    let actual = classify(now, roots);
    if actual == expected && expected != Class::NeedsAttention {
        return Ok(());
    }
    let later = &writes[last.map_or(0, |i| i + 1)..];
    let windowed = later.iter().any(|w| w.read.is_some_and(|r| r < since));
    let blind = later.iter().any(|w| w.read.is_none());
    Err((
        format!(
            "{target:?}: last intent or change (version {since}) leaves {home:?}, expected {expected:?}, is {now:?}{}",
            if blind {
                "; a derived write with no read before it"
            } else {
                ""
            }
        ),
        windowed && !blind,
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let rng_seed: u64 = var("SOAK_SEED", fastrand::u64(..));
    let max_events: u64 = var("SOAK_MAX_EVENTS", 200_000);
    let binary = std::env::var("SOAK_FUNCTION")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("own path");
            exe.parent()
                .and_then(Path::parent)
                .map(|d| d.join("bootstrap"))
                .expect("target/<profile>/bootstrap")
        });
    let moto = std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT (scripts/soak.sh starts moto)");
    println!(
        "soak: {seconds} s, SOAK_SEED={rng_seed}, at most {max_events} events; {}",
        binary.display()
    );

    let vars = demo_vars();
    let list = |name: &str| -> Vec<String> {
        vars.get(name)
            .unwrap_or_else(|| panic!("{name} in demo/config.env"))
            .split(',')
            .map(|v| v.trim().to_owned())
            .collect()
    };
    let roots = list("HOME_ROOTS");
    let allowed: HashSet<String> = list("ALLOWED_SERVER_IDS").into_iter().collect();
    let (seed_json, users, accesses) = seed(var("SOAK_USERS", 60), var("SOAK_ACCESSES", 12));
    let initial = initial_homes(&seed_json);
    let standin = StandIn::start(&seed_json)
        .await
        .expect("the stand-in starts");

    let run = format!("soak-{}", std::process::id());
    let (sqs, queue, dlq) = moto::moto_queue_with_dlq(&run, MAX_RECEIVES).await;
    sqs.set_queue_attributes()
        .queue_url(&queue)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_SECONDS.to_string(),
        )
        .send()
        .await
        .expect("visibility timeout");
    let with_queue = [
        ("COMMAND_QUEUE_URL", queue.as_str()),
        ("AWS_ENDPOINT_URL_SQS", moto.as_str()),
    ];
    // The directory: a store of its own on moto, users whose membership will churn
    // (Transfer users of the same name, not among the audited targets above: their
    // intent is the directory's, checked on its own), the demo's profiled groups.
    let store = directory::MotoDirectory::new();
    let mut churn_users = Vec::new();
    let mut churn_seed = Vec::new();
    for i in 0..var("SOAK_DIRECTORY_USERS", 8usize) {
        let name = format!("dir-{i:03}");
        churn_users.push((name.clone(), store.user(&name).await));
        churn_seed.push(json!({"UserName": name, "HomeDirectoryType": "PATH",
            "HomeDirectory": format!("/acme-sftp/home/{name}"), "Role": ROLE}));
    }
    standin
        .seed_users(USERS_SERVER, churn_seed)
        .expect("the directory's users on Transfer");
    let mut groups = HashMap::new();
    for g in PROFILED.iter().flatten() {
        groups.insert((*g).to_owned(), store.group(g).await);
    }
    let with_directory = [
        ("IDENTITY_STORE_ID", store.store.clone()),
        ("AWS_ENDPOINT_URL_IDENTITYSTORE", moto.clone()),
    ];
    let start = async |key: &'static str, queue: bool| {
        let mut extra = vec![("AWS_ACCESS_KEY_ID", key)];
        extra.extend(with_directory.iter().map(|(k, v)| (*k, v.as_str())));
        if queue {
            extra.extend(with_queue);
        }
        let function = Function::spawn(&binary, vars.clone(), &standin, &extra).await;
        Process { function, key }
    };
    let intent = start(KEY_INTENT, false).await;
    let guard = start(KEY_GUARD, false).await;
    let mut auto = Vec::new();
    for key in KEY_AUTO {
        auto.push(start(key, true).await);
    }
    let final_process = start(KEY_FINAL, false).await;

    let soak = Arc::new(Soak {
        standin,
        intent,
        guard,
        auto,
        invocations: Mutex::new(Vec::new()),
        sqs,
        queue,
        dlq,
        users,
        accesses,
        end: Instant::now() + Duration::from_secs(seconds),
        stop: AtomicBool::new(false),
        events: AtomicU64::new(0),
        max_events,
        serial: AtomicU64::new(1),
        tally: Tally::default(),
        received: Mutex::new(HashSet::new()),
        deleted: Mutex::new(HashSet::new()),
        api_template: read_json("events/apigw-v2-put-user.json"),
        group_template: read_json("events/eventbridge-group-changed.json"),
        trail_template: read_json("events/cloudtrail-update-user.json"),
        sqs_template: read_json("events/sqs-batch.json"),
        directory: Churn {
            membership: Mutex::new(churn_users.iter().map(|(n, _)| (n.clone(), None)).collect()),
            users: churn_users,
            groups,
            store,
            sent: AtomicU64::new(0),
            trail_template: read_json("events/directory-cloudtrail-create-group-membership.json"),
            okta_template: read_json("events/directory-okta-membership-add.json"),
        },
    });

    // The traffic, concurrently. (Calls before it are the processes' cold-start
    // warm-ups: a DescribeServer each.)
    let before_traffic = soak.standin.request_count();
    let began = Instant::now();
    let mut seeds = fastrand::Rng::with_seed(rng_seed);
    let mut actors = Vec::new();
    macro_rules! actor {
        ($f:expr) => {
            actors.push(tokio::spawn($f(soak.clone(), seeds.fork())))
        };
    }
    actor!(api_actor);
    actor!(guard_actor);
    actor!(group_actor);
    actor!(admin_actor);
    actor!(trail_actor);
    actor!(audit_actor);
    actor!(directory_actor);
    actor!(fault_actor);
    for i in 0..KEY_AUTO.len() {
        actors.push(tokio::spawn(consumer_actor(soak.clone(), i, seeds.fork())));
    }
    for a in actors {
        let _ = a.await;
    }
    let traffic = began.elapsed();
    soak.stop.store(true, Ordering::Relaxed);

    // Quiescence: no more faults; the queue drained (redeliveries and the DLQ's
    // receive count take their visibility timeouts); pending listing rules fired by a
    // final audit with Fix in place, then an audit that only counts.
    soak.standin.set_faults(Faults::default());
    let drain_until =
        Instant::now() + Duration::from_secs(120 + VISIBILITY_SECONDS * MAX_RECEIVES as u64);
    loop {
        let busy = consume_once(&soak, &soak.auto[0], None).await;
        if !busy && moto::in_queue(&soak.sqs, &soak.queue).await == 0 {
            break;
        }
        if Instant::now() > drain_until {
            soak.tally.violation("the queue did not drain".into());
            break;
        }
    }
    let mut final_counts = Map::new();
    for round in 0..4 {
        for server in [USERS_SERVER, ACCESS_SERVER] {
            let fix = json!({"Action": "Audit", "ServerId": server, "Fix": round < 3});
            let Some(r) = soak.invoke(&final_process, &fix, None).await else {
                continue;
            };
            if round == 3 {
                if !r["Continuation"].is_null() {
                    soak.tally
                        .violation(format!("the final audit did not complete: {r}"));
                }
                for (k, v) in r["Counts"].as_object().cloned().unwrap_or_default() {
                    let sum = final_counts.get(&k).and_then(Value::as_u64).unwrap_or(0)
                        + v.as_u64().unwrap_or(0);
                    final_counts.insert(k, json!(sum));
                }
            }
        }
        if round == 2 && soak.standin.pending_interleaves() > 0 {
            soak.tally
                .violation("listing rules still pending after three audits".into());
        }
    }

    // The invariants.
    let requests = soak.standin.requests();
    let changes = soak.standin.changes();
    let tally = &soak.tally;

    // 1. The latest intent kept.
    let invocations = soak
        .invocations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let histories = histories(&requests, &changes, &invocations);
    for (target, writes) in &histories {
        let blind: Vec<&str> = writes
            .iter()
            .filter(|w| w.derived && w.read.is_none())
            .map(|w| w.trace.as_str())
            .collect();
        if !blind.is_empty() {
            tally.violation(format!(
                "latest intent lost: {target:?}: derived writes with no read in their invocation: {blind:?}"
            ));
        }
    }
    let mut recount: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut windowed, mut kept) = (Vec::new(), 0u64);
    for (target, home) in &initial {
        let now = target
            .live(&soak.standin)
            .map(|v| Home::of(&v))
            .unwrap_or_default();
        *recount
            .entry(match classify(&now, &roots) {
                Class::Chrooted(_) => "Chrooted",
                Class::Drifted(_) => "Drifted",
                Class::NeedsAttention => "NeedsAttention",
            })
            .or_default() += 1;
        let writes = histories.get(target).map(Vec::as_slice).unwrap_or_default();
        match check_latest(target, home, writes, &now, &roots) {
            Ok(()) => kept += 1,
            Err((what, true)) => windowed.push(what),
            Err((what, false)) => tally.violation(format!("latest intent lost: {what}")),
        }
    }

    // 5. The directory's intent: each churned user on its final membership's profile.
    let (mut followed, mut strayed) = (0u64, Vec::new());
    for (name, _) in &soak.directory.users {
        let now = soak
            .standin
            .user(USERS_SERVER, name)
            .map(|v| Home::of(&v))
            .unwrap_or_default();
        *recount
            .entry(match classify(&now, &roots) {
                Class::Chrooted(_) => "Chrooted",
                Class::Drifted(_) => "Drifted",
                Class::NeedsAttention => "NeedsAttention",
            })
            .or_default() += 1;
        let want = soak.directory.expected_home(name);
        match classify(&now, &roots) {
            Class::Chrooted(at) if at == want => followed += 1,
            other => strayed.push(format!("{name}: {other:?}, the directory says {want}")),
        }
    }
    for s in &strayed {
        tally.violation(format!("directory intent lost: {s}"));
    }

    // 2. Guardrails.
    let guarded: Vec<String> = requests[before_traffic..]
        .iter()
        .filter(|r| r.access_key.as_deref() == Some(KEY_GUARD))
        .map(|r| format!("{} {}", r.operation, r.body))
        .collect();
    let guard_calls = guarded.len();
    if guard_calls > 0 {
        tally.violation(format!(
            "Transfer calls followed refused requests: {guarded:?}"
        ));
    }
    let mut writes_by = BTreeMap::<String, u64>::new();
    for r in &requests {
        let server = r.body["ServerId"].as_str().unwrap_or_default();
        if !allowed.contains(server) {
            tally.violation(format!(
                "a call to a server not allowed: {} {}",
                r.operation, r.body
            ));
        }
        if r.operation.starts_with("Update") {
            let key = r.access_key.clone().unwrap_or_default();
            *writes_by.entry(key).or_default() += u64::from(r.succeeded());
            let homes = r.body["HomeDirectoryMappings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["Target"].as_str())
                .chain(r.body["HomeDirectory"].as_str().filter(|h| *h != "/"));
            for home in homes {
                let home = home.replace("${transfer:UserName}", "u");
                if !below_a_root(&home, &roots) {
                    tally.violation(format!("a write outside the roots: {}", r.body));
                }
            }
        }
    }

    // 3. Nothing lost.
    let queued: u64 = soak
        .auto
        .iter()
        .flat_map(|p| p.function.log_lines())
        .filter(|l| l["message"] == "audit")
        .map(|l| l["queued"].as_u64().unwrap_or(0) + u64::from(l["continuation_queued"] == true))
        .sum();
    let received = soak
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let deleted = soak
        .deleted
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let dead: HashSet<String> = moto::receive_all(&soak.sqs, &soak.dlq)
        .await
        .iter()
        .filter_map(|m| m.message_id().map(str::to_owned))
        .collect();
    let left = moto::in_queue(&soak.sqs, &soak.queue).await;
    let queued = queued + soak.directory.sent.load(Ordering::Relaxed);
    if received.len() as u64 != queued {
        tally.violation(format!(
            "{queued} messages queued, {} received",
            received.len()
        ));
    }
    let unaccounted: Vec<&String> = received
        .iter()
        .filter(|id| !deleted.contains(*id) && !dead.contains(*id))
        .collect();
    if !unaccounted.is_empty() || left > 0 {
        tally.violation(format!(
            "messages neither done nor dead-lettered: {unaccounted:?}; {left} still in the queue"
        ));
    }

    // 4. The audit's counts against the recount.
    for class in ["Chrooted", "Drifted", "NeedsAttention"] {
        let counted = final_counts.get(class).and_then(Value::as_u64).unwrap_or(0);
        let recounted = recount.get(class).copied().unwrap_or(0);
        if counted != recounted {
            tally.violation(format!(
                "the audit counts {counted} {class}, the state holds {recounted}"
            ));
        }
    }
    if recount.get("Drifted").copied().unwrap_or(0) > 0 {
        tally.violation(format!(
            "drifted targets left after the final fix: {recount:?}"
        ));
    }

    // The figures.
    let mut faults = BTreeMap::<String, u64>::new();
    for r in &requests {
        let name = match (&r.fault, r.throttled) {
            (Some(Fault::Throttle), _) | (None, true) => "429",
            (Some(Fault::Status(500)), _) => "500",
            (Some(Fault::Status(_)), _) => "503",
            (Some(Fault::Drop), _) => "dropped connection",
            (Some(Fault::DelayMs(_)), _) => "added latency",
            (None, false) => continue,
        };
        *faults.entry(name.to_owned()).or_default() += 1;
    }
    let counts = tally
        .counts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let violations = tally
        .violations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let in_window_races = windowed.len();
    let summary = json!({
        "Seconds": seconds,
        "TrafficSeconds": traffic.as_secs_f64(),
        "Seed": rng_seed,
        "Targets": initial.len(),
        "Events": soak.events.load(Ordering::Relaxed),
        "Counts": counts,
        "FaultsAnswered": faults,
        "TransferCalls": requests.len(),
        "WritesByProcess": writes_by,
        "AdministratorChanges": changes.iter().filter(|c| c.error.is_none()).count(),
        "Sqs": {"Queued": queued, "Received": received.len(), "Done": deleted.len(),
                "DeadLettered": dead.len(), "Left": left},
        "FinalAudit": final_counts,
        "Recount": recount,
        "LatestIntentKept": kept,
        "DirectoryUsers": soak.directory.users.len(),
        "DirectoryIntentKept": followed,
        "LostInTheReadWriteWindow": windowed,
        "Violations": violations,
    });
    let _ = std::fs::create_dir_all(root().join("target"));
    let out = root().join("target/soak-summary.json");
    let _ = std::fs::write(
        &out,
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    );

    println!(
        "\n{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    println!("\ninvariants:");
    let line = |ok: bool, what: String| println!("  [{}] {what}", if ok { " ok " } else { "FAIL" });
    let broke = |prefix: &str| violations.iter().any(|v| v.starts_with(prefix));
    line(
        !broke("latest intent lost"),
        format!(
            "latest intent kept: {kept} of {} targets ({in_window_races} lost inside a fix's own read → write window)",
            initial.len()
        ),
    );
    line(
        !broke("a call to a server") && !broke("a write outside") && guard_calls == 0,
        "no call for a refused request, no write outside the allowed servers and roots".into(),
    );
    line(
        !broke("messages")
            && !broke("the queue")
            && !broke("delete")
            && !broke("receive")
            && !violations.iter().any(|v| v.contains("reported done")),
        format!(
            "nothing lost: {queued} queued, {} done, {} dead-lettered, {left} left",
            deleted.len(),
            dead.len()
        ),
    );
    line(
        !broke("the audit counts") && !broke("drifted targets"),
        format!("final audit {final_counts:?} = recount {recount:?}"),
    );
    line(
        !broke("directory intent lost"),
        format!(
            "the directory's intent kept: {followed} of {} churned users on their final membership's profile",
            soak.directory.users.len()
        ),
    );
    println!("summary: {}", out.display());
    if !violations.is_empty() {
        println!("{} violation(s)", violations.len());
        std::process::exit(1);
    }
}
