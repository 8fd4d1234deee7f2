//! AWS Security Hub findings (`SECURITY_HUB=true`): where an organization's security
//! team reads what is not chrooted, aggregated by its delegated administrator.
//!
//! Every non-chrooted target an audit finds becomes an ASFF finding (AWS Security
//! Finding Format, schema `2018-10-08`) through `BatchImportFindings`, with a stable `Id`
//! made from the target, its region and account, so a target has one finding for its
//! life. A target chrooted later (by the audit's fix, a reconcile, a CloudTrail
//! re-chroot, an API call) gets its finding re-imported `PASSED` and `ARCHIVED`; at the
//! end of a completed audit run the active findings of this generator it did not report
//! again (their `UpdatedAt` older than the run's start) are archived the same way: the
//! target was chrooted or deleted meanwhile.
//!
//! The two calls are signed with SigV4 and sent over the SDK's own HTTP connector
//! ([`hub`]) rather than through `aws-sdk-securityhub`: the SDK's model of a finding
//! (every resource type's details, serialised and parsed) would have been most of the
//! binary (docs/PERFORMANCE.md, "Security Hub"). [`Asff`] is the small typed subset this
//! function writes and reads back.
//!
//! A Security Hub failure never fails or undoes a Transfer fix: it is logged and counted
//! (the audit's `SecurityHub` counts, the `SecurityHub` metrics).

pub mod hub;
pub mod memory;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::domain::{ServerId, Subject, Target};

/// A boxed future, for the object-safe port.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub const SCHEMA_VERSION: &str = "2018-10-08";
/// Every finding of this function, so its own can be found again (and only those).
pub const GENERATOR_ID: &str = "transfer-chroot/not-chrooted";
pub const FINDING_TYPE: &str = "Software and Configuration Checks/AWS Security Best Practices";
/// `BatchImportFindings` takes at most 100 findings a call.
pub const BATCH: usize = 100;
/// And at most 240 KB each.
pub const MAX_FINDING_BYTES: usize = 240 * 1024;
/// ASFF's `Description` limit.
const MAX_DESCRIPTION: usize = 1024;

/// Where the function runs: its partition, region and account, from its invoked ARN
/// (`arn:<partition>:lambda:<region>:<account>:function:<name>`), no call needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub partition: String,
    pub region: String,
    pub id: String,
}

impl Account {
    pub fn from_function_arn(arn: &str) -> Option<Self> {
        let mut parts = arn.split(':');
        let (Some("arn"), Some(partition), Some("lambda"), Some(region), Some(id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let valid = !partition.is_empty()
            && !region.is_empty()
            && id.len() == 12
            && id.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            id: id.to_owned(),
        })
    }

    /// The account's default product: where a custom integration's findings go.
    pub fn product_arn(&self) -> String {
        format!(
            "arn:{}:securityhub:{}:{}:product/{}/default",
            self.partition, self.region, self.id, self.id
        )
    }

    pub fn server_arn(&self, server: &ServerId) -> String {
        format!(
            "arn:{}:transfer:{}:{}:server/{server}",
            self.partition, self.region, self.id
        )
    }

    /// The user's ARN, or for an access the server's ARN plus the external id.
    pub fn resource_arn(&self, target: &Target) -> String {
        match &target.subject {
            Subject::User(u) => format!(
                "arn:{}:transfer:{}:{}:user/{}/{u}",
                self.partition, self.region, self.id, target.server
            ),
            Subject::Access(a) => format!("{}/access/{a}", self.server_arn(&target.server)),
        }
    }

