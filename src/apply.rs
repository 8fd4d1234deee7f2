//! The core use case: a validated command in, a structured outcome out.
//! Read the live state, plan, and write only when something differs.

use std::sync::Arc;

use tokio::time::Instant;

use crate::command::{ChrootCommand, Command, Defaults, Unvalidated, parse_command};
use crate::config::Config;
use crate::directory::Directory;
use crate::domain::home::TRANSFER_USER_NAME;
use crate::domain::{FieldError, HomeTemplate, ServerId, TargetKind};
use crate::domain::{Target, storage};
use crate::findings::{Account, Hub};
use crate::folders::{Folder, FolderError, Folders};
use crate::input::CommandInput;
use crate::membership::Memberships;
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome, Rejection, Status};
use crate::plan;
use crate::queue::CommandQueue;
use crate::reports::ReportStore;
use crate::scope::{Scope, Scopes};
use crate::servers::{self, ServerCache};
use crate::transfer::pace::Pacer;
use crate::transfer::{LiveHome, Reply, ServerFacts, StorageDomain, Transfer, TransferError};

/// What goes out: the AWS services the function calls, each behind its port, built
/// once per cold start (main.rs) and shared by every invocation.
pub struct Ports<T> {
    pub transfer: T,
    /// The home-folder check's S3 calls; `None`: no check (a configuration without S3).
    pub folders: Option<Arc<dyn Folders>>,
    /// `COMMAND_QUEUE_URL`'s queue, where an audit's fixes go; `None`: fixed in place.
    pub queue: Option<Arc<dyn CommandQueue>>,
    /// Where findings go (`SECURITY_HUB`); `None`: nowhere.
    pub hub: Option<Arc<Hub>>,
    /// Where a completed audit run's report goes (`REPORT_BUCKET`); `None`: nowhere.
    pub reports: Option<Arc<dyn ReportStore>>,
    /// IAM Identity Center's Identity Store (`IDENTITY_STORE_ID`); `None`: group
    /// membership is what a directory event says.
    pub directory: Option<Arc<dyn Directory>>,
}

impl<T> Ports<T> {
    /// Transfer alone: every optional service off.
    pub fn new(transfer: T) -> Self {
        Self {
            transfer,
            folders: None,
            queue: None,
            hub: None,
            reports: None,
            directory: None,
        }
    }
}

/// What one execution environment learns and keeps between its invocations. Each
/// cache says how long what it holds stays true.
pub struct Environment {
    /// What each server is (`DescribeServer`), kept [`crate::servers::ServerCache`]'s
    /// time.
    pub servers: ServerCache,
    /// The pace of the audit's Transfer calls, learned once per execution environment
    /// (`AUDIT_MAX_RPS` its cap).
    pub pacer: Arc<Pacer>,
    /// The servers it covers and each one's roots (`SERVER_TAG`'s, read again every
    /// `SERVER_TAG_REFRESH_SECONDS`).
    pub scopes: Scopes,
    /// The account and region it runs in, from the first invocation's ARN (the same
    /// for the environment's life).
    pub account: std::sync::OnceLock<Account>,
    /// The directory's profiled groups (a TTL) and an audit run's read of it.
    pub directory: Memberships,
}

/// The use case's dependencies: the configuration, what goes out, and what the
/// execution environment keeps.
pub struct Chroot<T> {
    pub config: Arc<Config>,
    pub ports: Ports<T>,
    pub env: Environment,
}

/// The most a finding's resolution may add to a command (`SECURITY_HUB`).
pub const RESOLVE_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// How a command's resolution reads in Security Hub.
pub const BY_A_COMMAND: &str = "chrooted by a command";

/// What [`Chroot::precheck`] found.
#[derive(Debug)]
pub enum Prechecked {
    /// Admitted already: no lookup needed.
    Admitted(ChrootCommand),
    /// Valid so far: admitted once `server`'s scope is known.
    LookUp {
        server: ServerId,
        identity: Identity,
    },
}

/// Why a command is not applied.
#[derive(Debug)]
pub enum Refused {
    /// Invalid, or refused by a guardrail: no write, and another try gives the same.
    Rejected(Box<Rejection>),
    /// Transfer failed while the server's scope was read (`SERVER_TAG`).
    Failed(Box<Outcome>),
}

impl Refused {
    pub fn into_outcome(self) -> Outcome {
        match self {
            Self::Rejected(r) => Outcome::rejected(*r),
            Self::Failed(o) => *o,
        }
    }
}

