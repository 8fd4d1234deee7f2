//! Directory triggers against the in-memory directory and Transfer: every sample of
//! `events/directory-*.json` read into the trigger it is, and followed from what the
//! directory holds *now*, whatever the event says.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;
use crate::directory::memory::MemoryDirectory;
use crate::domain::{DirectoryUserName, GroupId, UserId};
use crate::follow::UserRef;
use crate::outcome::{ErrorCode, Status};
use crate::queue::memory::MemoryQueue;
use crate::sources::directory::{self, Trigger};
use crate::sources::eventbridge;

const STORE: &str = "d-9067a1b2c3";
const ALICE: &str = "9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001";
const BOB: &str = "9067a1b2c3-1a2b3c4d-0002-4e5f-8a9b-000000000002";
const DAVE: &str = "9067a1b2c3-1a2b3c4d-0004-4e5f-8a9b-000000000004";
const NOT_SFTP: &str = "9067a1b2c3-1a2b3c4d-0009-4e5f-8a9b-000000000009";
const FINANCE: &str = "9067a1b2c3-5e6f7a8b-0001-4c2d-9e0f-000000000101";
const ENGINEERING: &str = "9067a1b2c3-5e6f7a8b-0002-4c2d-9e0f-000000000102";
const STAFF: &str = "9067a1b2c3-5e6f7a8b-0003-4c2d-9e0f-000000000103";

