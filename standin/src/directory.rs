//! IAM Identity Center's Identity Store (`identitystore`, API 2020-06-15), on the same
//! listener as Transfer: awsJson1.1, `POST /`, `X-Amz-Target: AWSIdentityStore.<Op>`,
//! SigV4 scoped to `identitystore`. The operations a directory reader calls (GetUserId,
//! DescribeUser, GetGroupId, ListGroups, IsMemberInGroups, ListGroupMemberships,
//! ListUsers) and those that change membership (CreateUser, CreateGroup,
//! CreateGroupMembership, DeleteGroupMembership), with the model's constraints:
//!
//! - `IdentityStoreId` must be the seeded store's: a malformed one is a
//!   `ValidationException`, another well-formed one a `ResourceNotFoundException`
//!   (`ResourceType: IDENTITY_STORE`);
//! - ids are the model's `ResourceId` (`([0-9a-f]{10}-|)` + a UUID): the store's ten
//!   hex digits (for a `d-` store) and a UUID made from the entity's number, so they are
//!   the same for the same seed, and look random (a keyed permutation). An id of another
//!   shape is a `ValidationException`; an unknown one a `ResourceNotFoundException`
//!   with `ResourceType` and `ResourceId`;
//! - `MaxResults` 1..100 (default 100), an opaque `NextToken` bound to its operation
//!   (and group) while entries remain; users and groups come in creation order, a
//!   group's members in their users' order;
//! - `GetUserId`'s `UniqueAttribute` paths `userName` and `emails.value`, `GetGroupId`'s
//!   `displayName` (paths compared without regard to case, as JMESPath-like names are;
//!   values matched exactly, as moto does), or an `ExternalId`;
//! - `IsMemberInGroups` takes 1 to 100 `GroupIds`; a group that does not exist is a
//!   `MembershipExists: false`, an unknown user a `ResourceNotFoundException`;
//! - every error is HTTP 400 with `__type`, `Message` and `RequestId` (the model binds no
//!   other status; `InternalServerException` is 500), and `x-amzn-ErrorType`; a
//!   throttled call is a `ThrottlingException` with `RetryAfterSeconds` (an integer, as
//!   the model has it) and `Retry-After`.
//!
//! Memory: a generated user is its name (no attribute map), a membership a `u32` in
//! its group's set, so 100,000 users and their memberships take a few megabytes.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::seed::{GenerateUsers, SeedError, generate_spec};
use crate::{ApiError, State, check_string, lock, re, token};

/// The request log's prefix of an Identity Store operation: `identitystore:ListUsers`.
pub const PREFIX: &str = "identitystore:";

/// The operations the stand-in implements, as `X-Amz-Target` names them.
pub const OPERATIONS: [&str; 11] = [
    "GetUserId",
    "DescribeUser",
    "GetGroupId",
    "ListGroups",
    "IsMemberInGroups",
    "ListGroupMemberships",
    "ListUsers",
    "CreateUser",
    "CreateGroup",
    "CreateGroupMembership",
    "DeleteGroupMembership",
];

/// A page when the request gives no `MaxResults`.
const DEFAULT_PAGE: usize = 100;

static STORE_ID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
});
static RESOURCE_ID: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}",
    )
});
static USER_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+"));
static DISPLAY_NAME: LazyLock<Regex> =
    LazyLock::new(|| re("[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}\\t\\n\\r \u{a0}]+"));
static ATTRIBUTE_PATH: LazyLock<Regex> = LazyLock::new(|| re(r"\p{L}+(?:\.\p{L}+){0,2}"));

/// Names the model reserves for IAM Identity Center itself.
const RESERVED: [&str; 2] = ["Administrator", "AWSAdministrators"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    User = 1,
    Group = 2,
    Membership = 3,
}

const PAYLOAD: u64 = (1 << 60) - 1;
const KEYS: [u32; 4] = [0x9e37_79b9, 0x7f4a_7c15, 0xf39c_c060, 0x5ced_c834];

