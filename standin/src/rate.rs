//! Per-operation rate limits: a token bucket for each limited operation, as AWS meters
//! its APIs (a sustained rate with a burst on top). A request that finds its bucket
//! empty is answered `ThrottlingException` (HTTP 429) with `RetryAfterSeconds`, the
//! whole seconds until the bucket holds a token again. A limit for the operation
//! [`EVERY_OPERATION`] (`"*"`) is one bucket shared by every operation (a rate for the
//! whole API, as an account-level quota meters it), taken before the operation's own.
//! The Identity Store's operations (`identitystore:ListUsers`...) are another API: `*`
//! does not meter them; [`EVERY_DIRECTORY_OPERATION`] (`identitystore:*`) is their
//! shared bucket, as IAM Identity Center's collective limit (20 requests a second across
//! its APIs) meters them together.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The operation name of the limit shared by every Transfer operation.
pub const EVERY_OPERATION: &str = "*";
/// The operation name of the limit shared by every Identity Store operation.
pub const EVERY_DIRECTORY_OPERATION: &str = "identitystore:*";

/// `requests_per_second` sustained, up to `burst` at once, for calls to `operation`.
/// A bucket starts full; `burst: 0` throttles every call; `requests_per_second: 0`
/// never refills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RateLimit {
    /// A Transfer operation (`UpdateUser`, `ListUsers`...), or `*` for every one; an
    /// Identity Store operation (`identitystore:ListUsers`), or `identitystore:*` for
    /// every one of those.
    pub operation: String,
    pub requests_per_second: f64,
    pub burst: u32,
}

impl RateLimit {
    pub fn new(operation: &str, requests_per_second: f64, burst: u32) -> Self {
        Self {
            operation: operation.to_owned(),
            requests_per_second,
            burst,
        }
    }

    /// Refuses a rate that is negative or not a number.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.requests_per_second.is_nan() || self.requests_per_second < 0.0 {
            return Err(format!(
                "{}: RequestsPerSecond must be 0 or more, not {}",
                self.operation, self.requests_per_second
            ));
        }
        Ok(())
    }
}

/// The limit that applies to `operation`: the last one given for it.
pub(crate) fn limit_for(limits: &[RateLimit], operation: &str) -> Option<RateLimit> {
    limits
        .iter()
        .rev()
        .find(|l| l.operation == operation)
        .cloned()
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets' fill levels, by operation.
#[derive(Default)]
pub(crate) struct Buckets(HashMap<String, Bucket>);

impl Buckets {
    /// Refills every bucket (after the limits change).
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// Takes a token from `limit`'s bucket at `now`, or says how long until one is there.
    pub(crate) fn take(&mut self, limit: &RateLimit, now: Instant) -> Result<(), Duration> {
        let rate = limit.requests_per_second;
        if rate == f64::INFINITY && limit.burst > 0 {
            return Ok(());
        }
        let capacity = f64::from(limit.burst);
        let bucket = self.0.entry(limit.operation.clone()).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        if rate > 0.0 {
            bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        }
        bucket.tokens = bucket.tokens.min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if rate > 0.0 && limit.burst > 0 {
            Err(Duration::try_from_secs_f64((1.0 - bucket.tokens) / rate).unwrap_or(Duration::MAX))
        } else {
            Err(Duration::MAX)
        }
    }
}

/// `RetryAfterSeconds` for a wait: whole seconds, rounded up, 1 to 3600.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().clamp(1.0, 3600.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_the_rate() {
        let limit = RateLimit::new("ListUsers", 2.0, 3);
        let mut b = Buckets::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(&limit, t0).is_ok());
        }
        let wait = b.take(&limit, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_seconds(wait), 1);
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(&limit, t1).is_ok());
        assert!(b.take(&limit, t1).is_err());
        // Long idle: never more than the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take(&limit, t2).is_ok());
        }
        assert!(b.take(&limit, t2).is_err());
    }

    #[test]
    fn zero_burst_or_rate_and_bad_rates() {
        let now = Instant::now();
        let mut b = Buckets::default();
        assert_eq!(
            b.take(&RateLimit::new("A", 10.0, 0), now),
            Err(Duration::MAX)
        );
        assert!(b.take(&RateLimit::new("B", 0.0, 1), now).is_ok());
        assert_eq!(
            b.take(&RateLimit::new("B", 0.0, 1), now + Duration::from_secs(9)),
            Err(Duration::MAX)
        );
        assert_eq!(retry_after_seconds(Duration::MAX), 3600);
        assert!(RateLimit::new("C", -1.0, 1).check().is_err());
        assert!(RateLimit::new("C", f64::NAN, 1).check().is_err());
        assert!(b.take(&RateLimit::new("D", f64::INFINITY, 1), now).is_ok());
    }
}
