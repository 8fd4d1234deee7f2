//! The core use case: a validated command in, a structured outcome out.
//! Read the live state, plan, and write only when something differs.

use std::sync::Arc;

use tokio::time::Instant;

use serde_json::{Map, Value};

use crate::command::{ChrootCommand, InputRules, Rejection, parse_command};
use crate::config::Config;
use crate::domain::ServerId;
use crate::outcome::{ErrorBody, Outcome, Status};
use crate::plan;
use crate::transfer::{LiveHome, Reply, Subject, Transfer, TransferError};

/// The function's dependencies: configuration and the Transfer port, built once per
/// cold start and shared by every invocation.
pub struct Chroot<T> {
    pub config: Arc<Config>,
    pub transfer: T,
}

impl<T: Transfer> Chroot<T> {
    pub fn new(config: Config, transfer: T) -> Self {
        Self {
            config: Arc::new(config),
            transfer,
        }
    }

    /// Parses and applies one command given as a JSON object.
    pub async fn run(&self, input: &Map<String, Value>, rules: InputRules) -> Outcome {
        match parse_command(input, rules, &self.config) {
            Ok(command) => self.apply(&command).await,
            Err(rejection) => {
                let Rejection { identity, error } = *rejection;
                Outcome::failed(identity, error)
            }
        }
    }

    /// Applies a validated command: at most one read and one write.
    pub async fn apply(&self, command: &ChrootCommand) -> Outcome {
        let identity = command.identity();
        let live = match self
            .transfer
            .describe(&command.server, &command.subject)
            .await
        {
            Ok(live) => live,
            Err(e) => return failed(identity, &e),
        };
        let request = plan::desired(command);
        let mut outcome = Outcome::new(Status::Unchanged, identity);
        outcome.changes = plan::changes(&request, &live.value);
        outcome.warnings = plan::warnings(&request, &live.value);
        outcome.request_id = live.request_id;
        if outcome.changes.is_empty() {
            return outcome;
        }
        outcome.request = Some(request.to_json());
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

    /// [`Chroot::run`], giving up on Transfer at `deadline` with a retryable result.
    pub async fn run_before(
        &self,
        input: &Map<String, Value>,
        rules: InputRules,
        deadline: Instant,
    ) -> Outcome {
        match parse_command(input, rules, &self.config) {
            Ok(command) => self.apply_before(&command, deadline).await,
            Err(rejection) => {
                let Rejection { identity, error } = *rejection;
                Outcome::failed(identity, error)
            }
        }
    }

    /// [`Chroot::apply`], giving up on Transfer at `deadline` with a retryable result.
    pub async fn apply_before(&self, command: &ChrootCommand, deadline: Instant) -> Outcome {
        tokio::time::timeout_at(deadline, self.apply(command))
            .await
            .unwrap_or_else(|_| Outcome::out_of_time(command.identity()))
    }

    /// The live settings of a user or access (for read-backs); no write.
    pub async fn inspect(
        &self,
        server: &ServerId,
        subject: &Subject,
    ) -> Result<Reply<LiveHome>, TransferError> {
        self.transfer.describe(server, subject).await
    }
}

fn failed(identity: crate::outcome::Identity, e: &TransferError) -> Outcome {
    let mut outcome = Outcome::failed(identity, ErrorBody::from(e));
    outcome.request_id = e.request_id.clone();
    outcome
}
