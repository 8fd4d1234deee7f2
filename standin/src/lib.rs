//! A local stand-in for AWS Transfer Family, for tests and the demo.
//!
//! It speaks Transfer's wire protocol (awsJson1.1: `POST /`, `X-Amz-Target:
//! TransferService.<Op>`, errors as `{"__type": ...}` with the HTTP status the service
//! model binds) on loopback, keeps servers, users and accesses in memory (seeded from
//! JSON), enforces the service model's constraints with the model's own patterns,
//! records every request, and injects faults on demand (throttling, 5xx, latency,
//! dropped connections, per-operation rate limits). It also accepts the PUT of
//! CloudFormation custom-resource responses on any other path and records them.
//!
//! Operations: ListServers, DescribeServer, ListUsers, DescribeUser, UpdateUser,
//! ListAccesses, DescribeAccess, UpdateAccess, and a server's tags: TagResource,
//! UntagResource, ListTagsForResource (DescribeServer answers them as `Tags`). Every field is checked against the model
//! before anything is looked up. Listings come in name order, `MaxResults` (1..1000,
//! default [`DEFAULT_MAX_RESULTS`]) at a time, with an opaque `NextToken` bound to its
//! operation and server while entries remain.
//!
//! # Seed
//!
//! ```json
//! {"Servers": [{
//!   "ServerId": "s-0123456789abcdef0",
//!   "IdentityProviderType": "SERVICE_MANAGED",  // API_GATEWAY, AWS_DIRECTORY_SERVICE, AWS_LAMBDA
//!   "Domain": "S3",                             // EFS
//!   "DirectoryListingOptimization": "DISABLED", // ENABLED; S3 servers only
//!   "State": "ONLINE",                          // OFFLINE, STARTING, STOPPING, START_FAILED, STOP_FAILED
//!   "EndpointType": "PUBLIC",                   // VPC, VPC_ENDPOINT
//!   "LoggingRole": "arn:aws:iam::111122223333:role/transfer-logging",
//!   "Tags": [{"Key": "transfer-chroot", "Value": "enforce"}],
//!   "Users": [{"UserName": "alice", "HomeDirectoryType": "PATH", "HomeDirectory": "/b/alice"}],
//!   "Accesses": [{"ExternalId": "S-1-5-21-1004336348-1177238915-682003330-1105"}],
//!   "GenerateUsers": {"Count": 100000, "Prefix": "user", "HomeDirectory": "/b/${UserName}"}
//! }]}
//! ```
//!
//! Only `ServerId` is required; the defaults are the first values above, and no
//! `LoggingRole`. Users and accesses are kept as given (DescribeUser/DescribeAccess answer
//! them as stored); names, ids, roles and generated homes must satisfy the model.
//! `GenerateUsers` is a [`GenerateUsers`], or a list of them (a mixed fleet, one prefix
//! per kind of user), each with an optional `Width` (its numbers padded to at least that
//! many digits: one range of a larger fleet, `{"Start": 1, "Count": 900, "Width": 5}`,
//! named as the whole fleet is); [`StandIn::seed_users`] and
//! [`StandIn::generate_users`] add users to a running stand-in.
//!
//! # The Identity Store
//!
//! A seed's top-level `Directory` adds IAM Identity Center's Identity Store on the same
//! listener (`X-Amz-Target: AWSIdentityStore.<Op>`, SigV4 scoped to `identitystore`;
//! [`directory`] has its operations and errors), for `AWS_ENDPOINT_URL_IDENTITYSTORE`:
//!
//! ```json
//! {"Directory": {
//!   "IdentityStoreId": "d-9067a1b2c3",
//!   "Users": [{"UserName": "alice", "DisplayName": "Alice"}],
//!   "GenerateUsers": [{"Count": 50000, "Prefix": "drift"}],
//!   "Groups": [{"DisplayName": "sftp-finance", "Members": ["alice"],
//!               "GenerateMembers": [{"Prefix": "drift", "Count": 10000}]}]}}
//! ```
//!
//! `Users` keep their other attributes as given; `GenerateUsers` names users as a
//! server's `GenerateUsers` does (same `Count`, `Prefix`, `Start`, `Width`: both fleets
//! can share names), with no other attribute; a group's `GenerateMembers` names the
//! directory's generated users of that prefix (`Count` of them from `Start`, padded as
//! those users are). Ids are made from the store's id and each entity's place, so the
//! same seed gives the same ids. Its requests are logged as `identitystore:<Op>`
//! (never mixed with Transfer's own `ListUsers`); a [`RateLimit`] on `identitystore:*`
//! meters them together (IAM Identity Center's collective limit) and `*` does not; a
//! [`FaultRule`] reaches them only when it names one (`identitystore:ListUsers`) or
//! `identitystore:*`; the latency setting and the peak are Transfer's only.
//! [`StandIn::add_member`], [`StandIn::remove_member`], [`StandIn::directory_calls`] and
//! their neighbours change and read it from a test.
//!
//! # Control plane
//!
//! Under `/_standin/`: `GET requests | responses | state | peak | faults | interleave |
//! changes | directory` (`interleave`: the pending rules, each with its `Remaining`
//! answers to go; `changes`: the [`AppliedChange`] log; `directory`: the Identity
//! Store's id, user count, groups with their member counts, and `Calls` by operation);
//! `POST directory/membership` (`{"Group", "UserName", "Member": true|false}`); `POST faults`
//! (a [`Faults`]: rules, latency and [`RateLimit`]s), `POST rate-limits` (a list of
//! [`RateLimit`]: the rate limits only; `"Operation": "*"` is one bucket shared by every
//! operation), `POST users` (`{"ServerId", "Users": [..],
//! "Generate": {..}}`), `POST interleave` (an [`Interleave`] rule), `POST change` (a
//! [`Change`], applied now; 400 with the reason when it cannot be), `POST clear` (requests,
//! responses, the change log, the peak).
//!
//! # Interleaving writers
//!
//! Transfer has no conditional update: between the function's DescribeUser and its
//! UpdateUser, an administrator (or another tool) may change the same user, and the
//! function's write then lands on state it never read. An [`Interleave`] rule stages
//! exactly that: its [`Change`] is applied right after the `after`-th successful answer
//! to its operation (for one subject, if given), once. The answer itself is computed
//! before the change (the client reads the old state) and the change is applied before
//! the answer is sent, so the client's next request meets the new state. A change is
//! merged and checked as an UpdateUser/UpdateAccess is (it goes through the same code),
//! so it leaves what Transfer would leave. [`StandIn::apply_change`] (`POST change`)
//! applies one at once. Every change applied is logged ([`StandIn::changes`]) with its
//! place in the request log.
//!
//! moto's Transfer backend has no UpdateUser/UpdateAccess, hence this crate.

