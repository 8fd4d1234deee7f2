//! `transfer-chroot`, the operator's command line: the function's own core (the audit,
//! the reconcile, the chroot command) from a laptop, with the usual AWS credentials.
//! Read-only unless told otherwise (`--fix`, `chroot`). A thin adapter like the Lambda's
//! `main.rs`: arguments and configuration in, the same library calls, output out.
//!
//! Exit codes, for CI gates: 0 all chrooted or exempt, 3 drifted or needing attention
//! found (left), or a server on a custom identity provider, 1 an error, 2 a usage or
//! configuration error.

mod output;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Map, json};

use transfer_chroot::audit::{
    self, Audit, AuditFinding, Class, Counts, Coverage, Unbounded, Watch,
};
use transfer_chroot::domain::{ServerId, Subject, Target, UserName};
use transfer_chroot::input::{CommandInput, Reading};
use transfer_chroot::report::Collector;
use transfer_chroot::scope::Scope;
use transfer_chroot::transfer::pace::Pacer;
use transfer_chroot::transfer::sdk::{self, SdkTransfer};
use transfer_chroot::transfer::{Transfer, TransferError};
use transfer_chroot::{Chroot, Config, Status, drift};

/// Nothing left to do: all chrooted or exempt.
const CLEAN: u8 = 0;
/// A Transfer call or the run failed.
const ERROR: u8 = 1;
/// Bad arguments or configuration (clap's own code for usage errors).
const USAGE: u8 = 2;
/// Drifted or needs-attention targets are left, or a server chroots no one (a custom
/// identity provider).
const FOUND: u8 = 3;

