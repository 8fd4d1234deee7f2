//! Structured logs as Lambda expects them: `AWS_LAMBDA_LOG_FORMAT` (`JSON` by default
//! here, `Text` on request) and `AWS_LAMBDA_LOG_LEVEL`, falling back to `RUST_LOG`.

use tracing_subscriber::EnvFilter;

pub fn init() {
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
    let filter = filter
        .add_directive("aws_smithy_runtime=warn".parse().unwrap_or_default())
        .add_directive("aws_config=warn".parse().unwrap_or_default())
        .add_directive("hyper=warn".parse().unwrap_or_default());
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if text {
        builder.with_ansi(false).try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            // The runtime's per-invocation span carries Lambda's `requestId`.
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
}
