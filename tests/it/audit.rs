//! The fleet audit through the real SDK against the stand-in: pages of 1000 (the
//! service's largest), only LOGICAL targets described, `Fix` writing exactly the
//! drifted ones, a second audit writing nothing, `DryRun`, and a deadline mid-fleet
//! answered with a continuation that completes the run exactly.

use std::time::Duration;

use serde_json::{Value, json};
use transfer_chroot::audit::{AuditReport, Counts};
use transfer_standin::GenerateUsers;

use crate::common::*;

/// The demo fleet plus 2,400 generated users on the first server: 1,500 PATH users
/// with a home below the root (drifted), 900 chrooted LOGICAL ones.
async fn big_fleet(overrides: &[(&str, &str)]) -> TestApp {
    let t = spawn_app_with(overrides).await;
    for (prefix, count, kind, home) in [
        ("path", 1500, "PATH", "/acme-sftp/home/${UserName}"),
        ("logical", 900, "LOGICAL", "/acme-sftp/home/${UserName}"),
    ] {
        t.standin
            .generate_users(
                SERVER,
                &GenerateUsers {
                    count,
                    prefix: prefix.to_owned(),
                    start: 1,
                    home_directory_type: kind.to_owned(),
                    home_directory: home.to_owned(),
                    role: "arn:aws:iam::111122223333:role/sftp-user".to_owned(),
                },
            )
            .expect("generated");
    }
    t.standin.clear_requests();
    t
}

async fn audit(t: &TestApp, event: Value, budget: Duration) -> AuditReport {
    let reply = t.invoke_with_budget(event, budget).await.expect("answers");
    serde_json::from_value(reply.clone()).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

fn describes(t: &TestApp) -> usize {
    t.standin.calls("DescribeUser") + t.standin.calls("DescribeAccess")
}

/// The demo seed's own classes (see demo/seed.json): on the users server alice and
/// dave are drifted (PATH homes below a root), bob chrooted, carol needs attention
/// (`/acme-sftp`, a bucket root); the directory server's two accesses are drifted; the
/// EFS server's erin needs attention (her home is below no configured root).
const DEMO: Counts = Counts {
    chrooted: 1,
    drifted: 4,
    needs_attention: 2,
    exempt: 0,
    fixed: 0,
    queued: 0,
    failed: 0,
};

#[tokio::test]
async fn the_whole_fleet_is_counted_exactly_across_pages_and_only_logical_targets_are_described() {
    let t = big_fleet(&[]).await;
    let r = audit(&t, json!({"Action": "Audit"}), Duration::from_secs(60)).await;
    assert_eq!(r.status, "Audited");
    assert!(r.continuation.is_none(), "done in one invocation");
    assert_eq!(r.counts.chrooted, DEMO.chrooted + 900);
    assert_eq!(r.counts.drifted, DEMO.drifted + 1500);
    assert_eq!(r.counts.needs_attention, DEMO.needs_attention);
    // 2,404 users: three pages; the directory server's accesses: one page.
    assert_eq!(
        t.standin.calls("ListUsers"),
        3 + 1 + 1,
        "three pages here, one on the empty s-00000000000000000, one on the EFS server"
    );
    assert_eq!(t.standin.calls("ListAccesses"), 1);
    assert_eq!(describes(&t), 900 + 1, "only the LOGICAL users (and bob)");
    assert_eq!(t.writes(), 0);
    assert!(r.truncated, "more findings than the result lists");
    assert_eq!(r.findings.len(), transfer_chroot::audit::MAX_FINDINGS);
}

#[tokio::test]
async fn fix_writes_exactly_the_drifted_then_a_second_audit_writes_nothing() {
    let t = spawn_app().await;
    let r = audit(
        &t,
        json!({"Action": "Audit", "Fix": true}),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(r.counts.fixed, DEMO.drifted, "{r:#?}");
    assert_eq!(t.writes(), DEMO.drifted as usize);
    for user in ["alice", "dave@example.com"] {
        let live = t.standin.user(SERVER, user).unwrap();
        assert_eq!(live["HomeDirectoryType"], "LOGICAL", "{user}");
    }
    let carol = t.standin.user(SERVER, "carol").unwrap();
    assert_eq!(
        carol["HomeDirectoryType"], "PATH",
        "needs attention: never written"
    );

    t.standin.clear_requests();
    let again = audit(
        &t,
        json!({"Action": "Audit", "Fix": true}),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(again.counts.drifted, 0);
    assert_eq!(again.counts.chrooted, DEMO.chrooted + DEMO.drifted);
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let t = spawn_app().await;
    let r = audit(
        &t,
        json!({"Action": "Audit", "Fix": true, "DryRun": true}),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(r.counts.drifted, DEMO.drifted);
    assert_eq!(r.counts.fixed, 0);
    assert_eq!(t.writes(), 0);
}

#[tokio::test]
async fn a_deadline_mid_fleet_yields_continuations_that_complete_the_run_exactly() {
    let t = big_fleet(&[]).await;
    let whole = audit(&t, json!({"Action": "Audit"}), Duration::from_secs(60))
        .await
        .counts;
    // Each invocation gets about 0.3 s of auditing: the answer reserve and the
    // per-item reserve leave that much of 2.8 s.
    let mut event = json!({"Action": "Audit"});
    let mut sum = Counts::default();
    let mut invocations = 0;
    let mut run_ids = std::collections::BTreeSet::new();
    loop {
        let r = audit(&t, event.clone(), Duration::from_millis(2_800)).await;
        sum.chrooted += r.counts.chrooted;
        sum.drifted += r.counts.drifted;
        sum.needs_attention += r.counts.needs_attention;
        sum.exempt += r.counts.exempt;
        run_ids.insert(r.run_id.clone());
        invocations += 1;
        assert!(invocations < 500, "the run ends");
        match r.continuation {
            Some(next) => event = next,
            None => break,
        }
    }
    assert!(
        invocations > 1,
        "the fleet did not fit one short invocation"
    );
    assert_eq!(sum, whole, "nothing counted twice or skipped");
    assert_eq!(run_ids.len(), 1, "one run");
}

#[tokio::test]
async fn bad_audits_are_refused_with_every_field_and_no_call() {
    let t = spawn_app().await;
    let reply = t
        .invoke(json!({"Action": "Audit", "ServerId": "s-11111111111111111", "Fix": "no"}))
        .await;
    assert_eq!(reply["Status"], "Failed", "{reply}");
    assert_eq!(reply["Error"]["Code"], "ValidationFailed");
    assert_eq!(reply["Error"]["Fields"][0]["Field"], "Fix");
    let reply = t
        .invoke(json!({"Action": "Audit", "Continuation": "bm90IGEgY3Vyc29y.0000"}))
        .await;
    assert_eq!(
        reply["Error"]["Fields"][0]["Field"], "Continuation",
        "{reply}"
    );
    assert!(t.standin.requests().is_empty());
}
