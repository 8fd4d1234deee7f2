//! The Lambda Runtime API emulator behind `lambda-runtime-api` (bench tooling and the
//! concurrency tests): BENCH AND TEST TOOLING, not part of the function.
//!
//! It serves the part of the Runtime API (2018-06-01) a runtime client uses, to one
//! runtime process (which may poll `/next` several times at once, as a runtime under
//! Lambda Managed Instances does with `AWS_LAMBDA_MAX_CONCURRENCY`):
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: long poll; the next event with the
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn` and
//!   `-Trace-Id` headers;
//! - `POST /2018-06-01/runtime/invocation/<id>/response` and `.../error`;
//! - `POST /2018-06-01/runtime/init/error`.
//!
//! and a control plane for a driver (`bench/runtime_emulator.py`), or the same calls in
//! process ([`RuntimeApi::invoke`], [`RuntimeApi::ready`]):
//!
//! - `GET /_emulator/ready`: waits for the runtime's first `GET /next` and answers its
//!   `CLOCK_MONOTONIC` time in nanoseconds (`{"FirstNextMonotonicNs": n}`), the clock
//!   Python's `time.monotonic_ns()` reads, so cold start = spawn → first `/next`
//!   across the two processes; 500 with the runtime's report after an init error;
//! - `POST /_emulator/invoke` (body: the event): hands the event to a waiting
//!   `/next` and answers, once the runtime has posted its result, that result as the
//!   body with `X-Emulator-Kind` (`response` or `error`) and `X-Emulator-Latency-Ns`.
//!   Invocations may overlap: each waits for its own result.
//!
//! Latency is taken here, in compiled code, from the moment `/next` answers with the
//! event to the moment the result's body has been read: the span Lambda bills as the
//! function's duration. The driver's own (Python) overhead is outside it, so it taxes
//! neither implementation. A first emulator written in Python measured the same span
//! but spent about 0.35 ms of it in its own request parsing and threads, which both
//! implementations paid and which hid most of the difference between them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:111122223333:function:transfer-chroot-bench";
/// What the runtime sees as its remaining time for each event, unless told otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// How long the driver waits for a runtime (cold start, or one invocation).
const DRIVER_WAIT: Duration = Duration::from_secs(60);

type Body = Full<Bytes>;

/// A runtime's answer to one event.
struct Outcome {
    kind: &'static str,
    /// When `/next` answered with the event.
    handed: Option<Instant>,
    received: Instant,
    body: Bytes,
}

#[derive(Default)]
struct Waiting {
    /// Request id → (when `/next` answered with it, who waits for the result).
    pending: HashMap<String, (Option<Instant>, oneshot::Sender<Outcome>)>,
    first_next_ns: Option<u64>,
    init_error: Option<Bytes>,
}

struct State {
    events_tx: mpsc::UnboundedSender<(String, Bytes, Duration)>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Bytes, Duration)>>,
    waiting: Mutex<Waiting>,
    /// Signalled on the first `/next` and on an init error.
    ready: Notify,
    next_id: AtomicU64,
    /// The remaining time each event is handed with.
    deadline: Duration,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock behind Python's `time.monotonic_ns()`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp
}

fn accepted() -> Response<Body> {
    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let body = crate::read_body(req.into_body()).await;
    let received = Instant::now();
    let runtime = path.strip_prefix(PREFIX);
    let invocation = runtime.and_then(|r| r.strip_prefix("/invocation/"));
    Ok(match (method, runtime, invocation, path.as_str()) {
        (Method::GET, Some("/invocation/next"), _, _) => next(&state).await,
        (Method::POST, Some("/init/error"), _, _) => {
            state.lock().init_error = Some(body);
            state.ready.notify_waiters();
            accepted()
        }
        (Method::POST, _, Some(rest), _) => {
            let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
            let kind = match kind {
                "response" => "response",
                "error" => "error",
                _ => return Ok(reply(StatusCode::NOT_FOUND, "")),
            };
            let waiter = state.lock().pending.remove(id);
            match waiter {
                Some((handed, tx)) => {
                    let _ = tx.send(Outcome {
                        kind,
                        handed,
                        received,
                        body,
                    });
                    accepted()
                }
                None => reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidRequestID"}"#,
                ),
            }
        }
        (Method::GET, None, _, "/_emulator/ready") => ready(&state).await,
        (Method::POST, None, _, "/_emulator/invoke") => invoke(&state, body).await,
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorType":"NotFound"}"#),
    })
}

async fn next(state: &State) -> Response<Body> {
    {
        let mut w = state.lock();
        if w.first_next_ns.is_none() {
            w.first_next_ns = Some(monotonic_ns());
            drop(w);
            state.ready.notify_waiters();
        }
    }
    let Some((id, event, deadline)) = state.events_rx.lock().await.recv().await else {
        return reply(StatusCode::GONE, "");
    };
    let deadline_ms = SystemTime::now()
        .checked_add(deadline)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    let mut resp = reply(StatusCode::OK, event);
    let h = resp.headers_mut();
    let header = |v: String| HeaderValue::from_str(&v).ok();
    for (name, value) in [
        ("content-type", Some("application/json".to_owned())),
        ("lambda-runtime-aws-request-id", Some(id.clone())),
        ("lambda-runtime-deadline-ms", Some(deadline_ms.to_string())),
        (
            "lambda-runtime-invoked-function-arn",
            Some(FUNCTION_ARN.to_owned()),
        ),
        (
            "lambda-runtime-trace-id",
            Some(format!("Root=1-00000000-{id:0>24};Sampled=0")),
        ),
    ] {
        if let Some(v) = value.and_then(header) {
            h.insert(name, v);
        }
    }
    // The clock starts as the event leaves: what remains is hyper writing this reply.
    if let Some(entry) = state.lock().pending.get_mut(&id) {
        entry.0 = Some(Instant::now());
    }
    resp
}

async fn ready(state: &State) -> Response<Body> {
    let wait = async {
        loop {
            let notified = state.ready.notified();
            {
                let w = state.lock();
                if let Some(err) = &w.init_error {
                    return reply(StatusCode::INTERNAL_SERVER_ERROR, err.clone());
                }
                if let Some(ns) = w.first_next_ns {
                    return reply(
                        StatusCode::OK,
                        format!(r#"{{"FirstNextMonotonicNs":{ns}}}"#),
                    );
                }
            }
            notified.await;
        }
    };
    tokio::time::timeout(DRIVER_WAIT, wait)
        .await
        .unwrap_or_else(|_| {
            reply(
                StatusCode::GATEWAY_TIMEOUT,
                "the runtime never asked for an event",
            )
        })
}

/// Why an invocation has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The runtime reported an init error (its report).
    Init(Bytes),
    /// No result within the driver's wait (60 s).
    TimedOut,
    /// The runtime went away, or never asked for an event.
    NoResult(&'static str),
}

/// A runtime's answer to one invocation.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub request_id: String,
    /// `response` or `error`.
    pub kind: &'static str,
    pub body: Bytes,
    /// `/next` answering with the event → the result's body read.
    pub latency: Duration,
}

async fn invoke_event(
    state: &State,
    event: Bytes,
    deadline: Duration,
) -> Result<Invoked, InvokeError> {
    let n = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("00000000-0000-4000-8000-{n:012x}");
    let (tx, mut rx) = oneshot::channel();
    state.lock().pending.insert(id.clone(), (None, tx));
    if state.events_tx.send((id.clone(), event, deadline)).is_err() {
        return Err(InvokeError::NoResult("event queue closed"));
    }
    let wait = async {
        loop {
            let notified = state.ready.notified();
            if let Some(err) = state.lock().init_error.clone() {
                return Err(InvokeError::Init(err));
            }
            tokio::select! {
                out = &mut rx => return out.map_err(|_| InvokeError::NoResult("runtime gone")),
                () = notified => {}
            }
        }
    };
    match tokio::time::timeout(DRIVER_WAIT, wait).await {
        Ok(Ok(out)) => Ok(Invoked {
            request_id: id,
            kind: out.kind,
            latency: out.handed.map_or(Duration::ZERO, |h| {
                out.received.saturating_duration_since(h)
            }),
            body: out.body,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            state.lock().pending.remove(&id);
            Err(InvokeError::TimedOut)
        }
    }
}

async fn invoke(state: &State, event: Bytes) -> Response<Body> {
    match invoke_event(state, event, state.deadline).await {
        Ok(out) => {
            let mut resp = reply(StatusCode::OK, out.body);
            let h = resp.headers_mut();
            h.insert("x-emulator-kind", HeaderValue::from_static(out.kind));
            if let Ok(v) = HeaderValue::from_str(&out.latency.as_nanos().to_string()) {
                h.insert("x-emulator-latency-ns", v);
            }
            resp
        }
        Err(InvokeError::Init(err)) => reply(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(InvokeError::TimedOut) => {
            reply(StatusCode::GATEWAY_TIMEOUT, "no result from the runtime")
        }
        Err(InvokeError::NoResult(why)) => reply(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}

/// A running emulator on loopback; stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    serve: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

impl RuntimeApi {
    /// Listens on `listen` (loopback only); each event is handed with `deadline` left.
    pub async fn start(listen: SocketAddr, deadline: Duration) -> std::io::Result<Self> {
        if !listen.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the emulator only listens on loopback",
            ));
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            events_tx,
            events_rx: tokio::sync::Mutex::new(events_rx),
            waiting: Mutex::new(Waiting::default()),
            ready: Notify::new(),
            next_id: AtomicU64::new(0),
            deadline,
        });
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let served = state.clone();
        let serve = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Each reply is one write, but never let Nagle hold one back.
                let _ = stream.set_nodelay(true);
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, serve })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits (up to 60 s) for the runtime's first `GET /next`; the runtime's init error
    /// report if it sent one instead.
    pub async fn ready(&self) -> Result<(), InvokeError> {
        let resp = ready(&self.state).await;
        match resp.status() {
            StatusCode::OK => Ok(()),
            StatusCode::INTERNAL_SERVER_ERROR => {
                let body = self.state.lock().init_error.clone().unwrap_or_default();
                Err(InvokeError::Init(body))
            }
            _ => Err(InvokeError::NoResult(
                "the runtime never asked for an event",
            )),
        }
    }

    /// Hands `event` to the runtime and waits for its result (invocations may overlap).
    pub async fn invoke(&self, event: impl Into<Bytes>) -> Result<Invoked, InvokeError> {
        invoke_event(&self.state, event.into(), self.state.deadline).await
    }

    /// As [`invoke`](Self::invoke), the event handed with `deadline` left instead of the
    /// emulator's own (a soak cuts some invocations short).
    pub async fn invoke_with_deadline(
        &self,
        event: impl Into<Bytes>,
        deadline: Duration,
    ) -> Result<Invoked, InvokeError> {
        invoke_event(&self.state, event.into(), deadline).await
    }
}
