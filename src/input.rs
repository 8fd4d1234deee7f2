//! The unconstrained input: what a source read, typed but not yet validated.
//!
//! Every source fills one [`CommandInput`] (smithy-rs RFC 0025/0032's "unconstrained"
//! shape): each field is absent, the JSON type it must be (`Ok`), or a type mismatch
//! (`Err`, with the message). [`crate::command`] turns it into a validated command,
//! collecting every violation with its path; the guardrails then admit it.
//!
//! JSON is read here and in the source adapters, nowhere further in: [`Fields`] is a
//! small cursor over one JSON object (in the spirit of mini-redis's `Parse`) that knows
//! the lenient CloudFormation scalars (`"1001"`, `"true"`), unknown keys and the type
//! messages, so each reader stays a few lines long.

use serde_json::{Map, Value};

use crate::domain::posix::{MAX_SECONDARY_GIDS, posix_id};
use crate::domain::{Action, FieldError, PosixProfile, SessionPolicy, Settings, Violations};
use crate::outcome::{Identity, echo};

/// A field as read: `Ok` with the JSON type it must have, `Err` with why it has not.
pub type Given<T> = Result<T, String>;

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `must be <expected>, got <type of v>`: the one shape of every type message.
pub fn mismatch(expected: &str, v: &Value) -> String {
    format!("must be {expected}, got {}", type_name(v))
}

/// A cursor over one JSON object.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// CloudFormation sends every scalar as a string: accept `"1001"` and `"true"`.
    lenient: bool,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, lenient: bool) -> Self {
        Self { map, lenient }
    }

    /// The object's keys not in `known`, in input order.
    pub fn unknown<'k>(&self, known: &'k [&'k str]) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.map
            .keys()
            .map(String::as_str)
            .filter(move |k| !known.contains(k))
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    pub fn string(&self, key: &str) -> Option<Given<String>> {
        self.value(key).map(string)
    }

    /// A string that must not be blank.
    pub fn name(&self, key: &str) -> Option<Given<String>> {
        self.value(key).map(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
            other => Err(mismatch("a non-empty string", other)),
        })
    }

    pub fn flag(&self, key: &str) -> Option<Given<bool>> {
        self.value(key).map(|v| match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if self.lenient && s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if self.lenient && s.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(mismatch("true or false", other)),
        })
    }

    /// An integer, read wide so that the range check can say what was wrong.
    pub fn integer(&self, v: &Value) -> Given<i128> {
        let n: Option<i128> = match v {
            Value::Number(n) => n
                .as_u64()
                .map(i128::from)
                .or_else(|| n.as_i64().map(i128::from)),
            Value::String(s) if self.lenient => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        n.ok_or_else(|| mismatch("an integer from 0 to 4294967295", v))
    }

    /// An array of strings: each item read on its own, so every bad one is named.
    pub fn strings(&self, key: &str, expected: &str) -> Option<Given<Vec<Given<String>>>> {
        self.value(key).map(|v| match v {
            Value::Array(items) => Ok(items.iter().map(string).collect()),
            other => Err(mismatch(expected, other)),
        })
    }

    /// A nested object, read with the same leniency.
    pub fn object(&self, key: &str, expected: &str) -> Option<Given<Fields<'a>>> {
        self.value(key).map(|v| match v {
            Value::Object(map) => Ok(Fields::new(map, self.lenient)),
            other => Err(mismatch(expected, other)),
        })
    }

    /// `Policy`: a JSON policy document, given as its text or as the object itself.
    pub fn policy(&self, key: &str) -> Option<Given<String>> {
        self.value(key).map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Object(_) => Ok(v.to_string()),
            other => Err(mismatch("a JSON policy document (string or object)", other)),
        })
    }

    /// `PosixProfile`: `{"Uid", "Gid", "SecondaryGids"?}`.
    pub fn posix(&self, key: &str) -> Option<Given<PosixInput>> {
        self.object(key, "an object with Uid and Gid")
            .map(|o| o.map(|o| PosixInput::read(&o)))
    }
}

fn string(v: &Value) -> Given<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(mismatch("a string", other)),
    }
}

/// `PosixProfile` as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosixInput {
    /// Keys other than Uid, Gid, SecondaryGids (echoed).
    pub unknown: Vec<String>,
    pub uid: Option<Given<i128>>,
    pub gid: Option<Given<i128>>,
    /// `None`: absent or null.
    pub secondary_gids: Option<Given<Vec<Given<i128>>>>,
}