fn sample(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn gid(s: &str) -> GroupId {
    GroupId::parse(s).unwrap()
}

/// alice is in finance, bob in engineering, dave in staff only; "not-sftp" has no
/// Transfer user; `$weird` cannot be a Transfer user name.
fn directory() -> Arc<MemoryDirectory> {
    let d = MemoryDirectory::new()
        .with_user(&uid(ALICE), "alice")
        .with_user(&uid(BOB), "bob")
        .with_user(&uid(DAVE), "dave")
        .with_user(&uid(NOT_SFTP), "not-sftp")
        .with_user(
            &uid("9067a1b2c3-1a2b3c4d-0005-4e5f-8a9b-000000000005"),
            "$weird",
        )
        .with_group(&gid(FINANCE), "sftp-finance")
        .with_group(&gid(ENGINEERING), "sftp-engineering")
        .with_group(&gid(STAFF), "staff");
    d.add(&gid(FINANCE), &uid(ALICE));
    d.add(&gid(ENGINEERING), &uid(BOB));
    d.add(&gid(STAFF), &uid(DAVE));
    d.add(&gid(STAFF), &uid(ALICE));
    Arc::new(d)
}

fn following(d: &Arc<MemoryDirectory>) -> Chroot<MemoryTransfer> {
    let mut c = Chroot::new(
        config(&[("IDENTITY_STORE_ID", STORE)]),
        seed()
            .with(user("dave"), path_home("/acme-sftp/home/dave"))
            .with(user("not-sftp2"), path_home("/acme-sftp/home/x")),
    );
    c.ports.directory = Some(d.clone());
    c
}

fn soon() -> Instant {
    Instant::now() + std::time::Duration::from_secs(10)
}

fn detail(v: &Value) -> &serde_json::Map<String, Value> {
    v["detail"].as_object().unwrap()
}

#[test]
fn every_sample_is_the_trigger_it_names() {
    let user = |id: &str| Trigger::User {
        who: UserRef::Id(uid(id)),
        only: None,
    };
    let e = sample("directory-identitystore-user-updated.json");
    assert_eq!(
        directory::notification(e["resources"].as_array().unwrap(), detail(&e)),
        user(ALICE)
    );
    let e = sample("directory-identitystore-membership-created.json");
    assert_eq!(
        directory::notification(e["resources"].as_array().unwrap(), detail(&e)),
        user(ALICE),
        "a membership names its user: the one whose profile may change"
    );
    let e = sample("directory-identitystore-group-updated.json");
    assert_eq!(
        directory::notification(e["resources"].as_array().unwrap(), detail(&e)),
        Trigger::Group(gid(FINANCE))
    );
    let e = sample("directory-cloudtrail-create-group-membership.json");
    assert_eq!(directory::api_call(detail(&e)), user(ALICE));
    let e = sample("directory-cloudtrail-delete-group-membership.json");
    assert!(matches!(directory::api_call(detail(&e)), Trigger::Skip(why) if why.contains("audit")));
    let e = sample("directory-scim-patch-group.json");
    assert_eq!(
        directory::api_call(detail(&e)),
        Trigger::Group(gid(FINANCE))
    );
    for (name, login) in [
        ("directory-okta-membership-add.json", "alice"),
        ("directory-okta-membership-remove.json", "bob"),
    ] {
        let e = sample(name);
        assert_eq!(
            directory::okta(detail(&e)),
            Trigger::User {
                who: UserRef::Name(DirectoryUserName::parse(login).unwrap()),
                only: None
            },
            "{name}"
        );
    }
}

#[test]
fn hostile_ids_are_refused_with_the_field_that_held_them() {
    for (resources, detail, field) in [
        (
            json!(["arn:aws:identitystore:::user/../group/x"]),
            json!({}),
            "resources[0]",
        ),
        (json!([]), json!({"UserId": "*"}), "detail.userId"),
        (
            json!([]),
            json!({"memberId": {"userId": "a".repeat(5000)}}),
            "detail.memberId.userId",
        ),
        (json!([]), json!({"groupId": 7}), "detail.groupId"),
    ] {
        match directory::notification(resources.as_array().unwrap(), detail.as_object().unwrap()) {
            Trigger::Invalid(errs) => assert_eq!(errs[0].field, field, "{detail}"),
            other => panic!("{detail}: {other:?}"),
        }
    }
    let e = json!({"eventSource": "identitystore.amazonaws.com", "eventName": "CreateGroupMembership",
                   "requestParameters": {"memberId": {"userId": "alice/../bob"}}});
    assert!(matches!(
        directory::api_call(e.as_object().unwrap()),
        Trigger::Invalid(_)
    ));
    let okta = json!({"eventType": "group.user_membership.add",
                      "target": [{"type": "User", "alternateId": "a b"}]});
    assert!(matches!(
        directory::okta(okta.as_object().unwrap()),
        Trigger::Invalid(_)
    ));
}

#[tokio::test]
async fn a_bad_trigger_makes_no_call_at_all() {
    let d = directory();
    let c = following(&d);
    let mut e = sample("directory-identitystore-user-updated.json");
    e["resources"] = json!(["arn:aws:identitystore:::user/%2e%2e"]);
    e["detail"] = json!({"identityStoreId": STORE});
    let o = eventbridge::run(&c, &e, soon()).await.outcome;
    assert_eq!(o.error_code(), Some(ErrorCode::ValidationFailed), "{o:?}");
    assert!(d.calls().is_empty());
    assert!(calls(&c).is_empty());
}

#[tokio::test]
async fn the_profile_comes_from_the_directory_now_not_from_the_event() {
    let d = directory();
    let c = following(&d);
    // The legacy event says alice is in engineering only; the directory says finance.
    let legacy = json!({"detail-type": "Directory Group Membership Changed", "source": "acme.directory-sync",
        "detail": {"ServerId": SERVER, "UserName": "alice", "Groups": ["sftp-engineering"]}});
    let o = eventbridge::run(&c, &legacy, soon()).await;
    assert_eq!(o.outcome.status, Status::Updated, "{:?}", o.outcome);
    assert_eq!(o.profile.as_deref(), Some("sftp-finance"));
    assert_eq!(
        chroot_dir(&c, &user("alice")).as_deref(),
        Some("/acme-sftp/groups/finance/alice")
    );
    let live = c.ports.transfer.get(&user("alice")).unwrap();
    assert_eq!(live.role.as_deref(), Some(FINANCE_ROLE));
    assert!(
        o.outcome
            .reason
            .as_deref()
            .unwrap()
            .contains("member of sftp-finance")
    );

    // Removed from finance, with no event for it: the next trigger of any kind, even
    // an old one replayed, lands on what the directory says (Default).
    d.remove(&gid(FINANCE), &uid(ALICE));
    let late = sample("directory-cloudtrail-create-group-membership.json");
    let o = eventbridge::run(&c, &late, soon()).await.outcome;
    assert_eq!(o.status, Status::Updated, "{o:?}");
    assert_eq!(o.profile.as_deref(), Some("Default"));
    assert_eq!(
        chroot_dir(&c, &user("alice")).as_deref(),
        Some("/acme-sftp/home/alice")
    );
    // Applied again: nothing left to change.
    let o = eventbridge::run(&c, &late, soon()).await.outcome;
    assert_eq!(o.status, Status::Unchanged, "{o:?}");
}

#[tokio::test]
async fn directory_users_without_a_transfer_user_or_a_name_transfer_can_hold_are_skipped() {
    let d = directory();
    let c = following(&d);
    let o = directory::follow(
        &c,
        Trigger::User {
            who: UserRef::Id(uid(NOT_SFTP)),
            only: None,
        },
        soon(),
    )
    .await;
    assert_eq!(o.status, Status::Skipped, "{o:?}");
    assert!(
        o.reason
            .as_deref()
            .unwrap()
            .contains("no Transfer user named not-sftp")
    );
    let o = directory::follow(
        &c,
        Trigger::User {
            who: UserRef::Id(uid("9067a1b2c3-1a2b3c4d-0005-4e5f-8a9b-000000000005")),
            only: None,
        },
        soon(),
    )
    .await;
    assert_eq!(o.status, Status::Skipped);
    assert!(
        o.reason
            .as_deref()
            .unwrap()
            .contains("cannot be a Transfer user name")
    );
    assert_eq!(c.ports.transfer.writes(), 0);
}

#[tokio::test]
async fn an_unreadable_directory_fails_retryably_and_writes_nothing() {
    let d = directory();
    let c = following(&d);
    d.fail_next(10, true);
    let o = eventbridge::run(
        &c,
        &sample("directory-identitystore-user-updated.json"),
        soon(),
    )
    .await
    .outcome;
    assert_eq!(o.status, Status::Failed);
    assert!(o.is_retryable_failure(), "{o:?}");
    assert_eq!(c.ports.transfer.writes(), 0);
    assert!(calls(&c).is_empty(), "not even a read of Transfer");
}

#[tokio::test]
async fn a_group_trigger_follows_every_current_member_or_queues_each_by_id() {
    let d = directory();
    d.add(&gid(FINANCE), &uid(DAVE));
    let c = following(&d);
    let o = eventbridge::run(&c, &sample("directory-scim-patch-group.json"), soon())
        .await
        .outcome;
    assert_eq!(o.status, Status::Updated, "{o:?}");
    let note = o.directory.as_ref().unwrap();
    assert_eq!(note.members, Some(2));
    for name in ["alice", "dave"] {
        assert_eq!(
            chroot_dir(&c, &user(name)),
            Some(format!("/acme-sftp/groups/finance/{name}"))
        );
    }

    // With a queue: one command per member, naming the directory user only.
    let d = directory();
    let mut c = following(&d);
    let q = Arc::new(MemoryQueue::new());
    c.ports.queue = Some(q.clone());
    let o = eventbridge::run(
        &c,
        &sample("directory-identitystore-group-updated.json"),
        soon(),
    )
    .await
    .outcome;
    assert_eq!(o.status, Status::Queued, "{o:?}");
    let sent = q.messages();
    assert_eq!(sent.len(), 1);
    let body: Value = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(
        body,
        json!({"Action": "ReconcileDirectoryUser", "UserId": ALICE})
    );
    assert_eq!(c.ports.transfer.writes(), 0, "applied when consumed");
    // Consumed: alice followed.
    let o = directory::reconcile_user(&c, &body, soon()).await;
    assert_eq!(o.status, Status::Updated, "{o:?}");
    // A command that carries more than the user is refused, every field named.
    let o = directory::reconcile_user(
        &c,
        &json!({"Action": "ReconcileDirectoryUser", "UserId": ALICE, "HomeDirectory": "/x", "Groups": []}),
        soon(),
    )
    .await;
    assert_eq!(error_fields(&o.to_json()), ["HomeDirectory", "Groups"]);

    // A group no profile is about: no member's profile depends on it.
    let staff = json!({"source": "aws.identitystore", "detail-type": "Group Updated",
        "resources": [format!("arn:aws:identitystore:::group/{STAFF}")], "detail": {}});
    let o = eventbridge::run(&c, &staff, soon()).await.outcome;
    assert_eq!(o.status, Status::Skipped, "{o:?}");
}

#[tokio::test]
async fn without_an_identity_store_directory_events_are_skipped_with_no_call() {
    let d = directory();
    let mut c = Chroot::new(config(&[]), seed());
    c.ports.directory = Some(d.clone());
    for name in [
        "directory-identitystore-user-updated.json",
        "directory-okta-membership-add.json",
        "directory-scim-patch-group.json",
    ] {
        let o = eventbridge::run(&c, &sample(name), soon()).await.outcome;
        assert_eq!(o.status, Status::Skipped, "{name}: {o:?}");
        assert!(
            o.reason.as_deref().unwrap().contains("IDENTITY_STORE_ID"),
            "{o:?}"
        );
    }
    assert!(d.calls().is_empty() && calls(&c).is_empty());
}

#[tokio::test]
async fn an_event_of_another_identity_store_is_skipped() {
    let d = directory();
    let c = following(&d);
    let mut e = sample("directory-identitystore-user-updated.json");
    e["detail"]["identityStoreId"] = json!("d-0000000000");
    let o = eventbridge::run(&c, &e, soon()).await.outcome;
    assert_eq!(o.status, Status::Skipped);
    assert!(d.calls().is_empty());
}

#[tokio::test]
async fn an_exempt_user_is_never_rehomed_by_a_membership_event() {
    let d = directory();
    let mut c = Chroot::new(
        config(&[("IDENTITY_STORE_ID", STORE), ("EXEMPT_USERS", "dave")]),
        seed().with(user("dave"), path_home("/acme-sftp/home/dave-wide")),
    );
    c.ports.directory = Some(d.clone());
    let o = directory::follow(
        &c,
        Trigger::User {
            who: UserRef::Id(uid(DAVE)),
            only: None,
        },
        soon(),
    )
    .await;
    assert_eq!(o.status, Status::Skipped, "{o:?}");
    assert!(o.reason.as_deref().unwrap().contains("EXEMPT_USERS"));
    assert_eq!(c.ports.transfer.writes(), 0);
}

#[test]
fn an_identity_store_needs_group_profiles() {
    let e = crate::config::Config::from_pairs(&[
        ("ALLOWED_SERVER_IDS", SERVER),
        ("HOME_ROOTS", "/acme-sftp/home"),
        ("IDENTITY_STORE_ID", STORE),
    ])
    .unwrap_err();
    assert!(e.names("GROUP_PROFILES"), "{e}");
    let e = crate::config::Config::from_pairs(&[
        ("ALLOWED_SERVER_IDS", SERVER),
        ("HOME_ROOTS", "/acme-sftp/home"),
        ("IDENTITY_STORE_ID", "d-NOTHEX0000"),
        ("GROUP_PROFILES", r#"{"Default": {}}"#),
    ])
    .unwrap_err();
    assert!(e.names("IDENTITY_STORE_ID"), "{e}");
}
