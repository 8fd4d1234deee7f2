//! The directory as the source of truth (`IDENTITY_STORE_ID`), through the real SDK
//! signing and moto's Identity Store on loopback, against the Transfer stand-in: every
//! trigger of `events/directory-*.json` through the real binary, events late and out
//! of order, a membership removed with no event (the audit's), hostile ids, and a
//! directory that is down or throttling.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transfer_chroot::Outcome;
use transfer_chroot::directory::Directory;
use transfer_chroot::directory::store::IdentityStore;
use transfer_chroot::domain::IdentityStoreId;
use transfer_chroot::signed::SignedClient;
use transfer_standin::StandIn;

use crate::common::directory::*;
use crate::common::function::Function;
use crate::common::moto::{moto_endpoint, moto_queue, receive_all};
use crate::common::*;

/// A store with alice in sftp-finance and bob in sftp-engineering (the demo's two
/// profiles); the ids to put in place of the samples'.
struct Seeded {
    directory: MotoDirectory,
    alice: String,
    bob: String,
    finance: String,
    engineering: String,
    alice_in_finance: String,
}

impl Seeded {
    async fn new() -> Self {
        let directory = MotoDirectory::new();
        let alice = directory.user("alice").await;
        let bob = directory.user("bob").await;
        let _ = directory.user("not-on-sftp").await;
        let finance = directory.group("sftp-finance").await;
        let engineering = directory.group("sftp-engineering").await;
        let _staff = directory.group("staff").await;
        let alice_in_finance = directory.add(&finance, &alice).await;
        directory.add(&engineering, &bob).await;
        Self {
            directory,
            alice,
            bob,
            finance,
            engineering,
            alice_in_finance,
        }
    }

    fn sample(&self, name: &str) -> Value {
        rewrite(
            &event(name),
            &[
                (SAMPLE_STORE, &self.directory.store),
                (SAMPLE_ALICE, &self.alice),
                (SAMPLE_BOB, &self.bob),
                (SAMPLE_FINANCE, &self.finance),
                (SAMPLE_PARTNERS, &self.engineering),
            ],
        )
    }

    fn overrides(&self) -> Vec<(&str, &str)> {
        vec![("IDENTITY_STORE_ID", self.directory.store.as_str())]
    }
}

/// The chroot target the stand-in holds for `user` on the demo's first server.
fn home_of(standin: &StandIn, user: &str) -> Option<String> {
    let u = standin.user(SERVER, user)?;
    u["HomeDirectoryMappings"][0]["Target"]
        .as_str()
        .map(str::to_owned)
}

async fn in_process(seeded: &Seeded) -> (TestApp, Arc<IdentityStore>) {
    let mut t = spawn_app_with(&seeded.overrides()).await;
    let port = seeded.directory.port(50.0);
    t.app.chroot.ports.directory = Some(port.clone());
    (t, port)
}