impl PosixInput {
    pub const FIELDS: &'static [&'static str] = &["Uid", "Gid", "SecondaryGids"];

    fn read(o: &Fields<'_>) -> Self {
        Self {
            unknown: o.unknown(Self::FIELDS).map(echo).collect(),
            uid: o.value("Uid").map(|v| o.integer(v)),
            gid: o.value("Gid").map(|v| o.integer(v)),
            secondary_gids: match o.value("SecondaryGids") {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => Some(Ok(items.iter().map(|v| o.integer(v)).collect())),
                Some(other) => Some(Err(mismatch("an array of integers", other))),
            },
        }
    }

    /// The validated profile, or `None` with every violation recorded under `field`'s
    /// own paths (`PosixProfile.SecondaryGids[1]`).
    pub fn validate(self, field: &str, errs: &mut Violations) -> Option<PosixProfile> {
        let before = errs.len();
        for key in &self.unknown {
            errs.push(
                format!("{field}.{key}"),
                "unknown field (expected Uid, Gid, SecondaryGids)",
            );
        }
        let mut id = |name: &str, given: Option<Given<i128>>| match given {
            None => {
                errs.push(format!("{field}.{name}"), "required");
                None
            }
            Some(given) => errs.check(
                &format!("{field}.{name}"),
                given.and_then(|n| posix_id(n).map_err(|e| e.to_string())),
            ),
        };
        let uid = id("Uid", self.uid);
        let gid = id("Gid", self.gid);
        let mut secondary = Vec::new();
        match self.secondary_gids {
            None => {}
            Some(Err(e)) => errs.push(format!("{field}.SecondaryGids"), e),
            Some(Ok(items)) if items.len() > MAX_SECONDARY_GIDS => errs.push(
                format!("{field}.SecondaryGids"),
                format!("at most 16 secondary GIDs, got {}", items.len()),
            ),
            Some(Ok(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    let path = format!("{field}.SecondaryGids[{i}]");
                    if let Some(g) = errs.check(
                        &path,
                        item.and_then(|n| posix_id(n).map_err(|e| e.to_string())),
                    ) {
                        secondary.push(g);
                    }
                }
            }
        }
        if errs.len() != before {
            return None;
        }
        PosixProfile::new(uid?, gid?, secondary)
            .map_err(|e| errs.push(field, e))
            .ok()
    }
}

/// Validates a `Policy` as read.
pub fn validate_policy(
    given: Given<String>,
    field: &str,
    errs: &mut Violations,
) -> Option<SessionPolicy> {
    errs.check(
        field,
        given.and_then(|text| SessionPolicy::parse(&text).map_err(|e| e.to_string())),
    )
}

/// How the source decides the action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ActionRule {
    /// The input names it in `Action` (direct commands, SQS bodies).
    #[default]
    Named,
    /// The source fixes it (an API route); an `Action` in the input is refused.
    Fixed(Action),
    /// From which subject is given, `UserName` or `ExternalId` (CloudFormation); an
    /// `Action` in the input is refused.
    Inferred,
}

/// How a source's input object is to be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    pub action: ActionRule,
    /// CloudFormation sends every scalar as a string: accept `"1001"` and `"true"`.
    pub lenient_scalars: bool,
    /// Envelope fields that may sit beside the command (`ServiceToken`).
    pub ignore: &'static [&'static str],
}

/// The action as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionInput {
    /// `Action` as given, if given.
    Named(Option<Given<String>>),
    /// Fixed by the source; `refused` is the type of an `Action` the input carried.
    Fixed {
        action: Action,
        refused: Option<&'static str>,
    },
    /// Inferred from the subject; `refused` as above.
    Inferred { refused: Option<&'static str> },
}

impl Default for ActionInput {
    fn default() -> Self {
        Self::Named(None)
    }
}

/// A command as a source read it: typed, unconstrained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandInput {
    /// Keys that are not command fields, each with why, in input order.
    pub refused_keys: Vec<FieldError>,
    pub action: ActionInput,
    pub server_id: Option<Given<String>>,
    pub user_name: Option<Given<String>>,
    pub external_id: Option<Given<String>>,
    pub home_directory: Option<Given<String>>,
    pub role: Option<Given<String>>,
    /// The policy's JSON text.
    pub policy: Option<Given<String>>,
    pub posix_profile: Option<Given<PosixInput>>,
    pub dry_run: Option<Given<bool>>,
    /// Settings already validated elsewhere (a group profile, at cold start); a field
    /// given above takes precedence.
    pub preset: Settings,
}

/// Every field a command may carry (the Transfer API's names, plus `Action`/`DryRun`).
pub const COMMAND_FIELDS: &[&str] = &[
    "Action",
    "ServerId",
    "UserName",
    "ExternalId",
    "HomeDirectory",
    "Role",
    "Policy",
    "PosixProfile",
    "DryRun",
];