use std::collections::BTreeMap;
use std::hash::RandomState;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub mod directory;
mod interleave;
mod lists;
mod rate;
pub mod runtime_api;
mod seed;
pub mod tls;
mod token;

pub use interleave::{AppliedChange, Change, Interleave};
pub use lists::DEFAULT_MAX_RESULTS;
pub use rate::RateLimit;
pub use seed::{GenerateUsers, SeedError};

/// The account and region in every ARN the stand-in answers.
const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// HTTP 429 `ThrottlingException` with `RetryAfterSeconds: "1"`, as the service
    /// model binds it.
    Throttle,
    /// This HTTP status with `AccessDeniedException` (4xx), `InternalFailure` (500: the
    /// model binds none of Transfer's errors to 500, this is AWS's common one) or
    /// `ServiceUnavailableException` (any other; the model binds it, and
    /// `InternalServiceError`, to 503).
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Wait this many milliseconds, then answer normally.
    DelayMs(u64),
}

/// A fault applied to the next `times` requests that match `operation` and `subject`
/// (`None` matches any). `operation` is a Transfer operation (`UpdateUser`) or
/// `CfnResponse` for the response sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaultRule {
    #[serde(default)]
    pub operation: Option<String>,
    /// A `UserName` or `ExternalId`.
    #[serde(default)]
    pub subject: Option<String>,
    pub fault: Fault,
    #[serde(default = "forever")]
    pub times: u32,
}

fn forever() -> u32 {
    u32::MAX
}

impl FaultRule {
    pub fn new(fault: Fault, times: u32) -> Self {
        Self {
            operation: None,
            subject: None,
            fault,
            times,
        }
    }
    pub fn on(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }
    pub fn for_subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }
}

/// Fault settings as the control endpoint takes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Faults {
    /// Added to every Transfer request.
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Token buckets by operation (the last one given for an operation applies). A rule's
    /// fault comes first; a signed request that no rule answers takes a token or is
    /// answered `ThrottlingException`.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Recorded {
    pub operation: String,
    pub body: Value,
    /// The injected fault, if one was applied.
    pub fault: Option<Fault>,
    /// The `__type` of an error answered, if any.
    pub error: Option<String>,
    /// SigV4 `Authorization` for service `transfer` was present.
    pub signed: bool,
    /// Answered `ThrottlingException` by a rate limit (not by a fault rule).
    #[serde(default)]
    pub throttled: bool,
    /// The access key id of the SigV4 `Credential`: which client (of several sharing
    /// the stand-in) sent it.
    #[serde(default)]
    pub access_key: Option<String>,
    /// For a user or access answered: the state's version it read (`Describe*`) or
    /// made (`Update*`). Every change to a user or access, by a request or by
    /// [`StandIn::apply_change`], takes the next version under the state's lock, so
    /// versions order every write and say which writes a read saw.
    #[serde(default)]
    pub version: Option<u64>,
    /// Its place in arrival order (the number in its `x-amzn-requestid`); the log is
    /// in the order answers were recorded, which a slow request reaches late.
    #[serde(default)]
    pub arrival: u64,
    /// When it arrived: microseconds since the stand-in started (request rates).
    #[serde(default)]
    pub at_us: u64,
}

impl Recorded {
    /// Was this call answered with success?
    pub fn succeeded(&self) -> bool {
        self.fault
            .as_ref()
            .is_none_or(|f| matches!(f, Fault::DelayMs(_)))
            && self.error.is_none()
    }
}

/// A CloudFormation response PUT received by the sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponsePut {
    pub path: String,
    pub query: Option<String>,
    /// `None` when the header was absent; CloudFormation needs it empty or absent.
    pub content_type: Option<String>,
    pub content_length: Option<usize>,
    pub body: Value,
    /// The body's size in bytes as received.
    pub size: usize,
    /// Whether the sink accepted it (false when a fault answered it).
    pub accepted: bool,
}

/// A server as seeded (see `seed.rs`), as `/_standin/state` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServerState {
    identity_provider_type: String,
    domain: String,
    /// `Some` for S3 servers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    directory_listing_optimization: Option<String>,
    state: String,
    endpoint_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    logging_role: Option<String>,
    users: BTreeMap<String, Map<String, Value>>,
    accesses: BTreeMap<String, Map<String, Value>>,
    /// The server's tags, in the order set (`Tags` in the seed, TagResource).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag>,
}

/// A resource tag, as Transfer's `Tag` shape names its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

/// When the stand-in started (the clock of [`Recorded::at_us`]).
struct Started(Instant);

impl Default for Started {
    fn default() -> Self {
        Self(Instant::now())
    }
}

#[derive(Default)]
struct State {
    servers: Mutex<BTreeMap<String, ServerState>>,
    /// The Identity Store (the seed's `Directory`), if seeded.
    directory: Mutex<Option<directory::Store>>,
    started: Started,
    faults: Mutex<Faults>,
    buckets: Mutex<rate::Buckets>,
    /// Seals NextTokens: one key per stand-in, so another instance's tokens are foreign.
    token_key: RandomState,
    requests: Mutex<Vec<Recorded>>,
    /// Pending [`Interleave`] rules, in the order added.
    interleaves: Mutex<Vec<interleave::Pending>>,
    /// Every [`Change`] applied since the request log was last cleared. Lock order:
    /// `requests`, then `servers`, then `changes`.
    changes: Mutex<Vec<AppliedChange>>,
    responses: Mutex<Vec<ResponsePut>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    next_id: AtomicU64,
    /// The version of the users and accesses: bumped by every change, under `servers`.
    version: AtomicU64,
}

/// Serves one connection (plain TCP, or TLS once accepted) until the client closes it.
pub(crate) async fn serve<IO>(state: Arc<State>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { handle(state, req).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
    /// The optional TLS listener ([`StandIn::listen_tls`]) on the same state.
    tls: Option<(SocketAddr, JoinHandle<()>)>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
        if let Some((_, task)) = &self.tls {
            task.abort();
        }
    }
}

