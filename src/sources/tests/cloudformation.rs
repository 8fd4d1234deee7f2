//! The CloudFormation custom resource: the pure parts (request, id, answer), then
//! `handle` end to end with its `ResponseURL` on a tiny HTTP endpoint on 127.0.0.1 that
//! records each PUT.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::domain::ResponseOrigins;
use crate::sources::HandlerError;
use crate::sources::cloudformation::{
    self, Answer, CfnRequest, CfnStatus, Refusal, RequestType, Responder, ResponseUrlViolation,
    RetryPolicy, physical_id,
};
use crate::transfer::TransferErrorKind;

const STACK: &str = "arn:aws:cloudformation:us-east-1:111122223333:stack/sftp-users/16580499-7622-4a9c-b32f-4eba35da93da";
const LOGICAL: &str = "CarolChroot";
/// Where `Invocation::with_budget`'s failures point.
const POINTER: &str = "See CloudWatch Logs group local, stream local, request local.";

fn carol() -> Value {
    // CloudFormation sends every scalar as a string.
    json!({"ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:transfer-chroot",
           "ServerId": SERVER, "UserName": "carol", "HomeDirectory": "/acme-sftp/home/carol",
           "PosixProfile": {"Uid": "1003", "Gid": "1003"}})
}

fn cfn_event(url: &str, request_type: &str, physical: Option<&str>, properties: Value) -> Value {
    let mut e = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:transfer-chroot",
        "RequestType": request_type,
        "RequestId": "82304eb2-bdda-469f-a33b-a3f1406d0a52",
        "ResponseURL": format!("{url}/cfn/{request_type}?X-Amz-Signature=test"),
        "StackId": STACK,
        "ResourceType": "Custom::TransferChroot",
        "LogicalResourceId": LOGICAL,
        "ResourceProperties": properties,
    });
    if let Some(id) = physical {
        e["PhysicalResourceId"] = id.into();
    }
    e
}

/// One PUT the endpoint received.
#[derive(Debug)]
struct Put {
    method: String,
    path_and_query: String,
    content_type: Option<String>,
    body: Value,
}

/// An HTTP endpoint on 127.0.0.1 answering every request with `status`; its base URL
/// and what it received.
async fn endpoint(status: u16) -> (String, mpsc::UnboundedReceiver<Put>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let bytes = body.collect().await?.to_bytes();
                        let _ = tx.send(Put {
                            method: parts.method.to_string(),
                            path_and_query: parts
                                .uri
                                .path_and_query()
                                .map(ToString::to_string)
                                .unwrap_or_default(),
                            content_type: parts
                                .headers
                                .get(hyper::header::CONTENT_TYPE)
                                .map(|v| v.to_str().unwrap_or("?").to_owned()),
                            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                        });
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                },
            );
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (url, rx)
}

fn responder() -> Responder {
    Responder::with_policy(RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        attempt_timeout: Duration::from_secs(2),
    })
}

/// `CFN_RESPONSE_ORIGINS` admitting the endpoint at `url` (`http://127.0.0.1:<port>`).
fn admitting(url: &str) -> ResponseOrigins {
    ResponseOrigins::parse(url).expect("an origin")
}

fn received(rx: &mut mpsc::UnboundedReceiver<Put>) -> Vec<Put> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Runs `event` through `handle` against an endpoint answering 200; the response sent,
/// checked to be exactly the one body the endpoint received.
async fn answer(c: &Chroot<MemoryTransfer>, event: impl FnOnce(&str) -> Value) -> Value {
    let (url, mut rx) = endpoint(200).await;
    let sent = cloudformation::handle(
        c,
        &responder(),
        &admitting(&url),
        event(&url),
        &invocation(),
    )
    .await
    .expect("the response is delivered");
    let puts = received(&mut rx);
    assert_eq!(puts.len(), 1, "{puts:?}");
    let put = &puts[0];
    assert_eq!(put.method, "PUT");
    // The presigned query string is sent as it came; the content type is empty (the
    // signature covers none).
    assert!(
        put.path_and_query.starts_with("/cfn/")
            && put.path_and_query.ends_with("?X-Amz-Signature=test"),
        "{}",
        put.path_and_query
    );
    assert_eq!(put.content_type.as_deref(), Some(""));
    assert_eq!(put.body, sent);
    assert_eq!(sent["StackId"], STACK);
    assert_eq!(sent["RequestId"], "82304eb2-bdda-469f-a33b-a3f1406d0a52");
    assert_eq!(sent["LogicalResourceId"], LOGICAL);
    sent
}

