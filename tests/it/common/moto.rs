//! moto (a real SQS, S3 and Security Hub on loopback, started by scripts/test.sh): its
//! address, and SQS queues and S3 clients on it.

use serde_json::json;

/// The command queue on moto (a real SQS on loopback, started by scripts/test.sh).
pub async fn moto_queue(name: &str) -> (aws_sdk_sqs::Client, String) {
    let endpoint = std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT: run the suite with scripts/test.sh, which starts moto");
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "AKIDMOTO", "moto", None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .build();
    let client = aws_sdk_sqs::Client::from_conf(conf);
    let url = client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let _ = client.purge_queue().queue_url(&url).send().await;
    (client, url)
}

/// A queue with a dead-letter queue behind it (`maxReceiveCount` receives), and a
/// short visibility timeout so a reported record comes back quickly.
pub async fn moto_queue_with_dlq(
    name: &str,
    max_receives: u32,
) -> (aws_sdk_sqs::Client, String, String) {
    let (sqs, dlq) = moto_queue(&format!("{name}-dlq")).await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("arn");
    let (_, url) = moto_queue(name).await;
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "2",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()})
                .to_string(),
        )
        .send()
        .await
        .expect("redrive policy");
    (sqs, url, dlq)
}

/// Messages in the queue, visible or being worked on.
pub async fn in_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|a| attrs.get(a).and_then(|n| n.parse::<u64>().ok()))
    .sum()
}

/// One receive of up to ten messages (a second's long poll), deleting none.
pub async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

/// Receives every visible message of `url` (ten a call, until a call finds none),
/// deleting none: each stays hidden for the queue's visibility timeout.
pub async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    for _ in 0..1_000 {
        let messages = receive(sqs, url).await;
        if messages.is_empty() {
            break;
        }
        all.extend(messages);
    }
    all
}

/// moto's address (`MOTO_ENDPOINT`, set by scripts/test.sh).
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MOTO_ENDPOINT is not set: run the suite with scripts/test.sh, which starts \
             moto_server on 127.0.0.1 (or start one and export MOTO_ENDPOINT=http://127.0.0.1:PORT)"
        )
    })
}

/// An S3 client of `endpoint` (path-style: a loopback endpoint has no bucket hosts).
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDMOTO", "moto", None, None, "tests"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
