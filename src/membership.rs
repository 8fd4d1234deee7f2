//! Group membership read from the directory (`IDENTITY_STORE_ID`), and the profile it
//! gives a user: the highest-`Priority` profile whose `Group` is the `DisplayName`
//! (case-insensitive) of a group the user belongs to *now*, else `Default`, else none.
//!
//! Two ways to read it, each bounded:
//! - one user ([`Memberships::choice`]): `IsMemberInGroups` against the profiled
//!   groups' ids (one call per 100 of them), those ids found once and kept
//!   [`PROFILED_GROUPS_TTL`] (a group renamed or recreated is seen within that);
//! - a whole audit run ([`Memberships::read_step`]): the members of each profiled
//!   group, then every user, 100 a page, never one call per Transfer user. What it
//!   keeps is the run's: a member's name and best profile, and a 64-bit hash of every
//!   other directory user's name (enough to tell "in the directory, no profiled group"
//!   from "not a directory user"), so 100,000 users cost a few megabytes.
//!
//! A Transfer user is the directory user of the same `UserName`, compared without
//! regard to case (the Identity Store's own lookups differ on that; the name is what
//! both sides share).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::directory::{Directory, DirectoryError, GROUPS_PER_CHECK};
use crate::domain::{GroupId, UserId};
use crate::profiles::{GroupProfiles, Profile};

/// A directory that could not be read, as a result: `Throttled` or `Upstream`, as
/// retryable as the read was, and nothing written (no write from a guess).
pub fn unread(identity: crate::outcome::Identity, e: &DirectoryError) -> crate::outcome::Outcome {
    use crate::outcome::{ErrorBody, ErrorCode, Outcome};
    let code = if e.throttled {
        ErrorCode::Throttled
    } else {
        ErrorCode::Upstream
    };
    let mut body = ErrorBody::new(
        code,
        format!("{e}: nothing was written (the directory decides, and it could not be read)"),
    );
    body.retryable = e.retryable;
    let mut outcome = Outcome::failed(identity, body);
    outcome.request_id = e.request_id.clone();
    outcome
}

/// How long the profiled groups' ids are taken as read.
pub const PROFILED_GROUPS_TTL: Duration = Duration::from_secs(300);

/// Runs whose reading an execution environment keeps at once.
const RUNS_KEPT: usize = 2;

/// Each profile with a `Group`, by its index in [`GroupProfiles::profiles`] (highest
/// priority first), and the id of that group in the directory.
#[derive(Debug, Clone, Default)]
pub struct ProfiledGroups {
    pub ids: Vec<(GroupId, usize)>,
    /// Profiles whose group the directory does not have.
    pub missing: Vec<String>,
}

/// Which profile a directory user has, and why (for results, findings and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice<'p> {
    /// `None`: no profile matches and no `Default` is configured.
    pub profile: Option<&'p Profile>,
    pub why: String,
}

fn choose<'p>(profiles: &'p GroupProfiles, best: Option<usize>, read: &str) -> Choice<'p> {
    match best.and_then(|i| profiles.profiles().get(i)) {
        Some(p) => Choice {
            profile: Some(p),
            why: format!(
                "member of {} in the directory {read} (priority {})",
                p.label(),
                p.priority().unwrap_or_default()
            ),
        },
        None => match profiles.default_profile() {
            Some(d) => Choice {
                profile: Some(d),
                why: format!("member of no profiled group in the directory {read}: Default"),
            },
            None => Choice {
                profile: None,
                why: format!(
                    "member of no profiled group in the directory {read}, and no Default profile is configured"
                ),
            },
        },
    }
}

fn name_hash(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.to_lowercase().hash(&mut h);
    h.finish()
}

fn id_hash(id: &UserId) -> u64 {
    let mut h = DefaultHasher::new();
    id.as_str().hash(&mut h);
    h.finish()
}

/// A whole directory as one audit run read it.
#[derive(Debug, Default)]
pub struct DirectoryView {
    /// Members of profiled groups: name (lower-case) → best profile.
    members: HashMap<String, usize>,
    /// Every directory user's name, hashed.
    users: HashSet<u64>,
}

impl DirectoryView {
    /// The profile of the Transfer user `name`, or `None` when no directory user has
    /// that name (its home is then judged as without a directory).
    pub fn choice<'p>(&self, profiles: &'p GroupProfiles, name: &str) -> Option<Choice<'p>> {
        let lower = name.to_lowercase();
        match self.members.get(&lower) {
            Some(i) => Some(choose(profiles, Some(*i), "at the run's start")),
            None if self.users.contains(&name_hash(name)) => {
                Some(choose(profiles, None, "at the run's start"))
            }
            None => None,
        }
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }
}

