//! CloudWatch metrics in the Embedded Metric Format (EMF), on stdout beside the logs:
//! CloudWatch Logs extracts them from the function's log group, no API call, no
//! extension. Written with `metrique` (Amazon's own metrics library: its EMF format
//! checks names, dimension sets and values), one document per unit of work, each
//! carrying Lambda's `RequestId` so a figure leads back to its invocation, concurrent
//! invocations included (docs/operations.md lists every metric and dimension).
//!
//! What an invocation did is gathered in a [`Tally`] kept for the invocation's task
//! ([`scope`]): every outcome line ([`outcome`]), every Transfer call ([`transfer_call`],
//! from the SDK adapter) and an audit's classes per server ([`audit`]). At the end of
//! the invocation [`Emitter::emit`] writes the documents:
//!
//! - one `Invocation` document: `Updated`, `Unchanged`, `Planned`, `Skipped`, `Failed`
//!   (counts of outcomes), `Deferred` (SQS records handed back unprocessed), `TransferCalls` and `TransferLatency` (milliseconds, every
//!   call as a value or, past 100 distinct values, as a CloudWatch distribution), by
//!   `Source` and with no dimension (the function as a whole);
//! - one document per error code of the failures: `Failed` by `Source` and `ErrorCode`;
//! - for an audit, one document per server audited: `Chrooted`, `Drifted`,
//!   `NeedsAttention`, `Exempt`, `Fixed`, `FixFailed`, by `ServerId` and with no dimension;
//! - when findings went to Security Hub, one document: `SecurityHubImported` (accepted,
//!   archives included), `SecurityHubFailed` (refused or not sent), with no dimension.
//!
//! Outside a [`scope`] (unit tests of the core, tools) recording does nothing.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use metrique::emf::Emf;
use metrique::unit::Millisecond;
use metrique::unit_of_work::metrics;
use metrique::writer::format::Format;
use metrique::writer::unit::UnitTag;
use metrique::writer::value::{MetricFlags, Observation, Value, ValueWriter};
use metrique::{CloseValue, RootEntry};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "TransferChroot";

/// The metrics of an invocation's document (by `Source`, and with no dimension).
pub const INVOCATION_METRICS: &[&str] = &[
    "Updated",
    "Unchanged",
    "Planned",
    "Skipped",
    "Failed",
    "Deferred",
    "TransferCalls",
    "TransferLatency",
];

/// The metrics of the Security Hub document (no dimension), written when findings went.
pub const SECURITY_HUB_METRICS: &[&str] = &["SecurityHubImported", "SecurityHubFailed"];

/// The metrics of an audit's per-server document (by `ServerId`, and with no dimension).
pub const AUDIT_METRICS: &[&str] = &[
    "Chrooted",
    "Drifted",
    "NeedsAttention",
    "Exempt",
    "Fixed",
    "FixFailed",
    "CustomIdentityProvider",
];

/// The status counted for an SQS record handed back unprocessed (timed out, not
/// started before the deadline margin, or held back behind a failed record).
pub const DEFERRED: &str = "Deferred";

/// EMF's limit on the values of one metric in one document.
const MAX_VALUES: usize = 100;

/// What one invocation did, for its metrics.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Outcomes by status (`Updated`, `Unchanged`, `Planned`, `Skipped`, `Failed`).
    pub statuses: BTreeMap<&'static str, u64>,
    /// Failed outcomes by error code.
    pub failures: BTreeMap<&'static str, u64>,
    /// Each Transfer call's latency.
    pub transfer_latencies: Vec<Duration>,
    /// An audit's classes per server.
    pub audits: BTreeMap<String, AuditCounts>,
    /// Findings Security Hub accepted (archives included), and refused or not sent.
    pub security_hub: (u64, u64),
}

/// An audit invocation's counts for one server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditCounts {
    pub chrooted: u64,
    pub drifted: u64,
    pub needs_attention: u64,
    pub exempt: u64,
    pub fixed: u64,
    pub fix_failed: u64,
    /// A server found on a custom identity provider (`AWS_LAMBDA`, `API_GATEWAY`): per
    /// user chroot cannot be enforced there.
    pub custom_identity_provider: u64,
}

tokio::task_local! {
    static TALLY: RefCell<Tally>;
}

/// Runs `fut` (one invocation) with a fresh [`Tally`], and hands it back at the end.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Tally) {
    TALLY
        .scope(RefCell::new(Tally::default()), async move {
            let out = fut.await;
            let tally = TALLY.with(|t| t.take());
            (out, tally)
        })
        .await
}

