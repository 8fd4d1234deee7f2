//! Seeds (the format is in the crate documentation): servers with their attributes,
//! users and accesses, and generated fleets of users.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{EXTERNAL_ID, HOME_DIRECTORY, MAP_PATH, ROLE, SERVER_ID, ServerState, Tag};

/// A seed the stand-in cannot load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError(String);

impl SeedError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for SeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seed: {}", self.0)
    }
}

impl std::error::Error for SeedError {}

impl From<SeedError> for std::io::Error {
    fn from(e: SeedError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Users keyed by name, ready to merge into a server.
pub(crate) type Entries = Vec<(String, Map<String, Value>)>;

const IDENTITY_PROVIDER_TYPES: &[&str] = &[
    "SERVICE_MANAGED",
    "API_GATEWAY",
    "AWS_DIRECTORY_SERVICE",
    "AWS_LAMBDA",
];
const DOMAINS: &[&str] = &["S3", "EFS"];
const LISTING_OPTIMIZATION: &[&str] = &["DISABLED", "ENABLED"];
const STATES: &[&str] = &[
    "ONLINE",
    "OFFLINE",
    "STARTING",
    "STOPPING",
    "START_FAILED",
    "STOP_FAILED",
];
const ENDPOINT_TYPES: &[&str] = &["PUBLIC", "VPC", "VPC_ENDPOINT"];

/// The service model's `UserName` (`[\w][\w@.-]{2,99}`, Java's ASCII `\w`), checked
/// byte by byte: the same answer as [`crate::USER_NAME`] at a fraction of the cost, for
/// seeding large fleets.
pub(crate) fn user_name_ok(name: &str) -> bool {
    let b = name.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    (3..=100).contains(&b.len())
        && word(&b[0])
        && b[1..]
            .iter()
            .all(|c| word(c) || matches!(c, b'@' | b'.' | b'-'))
}

fn role_ok(role: &str) -> bool {
    (20..=2048).contains(&role.chars().count()) && ROLE.is_match(role)
}

/// `Count` users named `Prefix` + a zero-padded number from `Start` (all the same
/// width, so name order is number order: `user000001`..`user100000`; in a seed, an
/// optional `Width` pads them to at least that many digits), each with
/// `HomeDirectoryType`, `HomeDirectory` (`${UserName}` replaced by the name) and
/// `Role`. A LOGICAL user gets `HomeDirectory: "/"` and the one mapping
/// `{"Entry": "/", "Target": <HomeDirectory>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateUsers {
    pub count: usize,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default = "one")]
    pub start: u64,
    #[serde(default = "default_home_type")]
    pub home_directory_type: String,
    #[serde(default = "default_home")]
    pub home_directory: String,
    #[serde(default = "default_role")]
    pub role: String,
}

fn default_prefix() -> String {
    "user".to_owned()
}
fn one() -> u64 {
    1
}
fn default_home_type() -> String {
    "PATH".to_owned()
}
fn default_home() -> String {
    "/acme-sftp/home/${UserName}".to_owned()
}
fn default_role() -> String {
    "arn:aws:iam::111122223333:role/sftp-user".to_owned()
}

impl GenerateUsers {
    /// `count` PATH users `user1..`, homes `/acme-sftp/home/<name>`, role `sftp-user`.
    pub fn new(count: usize) -> Self {
        Self {
            count,
            prefix: default_prefix(),
            start: one(),
            home_directory_type: default_home_type(),
            home_directory: default_home(),
            role: default_role(),
        }
    }

    /// How many digits the numbers take: those of the last one.
    pub(crate) fn width(&self) -> usize {
        let last = self
            .start
            .saturating_add(self.count.saturating_sub(1) as u64);
        last.checked_ilog10().map_or(1, |d| d as usize + 1)
    }

    /// The name of the `i`-th generated user (from 0).
    pub fn name(&self, i: usize) -> String {
        self.name_at(i, self.width())
    }

    /// The name of the `i`-th generated user, its number padded to `width` digits.
    pub(crate) fn name_at(&self, i: usize, width: usize) -> String {
        format!("{}{:0width$}", self.prefix, self.start + i as u64)
    }

