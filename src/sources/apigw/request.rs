//! The HTTP request inside an API Gateway envelope, for both payload formats.
//!
//! Read through `aws_lambda_events`' typed structs (`ApiGatewayProxyRequest`,
//! `ApiGatewayV2httpRequest`) when the envelope fits them. One that does not (a field
//! missing or of an unexpected type) is read field by field from the JSON instead: it
//! must still get an HTTP answer in the caller's format, never a deserialisation
//! failure of the whole invocation (which API Gateway turns into a bare 502). Both
//! readings give the same [`HttpRequest`] for the same envelope (tested).

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::Value;

/// Request bodies above this many bytes (after base64 decoding) are refused with 413.
/// The largest legitimate body (a 1024-byte home, a 2048-byte role ARN and a 2048-byte
/// session policy, JSON-escaped) stays well below it.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Which payload format the event uses; the reply is given in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// REST API, or HTTP API with payload format 1.0.
    V1,
    /// HTTP API payload format 2.0 (`"version": "2.0"`).
    V2,
}

/// One HTTP request, whatever envelope it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub format: Format,
    pub method: Option<String>,
    /// The path as the envelope gives it (possibly with a stage prefix, still encoded).
    pub path: Option<String>,
    pub stage: Option<String>,
    /// The explicit route API Gateway matched (REST `resource`, the path part of an
    /// HTTP API `routeKey`) and its `pathParameters` (sorted by name): a fallback for a
    /// path that does not match on its own.
    pub template: Option<String>,
    pub path_parameters: Vec<(String, String)>,
    /// Query parameters, decoded, in order; a repeated name appears once per value.
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub base64: bool,
    /// The IAM principal (or other authenticated identity) that called the API.
    pub caller: Option<String>,
    /// API Gateway's own request id, for correlating with its access logs.
    pub api_request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is {0} bytes; the limit is {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error("isBase64Encoded is true but the body is not valid base64")]
    Base64,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A header by name, case-insensitively (REST keeps the caller's case, HTTP APIs
/// lower-case it); `multiValueHeaders` only when `headers` lacks it.
fn header(event: &Value, name: &str) -> Option<String> {
    let find = |key: &str| {
        event.get(key).and_then(Value::as_object).and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    };
    if let Some(v) = find("headers").and_then(Value::as_str) {
        return Some(v.to_owned());
    }
    find("multiValueHeaders")
        .and_then(Value::as_array)
        .and_then(|vals| vals.first())
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `application/x-www-form-urlencoded`-style decoding of one query component.
fn decode_query_part(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// HTTP API's `rawQueryString` (its `queryStringParameters` joins repeated values
/// with commas, which would be ambiguous).
fn parse_raw_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode_query_part(k), decode_query_part(v)),
            None => (decode_query_part(pair), String::new()),
        })
        .collect()
}

/// REST's query parameters, which API Gateway has already decoded; by name, each
/// name's values in order.
fn v1_query(event: &Value) -> Vec<(String, String)> {
    let mut query = v1_query_as_given(event);
    query.sort_by(|a, b| a.0.cmp(&b.0));
    query
}