impl<T: Transfer> Chroot<T> {
    pub fn new(config: Config, transfer: T) -> Self {
        Self::with_ports(config, Ports::new(transfer))
    }

    /// With every outbound service main.rs built.
    pub fn with_ports(config: Config, ports: Ports<T>) -> Self {
        Self {
            env: Environment {
                pacer: Arc::new(Pacer::new(config.audit_max_rps)),
                servers: ServerCache::new(config.server_facts_ttl),
                scopes: Scopes::new(),
                account: std::sync::OnceLock::new(),
                directory: Memberships::default(),
            },
            config: Arc::new(config),
            ports,
        }
    }

    /// With a store for the audit's reports (`REPORT_BUCKET`).
    pub fn with_reports(mut self, reports: Arc<dyn ReportStore>) -> Self {
        self.ports.reports = Some(reports);
        self
    }

    /// Learns the account and region from an invoked function ARN (every invocation of
    /// an execution environment has the same one).
    pub fn learn(&self, invoked_arn: Option<&str>) {
        if self.env.account.get().is_none()
            && let Some(account) = invoked_arn.and_then(Account::from_function_arn)
        {
            let _ = self.env.account.set(account);
        }
    }

    /// With Security Hub findings (`SECURITY_HUB`).
    pub fn with_hub(mut self, hub: Arc<Hub>) -> Self {
        self.ports.hub = Some(hub);
        self
    }

    /// A target this function chrooted now (`outcome` `Updated`): its Security Hub
    /// finding, if any, resolved, within [`RESOLVE_TIME`] and before `until`. Called once
    /// the outcome is settled, so a slow or failing Security Hub never changes it; one
    /// not resolved here is archived by the next completed audit's sweep.
    pub async fn resolved(
        &self,
        target: &Target,
        outcome: &Outcome,
        how: &str,
        until: Option<Instant>,
    ) {
        let (Some(hub), Some(account), Status::Updated) =
            (&self.ports.hub, self.env.account.get(), outcome.status)
        else {
            return;
        };
        let mut at = Instant::now() + RESOLVE_TIME;
        if let Some(until) = until {
            at = at.min(until);
        }
        if tokio::time::timeout_at(at, hub.resolve(account, target, how))
            .await
            .is_err()
        {
            tracing::warn!(target_resource = %target, "Security Hub: finding not resolved in time (the next audit's sweep archives it)");
        }
    }

    /// A server found on a custom identity provider (`reason`, [`servers::chroots_no_one`]):
    /// a HIGH finding at once, as a log line, a metric and (`SECURITY_HUB`) an active
    /// Security Hub finding on the server; with `custom` false, a server back on a
    /// provider whose users are chrooted: its finding archived.
    pub async fn server_finding(
        &self,
        server: &ServerId,
        facts: &ServerFacts,
        reason: &str,
        custom: bool,
    ) {
        let provider = facts.identity_provider.as_str();
        if custom {
            tracing::error!(
                server = %server,
                identity_provider = provider,
                severity = "HIGH",
                reason = %reason,
                "server finding: per-user chroot cannot be enforced on this server"
            );
            crate::metrics::audit(
                server.as_str(),
                crate::metrics::AuditCounts {
                    custom_identity_provider: 1,
                    ..Default::default()
                },
            );
        }
        let (Some(hub), Some(account)) = (&self.ports.hub, self.env.account.get()) else {
            return;
        };
        if !custom {
            tracing::info!(server = %server, identity_provider = provider, "server on a provider whose users are chrooted: its Security Hub finding, if any, archived");
        }
        let seen = crate::findings::ServerObserved {
            server,
            identity_provider: provider,
            reason,
            custom,
        };
        if tokio::time::timeout(RESOLVE_TIME, hub.server(account, &seen))
            .await
            .is_err()
        {
            tracing::warn!(server = %server, "Security Hub: server finding not sent in time (the next audit sends it)");
        }
    }

    /// What `server` is to the function: allowed, with the configuration that holds
    /// there, or refused and why (no call without `SERVER_TAG`).
    pub async fn scope(&self, server: &ServerId) -> Result<Scope, TransferError> {
        self.env
            .scopes
            .of(
                &self.config,
                &self.ports.transfer,
                &self.env.servers,
                server,
            )
            .await
    }

