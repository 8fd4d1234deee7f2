//! A chroot command: the validated form of every source's request.
//!
//! Three stages (smithy-rs RFC 0032's shape): a source reads its envelope into a
//! [`CommandInput`] (typed, unconstrained); [`Command::try_from`] validates it,
//! collecting every violation with its path; [`Command::admit`] applies the guardrails
//! and yields the [`ChrootCommand`] that the use case applies. No AWS call is involved.

use crate::domain::{
    Action, ChrootTarget, ExternalId, Guardrails, HomePath, HomeTemplate, RoleArn, ServerId,
    Settings, Subject, Target, TargetKind, UserName, Violations,
};
use crate::input::{ActionInput, CommandInput, Given, validate_policy};
use crate::outcome::{ErrorCode, Identity};
pub use crate::outcome::{MAX_REPORTED_FIELDS, Rejection};

/// What a command falls back on when a field is left out (`DEFAULT_SERVER_ID`,
/// `HOME_TEMPLATE`).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub server: Option<ServerId>,
    pub home_template: Option<HomeTemplate>,
}

/// A valid command, not yet admitted by the guardrails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub target: Target,
    pub home: HomePath,
    pub settings: Settings,
    pub dry_run: bool,
    identity: Identity,
}

/// A valid, admitted command: what the use case applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChrootCommand {
    pub target: Target,
    /// The chroot target: strictly below a home root.
    pub chroot: ChrootTarget,
    pub settings: Settings,
    pub dry_run: bool,
}

impl ChrootCommand {
    pub fn action(&self) -> Action {
        self.target.action()
    }

    pub fn identity(&self) -> Identity {
        Identity::of(&self.target)
    }
}

/// A [`CommandInput`] with the defaults it falls back on.
#[derive(Debug, Clone, Copy)]
pub struct Unvalidated<'a> {
    pub input: &'a CommandInput,
    pub defaults: &'a Defaults,
}

fn parsed<T, E: ToString>(
    errs: &mut Violations,
    field: &str,
    given: &Given<String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    errs.check(
        field,
        given
            .as_deref()
            .map_err(Clone::clone)
            .and_then(|s| parse(s).map_err(|e| e.to_string())),
    )
}

impl TryFrom<Unvalidated<'_>> for Command {
    type Error = Rejection;

    /// Checks every field, in a fixed order (refused keys, Action, ServerId, subject,
    /// HomeDirectory, Role, Policy, PosixProfile, DryRun), and reports all violations.
    fn try_from(u: Unvalidated<'_>) -> Result<Self, Rejection> {
        let Unvalidated { input, defaults } = u;
        let mut errs = Violations::default();
        let mut identity = input.identity();
        errs.extend(input.refused_keys.iter().cloned());

        // Action: named in the input, fixed by the source, or inferred from the subject.
        let (action, inferred) = match &input.action {
            ActionInput::Named(None) => {
                errs.push("Action", "required: UpdateUser or UpdateAccess");
                (None, false)
            }
            ActionInput::Named(Some(Err(e))) => {
                errs.push("Action", e);
                (None, false)
            }
            ActionInput::Named(Some(Ok(raw))) => match Action::parse(raw) {
                Some(a) => (Some(a), false),
                None => {
                    errs.push(
                        "Action",
                        format!(
                            "must be UpdateUser or UpdateAccess, got {:?}",
                            crate::outcome::echo(raw)
                        ),
                    );
                    (None, false)
                }
            },
            ActionInput::Fixed { action, refused } => {
                if let Some(got) = refused {
                    errs.push("Action", format!("not accepted here (got {got})"));
                }
                (Some(*action), false)
            }
            ActionInput::Inferred { refused } => {
                if let Some(got) = refused {
                    errs.push("Action", format!("not accepted here (got {got})"));
                }
                let action = match (input.user_name.is_some(), input.external_id.is_some()) {
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
                };
                (action, true)
            }
        };
        identity.action = action;

        let server = match &input.server_id {
            None => match &defaults.server {
                Some(s) => {
                    identity.server_id = Some(s.to_string());
                    Some(s.clone())
                }
                None => {
                    errs.push("ServerId", "required (no DEFAULT_SERVER_ID is configured)");
                    None
                }
            },
            Some(given) => parsed(&mut errs, "ServerId", given, ServerId::parse),
        };

        let kind = action.map_or(TargetKind::User, Action::kind);
        let subject = match action {
            Some(Action::UpdateUser) => {
                if input.external_id.is_some() && !inferred {
                    errs.push("ExternalId", "not accepted for UpdateUser (give UserName)");
                }
                match &input.user_name {
                    None => {
                        errs.push("UserName", "required for UpdateUser");
                        None
                    }
                    Some(given) => {
                        parsed(&mut errs, "UserName", given, UserName::parse).map(Subject::User)
                    }
                }
            }
            Some(Action::UpdateAccess) => {
                if input.user_name.is_some() && !inferred {
                    errs.push(
                        "UserName",
                        "not accepted for UpdateAccess (give ExternalId)",
                    );
                }
                match &input.external_id {
                    None => {
                        errs.push("ExternalId", "required for UpdateAccess");
                        None
                    }
                    Some(given) => parsed(&mut errs, "ExternalId", given, ExternalId::parse)
                        .map(Subject::Access),
                }
            }
            None => None,
        };

        let home = match (&input.home_directory, &subject, &defaults.home_template) {
            (Some(given), _, _) => parsed(&mut errs, "HomeDirectory", given, |s| {
                HomePath::parse(s, kind)
            }),
            (None, Some(Subject::User(u)), Some(t)) => errs.check(
                "HomeDirectory",
                HomePath::parse(&t.render(&[("UserName", u.as_str())]), kind)
                    .map_err(|e| format!("HOME_TEMPLATE renders an invalid home: {e}")),
            ),
            (None, Some(Subject::User(_)), None) => {
                errs.push("HomeDirectory", "required: no HOME_TEMPLATE is configured");
                None
            }
            (None, Some(Subject::Access(_)), _) => {
                errs.push(
                    "HomeDirectory",
                    "required: an access needs its chroot target",
                );
                None
            }
            (None, None, _) => None,
        };

        let role = match &input.role {
            Some(given) => parsed(&mut errs, "Role", given, RoleArn::parse),
            None => input.preset.role.clone(),
        };
        let policy = match &input.policy {
            Some(given) => validate_policy(given.clone(), "Policy", &mut errs),
            None => input.preset.policy.clone(),
        };
        let posix_profile = match &input.posix_profile {
            Some(Ok(p)) => p.clone().validate("PosixProfile", &mut errs),
            Some(Err(e)) => {
                errs.push("PosixProfile", e);
                None
            }
            None => input.preset.posix_profile.clone(),
        };
        let dry_run = match &input.dry_run {
            Some(given) => errs.check("DryRun", given.clone()).unwrap_or(false),
            None => false,
        };

        match (server, subject, home) {
            (Some(server), Some(subject), Some(home)) if errs.is_empty() => Ok(Self {
                target: Target::new(server, subject),
                home,
                settings: Settings {
                    role,
                    policy,
                    posix_profile,
                },
                dry_run,
                identity,
            }),
            // Every `None` above recorded a violation.
            _ => Err(Rejection::invalid(identity, errs.into_vec())),
        }
    }
}

