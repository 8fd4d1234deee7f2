//! The Identity Store's JSON API (awsJson1.1, `X-Amz-Target: AWSIdentityStore.<Op>`),
//! seven read operations of it, signed and sent by [`crate::signed::SignedClient`] at
//! `AWS_ENDPOINT_URL_IDENTITYSTORE` (or `AWS_ENDPOINT_URL`), else the region's endpoint.
//! Not the `aws-sdk-identitystore` crate: docs/PERFORMANCE.md ("The directory", the client paragraph)
//! measures what it would add to the package.
//!
//! Paced: IAM Identity Center documents "a collective throttle maximum of 20
//! transactions per second" for its APIs, so every request of this execution
//! environment takes its turn at [`Pace`] (`IDENTITY_STORE_MAX_RPS`, default 20).
//! Throttling (`ThrottlingException`, which carries `RetryAfterSeconds`), 5xx, timeouts
//! and dropped connections are retried, [`ATTEMPTS`] attempts within [`CALL_BUDGET`];
//! past them the error is retryable, and the caller writes nothing from a guess.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_smithy_http_client::tls::TlsContext;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Directory, DirectoryError, DirectoryGroup, DirectoryUser, PAGE, Page, Pending};
use crate::domain::{DirectoryUserName, GroupId, IdentityStoreId, UserId};
use crate::signed::{CallError, SignedClient};

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A whole call, retries and waits for its turn included.
pub const CALL_BUDGET: Duration = Duration::from_secs(8);
/// IAM Identity Center's collective limit (requests a second), the default pace.
pub const DEFAULT_MAX_RPS: f64 = 20.0;
const SERVICE: &str = "identitystore";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Requests spaced evenly at a rate: each takes the next free turn. Shared by every
/// task of the execution environment, so concurrent triggers and an audit together
/// stay under the rate.
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    pub fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            DEFAULT_MAX_RPS
        };
        Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    /// How long one request's turn is.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this request's turn.
    pub async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[derive(Debug)]
pub struct IdentityStore {
    client: SignedClient,
    store: IdentityStoreId,
    pace: Pace,
    requests: AtomicU64,
}

impl IdentityStore {
    /// From the SDK configuration main builds once (region, credentials,
    /// `AWS_ENDPOINT_URL_IDENTITYSTORE`), trusting `trust` (`AWS_CA_BUNDLE`).
    pub fn from_conf(
        sdk: &aws_config::SdkConfig,
        store: IdentityStoreId,
        max_rps: f64,
        trust: Option<TlsContext>,
    ) -> Self {
        Self::new(
            SignedClient::from_conf(sdk, SERVICE, "AWS_ENDPOINT_URL_IDENTITYSTORE", trust),
            store,
            max_rps,
        )
    }

    pub fn new(client: SignedClient, store: IdentityStoreId, max_rps: f64) -> Self {
        Self {
            client,
            store,
            pace: Pace::new(max_rps),
            requests: AtomicU64::new(0),
        }
    }

