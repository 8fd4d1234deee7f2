//! HTTP replies: the one place a result becomes a status code and headers.

use serde_json::{Map, Value, json};

use super::request::Format;
use crate::outcome::{ErrorCode, Outcome, Status};

/// `Retry-After` when Transfer did not say how long to wait.
pub const DEFAULT_RETRY_AFTER_SECONDS: u64 = 1;

/// An HTTP reply whose body is always JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// The status code for a result (docs/CONTRACT.md, "API Gateway"):
/// - 200 for every result that is not a failure (`Updated`, `Unchanged`, `Planned`);
/// - 400 `ValidationFailed` (also when Transfer itself refused the values we sent);
/// - 403 `NotAllowed`, 404 `NotFound`, 429 `Throttled`, 500 `Internal`;
/// - `Upstream`: 503 when retrying later can help (5xx, timeouts, unreachable), 502
///   when Transfer refused in a way a retry will not change (e.g. access denied).
pub fn status_for(outcome: &Outcome) -> u16 {
    if outcome.status != Status::Failed {
        return 200;
    }
    let Some(error) = &outcome.error else {
        return 500;
    };
    match error.code {
        ErrorCode::ValidationFailed => 400,
        ErrorCode::NotAllowed => 403,
        ErrorCode::NotFound => 404,
        ErrorCode::Throttled => 429,
        ErrorCode::Upstream if error.retryable => 503,
        ErrorCode::Upstream => 502,
        ErrorCode::Internal => 500,
    }
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![
                ("Content-Type", "application/json".to_owned()),
                // Results and read-backs describe live state: never serve them from a cache.
                ("Cache-Control", "no-store".to_owned()),
            ],
            body,
        }
    }

    /// The reply for a result: its status, and `Retry-After` when waiting helps.
    pub fn from_outcome(outcome: &Outcome) -> Self {
        let status = status_for(outcome);
        let mut reply = Self::json(status, outcome.to_json());
        if matches!(status, 429 | 503) {
            let after = outcome
                .error
                .as_ref()
                .and_then(|e| e.retry_after_seconds)
                .unwrap_or(DEFAULT_RETRY_AFTER_SECONDS);
            reply.headers.push(("Retry-After", after.to_string()));
        }
        reply
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// The Lambda proxy-integration response for `format`. Both formats take the same
    /// keys; the body is a JSON string, never base64.
    pub fn to_event(&self, format: Format) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect();
        let body = serde_json::to_string(&self.body).unwrap_or_else(|_| {
            r#"{"Status":"Failed","Error":{"Code":"Internal","Message":"result could not be serialised","Retryable":false}}"#.to_owned()
        });
        let mut reply = json!({
            "statusCode": self.status,
            "headers": headers,
            "body": body,
            "isBase64Encoded": false,
        });
        if format == Format::V1 {
            // REST merges both maps; giving each header once in both is unambiguous.
            let multi: Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!([v])))
                .collect();
            reply["multiValueHeaders"] = Value::Object(multi);
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ErrorBody, Identity};

    fn failed(code: ErrorCode, retryable: bool) -> Outcome {
        let mut e = ErrorBody::new(code, "x");
        e.retryable = retryable;
        Outcome::failed(Identity::default(), e)
    }

    #[test]
    fn every_result_has_its_status() {
        for status in [
            Status::Updated,
            Status::Unchanged,
            Status::Planned,
            Status::Skipped,
        ] {
            assert_eq!(status_for(&Outcome::new(status, Identity::default())), 200);
        }
        for (code, retryable, http) in [
            (ErrorCode::ValidationFailed, false, 400),
            (ErrorCode::NotAllowed, false, 403),
            (ErrorCode::NotFound, false, 404),
            (ErrorCode::Throttled, true, 429),
            (ErrorCode::Upstream, true, 503),
            (ErrorCode::Upstream, false, 502),
            (ErrorCode::Internal, false, 500),
        ] {
            assert_eq!(status_for(&failed(code, retryable)), http, "{code:?}");
        }
        assert_eq!(
            status_for(&Outcome::new(Status::Failed, Identity::default())),
            500
        );
    }

    #[test]
    fn retry_after_only_when_waiting_helps() {
        let header = |o: &Outcome| {
            Reply::from_outcome(o)
                .headers
                .iter()
                .find(|(k, _)| *k == "Retry-After")
                .map(|(_, v)| v.clone())
        };
        let mut throttled = failed(ErrorCode::Throttled, true);
        assert_eq!(header(&throttled).as_deref(), Some("1"));
        throttled.error.as_mut().unwrap().retry_after_seconds = Some(7);
        assert_eq!(header(&throttled).as_deref(), Some("7"));
        assert_eq!(
            header(&failed(ErrorCode::Upstream, true)).as_deref(),
            Some("1")
        );
        assert_eq!(header(&failed(ErrorCode::Upstream, false)), None);
        assert_eq!(header(&failed(ErrorCode::NotFound, false)), None);
    }

    #[test]
    fn both_formats_carry_status_headers_and_a_json_string_body() {
        let reply = Reply::json(405, json!({"Status": "Failed"})).with_header("Allow", "GET, PUT");
        let v2 = reply.to_event(Format::V2);
        assert_eq!(v2["statusCode"], 405);
        assert_eq!(v2["headers"]["Allow"], "GET, PUT");
        assert_eq!(v2["headers"]["Content-Type"], "application/json");
        assert_eq!(v2["body"], r#"{"Status":"Failed"}"#);
        assert_eq!(v2["isBase64Encoded"], false);
        assert!(v2.get("multiValueHeaders").is_none());
        let v1 = reply.to_event(Format::V1);
        assert_eq!(v1["multiValueHeaders"]["Allow"], json!(["GET, PUT"]));
    }
}
