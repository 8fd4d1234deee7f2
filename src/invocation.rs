//! What the sources need to know of the current invocation: its deadline and ids.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Kept out of the invocation's time for answering once Transfer is given up on.
pub const ANSWER_RESERVE: Duration = Duration::from_millis(500);

/// Facts about the current invocation the sources need (deadline, ids).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When Lambda will stop this invocation.
    pub deadline: SystemTime,
    pub log_group: String,
    pub log_stream: String,
    /// The ARN it was invoked by (`arn:<partition>:lambda:<region>:<account>:function:…`):
    /// the function's own account and region, with no call.
    pub invoked_arn: Option<String>,
}

impl Invocation {
    pub fn from_context(ctx: &lambda_runtime::Context) -> Self {
        Self {
            request_id: ctx.request_id.clone(),
            deadline: deadline_from(ctx.deadline, SystemTime::now()),
            log_group: ctx.env_config.log_group.clone(),
            log_stream: ctx.env_config.log_stream.clone(),
            invoked_arn: Some(ctx.invoked_function_arn.clone()).filter(|a| !a.is_empty()),
        }
    }

    /// An invocation with `budget` left, for tests and local runs.
    pub fn with_budget(budget: Duration) -> Self {
        Self {
            request_id: "local".to_owned(),
            deadline: SystemTime::now() + budget,
            log_group: "local".to_owned(),
            log_stream: "local".to_owned(),
            invoked_arn: None,
        }
    }

    /// As invoked by `arn` (the account and region it stands for).
    pub fn invoked_by(mut self, arn: &str) -> Self {
        self.invoked_arn = Some(arn.to_owned());
        self
    }

    /// When a source stops waiting for Transfer: [`ANSWER_RESERVE`] before the deadline,
    /// so it can still answer with a structured result instead of a Lambda timeout.
    pub fn work_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.remaining().saturating_sub(ANSWER_RESERVE)
    }

    pub fn remaining(&self) -> Duration {
        self.deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }
}

/// Lambda sends the deadline as epoch milliseconds. cargo-lambda's emulator sends the
/// function timeout instead (`600000`); a value that cannot be a deadline of this century
/// is read as milliseconds from now, so local runs get a real budget rather than none.
fn deadline_from(millis: u64, now: SystemTime) -> SystemTime {
    const YEAR_2001_MS: u64 = 978_307_200_000;
    if millis < YEAR_2001_MS {
        now + Duration::from_millis(millis)
    } else {
        UNIX_EPOCH + Duration::from_millis(millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_epoch_millis_or_an_emulator_timeout() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let epoch = 1_795_000_030_000;
        assert_eq!(deadline_from(epoch, now), now + Duration::from_secs(30));
        assert_eq!(deadline_from(600_000, now), now + Duration::from_secs(600));
    }
}
