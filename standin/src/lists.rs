//! ListServers, DescribeServer, ListUsers and ListAccesses.
//!
//! Listings are in name order (server id, user name, external id: the stand-in keeps
//! them sorted) and paginated: `MaxResults` 1..1000, default [`DEFAULT_MAX_RESULTS`]
//! (the model gives a range and no default), and a `NextToken` (see `token.rs`) while
//! entries remain. Every field is checked before anything is looked up.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Map, Value, json};

use crate::{
    ACCOUNT, ApiError, REGION, SERVER_ID, ServerState, State, Tag, check_string, invalid, lock,
    not_found, serialization, token, user_arn,
};

/// The page size when a request gives no `MaxResults`.
pub const DEFAULT_MAX_RESULTS: usize = 1000;

fn check_max_results(input: &Map<String, Value>) -> Result<usize, ApiError> {
    let Some(v) = input.get("MaxResults") else {
        return Ok(DEFAULT_MAX_RESULTS);
    };
    let out_of_range = |value: &dyn std::fmt::Display, bound: &str| {
        invalid(format!(
            "1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy \
             constraint: Member must have value {bound}"
        ))
    };
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => match n.as_i64() {
            Some(m @ 1..=1000) => Ok(m as usize),
            Some(m) if m < 1 => Err(out_of_range(&m, "greater than or equal to 1")),
            _ => Err(out_of_range(n, "less than or equal to 1000")),
        },
        _ => Err(serialization("MaxResults must be an integer")),
    }
}

fn check_next_token(input: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    check_string(input, "NextToken", false, (1, 6144), None)
}

fn server_arn(id: &str) -> String {
    format!("arn:aws:transfer:{REGION}:{ACCOUNT}:server/{id}")
}

/// One page of `map` after `after`, and the key to resume after when more remain.
fn page<V>(
    map: &BTreeMap<String, V>,
    after: Option<&str>,
    max: usize,
    item: impl Fn(&str, &V) -> Value,
) -> (Vec<Value>, Option<String>) {
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut entries = map.range::<str, _>((lower, Bound::Unbounded));
    let mut items = Vec::with_capacity(max.min(map.len()));
    let mut last = None;
    for (key, value) in entries.by_ref().take(max) {
        items.push(item(key, value));
        last = Some(key);
    }
    let next = match entries.next() {
        Some(_) => last.cloned(),
        None => None,
    };
    (items, next)
}

fn insert_some(m: &mut Map<String, Value>, field: &str, value: Option<&Value>) {
    if let Some(v) = value {
        m.insert(field.to_owned(), v.clone());
    }
}

fn server_fields(id: &str, s: &ServerState) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Arn".into(), json!(server_arn(id)));
    m.insert("ServerId".into(), json!(id));
    m.insert("Domain".into(), json!(s.domain));
    m.insert(
        "IdentityProviderType".into(),
        json!(s.identity_provider_type),
    );
    m.insert("EndpointType".into(), json!(s.endpoint_type));
    if let Some(role) = &s.logging_role {
        m.insert("LoggingRole".into(), json!(role));
    }
    m.insert("State".into(), json!(s.state));
    m.insert("UserCount".into(), json!(s.users.len()));
    m
}

fn listed_user(server: &str, name: &str, u: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("Arn".into(), json!(user_arn(server, name)));
    m.insert("UserName".into(), json!(name));
    for field in ["HomeDirectory", "HomeDirectoryType", "Role"] {
        insert_some(&mut m, field, u.get(field));
    }
    let keys = u
        .get("SshPublicKeys")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    m.insert("SshPublicKeyCount".into(), json!(keys));
    Value::Object(m)
}

fn listed_access(id: &str, a: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("ExternalId".into(), json!(id));
    for field in ["HomeDirectory", "HomeDirectoryType", "Role"] {
        insert_some(&mut m, field, a.get(field));
    }
    Value::Object(m)
}

fn with_token(
    mut out: Value,
    state: &State,
    op: &str,
    server: &str,
    next: Option<String>,
) -> Value {
    if let (Some(after), Some(o)) = (next, out.as_object_mut()) {
        o.insert(
            "NextToken".into(),
            json!(token::encode(&state.token_key, op, server, &after)),
        );
    }
    out
}

pub(crate) fn list_servers(state: &State, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let max = check_max_results(input)?;
    let after = check_next_token(input)?
        .map(|t| token::decode(&state.token_key, &t, "ListServers", ""))
        .transpose()?;
    let servers = lock(&state.servers);
    let (items, next) = page(&servers, after.as_deref(), max, |id, s| {
        Value::Object(server_fields(id, s))
    });
    Ok(with_token(
        json!({"Servers": items}),
        state,
        "ListServers",
        "",
        next,
    ))
}

fn check_server_id(input: &Map<String, Value>) -> Result<String, ApiError> {
    Ok(check_string(input, "ServerId", true, (19, 19), Some(&SERVER_ID))?.unwrap_or_default())
}

pub(crate) fn describe_server(
    state: &State,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let id = check_server_id(input)?;
    let servers = lock(&state.servers);
    let s = servers.get(&id).ok_or_else(|| not_found("Server", &id))?;
    let mut m = server_fields(&id, s);
    m.insert("Protocols".into(), json!(["SFTP"]));
    if !s.tags.is_empty() {
        m.insert("Tags".into(), json!(s.tags));
    }
    if let Some(optimization) = &s.directory_listing_optimization {
        m.insert(
            "S3StorageOptions".into(),
            json!({"DirectoryListingOptimization": optimization}),
        );
    }
    Ok(json!({"Server": m}))
}