#[test]
fn a_request_is_read_leniently_but_needs_somewhere_to_answer() {
    let event = cfn_event(
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
        "Update",
        Some("s-0123456789abcdef0/users/carol"),
        carol(),
    );
    let cloudformation_only = ResponseOrigins::none();
    let r = CfnRequest::from_event(&event, &cloudformation_only).unwrap();
    assert_eq!(r.request_type, Ok(RequestType::Update));
    assert_eq!(r.stack_id, STACK);
    assert_eq!(r.logical_resource_id, LOGICAL);
    assert_eq!(r.resource_type, "Custom::TransferChroot");
    assert_eq!(
        r.physical_resource_id.as_deref(),
        Some("s-0123456789abcdef0/users/carol")
    );
    assert_eq!(r.properties.as_ref().unwrap()["UserName"], "carol");
    assert_eq!(
        r.response_url.to_string(),
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/cfn/Update",
        "the signature never shows"
    );

    let mut e = event.clone();
    e["ResourceProperties"] = json!("carol");
    e["PhysicalResourceId"] = json!("");
    let r = CfnRequest::from_event(&e, &cloudformation_only).unwrap();
    assert_eq!(
        r.properties,
        Err("ResourceProperties must be an object, got a string".to_owned())
    );
    assert_eq!(r.physical_resource_id, None);
    assert_eq!(r.id_on_failure(), "failed-create/CarolChroot");
    e["ResourceProperties"] = Value::Null;
    e["RequestType"] = json!("Replace");
    let r = CfnRequest::from_event(&e, &cloudformation_only).unwrap();
    assert_eq!(r.properties.unwrap().len(), 0);
    assert_eq!(r.request_type, Err("Replace".to_owned()));

    let refused = |origin: &str, why| ResponseUrlViolation::NotCloudFormation {
        origin: origin.to_owned(),
        why,
    };
    let malformed = |why: &str| ResponseUrlViolation::Malformed(why.to_owned());
    for (url, violation) in [
        (Value::Null, ResponseUrlViolation::Missing),
        (json!(42), ResponseUrlViolation::Missing),
        (
            json!("ftp://example.com/r"),
            refused("ftp://example.com:21", Refusal::Scheme),
        ),
        (
            json!("http://127.0.0.1:9/r"),
            refused("http://127.0.0.1:9", Refusal::Scheme),
        ),
        (
            json!("https://s3.amazonaws.com.evil.example/r"),
            refused("https://s3.amazonaws.com.evil.example:443", Refusal::Host),
        ),
        (
            json!("https://user:pw@s3.amazonaws.com/r"),
            ResponseUrlViolation::UserInfo,
        ),
        (
            json!("/cfn/r?X-Amz-Signature=s"),
            malformed("relative URL without a base"),
        ),
        (json!("http://[::1/"), malformed("invalid IPv6 address")),
    ] {
        let mut e = event.clone();
        e["ResponseURL"] = url.clone();
        assert_eq!(
            CfnRequest::from_event(&e, &cloudformation_only).err(),
            Some(violation),
            "{url}"
        );
    }
}

#[test]
fn the_physical_id_is_the_targets_label() {
    assert_eq!(
        physical_id(&user("carol")),
        "s-0123456789abcdef0/users/carol"
    );
    assert_eq!(
        physical_id(&user("dave@example.com")),
        "s-0123456789abcdef0/users/dave@example.com"
    );
    assert_eq!(
        physical_id(&access(FINANCE_SID)),
        format!("s-00000000000000000/accesses/{FINANCE_SID}")
    );
    // It parses back to the same target (a Delete's log line relies on it).
    assert_eq!(target(&physical_id(&user("carol"))), user("carol"));
}