impl Command {
    pub fn identity(&self) -> Identity {
        self.identity.clone()
    }

    /// The guardrails, on valid values only; every refusal is listed.
    pub fn admit(self, guardrails: &Guardrails) -> Result<ChrootCommand, Box<Rejection>> {
        match guardrails.admit(&self.target.server, self.home, self.settings.role.as_ref()) {
            Ok(chroot) => Ok(ChrootCommand {
                target: self.target,
                chroot,
                settings: self.settings,
                dry_run: self.dry_run,
            }),
            Err(refused) => Err(Box::new(Rejection::new(
                self.identity,
                ErrorCode::NotAllowed,
                refused,
            ))),
        }
    }
}

/// Validates and admits `input`: the whole way from what a source read to what the use
/// case applies.
pub fn parse_command(
    input: &CommandInput,
    defaults: &Defaults,
    guardrails: &Guardrails,
) -> Result<ChrootCommand, Box<Rejection>> {
    Command::try_from(Unvalidated { input, defaults })
        .map_err(Box::new)?
        .admit(guardrails)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::HomeRoot;
    use crate::input::{ActionRule, Reading};
    use serde_json::json;

    /// As `ALLOWED_SERVER_IDS=s-0123456789abcdef0`, `HOME_ROOTS=/b/home,/b/groups`,
    /// `HOME_TEMPLATE=/b/home/${UserName}`, one allowed role, and the one server as
    /// `DEFAULT_SERVER_ID`.
    fn config() -> (Defaults, Guardrails) {
        let server = ServerId::parse("s-0123456789abcdef0").unwrap();
        let roots = vec![
            HomeRoot::parse("/b/home").unwrap(),
            HomeRoot::parse("/b/groups").unwrap(),
        ];
        let template = HomeTemplate::parse(
            "/b/home/${UserName}",
            &["UserName"],
            Some("UserName"),
            TargetKind::User,
            &roots,
        )
        .unwrap();
        let guardrails = Guardrails {
            servers: vec![server.clone()],
            roots,
            roles: Some(vec![
                RoleArn::parse("arn:aws:iam::111122223333:role/sftp").unwrap(),
            ]),
            unrooted: None,
        };
        let defaults = Defaults {
            server: Some(server),
            home_template: Some(template),
        };
        (defaults, guardrails)
    }

    fn parse(v: serde_json::Value, rules: Reading) -> Result<ChrootCommand, Box<Rejection>> {
        let (defaults, guardrails) = config();
        let input = CommandInput::read(v.as_object().unwrap(), rules);
        parse_command(&input, &defaults, &guardrails)
    }

    fn rejected(v: serde_json::Value) -> (ErrorCode, Vec<String>) {
        rejected_with(v, Reading::default())
    }

    fn rejected_with(v: serde_json::Value, rules: Reading) -> (ErrorCode, Vec<String>) {
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
        let c = parse(user(json!({})), Reading::default()).unwrap();
        assert_eq!(c.chroot.as_str(), "/b/home/alice");
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
        let rules = Reading {
            action: ActionRule::Inferred,
            lenient_scalars: true,
            ignore: &["ServiceToken"],
        };
        let c = parse(
            json!({"ServiceToken": "arn:aws:lambda:...", "UserName": "alice",
                   "PosixProfile": {"Uid": "1001", "Gid": "1001", "SecondaryGids": ["2001"]},
                   "DryRun": "true"}),
            rules,
        )
        .unwrap();
        assert_eq!(c.settings.posix_profile.unwrap().uid(), 1001);
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
        let rules = Reading {
            action: ActionRule::Fixed(Action::UpdateUser),
            ..Reading::default()
        };
        assert_eq!(rejected_with(user(json!({})), rules).1, ["Action"]);
    }

    #[test]
    fn hostile_names_are_echoed_truncated() {
        let long = "x".repeat(10_000);
        let r = parse(user(json!({"UserName": long})), Reading::default()).unwrap_err();
        assert!(r.identity.user_name.unwrap().chars().count() <= crate::outcome::ECHO_LIMIT + 1);
    }
}
