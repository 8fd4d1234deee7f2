//! An in-memory [`Transfer`]: users and accesses in a map, answered at once. For fast
//! unit tests of the use case and of every source, and for benchmarks of the handler's
//! own cost. It records each call and can be told to fail the next ones, so a test can
//! assert exactly which reads and writes were made. The stand-in (`standin/`) is the
//! wire-level double; this one never leaves the process.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use super::{
    HomeDirectoryType, IdentityProvider, LIST_PAGE_SIZE, Listed, LiveHome, LivePosix, Page, Reply,
    ServerFacts, ServerIds, StorageDomain, Transfer, TransferError, TransferErrorKind,
    UpdateRequest,
};
use crate::domain::{ServerId, Target, TargetKind};

/// One call the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `DescribeUser`, `UpdateAccess`, ...
    pub operation: &'static str,
    pub target: Target,
}

#[derive(Debug, Default)]
struct State {
    homes: BTreeMap<Target, LiveHome>,
    /// Servers not named here are service-managed S3 servers (the service's defaults).
    servers: BTreeMap<ServerId, ServerFacts>,
    server_calls: Vec<(&'static str, ServerId)>,
    /// ListServers calls made.
    server_listings: usize,
    calls: Vec<Call>,
    /// Failures handed out to the next calls, in order: for any operation (`None`) or
    /// for the one named.
    failures: VecDeque<(Option<&'static str>, TransferErrorKind)>,
}

#[derive(Debug, Default)]
pub struct MemoryTransfer {
    state: Mutex<State>,
    /// Listing page size (tests use small pages); `None`: the service's 1000.
    page_size: Option<usize>,
}

/// A service-managed S3 server with directory listing optimisation on (no folder
/// check needed): what an unnamed server is.
pub fn default_server() -> ServerFacts {
    ServerFacts {
        identity_provider: IdentityProvider::ServiceManaged,
        domain: StorageDomain::S3,
        directory_listing_optimization: true,
        tags: Vec::new(),
    }
}

fn describe_operation(target: &Target) -> &'static str {
    match target.kind() {
        crate::domain::TargetKind::User => "DescribeUser",
        crate::domain::TargetKind::Access => "DescribeAccess",
    }
}

impl MemoryTransfer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user or access.
    pub fn with(self, target: Target, live: LiveHome) -> Self {
        self.insert(target, live);
        self
    }

    pub fn insert(&self, target: Target, live: LiveHome) {
        self.lock().homes.insert(target, live);
    }