fn outcome(v: &Value) -> Outcome {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[tokio::test]
async fn every_trigger_follows_the_directory_through_the_real_binary() {
    let s = Seeded::new().await;
    let standin = StandIn::start(&seed()).await.unwrap();
    let endpoint = moto_endpoint();
    let f = Function::start(
        &standin,
        &[
            ("IDENTITY_STORE_ID", s.directory.store.as_str()),
            ("AWS_ENDPOINT_URL_IDENTITYSTORE", endpoint.as_str()),
        ],
    )
    .await;
    let run = |name: &'static str| {
        let e = s.sample(name);
        let f = &f;
        async move { f.invoke(&e).await }
    };
    let status = |r: &Value| r["Status"].as_str().unwrap_or_default().to_owned();

    // An Identity Store notification names alice: her profile now is finance.
    let r = run("directory-identitystore-user-updated.json").await;
    assert_eq!(status(&r), "Updated", "{r:#}");
    assert_eq!(r["Profile"], "sftp-finance");
    assert_eq!(r["Directory"]["UserName"], "alice");
    assert_eq!(
        home_of(&standin, "alice").as_deref(),
        Some("/acme-sftp/groups/finance/alice")
    );
    // The membership notification names her too: nothing left to change.
    let r = run("directory-identitystore-membership-created.json").await;
    assert_eq!(status(&r), "Unchanged", "{r:#}");
    // Okta's removal names bob by login; the directory says engineering.
    let r = run("directory-okta-membership-remove.json").await;
    assert_eq!(status(&r), "Updated", "{r:#}");
    assert_eq!(r["Profile"], "sftp-engineering");
    assert_eq!(
        home_of(&standin, "bob").as_deref(),
        Some("/acme-sftp/groups/engineering/bob")
    );

    // alice leaves finance with no event; a late CreateGroupMembership record of her
    // (from before) arrives: the directory now says Default.
    s.directory.remove(&s.alice_in_finance).await;
    let r = run("directory-cloudtrail-create-group-membership.json").await;
    assert_eq!(status(&r), "Updated", "{r:#}");
    assert_eq!(r["Profile"], "Default");
    assert_eq!(
        home_of(&standin, "alice").as_deref(),
        Some("/acme-sftp/home/alice")
    );

    // Back in finance; SCIM's PatchGroup names only the group: its members followed.
    s.directory.add(&s.finance, &s.alice).await;
    let r = run("directory-scim-patch-group.json").await;
    assert_eq!(status(&r), "Updated", "{r:#}");
    assert_eq!(r["Directory"]["Members"], 1);
    assert_eq!(
        home_of(&standin, "alice").as_deref(),
        Some("/acme-sftp/groups/finance/alice")
    );
    let r = run("directory-identitystore-group-updated.json").await;
    assert_eq!(status(&r), "Unchanged", "{r:#}");

    // DeleteGroupMembership names no one once it is done: left to the audit.
    let r = run("directory-cloudtrail-delete-group-membership.json").await;
    assert_eq!(status(&r), "Skipped", "{r:#}");
    assert!(r["Reason"].as_str().unwrap().contains("audit"), "{r:#}");

    // The legacy event's Groups say engineering: ignored, the directory says finance.
    let legacy = json!({"version": "0", "id": "1", "detail-type": "Directory Group Membership Changed",
        "source": "acme.directory-sync", "account": "111122223333", "time": "2026-12-07T10:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"UserName": "alice", "Groups": ["sftp-engineering"]}});
    let r = f.invoke(&legacy).await;
    assert_eq!(status(&r), "Unchanged", "{r:#}");
    assert_eq!(r["Profile"], "sftp-finance");
    let r = run("directory-okta-membership-add.json").await;
    assert_eq!(status(&r), "Unchanged", "{r:#}");
    assert_eq!(
        home_of(&standin, "alice").as_deref(),
        Some("/acme-sftp/groups/finance/alice")
    );
}

#[tokio::test]
async fn events_late_or_out_of_order_end_on_the_current_membership() {
    let s = Seeded::new().await;
    let (t, _) = in_process(&s).await;
    let joined_finance = s.sample("directory-cloudtrail-create-group-membership.json");
    let r = t.invoke(joined_finance.clone()).await;
    assert_eq!(r["Status"], "Updated", "{r:#}");
    // She moves to engineering; that event arrives, then the old one again (a retry
    // hours later, or EventBridge's order).
    s.directory.remove(&s.alice_in_finance).await;
    s.directory.add(&s.engineering, &s.alice).await;
    let mut joined_engineering = joined_finance.clone();
    joined_engineering["detail"]["requestParameters"]["groupId"] = s.engineering.clone().into();
    for e in [joined_engineering, joined_finance] {
        let r = t.invoke(e).await;
        assert_eq!(r["Profile"], "sftp-engineering", "{r:#}");
    }
    assert_eq!(
        home_of(&t.standin, "alice").as_deref(),
        Some("/acme-sftp/groups/engineering/alice")
    );
}

#[tokio::test]
async fn a_membership_removed_with_no_event_is_fixed_by_the_audit() {
    let s = Seeded::new().await;
    let (t, port) = in_process(&s).await;
    t.invoke(s.sample("directory-identitystore-user-updated.json"))
        .await;
    assert_eq!(
        home_of(&t.standin, "alice").as_deref(),
        Some("/acme-sftp/groups/finance/alice")
    );
    s.directory.remove(&s.alice_in_finance).await;
    let before = port.requests();
    let r = t
        .invoke(json!({"Action": "Audit", "ServerId": SERVER, "Fix": true}))
        .await;
    assert_eq!(r["Status"], "Audited", "{r:#}");
    let alice = r["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["UserName"] == "alice")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(alice["Profile"], "Default");
    assert_eq!(alice["Status"], "Updated");
    assert!(
        alice["Reason"]
            .as_str()
            .unwrap()
            .contains("expects /acme-sftp/home/alice"),
        "{alice}"
    );
    assert_eq!(
        home_of(&t.standin, "alice").as_deref(),
        Some("/acme-sftp/home/alice")
    );
    // The directory in bulk: the profiled groups' members, then the users (3 users: one
    // page each), with the groups' ids known already.
    assert!(
        port.requests() - before <= 4,
        "{} requests",
        port.requests() - before
    );
}

#[tokio::test]
async fn hostile_ids_are_refused_before_any_call() {
    let s = Seeded::new().await;
    let (t, port) = in_process(&s).await;
    t.standin.clear_requests();
    for (resources, detail) in [
        (
            json!(["arn:aws:identitystore:::user/../../group/x"]),
            json!({}),
        ),
        (
            json!([]),
            json!({"userId": "9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-00000000000/"}),
        ),
        (
            json!([]),
            json!({"memberId": {"userId": "x".repeat(100_000)}}),
        ),
        (json!(["arn:aws:identitystore:::group/*"]), json!({})),
    ] {
        let e = json!({"version": "0", "id": "1", "detail-type": "User Updated", "source": "aws.identitystore",
            "account": "111122223333", "time": "2026-12-07T10:00:00Z", "region": "us-east-1",
            "resources": resources, "detail": detail});
        // A refusal fails the invocation, with the result in its message.
        let text = t
            .invoke_with_budget(e, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(text.contains("ValidationFailed"), "{text}");
    }
    let okta = rewrite(
        &event("directory-okta-membership-add.json"),
        &[("\"alice\"", "\"alice smith\"")],
    );
    let text = t
        .invoke_with_budget(okta, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(text.contains("ValidationFailed"), "{text}");
    assert_eq!(port.requests(), 0, "no Identity Store call");
    assert_eq!(t.standin.request_count(), 0, "no Transfer call");
}

/// A stand-in for a directory that answers every request with `answer(target, n)`
/// (the `n`-th request, from 0): HTTP status and JSON body.
async fn fake_directory(
    answer: impl Fn(&str, usize) -> (u16, Value) + Send + Sync + 'static,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut read = 0;
                // Headers, then the body by Content-Length.
                loop {
                    let Ok(n) = socket.read(&mut buf[read..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    read += n;
                    let text = String::from_utf8_lossy(&buf[..read]).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if read >= end + 4 + length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buf[..read]).to_string();
                let target = text
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("x-amz-target:")
                            .map(|v| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (status, body) = answer(&target, n);
                let body = body.to_string();
                let kind = body_type(&body);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\n{kind}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn body_type(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v["__type"]
                .as_str()
                .map(|t| format!("x-amzn-errortype: {t}\r\n"))
        })
        .unwrap_or_default()
}

fn store_on(endpoint: &str) -> Arc<IdentityStore> {
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let client = SignedClient::new(
        "identitystore",
        endpoint.to_owned(),
        "us-east-1".to_owned(),
        Some(SharedCredentialsProvider::new(Credentials::new(
            "AKID", "s", None, None, "t",
        ))),
        None,
    );
    Arc::new(IdentityStore::new(
        client,
        IdentityStoreId::parse(SAMPLE_STORE).unwrap(),
        100.0,
    ))
}

fn throttled() -> (u16, Value) {
    (
        400,
        json!({"__type": "ThrottlingException", "Message": "Rate exceeded", "RetryAfterSeconds": 0}),
    )
}

#[tokio::test]
async fn a_directory_down_or_throttling_is_retried_then_fails_retryably_with_no_write() {
    let mut t = spawn_app_with(&[("IDENTITY_STORE_ID", SAMPLE_STORE)]).await;
    let e = event("directory-identitystore-user-updated.json");
    // Down: a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for endpoint in [
        format!("http://{closed}"),
        fake_directory(|_, _| throttled()).await,
    ] {
        let port = store_on(&endpoint);
        t.app.chroot.ports.directory = Some(port.clone());
        t.standin.clear_requests();
        let text = t
            .invoke_with_budget(e.clone(), Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(
            text.contains("\"Retryable\":true") && text.contains("nothing was written"),
            "{text}"
        );
        assert_eq!(port.requests(), 4, "{endpoint}: retried, 4 attempts in all");
        assert_eq!(t.standin.request_count(), 0, "no Transfer call at all");
    }
    // Throttled twice, then answered: the trigger goes through.
    let alice = SAMPLE_ALICE.to_owned();
    let finance = SAMPLE_FINANCE.to_owned();
    let endpoint = fake_directory(move |target, n| match (target, n) {
        (_, 0 | 1) => throttled(),
        ("awsidentitystore.describeuser", _) => {
            (200, json!({"UserId": alice, "UserName": "alice"}))
        }
        ("awsidentitystore.getgroupid", _) => (200, json!({"GroupId": finance})),
        ("awsidentitystore.ismemberingroups", _) => (
            200,
            json!({"Results": [{"GroupId": finance, "MembershipExists": true}]}),
        ),
        _ => (
            400,
            json!({"__type": "ResourceNotFoundException", "Message": "no"}),
        ),
    })
    .await;
    let port = store_on(&endpoint);
    t.app.chroot.ports.directory = Some(port.clone());
    let r = t.invoke(e).await;
    assert_eq!(r["Status"], "Updated", "{r:#}");
    assert_eq!(r["Profile"], "sftp-finance");
}

#[tokio::test]
async fn a_group_queues_one_command_per_member_naming_only_the_user() {
    let s = Seeded::new().await;
    let bob_in_finance = s.directory.add(&s.finance, &s.bob).await;
    let (mut t, _) = in_process(&s).await;
    let (sqs, url) = moto_queue(&format!("directory-{}", s.directory.store)).await;
    t.app.chroot.ports.queue = Some(Arc::new(transfer_chroot::queue::sqs::SdkQueue::new(
        sqs.clone(),
        url.clone(),
    )));
    let r = t.invoke(s.sample("directory-scim-patch-group.json")).await;
    assert_eq!(r["Status"], "Queued", "{r:#}");
    assert_eq!(r["Directory"]["Queued"], 2);
    assert_eq!(t.writes(), 0, "applied when consumed");
    let mut bodies: Vec<Value> = receive_all(&sqs, &url)
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    bodies.sort_by_key(|b| b["UserId"].as_str().unwrap().to_owned());
    let mut want = vec![
        json!({"Action": "ReconcileDirectoryUser", "UserId": s.alice}),
        json!({"Action": "ReconcileDirectoryUser", "UserId": s.bob}),
    ];
    want.sort_by_key(|b| b["UserId"].as_str().unwrap().to_owned());
    assert_eq!(bodies, want);
    // bob leaves finance before his command is consumed: engineering, as it is then.
    s.directory.remove(&bob_in_finance).await;
    for body in bodies {
        let o = outcome(&t.invoke(body).await);
        assert!(
            matches!(o.status, transfer_chroot::Status::Updated),
            "{o:?}"
        );
    }
    assert_eq!(
        home_of(&t.standin, "bob").as_deref(),
        Some("/acme-sftp/groups/engineering/bob")
    );
    assert_eq!(
        home_of(&t.standin, "alice").as_deref(),
        Some("/acme-sftp/groups/finance/alice")
    );
}

#[tokio::test]
async fn a_store_that_is_not_there_is_an_error_not_an_empty_directory() {
    let mut t = spawn_app_with(&[("IDENTITY_STORE_ID", SAMPLE_STORE)]).await;
    let endpoint = fake_directory(|_, _| {
        (
            400,
            json!({"__type": "ResourceNotFoundException", "ResourceType": "IDENTITY_STORE",
                   "Message": "IDENTITY_STORE not found."}),
        )
    })
    .await;
    t.app.chroot.ports.directory = Some(store_on(&endpoint));
    let text = t
        .invoke_with_budget(
            event("directory-identitystore-user-updated.json"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert!(text.contains("IDENTITY_STORE"), "{text}");
    assert!(text.contains("\"Retryable\":false"), "{text}");
    assert_eq!(t.standin.request_count(), 0, "no Transfer call");
}
