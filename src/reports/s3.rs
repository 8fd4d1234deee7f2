//! [`ReportStore`] with `aws-sdk-s3` (PutObject, GetObject, ListObjectsV2): the same
//! client settings as the home-folder check's (path-style with an endpoint override).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;

use super::{Pending, ReportStore, StoreError};

#[derive(Debug)]
pub struct SdkReports {
    client: Client,
    bucket: String,
}

impl SdkReports {
    /// `bucket`'s reports, through a client made from the shared SDK configuration
    /// (path-style requests when `AWS_ENDPOINT_URL_S3` points at a local S3).
    pub fn from_conf(sdk: &aws_config::SdkConfig, bucket: String) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(std::env::var_os("AWS_ENDPOINT_URL_S3").is_some())
            .build();
        Self::new(Client::from_conf(conf), bucket)
    }

    pub fn new(client: Client, bucket: String) -> Self {
        Self { client, bucket }
    }

    fn error<E>(
        &self,
        operation: &'static str,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let request_id = err.request_id().map(str::to_owned);
        let message = match &err {
            SdkError::ServiceError(s) => format!(
                "S3 answered {} {}",
                s.raw().status().as_u16(),
                s.err().code().unwrap_or("Unknown")
            ),
            SdkError::TimeoutError(_) => "S3 did not answer in time".to_owned(),
            SdkError::DispatchFailure(_) => "S3 could not be reached".to_owned(),
            _ => "the S3 request failed".to_owned(),
        };
        StoreError {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message,
            request_id,
        }
    }
}

impl ReportStore for SdkReports {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Pending<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(body))
                .send()
                .await
                .map(drop)
                .map_err(|e| self.error("PutObject", key, e))
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Vec<u8>, StoreError>> {
        Box::pin(async move {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| self.error("GetObject", key, e))?;
            out.body
                .collect()
                .await
                .map(|b| b.into_bytes().to_vec())
                .map_err(|e| StoreError {
                    operation: "GetObject",
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    message: format!("reading the object: {e}"),
                    request_id: None,
                })
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> Pending<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.error("ListObjectsV2", prefix, e))?;
                keys.extend(
                    out.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned)),
                );
                match out.next_continuation_token() {
                    Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                    _ => break,
                }
            }
            keys.sort();
            Ok(keys)
        })
    }
}
