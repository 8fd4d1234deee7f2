//! API Gateway (REST payload 1.0 and HTTP API payload 2.0): the admin API.
//!
//! - [`request`]: the HTTP request out of either envelope;
//! - [`routes`]: path → route and its (decoded, not yet validated) path parameters;
//! - [`reply`]: result → status code, headers and the proxy-integration response.
//!
//! `PUT` reads the body into the same [`CommandInput`] a direct invoke fills, with the
//! server and subject from the path, and hands it to the core; `GET` reads the live
//! settings back. Every answer, even for a request that never reaches the core, is the
//! JSON result with a precise status.

pub mod reply;
pub mod request;
pub mod routes;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::apply::Chroot;
use crate::domain::{
    Action, ExternalId, FieldError, ServerId, Subject, Target, TargetKind, UserName, Violations,
};
use crate::input::{ActionRule, CommandInput, Reading, type_name};
use crate::invocation::Invocation;
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome, Rejection, echo};
use crate::plan;
use crate::scope::Scope;
use crate::servers;
use crate::sources::error::HandlerError;
use crate::transfer::{LiveHome, Transfer};

use reply::Reply;
use request::{BodyError, HttpRequest};
use routes::{ALLOW, ROUTES, Route, pattern};
use tokio::time::Instant;

/// The field name under which body-level problems (not JSON, not an object) are listed.
pub const BODY_FIELD: &str = "body";
/// The query parameter that turns a `PUT` into a plan.
pub const DRY_RUN_PARAM: &str = "dryRun";

pub async fn handle<T: Transfer>(
    chroot: &Chroot<T>,
    event: Value,
    invocation: &Invocation,
) -> Result<Value, HandlerError> {
    let request = HttpRequest::from_event(&event);
    let served = serve(chroot, &request, invocation.work_deadline()).await;
    if let Some(outcome) = &served.outcome {
        outcome.log();
    }
    log_request(&request, &served);
    Ok(served.reply.to_event(request.format))
}

/// What one request produced: the reply, and the result it reports (none for a
/// successful read-back, which changes nothing).
struct Served {
    reply: Reply,
    outcome: Option<Outcome>,
    /// The matched route (`PUT /servers/{ServerId}/users/{UserName}`), `-` for none.
    route: String,
    target: String,
}

impl Served {
    /// A result answered with its own status (200, 400, 403, 404, 429, 5xx).
    fn outcome(route: &str, outcome: Outcome) -> Self {
        Self {
            reply: Reply::from_outcome(&outcome),
            target: outcome.target_label(),
            outcome: Some(outcome),
            route: route.to_owned(),
        }
    }

    /// A refusal of the HTTP request itself (405, 413, 415): the body is still the
    /// result, but the status says what was wrong with the request.
    fn refused(route: &str, status: u16, outcome: Outcome) -> Self {
        let mut served = Self::outcome(route, outcome);
        served.reply.status = status;
        served
    }
}

/// Who called, what they asked and how it was answered: one line per request, next to
/// the outcome's own line. Bodies are never logged (they may carry policies).
fn log_request(request: &HttpRequest, served: &Served) {
    // Both come from the request: truncated like every echoed value.
    let caller = echo(request.caller.as_deref().unwrap_or("anonymous"));
    let method = echo(request.method.as_deref().unwrap_or("?"));
    let status = served.reply.status;
    let outcome = served.outcome.as_ref().map(|o| o.status.as_str());
    let code = served
        .outcome
        .as_ref()
        .and_then(Outcome::error_code)
        .map(ErrorCode::as_str);
    let api_request_id = request.api_request_id.as_deref();
    if status >= 500 {
        tracing::warn!(caller = %caller, http_method = %method, route = %served.route,
            target_resource = %served.target, http_status = status, outcome,
            error_code = code, api_request_id, "api request");
    } else {
        tracing::info!(caller = %caller, http_method = %method, route = %served.route,
            target_resource = %served.target, http_status = status, outcome,
            error_code = code, api_request_id, "api request");
    }
}

fn rejected(code: ErrorCode, message: impl Into<String>, identity: Identity) -> Outcome {
    Outcome::failed(identity, ErrorBody::new(code, message))
}