#[test]
fn an_answer_is_drafted_for_its_request_and_points_failures_at_the_logs() {
    let request = CfnRequest::from_event(
        &cfn_event("http://127.0.0.1:9", "Create", None, carol()),
        &admitting("http://127.0.0.1:9"),
    )
    .unwrap();
    let invocation = crate::invocation::Invocation {
        request_id: "lambda-req".into(),
        log_group: "/aws/lambda/transfer-chroot".into(),
        log_stream: "2026/01/01/[$LATEST]abc".into(),
        ..invocation()
    };
    let success = Answer {
        status: CfnStatus::Success,
        physical_resource_id: "s-0123456789abcdef0/users/carol".into(),
        detail: "Updated.".into(),
        data: [("Status".to_owned(), "Updated".to_owned())].into(),
    };
    let draft = success.clone().draft(&request, &invocation);
    assert_eq!(draft.pointer, "");
    assert_eq!(draft.stack_id, STACK);
    assert_eq!(draft.logical_resource_id, LOGICAL);
    let body: Value = serde_json::from_slice(&draft.encode().body).unwrap();
    assert_eq!(
        body,
        json!({"Status": "SUCCESS", "Reason": "Updated.",
               "PhysicalResourceId": "s-0123456789abcdef0/users/carol",
               "StackId": STACK, "RequestId": "82304eb2-bdda-469f-a33b-a3f1406d0a52",
               "LogicalResourceId": LOGICAL, "Data": {"Status": "Updated"}})
    );

    let failure = Answer {
        status: CfnStatus::Failed,
        physical_resource_id: "failed-create/CarolChroot".into(),
        detail: "NotFound: gone.".into(),
        data: Default::default(),
    };
    let encoded = failure.draft(&request, &invocation).encode();
    assert_eq!(encoded.response.status, CfnStatus::Failed);
    assert_eq!(
        encoded.response.reason,
        "NotFound: gone. See CloudWatch Logs group /aws/lambda/transfer-chroot, \
         stream 2026/01/01/[$LATEST]abc, request lambda-req."
    );
    let body: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert!(body.get("Data").is_none(), "no Data on a failure");
}

