//! What the CLI prints: tables for a person on a terminal, JSON and CSV for tools.

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

use transfer_chroot::Outcome;
use transfer_chroot::audit::AuditReport;
use transfer_chroot::domain::Target;
use transfer_chroot::drift::Finding;
use transfer_chroot::report::RunReport;
use transfer_chroot::transfer::LiveHome;

use super::Output;

/// Findings shown in the terminal's table; the rest are in `--findings-file`, `--html`
/// and `--output csv`.
const SHOWN: usize = 50;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new));
    t
}

fn n(v: u64) -> Cell {
    Cell::new(v).set_alignment(CellAlignment::Right)
}

/// Servers on a custom identity provider first (no stored user is chrooted there),
/// then counts per server and class, then the findings with their reasons.
pub fn audit_table(run: &RunReport, report: &AuditReport) {
    if !run.server_findings.is_empty() {
        let mut servers = table(&["Server", "Identity provider", "Per-user chroot"]);
        for f in &run.server_findings {
            servers.add_row(vec![
                Cell::new(&f.server_id),
                Cell::new(&f.identity_provider_type),
                Cell::new(&f.reason),
            ]);
        }
        println!("{servers}");
    }
    let mut counts = table(&[
        "Server",
        "Chrooted",
        "Drifted",
        "NeedsAttention",
        "Exempt",
        "Fixed",
        "Failed",
    ]);
    let mut row = |name: &str, c: &transfer_chroot::audit::Counts| {
        counts.add_row(vec![
            Cell::new(name),
            n(c.chrooted),
            n(c.drifted),
            n(c.needs_attention),
            n(c.exempt),
            n(c.fixed),
            n(c.failed),
        ]);
    };
    for s in &run.servers {
        row(&s.server_id, &s.counts);
    }
    row("All servers", &report.counts);
    println!("{counts}");
    if !run.findings.is_empty() {
        let mut findings = table(&["Server", "User or access", "Class", "Fix", "Reason"]);
        for f in run.findings.iter().take(SHOWN) {
            findings.add_row(vec![
                Cell::new(&f.server_id),
                Cell::new(
                    f.user_name
                        .as_deref()
                        .or(f.external_id.as_deref())
                        .unwrap_or(""),
                ),
                Cell::new(&f.class),
                Cell::new(f.status.as_deref().unwrap_or("")),
                Cell::new(f.reason.as_deref().unwrap_or("")),
            ]);
        }
        println!("{findings}");
        if run.findings.len() > SHOWN {
            println!(
                "… and {} more findings (--findings-file, --html or --output csv list them all)",
                run.findings.len() - SHOWN
            );
        }
    }
    let c = &report.counts;
    println!(
        "{} targets: {} chrooted, {} drifted ({} fixed), {} need attention, {} exempt, {} failed",
        c.seen(),
        c.chrooted,
        c.drifted,
        c.fixed,
        c.needs_attention,
        c.exempt,
        c.failed
    );
    if let Some(e) = &report.error {
        println!("stopped: {}", e.message);
    }
}

/// One target read back.
pub fn check(output: Output, target: &Target, finding: &Finding, live: &LiveHome) {
    let (reason, chroot) = match finding {
        Finding::Chrooted { .. } => (None, None),
        Finding::Drifted { chroot, reason } => (Some(reason.clone()), Some(chroot.to_string())),
        Finding::NeedsAttention { reason } => (Some(reason.clone()), None),
        Finding::Exempt => (Some("exempt (EXEMPT_USERS)".to_owned()), None),
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "ServerId": target.server.as_str(),
                "UserName": target.subject.as_str(),
                "Class": finding.class().as_str(),
                "Reason": reason,
                "Target": chroot,
                "Live": live,
            })
        ),
        Output::Csv => {
            println!("ServerId,UserName,Class,Reason,Target");
            println!(
                "{},{},{},\"{}\",{}",
                target.server,
                target.subject.as_str(),
                finding.class().as_str(),
                reason.unwrap_or_default().replace('"', "\"\""),
                chroot.unwrap_or_default()
            );
        }
        Output::Table => {
            println!(
                "{} on {}: {}",
                target.subject.as_str(),
                target.server,
                finding.class().as_str()
            );
            if let Some(r) = reason {
                println!("  why:    {r}");
            }
            if let Some(c) = chroot {
                println!(
                    "  fix:    chroot to {c} (transfer-chroot chroot {} --server {})",
                    target.subject.as_str(),
                    target.server
                );
            }
            println!(
                "  now:    HomeDirectoryType {}, HomeDirectory {}, {} mapping(s)",
                live.home_directory_type
                    .as_ref()
                    .map_or("(none)", |t| t.as_str()),
                live.home_directory.as_deref().unwrap_or("(none)"),
                live.home_directory_mappings.len()
            );
        }
    }
}

/// The result of one chroot command.
pub fn outcome(output: Output, outcome: &Outcome) {
    match output {
        Output::Json | Output::Csv => println!("{}", outcome.to_json()),
        Output::Table => {
            let json = outcome.to_json();
            println!(
                "{}: {}",
                outcome.status.as_str(),
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
    }
}

/// `secs` since the epoch as RFC 3339 (`2026-12-07T06:40:00Z`).
pub fn rfc3339(secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_is_utc_civil_time() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_625_600), "2026-12-07T06:40:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