/// Who a request is about, from its path (echoed, so safe to show even when invalid).
/// `with_action`: the write it asks for; a read has none.
fn identity_of(route: &Route, with_action: bool) -> Identity {
    let subject = Some(echo(&route.subject));
    Identity {
        action: with_action.then(|| Action::for_kind(route.kind)),
        server_id: Some(echo(&route.server)),
        user_name: subject.clone().filter(|_| route.kind == TargetKind::User),
        external_id: subject.filter(|_| route.kind == TargetKind::Access),
    }
}

async fn serve<T: Transfer>(
    chroot: &Chroot<T>,
    request: &HttpRequest,
    deadline: Instant,
) -> Served {
    let (Some(method), Some(path)) = (request.method.as_deref(), request.path.as_deref()) else {
        return Served::outcome(
            "-",
            rejected(
                ErrorCode::ValidationFailed,
                "not an API Gateway proxy request: it has a requestContext but no HTTP method \
                 or path (httpMethod and path, or requestContext.http.method and rawPath)",
                Identity::default(),
            ),
        );
    };
    // The path decides; an explicit route's parameters only stand in for a path that
    // does not match by itself (a proxy's path always does).
    let route = routes::route(path, request.stage.as_deref()).or_else(|| {
        request
            .template
            .as_deref()
            .and_then(|t| routes::from_template(t, &request.path_parameters))
    });
    let Some(route) = route else {
        return Served::outcome(
            "-",
            rejected(
                ErrorCode::NotFound,
                format!(
                    "no route for {} {}; the routes are {ROUTES}",
                    echo(method),
                    echo(path)
                ),
                Identity::default(),
            ),
        );
    };
    let label = format!("{method} {}", pattern(route.kind));
    match method {
        "PUT" => put(chroot, request, &route, &label, deadline).await,
        "GET" => get(chroot, &route, &label, deadline).await,
        other => {
            let outcome = rejected(
                ErrorCode::ValidationFailed,
                format!(
                    "method {} is not allowed on {}; allowed: {ALLOW}",
                    echo(other),
                    pattern(route.kind)
                ),
                identity_of(&route, false),
            );
            let mut served = Served::refused(&label, 405, outcome);
            served.reply = served.reply.with_header("Allow", ALLOW);
            served
        }
    }
}

/// The path parameters as a validated target, or every one that is invalid.
fn parse_path(route: &Route) -> Result<Target, Vec<FieldError>> {
    let mut errs = Violations::default();
    let server = errs.check("ServerId", ServerId::parse(&route.server));
    let subject = match route.kind {
        TargetKind::User => errs
            .check("UserName", UserName::parse(&route.subject))
            .map(Subject::User),
        TargetKind::Access => errs
            .check("ExternalId", ExternalId::parse(&route.subject))
            .map(Subject::Access),
    };
    match (server, subject) {
        (Some(server), Some(subject)) if errs.is_empty() => Ok(Target::new(server, subject)),
        _ => Err(errs.into_vec()),
    }
}

/// `?dryRun=true|false`; a bare `?dryRun` means true. Other query parameters are
/// ignored, as HTTP APIs conventionally do (caches and proxies add their own).
fn dry_run(request: &HttpRequest, errs: &mut Vec<FieldError>) -> bool {
    let mut dry = None;
    for value in request.query_values(DRY_RUN_PARAM) {
        let parsed = match value.to_ascii_lowercase().as_str() {
            "" | "true" => true,
            "false" => false,
            _ => {
                errs.push(FieldError::new(
                    DRY_RUN_PARAM,
                    format!("must be true or false, got {:?}", echo(value)),
                ));
                return false;
            }
        };
        if dry.is_some_and(|d| d != parsed) {
            errs.push(FieldError::new(
                DRY_RUN_PARAM,
                "given more than once with different values",
            ));
            return false;
        }
        dry = Some(parsed);
    }
    dry.unwrap_or(false)
}

