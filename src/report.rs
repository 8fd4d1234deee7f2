//! A whole audit run as people read it: counts per server and class, every finding,
//! what was fixed; rendered as one self-contained HTML page (an inline SVG chart, a
//! table sortable by a few lines of inline script: no external script, font or CDN)
//! and as CSV. Pure: the CLI (`transfer-chroot audit --html`) fills it through
//! [`Collector`], an [`audit::Watch`](crate::audit::Watch).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditFinding, AuditReport, Counts, ServerFinding, Watch};
use crate::domain::ServerId;
use crate::drift::Class;

/// One run (or one invocation's part of it): when, where, and what it found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunReport {
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub fix: bool,
    pub dry_run: bool,
    /// Counts per server, in the run's order.
    pub servers: Vec<ServerCounts>,
    pub totals: Counts,
    /// Servers on a custom identity provider: shown before anything else.
    #[serde(default)]
    pub server_findings: Vec<ServerFinding>,
    /// Every finding (not capped), in listing order.
    pub findings: Vec<AuditFinding>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerCounts {
    pub server_id: String,
    pub counts: Counts,
}

/// Collects a run item by item (the [`Watch`] the audit tells).
#[derive(Debug, Default)]
pub struct Collector {
    order: Vec<String>,
    per_server: BTreeMap<String, Counts>,
    pub findings: Vec<AuditFinding>,
    pub server_findings: Vec<ServerFinding>,
    pub totals: Counts,
}

impl Watch for Collector {
    fn server_found(&mut self, finding: &ServerFinding) {
        self.server_findings.push(finding.clone());
    }

    fn counted(
        &mut self,
        server: &ServerId,
        class: Option<Class>,
        finding: Option<&AuditFinding>,
        totals: &Counts,
    ) {
        let key = server.as_str();
        if !self.per_server.contains_key(key) {
            self.order.push(key.to_owned());
        }
        let c = self.per_server.entry(key.to_owned()).or_default();
        match class {
            Some(Class::Chrooted) => c.chrooted += 1,
            Some(Class::Drifted) => c.drifted += 1,
            Some(Class::NeedsAttention) => c.needs_attention += 1,
            Some(Class::Exempt) => c.exempt += 1,
            None => c.failed += 1,
        }
        if let Some(f) = finding {
            match f.status.as_deref() {
                Some("Updated") => c.fixed += 1,
                Some("Queued") => c.queued += 1,
                Some("Failed") => c.failed += 1,
                _ => {}
            }
            self.findings.push(f.clone());
        }
        self.totals = *totals;
    }
}

impl Collector {
    /// A collector that lists `servers` first, in that order, with whatever they hold
    /// (an empty server shows zeros rather than nothing).
    pub fn for_servers(servers: &[ServerId]) -> Self {
        let mut c = Self::default();
        for s in servers {
            c.order.push(s.as_str().to_owned());
            c.per_server
                .insert(s.as_str().to_owned(), Counts::default());
        }
        c
    }

    /// The counts per server, in the order servers were first seen.
    pub fn servers(&self) -> Vec<ServerCounts> {
        self.order
            .iter()
            .map(|s| ServerCounts {
                server_id: s.clone(),
                counts: self.per_server.get(s).copied().unwrap_or_default(),
            })
            .collect()
    }
}

/// HTML-escapes `s` (text and attribute values).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One CSV field (RFC 4180: quoted when it holds a comma, quote or line break). A
/// leading `=`, `+`, `-` or `@` is prefixed with `'`, so a spreadsheet never runs a
/// name as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// How CSV rows name a server on a custom identity provider.
pub const SERVER_CLASS: &str = "CustomIdentityProvider";

const CLASSES: [(&str, &str); 4] = [
    ("Chrooted", "#2e7d32"),
    ("Drifted", "#ef6c00"),
    ("NeedsAttention", "#c62828"),
    ("Exempt", "#757575"),
];

fn of_class(c: &Counts, class: &str) -> u64 {
    match class {
        "Chrooted" => c.chrooted,
        "Drifted" => c.drifted,
        "NeedsAttention" => c.needs_attention,
        _ => c.exempt,
    }
}