    /// The finding's stable id: the same target always has the same one.
    pub fn finding_id(&self, target: &Target) -> String {
        format!("{}/{GENERATOR_ID}", self.resource_arn(target))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Drifted: the audit (or a fix) can chroot it.
    Drifted,
    /// Needs a person; or its fix failed.
    NeedsAttention,
    /// Chrooted now: the finding is resolved.
    Chrooted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Severity {
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Compliance {
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceDetails {
    #[serde(default)]
    pub other: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    pub r#type: String,
    pub id: String,
    #[serde(default)]
    pub partition: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub details: ResourceDetails,
}

/// The part of an ASFF finding this function writes, and reads back (`GetFindings`
/// answers the whole finding: what is not here is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Asff {
    pub schema_version: String,
    pub id: String,
    pub product_arn: String,
    pub generator_id: String,
    pub aws_account_id: String,
    #[serde(default)]
    pub region: String,
    pub types: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub resources: Vec<Resource>,
    pub compliance: Compliance,
    pub record_state: String,
}

/// The instant as ASFF's timestamps write it (RFC 3339, UTC, milliseconds).
pub fn timestamp(at: SystemTime) -> String {
    aws_smithy_types::DateTime::from(at)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// An RFC 3339 timestamp read back (with or without fractional seconds).
pub fn instant(raw: &str) -> Option<aws_smithy_types::DateTime> {
    aws_smithy_types::DateTime::from_str(raw, aws_smithy_types::date_time::Format::DateTime).ok()
}

/// What is known of a target when its finding is written.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub target: &'a Target,
    pub verdict: Verdict,
    /// The reason (the audit's), or what was done.
    pub reason: &'a str,
    /// `PATH`, `LOGICAL`, as it was seen.
    pub home_type: &'a str,
}

/// `reason` as ASFF's `Description`: at most [`MAX_DESCRIPTION`] characters.
fn description(reason: &str) -> String {
    match reason.char_indices().nth(MAX_DESCRIPTION - 1) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason.to_owned(),
    }
}

impl Account {
    /// The finding for `seen`, at `now`.
    pub fn finding(&self, seen: &Observed<'_>, now: &str) -> Asff {
        let target = seen.target;
        let (kind, name_field) = match &target.subject {
            Subject::User(_) => ("user", "UserName"),
            Subject::Access(_) => ("access", "ExternalId"),
        };
        let (severity, status, state) = match seen.verdict {
            Verdict::Drifted => ("MEDIUM", "FAILED", "ACTIVE"),
            Verdict::NeedsAttention => ("HIGH", "FAILED", "ACTIVE"),
            Verdict::Chrooted => ("INFORMATIONAL", "PASSED", "ARCHIVED"),
        };
        let mut other = BTreeMap::new();
        other.insert("ServerId".to_owned(), target.server.to_string());
        other.insert(name_field.to_owned(), target.subject.as_str().to_owned());
        if !seen.home_type.is_empty() {
            other.insert("HomeDirectoryType".to_owned(), seen.home_type.to_owned());
        }
        let description = description(seen.reason);
        Asff {
            schema_version: SCHEMA_VERSION.to_owned(),
            id: self.finding_id(target),
            product_arn: self.product_arn(),
            generator_id: GENERATOR_ID.to_owned(),
            aws_account_id: self.id.clone(),
            region: self.region.clone(),
            types: vec![FINDING_TYPE.to_owned()],
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            severity: Severity {
                label: severity.to_owned(),
            },
            title: format!("AWS Transfer Family {kind} is not chrooted to its home"),
            description,
            resources: vec![Resource {
                r#type: "Other".to_owned(),
                id: self.resource_arn(target),
                partition: self.partition.clone(),
                region: self.region.clone(),
                details: ResourceDetails { other },
            }],
            compliance: Compliance {
                status: status.to_owned(),
            },
            record_state: state.to_owned(),
        }
    }
}

/// A server on a custom identity provider (`AWS_LAMBDA`, `API_GATEWAY`): every login
/// takes its home from that provider, so no stored user's chroot is enforced there.
#[derive(Debug, Clone)]
pub struct ServerObserved<'a> {
    pub server: &'a ServerId,
    pub identity_provider: &'a str,
    pub reason: &'a str,
    /// On a custom provider now (`false`: back on one whose users are chrooted).
    pub custom: bool,
}

/// The suffix of a server finding's id (one per server).
pub const SERVER_FINDING: &str = "custom-identity-provider";

impl Account {
    /// The server finding for `seen`, at `now`: `HIGH`, `FAILED`, `ACTIVE` while the
    /// server is on a custom provider; `PASSED`, `ARCHIVED` once it is not.
    pub fn server_finding(&self, seen: &ServerObserved<'_>, now: &str) -> Asff {
        let arn = self.server_arn(seen.server);
        let mut other = BTreeMap::new();
        other.insert("ServerId".to_owned(), seen.server.to_string());
        other.insert(
            "IdentityProviderType".to_owned(),
            seen.identity_provider.to_owned(),
        );
        let description = description(seen.reason);
        let finding = Asff {
            schema_version: SCHEMA_VERSION.to_owned(),
            id: format!("{arn}/{GENERATOR_ID}/{SERVER_FINDING}"),
            product_arn: self.product_arn(),
            generator_id: GENERATOR_ID.to_owned(),
            aws_account_id: self.id.clone(),
            region: self.region.clone(),
            types: vec![FINDING_TYPE.to_owned()],
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            severity: Severity {
                label: "HIGH".to_owned(),
            },
            title: "AWS Transfer Family server takes every home from a custom identity provider"
                .to_owned(),
            description,
            resources: vec![Resource {
                r#type: "Other".to_owned(),
                id: arn,
                partition: self.partition.clone(),
                region: self.region.clone(),
                details: ResourceDetails { other },
            }],
            compliance: Compliance {
                status: "FAILED".to_owned(),
            },
            record_state: "ACTIVE".to_owned(),
        };
        if seen.custom {
            finding
        } else {
            finding.resolved(now)
        }
    }
}

impl Asff {
    /// This finding, resolved at `now`: `PASSED`, `ARCHIVED`.
    pub fn resolved(mut self, now: &str) -> Self {
        self.updated_at = now.to_owned();
        self.compliance.status = "PASSED".to_owned();
        self.record_state = "ARCHIVED".to_owned();
        self.severity.label = "INFORMATIONAL".to_owned();
        self
    }

