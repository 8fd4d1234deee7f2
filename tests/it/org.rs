//! Every account and region of an organization: servers found by tag (`SERVER_TAG`,
//! refreshed), home roots from the server's own `transfer-chroot:home-roots` tag, and
//! findings in Security Hub (moto's, on loopback), the lifecycle of each finding, and
//! three accounts as three function environments sharing one Security Hub.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::{Value, json};
use transfer_chroot::audit::AuditReport;
use transfer_chroot::findings::hub::SdkHub;
use transfer_chroot::findings::{Account, Asff, GENERATOR_ID, Hub, SecurityHub};
use transfer_chroot::outcome::ErrorCode;
use transfer_chroot::transfer::sdk::SdkTransfer;
use transfer_chroot::{App, Invocation, Outcome, Status};
use transfer_standin::StandIn;

use crate::common::*;

const TAGGED: &str = "s-0a0000000000000a1";
const UNTAGGED: &str = "s-0b0000000000000b2";
const NO_ROOTS: &str = "s-0c0000000000000c3";
const ROLE: &str = "arn:aws:iam::111122223333:role/sftp-user";

/// The stand-in's ARN of `server` (its account and region are fixed).
fn server_arn(server: &str) -> String {
    format!("arn:aws:transfer:us-east-1:111122223333:server/{server}")
}

fn user(name: &str, kind: &str, home: &str) -> Value {
    match kind {
        "LOGICAL" => json!({"UserName": name, "Role": ROLE, "HomeDirectoryType": "LOGICAL",
            "HomeDirectoryMappings": [{"Entry": "/", "Target": home}]}),
        _ => {
            json!({"UserName": name, "Role": ROLE, "HomeDirectoryType": "PATH", "HomeDirectory": home})
        }
    }
}

/// Three servers: one tagged with its own roots, one untagged, one tagged without roots.
fn tagged_fleet() -> Value {
    json!({"Servers": [
        {"ServerId": TAGGED,
         "Tags": [{"Key": "transfer-chroot", "Value": "enforce"},
                  {"Key": "transfer-chroot:home-roots", "Value": "/bucket-a/home /bucket-a/partners"}],
         "Users": [user("alice", "PATH", "/bucket-a/home/alice"),
                   user("bob", "LOGICAL", "/bucket-a/home/bob"),
                   user("carol", "PATH", "/elsewhere/carol"),
                   user("erin", "PATH", "/bucket-a/partners/erin"),
                   user("frank", "PATH", "/bucket-a/home/frank")]},
        {"ServerId": UNTAGGED,
         "Users": [user("gus", "PATH", "/bucket-b/home/gus")]},
        {"ServerId": NO_ROOTS,
         "Tags": [{"Key": "transfer-chroot", "Value": "enforce"}],
         "Users": [user("dave", "PATH", "/bucket-c/home/dave")]}
    ]})
}

/// The function's configuration for an organization: the tag, no list, no roots.
const ORG: &[(&str, &str)] = &[
    ("SERVER_TAG", "transfer-chroot=enforce"),
    ("SERVER_TAG_REFRESH_SECONDS", "1"),
    ("ALLOWED_SERVER_IDS", ""),
    ("HOME_ROOTS", ""),
    ("HOME_TEMPLATE", ""),
    ("DEFAULT_SERVER_ID", ""),
    ("GROUP_PROFILES", ""),
];

struct Org {
    standin: StandIn,
    app: App<SdkTransfer>,
    invocation_arn: String,
}

impl Org {
    async fn start(seed: &Value, extra: &[(&str, &str)], account: &str) -> Self {
        let standin = StandIn::start(seed).await.expect("stand-in");
        let transfer = SdkTransfer::new(sdk_client(&standin.endpoint(), 3));
        let mut vars = ORG.to_vec();
        vars.extend_from_slice(extra);
        let app = app(config_for(&standin, &vars), transfer);
        Self {
            standin,
            app,
            invocation_arn: format!("arn:aws:lambda:us-east-1:{account}:function:transfer-chroot"),
        }
    }

    fn with_hub(mut self, hub: Arc<dyn SecurityHub>) -> Self {
        self.app = self.app.with_hub(Arc::new(Hub::new(hub)));
        self
    }