    /// One operation, paced and retried: its answer, `Ok(None)` for
    /// `ResourceNotFoundException`, or why not.
    async fn call(
        &self,
        operation: &'static str,
        mut body: Value,
    ) -> Result<Option<Value>, DirectoryError> {
        body["IdentityStoreId"] = self.store.as_str().into();
        let bytes = serde_json::to_vec(&body).map_err(|e| DirectoryError {
            operation,
            message: e.to_string(),
            retryable: false,
            throttled: false,
            request_id: None,
        })?;
        let target = format!("AWSIdentityStore.{operation}");
        let until = Instant::now() + CALL_BUDGET;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            self.pace.turn().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let left = until.saturating_duration_since(Instant::now());
            let answer = self
                .client
                .post(
                    "/",
                    CONTENT_TYPE,
                    &[("x-amz-target", target.as_str())],
                    &bytes,
                    ATTEMPT_TIMEOUT.min(left),
                )
                .await;
            let e = match answer {
                Ok(v) => return Ok(Some(v)),
                // A user or group that is not there is an answer; a store that is not
                // there is a configuration to fix (IDENTITY_STORE_ID), never an empty
                // directory.
                Err(e)
                    if e.code.as_deref() == Some("ResourceNotFoundException")
                        && e.resource_type.as_deref() != Some("IDENTITY_STORE") =>
                {
                    return Ok(None);
                }
                Err(e) => e,
            };
            let wait = e.retry_after.unwrap_or(backoff).max(backoff);
            let left = until.saturating_duration_since(Instant::now());
            if !e.retryable || attempt >= ATTEMPTS || left <= wait + self.pace.interval() {
                return Err(directory_error(operation, e));
            }
            tracing::warn!(operation, attempt, throttled = e.throttled, error = %e.message, "Identity Store call failed, retrying");
            tokio::time::sleep(wait).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}

fn directory_error(operation: &'static str, e: CallError) -> DirectoryError {
    DirectoryError {
        operation,
        message: e.message,
        retryable: e.retryable,
        throttled: e.throttled,
        request_id: e.request_id,
    }
}

fn next_token(v: &Value) -> Option<String> {
    v.get("NextToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// An id the service answered with, if it is one (an id of another shape is dropped,
/// with a line: it could never be sent back).
fn answered<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, crate::domain::directory::DirectoryIdViolation>,
) -> Option<T> {
    let raw = raw?;
    match parse(raw) {
        Ok(id) => Some(id),
        Err(e) => {
            let shown: String = raw.chars().take(64).collect();
            tracing::warn!(id = %shown, error = %e, "Identity Store answered an id of another shape: ignored");
            None
        }
    }
}

fn user_of(v: &Value) -> Option<DirectoryUser> {
    Some(DirectoryUser {
        id: answered(v.get("UserId").and_then(Value::as_str), UserId::parse)?,
        user_name: v.get("UserName").and_then(Value::as_str)?.to_owned(),
    })
}

fn paged(body: &Value) -> Value {
    json!({"MaxResults": PAGE})
        .as_object()
        .cloned()
        .map(|mut m| {
            if let Some(o) = body.as_object() {
                m.extend(o.clone());
            }
            Value::Object(m)
        })
        .unwrap_or_default()
}

fn with_token(mut body: Value, token: Option<&str>) -> Value {
    if let Some(t) = token {
        body["NextToken"] = t.into();
    }
    paged(&body)
}

impl Directory for IdentityStore {
    fn user_id<'a>(
        &'a self,
        user_name: &'a DirectoryUserName,
    ) -> Pending<'a, Result<Option<UserId>, DirectoryError>> {
        Box::pin(async move {
            let body = json!({"AlternateIdentifier": {"UniqueAttribute": {
                "AttributePath": "UserName", "AttributeValue": user_name.as_str()}}});
            let out = self.call("GetUserId", body).await?;
            Ok(out.and_then(|v| answered(v.get("UserId").and_then(Value::as_str), UserId::parse)))
        })
    }

