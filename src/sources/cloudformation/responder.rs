//! Delivers a response: an HTTP PUT of the JSON document to CloudFormation's
//! presigned `ResponseURL` (an S3 URL), retried with backoff within the deadline.
//!
//! Built on the same HTTP stack the SDK already brings (hyper 1, hyper-rustls with
//! aws-lc-rs), so the binary carries one TLS implementation, not two.
//!
//! Its HTTP client, with the system's trust roots, is built on the first response, not
//! at cold start: most execution environments never serve a custom resource, and
//! loading the trust store (its own copy: the SDK's is private to it) cost every cold
//! start about 4 ms on the bench machine (docs/PERFORMANCE.md, "The SDK's floor").

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::response_url::ResponseUrl;

/// How hard to try. Each attempt is also bounded by the invocation's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// Wait before the second attempt; doubled after each failure up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// One PUT of ≤ 4 KB to S3 takes tens of milliseconds; two seconds means it is stuck.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(1600),
            attempt_timeout: Duration::from_secs(2),
        }
    }
}

/// The shortest attempt worth making; a retry needs at least this much time left.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error(
        "no trusted root certificates could be loaded ({0}), so an https ResponseURL cannot be reached"
    )]
    NoTrustRoots(String),
    #[error("the request could not be built: {0}")]
    Request(#[source] hyper::http::Error),
    #[error("the response endpoint could not be reached: {}", chain(.0))]
    Transport(#[source] hyper_util::client::legacy::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the response endpoint answered HTTP {0}")]
    Status(u16),
}

impl PutError {
    /// A 4xx other than 408/429 (an expired or altered signature) will not get better.
    pub fn retryable(&self) -> bool {
        match self {
            Self::NoTrustRoots(_) | Self::Request(_) => false,
            Self::Transport(_) | Self::Timeout(_) => true,
            Self::Status(s) => *s >= 500 || *s == 408 || *s == 429,
        }
    }
}

/// The error and its causes on one line. None of hyper's errors carry the URL.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub attempts: u32,
    pub status: u16,
}

#[derive(Debug, thiserror::Error)]
#[error("not delivered after {attempts} attempt(s): {last}")]
pub struct Undelivered {
    pub attempts: u32,
    #[source]
    pub last: PutError,
}

type Body = Full<Bytes>;

enum Transport {
    /// http and https, verified against the system's trust roots.
    Tls(Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>),
    /// http only: the trust roots could not be loaded. An https ResponseURL then fails
    /// with [`PutError::NoTrustRoots`] (logged) instead of the cold start panicking.
    PlainOnly {
        client: Client<HttpConnector, Body>,
        why: String,
    },
}

/// Sends responses to CloudFormation's presigned ResponseURL. Built once per cold start;
/// its transport on the first response.
pub struct Responder {
    transport: OnceLock<Transport>,
    policy: RetryPolicy,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.transport.get() {
            None => "not built yet (on the first response)",
            Some(Transport::Tls(_)) => "http+https",
            Some(Transport::PlainOnly { .. }) => "http only (no trust roots)",
        };
        f.debug_struct("Responder")
            .field("transport", &tls)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

impl Responder {
    pub fn new() -> Self {
        Self::with_policy(RetryPolicy::default())
    }

    /// Cheap: nothing is loaded until the first [`Responder::put`].
    pub fn with_policy(policy: RetryPolicy) -> Self {
        Self {
            transport: OnceLock::new(),
            policy,
        }
    }