/// UpdateServer, of what the function reads: `IdentityProviderType` (accepted by the
/// service since 2025: a server can be switched to or from a custom identity
/// provider) and `S3StorageOptions.DirectoryListingOptimization`.
pub(crate) fn update_server(state: &State, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let id = check_server_id(input)?;
    let provider = match input.get("IdentityProviderType") {
        None => None,
        Some(Value::String(p))
            if [
                "SERVICE_MANAGED",
                "API_GATEWAY",
                "AWS_DIRECTORY_SERVICE",
                "AWS_LAMBDA",
            ]
            .contains(&p.as_str()) =>
        {
            Some(p.clone())
        }
        Some(other) => {
            return Err(crate::invalid(format!(
                "IdentityProviderType must be SERVICE_MANAGED, API_GATEWAY, AWS_DIRECTORY_SERVICE or AWS_LAMBDA, got {other}"
            )));
        }
    };
    let optimization = match input
        .get("S3StorageOptions")
        .and_then(|o| o.get("DirectoryListingOptimization"))
    {
        None => None,
        Some(Value::String(o)) if o == "ENABLED" || o == "DISABLED" => Some(o.clone()),
        Some(other) => {
            return Err(crate::invalid(format!(
                "DirectoryListingOptimization must be ENABLED or DISABLED, got {other}"
            )));
        }
    };
    let mut servers = lock(&state.servers);
    let s = servers
        .get_mut(&id)
        .ok_or_else(|| not_found("Server", &id))?;
    if let Some(p) = provider {
        s.identity_provider_type = p;
    }
    if let Some(o) = optimization {
        if s.domain != "S3" {
            return Err(crate::invalid("S3StorageOptions apply to S3 servers only"));
        }
        s.directory_listing_optimization = Some(o);
    }
    Ok(json!({"ServerId": id}))
}

/// ListUsers or ListAccesses.
pub(crate) fn list_members(
    state: &State,
    operation: &str,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let id = check_server_id(input)?;
    let max = check_max_results(input)?;
    let after = check_next_token(input)?
        .map(|t| token::decode(&state.token_key, &t, operation, &id))
        .transpose()?;
    let servers = lock(&state.servers);
    let s = servers.get(&id).ok_or_else(|| not_found("Server", &id))?;
    let out = if operation == "ListUsers" {
        let (items, next) = page(&s.users, after.as_deref(), max, |name, u| {
            listed_user(&id, name, u)
        });
        with_token(
            json!({"ServerId": id, "Users": items}),
            state,
            operation,
            &id,
            next,
        )
    } else {
        let (items, next) = page(&s.accesses, after.as_deref(), max, listed_access);
        with_token(
            json!({"ServerId": id, "Accesses": items}),
            state,
            operation,
            &id,
            next,
        )
    };
    Ok(out)
}

/// Transfer's `Tag` limits: a key of 1 to 128 characters, a value of at most 256, and
/// at most 50 tags on a resource.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(invalid("a resource has at most 50 tags"));
    }
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 {
            return Err(invalid(format!("tag key {:?}: 1 to 128 characters", t.key)));
        }
        if t.value.chars().count() > 256 {
            return Err(invalid(format!(
                "tag value of {:?}: at most 256 characters",
                t.key
            )));
        }
    }
    Ok(())
}

/// The server an `Arn` names (`arn:aws:transfer:<region>:<account>:server/<id>`); the
/// stand-in tags servers only.
fn tagged_server(input: &Map<String, Value>) -> Result<String, ApiError> {
    let arn = check_string(input, "Arn", true, (20, 1600), None)?.unwrap_or_default();
    arn.strip_prefix(&format!("arn:aws:transfer:{REGION}:{ACCOUNT}:server/"))
        .filter(|id| SERVER_ID.is_match(id))
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("{arn} is not a server ARN of this stand-in")))
}

/// TagResource (`Arn`, `Tags`: 1 to 50, an existing key's value replaced),
/// UntagResource (`Arn`, `TagKeys`), ListTagsForResource (`Arn`; every tag, one page).
pub(crate) fn tags(
    state: &State,
    operation: &str,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let id = tagged_server(input)?;
    let given = |field: &str| -> Result<Value, ApiError> {
        match input.get(field) {
            Some(v @ Value::Array(items)) if !items.is_empty() && items.len() <= 50 => {
                Ok(v.clone())
            }
            Some(Value::Array(_)) => Err(invalid(format!("{field} must hold 1 to 50 entries"))),
            Some(_) => Err(crate::serialization(format!("{field} must be a list"))),
            None => Err(invalid(format!("{field} is required"))),
        }
    };
    let change = match operation {
        "TagResource" => Some(Ok(serde_json::from_value::<Vec<Tag>>(given("Tags")?)
            .map_err(|e| crate::serialization(format!("Tags: {e}")))?)),
        "UntagResource" => Some(Err(serde_json::from_value::<Vec<String>>(given(
            "TagKeys",
        )?)
        .map_err(|e| crate::serialization(format!("TagKeys: {e}")))?)),
        _ => None,
    };
    let mut servers = lock(&state.servers);
    let server = servers
        .get_mut(&id)
        .ok_or_else(|| not_found("Server", &id))?;
    match change {
        Some(Ok(added)) => {
            check_tags(&added)?;
            let mut tags = server.tags.clone();
            for t in added {
                match tags.iter_mut().find(|old| old.key == t.key) {
                    Some(old) => old.value = t.value,
                    None => tags.push(t),
                }
            }
            check_tags(&tags)?;
            server.tags = tags;
            Ok(json!({}))
        }
        Some(Err(keys)) => {
            server.tags.retain(|t| !keys.contains(&t.key));
            Ok(json!({}))
        }
        None => Ok(json!({"Arn": server_arn(&id), "Tags": server.tags})),
    }
}