    fn user<'a>(
        &'a self,
        id: &'a UserId,
    ) -> Pending<'a, Result<Option<DirectoryUser>, DirectoryError>> {
        Box::pin(async move {
            let out = self
                .call("DescribeUser", json!({"UserId": id.as_str()}))
                .await?;
            Ok(out.and_then(|v| {
                Some(DirectoryUser {
                    id: id.clone(),
                    user_name: v.get("UserName").and_then(Value::as_str)?.to_owned(),
                })
            }))
        })
    }

    fn group_id<'a>(
        &'a self,
        display_name: &'a str,
    ) -> Pending<'a, Result<Option<GroupId>, DirectoryError>> {
        Box::pin(async move {
            let body = json!({"AlternateIdentifier": {"UniqueAttribute": {
                "AttributePath": "DisplayName", "AttributeValue": display_name}}});
            let out = self.call("GetGroupId", body).await?;
            Ok(
                out.and_then(|v| {
                    answered(v.get("GroupId").and_then(Value::as_str), GroupId::parse)
                }),
            )
        })
    }

    fn groups<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<DirectoryGroup>, DirectoryError>> {
        Box::pin(async move {
            let out = self
                .call("ListGroups", with_token(json!({}), token))
                .await?
                .unwrap_or_default();
            let items = out
                .get("Groups")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|g| {
                    Some(DirectoryGroup {
                        id: answered(g.get("GroupId").and_then(Value::as_str), GroupId::parse)?,
                        display_name: g.get("DisplayName").and_then(Value::as_str)?.to_owned(),
                    })
                })
                .collect();
            Ok(Page {
                items,
                next_token: next_token(&out),
            })
        })
    }

    fn member_of<'a>(
        &'a self,
        user: &'a UserId,
        groups: &'a [GroupId],
    ) -> Pending<'a, Result<Vec<GroupId>, DirectoryError>> {
        Box::pin(async move {
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<&str> = groups.iter().map(GroupId::as_str).collect();
            let body = json!({"MemberId": {"UserId": user.as_str()}, "GroupIds": ids});
            // A user deleted meanwhile belongs to nothing.
            let Some(out) = self.call("IsMemberInGroups", body).await? else {
                return Ok(Vec::new());
            };
            Ok(out
                .get("Results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| r.get("MembershipExists").and_then(Value::as_bool) == Some(true))
                .filter_map(|r| r.get("GroupId").and_then(Value::as_str))
                .filter_map(|id| groups.iter().find(|g| g.as_str() == id).cloned())
                .collect())
        })
    }

    fn members<'a>(
        &'a self,
        group: &'a GroupId,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<UserId>, DirectoryError>> {
        Box::pin(async move {
            let body = with_token(json!({"GroupId": group.as_str()}), token);
            let Some(out) = self.call("ListGroupMemberships", body).await? else {
                return Ok(Page {
                    items: Vec::new(),
                    next_token: None,
                });
            };
            let items = out
                .get("GroupMemberships")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    answered(
                        m.pointer("/MemberId/UserId").and_then(Value::as_str),
                        UserId::parse,
                    )
                })
                .collect();
            Ok(Page {
                items,
                next_token: next_token(&out),
            })
        })
    }

    fn users<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<DirectoryUser>, DirectoryError>> {
        Box::pin(async move {
            let out = self
                .call("ListUsers", with_token(json!({}), token))
                .await?
                .unwrap_or_default();
            let items = out
                .get("Users")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(user_of)
                .collect();
            Ok(Page {
                items,
                next_token: next_token(&out),
            })
        })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pace_spaces_requests_evenly_across_tasks() {
        // 200 a second: 20 requests take their turns 5 ms apart, whatever the tasks.
        let pace = std::sync::Arc::new(Pace::new(200.0));
        let start = Instant::now();
        let mut turns = Vec::new();
        for _ in 0..20 {
            let p = pace.clone();
            turns.push(tokio::spawn(async move {
                p.turn().await;
                Instant::now()
            }));
        }
        let mut at: Vec<Duration> = Vec::new();
        for t in turns {
            at.push(t.await.unwrap() - start);
        }
        at.sort();
        // Never early (a sleep may end late, never before its turn).
        for (i, t) in at.iter().enumerate() {
            assert!(
                *t >= Duration::from_millis(5) * i as u32,
                "turn {i} at {t:?}"
            );
        }
        assert!(at[19] >= Duration::from_millis(95), "{at:?}");
    }

    #[test]
    fn a_page_asks_for_100_and_carries_the_token() {
        let b = with_token(json!({"GroupId": "g"}), Some("t1"));
        assert_eq!(
            b,
            json!({"MaxResults": 100, "GroupId": "g", "NextToken": "t1"})
        );
        assert_eq!(with_token(json!({}), None), json!({"MaxResults": 100}));
    }
}