    fn home(&self, name: &str) -> String {
        self.home_directory.replace("${UserName}", name)
    }

    /// The users, in name order, after checking the spec once against the model: every
    /// name has the same length and differs only in digits, so the first and the last
    /// stand for all.
    pub(crate) fn users(&self) -> Result<Entries, SeedError> {
        self.users_padded(None)
    }

    /// [`users`](Self::users), the numbers padded to at least `width` digits (a seed's
    /// `Width`: one range of a larger fleet, named as the whole fleet is).
    pub(crate) fn users_padded(&self, width: Option<usize>) -> Result<Entries, SeedError> {
        let width = width.unwrap_or(0).max(self.width());
        if self.count == 0 {
            return Ok(Vec::new());
        }
        if self.start.checked_add(self.count as u64 - 1).is_none() {
            return Err(SeedError::new("GenerateUsers: Start + Count overflows"));
        }
        let logical = match self.home_directory_type.as_str() {
            "PATH" => false,
            "LOGICAL" => true,
            other => {
                return Err(SeedError::new(format!(
                    "GenerateUsers: HomeDirectoryType must be PATH or LOGICAL, not {other:?}"
                )));
            }
        };
        for name in [self.name_at(0, width), self.name_at(self.count - 1, width)] {
            if !user_name_ok(&name) {
                return Err(SeedError::new(format!(
                    "GenerateUsers: {name:?} is not a valid UserName (Prefix {:?})",
                    self.prefix
                )));
            }
            let home = self.home(&name);
            let pattern = if logical {
                &*MAP_PATH
            } else {
                &*HOME_DIRECTORY
            };
            if home.chars().count() > 1024 || !pattern.is_match(&home) {
                return Err(SeedError::new(format!(
                    "GenerateUsers: HomeDirectory {home:?} does not satisfy the model"
                )));
            }
        }
        if !role_ok(&self.role) {
            return Err(SeedError::new(format!(
                "GenerateUsers: Role {:?} does not satisfy the model",
                self.role
            )));
        }
        let kind = Value::String(self.home_directory_type.clone());
        let role = Value::String(self.role.clone());
        let mut users = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let name = self.name_at(i, width);
            let mut user = Map::new();
            user.insert("UserName".to_owned(), Value::String(name.clone()));
            user.insert("HomeDirectoryType".to_owned(), kind.clone());
            if logical {
                user.insert("HomeDirectory".to_owned(), Value::String("/".to_owned()));
                let mut mapping = Map::new();
                mapping.insert("Entry".to_owned(), Value::String("/".to_owned()));
                mapping.insert("Target".to_owned(), Value::String(self.home(&name)));
                user.insert(
                    "HomeDirectoryMappings".to_owned(),
                    Value::Array(vec![Value::Object(mapping)]),
                );
            } else {
                user.insert("HomeDirectory".to_owned(), Value::String(self.home(&name)));
            }
            user.insert("Role".to_owned(), role.clone());
            users.push((name, user));
        }
        Ok(users)
    }
}

/// Users given as JSON objects, each with a valid `UserName`, keyed by it.
pub(crate) fn user_entries(users: impl IntoIterator<Item = Value>) -> Result<Entries, SeedError> {
    users
        .into_iter()
        .map(|user| {
            let Value::Object(u) = user else {
                return Err(SeedError::new("a user must be an object"));
            };
            let name = match u.get("UserName") {
                Some(Value::String(n)) if user_name_ok(n) => n.clone(),
                Some(other) => {
                    return Err(SeedError::new(format!(
                        "UserName {other} does not satisfy the model"
                    )));
                }
                None => return Err(SeedError::new("a user needs a UserName")),
            };
            Ok((name, u))
        })
        .collect()
}

/// Adds `users` to `into` (a name already there is replaced) in one bulk merge.
pub(crate) fn insert_users(into: &mut BTreeMap<String, Map<String, Value>>, users: Entries) {
    if into.is_empty() {
        *into = users.into_iter().collect();
    } else {
        let mut batch: BTreeMap<_, _> = users.into_iter().collect();
        into.append(&mut batch);
    }
}

