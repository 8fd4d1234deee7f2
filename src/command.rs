//! A chroot command: the validated form of every source's request.
//!
//! Sources hand over a JSON object whose fields are the Transfer API's own names
//! (`ServerId`, `UserName`, `HomeDirectory`, ...). Parsing checks every field, collects
//! every violation, then applies the guardrails; only a fully valid, allowed request
//! becomes a [`ChrootCommand`].

use serde_json::{Map, Value};

use crate::config::Config;
use crate::domain::posix::posix_id;
use crate::domain::{
    ChrootTarget, ExternalId, FieldError, HomePath, PosixProfile, RoleArn, ServerId, SessionPolicy,
    TargetKind, UserName, Violations,
};
use crate::outcome::{Action, ErrorBody, ErrorCode, Identity, echo};
use crate::transfer::Subject;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChrootCommand {
    pub server: ServerId,
    pub subject: Subject,
    pub target: ChrootTarget,
    pub role: Option<RoleArn>,
    pub policy: Option<SessionPolicy>,
    pub posix_profile: Option<PosixProfile>,
    pub dry_run: bool,
}

impl ChrootCommand {
    pub fn action(&self) -> Action {
        match self.subject {
            Subject::User(_) => Action::UpdateUser,
            Subject::Access(_) => Action::UpdateAccess,
        }
    }

    pub fn identity(&self) -> Identity {
        let (user_name, external_id) = match &self.subject {
            Subject::User(u) => (Some(u.to_string()), None),
            Subject::Access(a) => (None, Some(a.to_string())),
        };
        Identity {
            action: Some(self.action()),
            server_id: Some(self.server.to_string()),
            user_name,
            external_id,
        }
    }
}

/// A request refused before any AWS call: invalid fields or a guardrail.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub identity: Identity,
    pub error: ErrorBody,
}

/// A rejection lists at most this many field errors (the first, in input order): an
/// event with thousands of bad keys would otherwise get a reply larger than itself, past
/// Lambda's 6 MB response limit, and the caller would see no structured result at all.
pub const MAX_REPORTED_FIELDS: usize = 50;

impl Rejection {
    pub fn new(identity: Identity, code: ErrorCode, mut fields: Vec<FieldError>) -> Self {
        let total = fields.len();
        fields.truncate(MAX_REPORTED_FIELDS);
        let names = fields
            .iter()
            .map(|f| f.field.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let more = match total - fields.len() {
            0 => String::new(),
            n => format!(" and {n} more not listed"),
        };
        let message = match code {
            ErrorCode::NotAllowed => format!("refused by a guardrail: {names}{more}"),
            _ => format!(
                "{total} invalid field{}: {names}{more}",
                if total == 1 { "" } else { "s" },
            ),
        };
        Self {
            identity,
            error: ErrorBody::new(code, message).with_fields(fields),
        }
    }
}

/// How a source's input is to be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputRules {
    /// The action fixed by the source (an API route); `None`: read `Action`, or infer it
    /// from `UserName` / `ExternalId` when `infer_action` is set (CloudFormation).
    pub action: Option<Action>,
    pub infer_action: bool,
    /// CloudFormation sends every scalar as a string: accept `"1001"` and `"true"`.
    pub lenient_scalars: bool,
    /// Envelope fields that may sit beside the command (`ServiceToken`).
    pub ignore: &'static [&'static str],
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

fn string_field(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("must be a string, got {}", type_name(v)))
}

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

fn bool_field(v: &Value, lenient: bool) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if lenient && s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if lenient && s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("must be true or false, got {}", type_name(other))),
    }
}

