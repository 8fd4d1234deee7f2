//! Servers change under the function: the stand-in's server switched to a custom
//! identity provider (`UpdateServer`, through the real SDK) between calls. Announced by
//! CloudTrail or only aged out by `SERVER_FACTS_TTL_SECONDS`, no `UpdateUser` reaches
//! that server afterwards; the audit names it in `ServerFindings` and, with Security
//! Hub (moto), as one ACTIVE HIGH finding on the server's ARN, archived once it is back.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_transfer::types::IdentityProviderType;
use serde_json::{Value, json};
use transfer_chroot::findings::{Account, GENERATOR_ID, Hub, SERVER_FINDING};

use crate::common::*;

fn update(user: &str) -> Value {
    json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": user})
}

async fn switch(t: &TestApp, to: IdentityProviderType) {
    sdk_client(&t.standin.endpoint(), 1)
        .update_server()
        .server_id(SERVER)
        .identity_provider_type(to)
        .send()
        .await
        .expect("UpdateServer on the stand-in");
}

fn update_server_record() -> Value {
    event("cloudtrail-update-server.json")
}

#[tokio::test]
async fn a_switch_announced_by_cloudtrail_stops_every_update_user_at_once() {
    let t = spawn_app().await;
    let alice = t.invoke(update("alice")).await;
    assert_eq!(alice["Status"], "Updated", "{alice:#}");
    let writes = t.standin.calls("UpdateUser");
    // The server moves to a Lambda identity provider; CloudTrail says so.
    switch(&t, IdentityProviderType::AwsLambda).await;
    let r = t.invoke(update_server_record()).await;
    assert_eq!(r["Status"], "Unchanged", "{r:#}");
    assert_eq!(r["Server"]["IdentityProviderType"], "AWS_LAMBDA");
    assert_eq!(
        r["Server"]["PreviousIdentityProviderType"],
        "SERVICE_MANAGED"
    );
    assert!(
        r["Server"]["Finding"]
            .as_str()
            .unwrap()
            .contains("no UpdateUser chroots anyone"),
        "{r:#}"
    );
    // bob: refused before any write, naming the provider.
    let bob = t.invoke(update("bob")).await;
    assert_eq!(bob["Status"], "Failed", "{bob:#}");
    assert_eq!(bob["Error"]["Code"], "ValidationFailed");
    assert!(bob.to_string().contains("AWS_LAMBDA"), "{bob:#}");
    assert_eq!(
        t.standin.calls("UpdateUser"),
        writes,
        "no UpdateUser after the switch"
    );
    // And back: users are chrooted there again.
    switch(&t, IdentityProviderType::ServiceManaged).await;
    let mut back = update_server_record();
    back["detail"]["requestParameters"]["identityProviderType"] = "SERVICE_MANAGED".into();
    let r = t.invoke(back).await;
    assert_eq!(
        r["Server"]["IdentityProviderType"], "SERVICE_MANAGED",
        "{r:#}"
    );
    assert!(r["Server"].get("Finding").is_none(), "{r:#}");
    let bob = t.invoke(update("bob")).await;
    assert_ne!(bob["Status"], "Failed", "{bob:#}");
}

#[tokio::test]
async fn a_switch_only_aged_out_by_the_ttl_is_seen_within_it() {
    let t = spawn_app_with(&[("SERVER_FACTS_TTL_SECONDS", "1")]).await;
    assert_eq!(t.invoke(update("alice")).await["Status"], "Updated");
    let writes = t.standin.calls("UpdateUser");
    let describes = t.standin.calls("DescribeServer");
    switch(&t, IdentityProviderType::ApiGateway).await;
    // No CloudTrail record: what was read stays true for at most the TTL.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let bob = t.invoke(update("bob")).await;
    assert_eq!(bob["Error"]["Code"], "ValidationFailed", "{bob:#}");
    assert!(bob.to_string().contains("API_GATEWAY"), "{bob:#}");
    assert_eq!(
        t.standin.calls("UpdateUser"),
        writes,
        "no UpdateUser after the switch"
    );
    assert_eq!(
        t.standin.calls("DescribeServer"),
        describes + 1,
        "read again once"
    );
}

#[tokio::test]
async fn a_warm_unchanged_server_is_not_read_again_within_the_ttl() {
    let t = spawn_app().await;
    let describes = t.standin.calls("DescribeServer");
    for user in ["alice", "bob", "carol", "alice"] {
        t.invoke(update(user)).await;
    }
    assert_eq!(
        t.standin.calls("DescribeServer"),
        describes,
        "the hot path reads no server"
    );
}

