//! The directory port: IAM Identity Center's Identity Store, read only, the one place
//! group membership is true (`IDENTITY_STORE_ID`). Events only say who changed; what
//! a user belongs to is read here when a profile is applied.
//!
//! [`store::IdentityStore`] is the real one (the Identity Store's JSON API, signed by
//! [`crate::signed`], paced to IAM Identity Center's collective 20 requests a second,
//! throttling retried); [`memory::MemoryDirectory`] a fake for unit tests. Every id
//! handed to a call is a validated one ([`crate::domain::directory`]).

pub mod memory;
pub mod store;

use std::future::Future;
use std::pin::Pin;

use crate::domain::{DirectoryUserName, GroupId, UserId};

pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The Identity Store's pages: at most 100 items (`MaxResults`).
pub const PAGE: usize = 100;
/// `IsMemberInGroups` takes at most 100 groups.
pub const GROUPS_PER_CHECK: usize = 100;

/// A directory user: its id and its `UserName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: UserId,
    /// As the directory holds it (not necessarily a valid Transfer user name).
    pub user_name: String,
}

/// A directory group: its id and its `DisplayName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub id: GroupId,
    pub display_name: String,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Why a directory read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Identity Store {operation} failed: {message}")]
pub struct DirectoryError {
    pub operation: &'static str,
    pub message: String,
    /// Worth another try later (throttled past the retries, 5xx, no answer).
    pub retryable: bool,
    /// Throttled past the retries (IAM Identity Center's limit).
    pub throttled: bool,
    pub request_id: Option<String>,
}

/// What the function reads of the directory. Not found is an answer (`None`), not an
/// error: a deleted user or group is a fact a trigger must handle.
pub trait Directory: Send + Sync {
    /// `GetUserId` by `UserName`.
    fn user_id<'a>(
        &'a self,
        user_name: &'a DirectoryUserName,
    ) -> Pending<'a, Result<Option<UserId>, DirectoryError>>;

    /// `DescribeUser`.
    fn user<'a>(
        &'a self,
        id: &'a UserId,
    ) -> Pending<'a, Result<Option<DirectoryUser>, DirectoryError>>;

    /// `GetGroupId` by `DisplayName`, as the directory matches it.
    fn group_id<'a>(
        &'a self,
        display_name: &'a str,
    ) -> Pending<'a, Result<Option<GroupId>, DirectoryError>>;

    /// `ListGroups`, one page.
    fn groups<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<DirectoryGroup>, DirectoryError>>;

    /// `IsMemberInGroups`: which of `groups` (at most [`GROUPS_PER_CHECK`]) `user`
    /// belongs to now.
    fn member_of<'a>(
        &'a self,
        user: &'a UserId,
        groups: &'a [GroupId],
    ) -> Pending<'a, Result<Vec<GroupId>, DirectoryError>>;

    /// `ListGroupMemberships` of `group`, one page of its members' ids.
    fn members<'a>(
        &'a self,
        group: &'a GroupId,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<UserId>, DirectoryError>>;

    /// `ListUsers`, one page.
    fn users<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<DirectoryUser>, DirectoryError>>;

    /// Requests sent so far (attempts included), for the logs and the benchmark.
    fn requests(&self) -> u64 {
        0
    }
}