fn record(f: impl FnOnce(&mut Tally)) {
    // No borrow is held across an await: each record is one synchronous update.
    let _ = TALLY.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            f(&mut t);
        }
    });
}

/// One outcome (the same call site as its log line): its status and, for a failure,
/// its error code.
pub fn outcome(status: &'static str, error_code: Option<&'static str>) {
    record(|t| {
        *t.statuses.entry(status).or_default() += 1;
        if let Some(code) = error_code {
            *t.failures.entry(code).or_default() += 1;
        }
    });
}

/// One Transfer call (every attempt the SDK made, retries included) and how long it took.
pub fn transfer_call(latency: Duration) {
    record(|t| t.transfer_latencies.push(latency));
}

/// Findings sent to Security Hub: accepted (archives included), refused or not sent.
pub fn security_hub(imported: u64, failed: u64) {
    record(|t| {
        t.security_hub.0 += imported;
        t.security_hub.1 += failed;
    });
}

/// An audit's counts for `server` in this invocation (added to what is there).
pub fn audit(server: &str, counts: AuditCounts) {
    record(|t| {
        // A lookup first: an audit records every item, on one server or a few.
        if !t.audits.contains_key(server) {
            t.audits.insert(server.to_owned(), AuditCounts::default());
        }
        let Some(c) = t.audits.get_mut(server) else {
            return;
        };
        c.chrooted += counts.chrooted;
        c.drifted += counts.drifted;
        c.needs_attention += counts.needs_attention;
        c.exempt += counts.exempt;
        c.fixed += counts.fixed;
        c.fix_failed += counts.fix_failed;
        c.custom_identity_provider += counts.custom_identity_provider;
    });
}

/// Transfer call latencies as one EMF metric, in the histogram form metrique writes for
/// several observations (`{"Values": [...], "Counts": [...]}`, which CloudWatch turns into
/// the same statistics as one value per call): every distinct value while there are at
/// most [`MAX_VALUES`], else buckets 5 % wide on a log scale (coarser until they fit),
/// each as its mean and count, so sums and counts stay exact.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl CloseValue for Latencies {
    type Closed = Self;
    fn close(self) -> Self {
        self
    }
}

impl Latencies {
    /// `(mean in milliseconds, count)` per value or bucket, at most [`MAX_VALUES`].
    pub fn observations(&self) -> Vec<(f64, u64)> {
        let ms: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        // Exact values first (keyed by nanosecond), then log-scale buckets.
        let mut width: Option<f64> = None;
        loop {
            let mut buckets: BTreeMap<i64, (f64, u64)> = BTreeMap::new();
            for &v in &ms {
                let key = match width {
                    None => (v * 1e6) as i64,
                    Some(w) => (v.max(1e-6).ln() / w.ln_1p()).floor() as i64,
                };
                let b = buckets.entry(key).or_default();
                b.0 += v;
                b.1 += 1;
            }
            if buckets.len() <= MAX_VALUES || width.is_some_and(|w| w > 100.0) {
                return buckets
                    .into_values()
                    .map(|(sum, n)| (sum / n as f64, n))
                    .collect();
            }
            width = Some(width.map_or(0.05, |w| w * 2.0));
        }
    }
}

impl Value for Latencies {
    fn write(&self, writer: impl ValueWriter) {
        writer.metric(
            self.observations()
                .into_iter()
                .map(|(mean, n)| Observation::Repeated {
                    total: mean * n as f64,
                    occurrences: n,
                }),
            Millisecond::UNIT,
            [],
            MetricFlags::empty(),
        );
    }
}

#[metrics(rename_all = "PascalCase", emf::dimension_sets = [["Source"], []])]
struct Invocation {
    #[metrics(timestamp)]
    timestamp: SystemTime,
    /// Lambda's log-level filter keeps a JSON line by its `level` (INFO when absent):
    /// the configured level itself, so the metrics pass whatever the filter.
    #[metrics(name = "level")]
    level: &'static str,
    source: &'static str,
    request_id: String,
    updated: u64,
    unchanged: u64,
    planned: u64,
    skipped: u64,
    failed: u64,
    deferred: u64,
    transfer_calls: u64,
    transfer_latency: Option<Latencies>,
}