    async fn invoke(&self, event: Value) -> Value {
        let invocation =
            Invocation::with_budget(Duration::from_secs(30)).invoked_by(&self.invocation_arn);
        self.app
            .dispatch(event, &invocation)
            .await
            .expect("handler answers")
    }

    async fn outcome(&self, event: Value) -> Outcome {
        serde_json::from_value(self.invoke(event).await).expect("an Outcome")
    }

    async fn audit(&self, extra: Value) -> AuditReport {
        let mut event = json!({"Action": "Audit"});
        if let (Some(e), Some(x)) = (event.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        serde_json::from_value(self.invoke(event).await).expect("an audit report")
    }

    fn calls_of(&self, operations: &[&str]) -> usize {
        operations.iter().map(|op| self.standin.calls(op)).sum()
    }
}

fn chroot_alice(server: &str, home: &str) -> Value {
    json!({"Action": "UpdateUser", "ServerId": server, "UserName": "alice", "HomeDirectory": home})
}

#[tokio::test]
async fn tagged_servers_are_enforced_with_their_own_roots_and_a_new_tag_is_picked_up() {
    let org = Org::start(&tagged_fleet(), &[], "111122223333").await;

    // The tagged server, with its tag's roots.
    let ok = org
        .outcome(chroot_alice(TAGGED, "/bucket-a/home/alice"))
        .await;
    assert_eq!(ok.status, Status::Updated, "{ok:?}");
    let outside = org
        .outcome(chroot_alice(TAGGED, "/acme-sftp/home/alice"))
        .await;
    assert_eq!(
        outside.error_code(),
        Some(ErrorCode::NotAllowed),
        "{outside:?}"
    );
    assert_eq!(
        outside.error.as_ref().unwrap().fields[0].field,
        "HomeDirectory"
    );

    // The untagged one: refused, with no call beyond the lookup.
    org.standin.clear_requests();
    let refused = org
        .outcome(chroot_alice(UNTAGGED, "/bucket-b/home/alice"))
        .await;
    assert_eq!(
        refused.error_code(),
        Some(ErrorCode::NotAllowed),
        "{refused:?}"
    );
    let why = &refused.error.as_ref().unwrap().fields[0];
    assert_eq!(why.field, "ServerId");
    assert!(
        why.message.contains("transfer-chroot=enforce"),
        "{}",
        why.message
    );
    assert_eq!(org.calls_of(&["DescribeUser", "UpdateUser"]), 0);

    // Bad input: refused before any call, the lookup included.
    org.standin.clear_requests();
    let bad = org
        .outcome(json!({"Action": "UpdateUser", "ServerId": TAGGED, "UserName": "a/b", "HomeDirectory": "/bucket-a/home/x"}))
        .await;
    assert_eq!(
        bad.error_code(),
        Some(ErrorCode::ValidationFailed),
        "{bad:?}"
    );
    assert!(
        org.standin.requests().is_empty(),
        "{:?}",
        org.standin.requests()
    );

    // The audit covers exactly the tagged servers; no roots there is NeedsAttention.
    let report = org.audit(json!({})).await;
    assert_eq!(report.servers, [TAGGED, NO_ROOTS]);
    assert!(report.continuation.is_none());
    let dave = report
        .findings
        .iter()
        .find(|f| f.user_name.as_deref() == Some("dave"))
        .expect("dave reported");
    assert_eq!(dave.class, "NeedsAttention");
    assert!(
        dave.reason
            .as_deref()
            .unwrap()
            .starts_with("no home roots for this server"),
        "{dave:?}"
    );
    assert!(report.findings.iter().all(|f| f.server_id != UNTAGGED));
    // Derived from the first root: frank's PATH home is below it.
    assert_eq!(
        report.counts.drifted, 2,
        "erin and frank: {:?}",
        report.findings
    );
    assert_eq!(
        report.counts.needs_attention, 2,
        "carol (outside the roots) and dave"
    );

    // Tagged later: enforced after the refresh, with its own roots, no redeploy.
    let client = sdk_client(&org.standin.endpoint(), 3);
    client
        .tag_resource()
        .arn(server_arn(UNTAGGED))
        .tags(
            aws_sdk_transfer::types::Tag::builder()
                .key("transfer-chroot")
                .value("enforce")
                .build()
                .unwrap(),
        )
        .tags(
            aws_sdk_transfer::types::Tag::builder()
                .key("transfer-chroot:home-roots")
                .value("/bucket-b/home")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("tagged");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = org
        .outcome(json!({"Action": "UpdateUser", "ServerId": UNTAGGED, "UserName": "gus", "HomeDirectory": "/bucket-b/home/gus"}))
        .await;
    assert_eq!(later.status, Status::Updated, "{later:?}");
    let report = org.audit(json!({})).await;
    assert_eq!(report.servers, [TAGGED, UNTAGGED, NO_ROOTS]);
}

/// Security Hub on moto (started by scripts/test.sh).
fn moto_hub() -> Arc<SdkHub> {
    let endpoint = std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT: run the suite with scripts/test.sh, which starts moto");
    let credentials =
        SharedCredentialsProvider::new(Credentials::new("AKIDMOTO", "moto", None, None, "tests"));
    Arc::new(SdkHub::new(
        endpoint,
        "us-east-1".into(),
        Some(credentials),
        None,
    ))
}

/// This generator's findings of `account` in moto's Security Hub (moto ignores
/// filters: they are applied here).
async fn findings_of(hub: &SdkHub, account: &str) -> Vec<Asff> {
    let acct =
        Account::from_function_arn(&format!("arn:aws:lambda:us-east-1:{account}:function:f"))
            .unwrap();
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = hub
            .active(&acct, "9999-01-01T00:00:00Z", token.as_deref())
            .await
            .expect("GetFindings");
        all.extend(
            page.findings
                .into_iter()
                .filter(|f| f.aws_account_id == account && f.generator_id == GENERATOR_ID),
        );
        match page.next_token {
            Some(t) => token = Some(t),
            None => return all,
        }
    }
}

fn by_user<'a>(findings: &'a [Asff], name: &str) -> Vec<&'a Asff> {
    findings
        .iter()
        .filter(|f| {
            f.resources[0]
                .details
                .other
                .get("UserName")
                .map(String::as_str)
                == Some(name)
        })
        .collect()
}

