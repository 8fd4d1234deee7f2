//! Structured logs as Lambda expects them: `AWS_LAMBDA_LOG_FORMAT` (`JSON` by default
//! here, `Text` on request) and `AWS_LAMBDA_LOG_LEVEL`, falling back to `RUST_LOG`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields};
use tracing_subscriber::fmt::{MakeWriter, Subscriber};

fn filter() -> EnvFilter {
    let level =
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .map(|l| match l.to_ascii_uppercase().as_str() {
                "TRACE" => "trace",
                "DEBUG" => "debug",
                "WARN" => "warn",
                "ERROR" | "FATAL" => "error",
                _ => "info",
            });
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // The SDK logs request/response details at debug/trace; keep them out of INFO.
    filter
        .add_directive("aws_smithy_runtime=warn".parse().unwrap_or_default())
        .add_directive("aws_config=warn".parse().unwrap_or_default())
        .add_directive("hyper=warn".parse().unwrap_or_default())
}

/// The JSON format the function logs in, writing to `writer` (stdout on Lambda; tests
/// capture it). One object per line, the event's fields at the top level; context
/// comes from spans, not repeated fields: the runtime's per-invocation span carries
/// Lambda's `requestId`, ours the `source`, an SQS record's its `messageId` and
/// `target`. All of them, outermost first, are under `spans`.
pub fn json<W>(filter: EnvFilter, writer: W) -> Subscriber<JsonFields, Format<Json>, EnvFilter, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .finish()
}

pub fn init() {
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    // A second call (tests, tools) keeps the first subscriber.
    if text {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_target(false)
            .with_ansi(false)
            .try_init();
    } else {
        let _ = tracing::subscriber::set_global_default(json(filter(), std::io::stdout));
    }
}
