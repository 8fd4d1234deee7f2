//! The Transfer port: the only way the core reaches AWS Transfer Family.
//!
//! The SDK implementation lives in [`sdk`]; it is the only module that imports
//! `aws_sdk_transfer` types. Tests drive the core through it against the local
//! stand-in, or through any other implementation of [`Transfer`].

pub mod sdk;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::domain::{
    ChrootTarget, ExternalId, PosixProfile, RoleArn, ServerId, SessionPolicy, UserName,
};

/// Who a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    User(UserName),
    Access(ExternalId),
}

/// One home directory mapping as Transfer stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mapping {
    pub entry: String,
    pub target: String,
    /// `FILE` or `DIRECTORY`; absent means `DIRECTORY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// The POSIX profile Transfer holds (not re-validated: it is what is there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LivePosix {
    pub uid: i64,
    pub gid: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secondary_gids: Vec<i64>,
}

/// The home settings of a user or access as DescribeUser / DescribeAccess report them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LiveHome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_directory_type: Option<String>,
    pub home_directory_mappings: Vec<Mapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posix_profile: Option<LivePosix>,
}

/// The exact UpdateUser / UpdateAccess request, built only from validated values.
/// Optional fields left `None` are not sent, so Transfer leaves them as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    pub server: ServerId,
    pub subject: Subject,
    pub target: ChrootTarget,
    /// The landing directory. Under the chroot mapping it is a *logical* path, `/`.
    pub home_directory: &'static str,
    pub role: Option<RoleArn>,
    pub policy: Option<SessionPolicy>,
    pub posix_profile: Option<PosixProfile>,
}

impl UpdateRequest {
    /// The single chroot mapping: the user's `/` is the target, nothing above it exists.
    pub fn mappings(&self) -> Vec<Mapping> {
        vec![Mapping {
            entry: "/".to_owned(),
            target: self.target.as_str().to_owned(),
            r#type: None,
        }]
    }

    pub fn operation(&self) -> &'static str {
        match self.subject {
            Subject::User(_) => "UpdateUser",
            Subject::Access(_) => "UpdateAccess",
        }
    }

    /// The request as Transfer's JSON protocol carries it (what results show).
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert("ServerId".into(), self.server.as_str().into());
        match &self.subject {
            Subject::User(u) => body.insert("UserName".into(), u.as_str().into()),
            Subject::Access(a) => body.insert("ExternalId".into(), a.as_str().into()),
        };
        body.insert("HomeDirectoryType".into(), "LOGICAL".into());
        body.insert(
            "HomeDirectoryMappings".into(),
            serde_json::to_value(self.mappings()).unwrap_or_default(),
        );
        body.insert("HomeDirectory".into(), self.home_directory.into());
        if let Some(role) = &self.role {
            body.insert("Role".into(), role.as_str().into());
        }
        if let Some(policy) = &self.policy {
            body.insert("Policy".into(), policy.as_str().into());
        }
        if let Some(posix) = &self.posix_profile {
            body.insert(
                "PosixProfile".into(),
                serde_json::to_value(posix).unwrap_or_default(),
            );
        }
        body.into()
    }
}

/// A successful call's value with the AWS request id that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub value: T,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TransferErrorKind {
    /// The user, access or server does not exist (ResourceNotFoundException).
    NotFound,
    /// ThrottlingException, after the SDK's retries.
    Throttled,
    /// InvalidRequestException: Transfer refused what we sent.
    InvalidRequest,
    /// Another 4xx Transfer answered with (ResourceExists, AccessDenied, ...).
    Rejected,
    /// 5xx, timeouts, connection failures, unreadable responses, after retries.
    Unavailable,
}

impl TransferErrorKind {
    pub fn retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable)
    }
}

/// A failed Transfer call, classified once, with the request id and the source kept.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {kind:?} ({code}): {message}")]
pub struct TransferError {
    pub operation: &'static str,
    pub kind: TransferErrorKind,
    /// The AWS error code (`ThrottlingException`) or a transport class (`TimeoutError`).
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The four Transfer operations this function uses.
pub trait Transfer: Send + Sync {
    fn describe(
        &self,
        server: &ServerId,
        subject: &Subject,
    ) -> impl Future<Output = Result<Reply<LiveHome>, TransferError>> + Send;

    fn update(
        &self,
        request: &UpdateRequest,
    ) -> impl Future<Output = Result<Reply<()>, TransferError>> + Send;
}
