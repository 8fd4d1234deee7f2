//! An in-memory [`Directory`]: users, groups and memberships, a record of the calls,
//! and failures on demand. Pages are [`PAGE`] long, as the Identity Store's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{Directory, DirectoryError, DirectoryGroup, DirectoryUser, PAGE, Page, Pending};
use crate::domain::{DirectoryUserName, GroupId, UserId};

#[derive(Debug, Default)]
struct State {
    /// id → user name, in id order (the listing's).
    users: BTreeMap<UserId, String>,
    groups: BTreeMap<GroupId, String>,
    /// (group, user).
    memberships: BTreeSet<(GroupId, UserId)>,
    calls: Vec<&'static str>,
    /// The next this many calls fail (retryable or not).
    failing: Option<(usize, bool)>,
}

#[derive(Debug, Default)]
pub struct MemoryDirectory {
    state: Mutex<State>,
}

/// A well-formed id numbered `n` (`prefix` tells users from groups apart).
pub fn id(prefix: u32, n: u32) -> String {
    format!("9067a1b2c3-{prefix:08x}-0000-4000-8000-{n:012x}")
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn with_user(self, id: &UserId, user_name: &str) -> Self {
        self.lock().users.insert(id.clone(), user_name.to_owned());
        self
    }

    pub fn with_group(self, id: &GroupId, display_name: &str) -> Self {
        self.lock()
            .groups
            .insert(id.clone(), display_name.to_owned());
        self
    }

    pub fn add(&self, group: &GroupId, user: &UserId) {
        self.lock()
            .memberships
            .insert((group.clone(), user.clone()));
    }

    pub fn remove(&self, group: &GroupId, user: &UserId) {
        self.lock()
            .memberships
            .remove(&(group.clone(), user.clone()));
    }

    /// The next `n` calls fail, retryably or not.
    pub fn fail_next(&self, n: usize, retryable: bool) {
        self.lock().failing = Some((n, retryable));
    }

    /// The operations called, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    fn enter(
        &self,
        operation: &'static str,
    ) -> Result<std::sync::MutexGuard<'_, State>, DirectoryError> {
        let mut state = self.lock();
        state.calls.push(operation);
        if let Some((n, retryable)) = state.failing {
            state.failing = (n > 1).then_some((n - 1, retryable));
            return Err(DirectoryError {
                operation,
                message: "injected failure".into(),
                retryable,
                throttled: false,
                request_id: None,
            });
        }
        Ok(state)
    }
}

/// Items after `token` (an index), one page of them.
fn page<T: Clone>(all: Vec<T>, token: Option<&str>) -> Page<T> {
    let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
    let items: Vec<T> = all.iter().skip(start).take(PAGE).cloned().collect();
    let next = start + items.len();
    Page {
        next_token: (next < all.len()).then(|| next.to_string()),
        items,
    }
}

impl Directory for MemoryDirectory {
    fn user_id<'a>(
        &'a self,
        user_name: &'a DirectoryUserName,
    ) -> Pending<'a, Result<Option<UserId>, DirectoryError>> {
        Box::pin(async move {
            let state = self.enter("GetUserId")?;
            Ok(state
                .users
                .iter()
                .find(|(_, n)| n.as_str() == user_name.as_str())
                .map(|(id, _)| id.clone()))
        })
    }

    fn user<'a>(
        &'a self,
        id: &'a UserId,
    ) -> Pending<'a, Result<Option<DirectoryUser>, DirectoryError>> {
        Box::pin(async move {
            let state = self.enter("DescribeUser")?;
            Ok(state.users.get(id).map(|n| DirectoryUser {
                id: id.clone(),
                user_name: n.clone(),
            }))
        })
    }

    fn group_id<'a>(
        &'a self,
        display_name: &'a str,
    ) -> Pending<'a, Result<Option<GroupId>, DirectoryError>> {
        Box::pin(async move {
            let state = self.enter("GetGroupId")?;
            Ok(state
                .groups
                .iter()
                .find(|(_, n)| n.as_str() == display_name)
                .map(|(id, _)| id.clone()))
        })
    }

    fn groups<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<DirectoryGroup>, DirectoryError>> {
        Box::pin(async move {
            let state = self.enter("ListGroups")?;
            let all = state
                .groups
                .iter()
                .map(|(id, n)| DirectoryGroup {
                    id: id.clone(),
                    display_name: n.clone(),
                })
                .collect();
            Ok(page(all, token))
        })
    }

    fn member_of<'a>(
        &'a self,
        user: &'a UserId,
        groups: &'a [GroupId],
    ) -> Pending<'a, Result<Vec<GroupId>, DirectoryError>> {
        Box::pin(async move {
            let state = self.enter("IsMemberInGroups")?;
            Ok(groups
                .iter()
                .filter(|g| state.memberships.contains(&((*g).clone(), user.clone())))
                .cloned()
                .collect())
        })
    }

    fn members<'a>(
        &'a self,
        group: &'a GroupId,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<UserId>, DirectoryError>> {
        Box::pin(async move {
            let state = self.enter("ListGroupMemberships")?;
            let all = state
                .memberships
                .iter()
                .filter(|(g, _)| g == group)
                .map(|(_, u)| u.clone())
                .collect();
            Ok(page(all, token))
        })
    }

    fn users<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<Page<DirectoryUser>, DirectoryError>> {
        Box::pin(async move {
            let state = self.enter("ListUsers")?;
            let all = state
                .users
                .iter()
                .map(|(id, n)| DirectoryUser {
                    id: id.clone(),
                    user_name: n.clone(),
                })
                .collect();
            Ok(page(all, token))
        })
    }

    fn requests(&self) -> u64 {
        self.lock().calls.len() as u64
    }
}
