//! Delivers a response: an HTTP PUT of the JSON document to CloudFormation's
//! presigned `ResponseURL` (an S3 URL), retried with backoff within the deadline.
//!
//! Sent through the SDK's own HTTP connector (`aws-smithy-http-client`: hyper 1,
//! rustls with aws-lc-rs), built the way the SDK builds its default one, so the binary
//! carries one HTTP client stack, not two: a second hyper client type (hyper-rustls,
//! and a plain one beside it) compiled in its own copy of hyper's and h2's client
//! code, about 0.6 MB of machine code (docs/PERFORMANCE.md, "Peak RSS: why it was over").
//! It trusts what the SDK trusts: the system's roots (parsed once per process, shared
//! with the SDK's client), or `AWS_CA_BUNDLE` instead.
//!
//! The connector is built on the first response, not at cold start: most execution
//! environments never serve a custom resource.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request};
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
    #[error("the request could not be built: {0}")]
    Request(String),
    /// Could not connect, the TLS handshake failed (an untrusted certificate
    /// included), or the connection broke. The text never carries the URL.
    #[error("the response endpoint could not be reached: {}", chain(.0))]
    Transport(#[source] ConnectorError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the response endpoint answered HTTP {0}")]
    Status(u16),
}

impl PutError {
    /// A 4xx other than 408/429 (an expired or altered signature) will not get better.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Request(_) => false,
            Self::Transport(_) | Self::Timeout(_) => true,
            Self::Status(s) => *s >= 500 || *s == 408 || *s == 429,
        }
    }
}

/// The error and its causes on one line. None of the connector's errors carry the URL.
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

