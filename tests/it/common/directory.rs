//! moto's Identity Store (a real one on loopback, started by scripts/test.sh): each test
//! its own store (moto keeps one per `IdentityStoreId`, created on first use), seeded
//! with users, groups and memberships through the service's own JSON API, signed as
//! the function signs. moto picks the ids: [`rewrite`] puts them into a sample event
//! in place of the sample's own.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::{Value, json};
use transfer_chroot::directory::store::IdentityStore;
use transfer_chroot::domain::IdentityStoreId;
use transfer_chroot::signed::SignedClient;

use super::moto::moto_endpoint;

/// The samples' ids (events/DIRECTORY-SOURCES.md).
pub const SAMPLE_STORE: &str = "d-9067a1b2c3";
pub const SAMPLE_ALICE: &str = "9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001";
pub const SAMPLE_BOB: &str = "9067a1b2c3-1a2b3c4d-0002-4e5f-8a9b-000000000002";
pub const SAMPLE_FINANCE: &str = "9067a1b2c3-5e6f7a8b-0001-4c2d-9e0f-000000000101";
pub const SAMPLE_PARTNERS: &str = "9067a1b2c3-5e6f7a8b-0002-4c2d-9e0f-000000000102";

fn client(endpoint: &str) -> SignedClient {
    let credentials = Credentials::new("AKIDMOTO", "moto", None, None, "tests");
    SignedClient::new(
        "identitystore",
        endpoint.to_owned(),
        "us-east-1".to_owned(),
        Some(SharedCredentialsProvider::new(credentials)),
        None,
    )
}

/// One Identity Store on moto.
pub struct MotoDirectory {
    client: SignedClient,
    pub store: String,
    pub endpoint: String,
}

impl MotoDirectory {
    /// A store of its own (a fresh `d-` id).
    pub fn new() -> Self {
        let n: u64 = fastrand::u64(..) & 0xff_ffff_ffff;
        let endpoint = moto_endpoint();
        Self {
            client: client(&endpoint),
            store: format!("d-{n:010x}"),
            endpoint,
        }
    }

    async fn call(&self, operation: &str, mut body: Value) -> Value {
        body["IdentityStoreId"] = self.store.clone().into();
        let target = format!("AWSIdentityStore.{operation}");
        self.client
            .post(
                "/",
                "application/x-amz-json-1.1",
                &[("x-amz-target", target.as_str())],
                body.to_string().as_bytes(),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|e| panic!("moto {operation}: {e:?}"))
    }

    /// A user named `name`: its id.
    pub async fn user(&self, name: &str) -> String {
        let out = self
            .call(
                "CreateUser",
                json!({"UserName": name, "DisplayName": name,
                       "Name": {"GivenName": name, "FamilyName": "Example"}}),
            )
            .await;
        out["UserId"].as_str().expect("UserId").to_owned()
    }

    /// A group displayed as `name`: its id.
    pub async fn group(&self, name: &str) -> String {
        let out = self.call("CreateGroup", json!({"DisplayName": name})).await;
        out["GroupId"].as_str().expect("GroupId").to_owned()
    }

    /// `user` made a member of `group`: the membership's id.
    pub async fn add(&self, group: &str, user: &str) -> String {
        let out = self
            .call(
                "CreateGroupMembership",
                json!({"GroupId": group, "MemberId": {"UserId": user}}),
            )
            .await;
        out["MembershipId"]
            .as_str()
            .expect("MembershipId")
            .to_owned()
    }

    pub async fn remove(&self, membership: &str) {
        self.call("DeleteGroupMembership", json!({"MembershipId": membership}))
            .await;
    }

    /// The function's port to this store, at `max_rps`.
    pub fn port(&self, max_rps: f64) -> Arc<IdentityStore> {
        Arc::new(IdentityStore::new(
            client(&self.endpoint),
            IdentityStoreId::parse(&self.store).unwrap(),
            max_rps,
        ))
    }
}

/// `event` with each sample id of `ids` replaced by moto's.
pub fn rewrite(event: &Value, ids: &[(&str, &str)]) -> Value {
    let mut text = event.to_string();
    for (sample, real) in ids {
        text = text.replace(sample, real);
    }
    serde_json::from_str(&text).unwrap()
}
