//! Structured logs as Lambda expects them: `AWS_LAMBDA_LOG_FORMAT` (`JSON` by default
//! here, `Text` on request) and `AWS_LAMBDA_LOG_LEVEL`, falling back to `RUST_LOG`
//! (`target=level` directives).
//!
//! The filter is `tracing_subscriber`'s `Targets` (levels by target prefix), not
//! `EnvFilter`: the same directives the function needs without the regex engine
//! `EnvFilter` links in for span and field matching, which made the binary (and the
//! resident code it maps) about a megabyte larger (docs/PERFORMANCE.md).
//!
//! Release builds compile `DEBUG` and `TRACE` events out (`tracing`'s and `log`'s
//! `release_max_level_info`, Cargo.toml), so there those two levels log what `INFO`
//! does; the function's own lines are all `INFO` and above.

use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The level `AWS_LAMBDA_LOG_LEVEL` names (Lambda's names; FATAL is ERROR here).
fn lambda_level(raw: &str) -> LevelFilter {
    match raw.to_ascii_uppercase().as_str() {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    }
}

/// The function's filter: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO; the SDK's
/// and hyper's request/response details (debug, trace) kept out below WARN.
pub fn filter_from(lambda_level_var: Option<&str>, rust_log: Option<&str>) -> Targets {
    let base = match (lambda_level_var, rust_log) {
        (Some(level), _) => Targets::new().with_default(lambda_level(level)),
        (None, Some(directives)) => directives
            .parse::<Targets>()
            .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO)),
        (None, None) => Targets::new().with_default(LevelFilter::INFO),
    };
    base.with_target("aws_smithy_runtime", LevelFilter::WARN)
        .with_target("aws_config", LevelFilter::WARN)
        .with_target("hyper", LevelFilter::WARN)
}

fn filter() -> Targets {
    filter_from(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    )
}

/// The JSON format the function logs in, writing to `writer` (stdout on Lambda; tests
/// capture it). One object per line, the event's fields at the top level; context
/// comes from spans, not repeated fields: the runtime's per-invocation span carries
/// Lambda's `requestId`, ours the `source`, an SQS record's its `messageId` and
/// `target`. All of them, outermost first, are under `spans`.
pub fn json<W>(filter: Targets, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_target(false)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .finish()
        .with(filter)
}

pub fn init() {
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    // A second call (tests, tools) keeps the first subscriber.
    if text {
        let _ = tracing_subscriber::fmt()
            .with_max_level(LevelFilter::TRACE)
            .with_target(false)
            .with_ansi(false)
            .finish()
            .with(filter())
            .try_init();
    } else {
        let _ = tracing::subscriber::set_global_default(json(filter(), std::io::stdout));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn lambdas_level_wins_then_rust_log_and_the_sdk_stays_quiet() {
        let f = filter_from(Some("warn"), Some("debug"));
        assert!(f.would_enable("transfer_chroot", &Level::WARN));
        assert!(!f.would_enable("transfer_chroot", &Level::INFO));
        let f = filter_from(Some("DEBUG"), None);
        assert!(f.would_enable("transfer_chroot::apply", &Level::DEBUG));
        assert!(!f.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::WARN));
        assert!(!f.would_enable("hyper::proto", &Level::INFO));
        let f = filter_from(None, Some("transfer_chroot=trace,info"));
        assert!(f.would_enable("transfer_chroot::sources", &Level::TRACE));
        assert!(!f.would_enable("lambda_runtime", &Level::DEBUG));
        assert!(f.would_enable("lambda_runtime", &Level::INFO));
        assert!(!filter_from(None, None).would_enable("x", &Level::DEBUG));
        assert!(filter_from(Some("FATAL"), None).would_enable("x", &Level::ERROR));
        assert!(!filter_from(Some("FATAL"), None).would_enable("x", &Level::WARN));
        // A RUST_LOG Targets cannot read falls back to INFO.
        assert!(filter_from(None, Some("[span{x=1}]=debug")).would_enable("x", &Level::INFO));
    }
}