impl StandIn {
    /// Starts on a free loopback port, holding what `seed` holds (format: `seed.rs`;
    /// `demo/seed.json` is one).
    pub async fn start(seed: &Value) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("literal address"), seed).await
    }

    /// Starts on `addr`, which must be a loopback address.
    pub async fn start_on(addr: SocketAddr, seed: &Value) -> std::io::Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::other(
                "the stand-in only listens on loopback",
            ));
        }
        let servers = seed::load(seed)?;
        let store = directory::load(seed)?;
        let state = Arc::new(State::default());
        *lock(&state.servers) = servers;
        *lock(&state.directory) = store;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(shared.clone(), stream));
            }
        });
        Ok(Self {
            addr,
            state,
            task,
            tls: None,
        })
    }

    /// Also serves the same state over TLS on `addr` (loopback only) with `identity`'s
    /// certificate; its endpoint, `https://127.0.0.1:<port>`. The plain listener stays.
    pub async fn listen_tls(
        &mut self,
        addr: SocketAddr,
        identity: &tls::TlsIdentity,
    ) -> std::io::Result<String> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::other(
                "the stand-in only listens on loopback",
            ));
        }
        if let Some((_, old)) = self.tls.take() {
            old.abort();
        }
        let (addr, task) = tls::listen(addr, identity, self.state.clone()).await?;
        self.tls = Some((addr, task));
        Ok(format!("https://{addr}"))
    }

    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL_TRANSFER`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    /// How many requests are in the log (what [`requests`](Self::requests) would return,
    /// without the copy).
    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// How many requests have arrived (logged or still being answered); the next one's
    /// [`Recorded::arrival`] is one more.
    pub fn arrivals(&self) -> u64 {
        self.state.next_id.load(Ordering::SeqCst)
    }

    /// The requests logged from place `first` on (`requests()[first..]`, copying only those).
    pub fn requests_from(&self, first: usize) -> Vec<Recorded> {
        lock(&self.state.requests)
            .get(first..)
            .unwrap_or_default()
            .to_vec()
    }

    /// How many calls to `operation` were answered with success.
    pub fn successful_calls(&self, operation: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.operation == operation && r.succeeded())
            .count()
    }

    /// How many calls to `operation` arrived at all (faulted or not).
    pub fn calls(&self, operation: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.operation == operation)
            .count()
    }

    /// Starts a fresh request log: recorded requests, the [`changes`](Self::changes)
    /// (their `seq` counts requests), the peak and the request id counter
    /// (`standin-00000001` is again the next request's id). Pending interleave rules stay.
    pub fn clear_requests(&self) {
        let mut requests = lock(&self.state.requests);
        requests.clear();
        lock(&self.state.changes).clear();
        drop(requests);
        self.state.peak.store(0, Ordering::SeqCst);
        self.state.next_id.store(0, Ordering::SeqCst);
    }

    /// Replaces every fault setting (rules, latency, rate limits); buckets start full.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
        lock(&self.state.buckets).clear();
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.state.faults).rules.push(rule);
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state.faults).latency_ms = latency.as_millis() as u64;
    }

    /// Limits `operation` to `requests_per_second` with bursts of `burst` (replacing its
    /// limit, if any; its bucket starts full). Panics on a negative or NaN rate.
    pub fn set_rate_limit(&self, operation: &str, requests_per_second: f64, burst: u32) {
        let limit = RateLimit::new(operation, requests_per_second, burst);
        if let Err(e) = limit.check() {
            panic!("{e}");
        }
        let mut faults = lock(&self.state.faults);
        faults.rate_limits.retain(|l| l.operation != operation);
        faults.rate_limits.push(limit);
        lock(&self.state.buckets).clear();
    }

    /// Lifts every rate limit.
    pub fn clear_rate_limits(&self) {
        lock(&self.state.faults).rate_limits.clear();
        lock(&self.state.buckets).clear();
    }

    /// Adds users (JSON objects with a valid `UserName`, kept as given) to `server`; a
    /// name already there is replaced. All are checked before any is added. Returns the
    /// server's user count afterwards.
    pub fn seed_users<I>(&self, server: &str, users: I) -> Result<usize, SeedError>
    where
        I: IntoIterator<Item = Value>,
    {
        add_users(&self.state, server, seed::user_entries(users)?)
    }

    /// Adds the users `spec` generates to `server` (see [`GenerateUsers`]). Returns the
    /// server's user count afterwards.
    pub fn generate_users(&self, server: &str, spec: &GenerateUsers) -> Result<usize, SeedError> {
        add_users(&self.state, server, spec.users()?)
    }

    /// How many users `server` has, if it exists.
    pub fn user_count(&self, server: &str) -> Option<usize> {
        lock(&self.state.servers).get(server).map(|s| s.users.len())
    }

    /// The most Transfer requests ever handled at once since the last clear.
    pub fn peak_concurrency(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    pub fn user(&self, server: &str, name: &str) -> Option<Value> {
        lock(&self.state.servers)
            .get(server)
            .and_then(|s| s.users.get(name))
            .map(|u| Value::Object(u.clone()))
    }

    pub fn access(&self, server: &str, id: &str) -> Option<Value> {
        lock(&self.state.servers)
            .get(server)
            .and_then(|s| s.accesses.get(id))
            .map(|a| Value::Object(a.clone()))
    }

    /// CloudFormation responses received by the sink.
    pub fn responses(&self) -> Vec<ResponsePut> {
        lock(&self.state.responses).clone()
    }

    /// Adds an [`Interleave`] rule: another writer's [`Change`] lands right after the
    /// rule's `after`-th successful answer to its operation. Several may be pending;
    /// each fires once. Panics on a rule `POST /_standin/interleave` would refuse (an
    /// unknown operation, `after` 0, a change that fails the model's field checks).
    pub fn interleave(&self, rule: Interleave) {
        if let Err(e) = interleave::add(&self.state, rule) {
            panic!("{e}");
        }
    }

    /// How many interleave rules have yet to fire.
    pub fn pending_interleaves(&self) -> usize {
        lock(&self.state.interleaves).len()
    }

    /// Applies `change` now, as an administrator acting on the state outside any request
    /// would. An unknown server, user or access, or a change the model refuses, is an
    /// `Err` saying why and changes nothing (nor is it logged in [`changes`](Self::changes)).
    pub fn apply_change(&self, change: &Change) -> Result<(), String> {
        interleave::apply_now(&self.state, change)
    }

    /// Every change applied (by a rule, or [`apply_change`](Self::apply_change)) since the
    /// request log was last cleared, in order; a rule's change that failed carries its error.
    pub fn changes(&self) -> Vec<AppliedChange> {
        lock(&self.state.changes).clone()
    }

    /// How many Identity Store requests for `operation` (`ListUsers` or
    /// `identitystore:ListUsers`; `*` for all of them) arrived, throttled and faulted
    /// ones included.
    pub fn directory_calls(&self, operation: &str) -> usize {
        let op = operation
            .strip_prefix(directory::PREFIX)
            .unwrap_or(operation);
        lock(&self.state.requests)
            .iter()
            .filter_map(|r| r.operation.strip_prefix(directory::PREFIX))
            .filter(|o| op == "*" || *o == op)
            .count()
    }

    /// The seeded Identity Store's id, if the seed has a `Directory`.
    pub fn identity_store_id(&self) -> Option<String> {
        lock(&self.state.directory)
            .as_ref()
            .map(|d| d.id().to_owned())
    }

    fn with_directory<T>(
        &self,
        f: impl FnOnce(&mut directory::Store) -> Result<T, String>,
    ) -> Result<T, String> {
        match lock(&self.state.directory).as_mut() {
            Some(d) => f(d),
            None => Err("the stand-in has no Directory".to_owned()),
        }
    }

    /// Makes directory user `user` a member of group `group` (its `DisplayName`), as a
    /// `CreateGroupMembership` would, without a request; `Ok(false)` when it was one
    /// already.
    pub fn add_member(&self, group: &str, user: &str) -> Result<bool, String> {
        self.with_directory(|d| d.set_member(group, user, true))
    }

    /// Takes directory user `user` out of group `group`, as a `DeleteGroupMembership`
    /// would; `Ok(false)` when it was not a member.
    pub fn remove_member(&self, group: &str, user: &str) -> Result<bool, String> {
        self.with_directory(|d| d.set_member(group, user, false))
    }

    /// Whether `user` is a member of `group` (`None`: either is unknown).
    pub fn is_member(&self, group: &str, user: &str) -> Option<bool> {
        lock(&self.state.directory)
            .as_ref()
            .and_then(|d| d.is_member(group, user))
    }

    /// Adds a directory user (as `CreateUser` would): its `UserId`.
    pub fn add_directory_user(&self, user_name: &str) -> Result<String, String> {
        self.with_directory(|d| d.create_user(user_name))
    }

    /// Adds a directory group (as `CreateGroup` would): its `GroupId`.
    pub fn add_directory_group(&self, display_name: &str) -> Result<String, String> {
        self.with_directory(|d| d.create_group(display_name))
    }

    /// The `UserId` of directory user `user_name`.
    pub fn directory_user_id(&self, user_name: &str) -> Option<String> {
        lock(&self.state.directory)
            .as_ref()
            .and_then(|d| d.user_id_of(user_name))
    }

    /// The `GroupId` of directory group `display_name`.
    pub fn directory_group_id(&self, display_name: &str) -> Option<String> {
        lock(&self.state.directory)
            .as_ref()
            .and_then(|d| d.group_id_of(display_name))
    }

    /// How many members directory group `display_name` has.
    pub fn member_count(&self, display_name: &str) -> Option<usize> {
        lock(&self.state.directory)
            .as_ref()
            .and_then(|d| d.member_count(display_name))
    }
}

type Reply = Response<Full<Bytes>>;

/// STS `GetCallerIdentity`'s answer: the stand-in's own account.
fn caller_identity(arrival: u64) -> Reply {
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>arn:aws:iam::{ACCOUNT}:user/operator</Arn>\
         <UserId>AIDASTANDIN000000001</UserId><Account>{ACCOUNT}</Account>\
         </GetCallerIdentityResult><ResponseMetadata><RequestId>sts-{arrival:08}</RequestId>\
         </ResponseMetadata></GetCallerIdentityResponse>"
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/xml")
        .header("x-amzn-requestid", format!("sts-{arrival:08}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn json_reply(status: StatusCode, body: &Value, request_id: &str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", request_id)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

/// Adds users to a server in one bulk merge, under the lock only for the merge.
fn add_users(state: &State, server: &str, users: seed::Entries) -> Result<usize, SeedError> {
    let mut servers = lock(&state.servers);
    let s = servers
        .get_mut(server)
        .ok_or_else(|| SeedError::new(format!("no server {server} in the stand-in")))?;
    seed::insert_users(&mut s.users, users);
    Ok(s.users.len())
}

fn aws_error(status: u16, kind: &str, message: &str, extra: Value, request_id: &str) -> Reply {
    let mut body = json!({"__type": kind, "Message": message});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    json_reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
        request_id,
    )
}

/// HTTP 429 `ThrottlingException`: `RetryAfterSeconds` in the body (awsJson1.1 carries
/// every member there; the SDK reads it) and as `Retry-After`, where the model's
/// `httpHeader` binding would put it.
fn throttled(retry_after_seconds: u64, request_id: &str) -> Reply {
    let mut reply = aws_error(
        429,
        "ThrottlingException",
        "Rate exceeded",
        json!({"RetryAfterSeconds": retry_after_seconds.to_string()}),
        request_id,
    );
    reply
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    reply
}

/// Takes a token for `operation` when it is rate limited (first from its API's shared
/// bucket, [`rate::EVERY_OPERATION`] for Transfer's, [`rate::EVERY_DIRECTORY_OPERATION`]
/// for the Identity Store's, then from its own); the wait for one otherwise.
fn take_token(state: &State, operation: &str) -> Result<(), Duration> {
    let limits = lock(&state.faults).rate_limits.clone();
    let now = Instant::now();
    let mut buckets = lock(&state.buckets);
    let shared = if operation.starts_with(directory::PREFIX) {
        rate::EVERY_DIRECTORY_OPERATION
    } else {
        rate::EVERY_OPERATION
    };
    for name in [shared, operation] {
        if let Some(limit) = rate::limit_for(&limits, name) {
            buckets.take(&limit, now)?;
        }
    }
    Ok(())
}

/// Takes the first matching rule, consuming one of its `times`.
fn take_fault(state: &State, operation: &str, subject: Option<&str>) -> (Option<Fault>, u64) {
    let mut faults = lock(&state.faults);
    let latency = faults.latency_ms;
    let rule = faults.rules.iter_mut().find(|r| {
        r.times > 0
            && fault_applies(r.operation.as_deref(), operation)
            && r.subject.as_deref().is_none_or(|s| Some(s) == subject)
    });
    let fault = rule.map(|r| {
        if r.times != u32::MAX {
            r.times -= 1;
        }
        r.fault.clone()
    });
    faults.rules.retain(|r| r.times > 0);
    (fault, latency)
}

/// Whether a rule for `rule` (`None`: any) applies to `operation`: a rule without an
/// operation applies to Transfer's operations and the response sink, not to the
/// Identity Store's, which a rule names (`identitystore:ListUsers`) or takes all of
/// (`identitystore:*`).
fn fault_applies(rule: Option<&str>, operation: &str) -> bool {
    let directory = operation.starts_with(directory::PREFIX);
    match rule {
        None => !directory,
        Some(rate::EVERY_DIRECTORY_OPERATION) => directory,
        Some(o) => o == operation,
    }
}

struct InFlight<'a>(&'a State);
impl<'a> InFlight<'a> {
    fn enter(state: &'a State) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now, Ordering::SeqCst);
        Self(state)
    }
}
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

/// A request's whole body; a body cut short reads as empty (the request then fails
/// validation like any other bad input).
pub async fn read_body(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// Which API a request is for (its `X-Amz-Target` prefix).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `TransferService.<Op>`, logged as `<Op>`.
    Transfer,
    /// `AWSIdentityStore.<Op>`, logged as `identitystore:<Op>`.
    IdentityStore,
}

impl Api {
    /// The SigV4 signing name its `Credential` scope must carry.
    fn service(self) -> &'static str {
        match self {
            Self::Transfer => "transfer",
            Self::IdentityStore => "identitystore",
        }
    }

    /// The request id (`x-amzn-RequestId`) of the `arrival`-th request: Transfer's
    /// `standin-00000001`, the Identity Store's a UUID (its model's `RequestId`).
    fn request_id(self, arrival: u64) -> String {
        match self {
            Self::Transfer => format!("standin-{arrival:08}"),
            Self::IdentityStore => format!("5a7d1e00-0000-4000-8000-{arrival:012x}"),
        }
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let target = header("x-amz-target");
    let auth = header("authorization").unwrap_or_default();
    let content_type = header("content-type");
    let content_length = header("content-length").and_then(|l| l.parse().ok());
    let body = read_body(req.into_body()).await;
    let at_us = state.started.0.elapsed().as_micros() as u64;
    let arrival = state.next_id.fetch_add(1, Ordering::SeqCst) + 1;

    if path.starts_with("/_standin/") {
        return Ok(control(&state, &method, &path, &body));
    }
    if method == Method::PUT {
        return response_sink(&state, path, query, content_type, content_length, &body).await;
    }
    let routed = target.as_deref().and_then(|t| {
        t.strip_prefix("TransferService.")
            .map(|op| (Api::Transfer, op.to_owned()))
            .or_else(|| {
                t.strip_prefix("AWSIdentityStore.")
                    .map(|op| (Api::IdentityStore, format!("{}{op}", directory::PREFIX)))
            })
    });
    // STS's GetCallerIdentity (awsQuery: a form body, an XML answer), which the
    // operator's CLI asks to name the account its report is about; no permission
    // needed, so any SigV4 request is answered, with the account the stand-in is.
    if target.is_none()
        && String::from_utf8_lossy(&body).contains("Action=GetCallerIdentity")
        && auth.contains("/sts/aws4_request")
    {
        return Ok(caller_identity(arrival));
    }
    let Some((api, operation)) = routed else {
        return Ok(aws_error(
            400,
            "UnknownOperationException",
            "missing X-Amz-Target: TransferService.<Operation> or AWSIdentityStore.<Operation>",
            json!({}),
            &Api::Transfer.request_id(arrival),
        ));
    };
    let request_id = api.request_id(arrival);
    let scope = format!("/{}/aws4_request", api.service());
    let sigv4 = auth.starts_with("AWS4-HMAC-SHA256");
    let signed = sigv4 && auth.contains(&scope);
    let access_key = auth
        .split_once("Credential=")
        .and_then(|(_, c)| c.split_once('/'))
        .map(|(key, _)| key.to_owned());
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let input = parsed.as_ref().ok().and_then(Value::as_object).cloned();
    let subject = input.as_ref().and_then(|i| match api {
        Api::Transfer => i
            .get("UserName")
            .or_else(|| i.get("ExternalId"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        Api::IdentityStore => directory::subject(i),
    });

    // The peak counts Transfer's requests only (what its concurrency tests measure).
    let _guard = (api == Api::Transfer).then(|| InFlight::enter(&state));
    // The changes of the interleave rules this answer fires (a successful one only).
    let mut fired = Vec::new();
    let (fault, latency) = take_fault(&state, &operation, subject.as_deref());
    let mut record = Recorded {
        operation: operation.clone(),
        body: parsed.as_ref().cloned().unwrap_or(Value::Null),
        fault: fault.clone(),
        error: None,
        signed,
        throttled: false,
        access_key,
        version: None,
        arrival,
        at_us,
    };
    if latency > 0 && api == Api::Transfer {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let reply = match fault {
        Some(Fault::Drop) => {
            lock(&state.requests).push(record);
            return Err(Dropped);
        }
        Some(Fault::Throttle) => Some(match api {
            Api::Transfer => throttled(1, &request_id),
            Api::IdentityStore => directory_throttled(1, &request_id),
        }),
        Some(Fault::Status(status)) => {
            let kind = match (status, api) {
                (500, Api::Transfer) => "InternalFailure",
                (500, Api::IdentityStore) => "InternalServerException",
                // A 4xx that no retry will fix, as AWS answers a role without permission.
                (400..=499, _) => "AccessDeniedException",
                _ => "ServiceUnavailableException",
            };
            Some(api_error(
                api,
                status,
                kind,
                "injected fault",
                json!({}),
                &request_id,
            ))
        }
        Some(Fault::DelayMs(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        None => None,
    };
    let reply = match reply {
        Some(r) => r,
        None if !signed && sigv4 && api == Api::IdentityStore => api_error(
            api,
            403,
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'identitystore'.",
            json!({}),
            &request_id,
        ),
        None if !signed => api_error(
            api,
            403,
            "MissingAuthenticationTokenException",
            &format!(
                "Request is missing a SigV4 Authorization header for service {}",
                api.service()
            ),
            json!({}),
            &request_id,
        ),
        None => match (take_token(&state, &operation), input) {
            (Err(wait), _) => {
                record.throttled = true;
                record.error = Some("ThrottlingException".into());
                match api {
                    Api::Transfer => throttled(rate::retry_after_seconds(wait), &request_id),
                    Api::IdentityStore => {
                        directory_throttled(rate::retry_after_seconds(wait), &request_id)
                    }
                }
            }
            (Ok(()), None) => api_error(
                api,
                400,
                "SerializationException",
                "request body is not a JSON object",
                json!({}),
                &request_id,
            ),
            (Ok(()), Some(input)) => {
                let answer = match api {
                    Api::Transfer => operate(&state, &operation, &input),
                    Api::IdentityStore => {
                        let op = &operation[directory::PREFIX.len()..];
                        directory::operate(&state, op, &input).map(|b| (b, None))
                    }
                };
                match answer {
                    Ok((body, version)) => {
                        record.version = version;
                        // The answer holds the state before the change; the change lands
                        // below, before the answer leaves.
                        if api == Api::Transfer {
                            fired = interleave::count(&state, &operation, subject.as_deref());
                        }
                        json_reply(StatusCode::OK, &body, &request_id)
                    }
                    Err(e) => {
                        record.error = Some(e.kind.to_owned());
                        api_error(api, e.status, e.kind, &e.message, e.extra, &request_id)
                    }
                }
            }
        },
    };
    if record.fault.is_some() && !matches!(record.fault, Some(Fault::DelayMs(_))) {
        record.error = match &record.fault {
            Some(Fault::Throttle) => Some("ThrottlingException".into()),
            Some(Fault::Status(s)) => Some(format!("HTTP {s}")),
            _ => None,
        };
    }
    if !signed && record.error.is_none() && record.fault.is_none() {
        record.error = Some(
            if sigv4 && api == Api::IdentityStore {
                "InvalidSignatureException"
            } else {
                "MissingAuthenticationTokenException"
            }
            .into(),
        );
    }
    interleave::record(&state, record, fired);
    Ok(reply)
}

/// An error answer of `api`: Transfer's as it always was; the Identity Store's with its
/// `RequestId` in the body and `x-amzn-ErrorType`, as the service sends them.
fn api_error(
    api: Api,
    status: u16,
    kind: &str,
    message: &str,
    extra: Value,
    request_id: &str,
) -> Reply {
    match api {
        Api::Transfer => aws_error(status, kind, message, extra, request_id),
        Api::IdentityStore => {
            let mut extra = extra;
            if let Value::Object(o) = &mut extra {
                o.insert("RequestId".into(), json!(request_id));
            }
            let mut reply = aws_error(status, kind, message, extra, request_id);
            if let Ok(v) = HeaderValue::from_str(kind) {
                reply.headers_mut().insert("x-amzn-errortype", v);
            }
            reply
        }
    }
}

/// The Identity Store's `ThrottlingException`: HTTP 400 (its model binds no other
/// status), `RetryAfterSeconds` an integer in the body, and `Retry-After`.
fn directory_throttled(retry_after_seconds: u64, request_id: &str) -> Reply {
    let mut reply = api_error(
        Api::IdentityStore,
        400,
        "ThrottlingException",
        "Rate exceeded",
        json!({"RetryAfterSeconds": retry_after_seconds}),
        request_id,
    );
    reply
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    reply
}

async fn response_sink(
    state: &State,
    path: String,
    query: Option<String>,
    content_type: Option<String>,
    content_length: Option<usize>,
    body: &Bytes,
) -> Result<Reply, Dropped> {
    let (fault, _) = take_fault(state, "CfnResponse", None);
    let mut put = ResponsePut {
        path,
        query,
        content_type,
        content_length,
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        size: body.len(),
        accepted: false,
    };
    let status = match fault {
        Some(Fault::Drop) => {
            lock(&state.responses).push(put);
            return Err(Dropped);
        }
        Some(Fault::Status(s)) => {
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Some(Fault::Throttle) => StatusCode::SERVICE_UNAVAILABLE,
        Some(Fault::DelayMs(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        }
        None => StatusCode::OK,
    };
    put.accepted = status == StatusCode::OK;
    lock(&state.responses).push(put);
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default())
}

/// A membership change on the control plane: `{"Group": "sftp-finance", "UserName":
/// "alice", "Member": true}` (`false` takes the user out).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Membership {
    group: String,
    user_name: String,
    member: bool,
}