/// Refused outright: chroot is not negotiable.
pub const NOT_NEGOTIABLE: &str = "chroot is not negotiable: the function always sets HomeDirectoryType=LOGICAL \
     with the single mapping {\"Entry\":\"/\",\"Target\":<HomeDirectory>}; give HomeDirectory only";

impl CommandInput {
    /// A command for `action`, to be filled in field by field (API routes, events).
    pub fn fixed(action: Action) -> Self {
        Self {
            action: ActionInput::Fixed {
                action,
                refused: None,
            },
            ..Self::default()
        }
    }

    /// Reads a command object as `reading` says. Never fails: what is wrong is kept
    /// in the input, for validation to report with everything else.
    pub fn read(map: &Map<String, Value>, reading: Reading) -> Self {
        let f = Fields::new(map, reading.lenient_scalars);
        let refused_keys = f
            .unknown(COMMAND_FIELDS)
            .filter(|k| !reading.ignore.contains(k))
            .map(|key| match key {
                "HomeDirectoryType" | "HomeDirectoryMappings" => {
                    FieldError::new(key, NOT_NEGOTIABLE)
                }
                _ => FieldError::new(
                    echo(key),
                    format!(
                        "unknown field (expected one of: {})",
                        COMMAND_FIELDS.join(", ")
                    ),
                ),
            })
            .collect();
        let refused = f.value("Action").map(type_name);
        let action = match reading.action {
            ActionRule::Named => ActionInput::Named(f.string("Action")),
            ActionRule::Fixed(action) => ActionInput::Fixed { action, refused },
            ActionRule::Inferred => ActionInput::Inferred { refused },
        };
        Self {
            refused_keys,
            action,
            server_id: f.string("ServerId"),
            user_name: f.string("UserName"),
            external_id: f.string("ExternalId"),
            home_directory: f.string("HomeDirectory"),
            role: f.string("Role"),
            policy: f.policy("Policy"),
            posix_profile: f.posix("PosixProfile"),
            dry_run: f.flag("DryRun"),
            preset: Settings::default(),
        }
    }

    /// Who the input is about, echoed as given (even when invalid).
    pub fn identity(&self) -> Identity {
        let text = |g: &Option<Given<String>>| g.as_ref().and_then(|g| g.as_deref().ok()).map(echo);
        Identity {
            action: match &self.action {
                ActionInput::Named(a) => a
                    .as_ref()
                    .and_then(|a| a.as_deref().ok())
                    .and_then(Action::parse),
                ActionInput::Fixed { action, .. } => Some(*action),
                ActionInput::Inferred { .. } => None,
            },
            server_id: text(&self.server_id),
            user_name: text(&self.user_name),
            external_id: text(&self.external_id),
        }
    }
}

/// Every field an audit may carry.
pub const AUDIT_FIELDS: &[&str] = &["Action", "ServerId", "Fix", "DryRun", "Continuation"];

/// An audit (`{"Action": "Audit", ...}`) as a source read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditInput {
    pub refused_keys: Vec<FieldError>,
    pub server_id: Option<Given<String>>,
    pub fix: Option<Given<bool>>,
    pub dry_run: Option<Given<bool>>,
    pub continuation: Option<Given<String>>,
}

impl AuditInput {
    pub fn read(map: &Map<String, Value>, lenient_scalars: bool) -> Self {
        let f = Fields::new(map, lenient_scalars);
        Self {
            refused_keys: f
                .unknown(AUDIT_FIELDS)
                .map(|k| {
                    FieldError::new(
                        echo(k),
                        format!(
                            "unknown field (expected one of: {})",
                            AUDIT_FIELDS.join(", ")
                        ),
                    )
                })
                .collect(),
            server_id: f.string("ServerId"),
            fix: f.flag("Fix"),
            dry_run: f.flag("DryRun"),
            continuation: f.string("Continuation"),
        }
    }
}

/// Every field a reconcile may carry: the target's identity and where it came from,
/// never a home (it is derived from the live state when the reconcile runs).
pub const RECONCILE_FIELDS: &[&str] = &[
    "Action",
    "ServerId",
    "UserName",
    "ExternalId",
    "RunId",
    "Reason",
    "DryRun",
];

/// Refused in a reconcile: what it writes comes from the state it reads, never from
/// the message (a queued home may be hours old when the message is consumed).
pub const DERIVED_NOT_GIVEN: &str = "a Reconcile derives the home from the target's live state when it runs, \
     and never carries one: send UpdateUser or UpdateAccess to set a home";