#[derive(Parser)]
#[command(
    name = "transfer-chroot",
    version,
    about = "Audit, check and chroot AWS Transfer Family users from the command line",
    long_about = "Audit, check and chroot AWS Transfer Family users and directory-group \
                  accesses with the same rules as the transfer-chroot Lambda function. \
                  Read-only unless --fix or chroot. Exit codes: 0 all chrooted or exempt, \
                  3 drifted or needs-attention found, or a server on a custom identity \
                  provider, 1 an error, 2 a usage error."
)]
struct Cli {
    #[command(flatten)]
    aws: AwsArgs,
    #[command(flatten)]
    conf: ConfArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct AwsArgs {
    /// The AWS profile (else AWS_PROFILE, else the default chain).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// The AWS region (else AWS_REGION or the profile's).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Another Transfer endpoint (a local stand-in, say).
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
}

#[derive(Args)]
struct ConfArgs {
    /// The function's variables as KEY=VALUE lines (demo/config.env's format); the
    /// environment's are read first, the file's win, flags win over both.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A root users may be chrooted below (HOME_ROOTS); repeat for several.
    #[arg(long = "home-root", global = true, value_name = "PATH")]
    home_roots: Vec<String>,
    /// Cover the servers carrying this tag (SERVER_TAG): KEY=VALUE, or KEY for any
    /// value; each server's own transfer-chroot:home-roots tag gives its roots.
    #[arg(long = "server-tag", global = true, value_name = "KEY[=VALUE]")]
    server_tag: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Classify every user and access of the servers; fix the drifted ones with --fix.
    Audit {
        /// A server to audit (else ALLOWED_SERVER_IDS, else every server listed);
        /// repeat for several.
        #[arg(long = "server", value_name = "SERVER_ID")]
        servers: Vec<String>,
        /// Chroot the drifted ones (each a reconcile: read again, written only if still
        /// drifted). Asks first on a terminal, unless --yes.
        #[arg(long)]
        fix: bool,
        /// With --fix: plan, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Confirm --fix without asking.
        #[arg(long)]
        yes: bool,
        /// The most Transfer requests a second (AUDIT_MAX_RPS), to leave room for the
        /// deployed function and other tools.
        #[arg(long, value_name = "N")]
        max_rps: Option<f64>,
        /// Targets looked at once (AUDIT_CONCURRENCY).
        #[arg(long, value_name = "N")]
        concurrency: Option<usize>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Every finding as NDJSON (one JSON object a line), uncapped.
        #[arg(long, value_name = "FILE")]
        findings_file: Option<PathBuf>,
        /// A self-contained HTML report of the run.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Read one user (or, with --access, one directory group's access) back: chrooted
    /// or not, and why.
    Check {
        #[arg(required_unless_present = "access", conflicts_with = "access")]
        user: Option<String>,
        /// A directory group's access (its ExternalId, an AD SID) instead of a user.
        #[arg(long, value_name = "EXTERNAL_ID")]
        access: Option<String>,
        #[arg(long, value_name = "SERVER_ID")]
        server: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Chroot one user to their home (or --home), as the function's direct invocation.
    Chroot {
        user: String,
        #[arg(long, value_name = "SERVER_ID")]
        server: String,
        /// The chroot target (else derived: HOME_TEMPLATE).
        #[arg(long, value_name = "PATH")]
        home: Option<String>,
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    Csv,
}

/// What went wrong, and the exit code it ends with.
struct Failure(u8, String);

impl Failure {
    fn usage(m: impl Into<String>) -> Self {
        Self(USAGE, m.into())
    }

    fn error(m: impl Into<String>) -> Self {
        Self(ERROR, m.into())
    }
}

impl From<TransferError> for Failure {
    fn from(e: TransferError) -> Self {
        Self::error(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: no async runtime: {e}");
            return ExitCode::from(ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// `KEY=VALUE` lines; blank lines and `#` comments skipped, `export ` and quotes
/// around the value allowed.
fn read_config_file(path: &Path) -> Result<Vec<(String, String)>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))?;
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(Failure::usage(format!(
                "--config {}:{}: not KEY=VALUE",
                path.display(),
                n + 1
            )));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        pairs.push((k.trim().to_owned(), v.to_owned()));
    }
    Ok(pairs)
}

/// The function's variables: the environment, then `--config`, then the flags.
fn variables(
    conf: &ConfArgs,
    flags: &[(&str, String)],
) -> Result<HashMap<String, String>, Failure> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    if let Some(path) = &conf.config {
        vars.extend(read_config_file(path)?);
    }
    if !conf.home_roots.is_empty() {
        vars.insert("HOME_ROOTS".into(), conf.home_roots.join(","));
    }
    if let Some(tag) = &conf.server_tag {
        vars.insert("SERVER_TAG".into(), tag.clone());
    }
    for (k, v) in flags {
        vars.insert((*k).to_owned(), v.clone());
    }
    Ok(vars)
}

async fn sdk_config(aws: &AwsArgs) -> Result<aws_config::SdkConfig, Failure> {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).timeout_config(sdk::timeout_config());
    if let Some(p) = &aws.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &aws.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(u) = &aws.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    if let Some(context) = sdk::tls_context_from_env().map_err(|e| Failure::usage(e.to_string()))? {
        loader = loader.http_client(sdk::http_client(context));
    }
    Ok(loader.load().await)
}

/// Every server of the account and region (`ListServers`), for an audit given none.
async fn every_server(transfer: &SdkTransfer) -> Result<Vec<String>, Failure> {
    let mut servers = Vec::new();
    let mut token = None;
    loop {
        let page = transfer.list_servers(token.as_deref()).await?.value;
        servers.extend(page.items);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(servers),
        }
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let sdk = sdk_config(&cli.aws).await?;
    let transfer = SdkTransfer::new(aws_sdk_transfer::Client::new(&sdk));
    let region = sdk.region().map(ToString::to_string);
    match cli.command {
        Command::Audit {
            servers,
            fix,
            dry_run,
            yes,
            max_rps,
            concurrency,
            output,
            findings_file,
            html,
        } => {
            let mut flags = Vec::new();
            if let Some(r) = max_rps {
                flags.push(("AUDIT_MAX_RPS", r.to_string()));
            }
            if let Some(c) = concurrency {
                flags.push(("AUDIT_CONCURRENCY", c.to_string()));
            }
            let mut vars = variables(&cli.conf, &flags)?;
            // With SERVER_TAG the tag decides; else the servers named, else every one.
            if !tagged(&vars) {
                if !servers.is_empty() && !vars.contains_key("ALLOWED_SERVER_IDS") {
                    vars.insert("ALLOWED_SERVER_IDS".into(), servers.join(","));
                }
                if !vars.contains_key("ALLOWED_SERVER_IDS") {
                    vars.insert(
                        "ALLOWED_SERVER_IDS".into(),
                        every_server(&transfer).await?.join(","),
                    );
                }
            }
            let config = config_of(&vars)?;
            let chroot = Chroot::new(config, transfer);
            let coverage = Coverage::of(&chroot.config, chroot.covered_servers().await?);
            let picked = pick_servers(&servers, &coverage)?;
            if fix && !dry_run && !yes {
                confirm(&picked, region.as_deref())?;
            }
            let audit = Audit {
                servers: picked,
                fix,
                dry_run,
                resume: None,
                named: false,
                binding: coverage.binding,
                carries_servers: false,
            };
            let run = AuditRun {
                output,
                findings_file,
                html,
                region,
                account: caller_account(&sdk).await,
            };
            run.go(&chroot, &audit).await
        }
        Command::Check {
            user,
            access,
            server,
            output,
        } => {
            let mut vars = variables(&cli.conf, &[])?;
            if !tagged(&vars) {
                vars.entry("ALLOWED_SERVER_IDS".into())
                    .or_insert_with(|| server.clone());
            }
            let config = config_of(&vars)?;
            let target = match (&user, &access) {
                (Some(user), None) => target_of(user, &server)?,
                (None, Some(access)) => access_of(access, &server)?,
                _ => return Err(Failure::usage("give a USER or --access EXTERNAL_ID")),
            };
            let chroot = Chroot::new(config, transfer);
            let on = match chroot.scope(&target.server).await? {
                Scope::Allowed(on) => on,
                Scope::Refused(why) => return Err(Failure::usage(format!("--server: {why}"))),
            };
            // On a custom identity provider no stored user or access is used at login.
            let facts = chroot
                .env
                .servers
                .facts(&chroot.ports.transfer, &target.server)
                .await?;
            if let Some(reason) = transfer_chroot::servers::chroots_no_one(&facts) {
                let provider = facts.identity_provider.as_str();
                match output {
                    Output::Json => println!(
                        "{}",
                        json!({"ServerFindings": [{"ServerId": target.server.as_str(),
                            "IdentityProviderType": provider, "Reason": reason}]})
                    ),
                    _ => println!("{} ({provider}): {reason}", target.server),
                }
                return Ok(FOUND);
            }
            if let Some(why) = transfer_chroot::servers::kind_refusal(&facts, &target) {
                return Err(Failure::usage(why.message));
            }
            let live = chroot.inspect(&target).await?;
            let finding = drift::classify(&target, &live.value, &on);
            output::check(output, &target, &finding, &live.value);
            Ok(match finding.class() {
                Class::Chrooted | Class::Exempt => CLEAN,
                _ => FOUND,
            })
        }
        Command::Chroot {
            user,
            server,
            home,
            dry_run,
            output,
        } => {
            let mut vars = variables(&cli.conf, &[])?;
            if !tagged(&vars) {
                vars.entry("ALLOWED_SERVER_IDS".into())
                    .or_insert_with(|| server.clone());
            }
            let config = config_of(&vars)?;
            let chroot = Chroot::new(config, transfer);
            let mut event = Map::new();
            event.insert("Action".into(), "UpdateUser".into());
            event.insert("ServerId".into(), server.into());
            event.insert("UserName".into(), user.into());
            if let Some(h) = home {
                event.insert("HomeDirectory".into(), h.into());
            }
            if dry_run {
                event.insert("DryRun".into(), true.into());
            }
            let outcome = chroot
                .run(&CommandInput::read(&event, Reading::default()))
                .await;
            output::outcome(output, &outcome);
            Ok(
                match (outcome.status, outcome.error.as_ref().map(|e| e.code)) {
                    (
                        Status::Failed,
                        Some(transfer_chroot::outcome::ErrorCode::ValidationFailed),
                    ) => USAGE,
                    (Status::Failed, _) => ERROR,
                    _ => CLEAN,
                },
            )
        }
    }
}

fn config_of(vars: &HashMap<String, String>) -> Result<Config, Failure> {
    Config::from_lookup(|k| vars.get(k).cloned()).map_err(|e| {
        let hint = if e.names("HOME_ROOTS") {
            " (--home-root PATH, or HOME_ROOTS in the environment or --config)"
        } else {
            ""
        };
        Failure::usage(format!("{e}{hint}"))
    })
}

/// Whether the tag decides the servers (`SERVER_TAG`, `--server-tag`).
fn tagged(vars: &HashMap<String, String>) -> bool {
    vars.get("SERVER_TAG").is_some_and(|t| !t.trim().is_empty())
}

/// The servers named (each one covered), or every covered one.
fn pick_servers(named: &[String], coverage: &Coverage) -> Result<Vec<ServerId>, Failure> {
    if named.is_empty() {
        return Ok(coverage.servers.clone());
    }
    named
        .iter()
        .map(|s| match ServerId::parse(s) {
            Ok(id) if coverage.servers.contains(&id) => Ok(id),
            Ok(id) => Err(Failure::usage(format!(
                "--server {}",
                coverage.refusal(&id)
            ))),
            Err(e) => Err(Failure::usage(format!("--server {s:?}: {e}"))),
        })
        .collect()
}

fn target_of(user: &str, server: &str) -> Result<Target, Failure> {
    let server = ServerId::parse(server).map_err(|e| Failure::usage(format!("--server: {e}")))?;
    let user = UserName::parse(user).map_err(|e| Failure::usage(format!("user {user:?}: {e}")))?;
    Ok(Target::new(server, Subject::User(user)))
}

fn access_of(external_id: &str, server: &str) -> Result<Target, Failure> {
    let server = ServerId::parse(server).map_err(|e| Failure::usage(format!("--server: {e}")))?;
    let id = transfer_chroot::domain::ExternalId::parse(external_id)
        .map_err(|e| Failure::usage(format!("--access {external_id:?}: {e}")))?;
    Ok(Target::new(server, Subject::Access(id)))
}

/// The account the credentials are of (`GetCallerIdentity`, which needs no
/// permission), for the report; `None` (with a line on stderr) when it cannot be told.
async fn caller_account(sdk: &aws_config::SdkConfig) -> Option<String> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let asked = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sts.get_caller_identity().send(),
    )
    .await;
    match asked {
        Ok(Ok(out)) => out.account().map(str::to_owned),
        Ok(Err(e)) => {
            eprintln!(
                "note: the account could not be told (GetCallerIdentity: {})",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            );
            None
        }
        Err(_) => {
            eprintln!("note: the account could not be told (GetCallerIdentity: no answer)");
            None
        }
    }
}