/// Reads the body as a JSON object; an absent or empty body is `{}` (every body field
/// is optional). `Err` is the whole answer: 413, 415 or 400.
fn body_object(
    request: &HttpRequest,
    route: &Route,
) -> Result<Map<String, Value>, Box<(u16, Outcome)>> {
    let bytes = match request.body_bytes() {
        Ok(None) => return Ok(Map::new()),
        Ok(Some(bytes)) => bytes,
        Err(e @ BodyError::TooLarge(_)) => {
            let error = ErrorBody::new(
                ErrorCode::ValidationFailed,
                format!("payload too large: {e}"),
            )
            .with_fields(vec![FieldError::new(BODY_FIELD, &e)]);
            return Err(Box::new((
                413,
                Outcome::failed(identity_of(route, true), error),
            )));
        }
        Err(e @ BodyError::Base64) => {
            return Err(Box::new((400, body_invalid(route, e.to_string()))));
        }
    };
    if !request.body_is_json() {
        let outcome = rejected(
            ErrorCode::ValidationFailed,
            format!(
                "unsupported media type {:?}: the body must be application/json",
                echo(request.content_type.as_deref().unwrap_or(""))
            ),
            identity_of(route, true),
        );
        return Err(Box::new((415, outcome)));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Box::new((
            400,
            body_invalid(
                route,
                format!(
                    "must be a JSON object with HomeDirectory, Role, Policy, PosixProfile; got {}",
                    type_name(&other)
                ),
            ),
        ))),
        // serde_json's message names a line and column, never the body's content.
        Err(e) => Err(Box::new((
            400,
            body_invalid(route, format!("is not valid JSON: {e}")),
        ))),
    }
}

/// A 400 for an unreadable body that still lists every bad path parameter.
fn body_invalid(route: &Route, message: String) -> Outcome {
    let mut fields = parse_path(route).err().unwrap_or_default();
    fields.insert(0, FieldError::new(BODY_FIELD, message));
    Outcome::rejected(Rejection::invalid(identity_of(route, true), fields))
}

fn failed(rejection: Rejection) -> Outcome {
    Outcome::rejected(rejection)
}

/// `PUT`: the body's settings plus the path's ids, through the core like any command.
async fn put<T: Transfer>(
    chroot: &Chroot<T>,
    request: &HttpRequest,
    route: &Route,
    label: &str,
    deadline: Instant,
) -> Served {
    let body = match body_object(request, route) {
        Ok(map) => map,
        Err(refusal) => {
            let (status, outcome) = *refusal;
            return Served::refused(label, status, outcome);
        }
    };
    let mut extra = Vec::new();
    // The path names the server and the user or access; the body may repeat them
    // (a client may send back what it read) but never contradict them.
    for (field, from_path) in [
        ("ServerId", &route.server),
        (route.kind.field(), &route.subject),
    ] {
        match body.get(field) {
            None => {}
            Some(Value::String(s)) if s == from_path => {}
            Some(other) => extra.push(FieldError::new(
                field,
                format!(
                    "must match the path ({:?}) or be left out, got {}",
                    echo(from_path),
                    match other {
                        Value::String(s) => format!("{:?}", echo(s)),
                        v => type_name(v).to_owned(),
                    }
                ),
            )),
        }
    }
    if body.contains_key("DryRun") {
        extra.push(FieldError::new(
            "DryRun",
            format!("not accepted in the body: use ?{DRY_RUN_PARAM}=true"),
        ));
    }
    let dry = dry_run(request, &mut extra);
    let mut input = CommandInput::read(
        &body,
        Reading {
            action: ActionRule::Fixed(Action::for_kind(route.kind)),
            ..Reading::default()
        },
    );
    input.server_id = Some(Ok(route.server.clone()));
    match route.kind {
        TargetKind::User => input.user_name = Some(Ok(route.subject.clone())),
        TargetKind::Access => input.external_id = Some(Ok(route.subject.clone())),
    }
    input.dry_run = dry.then_some(Ok(true));
    // Invalid fields are reported before guardrails (as the core does): problems found
    // here join a ValidationFailed and outrank a NotAllowed.
    let outcome = if extra.is_empty() {
        chroot.run_before(&input, deadline).await
    } else {
        // No call for a request already known bad: its other fields are checked without one.
        match chroot.precheck(&input) {
            Err(rejection) if rejection.error.code == ErrorCode::ValidationFailed => {
                extra.extend(rejection.error.fields);
                failed(Rejection::invalid(rejection.identity, extra))
            }
            _ => failed(Rejection::invalid(identity_of(route, true), extra)),
        }
    };
    Served::outcome(label, outcome)
}