impl RunReport {
    /// The parts of one run, in order, as one report: counts added per server (in the
    /// order servers were first seen), findings one after the other, the first part's
    /// start and the last one's end.
    pub fn merge(parts: Vec<RunReport>) -> RunReport {
        let mut whole = RunReport::default();
        let mut order: Vec<String> = Vec::new();
        let mut per_server: BTreeMap<String, Counts> = BTreeMap::new();
        for (i, part) in parts.into_iter().enumerate() {
            if i == 0 {
                whole.started = part.started.clone();
                whole.account = part.account.clone();
                whole.region = part.region.clone();
                whole.fix = part.fix;
                whole.dry_run = part.dry_run;
            }
            whole.finished = part.finished;
            whole.totals.add(&part.totals);
            for s in part.servers {
                if !per_server.contains_key(&s.server_id) {
                    order.push(s.server_id.clone());
                }
                per_server.entry(s.server_id).or_default().add(&s.counts);
            }
            whole.findings.extend(part.findings);
            for f in part.server_findings {
                if !whole
                    .server_findings
                    .iter()
                    .any(|w| w.server_id == f.server_id)
                {
                    whole.server_findings.push(f);
                }
            }
        }
        whole.servers = order
            .into_iter()
            .map(|server_id| ServerCounts {
                counts: per_server.get(&server_id).copied().unwrap_or_default(),
                server_id,
            })
            .collect();
        whole
    }