/// Where a run's reading of the directory is.
#[derive(Debug, Clone)]
enum Step {
    /// The members of the `group`-th profiled group, from `token`.
    Members { group: usize, token: Option<String> },
    /// Every user, from `token`.
    Users { token: Option<String> },
}

/// A run's reading of the directory, part way.
#[derive(Debug)]
struct Partial {
    groups: Arc<ProfiledGroups>,
    step: Step,
    /// Member id (hashed) → best profile.
    members: HashMap<u64, usize>,
    view: DirectoryView,
}

impl Partial {
    /// Reads the next page into this reading: `true` once it is the last. A failed read
    /// changes nothing, so the same page is asked again next time.
    async fn advance(&mut self, directory: &dyn Directory) -> Result<bool, DirectoryError> {
        match self.step.clone() {
            Step::Members { group, token } => {
                let Some((id, index)) = self.groups.ids.get(group).cloned() else {
                    self.step = Step::Users { token: None };
                    return Ok(false);
                };
                let page = directory.members(&id, token.as_deref()).await?;
                for member in &page.items {
                    let best = self.members.entry(id_hash(member)).or_insert(index);
                    *best = (*best).min(index);
                }
                self.step = match page.next_token {
                    Some(t) if !page.items.is_empty() => Step::Members {
                        group,
                        token: Some(t),
                    },
                    _ => Step::Members {
                        group: group + 1,
                        token: None,
                    },
                };
                Ok(false)
            }
            Step::Users { token } => {
                let page = directory.users(token.as_deref()).await?;
                for user in &page.items {
                    self.view.users.insert(name_hash(&user.user_name));
                    if let Some(best) = self.members.get(&id_hash(&user.id)) {
                        self.view
                            .members
                            .insert(user.user_name.to_lowercase(), *best);
                    }
                }
                match page.next_token {
                    Some(t) if !page.items.is_empty() => {
                        self.step = Step::Users { token: Some(t) };
                        Ok(false)
                    }
                    _ => Ok(true),
                }
            }
        }
    }
}

#[derive(Debug)]
enum Reading {
    InProgress(Partial),
    Done(Arc<DirectoryView>),
}

/// What an execution environment keeps of the directory.
#[derive(Debug, Default)]
pub struct Memberships {
    groups: Mutex<Option<(Instant, Arc<ProfiledGroups>)>>,
    runs: Mutex<Vec<(String, Reading)>>,
}