/// The ASFF fields every finding must carry, checked on the JSON moto stored.
fn assert_valid_asff(f: &Asff, account: &str) {
    let v = serde_json::to_value(f).unwrap();
    assert_eq!(v["SchemaVersion"], "2018-10-08");
    assert_eq!(
        v["ProductArn"],
        format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default")
    );
    assert_eq!(v["GeneratorId"], GENERATOR_ID);
    assert_eq!(v["AwsAccountId"], account);
    assert_eq!(
        v["Types"],
        json!(["Software and Configuration Checks/AWS Security Best Practices"])
    );
    for at in ["CreatedAt", "UpdatedAt"] {
        assert!(
            transfer_chroot::findings::instant(v[at].as_str().unwrap()).is_some(),
            "{at}: {v}"
        );
    }
    assert!(
        ["MEDIUM", "HIGH", "INFORMATIONAL"].contains(&v["Severity"]["Label"].as_str().unwrap()),
        "{v}"
    );
    assert!(
        !v["Title"].as_str().unwrap().is_empty() && !v["Description"].as_str().unwrap().is_empty()
    );
    let r = &v["Resources"][0];
    assert_eq!(r["Type"], "Other");
    assert_eq!(
        (r["Region"].as_str(), r["Partition"].as_str()),
        (Some("us-east-1"), Some("aws"))
    );
    let name = r["Details"]["Other"]["UserName"].as_str().unwrap();
    let server = r["Details"]["Other"]["ServerId"].as_str().unwrap();
    assert_eq!(
        r["Id"],
        format!("arn:aws:transfer:us-east-1:{account}:user/{server}/{name}")
    );
    assert!(
        v["Id"].as_str().unwrap().contains(account)
            && v["Id"].as_str().unwrap().contains("us-east-1")
    );
}

fn state(f: &Asff) -> (&str, &str) {
    (f.compliance.status.as_str(), f.record_state.as_str())
}