    /// Every finding as CSV, a header first.
    pub fn csv(&self) -> String {
        let mut out = String::from("ServerId,UserName,ExternalId,Class,Reason,Target,Status\n");
        // The servers first: nothing below them is chrooted by a stored user.
        for f in &self.server_findings {
            let row = [
                f.server_id.as_str(),
                "",
                "",
                SERVER_CLASS,
                f.reason.as_str(),
                "",
                "",
            ];
            let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        for f in &self.findings {
            let row = [
                f.server_id.as_str(),
                f.user_name.as_deref().unwrap_or(""),
                f.external_id.as_deref().unwrap_or(""),
                f.class.as_str(),
                f.reason.as_deref().unwrap_or(""),
                f.target.as_deref().unwrap_or(""),
                f.status.as_deref().unwrap_or(""),
            ];
            let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }

    /// Stacked bars, one per server, of its targets by class.
    fn chart(&self) -> String {
        let width = 640.0_f64;
        let label = 170.0;
        let bar = 22.0;
        let gap = 12.0;
        let top = 30.0;
        let height = top + (bar + gap) * self.servers.len().max(1) as f64 + 10.0;
        let most = self
            .servers
            .iter()
            .map(|s| s.counts.seen())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
             height=\"{height}\" role=\"img\" aria-label=\"targets per server by class\">"
        );
        let mut x = label;
        for (class, color) in CLASSES {
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
                 <text x=\"{}\" y=\"17\" font-size=\"12\">{class}</text>",
                x + 16.0
            );
            x += 16.0 + 8.0 * class.len() as f64 + 16.0;
        }
        for (i, s) in self.servers.iter().enumerate() {
            let y = top + (bar + gap) * i as f64;
            let _ = write!(
                svg,
                "<text x=\"0\" y=\"{}\" font-size=\"12\" font-family=\"monospace\">{}</text>",
                y + 15.0,
                esc(&s.server_id)
            );
            let mut x = label;
            for (class, color) in CLASSES {
                let n = of_class(&s.counts, class);
                if n == 0 {
                    continue;
                }
                let w = (width - label - 60.0) * n as f64 / most;
                let _ = write!(
                    svg,
                    "<rect class=\"bar\" data-server=\"{}\" data-class=\"{class}\" x=\"{x:.1}\" \
                     y=\"{y}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{color}\">\
                     <title>{}: {n} {class}</title></rect>",
                    esc(&s.server_id),
                    esc(&s.server_id)
                );
                x += w;
            }
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>",
                x + 6.0,
                y + 15.0,
                s.counts.seen()
            );
        }
        svg.push_str("</svg>");
        svg
    }

    /// The report as one self-contained HTML page.
    pub fn html(&self) -> String {
        let t = &self.totals;
        let mut h = String::new();
        h.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>transfer-chroot audit</title><style>\
             body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
             h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}\
             table{border-collapse:collapse;font-size:.9rem}\
             th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}\
             th{background:#f3f3f3;cursor:pointer;user-select:none}\
             th[aria-sort=ascending]::after{content:' \\25B2'}\
             th[aria-sort=descending]::after{content:' \\25BC'}\
             .n{text-align:right;font-variant-numeric:tabular-nums}\
             #findings td:first-child,#findings td:nth-child(5){white-space:nowrap}\
             .Drifted{color:#ef6c00}.NeedsAttention{color:#c62828}.Exempt{color:#757575}\
             dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}\
             </style></head><body>\n",
        );
        let _ = write!(
            h,
            "<h1>transfer-chroot audit</h1>\n<dl id=\"run\"><dt>Started</dt><dd>{}</dd>\
             <dt>Finished</dt><dd>{}</dd><dt>Account</dt><dd>{}</dd><dt>Region</dt><dd>{}</dd>\
             <dt>Servers</dt><dd>{}</dd><dt>Mode</dt><dd>{}</dd></dl>\n",
            esc(&self.started),
            esc(&self.finished),
            esc(self.account.as_deref().unwrap_or("unknown")),
            esc(self.region.as_deref().unwrap_or("unknown")),
            esc(&self
                .servers
                .iter()
                .map(|s| s.server_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")),
            match (self.fix, self.dry_run) {
                (true, false) => "audit and fix",
                (true, true) => "audit, fixes planned (dry run)",
                _ => "audit only (read-only)",
            }
        );
        if !self.server_findings.is_empty() {
            let _ = write!(
                h,
                "<h2 class=\"NeedsAttention\">Servers where no user is chrooted ({})</h2>\n\
                 <table id=\"server-findings\"><thead><tr><th>Server</th>\
                 <th>Identity provider</th><th>Reason</th></tr></thead><tbody>",
                self.server_findings.len()
            );
            for f in &self.server_findings {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td class=\"NeedsAttention\">{}</td><td>{}</td></tr>",
                    esc(&f.server_id),
                    esc(&f.identity_provider_type),
                    esc(&f.reason)
                );
            }
            h.push_str("</tbody></table>\n");
        }
        let _ = write!(
            h,
            "<h2>Counts</h2>\n<table id=\"counts\"><thead><tr><th>Server</th><th>Chrooted</th>\
             <th>Drifted</th><th>NeedsAttention</th><th>Exempt</th><th>Fixed</th>\
             <th>Failed</th></tr></thead><tbody>"
        );
        let row = |h: &mut String, name: &str, c: &Counts| {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td></tr>",
                esc(name),
                c.chrooted,
                c.drifted,
                c.needs_attention,
                c.exempt,
                c.fixed,
                c.failed
            );
        };
        for s in &self.servers {
            row(&mut h, &s.server_id, &s.counts);
        }
        row(&mut h, "All servers", t);
        h.push_str("</tbody></table>\n");
        h.push_str("<h2>Targets per server</h2>\n");
        h.push_str(&self.chart());
        let _ = write!(
            h,
            "\n<h2>Findings ({})</h2>\n<table id=\"findings\" class=\"sortable\"><thead><tr>\
             <th>Server</th><th>User or access</th><th>Class</th><th>Reason</th>\
             <th>Chroot</th><th>Fix</th></tr></thead><tbody>",
            self.findings.len()
        );
        for f in &self.findings {
            let name = f
                .user_name
                .as_deref()
                .or(f.external_id.as_deref())
                .unwrap_or("");
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                esc(&f.server_id),
                esc(name),
                esc(&f.class),
                esc(&f.class),
                esc(f.reason.as_deref().unwrap_or("")),
                esc(f.target.as_deref().unwrap_or("")),
                esc(f.status.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</tbody></table>\n");
        let fixed: Vec<&AuditFinding> = self
            .findings
            .iter()
            .filter(|f| matches!(f.status.as_deref(), Some("Updated" | "Planned" | "Queued")))
            .collect();
        let _ = write!(h, "<h2>Fixed ({})</h2>\n<ul id=\"fixed\">", fixed.len());
        for f in fixed {
            let name = f
                .user_name
                .as_deref()
                .or(f.external_id.as_deref())
                .unwrap_or("");
            let _ = write!(
                h,
                "<li>{} on {}: {} → chrooted to {}</li>",
                esc(name),
                esc(&f.server_id),
                esc(f.status.as_deref().unwrap_or("")),
                esc(f.target.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</ul>\n");
        // Sorting without a framework: click a header to sort by its column.
        h.push_str(
            "<script>\
             document.querySelectorAll('table.sortable th').forEach(function(th,i){\
             th.addEventListener('click',function(){\
             var body=th.closest('table').tBodies[0];\
             var asc=th.getAttribute('aria-sort')!=='ascending';\
             th.closest('tr').querySelectorAll('th').forEach(function(o){o.removeAttribute('aria-sort')});\
             th.setAttribute('aria-sort',asc?'ascending':'descending');\
             Array.from(body.rows).sort(function(a,b){\
             var x=a.cells[i].textContent,y=b.cells[i].textContent;\
             return asc?x.localeCompare(y):y.localeCompare(x)}).forEach(function(r){body.appendChild(r)});\
             })});\
             </script>\n</body></html>\n",
        );
        h
    }
}

/// `id` kept to the characters an S3 key and a URL take as they are.
fn key_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where a run's objects go: `transfer-chroot/audits/<run>/`.
pub fn run_prefix(run: &str) -> String {
    format!("transfer-chroot/audits/{}/", key_safe(run))
}

/// Keeps one invocation's `part` of `run` (named `part_name`, unique per invocation)
/// and, when the run is `complete`, merges every part written so far into the run's
/// `report.html` and `findings.csv`: its `s3://` address then.
pub async fn keep(
    store: &dyn crate::reports::ReportStore,
    run: &str,
    part_name: &str,
    part: &RunReport,
    complete: bool,
) -> Result<Option<String>, crate::reports::StoreError> {
    let prefix = run_prefix(run);
    let parts = format!("{prefix}parts/");
    let body = serde_json::to_vec(part).unwrap_or_default();
    store
        .put(
            &format!("{parts}{part_name}.json"),
            body,
            "application/json",
        )
        .await?;
    if !complete {
        return Ok(None);
    }
    let mut read = Vec::new();
    for key in store.list(&parts).await? {
        let bytes = store.get(&key).await?;
        match serde_json::from_slice::<RunReport>(&bytes) {
            Ok(p) => read.push(p),
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "audit report: a part is not readable, left out")
            }
        }
    }
    let whole = RunReport::merge(read);
    let html = format!("{prefix}report.html");
    store
        .put(&html, whole.html().into_bytes(), "text/html; charset=utf-8")
        .await?;
    store
        .put(
            &format!("{prefix}findings.csv"),
            whole.csv().into_bytes(),
            "text/csv; charset=utf-8",
        )
        .await?;
    Ok(Some(format!("s3://{}/{html}", store.bucket())))
}

/// [`crate::audit::run`], its part of the run kept in `store`, and the run's report
/// written there when this part completes it (`REPORT_BUCKET`). A store that fails is
/// logged; the audit's answer stands.
pub async fn run_and_keep<T: crate::transfer::Transfer>(
    chroot: &crate::apply::Chroot<T>,
    store: &dyn crate::reports::ReportStore,
    audit: &crate::audit::Audit,
    run_id: &str,
    deadline: tokio::time::Instant,
) -> AuditReport {
    let now = || crate::findings::timestamp(std::time::SystemTime::now());
    let started = now();
    let mut collector = Collector::for_servers(&audit.servers);
    // The report's writes get their own time, kept out of the audit's.
    let mut budget = crate::audit::Deadline(crate::audit::keep_out(deadline, REPORT_TIME));
    let mut report =
        crate::audit::run_watched(chroot, audit, run_id, &mut budget, &mut collector).await;
    let account = chroot.env.account.get();
    let part = RunReport {
        started,
        finished: now(),
        account: account.map(|a| a.id.clone()),
        region: account.map(|a| a.region.clone()),
        fix: audit.fix,
        dry_run: audit.dry_run || chroot.config.dry_run,
        servers: collector.servers(),
        server_findings: collector.server_findings.clone(),
        totals: report.counts,
        findings: std::mem::take(&mut collector.findings),
    };
    let complete = report.continuation.is_none() && report.error.is_none();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let name = format!("{millis:015}-{}", key_safe(run_id));
    let kept = tokio::time::timeout_at(
        deadline.max(tokio::time::Instant::now() + MIN_REPORT_TIME),
        keep(store, &report.run_id, &name, &part, complete),
    )
    .await;
    match kept {
        Ok(Ok(address)) => report.report = address,
        Ok(Err(e)) => {
            tracing::error!(run = %report.run_id, error = %e, request_id = e.request_id.as_deref(), "audit report not written")
        }
        Err(_) => tracing::error!(run = %report.run_id, "audit report not written in time"),
    }
    if let Some(address) = &report.report {
        tracing::info!(run = %report.run_id, report = %address, "audit report written");
    }
    report
}

/// Kept out of an audit's time for its report's writes (`REPORT_BUCKET`): a part's
/// PUT, and at the end of a run the parts read back and the report's two PUTs.
const REPORT_TIME: std::time::Duration = std::time::Duration::from_secs(2);
/// The least they are given, however late the audit's part ended.
const MIN_REPORT_TIME: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(name: &str, class: &str, reason: &str, status: Option<&str>) -> AuditFinding {
        AuditFinding {
            server_id: "s-0123456789abcdef0".into(),
            user_name: Some(name.into()),
            external_id: None,
            class: class.into(),
            reason: Some(reason.into()),
            target: Some(format!("/acme-sftp/home/{name}")),
            status: status.map(str::to_owned),
            error: None,
            warnings: Vec::new(),
            profile: None,
        }
    }

    fn report() -> RunReport {
        RunReport {
            started: "2026-12-07T06:00:00Z".into(),
            finished: "2026-12-07T06:00:05Z".into(),
            region: Some("us-east-1".into()),
            fix: true,
            servers: vec![ServerCounts {
                server_id: "s-0123456789abcdef0".into(),
                counts: Counts {
                    chrooted: 5,
                    drifted: 2,
                    needs_attention: 1,
                    fixed: 2,
                    ..Counts::default()
                },
            }],
            totals: Counts {
                chrooted: 5,
                drifted: 2,
                needs_attention: 1,
                fixed: 2,
                ..Counts::default()
            },
            findings: vec![
                finding("alice", "Drifted", "home is not chrooted", Some("Updated")),
                finding(
                    "<script>x</script>",
                    "NeedsAttention",
                    "a \"bad\" home, here",
                    None,
                ),
            ],
            ..RunReport::default()
        }
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_shows() {
        let html = report().html();
        assert!(html.contains("<svg id=\"chart\""));
        assert!(html.contains("data-class=\"Drifted\""));
        assert!(html.contains("alice on s-0123456789abcdef0: Updated"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>x</script>"), "names are escaped");
        for external in ["src=", "href=", "@import", "url("] {
            assert!(
                !html.contains(external),
                "nothing loaded from elsewhere: {external}"
            );
        }
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "one inline script: sorting"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let mut r = report();
        r.findings
            .push(finding("=cmd", "NeedsAttention", "x", None));
        let csv = r.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "ServerId,UserName,ExternalId,Class,Reason,Target,Status"
        );
        assert!(
            lines[2].contains("\"a \"\"bad\"\" home, here\""),
            "{}",
            lines[2]
        );
        assert!(lines[3].contains(",'=cmd,"), "{}", lines[3]);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn the_collector_counts_per_server_in_first_seen_order() {
        let mut c = Collector::default();
        let a = ServerId::parse("s-0123456789abcdef1").unwrap();
        let b = ServerId::parse("s-0123456789abcdef0").unwrap();
        let total = Counts::default();
        c.counted(&a, Some(Class::Chrooted), None, &total);
        let f = finding("alice", "Drifted", "r", Some("Updated"));
        c.counted(&b, Some(Class::Drifted), Some(&f), &total);
        c.counted(&a, None, None, &total);
        let servers = c.servers();
        assert_eq!(servers[0].server_id, a.as_str());
        assert_eq!(
            (servers[0].counts.chrooted, servers[0].counts.failed),
            (1, 1)
        );
        assert_eq!((servers[1].counts.drifted, servers[1].counts.fixed), (1, 1));
        assert_eq!(c.findings.len(), 1);
    }

    #[tokio::test]
    async fn the_parts_of_a_run_make_one_report_once_it_completes() {
        let store = crate::reports::memory::MemoryReports::new();
        let part = |n: &[&str], started: &str, chrooted: u64| {
            let mut p = report();
            p.started = started.into();
            p.finished = format!("{started}+");
            p.findings = n.iter().map(|x| finding(x, "Drifted", "r", None)).collect();
            p.totals = Counts {
                chrooted,
                drifted: n.len() as u64,
                ..Counts::default()
            };
            p.servers = vec![ServerCounts {
                server_id: "s-0123456789abcdef0".into(),
                counts: p.totals,
            }];
            p
        };
        let first = keep(&store, "run/1", "001-a", &part(&["alice"], "t1", 2), false)
            .await
            .unwrap();
        assert_eq!(first, None, "not complete: no report yet");
        let done = keep(
            &store,
            "run/1",
            "002-b",
            &part(&["bob", "carol"], "t2", 3),
            true,
        )
        .await
        .unwrap();
        assert_eq!(
            done.as_deref(),
            Some("s3://memory/transfer-chroot/audits/run_1/report.html")
        );
        let (csv, kind) = store
            .text("transfer-chroot/audits/run_1/findings.csv")
            .unwrap();
        assert_eq!(kind, "text/csv; charset=utf-8");
        let names: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap())
            .collect();
        assert_eq!(names, ["alice", "bob", "carol"], "in the parts' order");
        let whole = RunReport::merge(vec![part(&["alice"], "t1", 2), part(&["bob"], "t2", 3)]);
        assert_eq!(
            (whole.started.as_str(), whole.finished.as_str()),
            ("t1", "t2+")
        );
        assert_eq!((whole.totals.chrooted, whole.totals.drifted), (5, 2));
        assert_eq!(whole.servers.len(), 1, "one row per server");
        assert_eq!(whole.servers[0].counts.chrooted, 5);
    }
}
