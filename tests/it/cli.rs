//! The operator's command line (`transfer-chroot`, the `cli` feature), the real binary
//! against the stand-in through the real SDK: the same counts as the function's own
//! audit, the exit codes CI gates read (0 clean, 3 found, 1 an error, 2 usage), fixes
//! that are reconciles, the read-back, the chroot command, and the outputs (JSON, CSV,
//! NDJSON findings, the HTML report).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use transfer_chroot::audit::{AuditReport, Counts};
use transfer_standin::StandIn;

use crate::common::*;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_transfer-chroot"))
}

fn config_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/config.env")
}

/// Runs the CLI against `endpoint` with `args` (off a terminal, as CI runs it), with
/// static test credentials and nothing of the machine's AWS configuration.
async fn cli(endpoint: &str, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec![
        "--endpoint-url".into(),
        endpoint.into(),
        "--region".into(),
        "us-east-1".into(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let binary = binary().to_owned();
    // Blocking, on a thread of its own: the stand-in keeps serving on the runtime's.
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary)
            .args(&all)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", "AKIDCLI")
            .env("AWS_SECRET_ACCESS_KEY", "cli-secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the CLI runs")
    })
    .await
    .expect("joined")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A server whose users are only drifted (PATH below the root) or chrooted: nothing
/// needs a person, so a fixed fleet is clean.
async fn clean_fleet(drifted: usize, chrooted: usize) -> StandIn {
    let standin = StandIn::start(&json!({"Servers": [{"ServerId": SERVER}]}))
        .await
        .expect("stand-in");
    for (prefix, count, kind) in [("drift", drifted, "PATH"), ("chroot", chrooted, "LOGICAL")] {
        generate_users(
            &standin,
            SERVER,
            prefix,
            count,
            kind,
            "/acme-sftp/home/${UserName}",
        );
    }
    standin
}