    /// The servers an audit without `ServerId` covers.
    pub async fn covered_servers(&self) -> Result<Vec<ServerId>, TransferError> {
        self.env
            .scopes
            .servers(&self.config, &self.ports.transfer, &self.env.servers)
            .await
    }

    /// With the command queue an audit sends its fixes to (`COMMAND_QUEUE_URL`).
    pub fn with_queue(mut self, queue: Arc<dyn CommandQueue>) -> Self {
        self.ports.queue = Some(queue);
        self
    }

    /// With the home-folder check's S3 calls (`CHECK_HOME_FOLDERS`).
    pub fn with_folders(mut self, folders: Arc<dyn Folders>) -> Self {
        self.ports.folders = Some(folders);
        self
    }

    /// Opens the connection to Transfer during init, so that the first invocation does
    /// not pay the SDK's first-call set-up (its trust store, the TLS handshake) at its
    /// share of a CPU (docs/PERFORMANCE.md, "The first call over TLS"). The request is
    /// `DescribeServer` of the default server (else the first allowed one), which the
    /// first command to that server needs anyway: its answer fills the cache. Bounded
    /// by `within`; a failure or a timeout is logged and ignored, so a cold start never
    /// fails because Transfer is unreachable (a command then asks again, as always).
    pub async fn warm_up(&self, within: std::time::Duration) {
        let config = &self.config;
        if config.server_tag.is_some() {
            // The tagged servers' read describes each of them: the same connection, and
            // every command's first lookup answered.
            match tokio::time::timeout(within, self.covered_servers()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the tagged servers at cold start failed (ignored)")
                }
                Err(_) => tracing::warn!(
                    timeout_ms = within.as_millis() as u64,
                    "reading the tagged servers at cold start timed out (ignored)"
                ),
            }
            return;
        }
        let Some(server) = config
            .defaults
            .server
            .as_ref()
            .or(config.guardrails.servers.first())
        else {
            return;
        };
        match tokio::time::timeout(within, self.env.servers.facts(&self.ports.transfer, server))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(
                server = %server,
                error = %e,
                "connection warm-up at cold start failed (ignored)"
            ),
            Err(_) => tracing::warn!(
                server = %server,
                timeout_ms = within.as_millis() as u64,
                "connection warm-up at cold start timed out (ignored)"
            ),
        }
    }

    /// Validates `input` and admits it through the guardrails of its server. Without
    /// `SERVER_TAG` no AWS call at all. With it, [`Chroot::precheck`] first; only a
    /// command that passes it looks its server up (the tagged servers, read at most every
    /// `SERVER_TAG_REFRESH_SECONDS`), and is then admitted against that server's roots.
    pub async fn parse(&self, input: &CommandInput) -> Result<ChrootCommand, Refused> {
        let (server, identity) = match self.precheck(input).map_err(Refused::Rejected)? {
            Prechecked::Admitted(command) => return Ok(command),
            Prechecked::LookUp { server, identity } => (server, identity),
        };
        match self.scope(&server).await {
            Ok(Scope::Allowed(on)) => {
                parse_command(input, &on.defaults, &on.guardrails).map_err(Refused::Rejected)
            }
            Ok(Scope::Refused(why)) => Err(Refused::Rejected(Box::new(Rejection::new(
                identity,
                ErrorCode::NotAllowed,
                vec![FieldError::new("ServerId", why)],
            )))),
            Err(e) => Err(Refused::Failed(Box::new(failed(identity, &e)))),
        }
    }

    /// What is known of `input` without a call: every field, and the guardrails that
    /// need no lookup (all of them without `SERVER_TAG`; the list and the role with it).
    pub fn precheck(&self, input: &CommandInput) -> Result<Prechecked, Box<Rejection>> {
        let base = &self.config;
        if base.server_tag.is_none() {
            return parse_command(input, &base.defaults, &base.guardrails)
                .map(Prechecked::Admitted);
        }
        // A home derived before the server's roots are known: any valid one will do to
        // check the fields; the real one is derived from the server's own defaults.
        let probe = Defaults {
            server: base.defaults.server.clone(),
            home_template: base.defaults.home_template.clone().or_else(|| {
                HomeTemplate::parse(
                    "/probe/${UserName}",
                    &["UserName"],
                    None,
                    TargetKind::User,
                    &[],
                )
                .ok()
            }),
        };
        let command = Command::try_from(Unvalidated {
            input,
            defaults: &probe,
        })
        .map_err(Box::new)?;
        let identity = command.identity();
        let server = command.target.server.clone();
        let mut fields = Vec::new();
        if let Some(why) = base.unlisted(&server) {
            fields.push(FieldError::new("ServerId", why));
        }
        if let Some(why) = command
            .settings
            .role
            .as_ref()
            .and_then(|r| base.guardrails.refuses_role(r))
        {
            fields.push(FieldError::new("Role", why));
        }
        if !fields.is_empty() {
            return Err(Box::new(Rejection::new(
                identity,
                ErrorCode::NotAllowed,
                fields,
            )));
        }
        Ok(Prechecked::LookUp { server, identity })
    }

    /// Validates, admits and applies one command as a source read it.
    pub async fn run(&self, input: &CommandInput) -> Outcome {
        match self.parse(input).await {
            Ok(command) => {
                let outcome = self.apply(&command).await;
                self.resolved(&command.target, &outcome, BY_A_COMMAND, None)
                    .await;
                outcome
            }
            Err(refused) => refused.into_outcome(),
        }
    }

    /// Applies a validated command: the server's kind checked (from the cache), then at
    /// most one read and one write of the target.
    pub async fn apply(&self, command: &ChrootCommand) -> Outcome {
        let identity = command.identity();
        let facts = match self.fits_server(command).await {
            Ok(facts) => facts,
            Err(outcome) => return *outcome,
        };
        let live = match self.ports.transfer.describe(&command.target).await {
            Ok(live) => live,
            Err(e) => return failed(identity, &e),
        };
        self.write(command, live, &facts).await
    }

    /// Plans `command` against the live state already read, and writes only when
    /// something differs (not at all in a dry run), after the home-folder check.
    pub async fn write(
        &self,
        command: &ChrootCommand,
        live: Reply<LiveHome>,
        facts: &ServerFacts,
    ) -> Outcome {
        let identity = command.identity();
        let request = plan::desired(command);
        let mut outcome = Outcome::new(Status::Unchanged, identity);
        outcome.changes = plan::changes(&request, &live.value);
        outcome.warnings = plan::warnings(&request, &live.value);
        outcome.warnings.extend(plan::policy_warnings(
            request.settings.policy.as_ref().map(|p| p.as_str()),
            &facts.domain,
        ));
        outcome.request_id = live.request_id;
        if outcome.changes.is_empty() {
            return outcome;
        }
        outcome.request = serde_json::to_value(&request).ok();
        let dry_run = command.dry_run || self.config.dry_run;
        match self.home_folder(command, facts, dry_run).await {
            Ok(Some(warning)) => outcome.warnings.push(warning),
            Ok(None) => {}
            Err(e) => {
                let mut failed = Outcome::failed(outcome.identity.clone(), folder_error(&e));
                failed.changes = outcome.changes;
                failed.request = outcome.request;
                failed.request_id = e.request_id;
                return failed;
            }
        }
        if dry_run {
            outcome.status = Status::Planned;
            return outcome;
        }
        match self.ports.transfer.update(&request).await {
            Ok(reply) => {
                outcome.status = Status::Updated;
                outcome.request_id = reply.request_id.or(outcome.request_id);
                outcome
            }
            Err(e) => {
                let mut failed = failed(outcome.identity.clone(), &e);
                failed.changes = outcome.changes;
                failed.request = outcome.request;
                failed
            }
        }
    }

    /// The home-folder check (see [`crate::folders`]): on an S3 server without directory
    /// listing optimisation, the chroot's folder object must exist. `Ok(Some)` is the
    /// warning for a missing one that is not created.
    async fn home_folder(
        &self,
        command: &ChrootCommand,
        facts: &ServerFacts,
        dry_run: bool,
    ) -> Result<Option<String>, FolderError> {
        let config = &self.config;
        let Some(folders) = &self.ports.folders else {
            return Ok(None);
        };
        if !config.check_home_folders
            || facts.domain != StorageDomain::S3
            || facts.directory_listing_optimization
        {
            return Ok(None);
        }
        // A per-user target (`${transfer:UserName}`) names a folder per member: there is
        // no one object to look for. A target outside HOME_ROOTS (a server's own
        // transfer-chroot:home-roots) is where the deployment grants no S3 access.
        if !config.checks_folder_of(&command.chroot) {
            if command.chroot.as_str().contains(TRANSFER_USER_NAME) {
                return Ok(None);
            }
            return Ok(Some(format!(
                "the home folder of {} was not checked: it is outside HOME_ROOTS, the only \
                 roots the function may read in S3 (make sure it exists unless the server's \
                 DirectoryListingOptimization is enabled)",
                command.chroot
            )));
        }
        let folder = Folder {
            bucket: storage::first_segment(&command.chroot).to_owned(),
            key: storage::folder_key(&command.chroot),
        };
        if folders.exists(&folder).await? {
            return Ok(None);
        }
        if config.create_home_folders && !dry_run {
            folders.create(&folder).await?;
            tracing::info!(folder = %folder, "home folder created");
            return Ok(None);
        }
        let what = if config.create_home_folders {
            "would be created (dry run)"
        } else {
            "is not created (CREATE_HOME_FOLDERS is not true)"
        };
        Ok(Some(format!(
            "the home folder {folder} does not exist and {what}: the user cannot log in until \
             it does (a logical directory's target must exist unless the server's \
             DirectoryListingOptimization is enabled)"
        )))
    }

    /// Refuses a command the server cannot hold (the wrong kind of target, or a target
    /// outside its kind of storage), before any read of the target.
    pub async fn fits_server(&self, command: &ChrootCommand) -> Result<ServerFacts, Box<Outcome>> {
        let identity = command.identity();
        let facts = match self
            .env
            .servers
            .facts(&self.ports.transfer, &command.target.server)
            .await
        {
            Ok(facts) => facts,
            Err(e) => return Err(Box::new(failed(identity, &e))),
        };
        let refused = servers::refusals(&facts, command);
        if refused.is_empty() {
            Ok(facts)
        } else {
            Err(Box::new(Outcome::rejected(Rejection::invalid(
                identity, refused,
            ))))
        }
    }

    /// [`Chroot::run`], giving up on Transfer at `deadline` with a retryable result.
    pub async fn run_before(&self, input: &CommandInput, deadline: Instant) -> Outcome {
        match tokio::time::timeout_at(deadline, self.parse(input)).await {
            Ok(Ok(command)) => {
                let outcome = self.apply_before(&command, deadline).await;
                self.resolved(&command.target, &outcome, BY_A_COMMAND, Some(deadline))
                    .await;
                outcome
            }
            Ok(Err(refused)) => refused.into_outcome(),
            Err(_) => Outcome::out_of_time(crate::outcome::Identity::default()),
        }
    }

    /// [`Chroot::apply`], giving up on Transfer at `deadline` with a retryable result.
    pub async fn apply_before(&self, command: &ChrootCommand, deadline: Instant) -> Outcome {
        // Boxed, so the futures above this one stay small (lambda.rs, `route`).
        tokio::time::timeout_at(deadline, Box::pin(self.apply(command)))
            .await
            .unwrap_or_else(|_| Outcome::out_of_time(command.identity()))
    }

    /// The live settings of a user or access (for read-backs); no write.
    pub async fn inspect(&self, target: &Target) -> Result<Reply<LiveHome>, TransferError> {
        self.ports.transfer.describe(target).await
    }
}