/// `--fix` writes: asked on a terminal, refused elsewhere without `--yes`.
fn confirm(servers: &[ServerId], region: Option<&str>) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "--fix writes to Transfer: add --yes to confirm when not on a terminal",
        ));
    }
    let names: Vec<&str> = servers.iter().map(ServerId::as_str).collect();
    eprint!(
        "Chroot every drifted user and access of {} in {}? [y/N] ",
        names.join(", "),
        region.unwrap_or("the default region")
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::error(format!("reading the answer: {e}")))?;
    match answer.trim() {
        "y" | "Y" | "yes" | "Yes" => Ok(()),
        _ => Err(Failure::usage("not confirmed: nothing written")),
    }
}

struct AuditRun {
    output: Output,
    findings_file: Option<PathBuf>,
    html: Option<PathBuf>,
    region: Option<String>,
    account: Option<String>,
}

/// The progress bar and the collector, told of each target as it is counted.
struct Progress {
    bar: indicatif::ProgressBar,
    collector: Collector,
    pacer: Arc<Pacer>,
}

impl Watch for Progress {
    fn server_found(&mut self, finding: &transfer_chroot::audit::ServerFinding) {
        self.collector.server_found(finding);
    }

    fn counted(
        &mut self,
        server: &ServerId,
        class: Option<Class>,
        finding: Option<&AuditFinding>,
        totals: &Counts,
    ) {
        self.collector.counted(server, class, finding, totals);
        self.bar.inc(1);
        let pace = self.pacer.snapshot();
        self.bar.set_message(format!(
            "drifted {} · needs attention {} · fixed {} · throttled {}",
            totals.drifted, totals.needs_attention, totals.fixed, pace.throttled
        ));
    }
}