#[tokio::test]
async fn the_audit_names_a_custom_provider_server_and_security_hub_holds_one_high_finding() {
    let mut t = spawn_app_with(&[("SECURITY_HUB", "true")]).await;
    let hub_client = {
        use aws_credential_types::Credentials;
        use aws_credential_types::provider::SharedCredentialsProvider;
        Arc::new(transfer_chroot::findings::hub::SdkHub::new(
            crate::common::moto::moto_endpoint(),
            "us-east-1".into(),
            Some(SharedCredentialsProvider::new(Credentials::new(
                "AKIDMOTO", "moto", None, None, "tests",
            ))),
            None,
        ))
    };
    t.app.chroot.ports.hub = Some(Arc::new(Hub::new(hub_client.clone())));
    // An account of its own in the shared moto (the others' tests use theirs).
    let account_id = format!("{:012}", fastrand::u64(100_000_000_000..999_999_999_999));
    let arn = format!("arn:aws:lambda:us-east-1:{account_id}:function:transfer-chroot");
    t.app.chroot.learn(Some(&arn));
    let account = Account::from_function_arn(&arn).unwrap();
    switch(&t, IdentityProviderType::AwsLambda).await;
    t.app
        .chroot
        .env
        .servers
        .forget(&transfer_chroot::domain::ServerId::parse(SERVER).unwrap());
    let writes = t.writes();
    let r = t
        .invoke(json!({"Action": "Audit", "ServerId": SERVER, "Fix": true}))
        .await;
    assert_eq!(r["Status"], "Audited", "{r:#}");
    let found = r["ServerFindings"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{r:#}");
    assert_eq!(found[0]["ServerId"], SERVER);
    assert_eq!(found[0]["IdentityProviderType"], "AWS_LAMBDA");
    assert_eq!(
        r["Counts"]["Chrooted"], 0,
        "its users are not counted chrooted"
    );
    assert_eq!(t.writes(), writes, "nor written");
    let server_arn = format!("arn:aws:transfer:us-east-1:{account_id}:server/{SERVER}");
    let on_server =
        |findings: &[transfer_chroot::findings::Asff]| -> Vec<(String, String, String)> {
            findings
                .iter()
                .filter(|f| f.id.ends_with(SERVER_FINDING) && f.resources[0].id == server_arn)
                .map(|f| {
                    (
                        f.severity.label.clone(),
                        f.compliance.status.clone(),
                        f.record_state.clone(),
                    )
                })
                .collect()
        };
    let all = hub_findings(&hub_client, &account).await;
    assert_eq!(
        on_server(&all),
        [("HIGH".into(), "FAILED".into(), "ACTIVE".into())],
        "one active HIGH finding on the server"
    );
    // Back on a chrooting provider, as CloudTrail reports: archived at once.
    switch(&t, IdentityProviderType::ServiceManaged).await;
    let mut back = update_server_record();
    back["detail"]["requestParameters"]["identityProviderType"] = "SERVICE_MANAGED".into();
    t.invoke(back).await;
    let all = hub_findings(&hub_client, &account).await;
    let states = on_server(&all);
    assert!(
        states
            .iter()
            .all(|(_, c, s)| c == "PASSED" && s == "ARCHIVED")
            && !states.is_empty(),
        "{states:?}"
    );
}

/// Every finding of this generator in `account` (moto applies no filter: done here).
async fn hub_findings(
    hub: &transfer_chroot::findings::hub::SdkHub,
    account: &Account,
) -> Vec<transfer_chroot::findings::Asff> {
    use transfer_chroot::findings::SecurityHub;
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = hub
            .active(account, "9999-01-01T00:00:00Z", token.as_deref())
            .await
            .expect("GetFindings");
        all.extend(
            page.findings
                .into_iter()
                .filter(|f| f.aws_account_id == account.id && f.generator_id == GENERATOR_ID),
        );
        match page.next_token {
            Some(t) => token = Some(t),
            None => return all,
        }
    }
}

#[tokio::test]
async fn session_policy_warnings_name_efs_and_variables_transfer_does_not_substitute() {
    let t = spawn_app().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-sftp/&{transfer:UserName}/*"}]});
    let r = t
        .invoke(
            json!({"Action": "UpdateUser", "ServerId": SERVER, "UserName": "carol",
                       "HomeDirectory": "/acme-sftp/home/carol", "Policy": policy}),
        )
        .await;
    assert_ne!(r["Status"], "Failed", "a warning, never a refusal: {r:#}");
    let warnings = r["Warnings"].to_string();
    assert!(warnings.contains("&{transfer:UserName}"), "{r:#}");
}
