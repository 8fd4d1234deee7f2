//! The command queue: where an audit with `Fix` sends one `Reconcile` command per drifted
//! target (and its own continuation), so that the SQS event source mapping applies
//! them under its `MaximumConcurrency`, which is how a deployment bounds its rate
//! against Transfer Family's API quotas. Object-safe like [`crate::folders`].

pub mod memory;
pub mod sqs;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, for the object-safe port.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `SendMessageBatch` takes at most ten messages.
pub const BATCH: usize = 10;

/// A failed send, classified once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct QueueError {
    pub operation: &'static str,
    pub message: String,
    pub retryable: bool,
    /// How many of the messages were not sent.
    pub unsent: usize,
}

pub trait CommandQueue: Send + Sync {
    /// Sends `bodies` (at most [`BATCH`]) in one `SendMessageBatch`; every one or an error
    /// saying how many were not sent.
    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> Pending<'a, Result<(), QueueError>>;
}
