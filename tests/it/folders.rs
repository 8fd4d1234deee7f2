//! The home-folder check against a real S3 implementation: `moto` in server mode on
//! loopback, started by `scripts/test.sh` (its address in `MOTO_ENDPOINT`), through the
//! real `aws-sdk-s3`; the Transfer side is the stand-in, through the real SDK.

use std::sync::Arc;

use serde_json::{Value, json};
use transfer_chroot::folders::s3::SdkFolders;
use transfer_chroot::{App, Outcome, Status};
use transfer_standin::StandIn;

use crate::common::{config_with, sdk_client};

const SERVER: &str = "s-0123456789abcdef0";

fn moto() -> String {
    crate::common::moto::moto_endpoint()
}

fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    crate::common::moto::s3_client(endpoint)
}

/// A bucket of this test's own (moto is shared by the whole run).
async fn bucket(client: &aws_sdk_s3::Client, name: &str) {
    // Already there from an earlier run of the same moto: fine.
    let _ = client.create_bucket().bucket(name).send().await;
}

async fn exists(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

struct Fixture {
    standin: StandIn,
    app: App<transfer_chroot::transfer::sdk::SdkTransfer>,
}

/// A service-managed S3 server without directory listing optimisation, whose users
/// live in `bucket`, and the function with the home-folder check against moto.
async fn fixture(bucket: &str, folders_endpoint: &str, overrides: &[(&str, &str)]) -> Fixture {
    let user = |name: &str| {
        json!({"UserName": name, "HomeDirectoryType": "PATH",
               "HomeDirectory": format!("/{bucket}/home/{name}")})
    };
    let seed = json!({"Servers": [{
        "ServerId": SERVER, "IdentityProviderType": "SERVICE_MANAGED", "Domain": "S3",
        "DirectoryListingOptimization": "DISABLED",
        "Users": [user("alice"), user("bob"), user("carol")], "Accesses": []
    }]});
    let standin = StandIn::start(&seed).await.expect("stand-in");
    let roots = format!("/{bucket}/home");
    let mut vars = vec![
        ("ALLOWED_SERVER_IDS", SERVER),
        ("HOME_ROOTS", roots.as_str()),
        ("HOME_TEMPLATE", ""),
        ("GROUP_PROFILES", ""),
        ("DEFAULT_SERVER_ID", ""),
    ];
    vars.extend_from_slice(overrides);
    let config = config_with(&vars);
    let transfer =
        transfer_chroot::transfer::sdk::SdkTransfer::new(sdk_client(&standin.endpoint(), 2));
    let app = crate::common::app(config, transfer)
        .with_folders(Arc::new(SdkFolders::new(s3(folders_endpoint))));
    Fixture { standin, app }
}

async fn chroot(f: &Fixture, user: &str, home: &str) -> Outcome {
    let reply = f
        .app
        .dispatch(
            json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": user, "HomeDirectory": home}),
            &transfer_chroot::Invocation::with_budget(std::time::Duration::from_secs(30)),
        )
        .await
        .expect("answers");
    serde_json::from_value::<Outcome>(reply).expect("an outcome")
}

fn folder_warning(o: &Outcome) -> Option<&String> {
    o.warnings.iter().find(|w| w.contains("home folder"))
}

#[tokio::test]
async fn a_missing_folder_is_a_warning_and_the_update_is_sent() {
    let client = s3(&moto());
    bucket(&client, "warn-bucket").await;
    let f = fixture("warn-bucket", &moto(), &[]).await;
    let o = chroot(&f, "alice", "/warn-bucket/home/alice").await;
    assert_eq!(o.status, Status::Updated, "{o:?}");
    let w = folder_warning(&o).expect("a warning");
    assert!(
        w.contains("s3://warn-bucket/home/alice/ does not exist"),
        "{w}"
    );
    assert_eq!(f.standin.successful_calls("UpdateUser"), 1);
    assert!(
        !exists(&client, "warn-bucket", "home/alice/").await,
        "nothing was created"
    );
}

#[tokio::test]
async fn an_existing_folder_gives_no_warning() {
    let client = s3(&moto());
    bucket(&client, "found-bucket").await;
    client
        .put_object()
        .bucket("found-bucket")
        .key("home/bob/")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b""))
        .send()
        .await
        .expect("folder object");
    let f = fixture("found-bucket", &moto(), &[]).await;
    let o = chroot(&f, "bob", "/found-bucket/home/bob").await;
    assert_eq!(o.status, Status::Updated);
    assert_eq!(folder_warning(&o), None, "{o:?}");
}

#[tokio::test]
async fn create_home_folders_makes_the_folder_object_then_updates() {
    let client = s3(&moto());
    bucket(&client, "create-bucket").await;
    let f = fixture("create-bucket", &moto(), &[("CREATE_HOME_FOLDERS", "true")]).await;
    let o = chroot(&f, "carol", "/create-bucket/home/carol").await;
    assert_eq!(o.status, Status::Updated, "{o:?}");
    assert_eq!(folder_warning(&o), None);
    assert!(exists(&client, "create-bucket", "home/carol/").await);
    let object = client
        .head_object()
        .bucket("create-bucket")
        .key("home/carol/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        object.content_length(),
        Some(0),
        "a zero-byte folder object"
    );
    assert_eq!(f.standin.successful_calls("UpdateUser"), 1);
}

#[tokio::test]
async fn s3_errors_are_clear_results_and_nothing_is_written() {
    // No such bucket: HeadObject says 404 (missing), PutObject then fails for good.
    let f = fixture(
        "no-such-bucket-here",
        &moto(),
        &[("CREATE_HOME_FOLDERS", "true")],
    )
    .await;
    let o = chroot(&f, "alice", "/no-such-bucket-here/home/alice").await;
    let e = o.error.as_ref().expect("failed");
    assert_eq!(e.code, transfer_chroot::outcome::ErrorCode::Upstream);
    assert!(!e.retryable, "{e:?}");
    assert!(
        e.message
            .contains("PutObject s3://no-such-bucket-here/home/alice/"),
        "{e:?}"
    );
    assert!(e.message.contains("NoSuchBucket"), "{e:?}");
    assert_eq!(f.standin.calls("UpdateUser"), 0);

    // S3 unreachable (a closed loopback port): retryable, nothing written either.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let f = fixture("any-bucket", &closed, &[]).await;
    let o = chroot(&f, "alice", "/any-bucket/home/alice").await;
    let e = o.error.as_ref().expect("failed");
    assert!(e.retryable, "{e:?}");
    assert!(
        e.message.contains("HeadObject s3://any-bucket/home/alice/"),
        "{e:?}"
    );
    assert_eq!(f.standin.calls("UpdateUser"), 0);
    let body: Value = serde_json::to_value(&o).unwrap();
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no endpoint in the result: {body}"
    );
}
