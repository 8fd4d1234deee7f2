//! AWS JSON APIs called without their SDK crate: one request signed with SigV4
//! (`aws-sigv4`, the SDK's own signer) and sent over the SDK's own HTTP connector, so
//! no second HTTP or TLS stack and no per-service crate enter the binary (Security
//! Hub's and the Identity Store's; docs/PERFORMANCE.md says what a crate would cost).
//!
//! Credentials come from the SDK configuration's provider (the function's role on
//! Lambda), the region is the SDK configuration's, the endpoint
//! `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL` when set (a local emulator),
//! else the region's. One call here is one attempt: each client decides its retries.
//! Response bodies are parsed, never logged.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use serde_json::Value;

/// Why one attempt failed.
#[derive(Debug, Clone)]
pub struct CallError {
    pub message: String,
    /// The service's error code (`ThrottlingException`, ...), when it answered one.
    pub code: Option<String>,
    /// Worth another attempt: throttled, 5xx, no answer in time, a dropped connection.
    pub retryable: bool,
    /// Throttled by the service (429 or a throttling code).
    pub throttled: bool,
    /// The service's own hint (`RetryAfterSeconds`), when it gave one.
    pub retry_after: Option<Duration>,
    /// What a `ResourceNotFoundException` says was not found (`ResourceType`).
    pub resource_type: Option<String>,
    pub request_id: Option<String>,
}

impl CallError {
    fn local(message: impl Into<String>, retryable: bool) -> Self {
        Self {
            message: message.into(),
            code: None,
            retryable,
            throttled: false,
            retry_after: None,
            resource_type: None,
            request_id: None,
        }
    }
}

/// A service's JSON API at one endpoint, in one region, with the SDK's credentials.
pub struct SignedClient {
    /// The signing name (`securityhub`, `identitystore`).
    service: &'static str,
    endpoint: String,
    region: String,
    credentials: Option<SharedCredentialsProvider>,
    trust: Option<TlsContext>,
    connector: OnceLock<Connector>,
}

impl std::fmt::Debug for SignedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedClient")
            .field("service", &self.service)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish()
    }
}

/// The region's endpoint of `service` (the partitions' DNS suffixes).
pub fn regional_endpoint(service: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("eusc-") {
        "amazonaws.eu"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{suffix}")
}

impl SignedClient {
    /// From the SDK configuration main builds once: its region, credentials and
    /// endpoint override (`endpoint_variable`, e.g. `AWS_ENDPOINT_URL_SECURITYHUB`, then
    /// `AWS_ENDPOINT_URL`), trusting `trust` (`AWS_CA_BUNDLE`) when given.
    pub fn from_conf(
        sdk: &aws_config::SdkConfig,
        service: &'static str,
        endpoint_variable: &str,
        trust: Option<TlsContext>,
    ) -> Self {
        let region = sdk
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = std::env::var(endpoint_variable)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| regional_endpoint(service, &region));
        Self::new(service, endpoint, region, sdk.credentials_provider(), trust)
    }

    pub fn new(
        service: &'static str,
        endpoint: String,
        region: String,
        credentials: Option<SharedCredentialsProvider>,
        trust: Option<TlsContext>,
    ) -> Self {
        Self {
            service,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            credentials,
            trust,
            connector: OnceLock::new(),
        }
    }

    /// Built on first use, as the CloudFormation responder's: rustls with aws-lc-rs,
    /// proxy settings from the environment.
    fn connector(&self) -> &Connector {
        self.connector.get_or_init(|| {
            let mut builder = Connector::builder()
                .proxy_config(ProxyConfig::from_env())
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
            if let Some(context) = &self.trust {
                builder = builder.tls_context(context.clone());
            }
            builder.build()
        })
    }

    /// One signed `POST` of `body` to `path`, with `headers` besides the signed
    /// `host` and `content-type`; the answer's JSON (`null` when it is not JSON), or
    /// why not, within `timeout`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let uri = format!("{}{path}", self.endpoint);
        let host = uri
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .header(HOST, &host)
            .header(CONTENT_TYPE, content_type);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(SdkBody::from(body.to_vec()))
            .map_err(|e| CallError::local(e.to_string(), false))?;
        let credentials = match &self.credentials {
            Some(provider) => provider
                .provide_credentials()
                .await
                .map_err(|e| CallError::local(format!("no credentials: {e}"), true))?,
            None => return Err(CallError::local("no credentials provider", false)),
        };
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CallError::local(e.to_string(), false))?
            .into();
        let mut signed_headers = vec![("host", host.as_str()), ("content-type", content_type)];
        signed_headers.extend(headers.iter().copied());
        let signable = SignableRequest::new(
            "POST",
            &uri,
            signed_headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| CallError::local(e.to_string(), false))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| CallError::local(e.to_string(), false))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let request =
            HttpRequest::try_from(request).map_err(|e| CallError::local(e.to_string(), false))?;
        let response = tokio::time::timeout(timeout, self.connector().call(request))
            .await
            .map_err(|_| CallError::local(format!("no answer within {timeout:?}"), true))?
            .map_err(|e| CallError::local(format!("connection: {e}"), true))?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-amzn-requestid")
            .map(str::to_owned);
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .map(|t| t.split(':').next().unwrap_or_default().to_owned());
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| CallError {
                request_id: request_id.clone(),
                ..CallError::local(format!("reading the answer: {e}"), true)
            })?
            .into_bytes();
        // Some emulators label a JSON answer text/html: the body decides.
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = error_type
            .filter(|t| !t.is_empty())
            .or_else(|| {
                value
                    .get("__type")
                    .and_then(Value::as_str)
                    // awsJson's `__type` may carry a namespace: `ns#Code`.
                    .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        let message = value
            .get("Message")
            .or_else(|| value.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let throttled = status == 429
            || matches!(
                code.as_str(),
                "TooManyRequestsException"
                    | "LimitExceededException"
                    | "ThrottlingException"
                    | "Throttling"
            );
        let retry_after = value
            .get("RetryAfterSeconds")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(60.0)));
        let resource_type = value
            .get("ResourceType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Err(CallError {
            resource_type,
            message: format!("{code} (HTTP {status}) {message}")
                .trim_end()
                .to_owned(),
            retryable: throttled || status >= 500,
            throttled,
            retry_after,
            request_id,
            code: Some(code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_has_its_endpoint() {
        assert_eq!(
            regional_endpoint("securityhub", "eu-west-1"),
            "https://securityhub.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            regional_endpoint("identitystore", "cn-north-1"),
            "https://identitystore.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            regional_endpoint("securityhub", "us-gov-west-1"),
            "https://securityhub.us-gov-west-1.amazonaws.com"
        );
    }
}