const CLEAN_FLAGS: [&str; 2] = ["--home-root", "/acme-sftp/home"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_json_counts_are_the_functions_and_drifted_exits_3() {
    let t = spawn_app().await;
    let function: AuditReport = serde_json::from_value(
        t.invoke_with_budget(json!({"Action": "Audit"}), Duration::from_secs(30))
            .await
            .expect("answers"),
    )
    .expect("an audit report");
    t.standin.clear_requests();
    let config = config_file();
    let out = cli(
        &t.standin.endpoint(),
        &[
            "--config",
            config.to_str().unwrap(),
            "audit",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(code(&out), 3, "drifted found: {}", stderr(&out));
    let report: AuditReport = serde_json::from_str(&stdout(&out)).expect("the audit's JSON");
    assert_eq!(
        report.counts, function.counts,
        "the same core, the same counts"
    );
    assert_eq!(report.findings, function.findings);
    assert!(report.continuation.is_none());
    assert_eq!(t.writes(), 0, "read-only by default");
    assert!(
        stderr(&out).is_empty(),
        "no progress drawn off a terminal: {}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_yes_writes_through_reconciles_and_a_second_audit_exits_0() {
    let standin = clean_fleet(30, 20).await;
    let mut args = vec!["--server", SERVER];
    args.extend(CLEAN_FLAGS);
    let before = cli(&standin.endpoint(), &[&["audit"], &args[..]].concat()).await;
    assert_eq!(code(&before), 3, "{}", stderr(&before));

    standin.clear_requests();
    let fixed = cli(
        &standin.endpoint(),
        &[&["audit", "--fix", "--yes", "--output", "json"], &args[..]].concat(),
    )
    .await;
    assert_eq!(code(&fixed), 0, "everything fixed: {}", stderr(&fixed));
    let report: AuditReport = serde_json::from_str(&stdout(&fixed)).unwrap();
    assert_eq!((report.counts.drifted, report.counts.fixed), (30, 30));
    // Each write is a reconcile: the user read again right before it.
    let calls: Vec<(String, String)> = standin
        .requests()
        .iter()
        .map(|r| {
            (
                r.operation.clone(),
                r.body["UserName"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (i, (op, user)) in calls.iter().enumerate() {
        if op == "UpdateUser" {
            assert!(
                calls[..i]
                    .iter()
                    .any(|(o, u)| o == "DescribeUser" && u == user),
                "{user} written without a read"
            );
        }
    }
    assert_eq!(calls.iter().filter(|(o, _)| o == "UpdateUser").count(), 30);

    let after = cli(&standin.endpoint(), &[&["audit"], &args[..]].concat()).await;
    assert_eq!(code(&after), 0, "{}", stdout(&after));
    assert!(
        stdout(&after).contains("50 targets: 50 chrooted"),
        "{}",
        stdout(&after)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_off_a_terminal_without_yes_is_refused_and_writes_nothing() {
    let standin = clean_fleet(3, 0).await;
    let mut args = vec!["audit", "--fix", "--server", SERVER];
    args.extend(CLEAN_FLAGS);
    let out = cli(&standin.endpoint(), &args).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert!(
        standin.requests().is_empty(),
        "nothing called, nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_configuration_errors_exit_2_before_any_call() {
    let standin = clean_fleet(1, 0).await;
    let endpoint = standin.endpoint();
    for args in [
        vec!["audit", "--no-such-flag"],
        vec![
            "audit",
            "--server",
            "s-123",
            "--home-root",
            "/acme-sftp/home",
        ],
        vec!["audit", "--server", SERVER],
        vec!["audit", "--server", SERVER, "--home-root", "relative"],
        vec![
            "check",
            "bad name!",
            "--server",
            SERVER,
            "--home-root",
            "/acme-sftp/home",
        ],
        vec!["frobnicate"],
    ] {
        let out = cli(&endpoint, &args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    assert!(standin.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_unreachable_exits_1() {
    let out = cli(
        "http://127.0.0.1:9",
        &[
            "audit",
            "--server",
            SERVER,
            "--home-root",
            "/acme-sftp/home",
        ],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_one_user_back_and_chroot_fixes_it() {
    let t = spawn_app().await;
    let config = config_file();
    let conf = ["--config", config.to_str().unwrap()];
    let check = |user: &'static str| {
        let endpoint = t.standin.endpoint();
        let args: Vec<&str> = [&conf[..], &["check", user, "--server", SERVER]].concat();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&endpoint, &args).await
        }
    };
    let alice = check("alice").await;
    assert_eq!(code(&alice), 3, "{}", stderr(&alice));
    assert!(
        stdout(&alice).contains("alice on s-0123456789abcdef0: Drifted"),
        "{}",
        stdout(&alice)
    );
    assert!(stdout(&alice).contains("chroot to /acme-sftp/home/alice"));
    assert_eq!(code(&check("bob").await), 0, "bob is chrooted");
    assert_eq!(t.writes(), 0, "check only reads");

    let args: Vec<&str> = [
        &conf[..],
        &["chroot", "alice", "--server", SERVER, "--output", "json"],
    ]
    .concat();
    let chroot = cli(&t.standin.endpoint(), &args).await;
    assert_eq!(code(&chroot), 0, "{}", stderr(&chroot));
    let outcome: Value = serde_json::from_str(&stdout(&chroot)).unwrap();
    assert_eq!(outcome["Status"], "Updated", "{outcome}");
    assert_eq!(t.writes(), 1);
    assert_eq!(code(&check("alice").await), 0, "chrooted now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_ndjson_and_the_html_report_list_every_finding() {
    let t = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("transfer-chroot-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ndjson, html) = (dir.join("findings.ndjson"), dir.join("report.html"));
    let config = config_file();
    let out = cli(
        &t.standin.endpoint(),
        &[
            "--config",
            config.to_str().unwrap(),
            "audit",
            "--output",
            "csv",
            "--findings-file",
            ndjson.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code(&out), 3);
    let csv = stdout(&out);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "ServerId,UserName,ExternalId,Class,Reason,Target,Status"
    );
    let expected = Counts {
        drifted: 4,
        needs_attention: 2,
        ..Counts::default()
    };
    let findings = (expected.drifted + expected.needs_attention) as usize;
    assert_eq!(rows.len(), 1 + findings, "{csv}");
    let lines: Vec<Value> = std::fs::read_to_string(&ndjson)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(lines.len(), findings);
    assert!(
        lines
            .iter()
            .any(|f| f["UserName"] == "alice" && f["Class"] == "Drifted")
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg id=\"chart\""));
    assert!(page.contains("home /acme-sftp/home/alice is not chrooted"));
    assert!(stderr(&out).contains("report: "), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_a_server_tag_the_cli_audits_the_tagged_servers_with_their_own_roots() {
    let tagged = "s-0a0000000000000a1";
    let untagged = "s-0b0000000000000b2";
    let standin = StandIn::start(&json!({"Servers": [
        {"ServerId": tagged,
         "Tags": [{"Key": "transfer-chroot", "Value": "enforce"},
                  {"Key": "transfer-chroot:home-roots", "Value": "/bucket-a/home"}],
         "Users": [{"UserName": "alice", "HomeDirectoryType": "PATH", "HomeDirectory": "/bucket-a/home/alice"}]},
        {"ServerId": untagged,
         "Users": [{"UserName": "gus", "HomeDirectoryType": "PATH", "HomeDirectory": "/bucket-b/home/gus"}]}
    ]}))
    .await
    .expect("stand-in");
    let endpoint = standin.endpoint();
    let out = cli(
        &endpoint,
        &[
            "audit",
            "--server-tag",
            "transfer-chroot=enforce",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(code(&out), 3, "alice is drifted: {}", stderr(&out));
    let report: AuditReport = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(report.servers, [tagged], "only the tagged server");
    assert_eq!(report.counts.drifted, 1, "below the tag's root: {report:?}");
    // A named server without the tag is a usage error, before any read of its users.
    standin.clear_requests();
    let refused = cli(
        &endpoint,
        &[
            "audit",
            "--server-tag",
            "transfer-chroot=enforce",
            "--server",
            untagged,
        ],
    )
    .await;
    assert_eq!(code(&refused), 2, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("does not carry the tag"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(standin.calls("ListUsers"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_custom_identity_provider_comes_first_and_the_cli_exits_3() {
    use aws_sdk_transfer::types::IdentityProviderType;
    // A clean fleet (nothing drifted or needing a person): only the server can make
    // the exit 3.
    let standin = clean_fleet(0, 3).await;
    let endpoint = standin.endpoint();
    let clean = cli(
        &endpoint,
        &[&CLEAN_FLAGS[..], &["audit", "--server", SERVER]].concat(),
    )
    .await;
    assert_eq!(code(&clean), 0, "{}{}", stdout(&clean), stderr(&clean));
    sdk_client(&endpoint, 1)
        .update_server()
        .server_id(SERVER)
        .identity_provider_type(IdentityProviderType::AwsLambda)
        .send()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("transfer-chroot-cli-idp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    let args = [
        &CLEAN_FLAGS[..],
        &[
            "audit",
            "--server",
            SERVER,
            "--html",
            html.to_str().unwrap(),
        ],
    ]
    .concat();
    let table = cli(&endpoint, &args).await;
    assert_eq!(code(&table), 3, "{}{}", stdout(&table), stderr(&table));
    let text = stdout(&table);
    let server_at = text
        .find("AWS_LAMBDA")
        .expect("the server finding is shown");
    let counts_at = text.find("Chrooted").expect("the counts");
    assert!(server_at < counts_at, "server findings first: {text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("id=\"server-findings\""),
        "the report lists it"
    );
    assert!(
        page.find("server-findings").unwrap() < page.find("id=\"counts\"").unwrap(),
        "first in the report"
    );
    // The account the report is about (STS GetCallerIdentity).
    assert!(
        page.contains("<dt>Account</dt><dd>111122223333</dd>"),
        "the account"
    );
    let json = cli(
        &endpoint,
        &[
            &CLEAN_FLAGS[..],
            &["audit", "--server", SERVER, "--output", "json"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&json), 3);
    let report: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(
        report["ServerFindings"][0]["IdentityProviderType"],
        "AWS_LAMBDA"
    );
    let check = cli(
        &endpoint,
        &[&CLEAN_FLAGS[..], &["check", "chroot1", "--server", SERVER]].concat(),
    )
    .await;
    assert_eq!(code(&check), 3, "{}", stdout(&check));
    assert!(stdout(&check).contains("AWS_LAMBDA"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_an_access_back_with_access() {
    let t = spawn_app().await;
    let config = config_file();
    let conf = ["--config", config.to_str().unwrap()];
    let args: Vec<&str> = [
        &conf[..],
        &[
            "check",
            "--access",
            FINANCE_SID,
            "--server",
            DIRECTORY_SERVER,
        ],
    ]
    .concat();
    let out = cli(&t.standin.endpoint(), &args).await;
    assert!(
        matches!(code(&out), 0 | 3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains(FINANCE_SID), "{}", stdout(&out));
    // A user and an access at once, or neither: a usage error.
    let both: Vec<&str> = [
        &conf[..],
        &[
            "check",
            "alice",
            "--access",
            FINANCE_SID,
            "--server",
            SERVER,
        ],
    ]
    .concat();
    assert_eq!(code(&cli(&t.standin.endpoint(), &both).await), 2);
    let neither: Vec<&str> = [&conf[..], &["check", "--server", SERVER]].concat();
    assert_eq!(code(&cli(&t.standin.endpoint(), &neither).await), 2);
    // An access on a server that holds users: said so, before any read.
    let wrong: Vec<&str> = [
        &conf[..],
        &["check", "--access", FINANCE_SID, "--server", SERVER],
    ]
    .concat();
    let out = cli(&t.standin.endpoint(), &wrong).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("SERVICE_MANAGED"), "{}", stderr(&out));
}