/// Sends responses to CloudFormation's presigned ResponseURL. Built once per cold start;
/// its connector on the first response.
pub struct Responder {
    connector: OnceLock<Connector>,
    /// `None`: the system's roots, as the SDK's default client.
    trust: Option<TlsContext>,
    policy: RetryPolicy,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connector = match self.connector.get() {
            None => "not built yet (on the first response)",
            Some(_) => "built",
        };
        let trust = match self.trust {
            None => "the system's roots",
            Some(_) => "AWS_CA_BUNDLE",
        };
        f.debug_struct("Responder")
            .field("connector", &connector)
            .field("trust", &trust)
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
            connector: OnceLock::new(),
            trust: None,
            policy,
        }
    }

    /// Trusting `context` (the SDK's `AWS_CA_BUNDLE` context, `transfer::sdk`)
    /// instead of the system's roots.
    pub fn trusting(mut self, context: TlsContext) -> Self {
        self.trust = Some(context);
        self
    }

    /// The HTTP connector, built on first use: rustls with aws-lc-rs, proxy settings
    /// from the environment, no idle connections kept (Lambda freezes the process
    /// between invocations, so a pooled connection is often dead when thawed; one PUT
    /// per invocation gains nothing from a pool anyway). Building it never panics in
    /// a release build: without trust roots, an https PUT fails its handshake
    /// ([`PutError::Transport`]).
    fn connector(&self) -> &Connector {
        self.connector.get_or_init(|| {
            let mut builder = Connector::builder()
                .pool_max_idle_per_host(0)
                .proxy_config(ProxyConfig::from_env())
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
            if let Some(context) = &self.trust {
                builder = builder.tls_context(context.clone());
            }
            builder.build()
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
            // breaks the signature (403 SignatureDoesNotMatch). The connector adds
            // none, but an explicit empty header is what CloudFormation documents.
            .header(CONTENT_TYPE, "")
            .header(CONTENT_LENGTH, length)
            .body(SdkBody::from(body))
            .map_err(|e| PutError::Request(e.to_string()))?;
        let request =
            HttpRequest::try_from(request).map_err(|e| PutError::Request(e.to_string()))?;
        let sent = self.connector().call(request);
        // The response body is dropped unread, never logged: an S3
        // SignatureDoesNotMatch document echoes the signature from the query string.
        // With no idle pool, dropping it closes the connection.
        let response = tokio::time::timeout(timeout, sent)
            .await
            .map_err(|_| PutError::Timeout(timeout))?
            .map_err(PutError::Transport)?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(PutError::Status(status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod over_tls {
        use super::*;
        use aws_smithy_http_client::tls::TrustStore;
        use transfer_standin::StandIn;
        use transfer_standin::tls::TlsIdentity;

        fn quick() -> RetryPolicy {
            RetryPolicy {
                attempts: 2,
                first_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(10),
                attempt_timeout: Duration::from_secs(2),
            }
        }

        fn trusting(ca: &TlsIdentity) -> TlsContext {
            TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(ca.ca_pem()))
                .build()
                .unwrap()
        }

        /// The stand-in's response sink on its TLS listener, and a presigned-looking URL
        /// to it.
        async fn sink(ca: &TlsIdentity) -> (StandIn, ResponseUrl) {
            let mut standin = StandIn::start(&serde_json::json!({"Servers": []}))
                .await
                .unwrap();
            let https = standin
                .listen_tls("127.0.0.1:0".parse().unwrap(), ca)
                .await
                .unwrap();
            let origins = crate::domain::ResponseOrigins::parse(&https).unwrap();
            let url =
                ResponseUrl::admit(&format!("{https}/r?X-Amz-Signature=secret"), &origins).unwrap();
            (standin, url)
        }

        #[tokio::test]
        async fn an_https_response_url_is_delivered_when_its_ca_is_trusted() {
            let ca = TlsIdentity::generate().unwrap();
            let (standin, url) = sink(&ca).await;
            let responder = Responder::with_policy(quick()).trusting(trusting(&ca));
            let deadline = Instant::now() + Duration::from_secs(5);
            let body = Bytes::from_static(br#"{"Status":"SUCCESS"}"#);
            let sent = responder.put(&url, body, deadline).await.unwrap();
            assert_eq!(
                sent,
                Delivered {
                    attempts: 1,
                    status: 200
                }
            );
            let puts = standin.responses();
            assert_eq!(puts.len(), 1, "{puts:?}");
            assert_eq!(puts[0].path, "/r");
            assert_eq!(puts[0].query.as_deref(), Some("X-Amz-Signature=secret"));
            assert_eq!(
                puts[0].content_type.as_deref(),
                Some(""),
                "signed without one"
            );
            assert_eq!(puts[0].content_length, Some(20));
            assert_eq!(puts[0].body, serde_json::json!({"Status": "SUCCESS"}));
        }

        #[tokio::test]
        async fn an_untrusted_certificate_fails_cleanly_without_reaching_the_endpoint() {
            let ca = TlsIdentity::generate().unwrap();
            let (standin, url) = sink(&ca).await;
            // Another CA: the handshake fails (as it would with no trust roots at all,
            // which in a release build is an empty store, not a panic).
            let other = TlsIdentity::generate().unwrap();
            let responder = Responder::with_policy(quick()).trusting(trusting(&other));
            let deadline = Instant::now() + Duration::from_secs(5);
            let err = responder
                .put(&url, Bytes::from_static(b"{}"), deadline)
                .await
                .unwrap_err();
            assert!(matches!(err.last, PutError::Transport(_)), "{err}");
            assert_eq!(err.attempts, 2, "a transport failure is retried: {err}");
            assert!(!err.to_string().contains("secret"), "no signature: {err}");
            assert!(standin.responses().is_empty());
        }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(PutError::Status(500).retryable());
        assert!(PutError::Status(503).retryable());
        assert!(PutError::Status(429).retryable());
        assert!(PutError::Timeout(Duration::from_secs(1)).retryable());
        assert!(!PutError::Status(403).retryable());
        assert!(!PutError::Status(400).retryable());
        assert!(!PutError::Request("bad".into()).retryable());
    }
}