    /// Lists in pages of `size` (to test pagination without 1000 targets).
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = Some(size.max(1));
        self
    }

    /// Sets what `DescribeServer` says of `server`.
    pub fn with_server(self, server: ServerId, facts: ServerFacts) -> Self {
        self.lock().servers.insert(server, facts);
        self
    }

    /// What the fake holds for `target` now.
    pub fn get(&self, target: &Target) -> Option<LiveHome> {
        self.lock().homes.get(target).cloned()
    }

    /// Every call answered so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many `UpdateUser` / `UpdateAccess` calls were made.
    pub fn writes(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation.starts_with("Update"))
            .count()
    }

    /// The next call (of any operation) fails with `kind`; queue several for several.
    pub fn fail_next(&self, kind: TransferErrorKind) {
        self.lock().failures.push_back((None, kind));
    }

    /// The next call of `operation` (`UpdateUser`, ...) fails with `kind`.
    pub fn fail_next_on(&self, operation: &'static str, kind: TransferErrorKind) {
        self.lock().failures.push_back((Some(operation), kind));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; the state is
        // still readable for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call; the failure queued for it, if any.
    fn call(&self, operation: &'static str, target: &Target) -> Option<TransferError> {
        let mut state = self.lock();
        state.calls.push(Call {
            operation,
            target: target.clone(),
        });
        let queued = state
            .failures
            .iter()
            .position(|(op, _)| op.is_none_or(|op| op == operation));
        let (_, kind) = queued.and_then(|i| state.failures.remove(i))?;
        Some(TransferError {
            operation,
            kind,
            code: format!("{kind:?}"),
            message: format!("injected {kind:?}"),
            request_id: Some(format!("memory-{}", state.calls.len())),
            retry_after: None,
            source: None,
        })
    }

    /// Records a server-level call (`DescribeServer`, `ListUsers`, `ListAccesses`); the
    /// failure queued for that operation by name, if any.
    fn server_call(&self, operation: &'static str, server: &ServerId) -> Option<TransferError> {
        let mut state = self.lock();
        state.server_calls.push((operation, server.clone()));
        let queued = state
            .failures
            .iter()
            .position(|(op, _)| *op == Some(operation));
        let (_, kind) = queued.and_then(|i| state.failures.remove(i))?;
        Some(TransferError {
            operation,
            kind,
            code: format!("{kind:?}"),
            message: format!("injected {kind:?}"),
            request_id: None,
            retry_after: None,
            source: None,
        })
    }

    /// Sets `server`'s tags (a TagResource/UntagResource made elsewhere).
    pub fn set_tags(&self, server: &ServerId, tags: &[(&str, &str)]) {
        let mut state = self.lock();
        let facts = state
            .servers
            .entry(server.clone())
            .or_insert_with(default_server);
        facts.tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    /// ListServers calls made so far.
    pub fn server_listings(&self) -> usize {
        self.lock().server_listings
    }

    /// The servers described so far, in order.
    pub fn server_calls(&self) -> Vec<ServerId> {
        self.lock()
            .server_calls
            .iter()
            .filter(|(op, _)| *op == "DescribeServer")
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The listings made so far: (`ListUsers` | `ListAccesses`, server), in order.
    pub fn list_calls(&self) -> Vec<(&'static str, ServerId)> {
        self.lock()
            .server_calls
            .iter()
            .filter(|(op, _)| op.starts_with("List"))
            .cloned()
            .collect()
    }

    fn request_id(&self) -> Option<String> {
        Some(format!("memory-{}", self.lock().calls.len()))
    }
}

fn not_found(operation: &'static str, target: &Target) -> TransferError {
    TransferError {
        operation,
        kind: TransferErrorKind::NotFound,
        code: "ResourceNotFoundException".to_owned(),
        message: format!("Transfer Family: {target} does not exist"),
        request_id: None,
        retry_after: None,
        source: None,
    }
}

impl Transfer for MemoryTransfer {
    async fn describe(&self, target: &Target) -> Result<Reply<LiveHome>, TransferError> {
        let operation = describe_operation(target);
        if let Some(e) = self.call(operation, target) {
            return Err(e);
        }
        match self.get(target) {
            Some(value) => Ok(Reply {
                value,
                request_id: self.request_id(),
            }),
            None => Err(not_found(operation, target)),
        }
    }

    async fn update(&self, request: &UpdateRequest) -> Result<Reply<()>, TransferError> {
        let operation = request.operation();
        if let Some(e) = self.call(operation, &request.target) {
            return Err(e);
        }
        let mut state = self.lock();
        let Some(live) = state.homes.get_mut(&request.target) else {
            return Err(not_found(operation, &request.target));
        };
        // What Transfer does with the request: the chroot replaces the home; settings
        // left out stay as they are.
        live.home_directory_type = Some(HomeDirectoryType::Logical);
        live.home_directory_mappings = request.mappings();
        live.home_directory = Some(request.home_directory.to_owned());
        let settings = &request.settings;
        if let Some(role) = &settings.role {
            live.role = Some(role.as_str().to_owned());
        }
        if let Some(policy) = &settings.policy {
            live.policy = Some(policy.as_str().to_owned());
        }
        if let Some(p) = &settings.posix_profile {
            live.posix_profile = Some(LivePosix {
                uid: p.uid() as i64,
                gid: p.gid() as i64,
                secondary_gids: p.secondary_gids().iter().map(|g| *g as i64).collect(),
            });
        }
        let request_id = Some(format!("memory-{}", state.calls.len()));
        Ok(Reply {
            value: (),
            request_id,
        })
    }

    async fn describe_server(
        &self,
        server: &ServerId,
    ) -> Result<Reply<ServerFacts>, TransferError> {
        let target_like = self.lock().servers.get(server).cloned();
        if let Some(e) = self.server_call("DescribeServer", server) {
            return Err(e);
        }
        Ok(Reply {
            value: target_like.unwrap_or_else(default_server),
            request_id: self.request_id(),
        })
    }

    /// The servers added with [`MemoryTransfer::with_server`], in id order, one page.
    async fn list_servers(
        &self,
        _next_token: Option<&str>,
    ) -> Result<Reply<ServerIds>, TransferError> {
        let items = {
            let mut state = self.lock();
            state.server_listings += 1;
            state.servers.keys().map(ToString::to_string).collect()
        };
        Ok(Reply {
            value: ServerIds {
                items,
                next_token: None,
            },
            request_id: self.request_id(),
        })
    }

    async fn list(
        &self,
        server: &ServerId,
        kind: TargetKind,
        next_token: Option<&str>,
    ) -> Result<Reply<Page>, TransferError> {
        let operation = match kind {
            TargetKind::User => "ListUsers",
            TargetKind::Access => "ListAccesses",
        };
        let start = match next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("memory:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| TransferError {
                    operation,
                    kind: TransferErrorKind::InvalidRequest,
                    code: "InvalidNextTokenException".to_owned(),
                    message: format!("Transfer Family: invalid NextToken {t:?}"),
                    request_id: None,
                    retry_after: None,
                    source: None,
                })?,
        };
        if let Some(e) = self.server_call(operation, server) {
            return Err(e);
        }
        let state = self.lock();
        let all: Vec<Listed> = state
            .homes
            .iter()
            .filter(|(t, _)| t.server == *server && t.kind() == kind)
            .map(|(t, live)| Listed {
                name: t.subject.as_str().to_owned(),
                home: LiveHome {
                    home_directory_mappings: Vec::new(),
                    policy: None,
                    posix_profile: None,
                    ..live.clone()
                },
            })
            .collect();
        let size = self.page_size.unwrap_or(LIST_PAGE_SIZE as usize);
        let end = (start + size).min(all.len());
        Ok(Reply {
            value: Page {
                items: all.get(start..end).unwrap_or_default().to_vec(),
                next_token: (end < all.len()).then(|| format!("memory:{end}")),
            },
            request_id: Some(format!("memory-{}", state.calls.len())),
        })
    }
}