/// How many targets the servers hold (a listing pass, a call per 1,000), for the bar's
/// length and ETA; `None` when a listing fails (the audit reports it).
async fn count_targets<T: Transfer>(chroot: &Chroot<T>, servers: &[ServerId]) -> Option<u64> {
    let mut total = 0;
    for server in servers {
        let facts = chroot
            .env
            .servers
            .facts(&chroot.ports.transfer, server)
            .await
            .ok()?;
        for kind in audit::kinds_of(&facts.identity_provider) {
            let mut token: Option<String> = None;
            loop {
                let page = chroot
                    .ports
                    .transfer
                    .list(server, *kind, token.as_deref())
                    .await
                    .ok()?
                    .value;
                total += page.items.len() as u64;
                match page.next_token {
                    Some(t) if !page.items.is_empty() => token = Some(t),
                    _ => break,
                }
            }
        }
    }
    Some(total)
}

impl AuditRun {
    async fn go<T: Transfer>(self, chroot: &Chroot<T>, audit: &Audit) -> Result<u8, Failure> {
        let started = now_rfc3339();
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if std::io::stderr().is_terminal() {
            bar.set_message("listing");
            if let Some(total) = count_targets(chroot, &audit.servers).await {
                bar.set_length(total);
            }
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} classified · ETA {eta} · {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
        } else {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut progress = Progress {
            bar,
            collector: Collector::for_servers(&audit.servers),
            pacer: Arc::clone(&chroot.env.pacer),
        };
        let run_id = format!("cli-{started}");
        let report =
            audit::run_watched(chroot, audit, &run_id, &mut Unbounded, &mut progress).await;
        progress.bar.finish_and_clear();
        let collector = progress.collector;
        let run = transfer_chroot::report::RunReport {
            started,
            finished: now_rfc3339(),
            account: self.account,
            region: self.region,
            fix: audit.fix,
            dry_run: audit.dry_run || chroot.config.dry_run,
            servers: collector.servers(),
            server_findings: collector.server_findings,
            totals: report.counts,
            findings: collector.findings,
        };
        if let Some(path) = &self.findings_file {
            let mut text = String::new();
            for f in &run.findings {
                text.push_str(&serde_json::to_string(f).unwrap_or_default());
                text.push('\n');
            }
            std::fs::write(path, text)
                .map_err(|e| Failure::error(format!("{}: {e}", path.display())))?;
        }
        if let Some(path) = &self.html {
            std::fs::write(path, run.html())
                .map_err(|e| Failure::error(format!("{}: {e}", path.display())))?;
            eprintln!("report: {}", path.display());
        }
        match self.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_else(|_| json!({}).to_string())
            ),
            Output::Csv => print!("{}", run.csv()),
            Output::Table => output::audit_table(&run, &report),
        }
        if let Some(e) = &report.error {
            eprintln!("error: {}", e.message);
            return Ok(ERROR);
        }
        let c = report.counts;
        let left_drifted = if audit.fix && !run.dry_run {
            c.drifted.saturating_sub(c.fixed)
        } else {
            c.drifted
        };
        Ok(if c.failed > 0 {
            ERROR
        } else if left_drifted + c.needs_attention > 0 || !report.server_findings.is_empty() {
            // A server on a custom identity provider chroots no one: always a finding.
            FOUND
        } else {
            CLEAN
        })
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    output::rfc3339(secs)
}
