//! Every sample in `events/` (the demo's, the README's and the tests' one source) is a
//! valid envelope of its source, routes to that source, and gets an answer.

use crate::common::*;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;
use transfer_chroot::sources::{Shape, shape};

fn samples() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), event(&n))).collect()
}

#[test]
fn every_sample_parses_as_its_source_and_routes_there() {
    let samples = samples();
    assert!(samples.len() >= 15, "a sample for every source and outcome");
    for (name, value) in samples {
        let (expected, parsed) = match name.split('-').next().unwrap() {
            "direct" | "audit" => (Shape::Direct, Ok(())),
            "eventbridge" | "cloudtrail" | "directory" => (
                Shape::EventBridge,
                serde_json::from_value::<EventBridgeEvent>(value.clone()).map(drop),
            ),
            "sqs" => (
                Shape::Sqs,
                serde_json::from_value::<SqsEvent>(value.clone()).map(drop),
            ),
            "apigw" if value.get("version").and_then(Value::as_str) == Some("2.0") => (
                Shape::ApiGateway,
                serde_json::from_value::<ApiGatewayV2httpRequest>(value.clone()).map(drop),
            ),
            "apigw" => (
                Shape::ApiGateway,
                serde_json::from_value::<ApiGatewayProxyRequest>(value.clone()).map(drop),
            ),
            "cfn" => (
                Shape::CloudFormation,
                serde_json::from_value::<CloudFormationCustomResourceRequest>(value.clone())
                    .map(drop),
            ),
            other => panic!("{name}: unknown sample prefix {other}"),
        };
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
        assert_eq!(shape(&value), expected, "{name}");
    }
}

#[tokio::test]
async fn every_sample_except_cloudformation_gets_an_answer_from_the_handler() {
    // CloudFormation samples answer to the demo's fixed sink address; tests/cloudformation.rs
    // runs them against its own stand-in.
    let t = spawn_app().await;
    for (name, value) in samples()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("cfn-"))
    {
        let reply = t
            .invoke_with_budget(value, std::time::Duration::from_secs(30))
            .await;
        match reply {
            Ok(v) => assert!(v.is_object(), "{name}: {v}"),
            // EventBridge failures fail the invocation, with the result in the message.
            Err(e) => assert!(
                ["eventbridge-", "cloudtrail-", "directory-"]
                    .iter()
                    .any(|p| name.starts_with(p))
                    && e.contains("\"Status\""),
                "{name}: {e}"
            ),
        }
    }
}

#[tokio::test]
async fn v1_get_sample_reads_back_a_chrooted_user() {
    let t = spawn_app().await;
    let reply = t.invoke(event("apigw-v1-get-user.json")).await;
    assert_eq!(reply["statusCode"], 200, "{reply:#}");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["Chrooted"], true);
    assert_eq!(body["ChrootTarget"], "/acme-sftp/home/bob");
    assert_eq!(t.writes(), 0);
}