fn id_field(v: &Value, lenient: bool) -> Result<u64, String> {
    let n: Option<i128> = match v {
        Value::Number(n) => n
            .as_u64()
            .map(i128::from)
            .or_else(|| n.as_i64().map(i128::from)),
        Value::String(s) if lenient => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    match n {
        Some(n) => posix_id(n).map_err(|e| e.to_string()),
        None => Err(format!(
            "must be an integer from 0 to 4294967295, got {}",
            type_name(v)
        )),
    }
}

/// Parses `Policy`, given as JSON text or as a JSON object.
pub fn parse_policy(v: &Value, field: &str, errs: &mut Violations) -> Option<SessionPolicy> {
    match v {
        Value::String(_) | Value::Object(_) => errs.check(field, SessionPolicy::from_value(v)),
        other => {
            errs.push(
                field,
                format!(
                    "must be a JSON policy document (string or object), got {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// Parses `PosixProfile`, reporting each bad member under its own path.
pub fn parse_posix(
    v: &Value,
    lenient: bool,
    field: &str,
    errs: &mut Violations,
) -> Option<PosixProfile> {
    let Value::Object(map) = v else {
        errs.push(
            field,
            format!("must be an object with Uid and Gid, got {}", type_name(v)),
        );
        return None;
    };
    let before = errs.len();
    for key in map.keys() {
        if !matches!(key.as_str(), "Uid" | "Gid" | "SecondaryGids") {
            errs.push(
                format!("{field}.{}", echo(key)),
                "unknown field (expected Uid, Gid, SecondaryGids)",
            );
        }
    }
    let mut id = |name: &str| match map.get(name) {
        None => {
            errs.push(format!("{field}.{name}"), "required");
            None
        }
        Some(v) => errs.check(&format!("{field}.{name}"), id_field(v, lenient)),
    };
    let uid = id("Uid");
    let gid = id("Gid");
    let mut secondary = Vec::new();
    match map.get("SecondaryGids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if items.len() > crate::domain::posix::MAX_SECONDARY_GIDS {
                errs.push(
                    format!("{field}.SecondaryGids"),
                    format!("at most 16 secondary GIDs, got {}", items.len()),
                );
            } else {
                for (i, item) in items.iter().enumerate() {
                    if let Some(g) = errs.check(
                        &format!("{field}.SecondaryGids[{i}]"),
                        id_field(item, lenient),
                    ) {
                        secondary.push(g);
                    }
                }
            }
        }
        Some(other) => errs.push(
            format!("{field}.SecondaryGids"),
            format!("must be an array of integers, got {}", type_name(other)),
        ),
    }
    if errs.len() != before {
        return None;
    }
    PosixProfile::new(uid?, gid?, secondary)
        .map_err(|e| errs.push(field, e))
        .ok()
}

/// Reads a command out of `input`, reporting every bad field, then applies the
/// guardrails. No AWS call is involved.
pub fn parse_command(
    input: &Map<String, Value>,
    rules: InputRules,
    config: &Config,
) -> Result<ChrootCommand, Box<Rejection>> {
    let mut errs = Violations::default();
    let lenient = rules.lenient_scalars;

    let mut identity = Identity::echo_from(input);

    for key in input.keys() {
        if COMMAND_FIELDS.contains(&key.as_str()) || rules.ignore.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "HomeDirectoryType" | "HomeDirectoryMappings" => errs.push(
                key.as_str(),
                "chroot is not negotiable: the function always sets HomeDirectoryType=LOGICAL \
                 with the single mapping {\"Entry\":\"/\",\"Target\":<HomeDirectory>}; give HomeDirectory only",
            ),
            _ => errs.push(
                echo(key),
                format!("unknown field (expected one of: {})", COMMAND_FIELDS.join(", ")),
            ),
        }
    }

    // Action: fixed by the source, named in the input, or inferred from the subject.
    let named = match input.get("Action") {
        None => None,
        Some(v) if rules.action.is_some() || rules.infer_action => {
            errs.push(
                "Action",
                format!("not accepted here (got {})", type_name(v)),
            );
            None
        }
        Some(v) => match string_field(v).map(|s| (s, Action::parse(s))) {
            Ok((_, Some(a))) => Some(a),
            Ok((s, None)) => {
                errs.push(
                    "Action",
                    format!("must be UpdateUser or UpdateAccess, got {:?}", echo(s)),
                );
                None
            }
            Err(e) => {
                errs.push("Action", e);
                None
            }
        },
    };
    let action = rules.action.or(named).or_else(|| {
        if !rules.infer_action {
            if !input.contains_key("Action") {
                errs.push("Action", "required: UpdateUser or UpdateAccess");
            }
            return None;
        }
        match (
            input.contains_key("UserName"),
            input.contains_key("ExternalId"),
        ) {
            (true, false) => Some(Action::UpdateUser),
            (false, true) => Some(Action::UpdateAccess),
            (true, true) => {
                errs.push(
                    "ExternalId",
                    "give either UserName (a user) or ExternalId (an access), not both",
                );
                None
            }
            (false, false) => {
                errs.push(
                    "UserName",
                    "required: UserName for a user, or ExternalId for an access",
                );
                None
            }
        }
    });
    identity.action = action;

    let server = match input.get("ServerId") {
        None => match &config.default_server {
            Some(s) => {
                identity.server_id = Some(s.to_string());
                Some(s.clone())
            }
            None => {
                errs.push("ServerId", "required (no DEFAULT_SERVER_ID is configured)");
                None
            }
        },
        Some(v) => {
            let parsed =
                string_field(v).and_then(|s| ServerId::parse(s).map_err(|e| e.to_string()));
            errs.check("ServerId", parsed)
        }
    };

    let kind = match action {
        Some(Action::UpdateAccess) => TargetKind::Access,
        _ => TargetKind::User,
    };
    let subject = match action {
        Some(Action::UpdateUser) => {
            if input.contains_key("ExternalId") && !rules.infer_action {
                errs.push("ExternalId", "not accepted for UpdateUser (give UserName)");
            }
            match input.get("UserName") {
                None => {
                    errs.push("UserName", "required for UpdateUser");
                    None
                }
                Some(v) => errs
                    .check(
                        "UserName",
                        string_field(v).and_then(|s| UserName::parse(s).map_err(|e| e.to_string())),
                    )
                    .map(Subject::User),
            }
        }
        Some(Action::UpdateAccess) => {
            if input.contains_key("UserName") && !rules.infer_action {
                errs.push(
                    "UserName",
                    "not accepted for UpdateAccess (give ExternalId)",
                );
            }
            match input.get("ExternalId") {
                None => {
                    errs.push("ExternalId", "required for UpdateAccess");
                    None
                }
                Some(v) => errs
                    .check(
                        "ExternalId",
                        string_field(v)
                            .and_then(|s| ExternalId::parse(s).map_err(|e| e.to_string())),
                    )
                    .map(Subject::Access),
            }
        }
        None => None,
    };

    let home = match input.get("HomeDirectory") {
        Some(v) => errs.check(
            "HomeDirectory",
            string_field(v).and_then(|s| HomePath::parse(s, kind).map_err(|e| e.to_string())),
        ),
        None => match (&subject, &config.home_template) {
            (Some(Subject::User(u)), Some(t)) => errs.check(
                "HomeDirectory",
                HomePath::parse(&t.render(&[("UserName", u.as_str())]), kind)
                    .map_err(|e| format!("HOME_TEMPLATE renders an invalid home: {e}")),
            ),
            (Some(Subject::User(_)), None) => {
                errs.push("HomeDirectory", "required: no HOME_TEMPLATE is configured");
                None
            }
            (Some(Subject::Access(_)), _) => {
                errs.push(
                    "HomeDirectory",
                    "required: an access needs its chroot target",
                );
                None
            }
            (None, _) => None,
        },
    };

    let role = input.get("Role").and_then(|v| {
        errs.check(
            "Role",
            string_field(v).and_then(|s| RoleArn::parse(s).map_err(|e| e.to_string())),
        )
    });
    let policy = input
        .get("Policy")
        .and_then(|v| parse_policy(v, "Policy", &mut errs));
    let posix_profile = input
        .get("PosixProfile")
        .and_then(|v| parse_posix(v, lenient, "PosixProfile", &mut errs));
    let dry_run = input
        .get("DryRun")
        .and_then(|v| errs.check("DryRun", bool_field(v, lenient)))
        .unwrap_or(false);

    if !errs.is_empty() {
        return Err(Box::new(Rejection::new(
            identity,
            ErrorCode::ValidationFailed,
            errs.into_vec(),
        )));
    }
    let (Some(server), Some(subject), Some(home)) = (server, subject, home) else {
        // Unreachable in practice: every None above recorded a violation.
        return Err(Box::new(Rejection::new(
            identity,
            ErrorCode::ValidationFailed,
            vec![FieldError::new("Action", "incomplete command")],
        )));
    };

    // Guardrails, on valid values only; every refusal is listed.
    let guard = &config.guardrails;
    let mut refused = Violations::default();
    if !guard.allows_server(&server) {
        refused.push("ServerId", format!("{server} is not in ALLOWED_SERVER_IDS"));
    }
    let target = refused.check("HomeDirectory", ChrootTarget::admit(home, &guard.roots));
    if let Some(role) = &role
        && !guard.allows_role(role)
    {
        let why = if guard.roles.is_none() {
            "setting a role is not allowed (ALLOWED_ROLE_ARNS is not configured)".to_owned()
        } else {
            format!("{role} is not in ALLOWED_ROLE_ARNS")
        };
        refused.push("Role", why);
    }
    let Some(target) = target.filter(|_| refused.is_empty()) else {
        return Err(Box::new(Rejection::new(
            identity,
            ErrorCode::NotAllowed,
            refused.into_vec(),
        )));
    };

    Ok(ChrootCommand {
        server,
        subject,
        target,
        role,
        policy,
        posix_profile,
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        let vars = [
            ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
            ("HOME_ROOTS", "/b/home,/b/groups"),
            ("HOME_TEMPLATE", "/b/home/${UserName}"),
            ("ALLOWED_ROLE_ARNS", "arn:aws:iam::111122223333:role/sftp"),
            ("DEFAULT_SERVER_ID", "s-0123456789abcdef0"),
        ];
        Config::from_pairs(&vars).unwrap()
    }

    fn parse(v: serde_json::Value, rules: InputRules) -> Result<ChrootCommand, Box<Rejection>> {
        parse_command(v.as_object().unwrap(), rules, &config())
    }

    fn rejected(v: serde_json::Value) -> (ErrorCode, Vec<String>) {
        rejected_with(v, InputRules::default())
    }

    fn rejected_with(v: serde_json::Value, rules: InputRules) -> (ErrorCode, Vec<String>) {
        let r = parse(v, rules).expect_err("must be rejected");
        (
            r.error.code,
            r.error.fields.iter().map(|f| f.field.clone()).collect(),
        )
    }

    fn user(extra: serde_json::Value) -> serde_json::Value {
        let mut base =
            json!({"Action": "UpdateUser", "ServerId": "s-0123456789abcdef0", "UserName": "alice"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn a_valid_user_command_uses_the_template() {
        let c = parse(user(json!({})), InputRules::default()).unwrap();
        assert_eq!(c.target.as_str(), "/b/home/alice");
        assert_eq!(c.action(), Action::UpdateUser);
        assert!(!c.dry_run);
    }

    #[test]
    fn each_field_rejection_is_reported_under_its_name() {
        use ErrorCode::ValidationFailed as V;
        let cases = [
            (json!({"ServerId": "s-123"}), "ServerId"),
            (json!({"ServerId": 7}), "ServerId"),
            (json!({"UserName": "al"}), "UserName"),
            (json!({"UserName": "ålice"}), "UserName"),
            (json!({"UserName": null}), "UserName"),
            (json!({"HomeDirectory": "relative"}), "HomeDirectory"),
            (json!({"HomeDirectory": "/b/home/../x"}), "HomeDirectory"),
            (json!({"HomeDirectory": "/b/home/a/"}), "HomeDirectory"),
            (
                json!({"HomeDirectory": format!("/b/home/{}", "a".repeat(1020))}),
                "HomeDirectory",
            ),
            (json!({"HomeDirectoryType": "LOGICAL"}), "HomeDirectoryType"),
            (
                json!({"HomeDirectoryMappings": [{"Entry": "/", "Target": "/b/home/x"}]}),
                "HomeDirectoryMappings",
            ),
            (json!({"Role": "arn:aws:iam::1:role/x"}), "Role"),
            (json!({"Role": ["arn"]}), "Role"),
            (json!({"Policy": "{not json"}), "Policy"),
            (json!({"Policy": 12}), "Policy"),
            (
                json!({"Policy": format!("{{\"Statement\":[],\"x\":\"{}\"}}", "a".repeat(2048))}),
                "Policy",
            ),
            (json!({"PosixProfile": "1001"}), "PosixProfile"),
            (json!({"PosixProfile": {"Gid": 1}}), "PosixProfile.Uid"),
            (json!({"PosixProfile": {"Uid": 1}}), "PosixProfile.Gid"),
            (
                json!({"PosixProfile": {"Uid": -1, "Gid": 1}}),
                "PosixProfile.Uid",
            ),
            (
                json!({"PosixProfile": {"Uid": 1, "Gid": 4294967296u64}}),
                "PosixProfile.Gid",
            ),
            (
                json!({"PosixProfile": {"Uid": 1.5, "Gid": 1}}),
                "PosixProfile.Uid",
            ),
            (
                json!({"PosixProfile": {"Uid": 1, "Gid": 1, "SecondaryGids": vec![1; 17]}}),
                "PosixProfile.SecondaryGids",
            ),
            (
                json!({"PosixProfile": {"Uid": 1, "Gid": 1, "SecondaryGids": [1, "x"]}}),
                "PosixProfile.SecondaryGids[1]",
            ),
            (
                json!({"PosixProfile": {"Uid": 1, "Gid": 1, "Extra": 1}}),
                "PosixProfile.Extra",
            ),
            (json!({"DryRun": "yes"}), "DryRun"),
            (json!({"Action": "DeleteUser"}), "Action"),
            (json!({"Homedirectory": "/b/home/x"}), "Homedirectory"),
            (json!({"ExternalId": "S-1-5"}), "ExternalId"),
        ];
        for (extra, field) in cases {
            let (code, fields) = rejected(user(extra.clone()));
            assert_eq!(code, V, "{extra}");
            assert!(fields.contains(&field.to_owned()), "{extra}: {fields:?}");
        }
    }

    #[test]
    fn all_bad_fields_are_reported_at_once() {
        let (code, fields) = rejected(json!({
            "Action": "UpdateUser", "ServerId": "bad", "UserName": "x", "HomeDirectory": "rel",
            "Role": "nope", "Policy": "[]", "PosixProfile": {"Uid": -1, "Gid": -1}, "DryRun": 3
        }));
        assert_eq!(code, ErrorCode::ValidationFailed);
        assert_eq!(
            fields,
            [
                "ServerId",
                "UserName",
                "HomeDirectory",
                "Role",
                "Policy",
                "PosixProfile.Uid",
                "PosixProfile.Gid",
                "DryRun"
            ]
        );
    }

    #[test]
    fn missing_subject_and_action_are_named() {
        assert_eq!(rejected(json!({})).1, ["Action"]);
        assert_eq!(rejected(json!({"Action": "UpdateUser"})).1, ["UserName"]);
        assert_eq!(
            rejected(json!({"Action": "UpdateAccess", "ExternalId": "S-1-5-21"})).1,
            ["HomeDirectory"]
        );
    }

    #[test]
    fn guardrails_list_every_refusal() {
        let (code, fields) = rejected(json!({
            "Action": "UpdateUser", "ServerId": "s-11111111111111111", "UserName": "alice",
            "HomeDirectory": "/b/home", "Role": "arn:aws:iam::111122223333:role/admin"
        }));
        assert_eq!(code, ErrorCode::NotAllowed);
        assert_eq!(fields, ["ServerId", "HomeDirectory", "Role"]);
        assert_eq!(
            rejected(user(json!({"HomeDirectory": "/b/home2/alice"}))).0,
            ErrorCode::NotAllowed
        );
    }

    #[test]
    fn cloudformation_style_input_is_accepted() {
        let rules = InputRules {
            infer_action: true,
            lenient_scalars: true,
            ignore: &["ServiceToken"],
            ..InputRules::default()
        };
        let c = parse(
            json!({"ServiceToken": "arn:aws:lambda:...", "UserName": "alice",
                   "PosixProfile": {"Uid": "1001", "Gid": "1001", "SecondaryGids": ["2001"]},
                   "DryRun": "true"}),
            rules,
        )
        .unwrap();
        assert_eq!(c.posix_profile.unwrap().uid(), 1001);
        assert!(c.dry_run);
        let c = parse(
            json!({"ExternalId": "S-1-5-21-1", "HomeDirectory": "/b/groups/x/${transfer:UserName}"}),
            rules,
        )
        .unwrap();
        assert_eq!(c.action(), Action::UpdateAccess);
        assert_eq!(
            rejected_with(json!({"UserName": "alice", "ExternalId": "S-1-5"}), rules).1,
            ["ExternalId"]
        );
        // Strings are not numbers for strict sources.
        assert_eq!(
            rejected(user(json!({"PosixProfile": {"Uid": "1", "Gid": 1}}))).1,
            ["PosixProfile.Uid"]
        );
    }

    #[test]
    fn fixed_action_refuses_an_action_field() {
        let rules = InputRules {
            action: Some(Action::UpdateUser),
            ..InputRules::default()
        };
        assert_eq!(rejected_with(user(json!({})), rules).1, ["Action"]);
    }

    #[test]
    fn hostile_names_are_echoed_truncated() {
        let long = "x".repeat(10_000);
        let r = parse(user(json!({"UserName": long})), InputRules::default()).unwrap_err();
        assert!(r.identity.user_name.unwrap().chars().count() <= crate::outcome::ECHO_LIMIT + 1);
    }
}