#[tokio::test]
async fn an_audit_reports_each_non_chrooted_target_once_and_resolves_what_is_chrooted() {
    const ACCOUNT: &str = "210000000001";
    let hub = moto_hub();
    let org = Org::start(&tagged_fleet(), &[("SECURITY_HUB", "true")], ACCOUNT)
        .await
        .with_hub(hub.clone());

    // One read-only audit: one ACTIVE FAILED finding per non-chrooted target.
    let first = org.audit(json!({})).await;
    assert_eq!(first.security_hub.unwrap().failed, 0, "{first:?}");
    let found = findings_of(&hub, ACCOUNT).await;
    let names = ["alice", "carol", "erin", "frank", "dave"];
    assert_eq!(found.len(), names.len(), "{found:#?}");
    for name in names {
        let mine = by_user(&found, name);
        assert_eq!(mine.len(), 1, "{name}: {mine:?}");
        assert_eq!(state(mine[0]), ("FAILED", "ACTIVE"), "{name}");
        assert_valid_asff(mine[0], ACCOUNT);
    }
    assert!(by_user(&found, "bob").is_empty(), "bob is chrooted");
    assert_eq!(
        by_user(&found, "alice")[0].severity.label,
        "MEDIUM",
        "drifted"
    );
    assert_eq!(
        by_user(&found, "carol")[0].severity.label,
        "HIGH",
        "needs attention"
    );

    // An API call chroots frank: his finding is resolved at once.
    let frank = org
        .outcome(json!({"Action": "UpdateUser", "ServerId": TAGGED, "UserName": "frank", "HomeDirectory": "/bucket-a/home/frank"}))
        .await;
    assert_eq!(frank.status, Status::Updated, "{frank:?}");
    assert_eq!(
        state(by_user(&findings_of(&hub, ACCOUNT).await, "frank")[0]),
        ("PASSED", "ARCHIVED")
    );

    // Someone chroots erin outside the function; then an audit with Fix.
    let client = sdk_client(&org.standin.endpoint(), 3);
    client
        .update_user()
        .server_id(TAGGED)
        .user_name("erin")
        .home_directory_type(aws_sdk_transfer::types::HomeDirectoryType::Logical)
        .home_directory_mappings(
            aws_sdk_transfer::types::HomeDirectoryMapEntry::builder()
                .entry("/")
                .target("/bucket-a/partners/erin")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("outside change");
    let second = org.audit(json!({"Fix": true})).await;
    assert!(second.continuation.is_none(), "{second:?}");
    assert_eq!(second.counts.fixed, 1, "alice: {second:?}");
    let hub_counts = second.security_hub.unwrap();
    assert_eq!(hub_counts.failed, 0, "{hub_counts:?}");
    assert_eq!(hub_counts.archived, 1, "erin, by the sweep: {hub_counts:?}");

    let after = findings_of(&hub, ACCOUNT).await;
    assert_eq!(
        after.len(),
        names.len(),
        "the same findings, updated: {after:#?}"
    );
    for (name, expected) in [
        ("alice", ("PASSED", "ARCHIVED")), // fixed by the audit
        ("erin", ("PASSED", "ARCHIVED")),  // chrooted meanwhile: swept
        ("frank", ("PASSED", "ARCHIVED")), // by the API call
        ("carol", ("FAILED", "ACTIVE")),   // still needs attention
        ("dave", ("FAILED", "ACTIVE")),    // no roots on its server
    ] {
        let mine = by_user(&after, name);
        assert_eq!(mine.len(), 1, "{name}");
        assert_eq!(state(mine[0]), expected, "{name}: {:?}", mine[0]);
        assert_valid_asff(mine[0], ACCOUNT);
    }
}

#[tokio::test]
async fn three_accounts_share_one_security_hub_and_each_keeps_to_its_own() {
    let hub = moto_hub();
    let accounts = ["310000000001", "310000000002", "310000000003"];
    let mut orgs = Vec::new();
    for account in accounts {
        // Each account its own fleet (the same server ids: ARNs tell them apart).
        let org = Org::start(&tagged_fleet(), &[("SECURITY_HUB", "true")], account)
            .await
            .with_hub(hub.clone());
        org.audit(json!({})).await;
        orgs.push(org);
    }
    for account in accounts {
        let found = findings_of(&hub, account).await;
        assert_eq!(found.len(), 5, "{account}");
        for f in &found {
            assert_valid_asff(f, account);
            assert_eq!(state(f), ("FAILED", "ACTIVE"));
        }
    }
    // A fix in the second account archives its own finding only.
    let fixed = orgs[1]
        .outcome(chroot_alice(TAGGED, "/bucket-a/home/alice"))
        .await;
    assert_eq!(fixed.status, Status::Updated, "{fixed:?}");
    // And a completed audit there sweeps nothing of the others'.
    orgs[1].audit(json!({})).await;
    for (i, account) in accounts.iter().enumerate() {
        let alice = findings_of(&hub, account).await;
        let alice = by_user(&alice, "alice");
        let expected = if i == 1 {
            ("PASSED", "ARCHIVED")
        } else {
            ("FAILED", "ACTIVE")
        };
        assert_eq!(state(alice[0]), expected, "{account}");
        assert_eq!(
            findings_of(&hub, account)
                .await
                .iter()
                .filter(|f| f.record_state == "ACTIVE")
                .count(),
            if i == 1 { 4 } else { 5 },
            "{account}"
        );
    }
}

/// A Security Hub that throttles the first `throttled` requests (429,
/// `TooManyRequestsException`), then accepts: how many requests it saw.
async fn throttling_hub(throttled: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 65536];
            let _ = socket.read(&mut buf).await;
            let (status, body) = if n < throttled {
                (
                    "429 Too Many Requests",
                    r#"{"Message":"slow down"}"#.to_owned(),
                )
            } else {
                (
                    "200 OK",
                    r#"{"FailedCount":0,"SuccessCount":1,"FailedFindings":[]}"#.to_owned(),
                )
            };
            let kind = if n < throttled {
                "x-amzn-ErrorType: TooManyRequestsException\r\n"
            } else {
                ""
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{kind}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn security_hub_throttling_is_retried_and_a_lasting_one_is_counted_not_raised() {
    let credentials =
        SharedCredentialsProvider::new(Credentials::new("AKID", "s", None, None, "tests"));
    let alice: transfer_chroot::domain::Target = format!("{TAGGED}/users/alice").parse().unwrap();
    let account =
        Account::from_function_arn("arn:aws:lambda:us-east-1:210000000009:function:f").unwrap();
    let finding = account.finding(
        &transfer_chroot::findings::Observed {
            target: &alice,
            verdict: transfer_chroot::findings::Verdict::Drifted,
            reason: "r",
            home_type: "PATH",
        },
        "2026-12-07T10:00:00Z",
    );
    // Throttled twice, then accepted: one import, three requests.
    let (endpoint, seen) = throttling_hub(2).await;
    let hub = SdkHub::new(
        endpoint,
        "us-east-1".into(),
        Some(credentials.clone()),
        None,
    );
    let done = hub
        .import(std::slice::from_ref(&finding))
        .await
        .expect("retried");
    assert_eq!(done.success, 1);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
    // Throttled past the retries: counted as failed by the Hub, never an error.
    let (endpoint, seen) = throttling_hub(usize::MAX).await;
    let hub = Hub::new(Arc::new(SdkHub::new(
        endpoint,
        "us-east-1".into(),
        Some(credentials),
        None,
    )));
    let counts = hub.send(&[finding]).await;
    assert_eq!((counts.imported, counts.failed), (0, 1));
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        transfer_chroot::findings::hub::ATTEMPTS as usize
    );
}

#[tokio::test]
async fn a_security_hub_that_never_answers_neither_fails_nor_holds_up_a_fix() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let credentials =
        SharedCredentialsProvider::new(Credentials::new("AKID", "s", None, None, "tests"));
    let hub = Arc::new(SdkHub::new(
        endpoint,
        "us-east-1".into(),
        Some(credentials),
        None,
    ));
    let org = Org::start(&tagged_fleet(), &[("SECURITY_HUB", "true")], "210000000010")
        .await
        .with_hub(hub);
    let began = std::time::Instant::now();
    let fixed = org
        .outcome(chroot_alice(TAGGED, "/bucket-a/home/alice"))
        .await;
    assert_eq!(fixed.status, Status::Updated, "{fixed:?}");
    let took = began.elapsed();
    assert!(
        took < transfer_chroot::apply::RESOLVE_TIME + Duration::from_millis(1500),
        "the resolution is bounded (a call alone may take 3 s): {took:?}"
    );
    assert_eq!(org.standin.calls("UpdateUser"), 1, "written once");
}
