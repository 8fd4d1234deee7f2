//! `REPORT_BUCKET`: a scheduled audit's report in S3 (moto's, on loopback). Each
//! invocation of a run keeps its part; the one that completes the run writes the whole
//! run's `report.html` and `findings.csv`, whatever number of invocations it took.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use transfer_chroot::audit::{AuditReport, Counts};
use transfer_chroot::reports::s3::SdkReports;

use crate::common::moto::{moto_endpoint, s3_client};
use crate::common::*;

async fn text(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> (String, Option<String>) {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e:?}"));
    let kind = out.content_type().map(str::to_owned);
    let body = out.body.collect().await.expect("body").into_bytes();
    (String::from_utf8_lossy(&body).into_owned(), kind)
}

async fn audit(t: &TestApp, event: Value, budget: Duration) -> AuditReport {
    let reply = t.invoke_with_budget(event, budget).await.expect("answers");
    serde_json::from_value(reply.clone()).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

#[tokio::test]
async fn a_run_of_several_invocations_writes_one_report_of_the_whole_run() {
    let bucket = "transfer-chroot-reports-it";
    let s3 = s3_client(&moto_endpoint());
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let mut t = spawn_app_with(&[("REPORT_BUCKET", bucket)]).await;
    t.app = t
        .app
        .with_reports(Arc::new(SdkReports::new(s3.clone(), bucket.to_owned())));
    generate_users(
        &t.standin,
        SERVER,
        "chroot",
        120,
        "LOGICAL",
        "/acme-sftp/home/${UserName}",
    );
    generate_users(
        &t.standin,
        SERVER,
        "drift",
        30,
        "PATH",
        "/acme-sftp/home/${UserName}",
    );
    // 50 ms a call, 8 at a time: the 121 describes take about 0.8 s, and each
    // invocation has 0.5 s for its part (3 s, less the answer's and the report's time).
    t.standin.set_latency(Duration::from_millis(50));
    let mut event = json!({"Action": "Audit"});
    let mut sum = Counts::default();
    let mut parts = 0;
    let last = loop {
        let r = audit(&t, event.clone(), Duration::from_secs(3)).await;
        assert_eq!(r.status, "Audited", "{r:#?}");
        sum.add(&r.counts);
        parts += 1;
        assert!(parts < 50, "the run ends");
        match r.continuation.clone() {
            Some(next) => {
                assert!(r.report.is_none(), "no report before the run completes");
                event = next;
            }
            None => break r,
        }
    };
    assert!(parts > 1, "the run took several invocations");
    let prefix = format!("transfer-chroot/audits/{}/", last.run_id);
    assert_eq!(
        last.report.as_deref(),
        Some(format!("s3://{bucket}/{prefix}report.html").as_str())
    );

    let (csv, kind) = text(&s3, bucket, &format!("{prefix}findings.csv")).await;
    assert_eq!(kind.as_deref(), Some("text/csv; charset=utf-8"));
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let non_chrooted = sum.drifted + sum.needs_attention + sum.exempt;
    assert_eq!(
        rows.len() as u64,
        non_chrooted,
        "every finding of every part: {csv}"
    );
    for n in 1..=30 {
        assert!(
            rows.iter().any(|r| r.contains(&format!(",drift{n:02},"))),
            "drift{n:02}: {csv}"
        );
    }
    let (html, kind) = text(&s3, bucket, &format!("{prefix}report.html")).await;
    assert_eq!(kind.as_deref(), Some("text/html; charset=utf-8"));
    assert!(
        html.contains("<svg") && html.contains("drift17"),
        "the chart and the findings"
    );
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "self-contained"
    );
    // The report's totals are the run's, added up from every part.
    let all = format!(
        "<tr><td>All servers</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        sum.chrooted, sum.drifted, sum.needs_attention, sum.exempt
    );
    assert!(html.contains(&all), "{all} not in the report");
    assert!(
        html.contains(&format!("Findings ({non_chrooted})")),
        "every finding listed"
    );
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("{prefix}parts/"))
        .send()
        .await
        .expect("list");
    assert_eq!(listed.contents().len(), parts, "one part per invocation");
}