    /// The HTTP client, built (trust roots loaded) on first use.
    fn transport(&self) -> &Transport {
        self.transport.get_or_init(|| {
            // The aws-lc-rs provider named explicitly: rustls' process-wide default
            // lookup panics if a future dependency ever compiles in a second provider.
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider) {
                Ok(builder) => {
                    Transport::Tls(client(builder.https_or_http().enable_http1().build()))
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "no trusted root certificates: CloudFormation responses can only go to http:// URLs"
                    );
                    Transport::PlainOnly {
                        client: client(HttpConnector::new()),
                        why: e.to_string(),
                    }
                }
            }
        })
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// PUTs `body` to `url`, retrying with backoff while attempts and time remain. The
    /// first attempt is always made, even past `deadline`: an answer that might still
    /// arrive beats certain silence.
    pub async fn put(
        &self,
        url: &ResponseUrl,
        body: Bytes,
        deadline: Instant,
    ) -> Result<Delivered, Undelivered> {
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = self.policy.attempt_timeout.min(left).max(MIN_ATTEMPT);
            let error = match self.attempt(url, body.clone(), timeout).await {
                Ok(status) => {
                    return Ok(Delivered {
                        attempts: attempt,
                        status,
                    });
                }
                Err(e) => e,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let retrying =
                error.retryable() && attempt < self.policy.attempts && left > backoff + MIN_ATTEMPT;
            tracing::warn!(
                attempt,
                response_endpoint = %url,
                error = %error,
                retrying,
                "CloudFormation response PUT failed"
            );
            if !retrying {
                return Err(Undelivered {
                    attempts: attempt,
                    last: error,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    async fn attempt(
        &self,
        url: &ResponseUrl,
        body: Bytes,
        timeout: Duration,
    ) -> Result<u16, PutError> {
        let length = body.len();
        let request = Request::builder()
            .method(Method::PUT)
            .uri(url.uri().clone())
            // The presigned S3 URL is signed without a content type: any non-empty value
            // breaks the signature (403 SignatureDoesNotMatch). hyper would add none,
            // but an explicit empty header is what CloudFormation documents.
            .header(CONTENT_TYPE, "")
            .header(CONTENT_LENGTH, length)
            .body(Full::new(body))
            .map_err(PutError::Request)?;
        let sent: ResponseFuture = match self.transport() {
            Transport::Tls(client) => client.request(request),
            Transport::PlainOnly { client, why } => {
                if url.is_https() {
                    return Err(PutError::NoTrustRoots(why.clone()));
                }
                client.request(request)
            }
        };
        let exchange = async {
            let response = sent.await.map_err(PutError::Transport)?;
            let status = response.status();
            // Read to the end so the exchange is complete, but never log it: an S3
            // SignatureDoesNotMatch document echoes the signature from the query string.
            let _ = response.into_body().collect().await;
            Ok::<_, PutError>(status)
        };
        let status = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| PutError::Timeout(timeout))??;
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(PutError::Status(status.as_u16()))
        }
    }
}

fn client<C>(connector: C) -> Client<C, Body>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        // Lambda freezes the process between invocations; a pooled connection is often
        // dead when thawed. One PUT per invocation gains nothing from a pool anyway.
        .pool_max_idle_per_host(0)
        .build(connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_trust_roots_https_fails_cleanly_instead_of_panicking() {
        let responder = Responder {
            transport: OnceLock::from(Transport::PlainOnly {
                client: client(HttpConnector::new()),
                why: "no native root CA certificates found".into(),
            }),
            policy: RetryPolicy::default(),
        };
        let sink = crate::domain::ResponseOrigins::parse("https://example.invalid").unwrap();
        let url = ResponseUrl::admit("https://example.invalid/r?X-Amz-Signature=s", &sink).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = responder
            .put(&url, Bytes::from_static(b"{}"), deadline)
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 1, "not retried");
        assert!(matches!(err.last, PutError::NoTrustRoots(_)), "{err}");
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(PutError::Status(500).retryable());
        assert!(PutError::Status(503).retryable());
        assert!(PutError::Status(429).retryable());
        assert!(PutError::Timeout(Duration::from_secs(1)).retryable());
        assert!(!PutError::Status(403).retryable());
        assert!(!PutError::Status(400).retryable());
        assert!(!PutError::NoTrustRoots("none".into()).retryable());
    }
}