fn v1_query_as_given(event: &Value) -> Vec<(String, String)> {
    if let Some(multi) = event
        .get("multiValueQueryStringParameters")
        .and_then(Value::as_object)
    {
        return multi
            .iter()
            .flat_map(|(k, vals)| {
                vals.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(move |v| (k.clone(), v.to_owned()))
            })
            .collect();
    }
    event
        .get("queryStringParameters")
        .and_then(Value::as_object)
        .map(|q| {
            q.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A non-empty string (API Gateway sends `""` for some absent values).
fn given(s: &Option<String>) -> Option<String> {
    s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A header of a typed envelope, as text.
fn typed_header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn sorted(params: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = params.into_iter().collect();
    params.sort();
    params
}

fn format_of(event: &Value) -> Format {
    match event.get("version").and_then(Value::as_str) {
        Some("2.0") => Format::V2,
        _ => Format::V1,
    }
}

impl HttpRequest {
    /// The request in `event`, typed when the envelope fits `aws_lambda_events`.
    pub fn from_event(event: &Value) -> Self {
        let typed = match format_of(event) {
            Format::V1 => ApiGatewayProxyRequest::deserialize(event)
                .ok()
                .map(Self::from_v1),
            Format::V2 => ApiGatewayV2httpRequest::deserialize(event)
                .ok()
                .map(Self::from_v2),
        };
        typed.unwrap_or_else(|| Self::from_json(event))
    }

    fn from_v1(e: ApiGatewayProxyRequest) -> Self {
        let ctx = &e.request_context;
        let multi = &e.multi_value_query_string_parameters;
        let query = if multi.iter().next().is_some() {
            multi
                .iter()
                .map(|(k, _)| k.to_owned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .flat_map(|k| {
                    multi
                        .all(&k)
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |v| (k.clone(), v.to_owned()))
                })
                .collect()
        } else {
            sorted(
                e.query_string_parameters
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
            )
        };
        Self {
            format: Format::V1,
            method: Some(e.http_method.as_str())
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .or_else(|| Some(ctx.http_method.as_str().to_owned()).filter(|m| !m.is_empty())),
            path: given(&e.path).or_else(|| given(&ctx.path)),
            stage: given(&ctx.stage),
            template: given(&e.resource),
            path_parameters: sorted(e.path_parameters.clone()),
            query,
            content_type: typed_header(&e.headers, "content-type")
                .or_else(|| typed_header(&e.multi_value_headers, "content-type")),
            body: e.body.clone(),
            base64: e.is_base64_encoded,
            caller: given(&ctx.identity.user_arn)
                .or_else(|| given(&ctx.identity.caller))
                .or_else(|| {
                    ctx.authorizer
                        .fields
                        .get("principalId")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                }),
            api_request_id: given(&ctx.request_id),
        }
    }

    fn from_v2(e: ApiGatewayV2httpRequest) -> Self {
        let ctx = &e.request_context;
        let route = given(&e.route_key);
        let route = route.as_deref().and_then(|k| k.split_once(' '));
        let authorizer = ctx.authorizer.as_ref();
        let iam = authorizer.and_then(|a| a.iam.as_ref());
        Self {
            format: Format::V2,
            method: Some(ctx.http.method.as_str())
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .or_else(|| route.map(|(m, _)| m.to_owned())),
            path: given(&e.raw_path).or_else(|| given(&ctx.http.path)),
            stage: given(&ctx.stage),
            template: route.map(|(_, t)| t.to_owned()),
            path_parameters: sorted(e.path_parameters.clone()),
            query: given(&e.raw_query_string)
                .map(|q| parse_raw_query(&q))
                .unwrap_or_default(),
            content_type: typed_header(&e.headers, "content-type"),
            body: e.body.clone(),
            base64: e.is_base64_encoded,
            caller: iam
                .and_then(|i| given(&i.user_arn).or_else(|| given(&i.caller_id)))
                .or_else(|| {
                    authorizer
                        .and_then(|a| a.jwt.as_ref())
                        .and_then(|j| j.claims.get("sub"))
                        .filter(|s| !s.is_empty())
                        .cloned()
                }),
            api_request_id: given(&ctx.request_id),
        }
    }

    /// The request read field by field, for an envelope the typed structs refuse.
    fn from_json(event: &Value) -> Self {
        let format = format_of(event);
        let body = event.get("body").and_then(Value::as_str).map(str::to_owned);
        let base64 = event
            .get("isBase64Encoded")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let content_type = header(event, "content-type");
        let stage = text(event, "/requestContext/stage").map(str::to_owned);
        let api_request_id = text(event, "/requestContext/requestId").map(str::to_owned);
        let path_parameters = sorted(
            event
                .get("pathParameters")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))),
        );
        match format {
            Format::V1 => Self {
                format,
                method: text(event, "/httpMethod")
                    .or_else(|| text(event, "/requestContext/httpMethod"))
                    .map(str::to_owned),
                path: text(event, "/path")
                    .or_else(|| text(event, "/requestContext/path"))
                    .map(str::to_owned),
                stage,
                template: text(event, "/resource").map(str::to_owned),
                path_parameters,
                query: v1_query(event),
                content_type,
                body,
                base64,
                caller: text(event, "/requestContext/identity/userArn")
                    .or_else(|| text(event, "/requestContext/identity/caller"))
                    .or_else(|| text(event, "/requestContext/authorizer/principalId"))
                    .map(str::to_owned),
                api_request_id,
            },
            Format::V2 => Self {
                format,
                method: text(event, "/requestContext/http/method")
                    .map(str::to_owned)
                    .or_else(|| {
                        // `routeKey` is "PUT /servers/..." for explicit routes.
                        text(event, "/routeKey")
                            .and_then(|k| k.split_once(' '))
                            .map(|(m, _)| m.to_owned())
                    }),
                path: text(event, "/rawPath")
                    .or_else(|| text(event, "/requestContext/http/path"))
                    .map(str::to_owned),
                stage,
                template: text(event, "/routeKey")
                    .and_then(|k| k.split_once(' '))
                    .map(|(_, t)| t.to_owned()),
                path_parameters,
                query: text(event, "/rawQueryString")
                    .map(parse_raw_query)
                    .unwrap_or_default(),
                content_type,
                body,
                base64,
                caller: text(event, "/requestContext/authorizer/iam/userArn")
                    .or_else(|| text(event, "/requestContext/authorizer/iam/callerId"))
                    .or_else(|| text(event, "/requestContext/authorizer/jwt/claims/sub"))
                    .map(str::to_owned),
                api_request_id,
            },
        }
    }

    /// Every value given for query parameter `name`.
    pub fn query_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.query
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `true` when the body is declared JSON, or not declared at all (several IAM-signing
    /// clients send none); `false` for any other declared media type.
    pub fn body_is_json(&self) -> bool {
        let Some(ct) = &self.content_type else {
            return true;
        };
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        media == "application/json"
            || (media.starts_with("application/") && media.ends_with("+json"))
    }

    /// The body's bytes (base64-decoded when API Gateway encoded it), size-checked
    /// before anything is allocated for it. `None`: no body, or an empty one.
    pub fn body_bytes(&self) -> Result<Option<Vec<u8>>, BodyError> {
        let Some(body) = self.body.as_deref().filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        if !self.base64 {
            return match body.len() {
                n if n > MAX_BODY_BYTES => Err(BodyError::TooLarge(n)),
                _ => Ok(Some(body.as_bytes().to_vec())),
            };
        }
        // Every 4 base64 characters carry 3 bytes: refuse before decoding a huge body.
        let estimate = body.len() / 4 * 3;
        if estimate > MAX_BODY_BYTES + 3 {
            return Err(BodyError::TooLarge(estimate));
        }
        let bytes = STANDARD
            .decode(body.trim_end())
            .map_err(|_| BodyError::Base64)?;
        match bytes.len() {
            n if n > MAX_BODY_BYTES => Err(BodyError::TooLarge(n)),
            0 => Ok(None),
            _ => Ok(Some(bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every API Gateway envelope the project ships or vendors: each fits the typed
    /// structs, and the typed and the field-by-field readings agree.
    #[test]
    fn typed_and_field_by_field_readings_agree() {
        let samples = [
            include_str!("../../../events/apigw-v1-put-user.json"),
            include_str!("../../../events/apigw-v1-put-access.json"),
            include_str!("../../../events/apigw-v1-get-user.json"),
            include_str!("../../../events/apigw-v1-invalid.json"),
            include_str!("../../../events/apigw-v2-put-user.json"),
            include_str!("../../../events/apigw-v2-get-user.json"),
            include_str!("../../../events/apigw-v2-dry-run.json"),
            include_str!("../../../tests/fixtures/aws-events/example-apigw-request.json"),
            include_str!("../../../tests/fixtures/aws-events/example-apigw-sam-rest-request.json"),
            include_str!("../../../tests/fixtures/aws-events/example-apigw-sam-http-request.json"),
            include_str!("../../../tests/fixtures/aws-events/example-apigw-v2-request-iam.json"),
        ];
        for text in samples {
            let event: Value = serde_json::from_str(text).unwrap();
            let typed = match format_of(&event) {
                Format::V1 => ApiGatewayProxyRequest::deserialize(&event).map(HttpRequest::from_v1),
                Format::V2 => {
                    ApiGatewayV2httpRequest::deserialize(&event).map(HttpRequest::from_v2)
                }
            };
            let typed = typed.unwrap_or_else(|e| panic!("{e}: {text:.200}"));
            assert_eq!(typed, HttpRequest::from_json(&event), "{text:.200}");
            assert!(typed.method.is_some() && typed.path.is_some());
        }
    }

    #[test]
    fn an_envelope_the_types_refuse_is_still_read() {
        // A header whose value is a number: the typed struct refuses the whole event.
        let event = serde_json::json!({
            "httpMethod": "PUT", "path": "/servers/s-0123456789abcdef0/users/alice",
            "headers": {"Content-Type": "application/json", "X-Count": 3},
            "requestContext": {"requestId": "r-1", "stage": "prod"},
            "body": "{}"
        });
        assert!(ApiGatewayProxyRequest::deserialize(&event).is_err());
        let r = HttpRequest::from_event(&event);
        assert_eq!(r.method.as_deref(), Some("PUT"));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.api_request_id.as_deref(), Some("r-1"));
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn v2_raw_query_is_decoded_once_and_keeps_repeats() {
        let q = parse_raw_query("dryRun=true&a=1&a=2&b=x%2By+z&flag");
        assert_eq!(
            q,
            [
                ("dryRun".into(), "true".into()),
                ("a".into(), "1".into()),
                ("a".into(), "2".into()),
                ("b".into(), "x+y z".into()),
                ("flag".into(), String::new()),
            ]
        );
    }

    #[test]
    fn headers_are_case_insensitive_and_multi_value_is_a_fallback() {
        let e = json!({"headers": {"content-TYPE": "text/plain"}});
        assert_eq!(header(&e, "Content-Type").as_deref(), Some("text/plain"));
        let e =
            json!({"headers": null, "multiValueHeaders": {"Content-Type": ["application/json"]}});
        assert_eq!(
            header(&e, "content-type").as_deref(),
            Some("application/json")
        );
    }

    #[test]
    fn json_media_types() {
        let mut r = HttpRequest::from_event(&json!({}));
        for (ct, json) in [
            (None, true),
            (Some("application/json"), true),
            (Some("Application/JSON; charset=utf-8"), true),
            (Some("application/merge-patch+json"), true),
            (Some("text/plain"), false),
            (Some("application/x-www-form-urlencoded"), false),
            (Some(""), false),
        ] {
            r.content_type = ct.map(str::to_owned);
            assert_eq!(r.body_is_json(), json, "{ct:?}");
        }
    }

    #[test]
    fn bodies_are_size_checked_after_decoding() {
        let mut r = HttpRequest::from_event(&json!({"body": "{}"}));
        assert_eq!(r.body_bytes(), Ok(Some(b"{}".to_vec())));
        r.body = Some(STANDARD.encode(b"{\"a\":1}"));
        r.base64 = true;
        assert_eq!(r.body_bytes(), Ok(Some(b"{\"a\":1}".to_vec())));
        r.body = Some("not base64!".into());
        assert_eq!(r.body_bytes(), Err(BodyError::Base64));
        // Exactly at the limit is accepted, one byte over is not, encoded or not.
        let at = vec![b' '; MAX_BODY_BYTES];
        r.body = Some(STANDARD.encode(&at));
        assert_eq!(
            r.body_bytes().map(|b| b.map(|b| b.len())),
            Ok(Some(MAX_BODY_BYTES))
        );
        r.body = Some(STANDARD.encode([at.as_slice(), b" "].concat()));
        assert_eq!(r.body_bytes(), Err(BodyError::TooLarge(MAX_BODY_BYTES + 1)));
        r.base64 = false;
        r.body = Some(" ".repeat(MAX_BODY_BYTES + 1));
        assert_eq!(r.body_bytes(), Err(BodyError::TooLarge(MAX_BODY_BYTES + 1)));
        r.body = Some(String::new());
        assert_eq!(r.body_bytes(), Ok(None));
    }
}