/// A reconcile (`{"Action": "Reconcile", "ServerId", "UserName" | "ExternalId", ...}`)
/// as a source read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileInput {
    pub refused_keys: Vec<FieldError>,
    pub server_id: Option<Given<String>>,
    pub user_name: Option<Given<String>>,
    pub external_id: Option<Given<String>>,
    /// The audit run that found it, for the logs.
    pub run_id: Option<Given<String>>,
    /// Why it was queued, for the logs.
    pub reason: Option<Given<String>>,
    pub dry_run: Option<Given<bool>>,
}

impl ReconcileInput {
    pub fn read(map: &Map<String, Value>) -> Self {
        let f = Fields::new(map, false);
        Self {
            refused_keys: f
                .unknown(RECONCILE_FIELDS)
                .map(|k| match k {
                    "HomeDirectory"
                    | "HomeDirectoryType"
                    | "HomeDirectoryMappings"
                    | "Role"
                    | "Policy"
                    | "PosixProfile" => FieldError::new(k, DERIVED_NOT_GIVEN),
                    _ => FieldError::new(
                        echo(k),
                        format!(
                            "unknown field (expected one of: {})",
                            RECONCILE_FIELDS.join(", ")
                        ),
                    ),
                })
                .collect(),
            server_id: f.string("ServerId"),
            user_name: f.string("UserName"),
            external_id: f.string("ExternalId"),
            run_id: f.string("RunId"),
            reason: f.string("Reason"),
            dry_run: f.flag("DryRun"),
        }
    }
}

/// Who a JSON object is about, echoed as given (for a result when nothing else could
/// be read, e.g. an event given up on at the deadline).
pub fn echo_identity(map: &Map<String, Value>) -> Identity {
    CommandInput::read(map, Reading::default()).identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value, lenient: bool) -> CommandInput {
        CommandInput::read(
            v.as_object().unwrap(),
            Reading {
                lenient_scalars: lenient,
                ..Reading::default()
            },
        )
    }

    #[test]
    fn fields_keep_their_type_or_say_what_they_got() {
        let i = read(
            json!({"ServerId": 1, "UserName": "alice", "DryRun": "true",
                   "Policy": {"Statement": []}, "Extra": null}),
            false,
        );
        assert_eq!(
            i.server_id,
            Some(Err("must be a string, got a number".into()))
        );
        assert_eq!(i.user_name, Some(Ok("alice".into())));
        assert_eq!(
            i.dry_run,
            Some(Err("must be true or false, got a string".into()))
        );
        assert_eq!(i.policy, Some(Ok(r#"{"Statement":[]}"#.into())));
        assert_eq!(i.refused_keys.len(), 1);
        assert_eq!(i.refused_keys[0].field, "Extra");
        assert_eq!(i.action, ActionInput::Named(None));
    }

    #[test]
    fn lenient_scalars_are_cloudformation_strings() {
        let i = read(
            json!({"DryRun": "TRUE", "PosixProfile": {"Uid": " 1001 ", "Gid": 1, "SecondaryGids": ["2"]}}),
            true,
        );
        assert_eq!(i.dry_run, Some(Ok(true)));
        let p = i.posix_profile.unwrap().unwrap();
        assert_eq!(p.uid, Some(Ok(1001)));
        assert_eq!(p.secondary_gids, Some(Ok(vec![Ok(2)])));
        let strict = read(json!({"PosixProfile": {"Uid": "1", "Gid": 1.5}}), false)
            .posix_profile
            .unwrap()
            .unwrap();
        assert!(strict.uid.unwrap().is_err());
        assert!(strict.gid.unwrap().is_err());
    }

    #[test]
    fn posix_violations_carry_their_path() {
        let mut errs = Violations::default();
        let p = read(
            json!({"PosixProfile": {"Uid": -1, "SecondaryGids": [1, "x"], "Home": 1}}),
            false,
        )
        .posix_profile
        .unwrap()
        .unwrap();
        assert_eq!(p.validate("PosixProfile", &mut errs), None);
        let fields: Vec<String> = errs.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "PosixProfile.Home",
                "PosixProfile.Uid",
                "PosixProfile.Gid",
                "PosixProfile.SecondaryGids[1]"
            ]
        );
    }

    #[test]
    fn the_action_rule_decides_what_an_action_field_means() {
        let map = json!({"Action": "UpdateUser"});
        let fixed = CommandInput::read(
            map.as_object().unwrap(),
            Reading {
                action: ActionRule::Fixed(Action::UpdateAccess),
                ..Reading::default()
            },
        );
        assert_eq!(
            fixed.action,
            ActionInput::Fixed {
                action: Action::UpdateAccess,
                refused: Some("a string")
            }
        );
        assert_eq!(fixed.identity().action, Some(Action::UpdateAccess));
    }
}