    /// The server its resource is on (`Details.Other.ServerId`).
    pub fn server(&self) -> Option<&str> {
        self.resources
            .first()
            .and_then(|r| r.details.other.get("ServerId"))
            .map(String::as_str)
    }
}

/// One finding Security Hub refused (`FailedFindings`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailedFinding {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_message: String,
}

/// `BatchImportFindings`' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub success: u64,
    pub failed: Vec<FailedFinding>,
}

/// One page of `GetFindings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingsPage {
    pub findings: Vec<Asff>,
    pub next_token: Option<String>,
}

/// A failed Security Hub call, classified once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct HubError {
    pub operation: &'static str,
    pub message: String,
    /// Throttling, 5xx, timeouts: another try may work.
    pub retryable: bool,
    pub request_id: Option<String>,
}

/// The two Security Hub calls.
pub trait SecurityHub: Send + Sync {
    /// `BatchImportFindings` of at most [`BATCH`] findings.
    fn import<'a>(&'a self, findings: &'a [Asff]) -> Pending<'a, Result<Imported, HubError>>;

    /// `GetFindings`: this generator's active findings in `account`, updated before
    /// `before` (RFC 3339), one page from `token`. The service filters; what comes back
    /// is filtered again by the caller (a local Security Hub may not filter).
    fn active<'a>(
        &'a self,
        account: &'a Account,
        before: &'a str,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<FindingsPage, HubError>>;
}

/// What went to Security Hub: the audit's `SecurityHub` counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HubCounts {
    /// Findings accepted (active and resolved alike).
    pub imported: u64,
    /// Findings refused (`FailedFindings`), or not sent because a call failed.
    pub failed: u64,
    /// Findings archived by the sweep at the end of a completed run.
    pub archived: u64,
}