/// The body of a successful `GET`: the live settings as DescribeUser/DescribeAccess
/// name them, and whether they are the chroot.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadBack<'a> {
    pub server_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<&'a str>,
    /// `LOGICAL` with the single `/` → target directory mapping.
    pub chrooted: bool,
    /// The folder the user or access is locked into (`null` when not chrooted).
    pub chroot_target: Option<&'a str>,
    #[serde(flatten)]
    pub live: &'a LiveHome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
}

/// `GET`: validate the path, apply the server guardrail, read back. Never writes.
async fn get<T: Transfer>(
    chroot: &Chroot<T>,
    route: &Route,
    label: &str,
    deadline: Instant,
) -> Served {
    let identity = identity_of(route, false);
    let target = match parse_path(route) {
        Ok(target) => target,
        Err(errors) => {
            let rejection = Rejection::new(identity, ErrorCode::ValidationFailed, errors);
            return Served::outcome(label, failed(rejection));
        }
    };
    // A read reveals a user's settings: it is held to the same server guardrail as a write.
    let server = &target.server;
    let refusal = match tokio::time::timeout_at(deadline, chroot.scope(server)).await {
        Err(_) => return Served::outcome(label, Outcome::out_of_time(identity)),
        Ok(Err(e)) => {
            let mut outcome = Outcome::failed(identity, ErrorBody::from(&e));
            outcome.request_id = e.request_id.clone();
            return Served::outcome(label, outcome);
        }
        Ok(Ok(Scope::Allowed(_))) => None,
        Ok(Ok(Scope::Refused(why))) => Some(why),
    };
    if let Some(why) = refusal {
        let rejection = Rejection::new(
            identity,
            ErrorCode::NotAllowed,
            vec![FieldError::new("ServerId", why)],
        );
        return Served::outcome(label, failed(rejection));
    }
    // The same server-kind check as a write: a clear refusal instead of Transfer's 404.
    let facts = tokio::time::timeout_at(
        deadline,
        chroot.env.servers.facts(&chroot.ports.transfer, server),
    )
    .await;
    match facts {
        Err(_) => return Served::outcome(label, Outcome::out_of_time(identity)),
        Ok(Err(e)) => {
            let mut outcome = Outcome::failed(identity, ErrorBody::from(&e));
            outcome.request_id = e.request_id.clone();
            return Served::outcome(label, outcome);
        }
        Ok(Ok(facts)) => {
            if let Some(refused) = servers::kind_refusal(&facts, &target) {
                return Served::outcome(label, failed(Rejection::invalid(identity, vec![refused])));
            }
        }
    }
    let read = tokio::time::timeout_at(deadline, chroot.inspect(&target)).await;
    let live = match read {
        Err(_) => return Served::outcome(label, Outcome::out_of_time(identity)),
        Ok(Ok(live)) => live,
        Ok(Err(e)) => {
            let mut outcome = Outcome::failed(identity, ErrorBody::from(&e));
            outcome.request_id = e.request_id.clone();
            return Served::outcome(label, outcome);
        }
    };
    let (user_name, external_id) = match &target.subject {
        Subject::User(u) => (Some(u.as_str()), None),
        Subject::Access(a) => (None, Some(a.as_str())),
    };
    let chroot_target = plan::chroot_target(&live.value);
    let body = ReadBack {
        server_id: server.as_str(),
        user_name,
        external_id,
        chrooted: chroot_target.is_some(),
        chroot_target,
        live: &live.value,
        request_id: live.request_id.as_deref(),
    };
    match serde_json::to_value(&body) {
        Ok(body) => Served {
            reply: Reply::json(200, body),
            outcome: None,
            route: label.to_owned(),
            target: target.to_string(),
        },
        Err(_) => Served::outcome(
            label,
            rejected(
                ErrorCode::Internal,
                "the read-back could not be serialised",
                identity,
            ),
        ),
    }
}
