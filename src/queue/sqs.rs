//! [`CommandQueue`] with `aws-sdk-sqs`: the only module that imports SQS SDK types.

use std::sync::OnceLock;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::{BATCH, CommandQueue, Pending, QueueError};

#[derive(Debug)]
pub struct SdkQueue {
    client: Lazy,
    url: String,
}

/// The SQS client: built on the first send (only a fixing audit sends) rather than at
/// cold start.
#[derive(Debug)]
enum Lazy {
    Ready(Client),
    OnFirstUse {
        sdk: Box<aws_config::SdkConfig>,
        client: OnceLock<Client>,
    },
}

impl SdkQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client: Lazy::Ready(client),
            url: url.into(),
        }
    }

    /// From the shared SDK configuration; the client is built on first use.
    pub fn from_conf(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: Lazy::OnFirstUse {
                sdk: Box::new(sdk.clone()),
                client: OnceLock::new(),
            },
            url: url.into(),
        }
    }

    fn client(&self) -> &Client {
        match &self.client {
            Lazy::Ready(client) => client,
            Lazy::OnFirstUse { sdk, client } => client.get_or_init(|| Client::new(sdk)),
        }
    }
}

impl CommandQueue for SdkQueue {
    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> Pending<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let error = |message: String, retryable: bool, unsent: usize| QueueError {
                operation: "SendMessageBatch",
                message,
                retryable,
                unsent,
            };
            if bodies.is_empty() {
                return Ok(());
            }
            if bodies.len() > BATCH {
                return Err(error(
                    format!("{} messages (at most {BATCH})", bodies.len()),
                    false,
                    bodies.len(),
                ));
            }
            let entries: Vec<SendMessageBatchRequestEntry> = bodies
                .iter()
                .enumerate()
                .filter_map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .client()
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) if out.failed().is_empty() => Ok(()),
                Ok(out) => {
                    let failed = out.failed();
                    let retryable = failed.iter().all(|f| !f.sender_fault());
                    let codes: Vec<&str> = failed.iter().map(|f| f.code()).collect();
                    Err(error(
                        format!(
                            "{} of {} not sent ({})",
                            failed.len(),
                            bodies.len(),
                            codes.join(", ")
                        ),
                        retryable,
                        failed.len(),
                    ))
                }
                Err(e) => {
                    let (message, retryable) = match &e {
                        SdkError::ServiceError(s) => {
                            let status = s.raw().status().as_u16();
                            (
                                format!(
                                    "SQS answered {status} {}",
                                    s.err().code().unwrap_or("Unknown")
                                ),
                                status >= 500,
                            )
                        }
                        SdkError::TimeoutError(_) => {
                            ("SQS did not answer in time".to_owned(), true)
                        }
                        SdkError::DispatchFailure(_) => {
                            ("SQS could not be reached".to_owned(), true)
                        }
                        _ => ("the SQS request failed".to_owned(), true),
                    };
                    Err(error(message, retryable, bodies.len()))
                }
            }
        })
    }
}
