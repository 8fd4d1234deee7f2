//! Security Hub's REST-JSON API, two calls of it, signed and sent by
//! [`crate::signed::SignedClient`]: `POST /findings/import` (`BatchImportFindings`) and
//! `POST /findings` (`GetFindings`), at `AWS_ENDPOINT_URL_SECURITYHUB` or
//! `AWS_ENDPOINT_URL` when set (a local Security Hub), else the region's.
//!
//! Throttling (`429`, `TooManyRequestsException`, `LimitExceededException`), 5xx,
//! timeouts and dropped connections are retried with exponential backoff, [`ATTEMPTS`]
//! attempts in all and [`CALL_BUDGET`] at most for the whole call. Response bodies are parsed, never logged.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::TlsContext;
use serde_json::{Value, json};

use super::{
    Account, Asff, FailedFinding, FindingsPage, GENERATOR_ID, HubError, Imported, Pending,
    SecurityHub,
};
use crate::signed::{CallError, SignedClient};

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// A whole call, retries included: Security Hub is never what makes an invocation late.
pub const CALL_BUDGET: Duration = Duration::from_secs(3);
/// The signing name.
const SERVICE: &str = "securityhub";

#[derive(Debug)]
pub struct SdkHub {
    client: SignedClient,
}

impl SdkHub {
    /// From the SDK configuration main builds once (its region, credentials and
    /// endpoint override, `AWS_ENDPOINT_URL_SECURITYHUB`), trusting `trust`
    /// (`AWS_CA_BUNDLE`) when given.
    pub fn from_conf(sdk: &aws_config::SdkConfig, trust: Option<TlsContext>) -> Self {
        Self {
            client: SignedClient::from_conf(sdk, SERVICE, "AWS_ENDPOINT_URL_SECURITYHUB", trust),
        }
    }

    pub fn new(
        endpoint: String,
        region: String,
        credentials: Option<SharedCredentialsProvider>,
        trust: Option<TlsContext>,
    ) -> Self {
        Self {
            client: SignedClient::new(SERVICE, endpoint, region, credentials, trust),
        }
    }

    async fn call(
        &self,
        operation: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<Value, HubError> {
        let body = serde_json::to_vec(body).map_err(|e| HubError {
            operation,
            message: e.to_string(),
            retryable: false,
            request_id: None,
        })?;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let until = tokio::time::Instant::now() + CALL_BUDGET;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let answer = self
                .client
                .post(
                    path,
                    "application/json",
                    &[],
                    &body,
                    ATTEMPT_TIMEOUT.min(left),
                )
                .await;
            match answer {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.retryable
                        && attempt < ATTEMPTS
                        && until.saturating_duration_since(tokio::time::Instant::now())
                            > backoff + FIRST_BACKOFF =>
                {
                    tracing::warn!(operation, attempt, error = %e.message, "Security Hub call failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(hub_error(operation, e)),
            }
        }
    }
}

fn hub_error(operation: &'static str, e: CallError) -> HubError {
    HubError {
        operation,
        message: e.message,
        retryable: e.retryable,
        request_id: e.request_id,
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