#[metrics(rename_all = "PascalCase", emf::dimension_sets = [["Source", "ErrorCode"]])]
struct Failures {
    #[metrics(timestamp)]
    timestamp: SystemTime,
    /// Lambda's log-level filter keeps a JSON line by its `level` (INFO when absent):
    /// the configured level itself, so the metrics pass whatever the filter.
    #[metrics(name = "level")]
    level: &'static str,
    source: &'static str,
    error_code: &'static str,
    request_id: String,
    failed: u64,
}

#[metrics(rename_all = "PascalCase", emf::dimension_sets = [["ServerId"], []])]
struct Audit {
    #[metrics(timestamp)]
    timestamp: SystemTime,
    /// Lambda's log-level filter keeps a JSON line by its `level` (INFO when absent):
    /// the configured level itself, so the metrics pass whatever the filter.
    #[metrics(name = "level")]
    level: &'static str,
    server_id: String,
    request_id: String,
    chrooted: u64,
    drifted: u64,
    needs_attention: u64,
    exempt: u64,
    fixed: u64,
    fix_failed: u64,
    custom_identity_provider: u64,
}

#[metrics(rename_all = "PascalCase", emf::dimension_sets = [[]])]
struct SecurityHub {
    #[metrics(timestamp)]
    timestamp: SystemTime,
    /// Lambda's log-level filter keeps a JSON line by its `level` (INFO when absent):
    /// the configured level itself, so the metrics pass whatever the filter.
    #[metrics(name = "level")]
    level: &'static str,
    request_id: String,
    security_hub_imported: u64,
    security_hub_failed: u64,
}

type Sink = dyn Fn(&[u8]) + Send + Sync;

/// Where the documents go: stdout on Lambda, a buffer in tests, nowhere when off.
#[derive(Clone)]
pub struct Emitter {
    inner: Option<Arc<EmitterInner>>,
}

struct EmitterInner {
    /// The `level` every document carries (see [`Emitter::to`]).
    level: &'static str,
    format: Mutex<Emf>,
    sink: Box<Sink>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("on", &self.inner.is_some())
            .finish()
    }
}

impl Default for Emitter {
    fn default() -> Self {
        Self::off()
    }
}

impl Emitter {
    /// Writes nothing.
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// One line per document on stdout, as Lambda's log capture and EMF expect.
    pub fn stdout() -> Self {
        Self::to(|doc| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(doc);
            let _ = out.flush();
        })
    }

    /// Each document (one line, newline included) handed to `sink`. Each carries
    /// `"level"`: `AWS_LAMBDA_LOG_LEVEL` (Lambda's application log level, INFO by
    /// default), so Lambda's log-level filter, which keeps a JSON line by that key and
    /// counts a line without one as INFO, never drops the metrics.
    pub fn to(sink: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        let format = Emf::builder(NAMESPACE.to_owned(), vec![vec![]]).build();
        let level = log_level(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref());
        Self {
            inner: Some(Arc::new(EmitterInner {
                level,
                format: Mutex::new(format),
                sink: Box::new(sink),
            })),
        }
    }

    /// Writes the documents of one invocation of `source`.
    pub fn emit(&self, source: &'static str, request_id: &str, tally: Tally) {
        let Some(inner) = &self.inner else {
            return;
        };
        let timestamp = SystemTime::now();
        let count = |s: &str| tally.statuses.get(s).copied().unwrap_or(0);
        let transfer_calls = tally.transfer_latencies.len() as u64;
        let latencies = (transfer_calls > 0).then_some(Latencies(tally.transfer_latencies));
        let level = inner.level;
        let invocation = Invocation {
            timestamp,
            level,
            source,
            request_id: request_id.to_owned(),
            updated: count("Updated"),
            unchanged: count("Unchanged"),
            planned: count("Planned"),
            skipped: count("Skipped"),
            failed: count("Failed"),
            deferred: count(DEFERRED),
            transfer_calls,
            transfer_latency: latencies,
        };
        inner.write(&RootEntry::new(invocation.close()));
        for (code, n) in &tally.failures {
            let failures = Failures {
                timestamp,
                level,
                source,
                error_code: code,
                request_id: request_id.to_owned(),
                failed: *n,
            };
            inner.write(&RootEntry::new(failures.close()));
        }
        for (server, c) in &tally.audits {
            let audit = Audit {
                timestamp,
                level,
                server_id: server.clone(),
                request_id: request_id.to_owned(),
                chrooted: c.chrooted,
                drifted: c.drifted,
                needs_attention: c.needs_attention,
                exempt: c.exempt,
                fixed: c.fixed,
                fix_failed: c.fix_failed,
                custom_identity_provider: c.custom_identity_provider,
            };
            inner.write(&RootEntry::new(audit.close()));
        }
        let (imported, failed) = tally.security_hub;
        if imported + failed > 0 {
            let doc = SecurityHub {
                timestamp,
                level,
                request_id: request_id.to_owned(),
                security_hub_imported: imported,
                security_hub_failed: failed,
            };
            inner.write(&RootEntry::new(doc.close()));
        }
    }
}