impl Memberships {
    /// The profiled groups' ids, read again once [`PROFILED_GROUPS_TTL`] has passed:
    /// `GetGroupId` of each profile's `Group`; for those the directory does not match
    /// as written, its groups listed once and compared without regard to case.
    pub async fn profiled(
        &self,
        directory: &dyn Directory,
        profiles: &GroupProfiles,
    ) -> Result<Arc<ProfiledGroups>, DirectoryError> {
        if let Some((at, groups)) = &*self.groups.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < PROFILED_GROUPS_TTL
        {
            return Ok(groups.clone());
        }
        let mut found = ProfiledGroups::default();
        let mut unmatched: Vec<(usize, &str)> = Vec::new();
        for (i, p) in profiles.profiles().iter().enumerate() {
            let Some(group) = p.group() else { continue };
            match directory.group_id(group).await? {
                Some(id) => found.ids.push((id, i)),
                None => unmatched.push((i, group)),
            }
        }
        if !unmatched.is_empty() {
            let mut token: Option<String> = None;
            loop {
                let page = directory.groups(token.as_deref()).await?;
                for g in page.items {
                    unmatched.retain(|(i, name)| {
                        let same = g.display_name.eq_ignore_ascii_case(name)
                            || g.display_name.to_lowercase() == name.to_lowercase();
                        if same {
                            found.ids.push((g.id.clone(), *i));
                        }
                        !same
                    });
                }
                match page.next_token {
                    Some(t) if !unmatched.is_empty() => token = Some(t),
                    _ => break,
                }
            }
            for (_, name) in &unmatched {
                tracing::warn!(group = %name, "GROUP_PROFILES: the directory has no group of this name; its profile matches no one");
                found.missing.push((*name).to_owned());
            }
        }
        let found = Arc::new(found);
        *self.groups.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), found.clone()));
        Ok(found)
    }

    /// The profile `user` has now: `IsMemberInGroups` against the profiled groups.
    pub async fn choice<'p>(
        &self,
        directory: &dyn Directory,
        profiles: &'p GroupProfiles,
        user: &UserId,
    ) -> Result<Choice<'p>, DirectoryError> {
        let groups = self.profiled(directory, profiles).await?;
        let mut member_of: Vec<GroupId> = Vec::new();
        let ids: Vec<GroupId> = groups.ids.iter().map(|(g, _)| g.clone()).collect();
        for chunk in ids.chunks(GROUPS_PER_CHECK) {
            member_of.extend(directory.member_of(user, chunk).await?);
        }
        let best = groups
            .ids
            .iter()
            .filter(|(g, _)| member_of.contains(g))
            .map(|(_, i)| *i)
            .min();
        Ok(choose(profiles, best, "now"))
    }

    /// The directory as run `run` read it, once its reading is complete.
    pub fn view(&self, run: &str) -> Option<Arc<DirectoryView>> {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find_map(|(r, reading)| match reading {
                Reading::Done(view) if r == run => Some(view.clone()),
                _ => None,
            })
    }

    /// Reads one more page of run `run`'s view of the directory (starting it if this
    /// environment has none for the run): `Ok(Some(view))` once complete. A reading
    /// lives in this execution environment only; a continuation that lands in another
    /// starts it again (docs/PERFORMANCE.md, "The directory").
    pub async fn read_step(
        &self,
        directory: &dyn Directory,
        profiles: &GroupProfiles,
        run: &str,
    ) -> Result<Option<Arc<DirectoryView>>, DirectoryError> {
        let taken = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            runs.iter()
                .position(|(r, _)| r == run)
                .map(|i| runs.remove(i).1)
        };
        let mut partial = match taken {
            Some(Reading::Done(view)) => {
                self.keep(run, Reading::Done(view.clone()));
                return Ok(Some(view));
            }
            Some(Reading::InProgress(partial)) => partial,
            None => Partial {
                groups: self.profiled(directory, profiles).await?,
                step: Step::Members {
                    group: 0,
                    token: None,
                },
                members: HashMap::new(),
                view: DirectoryView::default(),
            },
        };
        match partial.advance(directory).await {
            Ok(true) => {
                let view = Arc::new(partial.view);
                self.keep(run, Reading::Done(view.clone()));
                Ok(Some(view))
            }
            Ok(false) => {
                self.keep(run, Reading::InProgress(partial));
                Ok(None)
            }
            Err(e) => {
                self.keep(run, Reading::InProgress(partial));
                Err(e)
            }
        }
    }

    fn keep(&self, run: &str, reading: Reading) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|(r, _)| r != run);
        runs.push((run.to_owned(), reading));
        while runs.len() > RUNS_KEPT {
            runs.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::memory::{MemoryDirectory, id};
    use crate::domain::Guardrails;

    fn profiles() -> GroupProfiles {
        let guardrails = Guardrails {
            servers: Vec::new(),
            roots: vec![crate::domain::HomeRoot::parse("/acme-sftp").unwrap()],
            roles: None,
            unrooted: None,
        };
        GroupProfiles::parse(
            r#"{"Profiles": [
                {"Group": "sftp-finance", "Priority": 20, "HomeDirectory": "/acme-sftp/finance/${UserName}"},
                {"Group": "SFTP-Partners", "Priority": 10, "HomeDirectory": "/acme-sftp/partners/${UserName}"}],
               "Default": {"HomeDirectory": "/acme-sftp/home/${UserName}"}}"#,
            &guardrails,
        )
        .unwrap()
    }

    fn user(n: u32) -> UserId {
        UserId::parse(&id(1, n)).unwrap()
    }

    fn group(n: u32) -> GroupId {
        GroupId::parse(&id(2, n)).unwrap()
    }

    fn directory() -> MemoryDirectory {
        let d = MemoryDirectory::new()
            .with_user(&user(1), "alice")
            .with_user(&user(2), "bob")
            .with_user(&user(3), "carol")
            .with_group(&group(1), "sftp-finance")
            // The directory spells it otherwise: matched without regard to case.
            .with_group(&group(2), "sftp-partners")
            .with_group(&group(3), "staff");
        d.add(&group(1), &user(1));
        d.add(&group(2), &user(1));
        d.add(&group(2), &user(2));
        d.add(&group(3), &user(3));
        d
    }

    #[tokio::test]
    async fn the_highest_priority_group_of_now_wins_then_default() {
        let d = directory();
        let p = profiles();
        let m = Memberships::default();
        let alice = m.choice(&d, &p, &user(1)).await.unwrap();
        assert_eq!(alice.profile.unwrap().label(), "sftp-finance");
        assert!(
            alice.why.contains("member of sftp-finance"),
            "{}",
            alice.why
        );
        assert_eq!(
            m.choice(&d, &p, &user(2))
                .await
                .unwrap()
                .profile
                .unwrap()
                .label(),
            "SFTP-Partners"
        );
        let carol = m.choice(&d, &p, &user(3)).await.unwrap();
        assert!(carol.profile.unwrap().is_default(), "{carol:?}");
        // Removed from finance: partners now, read at once.
        d.remove(&group(1), &user(1));
        assert_eq!(
            m.choice(&d, &p, &user(1))
                .await
                .unwrap()
                .profile
                .unwrap()
                .label(),
            "SFTP-Partners"
        );
        // The groups' ids were found once (two GetGroupId, one ListGroups for the
        // one spelled otherwise); each choice is one IsMemberInGroups.
        assert_eq!(
            d.calls(),
            [
                "GetGroupId",
                "GetGroupId",
                "ListGroups",
                "IsMemberInGroups",
                "IsMemberInGroups",
                "IsMemberInGroups",
                "IsMemberInGroups"
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_read_is_an_error_not_a_default() {
        let d = directory();
        let p = profiles();
        let m = Memberships::default();
        d.fail_next(1, true);
        let e = m.choice(&d, &p, &user(1)).await.unwrap_err();
        assert!(e.retryable);
    }

    #[tokio::test]
    async fn a_run_reads_members_then_users_a_page_at_a_time() {
        let mut d = MemoryDirectory::new()
            .with_group(&group(1), "sftp-finance")
            .with_group(&group(2), "sftp-partners");
        for n in 0..250 {
            d = d.with_user(&user(n), &format!("User{n}"));
        }
        for n in 0..150 {
            d.add(&group(2), &user(n));
        }
        for n in 100..120 {
            d.add(&group(1), &user(n));
        }
        let p = profiles();
        let m = Memberships::default();
        let mut steps = 0;
        let view = loop {
            steps += 1;
            if let Some(view) = m.read_step(&d, &p, "run-1").await.unwrap() {
                break view;
            }
        };
        // 2 group ids (one listing for the one spelled otherwise), 1 page of finance,
        // 2 of partners, 3 of users.
        let calls = d.calls();
        let count = |op| calls.iter().filter(|c| **c == op).count();
        assert_eq!(count("ListGroupMemberships"), 3, "{calls:?}");
        assert_eq!(count("ListUsers"), 3);
        assert_eq!(count("IsMemberInGroups") + count("DescribeUser"), 0);
        assert!(steps >= 6);
        assert_eq!(view.users(), 250);
        let label = |name: &str| {
            view.choice(&p, name)
                .map(|c| c.profile.map(|p| p.label().to_owned()).unwrap_or_default())
        };
        assert_eq!(
            label("user110").as_deref(),
            Some("sftp-finance"),
            "case-insensitive"
        );
        assert_eq!(label("User5").as_deref(), Some("SFTP-Partners"));
        assert_eq!(label("User200").as_deref(), Some("Default"));
        assert_eq!(label("not-in-the-directory"), None);
        // Kept for the run: no call the second time.
        let before = d.calls().len();
        assert!(m.read_step(&d, &p, "run-1").await.unwrap().is_some());
        assert!(m.view("run-1").is_some());
        assert_eq!(d.calls().len(), before);
    }

    #[tokio::test]
    async fn a_failed_page_is_read_again_and_nothing_is_lost() {
        let d = directory();
        let p = profiles();
        let m = Memberships::default();
        assert!(m.read_step(&d, &p, "r").await.unwrap().is_none());
        d.fail_next(1, true);
        assert!(m.read_step(&d, &p, "r").await.is_err());
        let view = loop {
            if let Some(v) = m.read_step(&d, &p, "r").await.unwrap() {
                break v;
            }
        };
        assert_eq!(
            view.choice(&p, "alice").unwrap().profile.unwrap().label(),
            "sftp-finance"
        );
    }
}
