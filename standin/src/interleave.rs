//! Another writer acting between a client's read and its write.
//!
//! Transfer has no conditional update, so a function that describes a user, decides,
//! then updates it can overwrite what an administrator changed in between. An
//! [`Interleave`] rule makes that happen on cue: its [`Change`] lands right after a
//! chosen successful answer, before the answer is sent. A change is applied as the
//! UpdateUser/UpdateAccess it amounts to, through the same checks and merge (`member`),
//! so it leaves the state Transfer would leave.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{ApiError, OPERATIONS, Recorded, State, UPDATE_FIELDS, lock, member, member_input};

/// A change another writer makes to a user or access (an administrator in the console,
/// another tool): fields merged exactly as UpdateUser/UpdateAccess merges them
/// (`HomeDirectory`, `HomeDirectoryType`, `HomeDirectoryMappings`, `Role`, `Policy`,
/// `PosixProfile`), validated with the same model constraints.
///
/// Exactly one of `user_name` (a user) and `external_id` (an access) names its subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub server_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub set: Map<String, Value>,
}

impl Change {
    /// A change to user `name` on `server` that sets nothing yet.
    pub fn user(server: &str, name: &str) -> Self {
        Self {
            server_id: server.to_owned(),
            user_name: Some(name.to_owned()),
            external_id: None,
            set: Map::new(),
        }
    }

    /// A change to the access for `external_id` on `server` that sets nothing yet.
    pub fn access(server: &str, external_id: &str) -> Self {
        Self {
            server_id: server.to_owned(),
            user_name: None,
            external_id: Some(external_id.to_owned()),
            set: Map::new(),
        }
    }

    /// Also sets `field` to `value`.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.set.insert(field.to_owned(), value);
        self
    }
}

fn one() -> u32 {
    1
}

/// Applies `change` right after the `after`-th successful answer (1 = the next one) to
/// `operation` (optionally only answers to requests naming `subject`, a UserName or
/// ExternalId), counted from when the rule is added. The answer is computed from the
/// state before the change (the client sees the old state) and the change is applied
/// before that answer is sent, so whatever the client does after reading it meets the
/// changed state.
///
/// A faulted, throttled, unsigned or refused request is no answer in this sense: it does
/// not count toward `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Interleave {
    pub operation: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default = "one")]
    pub after: u32,
    pub change: Change,
}

impl Interleave {
    /// `change` right after the next successful answer to `operation`.
    pub fn on(operation: &str, change: Change) -> Self {
        Self {
            operation: operation.to_owned(),
            subject: None,
            after: 1,
            change,
        }
    }

    /// Only answers to requests naming `subject` (a UserName or ExternalId) count.
    pub fn for_subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// After the `n`-th such answer instead of the next one.
    pub fn after(mut self, n: u32) -> Self {
        self.after = n;
        self
    }
}

/// A change as it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppliedChange {
    pub change: Change,
    /// The answer whose rule fired, as `"<Operation> #<n>"`, `n` the answered request's
    /// 1-based place in the request log; `None` for [`crate::StandIn::apply_change`].
    pub trigger: Option<String>,
    /// How many requests were recorded when it was applied: the first `seq` entries of
    /// the request log came before it (a rule's trigger included), the rest after.
    pub seq: u64,
    /// Why a rule's change could not be applied (it then changed nothing).
    #[serde(default)]
    pub error: Option<String>,
    /// The state's version it made (as [`crate::Recorded::version`] counts them).
    #[serde(default)]
    pub version: Option<u64>,
}

/// A rule waiting for its answer, as `GET /_standin/interleave` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Pending {
    #[serde(flatten)]
    rule: Interleave,
    /// Successful answers still to come, the one that fires it included.
    remaining: u32,
}

fn describe(e: ApiError) -> String {
    format!("{}: {}", e.kind, e.message)
}