/// Lambda's name for the level `AWS_LAMBDA_LOG_LEVEL` names (INFO when unset or unknown).
fn log_level(var: Option<&str>) -> &'static str {
    match var.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "TRACE",
        Some("DEBUG") => "DEBUG",
        Some("WARN") => "WARN",
        Some("ERROR") => "ERROR",
        Some("FATAL") => "FATAL",
        _ => "INFO",
    }
}

impl EmitterInner {
    fn write(&self, entry: &impl metrique::writer::Entry) {
        let mut doc = Vec::with_capacity(512);
        let formatted = match self.format.lock() {
            Ok(mut f) => f.format(entry, &mut doc),
            Err(poisoned) => poisoned.into_inner().format(entry, &mut doc),
        };
        match formatted {
            Ok(()) => (self.sink)(&doc),
            Err(e) => tracing::warn!(error = %e, "metrics document not written"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fit_emf_whatever_their_number() {
        let few = Latencies(vec![Duration::from_millis(3); 5]);
        assert_eq!(few.observations(), vec![(3.0, 5)]);
        let many = Latencies((1..=100_000).map(Duration::from_micros).collect());
        let obs = many.observations();
        assert!(obs.len() <= MAX_VALUES, "{}", obs.len());
        assert_eq!(obs.iter().map(|o| o.1).sum::<u64>(), 100_000);
        let total: f64 = obs.iter().map(|(m, n)| m * *n as f64).sum();
        let exact: f64 = (1..=100_000u64).map(|u| u as f64 / 1000.0).sum();
        assert!((total - exact).abs() / exact < 1e-9, "{total} vs {exact}");
    }

    #[test]
    fn the_documents_declare_the_listed_metrics_and_nothing_else() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        let e = Emitter::to(move |d| o.lock().unwrap().push(d.to_vec()));
        let mut t = Tally::default();
        t.statuses.insert("Failed", 1);
        t.failures.insert("Throttled", 1);
        t.transfer_latencies.push(Duration::from_millis(1));
        t.audits.insert("s-1".into(), AuditCounts::default());
        e.emit("direct", "r", t);
        let docs: Vec<serde_json::Value> = out
            .lock()
            .unwrap()
            .iter()
            .map(|d| serde_json::from_slice(d).unwrap())
            .collect();
        let declared = |d: &serde_json::Value| -> Vec<String> {
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(docs.len(), 3);
        assert_eq!(declared(&docs[0]), INVOCATION_METRICS);
        assert_eq!(declared(&docs[1]), ["Failed"]);
        assert_eq!(declared(&docs[2]), AUDIT_METRICS);
        for d in &docs {
            assert!(d.as_object().unwrap().contains_key("RequestId"));
            assert!(d["level"].is_string());
        }
        assert_eq!(log_level(Some("warn")), "WARN");
        assert_eq!(log_level(None), "INFO");
        assert_eq!(log_level(Some("loud")), "INFO");
    }

    #[tokio::test]
    async fn a_scope_gathers_what_its_invocation_records_and_nothing_leaks_out() {
        outcome("Updated", None); // outside a scope: nothing
        let ((), tally) = scope(async {
            outcome("Updated", None);
            outcome("Failed", Some("Throttled"));
            transfer_call(Duration::from_millis(2));
            audit(
                "s-1",
                AuditCounts {
                    drifted: 2,
                    ..AuditCounts::default()
                },
            );
            audit(
                "s-1",
                AuditCounts {
                    drifted: 1,
                    exempt: 1,
                    ..AuditCounts::default()
                },
            );
        })
        .await;
        assert_eq!(tally.statuses["Updated"], 1);
        assert_eq!(tally.statuses["Failed"], 1);
        assert_eq!(tally.failures["Throttled"], 1);
        assert_eq!(tally.transfer_latencies.len(), 1);
        assert_eq!(tally.audits["s-1"].drifted, 3);
        assert_eq!(tally.audits["s-1"].exempt, 1);
    }
}