impl HubCounts {
    pub fn add(&mut self, other: HubCounts) {
        self.imported += other.imported;
        self.failed += other.failed;
        self.archived += other.archived;
    }
}

/// The function's Security Hub: the port, with the batching, the resolution and the
/// sweep on top (the account a finding belongs to is the caller's: the function learns
/// it from its invoked ARN, `Chroot::learn`).
pub struct Hub {
    client: std::sync::Arc<dyn SecurityHub>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(client: std::sync::Arc<dyn SecurityHub>) -> Self {
        Self { client }
    }

    /// Imports `findings`, [`BATCH`] a call (one too large is not sent, and counted as
    /// failed). Failures are logged and counted, never returned.
    pub async fn send(&self, findings: &[Asff]) -> HubCounts {
        let mut counts = HubCounts::default();
        let mut fit = Vec::with_capacity(findings.len().min(BATCH));
        for f in findings {
            match serde_json::to_vec(f).map(|v| v.len()) {
                Ok(n) if n <= MAX_FINDING_BYTES => fit.push(f.clone()),
                _ => {
                    counts.failed += 1;
                    tracing::error!(finding = %f.id, "Security Hub: finding over 240 KB, not sent");
                }
            }
        }
        for batch in fit.chunks(BATCH) {
            match self.client.import(batch).await {
                Ok(done) => {
                    counts.imported += done.success;
                    counts.failed += done.failed.len() as u64;
                    for f in &done.failed {
                        tracing::error!(
                            finding = %f.id,
                            error_code = %f.error_code,
                            error = %f.error_message,
                            "Security Hub refused a finding"
                        );
                    }
                }
                Err(e) => {
                    counts.failed += batch.len() as u64;
                    tracing::error!(
                        error = %e,
                        findings = batch.len(),
                        request_id = e.request_id.as_deref(),
                        "Security Hub: findings not imported"
                    );
                }
            }
        }
        crate::metrics::security_hub(counts.imported, counts.failed);
        counts
    }

    /// A target chrooted now: its finding re-imported `PASSED`, `ARCHIVED`.
    pub async fn resolve(&self, account: &Account, target: &Target, how: &str) -> HubCounts {
        let now = timestamp(SystemTime::now());
        let seen = Observed {
            target,
            verdict: Verdict::Chrooted,
            reason: how,
            home_type: "LOGICAL",
        };
        self.send(&[account.finding(&seen, &now)]).await
    }

    /// A server's finding, imported at once: active while it is on a custom identity
    /// provider, archived once it is back on one whose users are chrooted.
    pub async fn server(&self, account: &Account, seen: &ServerObserved<'_>) -> HubCounts {
        let now = timestamp(SystemTime::now());
        self.send(&[account.server_finding(seen, &now)]).await
    }