/// A user-seeding request on the control plane: `Users` as given, then `Generate`d ones.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SeedUsers {
    server_id: String,
    #[serde(default)]
    users: Vec<Value>,
    /// A [`GenerateUsers`], with an optional `Width` as in a seed.
    #[serde(default)]
    generate: Option<Value>,
}

fn seed_users_request(state: &State, body: &Bytes) -> Result<Value, String> {
    let req: SeedUsers = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut users = seed::user_entries(req.users).map_err(|e| e.to_string())?;
    if let Some(spec) = req.generate {
        let (spec, width) = seed::generate_spec(spec).map_err(|e| e.to_string())?;
        users.extend(spec.users_padded(width).map_err(|e| e.to_string())?);
    }
    let added = users.len();
    let count = add_users(state, &req.server_id, users).map_err(|e| e.to_string())?;
    Ok(json!({"Added": added, "UserCount": count}))
}

fn check_limits(limits: &[RateLimit]) -> Result<(), String> {
    limits.iter().try_for_each(RateLimit::check)
}

/// The control plane for out-of-process users (the demo, the benchmark); the crate
/// documentation lists its paths.
fn control(state: &State, method: &Method, path: &str, body: &Bytes) -> Reply {
    let ok = |v: Value| json_reply(StatusCode::OK, &v, "control");
    let bad = |e: String| json_reply(StatusCode::BAD_REQUEST, &json!({"error": e}), "control");
    match (method, path) {
        (&Method::GET, "/_standin/requests") => ok(json!(*lock(&state.requests))),
        (&Method::GET, "/_standin/responses") => ok(json!(*lock(&state.responses))),
        (&Method::GET, "/_standin/state") => ok(json!(*lock(&state.servers))),
        (&Method::GET, "/_standin/peak") => ok(json!({"Peak": state.peak.load(Ordering::SeqCst)})),
        (&Method::GET, "/_standin/faults") => ok(json!(*lock(&state.faults))),
        (&Method::POST, "/_standin/faults") => match serde_json::from_slice::<Faults>(body)
            .map_err(|e| e.to_string())
            .and_then(|f| check_limits(&f.rate_limits).map(|()| f))
        {
            Ok(f) => {
                *lock(&state.faults) = f;
                lock(&state.buckets).clear();
                ok(json!({"ok": true}))
            }
            Err(e) => bad(e),
        },
        (&Method::POST, "/_standin/rate-limits") => {
            match serde_json::from_slice::<Vec<RateLimit>>(body)
                .map_err(|e| e.to_string())
                .and_then(|l| check_limits(&l).map(|()| l))
            {
                Ok(limits) => {
                    lock(&state.faults).rate_limits = limits;
                    lock(&state.buckets).clear();
                    ok(json!({"ok": true}))
                }
                Err(e) => bad(e),
            }
        }
        (&Method::POST, "/_standin/users") => match seed_users_request(state, body) {
            Ok(v) => ok(v),
            Err(e) => bad(e),
        },
        (&Method::GET, "/_standin/interleave") => ok(json!(*lock(&state.interleaves))),
        (&Method::POST, "/_standin/interleave") => match serde_json::from_slice(body)
            .map_err(|e| e.to_string())
            .and_then(|rule| interleave::add(state, rule))
        {
            Ok(()) => ok(json!({"ok": true})),
            Err(e) => bad(e),
        },
        (&Method::GET, "/_standin/changes") => ok(json!(*lock(&state.changes))),
        (&Method::GET, "/_standin/directory") => match lock(&state.directory).as_ref() {
            Some(d) => {
                let mut summary = d.summary();
                let mut calls = Map::new();
                for r in lock(&state.requests).iter() {
                    if let Some(op) = r.operation.strip_prefix(directory::PREFIX) {
                        let n = calls.entry(op).or_insert(json!(0));
                        *n = json!(n.as_u64().unwrap_or(0) + 1);
                    }
                }
                summary["Calls"] = Value::Object(calls);
                ok(summary)
            }
            None => bad("the stand-in has no Directory".into()),
        },
        (&Method::POST, "/_standin/directory/membership") => {
            match serde_json::from_slice::<Membership>(body)
                .map_err(|e| e.to_string())
                .and_then(|m| match lock(&state.directory).as_mut() {
                    Some(d) => d.set_member(&m.group, &m.user_name, m.member),
                    None => Err("the stand-in has no Directory".into()),
                }) {
                Ok(changed) => ok(json!({"Changed": changed})),
                Err(e) => bad(e),
            }
        }
        (&Method::POST, "/_standin/change") => match serde_json::from_slice(body)
            .map_err(|e| e.to_string())
            .and_then(|change| interleave::apply_now(state, &change))
        {
            Ok(()) => ok(json!({"ok": true})),
            Err(e) => bad(e),
        },
        (&Method::POST, "/_standin/clear") => {
            let mut requests = lock(&state.requests);
            requests.clear();
            lock(&state.changes).clear();
            drop(requests);
            lock(&state.responses).clear();
            state.peak.store(0, Ordering::SeqCst);
            ok(json!({"ok": true}))
        }
        _ => json_reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown control path"}),
            "control",
        ),
    }
}