fn list<'a>(
    server: &'a Map<String, Value>,
    id: &str,
    field: &str,
) -> Result<&'a [Value], SeedError> {
    match server.get(field) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(SeedError::new(format!(
            "server {id}: {field} must be a list"
        ))),
    }
}

fn server_state(id: &str, server: &Map<String, Value>) -> Result<ServerState, SeedError> {
    let attr = |field: &str, allowed: &[&str]| -> Result<String, SeedError> {
        match server.get(field) {
            None => Ok(allowed[0].to_owned()),
            Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(v.clone()),
            Some(other) => Err(SeedError::new(format!(
                "server {id}: {field} must be one of {allowed:?}, not {other}"
            ))),
        }
    };
    let domain = attr("Domain", DOMAINS)?;
    let directory_listing_optimization = if domain == "S3" {
        Some(attr("DirectoryListingOptimization", LISTING_OPTIMIZATION)?)
    } else if server.contains_key("DirectoryListingOptimization") {
        return Err(SeedError::new(format!(
            "server {id}: DirectoryListingOptimization is for S3 servers only"
        )));
    } else {
        None
    };
    let logging_role = match server.get("LoggingRole") {
        None => None,
        Some(Value::String(r)) if role_ok(r) => Some(r.clone()),
        Some(other) => {
            return Err(SeedError::new(format!(
                "server {id}: LoggingRole {other} does not satisfy the model"
            )));
        }
    };
    let mut state = ServerState {
        identity_provider_type: attr("IdentityProviderType", IDENTITY_PROVIDER_TYPES)?,
        domain,
        directory_listing_optimization,
        state: attr("State", STATES)?,
        endpoint_type: attr("EndpointType", ENDPOINT_TYPES)?,
        logging_role,
        users: BTreeMap::new(),
        accesses: BTreeMap::new(),
        tags: match server.get("Tags") {
            None => Vec::new(),
            Some(tags) => serde_json::from_value(tags.clone())
                .map_err(|e| SeedError::new(format!("server {id}: Tags: {e}")))
                .and_then(|tags: Vec<Tag>| {
                    crate::lists::check_tags(&tags)
                        .map(|()| tags)
                        .map_err(|e| SeedError::new(format!("server {id}: {}", e.message)))
                })?,
        },
    };
    let users = user_entries(list(server, id, "Users")?.iter().cloned())
        .map_err(|e| SeedError::new(format!("server {id}: {}", e.0)))?;
    state.users.extend(users);
    for access in list(server, id, "Accesses")? {
        let a = access
            .as_object()
            .ok_or_else(|| SeedError::new(format!("server {id}: an access must be an object")))?;
        let external_id = match a.get("ExternalId") {
            Some(Value::String(x)) if x.len() <= 256 && EXTERNAL_ID.is_match(x) => x,
            Some(other) => {
                return Err(SeedError::new(format!(
                    "server {id}: ExternalId {other} does not satisfy the model"
                )));
            }
            None => {
                return Err(SeedError::new(format!(
                    "server {id}: an access needs an ExternalId"
                )));
            }
        };
        state.accesses.insert(external_id.clone(), a.clone());
    }
    // One spec, or a list of them (a mixed fleet: one prefix per kind of user).
    let specs = match server.get("GenerateUsers") {
        None => Vec::new(),
        Some(Value::Array(specs)) => specs.clone(),
        Some(spec) => vec![spec.clone()],
    };
    for spec in specs {
        let (spec, width) =
            generate_spec(spec).map_err(|e| SeedError::new(format!("server {id}: {}", e.0)))?;
        let users = spec
            .users_padded(width)
            .map_err(|e| SeedError::new(format!("server {id}: {}", e.0)))?;
        insert_users(&mut state.users, users);
    }
    Ok(state)
}

