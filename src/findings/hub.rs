//! Security Hub's REST-JSON API, two calls of it, signed with SigV4 (`aws-sigv4`, the
//! SDK's own signer) and sent over the SDK's own HTTP connector: `POST /findings/import`
//! (`BatchImportFindings`) and `POST /findings` (`GetFindings`). Credentials come from
//! the SDK configuration's provider (the function's role on Lambda), the region is the
//! SDK configuration's, the endpoint `AWS_ENDPOINT_URL_SECURITYHUB` or
//! `AWS_ENDPOINT_URL` when set (a local Security Hub), else the region's.
//!
//! Throttling (`429`, `TooManyRequestsException`, `LimitExceededException`), 5xx,
//! timeouts and dropped connections are retried with exponential backoff, [`ATTEMPTS`]
//! attempts in all and [`CALL_BUDGET`] at most for the whole call. Response bodies are parsed, never logged.

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
use serde_json::{Value, json};

use super::{
    Account, Asff, FailedFinding, FindingsPage, GENERATOR_ID, HubError, Imported, Pending,
    SecurityHub,
};

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// A whole call, retries included: Security Hub is never what makes an invocation late.
pub const CALL_BUDGET: Duration = Duration::from_secs(3);
/// The signing name.
const SERVICE: &str = "securityhub";

pub struct SdkHub {
    endpoint: String,
    region: String,
    credentials: Option<SharedCredentialsProvider>,
    trust: Option<TlsContext>,
    connector: OnceLock<Connector>,
}

impl std::fmt::Debug for SdkHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkHub")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish()
    }
}

/// The region's Security Hub endpoint (the partitions' DNS suffixes).
fn regional_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("eusc-") {
        "amazonaws.eu"
    } else {
        "amazonaws.com"
    };
    format!("https://securityhub.{region}.{suffix}")
}

impl SdkHub {
    /// From the SDK configuration main builds once (its region, credentials and
    /// endpoint override), trusting `trust` (`AWS_CA_BUNDLE`) when given.
    pub fn from_conf(sdk: &aws_config::SdkConfig, trust: Option<TlsContext>) -> Self {
        let region = sdk
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = std::env::var("AWS_ENDPOINT_URL_SECURITYHUB")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| regional_endpoint(&region));
        Self::new(endpoint, region, sdk.credentials_provider(), trust)
    }

    pub fn new(
        endpoint: String,
        region: String,
        credentials: Option<SharedCredentialsProvider>,
        trust: Option<TlsContext>,
    ) -> Self {
        Self {
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

    async fn call(
        &self,
        operation: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<Value, HubError> {
        let body =
            serde_json::to_vec(body).map_err(|e| fail(operation, e.to_string(), false, None))?;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let until = tokio::time::Instant::now() + CALL_BUDGET;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self
                .attempt(operation, path, &body, ATTEMPT_TIMEOUT.min(left))
                .await
            {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.retryable
                        && attempt < ATTEMPTS
                        && until.saturating_duration_since(tokio::time::Instant::now())
                            > backoff + FIRST_BACKOFF =>
                {
                    tracing::warn!(operation, attempt, error = %e, "Security Hub call failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt(
        &self,
        operation: &'static str,
        path: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Value, HubError> {
        let uri = format!("{}{path}", self.endpoint);
        let host = uri
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .header(HOST, &host)
            .header(CONTENT_TYPE, "application/json")
            .body(SdkBody::from(body.to_vec()))
            .map_err(|e| fail(operation, e.to_string(), false, None))?;
        let credentials = match &self.credentials {
            Some(provider) => provider
                .provide_credentials()
                .await
                .map_err(|e| fail(operation, format!("no credentials: {e}"), true, None))?,
            None => {
                return Err(fail(
                    operation,
                    "no credentials provider".into(),
                    false,
                    None,
                ));
            }
        };
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(operation, e.to_string(), false, None))?
            .into();
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/json"),
        ];
        let signable =
            SignableRequest::new("POST", &uri, headers.into_iter(), SignableBody::Bytes(body))
                .map_err(|e| fail(operation, e.to_string(), false, None))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| fail(operation, e.to_string(), false, None))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let request = HttpRequest::try_from(request)
            .map_err(|e| fail(operation, e.to_string(), false, None))?;
        let response = tokio::time::timeout(timeout, self.connector().call(request))
            .await
            .map_err(|_| {
                fail(
                    operation,
                    format!("no answer within {timeout:?}"),
                    true,
                    None,
                )
            })?
            .map_err(|e| fail(operation, format!("connection: {e}"), true, None))?;
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
            .map_err(|e| {
                fail(
                    operation,
                    format!("reading the answer: {e}"),
                    true,
                    request_id.clone(),
                )
            })?
            .into_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = error_type
            .or_else(|| {
                value
                    .get("__type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        let message = value
            .get("Message")
            .or_else(|| value.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let retryable = status == 429
            || status >= 500
            || matches!(
                code.as_str(),
                "TooManyRequestsException" | "LimitExceededException" | "ThrottlingException"
            );
        Err(fail(
            operation,
            format!("{code} (HTTP {status}) {message}"),
            retryable,
            request_id,
        ))
    }
}

fn fail(
    operation: &'static str,
    message: String,
    retryable: bool,
    request_id: Option<String>,
) -> HubError {
    HubError {
        operation,
        message,
        retryable,
        request_id,
    }
}

impl SecurityHub for SdkHub {
    fn import<'a>(&'a self, findings: &'a [Asff]) -> Pending<'a, Result<Imported, HubError>> {
        Box::pin(async move {
            let out = self
                .call(
                    "BatchImportFindings",
                    "/findings/import",
                    &json!({"Findings": findings}),
                )
                .await?;
            let failed: Vec<FailedFinding> = out
                .get("FailedFindings")
                .cloned()
                .and_then(|f| serde_json::from_value(f).ok())
                .unwrap_or_default();
            let success = out.get("SuccessCount").and_then(Value::as_u64).unwrap_or(0);
            Ok(Imported { success, failed })
        })
    }

    fn active<'a>(
        &'a self,
        account: &'a Account,
        before: &'a str,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<FindingsPage, HubError>> {
        Box::pin(async move {
            let eq = |v: &str| json!([{"Value": v, "Comparison": "EQUALS"}]);
            let mut body = json!({
                "Filters": {
                    "GeneratorId": eq(GENERATOR_ID),
                    "AwsAccountId": eq(&account.id),
                    "RecordState": eq("ACTIVE"),
                    "UpdatedAt": [{"End": before}],
                },
                "MaxResults": 100,
            });
            if let Some(t) = token {
                body["NextToken"] = t.into();
            }
            let out = self.call("GetFindings", "/findings", &body).await?;
            // Each finding on its own: one this function did not write is skipped.
            let findings = out
                .get("Findings")
                .and_then(Value::as_array)
                .map(|all| {
                    all.iter()
                        .filter_map(|f| serde_json::from_value::<Asff>(f.clone()).ok())
                        .collect()
                })
                .unwrap_or_default();
            let next_token = out
                .get("NextToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            Ok(FindingsPage {
                findings,
                next_token,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_has_its_endpoint() {
        assert_eq!(
            regional_endpoint("eu-west-1"),
            "https://securityhub.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            regional_endpoint("cn-north-1"),
            "https://securityhub.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            regional_endpoint("us-gov-west-1"),
            "https://securityhub.us-gov-west-1.amazonaws.com"
        );
    }
}