#[tokio::test]
async fn create_and_update_answer_success_with_the_targets_id() {
    let c = chroot();
    let carol_id = "s-0123456789abcdef0/users/carol";

    let sent = answer(&c, |url| cfn_event(url, "Create", None, carol())).await;
    assert_eq!(sent["Status"], "SUCCESS");
    assert_eq!(sent["PhysicalResourceId"], carol_id);
    assert_eq!(
        sent["Reason"],
        format!(
            "Updated {carol_id}: HomeDirectoryType, HomeDirectoryMappings, HomeDirectory, \
             PosixProfile changed."
        )
    );
    assert_eq!(
        sent["Data"],
        json!({"ServerId": SERVER, "UserName": "carol", "Status": "Updated",
               "Target": "/acme-sftp/home/carol"})
    );
    assert_eq!(calls_on(&c, &user("carol")), ["DescribeUser", "UpdateUser"]);
    let posix = posix(&c, &user("carol")).unwrap();
    assert_eq!(
        (posix.uid, posix.gid),
        (1003, 1003),
        "string scalars accepted"
    );

    // Replayed as an Update: nothing to write, same id.
    let sent = answer(&c, |url| cfn_event(url, "Update", Some(carol_id), carol())).await;
    assert_eq!(sent["Status"], "SUCCESS");
    assert_eq!(sent["PhysicalResourceId"], carol_id);
    assert_eq!(
        sent["Reason"],
        format!("{carol_id} is already chrooted to /acme-sftp/home/carol.")
    );
    assert_eq!(sent["Data"]["Status"], "Unchanged");
    assert_eq!(c.ports.transfer.writes(), 1);

    // An Update naming another user is a replacement: the new id, the old one left.
    let mut alice = carol();
    alice["UserName"] = json!("alice");
    alice["HomeDirectory"] = json!("/acme-sftp/home/alice");
    let sent = answer(&c, |url| cfn_event(url, "Update", Some(carol_id), alice)).await;
    assert_eq!(
        sent["PhysicalResourceId"],
        "s-0123456789abcdef0/users/alice"
    );
    assert!(
        sent["Reason"]
            .as_str()
            .unwrap()
            .ends_with(&format!(" Replaces {carol_id}, which is left as it is.")),
        "{sent}"
    );
    assert_eq!(
        chroot_dir(&c, &user("carol")).as_deref(),
        Some("/acme-sftp/home/carol")
    );

    // An access: ExternalId makes it UpdateAccess.
    let sent = answer(&c, |url| {
        cfn_event(
            url,
            "Create",
            None,
            json!({"ServerId": DIRECTORY_SERVER, "ExternalId": FINANCE_SID,
                   "HomeDirectory": "/acme-sftp/groups/finance/${transfer:UserName}"}),
        )
    })
    .await;
    assert_eq!(
        sent["PhysicalResourceId"],
        format!("s-00000000000000000/accesses/{FINANCE_SID}")
    );
    assert_eq!(sent["Data"]["ExternalId"], FINANCE_SID);
    assert_eq!(
        calls_on(&c, &access(FINANCE_SID)),
        ["DescribeAccess", "UpdateAccess"]
    );
}

#[tokio::test]
async fn delete_answers_success_and_never_calls_transfer() {
    let carol_id = "s-0123456789abcdef0/users/carol";
    let cases = [
        (
            carol_id,
            carol(),
            format!(
                "Delete leaves {carol_id} as it is: this resource never deletes users or \
                 accesses, nor lifts their chroot."
            ),
        ),
        (
            "failed-create/CarolChroot",
            json!("not even an object"),
            "Nothing to delete: the Create failed, so nothing was created.".to_owned(),
        ),
    ];
    for (id, properties, reason) in cases {
        let c = chroot();
        let sent = answer(&c, |url| cfn_event(url, "Delete", Some(id), properties)).await;
        assert_eq!(sent["Status"], "SUCCESS", "{sent}");
        assert_eq!(sent["PhysicalResourceId"], id);
        assert_eq!(sent["Reason"], reason);
        assert!(c.ports.transfer.calls().is_empty(), "{id}");
        assert_eq!(
            c.ports.transfer.get(&user("carol")),
            Some(path_home("/acme-sftp"))
        );
    }
}

