//! The Transfer port: the only way the core reaches AWS Transfer Family.
//!
//! The SDK implementation lives in [`sdk`]; it is the only module that imports
//! `aws_sdk_transfer` types. Tests drive the core through it against the local
//! stand-in, or through any other implementation of [`Transfer`].

pub mod memory;
pub mod pace;
pub mod sdk;

use std::future::Future;
use std::time::Duration;

use serde::{Serialize, Serializer};

pub use crate::domain::Subject;
use crate::domain::{ChrootTarget, ServerId, Settings, Target, TargetKind};

/// `HomeDirectoryType` as Transfer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeDirectoryType {
    Path,
    Logical,
    /// A value this build does not know (reported as it came).
    Other(String),
}

impl HomeDirectoryType {
    pub fn from_wire(raw: &str) -> Self {
        match raw {
            "PATH" => Self::Path,
            "LOGICAL" => Self::Logical,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Path => "PATH",
            Self::Logical => "LOGICAL",
            Self::Other(s) => s,
        }
    }
}

impl Serialize for HomeDirectoryType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A mapping's `Type`; absent means `DIRECTORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingType {
    Directory,
    File,
    Other(String),
}

impl MappingType {
    pub fn from_wire(raw: &str) -> Self {
        match raw {
            "DIRECTORY" => Self::Directory,
            "FILE" => Self::File,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Directory => "DIRECTORY",
            Self::File => "FILE",
            Self::Other(s) => s,
        }
    }
}

impl Serialize for MappingType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One home directory mapping as Transfer stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mapping {
    pub entry: String,
    pub target: String,
    /// `FILE` or `DIRECTORY`; absent means `DIRECTORY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<MappingType>,
}

impl Mapping {
    /// A directory mapping (the type left out, as the chroot writes it).
    pub fn directory(entry: &str, target: &str) -> Self {
        Self {
            entry: entry.to_owned(),
            target: target.to_owned(),
            r#type: None,
        }
    }

    pub fn is_directory(&self) -> bool {
        self.r#type
            .as_ref()
            .is_none_or(|t| *t == MappingType::Directory)
    }
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
    pub home_directory_type: Option<HomeDirectoryType>,
    pub home_directory_mappings: Vec<Mapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posix_profile: Option<LivePosix>,
}

/// The exact UpdateUser / UpdateAccess request, built only from validated values.
/// Optional settings left `None` are not sent, so Transfer leaves them as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    pub target: Target,
    pub chroot: ChrootTarget,
    /// The landing directory. Under the chroot mapping it is a *logical* path, `/`.
    pub home_directory: &'static str,
    pub settings: Settings,
}

impl UpdateRequest {
    /// The single chroot mapping: the user's `/` is the target, nothing above it exists.
    pub fn mappings(&self) -> Vec<Mapping> {
        vec![Mapping::directory("/", self.chroot.as_str())]
    }

    pub fn operation(&self) -> &'static str {
        self.target.action().as_str()
    }
}

/// The request as Transfer's JSON protocol carries it (what results show).
impl Serialize for UpdateRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let settings = &self.settings;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("ServerId", self.target.server.as_str())?;
        m.serialize_entry(self.target.kind().field(), self.target.subject.as_str())?;
        m.serialize_entry("HomeDirectoryType", HomeDirectoryType::Logical.as_str())?;
        m.serialize_entry("HomeDirectoryMappings", &self.mappings())?;
        m.serialize_entry("HomeDirectory", self.home_directory)?;
        if let Some(role) = &settings.role {
            m.serialize_entry("Role", role.as_str())?;
        }
        if let Some(policy) = &settings.policy {
            m.serialize_entry("Policy", policy.as_str())?;
        }
        if let Some(posix) = &settings.posix_profile {
            m.serialize_entry("PosixProfile", posix)?;
        }
        m.end()
    }
}

/// `IdentityProviderType` of a server: who its users are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentityProvider {
    /// Users are Transfer's own (`CreateUser`): the only kind that has users.
    ServiceManaged,
    /// Directory groups (`CreateAccess`, AD SIDs): the only kind that has accesses.
    AwsDirectoryService,
    /// The provider returns the home itself at login: neither applies.
    ApiGateway,
    AwsLambda,
    Other(String),
}

impl IdentityProvider {
    pub fn from_wire(raw: &str) -> Self {
        match raw {
            "SERVICE_MANAGED" => Self::ServiceManaged,
            "AWS_DIRECTORY_SERVICE" => Self::AwsDirectoryService,
            "API_GATEWAY" => Self::ApiGateway,
            "AWS_LAMBDA" => Self::AwsLambda,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::ServiceManaged => "SERVICE_MANAGED",
            Self::AwsDirectoryService => "AWS_DIRECTORY_SERVICE",
            Self::ApiGateway => "API_GATEWAY",
            Self::AwsLambda => "AWS_LAMBDA",
            Self::Other(s) => s,
        }
    }
}

/// Where a server keeps files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StorageDomain {
    S3,
    Efs,
    Other(String),
}

impl StorageDomain {
    pub fn from_wire(raw: &str) -> Self {
        match raw {
            "S3" => Self::S3,
            "EFS" => Self::Efs,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::S3 => "S3",
            Self::Efs => "EFS",
            Self::Other(s) => s,
        }
    }
}

/// What the function needs to know of a server (`DescribeServer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    pub identity_provider: IdentityProvider,
    pub domain: StorageDomain,
    /// S3 `DirectoryListingOptimization` enabled: a logical root need not exist.
    pub directory_listing_optimization: bool,
    /// The server's tags (`Key`, `Value`) as that `DescribeServer` showed them. Unlike
    /// the rest they change: [`crate::servers::ServerCache`] keeps the first read's, the
    /// server scopes ([`crate::scope`]) read them again at each refresh.
    pub tags: Vec<(String, String)>,
}

/// One page of server ids (`ListServers`), and the token of the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerIds {
    pub items: Vec<String>,
    pub next_token: Option<String>,
}

/// Page size of `ListUsers`/`ListAccesses`: the largest the service allows.
pub const LIST_PAGE_SIZE: i32 = 1000;

/// One user or access as `ListUsers`/`ListAccesses` shows it: its name and its home,
/// without mappings (a `LOGICAL` one needs a Describe to show them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The user name or external id, as Transfer holds it (not re-validated).
    pub name: String,
    pub home: LiveHome,
}

/// One page of a listing, and the token of the next (`None`: the last page).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub items: Vec<Listed>,
    pub next_token: Option<String>,
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

/// The Transfer operations this function uses: read a target, write its chroot.
pub trait Transfer: Send + Sync {
    fn describe(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Reply<LiveHome>, TransferError>> + Send;

    fn update(
        &self,
        request: &UpdateRequest,
    ) -> impl Future<Output = Result<Reply<()>, TransferError>> + Send;

    fn describe_server(
        &self,
        server: &ServerId,
    ) -> impl Future<Output = Result<Reply<ServerFacts>, TransferError>> + Send;

    /// One page of the account's servers in the client's region (`ListServers`, the
    /// largest page the service allows), from `next_token`.
    fn list_servers(
        &self,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<Reply<ServerIds>, TransferError>> + Send;

    /// One page of the users (`TargetKind::User`) or accesses of `server`, from
    /// `next_token` (`None`: the first page), [`LIST_PAGE_SIZE`] at most.
    fn list(
        &self,
        server: &ServerId,
        kind: TargetKind,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<Reply<Page>, TransferError>> + Send;
}
