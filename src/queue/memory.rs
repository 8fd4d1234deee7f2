//! An in-memory [`CommandQueue`]: the messages sent, in order.

use std::sync::Mutex;

use super::{BATCH, CommandQueue, Pending, QueueError};

#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<String>>,
    batches: Mutex<usize>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn batches(&self) -> usize {
        *self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CommandQueue for MemoryQueue {
    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> Pending<'a, Result<(), QueueError>> {
        Box::pin(async move {
            if bodies.len() > BATCH {
                return Err(QueueError {
                    operation: "SendMessageBatch",
                    message: format!("{} messages in one batch (at most {BATCH})", bodies.len()),
                    retryable: false,
                    unsent: bodies.len(),
                });
            }
            *self.batches.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            self.messages
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(bodies.iter().cloned());
            Ok(())
        })
    }
}
