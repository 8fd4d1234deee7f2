//! [`Folders`] with `aws-sdk-s3`: the only module that imports S3 SDK types.

use std::sync::OnceLock;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;

use super::{Folder, FolderError, Folders, Pending};

#[derive(Debug)]
pub struct SdkFolders {
    client: Lazy,
}

/// The S3 client: built on the first check rather than at cold start, which most
/// invocations (EFS servers, refusals, accesses) never reach.
#[derive(Debug)]
enum Lazy {
    Ready(Client),
    OnFirstUse {
        sdk: Box<aws_config::SdkConfig>,
        path_style: bool,
        client: OnceLock<Client>,
    },
}

impl SdkFolders {
    /// The S3 client from the shared SDK configuration, built on first use. With an
    /// endpoint override (`AWS_ENDPOINT_URL_S3`, a local S3 such as moto) requests are
    /// path-style, since a loopback endpoint has no per-bucket host names.
    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: Lazy::OnFirstUse {
                sdk: Box::new(sdk.clone()),
                path_style: std::env::var_os("AWS_ENDPOINT_URL_S3").is_some(),
                client: OnceLock::new(),
            },
        }
    }

    pub fn new(client: Client) -> Self {
        Self {
            client: Lazy::Ready(client),
        }
    }

    fn client(&self) -> &Client {
        match &self.client {
            Lazy::Ready(client) => client,
            Lazy::OnFirstUse {
                sdk,
                path_style,
                client,
            } => client.get_or_init(|| {
                let conf = aws_sdk_s3::config::Builder::from(&**sdk)
                    .force_path_style(*path_style)
                    .build();
                Client::from_conf(conf)
            }),
        }
    }
}

fn classify<E>(
    operation: &'static str,
    folder: &Folder,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> FolderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_owned);
    let (message, retryable) = match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("Unknown");
            let message = match service.err().message() {
                Some(m) => format!("S3 answered {status} {code}: {m}"),
                None => format!("S3 answered {status} {code}"),
            };
            (
                message,
                status >= 500 || status == 429 || code == "SlowDown",
            )
        }
        SdkError::TimeoutError(_) => ("S3 did not answer in time".to_owned(), true),
        SdkError::DispatchFailure(_) => ("S3 could not be reached".to_owned(), true),
        SdkError::ResponseError(_) => ("S3's response could not be read".to_owned(), true),
        _ => ("the S3 request could not be sent".to_owned(), false),
    };
    FolderError {
        operation,
        folder: folder.to_string(),
        message,
        retryable,
        request_id,
    }
}

impl Folders for SdkFolders {
    fn exists<'a>(&'a self, folder: &'a Folder) -> Pending<'a, Result<bool, FolderError>> {
        Box::pin(async move {
            match self
                .client()
                .head_object()
                .bucket(&folder.bucket)
                .key(&folder.key)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                // HeadObject has no body: a 404 is "no such key" (or bucket).
                Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(false),
                Err(e) => Err(classify("HeadObject", folder, e)),
            }
        })
    }

    fn create<'a>(&'a self, folder: &'a Folder) -> Pending<'a, Result<(), FolderError>> {
        Box::pin(async move {
            self.client()
                .put_object()
                .bucket(&folder.bucket)
                .key(&folder.key)
                .body(ByteStream::from_static(b""))
                .send()
                .await
                .map(drop)
                .map_err(|e| classify("PutObject", folder, e))
        })
    }
}