/// An error answer: the HTTP status is the one the service model binds to `kind`.
struct ApiError {
    status: u16,
    kind: &'static str,
    message: String,
    extra: Value,
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 400,
        kind: "InvalidRequestException",
        message: message.into(),
        extra: json!({}),
    }
}

fn serialization(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 400,
        kind: "SerializationException",
        message: message.into(),
        extra: json!({}),
    }
}

fn not_found(kind: &str, name: &str) -> ApiError {
    ApiError {
        status: 404,
        kind: "ResourceNotFoundException",
        message: format!("Unknown {}: {name}", kind.to_lowercase()),
        extra: json!({"Resource": name, "ResourceType": kind}),
    }
}

fn user_arn(server: &str, name: &str) -> String {
    format!("arn:aws:transfer:{REGION}:{ACCOUNT}:user/{server}/{name}")
}

// The service model's patterns (API 2018-11-05). Java's `\w`/`\d`/`\s` are ASCII and
// its `.` excludes line terminators; the classes below say exactly that.
const JAVA_DOT: &str = r"[^\n\r\u{85}\u{2028}\u{2029}]";
pub static SERVER_ID: LazyLock<Regex> = LazyLock::new(|| re(r"s-([0-9a-f]{17})"));
pub static USER_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Za-z0-9_][A-Za-z0-9_@.-]{2,99}"));
pub static EXTERNAL_ID: LazyLock<Regex> = LazyLock::new(|| re(r"S-1-[0-9-]+"));
pub static HOME_DIRECTORY: LazyLock<Regex> = LazyLock::new(|| re(&format!("(|/{JAVA_DOT}*)")));
pub static MAP_PATH: LazyLock<Regex> = LazyLock::new(|| re(&format!("/{JAVA_DOT}*")));
pub static ROLE: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"arn:{JAVA_DOT}*role/[^ \t\n\x0B\x0C\r]+")));