#[tokio::test]
async fn a_failure_answers_failed_with_a_deterministic_id() {
    let carol_id = "s-0123456789abcdef0/users/carol";
    let mut invalid = carol();
    invalid["UserName"] = json!("-carol");
    invalid["HomeDirectoryType"] = json!("PATH");
    let mut outside = carol();
    outside["HomeDirectory"] = json!("/etc/carol");
    let mut nobody = carol();
    nobody["UserName"] = json!("nobody");
    // (request type, physical id, properties, failure, Reason prefix, id answered, calls)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Value,
        Option<TransferErrorKind>,
        &'a str,
        &'a str,
        &'a [&'a str],
    );
    let failed_create = "failed-create/CarolChroot";
    let cases: Vec<Case> = vec![
        (
            "Create",
            None,
            invalid.clone(),
            None,
            "ValidationFailed: 2 invalid fields: HomeDirectoryType, UserName [HomeDirectoryType: ",
            failed_create,
            &[],
        ),
        (
            "Create",
            None,
            outside,
            None,
            "NotAllowed: refused by a guardrail: HomeDirectory [HomeDirectory: ",
            failed_create,
            &[],
        ),
        (
            "Create",
            None,
            json!(["carol"]),
            None,
            "ValidationFailed: ResourceProperties must be an object, got an array.",
            failed_create,
            &[],
        ),
        (
            "Create",
            None,
            nobody,
            None,
            "NotFound: Transfer Family: s-0123456789abcdef0/users/nobody does not exist.",
            failed_create,
            &["DescribeUser"],
        ),
        (
            "Create",
            None,
            carol(),
            Some(TransferErrorKind::Throttled),
            "Throttled: injected Throttled. This is transient: retry the stack operation. \
             AWS request id memory-2.",
            failed_create,
            &["DescribeUser", "UpdateUser"],
        ),
        (
            // A failed Update keeps the resource's id, so CloudFormation rolls back to it.
            "Update",
            Some(carol_id),
            invalid,
            None,
            "ValidationFailed: 2 invalid fields",
            carol_id,
            &[],
        ),
        (
            "Replace",
            None,
            carol(),
            None,
            "unsupported RequestType \"Replace\": expected Create, Update or Delete",
            failed_create,
            &[],
        ),
    ];
    for (request_type, physical, properties, failure, reason, id, ops) in cases {
        let c = chroot();
        if let Some(kind) = failure {
            c.ports.transfer.fail_next_on("UpdateUser", kind);
        }
        let sent = answer(&c, |url| cfn_event(url, request_type, physical, properties)).await;
        assert_eq!(sent["Status"], "FAILED", "{sent}");
        assert_eq!(sent["PhysicalResourceId"], id, "{sent}");
        let got = sent["Reason"].as_str().unwrap();
        assert!(got.starts_with(reason), "{got}");
        assert!(got.ends_with(POINTER), "{got}");
        assert!(sent.get("Data").is_none());
        let made: Vec<&str> = c
            .ports
            .transfer
            .calls()
            .iter()
            .map(|c| c.operation)
            .collect();
        assert_eq!(made, ops, "{reason}");
    }
}

#[tokio::test]
async fn a_request_with_nowhere_to_answer_fails_the_invocation_without_a_call() {
    for url in [
        Value::Null,
        json!("ftp://example.com/r"),
        json!("not a url"),
        // Not the admitted origin, and not CloudFormation's.
        json!("http://127.0.0.1:10/r"),
        json!("https://127.0.0.1:9/r"),
        json!("https://user:pw@s3.amazonaws.com/r"),
    ] {
        let c = chroot();
        let mut event = cfn_event("http://127.0.0.1:9", "Create", None, carol());
        event["ResponseURL"] = url.clone();
        let origins = admitting("http://127.0.0.1:9");
        let e = cloudformation::handle(&c, &responder(), &origins, event, &invocation())
            .await
            .expect_err("unanswerable");
        assert!(matches!(e, HandlerError::Unanswerable(_)), "{url}: {e:?}");
        assert_eq!(e.error_type(), "TransferChroot.Unanswerable");
        assert!(!e.retryable());
        assert!(c.ports.transfer.calls().is_empty(), "{url}");
    }
}

#[tokio::test]
async fn an_undelivered_response_fails_the_invocation_so_lambda_retries() {
    // (endpoint status, PUTs made with two attempts allowed)
    for (status, attempts) in [(403, 1), (500, 2)] {
        let c = chroot();
        let (url, mut rx) = endpoint(status).await;
        let e = cloudformation::handle(
            &c,
            &responder(),
            &admitting(&url),
            cfn_event(&url, "Create", None, carol()),
            &invocation(),
        )
        .await
        .expect_err("not delivered");
        assert!(
            matches!(
                e,
                HandlerError::ResponseNotDelivered {
                    status: "SUCCESS",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.error_type(), "TransferChroot.ResponseNotDelivered");
        assert!(e.retryable());
        assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
        assert_eq!(received(&mut rx).len(), attempts, "HTTP {status}");
        // The work is done; Lambda's retry will find it Unchanged.
        assert_eq!(
            chroot_dir(&c, &user("carol")).as_deref(),
            Some("/acme-sftp/home/carol")
        );
    }
}