fn folder_error(e: &FolderError) -> ErrorBody {
    let mut body = ErrorBody::new(ErrorCode::Upstream, e.to_string());
    body.retryable = e.retryable;
    body
}

fn failed(identity: Identity, e: &TransferError) -> Outcome {
    let mut outcome = Outcome::failed(identity, ErrorBody::from(e));
    outcome.request_id = e.request_id.clone();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{CommandInput, Reading};
    use crate::outcome::ErrorCode;
    use crate::transfer::memory::MemoryTransfer;
    use crate::transfer::{HomeDirectoryType, TransferErrorKind};
    use serde_json::json;

    const ALICE: &str = "s-0123456789abcdef0/users/alice";

    fn chroot(dry_run: bool) -> Chroot<MemoryTransfer> {
        let config = Config::from_pairs(&[
            ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
            ("HOME_ROOTS", "/bkt/home"),
            ("HOME_TEMPLATE", "/bkt/home/${UserName}"),
            ("DRY_RUN", if dry_run { "true" } else { "false" }),
        ])
        .unwrap();
        let transfer = MemoryTransfer::new().with(
            ALICE.parse().unwrap(),
            LiveHome {
                home_directory: Some("/bkt/home/alice".into()),
                home_directory_type: Some(HomeDirectoryType::Path),
                ..LiveHome::default()
            },
        );
        Chroot::new(config, transfer)
    }

    fn input(v: serde_json::Value) -> CommandInput {
        CommandInput::read(v.as_object().unwrap(), Reading::default())
    }

    fn alice() -> CommandInput {
        input(
            json!({"Action": "UpdateUser", "ServerId": "s-0123456789abcdef0", "UserName": "alice"}),
        )
    }

    fn operations(c: &Chroot<MemoryTransfer>) -> Vec<&'static str> {
        c.ports
            .transfer
            .calls()
            .iter()
            .map(|c| c.operation)
            .collect()
    }

    mod warm_up {
        use super::*;
        use std::time::Duration;

        #[tokio::test]
        async fn it_reads_the_first_server_once_and_the_first_command_reuses_it() {
            let c = chroot(false);
            c.warm_up(Duration::from_secs(1)).await;
            let servers: Vec<String> = c
                .ports
                .transfer
                .server_calls()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            assert_eq!(servers, ["s-0123456789abcdef0"]);
            assert!(operations(&c).is_empty(), "no user or access call");
            let first = c.run(&alice()).await;
            assert_eq!(first.status, Status::Updated, "{first:?}");
            assert_eq!(
                c.ports.transfer.server_calls().len(),
                1,
                "served from the cache"
            );
            assert_eq!(operations(&c), ["DescribeUser", "UpdateUser"]);
        }

        #[tokio::test]
        async fn a_failure_is_ignored_and_not_remembered() {
            let c = chroot(false);
            c.ports
                .transfer
                .fail_next_on("DescribeServer", TransferErrorKind::Unavailable);
            c.warm_up(Duration::from_secs(1)).await;
            // The command asks again and goes through.
            let first = c.run(&alice()).await;
            assert_eq!(first.status, Status::Updated, "{first:?}");
            assert_eq!(c.ports.transfer.server_calls().len(), 2);
        }

        /// A Transfer port that never answers.
        struct Stuck;
        impl crate::transfer::Transfer for Stuck {
            fn describe(
                &self,
                _: &crate::domain::Target,
            ) -> impl Future<Output = Result<crate::transfer::Reply<LiveHome>, TransferError>> + Send
            {
                std::future::pending()
            }
            fn update(
                &self,
                _: &crate::transfer::UpdateRequest,
            ) -> impl Future<Output = Result<crate::transfer::Reply<()>, TransferError>> + Send
            {
                std::future::pending()
            }
            fn describe_server(
                &self,
                _: &crate::domain::ServerId,
            ) -> impl Future<
                Output = Result<
                    crate::transfer::Reply<crate::transfer::ServerFacts>,
                    TransferError,
                >,
            > + Send {
                std::future::pending()
            }
            fn list_servers(
                &self,
                _: Option<&str>,
            ) -> impl Future<
                Output = Result<crate::transfer::Reply<crate::transfer::ServerIds>, TransferError>,
            > + Send {
                std::future::pending()
            }
            fn list(
                &self,
                _: &crate::domain::ServerId,
                _: crate::domain::TargetKind,
                _: Option<&str>,
            ) -> impl Future<
                Output = Result<crate::transfer::Reply<crate::transfer::Page>, TransferError>,
            > + Send {
                std::future::pending()
            }
        }

        #[tokio::test]
        async fn an_unreachable_transfer_costs_the_cold_start_at_most_the_bound() {
            let config = Config::from_pairs(&[
                ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
                ("HOME_ROOTS", "/bkt/home"),
            ])
            .unwrap();
            let c = Chroot::new(config, Stuck);
            let started = std::time::Instant::now();
            c.warm_up(Duration::from_millis(50)).await;
            let waited = started.elapsed();
            assert!(waited >= Duration::from_millis(50), "{waited:?}");
            assert!(waited < Duration::from_secs(5), "{waited:?}");
        }
    }

    #[tokio::test]
    async fn one_read_one_write_then_unchanged() {
        let c = chroot(false);
        let first = c.run(&alice()).await;
        assert_eq!(first.status, Status::Updated, "{first:?}");
        assert_eq!(operations(&c), ["DescribeUser", "UpdateUser"]);
        assert_eq!(
            first.request.as_ref().unwrap()["HomeDirectoryMappings"][0]["Target"],
            "/bkt/home/alice"
        );
        let live = c.ports.transfer.get(&ALICE.parse().unwrap()).unwrap();
        assert_eq!(live.home_directory_type, Some(HomeDirectoryType::Logical));
        assert_eq!(live.home_directory.as_deref(), Some("/"));

        let second = c.run(&alice()).await;
        assert_eq!(second.status, Status::Unchanged);
        assert!(second.changes.is_empty() && second.request.is_none());
        assert_eq!(
            operations(&c),
            ["DescribeUser", "UpdateUser", "DescribeUser"]
        );
    }

    #[tokio::test]
    async fn a_dry_run_plans_and_writes_nothing() {
        for (config_dry, command_dry) in [(true, false), (false, true)] {
            let c = chroot(config_dry);
            let mut i = alice();
            i.dry_run = Some(Ok(command_dry));
            let o = c.run(&i).await;
            assert_eq!(o.status, Status::Planned);
            assert!(o.request.is_some());
            assert_eq!(c.ports.transfer.writes(), 0);
        }
    }

    #[tokio::test]
    async fn a_rejected_command_makes_no_call() {
        let c = chroot(false);
        let o = c
            .run(&input(
                json!({"Action": "UpdateUser", "ServerId": "s-0123456789abcdef0",
                               "UserName": "alice", "HomeDirectory": "/etc/alice"}),
            ))
            .await;
        assert_eq!(o.error_code(), Some(ErrorCode::NotAllowed));
        assert!(c.ports.transfer.calls().is_empty());
    }

    #[tokio::test]
    async fn transfer_errors_are_classified_and_keep_the_plan() {
        let c = chroot(false);
        c.ports.transfer.fail_next(TransferErrorKind::NotFound);
        let o = c.run(&alice()).await;
        assert_eq!(o.error_code(), Some(ErrorCode::NotFound));
        assert_eq!(c.ports.transfer.writes(), 0);

        // The read succeeds, the write fails: the result still shows what it would
        // have changed, and says whether retrying may work.
        for (kind, code, retryable) in [
            (TransferErrorKind::Throttled, ErrorCode::Throttled, true),
            (TransferErrorKind::Unavailable, ErrorCode::Upstream, true),
            (
                TransferErrorKind::InvalidRequest,
                ErrorCode::ValidationFailed,
                false,
            ),
        ] {
            let c = chroot(false);
            c.ports.transfer.fail_next_on("UpdateUser", kind);
            let o = c.run(&alice()).await;
            assert_eq!(o.error_code(), Some(code));
            assert_eq!(o.is_retryable_failure(), retryable);
            assert!(!o.changes.is_empty() && o.request.is_some());
            assert_eq!(operations(&c), ["DescribeUser", "UpdateUser"]);
        }
    }

    #[tokio::test]
    async fn a_deadline_gives_a_retryable_answer() {
        struct Never;
        impl Transfer for Never {
            async fn describe(&self, _: &Target) -> Result<Reply<LiveHome>, TransferError> {
                std::future::pending().await
            }
            async fn update(
                &self,
                _: &crate::transfer::UpdateRequest,
            ) -> Result<Reply<()>, TransferError> {
                std::future::pending().await
            }
            async fn describe_server(
                &self,
                _: &crate::domain::ServerId,
            ) -> Result<Reply<crate::transfer::ServerFacts>, TransferError> {
                std::future::pending().await
            }
            async fn list_servers(
                &self,
                _: Option<&str>,
            ) -> Result<Reply<crate::transfer::ServerIds>, TransferError> {
                std::future::pending().await
            }
            async fn list(
                &self,
                _: &crate::domain::ServerId,
                _: crate::domain::TargetKind,
                _: Option<&str>,
            ) -> Result<Reply<crate::transfer::Page>, TransferError> {
                std::future::pending().await
            }
        }
        let c = Chroot::new(chroot(false).config.as_ref().clone(), Never);
        let o = c
            .run_before(
                &alice(),
                Instant::now() + std::time::Duration::from_millis(20),
            )
            .await;
        assert_eq!(o.error_code(), Some(ErrorCode::Upstream));
        assert!(o.is_retryable_failure());
    }

    mod home_folders {
        use super::*;
        use crate::folders::memory::MemoryFolders;
        use crate::transfer::{IdentityProvider, ServerFacts};

        fn on_s3(
            create: bool,
            optimised: bool,
            folders: MemoryFolders,
        ) -> (Chroot<MemoryTransfer>, Arc<MemoryFolders>) {
            let config = Config::from_pairs(&[
                ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
                ("HOME_ROOTS", "/bkt/home"),
                ("HOME_TEMPLATE", "/bkt/home/${UserName}"),
                ("CREATE_HOME_FOLDERS", if create { "true" } else { "false" }),
            ])
            .unwrap();
            let transfer = MemoryTransfer::new()
                .with(
                    ALICE.parse().unwrap(),
                    LiveHome {
                        home_directory: Some("/bkt/home/alice".into()),
                        home_directory_type: Some(HomeDirectoryType::Path),
                        ..LiveHome::default()
                    },
                )
                .with_server(
                    crate::domain::ServerId::parse("s-0123456789abcdef0").unwrap(),
                    ServerFacts {
                        identity_provider: IdentityProvider::ServiceManaged,
                        domain: crate::transfer::StorageDomain::S3,
                        directory_listing_optimization: optimised,
                        tags: Vec::new(),
                    },
                );
            let folders = Arc::new(folders);
            (
                Chroot::new(config, transfer).with_folders(folders.clone()),
                folders,
            )
        }

        fn ops(f: &MemoryFolders) -> Vec<String> {
            f.calls()
                .iter()
                .map(|(op, folder)| format!("{op} {folder}"))
                .collect()
        }

        #[tokio::test]
        async fn a_missing_folder_warns_and_the_update_is_still_sent() {
            let (c, f) = on_s3(false, false, MemoryFolders::new());
            let o = c.run(&alice()).await;
            assert_eq!(o.status, Status::Updated);
            assert!(
                o.warnings
                    .iter()
                    .any(|w| w.contains("s3://bkt/home/alice/ does not exist")),
                "{o:?}"
            );
            assert_eq!(ops(&f), ["HeadObject s3://bkt/home/alice/"]);
        }

        #[tokio::test]
        async fn a_missing_folder_is_created_before_the_update_when_asked() {
            let (c, f) = on_s3(true, false, MemoryFolders::new());
            let o = c.run(&alice()).await;
            assert_eq!(o.status, Status::Updated);
            assert!(o.warnings.iter().all(|w| !w.contains("s3://")), "{o:?}");
            assert!(f.contains("bkt", "home/alice/"));
            assert_eq!(
                ops(&f),
                [
                    "HeadObject s3://bkt/home/alice/",
                    "PutObject s3://bkt/home/alice/"
                ]
            );
            // A dry run looks, and says what it would do.
            let (c, f) = on_s3(true, false, MemoryFolders::new());
            let mut i = alice();
            i.dry_run = Some(Ok(true));
            let o = c.run(&i).await;
            assert_eq!(o.status, Status::Planned);
            assert!(o.warnings.iter().any(|w| w.contains("would be created")));
            assert_eq!(ops(&f).len(), 1);
        }

        #[tokio::test]
        async fn an_existing_folder_or_an_optimised_server_needs_nothing() {
            let (c, f) = on_s3(true, false, MemoryFolders::new().with("bkt", "home/alice/"));
            assert!(
                c.run(&alice())
                    .await
                    .warnings
                    .iter()
                    .all(|w| !w.contains("s3://"))
            );
            assert_eq!(ops(&f).len(), 1);
            let (c, f) = on_s3(true, true, MemoryFolders::new());
            assert_eq!(c.run(&alice()).await.status, Status::Updated);
            assert!(f.calls().is_empty());
        }

        #[tokio::test]
        async fn an_s3_error_fails_before_the_update_and_says_if_retrying_helps() {
            for retryable in [true, false] {
                let error = crate::folders::FolderError {
                    operation: "HeadObject",
                    folder: "s3://bkt/home/alice/".into(),
                    message: "S3 answered 503 SlowDown".into(),
                    retryable,
                    request_id: Some("s3-req".into()),
                };
                let (c, _) = on_s3(false, false, MemoryFolders::new().failing(error));
                let o = c.run(&alice()).await;
                assert_eq!(o.error_code(), Some(ErrorCode::Upstream));
                assert_eq!(o.is_retryable_failure(), retryable);
                assert!(
                    o.error
                        .as_ref()
                        .unwrap()
                        .message
                        .contains("HeadObject s3://bkt/home/alice/")
                );
                assert_eq!(c.ports.transfer.writes(), 0);
            }
        }
    }
}
