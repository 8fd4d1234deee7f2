//! The floor: lambda_runtime + aws-sdk-transfer and nothing else. For a direct command
//! `{"ServerId", "UserName", "HomeDirectory"}` it calls DescribeUser and, only when the
//! user is not LOGICAL, UpdateUser (LOGICAL, one mapping `/` → HomeDirectory). No
//! validation: whatever the event holds goes to Transfer as is. The SDK client is built
//! the same way as the function's (aws_config defaults, one client per cold start).

use aws_config::BehaviorVersion;
use aws_sdk_transfer::types::{HomeDirectoryMapEntry, HomeDirectoryType};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_transfer::Client::new(&sdk);
    let default_server = std::env::var("DEFAULT_SERVER_ID").unwrap_or_default();
    let (client, default_server) = (&client, default_server.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let event = event.payload;
        let server = event["ServerId"].as_str().unwrap_or(default_server);
        let user = event["UserName"].as_str().unwrap_or_default();
        let described = client
            .describe_user()
            .server_id(server)
            .user_name(user)
            .send()
            .await?;
        let kind = described.user().and_then(|u| u.home_directory_type());
        if kind == Some(&HomeDirectoryType::Logical) {
            return Ok::<_, Error>(json!({"Status": "Unchanged"}));
        }
        let home = event["HomeDirectory"].as_str().unwrap_or("/");
        let mapping = HomeDirectoryMapEntry::builder()
            .entry("/")
            .target(home)
            .build()?;
        client
            .update_user()
            .server_id(server)
            .user_name(user)
            .home_directory_type(HomeDirectoryType::Logical)
            .home_directory_mappings(mapping)
            .send()
            .await?;
        Ok(json!({"Status": "Updated"}))
    }))
    .await
}