/// A seed's `GenerateUsers` entry: the spec, and its optional `Width` (the numbers
/// padded to at least that many digits, so that a range of a larger fleet, split by
/// home, say, is named as the whole fleet is: `{"Start": 1, "Count": 900, "Width": 5}`
/// is `user00001`..`user00900`).
pub(crate) fn generate_spec(spec: Value) -> Result<(GenerateUsers, Option<usize>), SeedError> {
    let width = match spec.get("Width") {
        None => None,
        Some(w) => match w.as_u64() {
            Some(w @ 1..=20) => Some(w as usize),
            _ => {
                return Err(SeedError::new(format!(
                    "GenerateUsers: Width must be 1 to 20, not {w}"
                )));
            }
        },
    };
    let spec: GenerateUsers =
        serde_json::from_value(spec).map_err(|e| SeedError::new(format!("GenerateUsers: {e}")))?;
    Ok((spec, width))
}

/// Parses a seed (see the module documentation).
pub(crate) fn load(seed: &Value) -> Result<BTreeMap<String, ServerState>, SeedError> {
    let list = seed
        .get("Servers")
        .and_then(Value::as_array)
        .ok_or_else(|| SeedError::new("a seed needs a Servers list"))?;
    let mut servers = BTreeMap::new();
    for server in list {
        let s = server
            .as_object()
            .ok_or_else(|| SeedError::new("a server must be an object"))?;
        let id = s
            .get("ServerId")
            .and_then(Value::as_str)
            .ok_or_else(|| SeedError::new("each server needs a ServerId"))?;
        if !SERVER_ID.is_match(id) {
            return Err(SeedError::new(format!(
                "ServerId {id:?} is not s- and 17 lowercase hex digits"
            )));
        }
        let state = server_state(id, s)?;
        if servers.insert(id.to_owned(), state).is_some() {
            return Err(SeedError::new(format!("server {id} is listed twice")));
        }
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_name_check_is_the_model_pattern() {
        let samples = [
            "",
            "a",
            "ab",
            "abc",
            "_ab",
            "-ab",
            ".ab",
            "@ab",
            "a-b",
            "a@b.c",
            "dave@example.com",
            "é12",
            "ab\u{e9}",
            "abc ",
            " abc",
            "a\nb",
            "ab$",
            "ABC_09",
            "0.-@",
        ];
        let long = [
            "a".repeat(100),
            "a".repeat(101),
            format!("_{}", "-".repeat(99)),
        ];
        for s in samples
            .iter()
            .copied()
            .chain(long.iter().map(String::as_str))
        {
            let model = crate::USER_NAME.is_match(s) && (3..=100).contains(&s.chars().count());
            assert_eq!(user_name_ok(s), model, "{s:?}");
        }
    }

    #[test]
    fn generated_names_have_one_width_and_sort_as_numbers() {
        let g = GenerateUsers::new(100_000);
        assert_eq!(g.name(0), "user000001");
        assert_eq!(g.name(99_999), "user100000");
        let g = GenerateUsers {
            start: 0,
            ..GenerateUsers::new(10)
        };
        assert_eq!((g.name(0), g.name(9)), ("user0".into(), "user9".into()));
        let users = GenerateUsers::new(1000).users().unwrap();
        assert!(users.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn generator_refuses_what_the_model_refuses() {
        for bad in [
            GenerateUsers {
                prefix: "-x".into(),
                ..GenerateUsers::new(5)
            },
            GenerateUsers {
                prefix: "".into(),
                ..GenerateUsers::new(5)
            },
            GenerateUsers {
                prefix: "a b".into(),
                ..GenerateUsers::new(5)
            },
            GenerateUsers {
                prefix: "a".repeat(99),
                ..GenerateUsers::new(10)
            },
            GenerateUsers {
                home_directory: "bucket/${UserName}".into(),
                ..GenerateUsers::new(5)
            },
            GenerateUsers {
                home_directory_type: "Path".into(),
                ..GenerateUsers::new(5)
            },
            GenerateUsers {
                role: "arn:aws:iam::1:user/x".into(),
                ..GenerateUsers::new(5)
            },
            GenerateUsers {
                start: u64::MAX,
                ..GenerateUsers::new(2)
            },
        ] {
            assert!(bad.users().is_err(), "{bad:?}");
        }
        // Empty prefix is fine once the numbers are three digits wide.
        let g = GenerateUsers {
            prefix: "".into(),
            start: 100,
            ..GenerateUsers::new(5)
        };
        assert_eq!(g.users().unwrap()[0].0, "100");
    }
}