fn round(x: u32, k: u32) -> u32 {
    let mut h = x ^ k;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// A Feistel permutation of 64 bits: a distinct, random-looking value per entity.
fn scramble(v: u64) -> u64 {
    let (mut l, mut r) = ((v >> 32) as u32, v as u32);
    for k in KEYS {
        (l, r) = (r, l ^ round(r, k));
    }
    (u64::from(l) << 32) | u64::from(r)
}

fn unscramble(v: u64) -> u64 {
    let (mut l, mut r) = ((v >> 32) as u32, v as u32);
    for k in KEYS.iter().rev() {
        (l, r) = (r ^ round(l, *k), l);
    }
    (u64::from(l) << 32) | u64::from(r)
}

/// The id's other 64 bits: a check that it was made here.
fn check(v: u64) -> u64 {
    let mut z = v ^ 0x6a09_e667_f3bc_c909;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A user of the directory: its name and, unless generated, its other attributes.
struct User {
    name: Box<str>,
    attributes: Option<Box<Map<String, Value>>>,
}

struct Group {
    display_name: String,
    description: Option<String>,
    /// Its members' numbers (in [`Store::users`]).
    members: BTreeSet<u32>,
}

/// One Identity Store, as seeded and changed since.
pub(crate) struct Store {
    id: String,
    /// The store's ten hex digits and `-` (a `d-` store), or nothing (a UUID store).
    prefix: String,
    users: Vec<User>,
    user_by_name: HashMap<Box<str>, u32>,
    groups: Vec<Group>,
    group_by_name: HashMap<String, u32>,
}

impl Store {
    fn new(id: &str) -> Self {
        let prefix = id
            .strip_prefix("d-")
            .map(|h| format!("{h}-"))
            .unwrap_or_default();
        Self {
            id: id.to_owned(),
            prefix,
            users: Vec::new(),
            user_by_name: HashMap::new(),
            groups: Vec::new(),
            group_by_name: HashMap::new(),
        }
    }

    fn make_id(&self, kind: Kind, payload: u64) -> String {
        let v = ((kind as u64) << 60) | (payload & PAYLOAD);
        let (h, c) = (scramble(v), check(v));
        format!(
            "{}{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            self.prefix,
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xffff,
            c >> 48,
            c & 0xffff_ffff_ffff
        )
    }

    /// The payload of an id this store made for `kind`.
    fn parse_id(&self, kind: Kind, id: &str) -> Option<u64> {
        let rest = id.strip_prefix(self.prefix.as_str())?;
        let hex: String = rest.split('-').collect();
        if rest.len() != 36 || hex.len() != 32 {
            return None;
        }
        let h = u64::from_str_radix(&hex[..16], 16).ok()?;
        let c = u64::from_str_radix(&hex[16..], 16).ok()?;
        let v = unscramble(h);
        (check(v) == c && v >> 60 == kind as u64).then_some(v & PAYLOAD)
    }

    fn user_id(&self, n: u32) -> String {
        self.make_id(Kind::User, u64::from(n))
    }

    fn group_id(&self, n: u32) -> String {
        self.make_id(Kind::Group, u64::from(n))
    }

    fn membership_id(&self, group: u32, user: u32) -> String {
        self.make_id(Kind::Membership, (u64::from(group) << 30) | u64::from(user))
    }

    fn user_number(&self, id: &str) -> Option<u32> {
        let n = u32::try_from(self.parse_id(Kind::User, id)?).ok()?;
        ((n as usize) < self.users.len()).then_some(n)
    }

    fn group_number(&self, id: &str) -> Option<u32> {
        let n = u32::try_from(self.parse_id(Kind::Group, id)?).ok()?;
        ((n as usize) < self.groups.len()).then_some(n)
    }

    fn add_user(
        &mut self,
        name: &str,
        attributes: Option<Map<String, Value>>,
    ) -> Result<u32, String> {
        if self.user_by_name.contains_key(name) {
            return Err(format!("a user named {name:?} already exists"));
        }
        let n = u32::try_from(self.users.len())
            .ok()
            .filter(|n| *n < 1 << 30)
            .ok_or("the directory is full")?;
        let name: Box<str> = name.into();
        self.user_by_name.insert(name.clone(), n);
        self.users.push(User {
            name,
            attributes: attributes.filter(|a| !a.is_empty()).map(Box::new),
        });
        Ok(n)
    }

    fn add_group(
        &mut self,
        display_name: &str,
        description: Option<String>,
    ) -> Result<u32, String> {
        if self.group_by_name.contains_key(display_name) {
            return Err(format!("a group named {display_name:?} already exists"));
        }
        let n = u32::try_from(self.groups.len())
            .ok()
            .filter(|n| *n < 1 << 30)
            .ok_or("the directory is full")?;
        self.group_by_name.insert(display_name.to_owned(), n);
        self.groups.push(Group {
            display_name: display_name.to_owned(),
            description,
            members: BTreeSet::new(),
        });
        Ok(n)
    }

    fn user_json(&self, n: u32) -> Value {
        let u = &self.users[n as usize];
        let mut m = Map::new();
        if let Some(a) = &u.attributes {
            m.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        m.insert("UserName".into(), json!(u.name));
        m.insert("UserId".into(), json!(self.user_id(n)));
        m.insert("IdentityStoreId".into(), json!(self.id));
        Value::Object(m)
    }

    fn group_json(&self, n: u32) -> Value {
        let g = &self.groups[n as usize];
        let mut m = Map::new();
        m.insert("GroupId".into(), json!(self.group_id(n)));
        m.insert("DisplayName".into(), json!(g.display_name));
        if let Some(d) = &g.description {
            m.insert("Description".into(), json!(d));
        }
        m.insert("IdentityStoreId".into(), json!(self.id));
        Value::Object(m)
    }

    fn membership_json(&self, group: u32, user: u32) -> Value {
        json!({
            "IdentityStoreId": self.id,
            "MembershipId": self.membership_id(group, user),
            "GroupId": self.group_id(group),
            "MemberId": {"UserId": self.user_id(user)},
        })
    }

    /// `user` (a name) made a member of `group` (a display name), or why not; whether
    /// it was not one already.
    pub(crate) fn set_member(
        &mut self,
        group: &str,
        user: &str,
        member: bool,
    ) -> Result<bool, String> {
        let g = *self
            .group_by_name
            .get(group)
            .ok_or_else(|| format!("no group {group:?} in the directory"))?;
        let u = *self
            .user_by_name
            .get(user)
            .ok_or_else(|| format!("no user {user:?} in the directory"))?;
        let members = &mut self.groups[g as usize].members;
        Ok(if member {
            members.insert(u)
        } else {
            members.remove(&u)
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn user_id_of(&self, name: &str) -> Option<String> {
        self.user_by_name.get(name).map(|n| self.user_id(*n))
    }

    pub(crate) fn group_id_of(&self, display_name: &str) -> Option<String> {
        self.group_by_name
            .get(display_name)
            .map(|n| self.group_id(*n))
    }

    pub(crate) fn member_count(&self, display_name: &str) -> Option<usize> {
        self.group_by_name
            .get(display_name)
            .map(|n| self.groups[*n as usize].members.len())
    }

    pub(crate) fn is_member(&self, group: &str, user: &str) -> Option<bool> {
        let g = self.group_by_name.get(group)?;
        let u = self.user_by_name.get(user)?;
        Some(self.groups[*g as usize].members.contains(u))
    }

    pub(crate) fn create_user(&mut self, name: &str) -> Result<String, String> {
        check_user_name(name)?;
        self.add_user(name, None).map(|n| self.user_id(n))
    }

    pub(crate) fn create_group(&mut self, display_name: &str) -> Result<String, String> {
        check_display_name(display_name)?;
        self.add_group(display_name, None).map(|n| self.group_id(n))
    }

    /// What `GET /_standin/directory` shows.
    pub(crate) fn summary(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .enumerate()
            .map(|(n, g)| {
                json!({"DisplayName": g.display_name, "GroupId": self.group_id(n as u32),
                       "Members": g.members.len()})
            })
            .collect();
        json!({"IdentityStoreId": self.id, "Users": self.users.len(), "Groups": groups})
    }
}

fn check_user_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if !(1..=128).contains(&n) || !USER_NAME.is_match(name) {
        return Err(format!("UserName {name:?} does not satisfy the model"));
    }
    if RESERVED.contains(&name) {
        return Err(format!("UserName {name:?} is reserved"));
    }
    Ok(())
}

fn check_display_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if !(1..=1024).contains(&n) || !DISPLAY_NAME.is_match(name) {
        return Err(format!("DisplayName {name:?} does not satisfy the model"));
    }
    if RESERVED.contains(&name) {
        return Err(format!("DisplayName {name:?} is reserved"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------- seed

fn seed_err(e: impl std::fmt::Display) -> SeedError {
    SeedError::new(format!("Directory: {e}"))
}

fn specs(v: Option<&Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
    }
}

/// The seed's `Directory` (see the crate documentation), if it has one.
pub(crate) fn load(seed: &Value) -> Result<Option<Store>, SeedError> {
    let Some(d) = seed.get("Directory") else {
        return Ok(None);
    };
    let d = d.as_object().ok_or_else(|| seed_err("must be an object"))?;
    let id = d
        .get("IdentityStoreId")
        .and_then(Value::as_str)
        .ok_or_else(|| seed_err("IdentityStoreId is required"))?;
    if id.len() > 36 || !STORE_ID.is_match(id) {
        return Err(seed_err(format!(
            "IdentityStoreId {id:?} is not d- and 10 lower-case hex digits, nor a UUID"
        )));
    }
    let mut store = Store::new(id);
    for user in d
        .get("Users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut u = user
            .as_object()
            .cloned()
            .ok_or_else(|| seed_err("a user must be an object"))?;
        let name = match u.remove("UserName") {
            Some(Value::String(n)) => n,
            _ => return Err(seed_err("a user needs a UserName")),
        };
        u.remove("UserId");
        u.remove("IdentityStoreId");
        check_user_name(&name).map_err(seed_err)?;
        store.add_user(&name, Some(u)).map_err(seed_err)?;
    }
    // Generated users, named as the Transfer side's GenerateUsers names them; each
    // prefix's width is kept for the groups' GenerateMembers.
    let mut widths: Vec<(GenerateUsers, usize)> = Vec::new();
    for spec in specs(d.get("GenerateUsers")) {
        let (spec, width) = generate_spec(spec).map_err(seed_err)?;
        let width = width.unwrap_or(0).max(spec.width());
        if spec.count > 0 {
            if spec.start.checked_add(spec.count as u64 - 1).is_none() {
                return Err(seed_err("GenerateUsers: Start + Count overflows"));
            }
            for name in [spec.name_at(0, width), spec.name_at(spec.count - 1, width)] {
                check_user_name(&name).map_err(|e| seed_err(format!("GenerateUsers: {e}")))?;
            }
        }
        store.users.reserve(spec.count);
        store.user_by_name.reserve(spec.count);
        for i in 0..spec.count {
            store
                .add_user(&spec.name_at(i, width), None)
                .map_err(|e| seed_err(format!("GenerateUsers: {e}")))?;
        }
        widths.push((spec, width));
    }
    for group in d
        .get("Groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let g = group
            .as_object()
            .ok_or_else(|| seed_err("a group must be an object"))?;
        let name = g
            .get("DisplayName")
            .and_then(Value::as_str)
            .ok_or_else(|| seed_err("a group needs a DisplayName"))?;
        check_display_name(name).map_err(seed_err)?;
        let description = g
            .get("Description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let n = store.add_group(name, description).map_err(seed_err)?;
        let mut members = BTreeSet::new();
        for m in g
            .get("Members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let m = m
                .as_str()
                .ok_or_else(|| seed_err(format!("group {name}: a member is a UserName")))?;
            let u = store
                .user_by_name
                .get(m)
                .ok_or_else(|| seed_err(format!("group {name}: no user {m:?}")))?;
            members.insert(*u);
        }
        for spec in specs(g.get("GenerateMembers")) {
            let (spec, width) = generate_spec(spec)
                .map_err(|e| seed_err(format!("group {name}: GenerateMembers: {e}")))?;
            // Named as the directory's generated users of the same prefix are.
            let width = width.unwrap_or_else(|| {
                widths
                    .iter()
                    .find(|(u, _)| {
                        u.prefix == spec.prefix
                            && spec.start >= u.start
                            && spec.start < u.start + u.count as u64
                    })
                    .map_or(spec.width(), |(_, w)| *w)
            });
            for i in 0..spec.count {
                let m = spec.name_at(i, width);
                let u = store.user_by_name.get(m.as_str()).ok_or_else(|| {
                    seed_err(format!("group {name}: GenerateMembers: no user {m:?}"))
                })?;
                members.insert(*u);
            }
        }
        store.groups[n as usize].members = members;
    }
    Ok(Some(store))
}

// ---------------------------------------------------------------------------- errors

fn validation(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 400,
        kind: "ValidationException",
        message: message.into(),
        extra: json!({}),
    }
}

fn not_found(resource_type: &str, id: Option<&str>, message: String) -> ApiError {
    let mut extra = json!({"ResourceType": resource_type});
    if let Some(id) = id {
        extra["ResourceId"] = json!(id);
    }
    ApiError {
        status: 400,
        kind: "ResourceNotFoundException",
        message,
        extra,
    }
}

fn conflict(message: String) -> ApiError {
    ApiError {
        status: 400,
        kind: "ConflictException",
        message,
        extra: json!({"Reason": "UNIQUENESS_CONSTRAINT_VIOLATION"}),
    }
}

/// The model's string checks, as `ValidationException`s.
fn string(
    input: &Map<String, Value>,
    field: &str,
    required: bool,
    len: (usize, usize),
    pattern: Option<&Regex>,
) -> Result<Option<String>, ApiError> {
    check_string(input, field, required, len, pattern).map_err(|e| ApiError {
        kind: "ValidationException",
        ..e
    })
}

fn resource_id(input: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    Ok(string(input, field, true, (1, 47), Some(&RESOURCE_ID))?.unwrap_or_default())
}

fn max_results(input: &Map<String, Value>) -> Result<usize, ApiError> {
    match input.get("MaxResults") {
        None | Some(Value::Null) => Ok(DEFAULT_PAGE),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(m @ 1..=100) => Ok(m as usize),
            _ => Err(validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
                 constraint: Member must have value between 1 and 100"
            ))),
        },
        Some(_) => Err(validation("MaxResults must be an integer")),
    }
}

/// The position a `NextToken` resumes after, for `operation` in `scope`.
fn resume(
    state: &State,
    input: &Map<String, Value>,
    operation: &str,
    scope: &str,
) -> Result<Option<u32>, ApiError> {
    let Some(t) = string(input, "NextToken", false, (1, 65535), None)? else {
        return Ok(None);
    };
    let after =
        token::decode(&state.token_key, &t, operation, scope).map_err(|e| validation(e.message))?;
    after
        .parse()
        .map(Some)
        .map_err(|_| validation("Invalid NextToken: malformed"))
}

fn next_token(state: &State, operation: &str, scope: &str, after: Option<u32>) -> Option<String> {
    after.map(|a| token::encode(&state.token_key, operation, scope, &a.to_string()))
}

fn paged(mut out: Value, token: Option<String>) -> Value {
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    out
}

/// One page of `items` (ascending) after `after`: the page and the last one's number
/// when more remain. `items` may start anywhere before the first one after `after`.
fn page(
    items: impl Iterator<Item = u32>,
    after: Option<u32>,
    max: usize,
) -> (Vec<u32>, Option<u32>) {
    let mut rest = items
        .skip_while(|n| after.is_some_and(|a| *n <= a))
        .peekable();
    let out: Vec<u32> = rest.by_ref().take(max).collect();
    let next = rest.peek().and(out.last().copied());
    (out, next)
}

/// An `AlternateIdentifier`: `UniqueAttribute` (its path, lower-cased, and value) or
/// `ExternalId` (issuer, id).
enum Alternate {
    Unique(String, Value),
    External(String, String),
}

fn alternate(input: &Map<String, Value>) -> Result<Alternate, ApiError> {
    let a = match input.get("AlternateIdentifier") {
        Some(Value::Object(a)) => a,
        None => return Err(validation("AlternateIdentifier is required")),
        Some(_) => return Err(validation("AlternateIdentifier must be an object")),
    };
    match (a.get("UniqueAttribute"), a.get("ExternalId")) {
        (Some(Value::Object(u)), None) => {
            let path = string(u, "AttributePath", true, (1, 255), Some(&ATTRIBUTE_PATH))?
                .unwrap_or_default();
            let value = u
                .get("AttributeValue")
                .cloned()
                .ok_or_else(|| validation("UniqueAttribute.AttributeValue is required"))?;
            Ok(Alternate::Unique(path.to_lowercase(), value))
        }
        (None, Some(Value::Object(x))) => {
            let issuer = string(x, "Issuer", true, (1, 100), None)?.unwrap_or_default();
            let id = string(x, "Id", true, (1, 256), None)?.unwrap_or_default();
            Ok(Alternate::External(issuer, id))
        }
        _ => Err(validation(
            "AlternateIdentifier is a union: exactly one of UniqueAttribute and ExternalId",
        )),
    }
}

fn has_external_id(attributes: Option<&Map<String, Value>>, issuer: &str, id: &str) -> bool {
    attributes
        .and_then(|a| a.get("ExternalIds"))
        .and_then(Value::as_array)
        .is_some_and(|ids| {
            ids.iter().any(|x| {
                x.get("Issuer").and_then(Value::as_str) == Some(issuer)
                    && x.get("Id").and_then(Value::as_str) == Some(id)
            })
        })
}

/// The deprecated `Filters` of ListUsers/ListGroups: at most one, on `field`.
fn filter(input: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    let Some(f) = input.get("Filters") else {
        return Ok(None);
    };
    let list = f
        .as_array()
        .ok_or_else(|| validation("Filters must be a list"))?;
    match list.as_slice() {
        [] => Ok(None),
        [one] => {
            let o = one
                .as_object()
                .ok_or_else(|| validation("a Filter must be an object"))?;
            let path = string(o, "AttributePath", true, (1, 255), Some(&ATTRIBUTE_PATH))?
                .unwrap_or_default();
            if !path.eq_ignore_ascii_case(field) {
                return Err(validation(format!(
                    "Filters: only {field} can be filtered on"
                )));
            }
            Ok(string(o, "AttributeValue", true, (1, 1024), None)?)
        }
        _ => Err(validation("Filters: at most 1")),
    }
}

fn member_user(input: &Map<String, Value>) -> Result<String, ApiError> {
    match input.get("MemberId") {
        Some(Value::Object(m)) => resource_id(m, "UserId"),
        None => Err(validation("MemberId is required")),
        Some(_) => Err(validation("MemberId must be an object")),
    }
}

fn unknown_user(id: &str) -> ApiError {
    not_found("USER", Some(id), format!("USER not found: {id}"))
}

fn unknown_group(id: &str) -> ApiError {
    not_found("GROUP", Some(id), format!("GROUP not found: {id}"))
}

// ---------------------------------------------------------------------------- operations

/// One Identity Store operation (`operation` without the prefix) on the seeded store.
pub(crate) fn operate(
    state: &State,
    operation: &str,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let id = string(input, "IdentityStoreId", true, (1, 36), Some(&STORE_ID))?.unwrap_or_default();
    let mut guard = lock(&state.directory);
    let store = match guard.as_mut() {
        Some(s) if s.id == id => s,
        _ => {
            return Err(not_found(
                "IDENTITY_STORE",
                None,
                format!("Identity store {id} does not exist"),
            ));
        }
    };
    let logged = format!("{PREFIX}{operation}");
    match operation {
        "GetUserId" => {
            let n = match alternate(input)? {
                Alternate::Unique(path, value) => {
                    let value = value
                        .as_str()
                        .ok_or_else(|| validation("AttributeValue must be a string"))?;
                    match path.as_str() {
                        "username" => store.user_by_name.get(value).copied(),
                        "emails.value" => (0..store.users.len() as u32).find(|n| {
                            store.users[*n as usize]
                                .attributes
                                .as_deref()
                                .and_then(|a| a.get("Emails"))
                                .and_then(Value::as_array)
                                .is_some_and(|e| {
                                    e.iter().any(|e| {
                                        e.get("Value").and_then(Value::as_str) == Some(value)
                                    })
                                })
                        }),
                        _ => {
                            return Err(validation(format!(
                                "{path} is not a unique attribute of a user: userName or emails.value"
                            )));
                        }
                    }
                }
                Alternate::External(issuer, xid) => (0..store.users.len() as u32).find(|n| {
                    has_external_id(
                        store.users[*n as usize].attributes.as_deref(),
                        &issuer,
                        &xid,
                    )
                }),
            };
            let n = n.ok_or_else(|| not_found("USER", None, "USER not found".into()))?;
            Ok(json!({"UserId": store.user_id(n), "IdentityStoreId": store.id}))
        }
        "DescribeUser" => {
            let uid = resource_id(input, "UserId")?;
            let n = store.user_number(&uid).ok_or_else(|| unknown_user(&uid))?;
            Ok(store.user_json(n))
        }
        "GetGroupId" => {
            let n = match alternate(input)? {
                Alternate::Unique(path, value) => {
                    if path != "displayname" {
                        return Err(validation(format!(
                            "{path} is not a unique attribute of a group: displayName"
                        )));
                    }
                    let value = value
                        .as_str()
                        .ok_or_else(|| validation("AttributeValue must be a string"))?;
                    store.group_by_name.get(value).copied()
                }
                Alternate::External(..) => None,
            };
            let n = n.ok_or_else(|| not_found("GROUP", None, "GROUP not found".into()))?;
            Ok(json!({"GroupId": store.group_id(n), "IdentityStoreId": store.id}))
        }
        "ListGroups" => {
            let max = max_results(input)?;
            let only = filter(input, "DisplayName")?;
            let after = resume(state, input, &logged, &store.id)?;
            let all = (0..store.groups.len() as u32).filter(|n| {
                only.as_deref()
                    .is_none_or(|d| store.groups[*n as usize].display_name == d)
            });
            let (items, next) = page(all, after, max);
            let groups: Vec<Value> = items.iter().map(|n| store.group_json(*n)).collect();
            Ok(paged(
                json!({"Groups": groups}),
                next_token(state, &logged, &store.id, next),
            ))
        }
        "ListUsers" => {
            let max = max_results(input)?;
            let only = filter(input, "UserName")?;
            let after = resume(state, input, &logged, &store.id)?;
            let (items, next) = match &only {
                // One user at most.
                Some(name) => (
                    store
                        .user_by_name
                        .get(name.as_str())
                        .copied()
                        .into_iter()
                        .collect(),
                    None,
                ),
                None => page(
                    after.map_or(0, |a| a.saturating_add(1))..store.users.len() as u32,
                    after,
                    max,
                ),
            };
            let users: Vec<Value> = items.iter().map(|n| store.user_json(*n)).collect();
            Ok(paged(
                json!({"Users": users}),
                next_token(state, &logged, &store.id, next),
            ))
        }
        "IsMemberInGroups" => {
            let uid = member_user(input)?;
            let ids = match input.get("GroupIds") {
                Some(Value::Array(ids)) if (1..=100).contains(&ids.len()) => ids,
                Some(Value::Array(ids)) => {
                    return Err(validation(format!(
                        "1 validation error detected: Value at 'groupIds' failed to satisfy \
                         constraint: Member must have length between 1 and 100 (got {})",
                        ids.len()
                    )));
                }
                None => return Err(validation("GroupIds is required")),
                Some(_) => return Err(validation("GroupIds must be a list")),
            };
            let mut groups = Vec::with_capacity(ids.len());
            for g in ids {
                let g = g
                    .as_str()
                    .ok_or_else(|| validation("a GroupId must be a string"))?;
                if g.len() > 47 || !RESOURCE_ID.is_match(g) {
                    return Err(validation(format!(
                        "GroupId {g:?} does not satisfy the model"
                    )));
                }
                groups.push(g);
            }
            let n = store.user_number(&uid).ok_or_else(|| unknown_user(&uid))?;
            let results: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let exists = store
                        .group_number(g)
                        .is_some_and(|gn| store.groups[gn as usize].members.contains(&n));
                    json!({"GroupId": g, "MemberId": {"UserId": uid}, "MembershipExists": exists})
                })
                .collect();
            Ok(json!({"Results": results}))
        }
        "ListGroupMemberships" => {
            let gid = resource_id(input, "GroupId")?;
            let max = max_results(input)?;
            let g = store
                .group_number(&gid)
                .ok_or_else(|| unknown_group(&gid))?;
            let after = resume(state, input, &logged, &gid)?;
            let group = &store.groups[g as usize];
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            let (items, next) = page(
                group.members.range((from, Bound::Unbounded)).copied(),
                after,
                max,
            );
            let memberships: Vec<Value> =
                items.iter().map(|u| store.membership_json(g, *u)).collect();
            Ok(paged(
                json!({"GroupMemberships": memberships}),
                next_token(state, &logged, &gid, next),
            ))
        }
        "CreateUser" => {
            let name =
                string(input, "UserName", true, (1, 128), Some(&USER_NAME))?.unwrap_or_default();
            if RESERVED.contains(&name.as_str()) {
                return Err(validation(format!("UserName {name} is reserved")));
            }
            if store.user_by_name.contains_key(name.as_str()) {
                return Err(conflict(format!("Duplicate UserName: {name}")));
            }
            let mut attributes = input.clone();
            for k in ["IdentityStoreId", "UserName", "UserId"] {
                attributes.remove(k);
            }
            let n = store
                .add_user(&name, Some(attributes))
                .map_err(validation)?;
            Ok(json!({"UserId": store.user_id(n), "IdentityStoreId": store.id}))
        }
        "CreateGroup" => {
            let name = string(input, "DisplayName", true, (1, 1024), Some(&DISPLAY_NAME))?
                .unwrap_or_default();
            if RESERVED.contains(&name.as_str()) {
                return Err(validation(format!("DisplayName {name} is reserved")));
            }
            if store.group_by_name.contains_key(name.as_str()) {
                return Err(conflict(format!("Duplicate GroupDisplayName: {name}")));
            }
            let description = string(input, "Description", false, (1, 1024), None)?;
            let n = store.add_group(&name, description).map_err(validation)?;
            Ok(json!({"GroupId": store.group_id(n), "IdentityStoreId": store.id}))
        }
        "CreateGroupMembership" => {
            let gid = resource_id(input, "GroupId")?;
            let uid = member_user(input)?;
            let g = store
                .group_number(&gid)
                .ok_or_else(|| unknown_group(&gid))?;
            let u = store.user_number(&uid).ok_or_else(|| unknown_user(&uid))?;
            if !store.groups[g as usize].members.insert(u) {
                return Err(conflict(format!("Member {uid} is already in group {gid}")));
            }
            Ok(json!({"MembershipId": store.membership_id(g, u), "IdentityStoreId": store.id}))
        }
        "DeleteGroupMembership" => {
            let mid = resource_id(input, "MembershipId")?;
            let gone = || {
                not_found(
                    "GROUP_MEMBERSHIP",
                    Some(&mid),
                    format!("GROUP_MEMBERSHIP not found: {mid}"),
                )
            };
            let v = store.parse_id(Kind::Membership, &mid).ok_or_else(gone)?;
            let (g, u) = ((v >> 30) as u32, (v & ((1 << 30) - 1)) as u32);
            let removed = store
                .groups
                .get_mut(g as usize)
                .is_some_and(|group| group.members.remove(&u));
            if !removed {
                return Err(gone());
            }
            Ok(json!({}))
        }
        other => Err(ApiError {
            status: 400,
            kind: "UnknownOperationException",
            message: format!("the stand-in does not implement AWSIdentityStore.{other}"),
            extra: json!({}),
        }),
    }
}

/// The subject of a request (for fault rules): the user or group it names.
pub(crate) fn subject(input: &Map<String, Value>) -> Option<String> {
    [
        "UserId",
        "GroupId",
        "MembershipId",
        "UserName",
        "DisplayName",
    ]
    .iter()
    .find_map(|k| input.get(*k).and_then(Value::as_str))
    .or_else(|| {
        input
            .get("MemberId")
            .and_then(|m| m.get("UserId"))
            .and_then(Value::as_str)
    })
    .or_else(|| {
        input
            .get("AlternateIdentifier")
            .and_then(|a| a.pointer("/UniqueAttribute/AttributeValue"))
            .and_then(Value::as_str)
    })
    .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_model_and_read_back() {
        let s = Store::new("d-9067a1b2c3");
        let mut seen = std::collections::HashSet::new();
        for n in [0u32, 1, 2, 99_999, (1 << 30) - 1] {
            for (kind, id) in [(Kind::User, s.user_id(n)), (Kind::Group, s.group_id(n))] {
                assert!(RESOURCE_ID.is_match(&id) && id.len() <= 47, "{id}");
                assert!(id.starts_with("9067a1b2c3-"), "{id}");
                assert_eq!(s.parse_id(kind, &id), Some(u64::from(n)));
                assert!(seen.insert(id));
            }
        }
        let m = s.membership_id(3, 77);
        assert_eq!(s.parse_id(Kind::Membership, &m), Some((3 << 30) | 77));
        // Another kind's id, another store's, an edited one: not ours.
        assert_eq!(s.parse_id(Kind::Group, &s.user_id(5)), None);
        assert_eq!(
            Store::new("d-0000000000").parse_id(Kind::User, &s.user_id(5)),
            None
        );
        let mut edited = s.user_id(5).into_bytes();
        let last = edited.len() - 1;
        edited[last] = if edited[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            s.parse_id(Kind::User, &String::from_utf8(edited).unwrap()),
            None
        );
        // Upper-case hex is the same id.
        let id = s.user_id(7);
        let (p, rest) = id.split_at(11);
        assert_eq!(
            s.parse_id(Kind::User, &format!("{p}{}", rest.to_uppercase())),
            Some(7)
        );
        // A UUID store: ids without the prefix.
        let u = Store::new("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
        assert_eq!(u.user_id(1).len(), 36);
        assert!(RESOURCE_ID.is_match(&u.user_id(1)));
    }

    #[test]
    fn the_permutation_is_one() {
        for v in [0u64, 1, 42, u64::MAX, 1 << 60 | 12345] {
            assert_eq!(unscramble(scramble(v)), v);
        }
    }

    #[test]
    fn pages_resume_after_a_position() {
        let (p, next) = page(0..250u32, None, 100);
        assert_eq!((p.len(), next), (100, Some(99)));
        let (p, next) = page(0..250u32, Some(199), 100);
        assert_eq!((p.first().copied(), p.len(), next), (Some(200), 50, None));
        let (p, next) = page(0..200u32, Some(99), 100);
        assert_eq!((p.len(), next), (100, None), "no empty last page");
        let (p, next) = page([3u32, 9, 12].into_iter(), Some(5), 1);
        assert_eq!((p, next), (vec![9], Some(9)));
    }
}