/// The UpdateUser or UpdateAccess `change` amounts to, and its input. A field an update
/// cannot set is refused rather than ignored: a misspelt field would otherwise make a
/// rule that changes nothing.
fn update_input(change: &Change) -> Result<(&'static str, Map<String, Value>), String> {
    let (operation, key, name) = match (&change.user_name, &change.external_id) {
        (Some(name), None) => ("UpdateUser", "UserName", name),
        (None, Some(id)) => ("UpdateAccess", "ExternalId", id),
        _ => {
            return Err("a change names exactly one of UserName and ExternalId".into());
        }
    };
    if let Some(field) = change
        .set
        .keys()
        .find(|k| !UPDATE_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "a change cannot set {field}; it sets {}",
            UPDATE_FIELDS.join(", ")
        ));
    }
    let mut input = change.set.clone();
    input.insert("ServerId".into(), json!(change.server_id));
    input.insert(key.into(), json!(name));
    Ok((operation, input))
}

/// Applies `change` as its UpdateUser/UpdateAccess would be, all or nothing.
fn apply(state: &State, change: &Change) -> Result<u64, String> {
    let (operation, input) = update_input(change)?;
    member(state, operation, &input)
        .map(|(_, version)| version)
        .map_err(describe)
}

/// Adds `rule` once everything that does not depend on the state checks out (the user
/// may not exist yet when the rule is added; that is checked when it fires).
pub(crate) fn add(state: &State, rule: Interleave) -> Result<(), String> {
    if !OPERATIONS.contains(&rule.operation.as_str()) {
        return Err(format!(
            "unknown operation {}; one of {}",
            rule.operation,
            OPERATIONS.join(", ")
        ));
    }
    if rule.after == 0 {
        return Err("After counts answers from 1 (the next one)".into());
    }
    let (operation, input) = update_input(&rule.change)?;
    member_input(operation, &input).map_err(describe)?;
    let remaining = rule.after;
    lock(&state.interleaves).push(Pending { rule, remaining });
    Ok(())
}

/// Counts a successful answer to `operation` (naming `subject`) against every pending
/// rule; returns the changes of the rules it fires, in the order they were added, and
/// forgets those rules.
pub(crate) fn count(state: &State, operation: &str, subject: Option<&str>) -> Vec<Change> {
    let mut pending = lock(&state.interleaves);
    let mut fired = Vec::new();
    pending.retain_mut(|p| {
        let matches = p.rule.operation == operation
            && p.rule.subject.as_deref().is_none_or(|s| Some(s) == subject);
        if !matches {
            return true;
        }
        p.remaining -= 1;
        if p.remaining > 0 {
            return true;
        }
        fired.push(p.rule.change.clone());
        false
    });
    fired
}

/// Records a request, then applies the changes its answer fired, under the request log's
/// lock so that each change's `seq` says exactly which requests were recorded before it.
/// A change that fails is logged with its error.
pub(crate) fn record(state: &State, record: Recorded, fired: Vec<Change>) {
    let mut requests = lock(&state.requests);
    let operation = (!fired.is_empty()).then(|| record.operation.clone());
    requests.push(record);
    let Some(operation) = operation else {
        return;
    };
    let seq = requests.len() as u64;
    let trigger = format!("{operation} #{seq}");
    for change in fired {
        let applied = apply(state, &change);
        lock(&state.changes).push(AppliedChange {
            change,
            trigger: Some(trigger.clone()),
            seq,
            version: applied.as_ref().ok().copied(),
            error: applied.err(),
        });
    }
}

/// Applies `change` now (no request answered) and logs it; an `Err` changes nothing and
/// is not logged.
pub(crate) fn apply_now(state: &State, change: &Change) -> Result<(), String> {
    let requests = lock(&state.requests);
    let version = apply(state, change)?;
    lock(&state.changes).push(AppliedChange {
        change: change.clone(),
        trigger: None,
        seq: requests.len() as u64,
        version: Some(version),
        error: None,
    });
    Ok(())
}