    /// At the end of a completed run over `servers` started at `started`: this
    /// generator's active findings in this account on those servers not reported again
    /// since (`UpdatedAt` before `started`) are archived.
    pub async fn sweep(&self, account: &Account, servers: &[ServerId], started: &str) -> HubCounts {
        let mut counts = HubCounts::default();
        let now = timestamp(SystemTime::now());
        let Some(start) = instant(started) else {
            return counts;
        };
        let mut stale = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match self.client.active(account, started, token.as_deref()).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, request_id = e.request_id.as_deref(), "Security Hub: sweep not finished");
                    counts.failed += 1;
                    break;
                }
            };
            // Filtered again: the filters are the service's, the decision is ours.
            stale.extend(page.findings.into_iter().filter(|f| {
                f.generator_id == GENERATOR_ID
                    && f.aws_account_id == account.id
                    && f.record_state == "ACTIVE"
                    && instant(&f.updated_at).is_some_and(|at| at < start)
                    && (f.region.is_empty() || f.region == account.region)
                    && f.server()
                        .is_some_and(|s| servers.iter().any(|x| x.as_str() == s))
            }));
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        let resolved: Vec<Asff> = stale.into_iter().map(|f| f.resolved(&now)).collect();
        let sent = self.send(&resolved).await;
        counts.archived += sent.imported;
        counts.failed += sent.failed;
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account::from_function_arn(
            "arn:aws:lambda:eu-west-1:111122223333:function:transfer-chroot:live",
        )
        .unwrap()
    }

    #[test]
    fn the_account_comes_from_the_invoked_arn() {
        let a = account();
        assert_eq!(
            (a.partition.as_str(), a.region.as_str(), a.id.as_str()),
            ("aws", "eu-west-1", "111122223333")
        );
        assert_eq!(
            a.product_arn(),
            "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
        );
        let gov = Account::from_function_arn(
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f",
        )
        .unwrap();
        assert_eq!(gov.partition, "aws-us-gov");
        for bad in [
            "",
            "arn:aws:lambda:eu-west-1:1111:function:f",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda::111122223333:function:f",
        ] {
            assert_eq!(Account::from_function_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_finding_has_the_asff_fields_and_a_stable_id() {
        let a = account();
        let alice: Target = "s-0123456789abcdef0/users/alice".parse().unwrap();
        let seen = Observed {
            target: &alice,
            verdict: Verdict::Drifted,
            reason: "home /b/home/alice is not chrooted: chroot it there",
            home_type: "PATH",
        };
        let f = a.finding(&seen, "2026-12-07T10:00:00Z");
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["SchemaVersion"], "2018-10-08");
        assert_eq!(
            v["Id"],
            "arn:aws:transfer:eu-west-1:111122223333:user/s-0123456789abcdef0/alice/transfer-chroot/not-chrooted"
        );
        assert_eq!(v["AwsAccountId"], "111122223333");
        assert_eq!(v["Types"][0], FINDING_TYPE);
        assert_eq!(v["Severity"]["Label"], "MEDIUM");
        assert_eq!(v["Compliance"]["Status"], "FAILED");
        assert_eq!(v["RecordState"], "ACTIVE");
        assert_eq!(v["Description"], seen.reason);
        let r = &v["Resources"][0];
        assert_eq!(r["Type"], "Other");
        assert_eq!(
            r["Id"],
            "arn:aws:transfer:eu-west-1:111122223333:user/s-0123456789abcdef0/alice"
        );
        assert_eq!(r["Region"], "eu-west-1");
        assert_eq!(r["Partition"], "aws");
        assert_eq!(r["Details"]["Other"]["UserName"], "alice");
        assert_eq!(r["Details"]["Other"]["HomeDirectoryType"], "PATH");
        assert_eq!(f.id, a.finding(&seen, "2027-01-01T00:00:00Z").id, "stable");
        let back: Asff = serde_json::from_value(v).unwrap();
        assert_eq!(back, f);
        let resolved = f.clone().resolved("2026-12-07T11:00:00Z");
        assert_eq!(
            (
                resolved.compliance.status.as_str(),
                resolved.record_state.as_str()
            ),
            ("PASSED", "ARCHIVED")
        );

        let access: Target = "s-0123456789abcdef1/accesses/S-1-5-21-7".parse().unwrap();
        let long = "x".repeat(5000);
        let g = a.finding(
            &Observed {
                target: &access,
                verdict: Verdict::NeedsAttention,
                reason: &long,
                home_type: "",
            },
            "2026-12-07T10:00:00Z",
        );
        assert_eq!(g.severity.label, "HIGH");
        assert_eq!(
            g.resources[0].id,
            "arn:aws:transfer:eu-west-1:111122223333:server/s-0123456789abcdef1/access/S-1-5-21-7"
        );
        assert_eq!(g.description.chars().count(), MAX_DESCRIPTION);
        assert_ne!(g.id, f.id);
    }
}