/// Compiles the service model's patterns now, and runs each once, instead of on the
/// first request that needs it: the first call a benchmark times then costs the
/// stand-in what later ones do (the binary calls it at start; tests need not).
pub fn compile_patterns() {
    for (pattern, sample) in [
        (&SERVER_ID, "s-0123456789abcdef0"),
        (&USER_NAME, "alice"),
        (
            &EXTERNAL_ID,
            "S-1-5-21-1004336348-1177238915-682003330-1105",
        ),
        (&HOME_DIRECTORY, "/bucket/home/alice"),
        (&MAP_PATH, "/bucket/home/alice"),
        (&ROLE, "arn:aws:iam::111122223333:role/sftp-user"),
    ] {
        let _ = pattern.is_match(sample);
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("service-model pattern compiles")
}

fn check_string(
    input: &Map<String, Value>,
    field: &str,
    required: bool,
    len: (usize, usize),
    pattern: Option<&Regex>,
) -> Result<Option<String>, ApiError> {
    match input.get(field) {
        None if required => Err(invalid(format!("{field} is required"))),
        None => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < len.0 || n > len.1 {
                return Err(invalid(format!(
                    "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length between {} and {}",
                    len.0, len.1
                )));
            }
            if let Some(p) = pattern
                && !p.is_match(s)
            {
                return Err(invalid(format!(
                    "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern"
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(serialization(format!("{field} must be a string"))),
    }
}

fn posix_id(v: &Value) -> bool {
    v.as_u64().is_some_and(|n| n <= 4_294_967_295)
}

/// Applies the model's constraints to the update fields shared by users and accesses.
fn validate_update(input: &Map<String, Value>) -> Result<(), ApiError> {
    check_string(
        input,
        "HomeDirectory",
        false,
        (0, 1024),
        Some(&HOME_DIRECTORY),
    )?;
    check_string(input, "Policy", false, (0, 2048), None)?;
    check_string(input, "Role", false, (20, 2048), Some(&ROLE))?;
    if let Some(t) = input.get("HomeDirectoryType")
        && !matches!(t.as_str(), Some("PATH") | Some("LOGICAL"))
    {
        return Err(invalid("HomeDirectoryType must be PATH or LOGICAL"));
    }
    if let Some(m) = input.get("HomeDirectoryMappings") {
        let list = m
            .as_array()
            .ok_or_else(|| invalid("HomeDirectoryMappings must be a list"))?;
        if list.is_empty() || list.len() > 50_000 {
            return Err(invalid(
                "HomeDirectoryMappings must have 1 to 50000 entries",
            ));
        }
        for entry in list {
            let e = entry
                .as_object()
                .ok_or_else(|| invalid("a mapping must be an object"))?;
            check_string(e, "Entry", true, (0, 1024), Some(&MAP_PATH))?;
            check_string(e, "Target", true, (0, 1024), Some(&MAP_PATH))?;
            if let Some(t) = e.get("Type")
                && !matches!(t.as_str(), Some("FILE") | Some("DIRECTORY"))
            {
                return Err(invalid("mapping Type must be FILE or DIRECTORY"));
            }
        }
    }
    if let Some(p) = input.get("PosixProfile") {
        let ok = p.get("Uid").is_some_and(posix_id)
            && p.get("Gid").is_some_and(posix_id)
            && p.get("SecondaryGids").is_none_or(|g| {
                g.as_array()
                    .is_some_and(|g| g.len() <= 16 && g.iter().all(posix_id))
            });
        if !ok {
            return Err(invalid(
                "PosixProfile: Uid and Gid 0..4294967295, at most 16 SecondaryGids",
            ));
        }
    }
    Ok(())
}

/// The fields an UpdateUser/UpdateAccess (and an [`interleave::Change`]) may set.
const UPDATE_FIELDS: [&str; 6] = [
    "HomeDirectory",
    "HomeDirectoryType",
    "HomeDirectoryMappings",
    "Policy",
    "Role",
    "PosixProfile",
];

/// Merges an update into a stored user/access as Transfer does: given fields replace,
/// absent fields stay (including a stale HomeDirectory when the type changes).
fn merge(stored: &mut Map<String, Value>, input: &Map<String, Value>) -> Result<(), ApiError> {
    for field in UPDATE_FIELDS {
        if let Some(v) = input.get(field) {
            stored.insert(field.to_owned(), v.clone());
        }
    }
    let logical = stored.get("HomeDirectoryType").and_then(Value::as_str) == Some("LOGICAL");
    if !logical && input.contains_key("HomeDirectoryMappings") {
        return Err(invalid(
            "HomeDirectoryMappings require HomeDirectoryType LOGICAL",
        ));
    }
    if !logical {
        stored.remove("HomeDirectoryMappings");
    }
    // Logical directories: a given HomeDirectory must lie in one of the mappings.
    if logical
        && let Some(home) = input.get("HomeDirectory").and_then(Value::as_str)
        && !home.is_empty()
    {
        let entries: Vec<&str> = stored
            .get("HomeDirectoryMappings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("Entry").and_then(Value::as_str))
            .collect();
        let inside = entries.iter().any(|e| {
            *e == "/" || home == *e || home.starts_with(&format!("{}/", e.trim_end_matches('/')))
        });
        if !inside {
            return Err(invalid(
                "HomeDirectory must map to one of the logical HomeDirectoryMappings",
            ));
        }
    }
    Ok(())
}

/// The operations [`operate`] implements (an [`Interleave`] names one of them).
const OPERATIONS: [&str; 12] = [
    "ListServers",
    "DescribeServer",
    "UpdateServer",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "ListUsers",
    "DescribeUser",
    "UpdateUser",
    "ListAccesses",
    "DescribeAccess",
    "UpdateAccess",
];

/// An operation's answer, and the version of the user or access it read or made.
fn operate(
    state: &State,
    operation: &str,
    input: &Map<String, Value>,
) -> Result<(Value, Option<u64>), ApiError> {
    match operation {
        "ListServers" => lists::list_servers(state, input).map(|b| (b, None)),
        "DescribeServer" => lists::describe_server(state, input).map(|b| (b, None)),
        "UpdateServer" => lists::update_server(state, input).map(|b| (b, None)),
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            lists::tags(state, operation, input).map(|b| (b, None))
        }
        "ListUsers" | "ListAccesses" => {
            lists::list_members(state, operation, input).map(|b| (b, None))
        }
        "DescribeUser" | "UpdateUser" | "DescribeAccess" | "UpdateAccess" => {
            member(state, operation, input).map(|(b, v)| (b, Some(v)))
        }
        other => Err(ApiError {
            status: 400,
            kind: "UnknownOperationException",
            message: format!("the stand-in does not implement {other}"),
            extra: json!({}),
        }),
    }
}

/// The checks DescribeUser, UpdateUser, DescribeAccess and UpdateAccess make before
/// anything is looked up (an [`interleave::Change`] is checked with them when its rule is
/// added): the server id and the user name or external id, as given.
fn member_input(operation: &str, input: &Map<String, Value>) -> Result<(String, String), ApiError> {
    let server_id =
        check_string(input, "ServerId", true, (19, 19), Some(&SERVER_ID))?.unwrap_or_default();
    let name = if operation.ends_with("User") {
        check_string(input, "UserName", true, (3, 100), Some(&USER_NAME))?
    } else {
        check_string(input, "ExternalId", true, (1, 256), Some(&EXTERNAL_ID))?
    }
    .unwrap_or_default();
    if operation.starts_with("Update") {
        validate_update(input)?;
    }
    Ok((server_id, name))
}

/// DescribeUser, UpdateUser, DescribeAccess, UpdateAccess: every field is checked
/// before the server, then the user or access, is looked up. An [`interleave::Change`]
/// is applied as the UpdateUser or UpdateAccess it amounts to, through here. With the
/// answer, the state's version read, or made by the update.
fn member(
    state: &State,
    operation: &str,
    input: &Map<String, Value>,
) -> Result<(Value, u64), ApiError> {
    let (server_id, name) = member_input(operation, input)?;
    let user = operation.ends_with("User");
    let update = operation.starts_with("Update");
    let mut servers = lock(&state.servers);
    let server = servers
        .get_mut(&server_id)
        .ok_or_else(|| not_found("Server", &server_id))?;
    let stored = if user {
        server.users.get_mut(&name)
    } else {
        server.accesses.get_mut(&name)
    }
    .ok_or_else(|| not_found(if user { "User" } else { "Access" }, &name))?;
    match (user, update) {
        (true, false) => {
            let mut described = stored.clone();
            described.insert("Arn".into(), json!(user_arn(&server_id, &name)));
            let read = state.version.load(Ordering::SeqCst);
            Ok((json!({"ServerId": server_id, "User": described}), read))
        }
        (false, false) => {
            let read = state.version.load(Ordering::SeqCst);
            Ok((
                json!({"ServerId": server_id, "Access": stored.clone()}),
                read,
            ))
        }
        (_, true) => {
            let mut updated = stored.clone();
            merge(&mut updated, input)?;
            *stored = updated;
            let made = state.version.fetch_add(1, Ordering::SeqCst) + 1;
            let key = if user { "UserName" } else { "ExternalId" };
            Ok((json!({"ServerId": server_id, key: name}), made))
        }
    }
}
