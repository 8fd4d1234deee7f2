//! The core use case: a validated command in, a structured outcome out.
//! Read the live state, plan, and write only when something differs.

use std::sync::Arc;

use tokio::time::Instant;

use crate::command::{ChrootCommand, parse_command};
use crate::config::Config;
use crate::domain::Target;
use crate::input::CommandInput;
use crate::outcome::{ErrorBody, Identity, Outcome, Rejection, Status};
use crate::plan;
use crate::servers::{self, ServerCache};
use crate::transfer::{LiveHome, Reply, Transfer, TransferError, TransferErrorKind};

/// The function's dependencies: configuration and the Transfer port, built once per
/// cold start and shared by every invocation.
pub struct Chroot<T> {
    pub config: Arc<Config>,
    pub transfer: T,
    /// What each server is (`DescribeServer`, once per execution environment).
    pub servers: ServerCache,
}

impl<T: Transfer> Chroot<T> {
    pub fn new(config: Config, transfer: T) -> Self {
        Self {
            config: Arc::new(config),
            transfer,
            servers: ServerCache::new(),
        }
    }

    /// Validates `input` and admits it through the guardrails (no AWS call).
    pub fn parse(&self, input: &CommandInput) -> Result<ChrootCommand, Box<Rejection>> {
        parse_command(input, &self.config.defaults, &self.config.guardrails)
    }

    /// Validates, admits and applies one command as a source read it.
    pub async fn run(&self, input: &CommandInput) -> Outcome {
        match self.parse(input) {
            Ok(command) => self.apply(&command).await,
            Err(rejection) => Outcome::rejected(*rejection),
        }
    }

    /// Applies a validated command: the server's kind checked (from the cache), then at
    /// most one read and one write of the target.
    pub async fn apply(&self, command: &ChrootCommand) -> Outcome {
        let identity = command.identity();
        if let Err(outcome) = self.fits_server(command).await {
            return *outcome;
        }
        let live = match self.transfer.describe(&command.target).await {
            Ok(live) => live,
            Err(e) => {
                if e.kind == TransferErrorKind::NotFound {
                    // The server may be gone or replaced: ask again next time.
                    self.servers.forget(&command.target.server);
                }
                return failed(identity, &e);
            }
        };
        self.write(command, live).await
    }

    /// Plans `command` against the live state already read, and writes only when
    /// something differs (not at all in a dry run).
    pub async fn write(&self, command: &ChrootCommand, live: Reply<LiveHome>) -> Outcome {
        let identity = command.identity();
        let request = plan::desired(command);
        let mut outcome = Outcome::new(Status::Unchanged, identity);
        outcome.changes = plan::changes(&request, &live.value);
        outcome.warnings = plan::warnings(&request, &live.value);
        outcome.request_id = live.request_id;
        if outcome.changes.is_empty() {
            return outcome;
        }
        outcome.request = serde_json::to_value(&request).ok();
        if command.dry_run || self.config.dry_run {
            outcome.status = Status::Planned;
            return outcome;
        }
        match self.transfer.update(&request).await {
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

    /// Refuses a command the server cannot hold (the wrong kind of target, or a target
    /// outside its kind of storage), before any read of the target.
    pub async fn fits_server(&self, command: &ChrootCommand) -> Result<(), Box<Outcome>> {
        let identity = command.identity();
        let facts = match self
            .servers
            .facts(&self.transfer, &command.target.server)
            .await
        {
            Ok(facts) => facts,
            Err(e) => return Err(Box::new(failed(identity, &e))),
        };
        let refused = servers::refusals(&facts, command);
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Box::new(Outcome::rejected(Rejection::invalid(
                identity, refused,
            ))))
        }
    }

    /// [`Chroot::run`], giving up on Transfer at `deadline` with a retryable result.
    pub async fn run_before(&self, input: &CommandInput, deadline: Instant) -> Outcome {
        match self.parse(input) {
            Ok(command) => self.apply_before(&command, deadline).await,
            Err(rejection) => Outcome::rejected(*rejection),
        }
    }

    /// [`Chroot::apply`], giving up on Transfer at `deadline` with a retryable result.
    pub async fn apply_before(&self, command: &ChrootCommand, deadline: Instant) -> Outcome {
        tokio::time::timeout_at(deadline, self.apply(command))
            .await
            .unwrap_or_else(|_| Outcome::out_of_time(command.identity()))
    }

    /// The live settings of a user or access (for read-backs); no write.
    pub async fn inspect(&self, target: &Target) -> Result<Reply<LiveHome>, TransferError> {
        self.transfer.describe(target).await
    }
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
            ("HOME_ROOTS", "/b/home"),
            ("HOME_TEMPLATE", "/b/home/${UserName}"),
            ("DRY_RUN", if dry_run { "true" } else { "false" }),
        ])
        .unwrap();
        let transfer = MemoryTransfer::new().with(
            ALICE.parse().unwrap(),
            LiveHome {
                home_directory: Some("/b/home/alice".into()),
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
        c.transfer.calls().iter().map(|c| c.operation).collect()
    }

    #[tokio::test]
    async fn one_read_one_write_then_unchanged() {
        let c = chroot(false);
        let first = c.run(&alice()).await;
        assert_eq!(first.status, Status::Updated, "{first:?}");
        assert_eq!(operations(&c), ["DescribeUser", "UpdateUser"]);
        assert_eq!(
            first.request.as_ref().unwrap()["HomeDirectoryMappings"][0]["Target"],
            "/b/home/alice"
        );
        let live = c.transfer.get(&ALICE.parse().unwrap()).unwrap();
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
            assert_eq!(c.transfer.writes(), 0);
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
        assert!(c.transfer.calls().is_empty());
    }

    #[tokio::test]
    async fn transfer_errors_are_classified_and_keep_the_plan() {
        let c = chroot(false);
        c.transfer.fail_next(TransferErrorKind::NotFound);
        let o = c.run(&alice()).await;
        assert_eq!(o.error_code(), Some(ErrorCode::NotFound));
        assert_eq!(c.transfer.writes(), 0);

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
            c.transfer.fail_next_on("UpdateUser", kind);
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
}
