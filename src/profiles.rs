//! `GROUP_PROFILES`: which chroot settings a directory group confers.
//!
//! ```json
//! {"Profiles": [{"Group": "sftp-finance", "Priority": 20,
//!                "HomeDirectory": "/acme-sftp/groups/finance/${UserName}",
//!                "Role": "arn:aws:iam::111122223333:role/sftp-finance",
//!                "Policy": {...}, "PosixProfile": {"Uid": 1001, "Gid": 1001}}],
//!  "Default": {"HomeDirectory": "/acme-sftp/home/${UserName}"}}
//! ```
//!
//! Everything is validated once, at cold start, against the same guardrails every
//! request meets (`ALLOWED_ROLE_ARNS`, `HOME_ROOTS`), so a profile can never hand out
//! what a direct request could not. Resolution is a pure function of the user's current
//! groups: the highest `Priority` among the matching profiles wins, `Default` when none
//! matches.
//!
//! Templates may use `${UserName}`, `${GroupName}` (the profile's own `Group`; not in
//! `Default`, which matches no group) and Transfer's own `${transfer:UserName}`. The two
//! user-name forms mean the same person: applied to a user (UpdateUser) both become the
//! concrete name, since a user's home must be concrete; applied to an access
//! (UpdateAccess) both become `${transfer:UserName}`, which Transfer fills in at login so
//! each member of the group lands in their own folder.

use serde_json::Value;

use crate::domain::home::TRANSFER_USER_NAME;
use crate::domain::{
    Guardrails, HomePath, HomeTemplate, RoleArn, Settings, TargetKind, Violations,
};
use crate::input::{Fields, mismatch, type_name, validate_policy};

const PROFILE_FIELDS: &[&str] = &[
    "Group",
    "Priority",
    "HomeDirectory",
    "Role",
    "Policy",
    "PosixProfile",
];
const USER_NAME: &str = "${UserName}";
const GROUP_NAME: &str = "${GroupName}";

/// A profile's home template, checked for both kinds of target it can be applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProfileHome {
    /// As configured (for messages).
    raw: String,
    /// `${GroupName}` filled in, both user-name forms as `${UserName}`.
    user: HomeTemplate,
    /// `${GroupName}` filled in, both user-name forms as `${transfer:UserName}`.
    access: HomeTemplate,
}

/// One validated profile: a group's (or the default) chroot settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `None` for `Default`.
    group: Option<String>,
    priority: Option<i64>,
    home: Option<ProfileHome>,
    /// Validated at cold start against the same guardrails as any request.
    settings: Settings,
}

impl Profile {
    /// The directory group this profile is for; `None` for `Default`.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    pub fn priority(&self) -> Option<i64> {
        self.priority
    }

    pub fn is_default(&self) -> bool {
        self.group.is_none()
    }

    /// How results and logs name the profile: the group, or `Default`.
    pub fn label(&self) -> &str {
        self.group.as_deref().unwrap_or("Default")
    }

    /// The configured `HomeDirectory` template, if the profile sets one.
    pub fn home_template(&self) -> Option<&str> {
        self.home.as_ref().map(|h| h.raw.as_str())
    }

    /// The home this profile gives `user_name` (concrete), if it sets one. The result is
    /// validated again by the command parser like any other input.
    pub fn user_home(&self, user_name: &str) -> Option<String> {
        self.home.as_ref().map(|h| {
            h.user
                .render(&[("UserName", user_name), ("transfer:UserName", user_name)])
        })
    }

    /// The target this profile gives a group's access, if it sets one; it may hold
    /// `${transfer:UserName}`.
    pub fn access_home(&self) -> Option<String> {
        self.home.as_ref().map(|h| h.access.render(&[]))
    }

    /// `Role`, `Policy` and `PosixProfile` (unset ones are left as Transfer has them).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Parsed and validated `GROUP_PROFILES`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupProfiles {
    /// Highest `Priority` first (priorities are unique, so the order is total).
    profiles: Vec<Profile>,
    default: Option<Profile>,
}

impl GroupProfiles {
    /// Parses `GROUP_PROFILES`, reporting every problem at once, each naming its
    /// profile (`Profiles[1] (sftp-finance): Role: ...`).
    pub fn parse(raw: &str, guardrails: &Guardrails) -> Result<Self, String> {
        let value: Value = serde_json::from_str(raw).map_err(|e| {
            format!("must be JSON ({{\"Profiles\": [...], \"Default\": {{...}}}}): {e}")
        })?;
        let Value::Object(top) = value else {
            return Err(format!(
                "must be a JSON object with Profiles and/or Default, got {}",
                type_name(&value)
            ));
        };
        let mut problems: Vec<String> = Vec::new();
        for key in top.keys() {
            if key != "Profiles" && key != "Default" {
                problems.push(format!("unknown key {key:?} (expected Profiles, Default)"));
            }
        }
        let mut profiles = Vec::new();
        match top.get("Profiles") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let (profile, errs) = parse_profile(item, false, guardrails);
                    let name = match item.get("Group").and_then(Value::as_str) {
                        Some(g) => format!("Profiles[{i}] ({g})"),
                        None => format!("Profiles[{i}]"),
                    };
                    problems.extend(errs.into_iter().map(|e| format!("{name}: {e}")));
                    if let Some(p) = profile {
                        profiles.push((name, p));
                    }
                }
            }
            Some(other) => problems.push(format!(
                "Profiles must be an array, got {}",
                type_name(other)
            )),
        }
        let default = match top.get("Default") {
            None | Some(Value::Null) => None,
            Some(item) => {
                let (profile, errs) = parse_profile(item, true, guardrails);
                problems.extend(errs.into_iter().map(|e| format!("Default: {e}")));
                profile
            }
        };
        if top.get("Profiles").is_none_or(Value::is_null)
            && default.is_none()
            && problems.is_empty()
        {
            problems.push("configures neither Profiles nor Default".into());
        }

        // Each group and each priority at most once, so resolution never depends on
        // the order profiles were written in.
        for (i, (name, p)) in profiles.iter().enumerate() {
            for (other, q) in &profiles[..i] {
                if p.priority == q.priority {
                    problems.push(format!(
                        "{name}: Priority {} is also used by {other}; priorities must be unique",
                        p.priority.unwrap_or_default()
                    ));
                }
                if let (Some(a), Some(b)) = (&p.group, &q.group)
                    && same_group(a, b)
                {
                    problems.push(format!(
                        "{name}: Group {a:?} already has a profile ({other})"
                    ));
                }
            }
        }

        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let mut profiles: Vec<Profile> = profiles.into_iter().map(|(_, p)| p).collect();
        profiles.sort_by_key(|p| std::cmp::Reverse(p.priority));
        Ok(Self { profiles, default })
    }

    /// The profile for a user in `groups`: the highest-priority matching profile, else
    /// `Default`, else `None` (nothing to apply).
    pub fn resolve<S: AsRef<str>>(&self, groups: &[S]) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| {
                p.group
                    .as_deref()
                    .is_some_and(|g| groups.iter().any(|m| same_group(g, m.as_ref())))
            })
            .or(self.default.as_ref())
    }

    /// The profile for a group's access: the group's own, else `Default`.
    pub fn for_group(&self, group: &str) -> Option<&Profile> {
        self.resolve(&[group])
    }

    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    pub fn default_profile(&self) -> Option<&Profile> {
        self.default.as_ref()
    }
}

/// Directory group names (Active Directory, Entra ID, most LDAP schemas) compare
/// case-insensitively, and events do not always spell them as the directory admin did.
fn same_group(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn parse_profile(
    item: &Value,
    is_default: bool,
    guardrails: &Guardrails,
) -> (Option<Profile>, Vec<String>) {
    let Value::Object(map) = item else {
        return (None, vec![mismatch("an object", item)]);
    };
    let f = Fields::new(map, false);
    let mut errs = Violations::default();
    for key in f.unknown(&[]) {
        match key {
            "Group" | "Priority" if is_default => errs.push(
                key,
                "not accepted in Default (it applies when no group matches)",
            ),
            k if PROFILE_FIELDS.contains(&k) => {}
            "HomeDirectoryType" | "HomeDirectoryMappings" => {
                errs.push(key, "chroot is not negotiable: give HomeDirectory only")
            }
            _ => errs.push(
                key,
                format!(
                    "unknown field (expected one of: {})",
                    if is_default {
                        &PROFILE_FIELDS[2..]
                    } else {
                        PROFILE_FIELDS
                    }
                    .join(", ")
                ),
            ),
        }
    }

    let group = if is_default {
        None
    } else {
        match f.string("Group") {
            None => {
                errs.push("Group", "required: the directory group's name");
                None
            }
            Some(Ok(g)) if g.trim().is_empty() => {
                errs.push("Group", "must not be empty");
                None
            }
            Some(given) => errs.check("Group", given),
        }
    };
    let priority = if is_default {
        None
    } else {
        match f.value("Priority") {
            None => {
                errs.push("Priority", "required: an integer, highest wins");
                None
            }
            Some(v) => errs.check(
                "Priority",
                v.as_i64().ok_or_else(|| mismatch("an integer", v)),
            ),
        }
    };

    let home = f.string("HomeDirectory").and_then(|given| {
        let parsed =
            given.and_then(|raw| parse_home(&raw, group.as_deref(), is_default, guardrails));
        errs.check("HomeDirectory", parsed)
    });

    let role = f.string("Role").and_then(|given| {
        let role = errs.check(
            "Role",
            given.and_then(|raw| RoleArn::parse(&raw).map_err(|e| e.to_string())),
        )?;
        match &guardrails.roles {
            _ if guardrails.allows_role(&role) => Some(role),
            None => {
                errs.push(
                    "Role",
                    format!(
                        "{role}: setting a role needs ALLOWED_ROLE_ARNS, which is not configured"
                    ),
                );
                None
            }
            Some(_) => {
                errs.push("Role", format!("{role} is not in ALLOWED_ROLE_ARNS"));
                None
            }
        }
    });
    let policy = f
        .policy("Policy")
        .and_then(|given| validate_policy(given, "Policy", &mut errs));
    let posix_profile = f.posix("PosixProfile").and_then(|given| match given {
        Ok(p) => p.validate("PosixProfile", &mut errs),
        Err(e) => {
            errs.push("PosixProfile", e);
            None
        }
    });

    let errors: Vec<String> = errs
        .into_vec()
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    if !errors.is_empty() {
        return (None, errors);
    }
    (
        Some(Profile {
            group,
            priority,
            home,
            settings: Settings {
                role,
                policy,
                posix_profile,
            },
        }),
        errors,
    )
}

/// Checks a profile's home template for both uses (user and access) against the home
/// roots, with `${GroupName}` filled in from the profile itself.
fn parse_home(
    raw: &str,
    group: Option<&str>,
    is_default: bool,
    guardrails: &Guardrails,
) -> Result<ProfileHome, String> {
    // Our own scan first, so an unknown placeholder is named with every allowed one.
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}').unwrap_or(after.len());
        let name = &after[..end];
        match name {
            "UserName" | "transfer:UserName" => {}
            "GroupName" if is_default => {
                return Err(format!(
                    "{raw:?}: ${{GroupName}} has no value in Default (it matches no group)"
                ));
            }
            "GroupName" => {}
            other => {
                return Err(format!(
                    "{raw:?}: unknown placeholder ${{{other}}}: allowed are ${{UserName}}, ${{GroupName}}, ${{transfer:UserName}}"
                ));
            }
        }
        rest = &after[end.min(after.len())..];
    }

    let mut filled = raw.to_owned();
    if raw.contains(GROUP_NAME) {
        let group = group.unwrap_or_default();
        // The group's name becomes one path segment: it must be a safe one.
        if group.contains('/') || HomePath::parse(&format!("/{group}"), TargetKind::User).is_err() {
            return Err(format!(
                "{raw:?}: group name {group:?} cannot be used as ${{GroupName}} in a path \
                 (ASCII letters, digits and - _ . @ + = , ~ only, no '/')"
            ));
        }
        filled = filled.replace(GROUP_NAME, group);
    }
    let as_user = filled.replace(TRANSFER_USER_NAME, USER_NAME);
    let as_access = filled.replace(USER_NAME, TRANSFER_USER_NAME);
    let user = HomeTemplate::parse(
        &as_user,
        &["UserName"],
        None,
        TargetKind::User,
        &guardrails.roots,
    )
    .map_err(|e| format!("{raw:?} as a user's home {e}"))?;
    let access = HomeTemplate::parse(&as_access, &[], None, TargetKind::Access, &guardrails.roots)
        .map_err(|e| format!("{raw:?} as an access target {e}"))?;
    Ok(ProfileHome {
        raw: raw.to_owned(),
        user,
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{HomeRoot, ServerId};
    use serde_json::json;

    const FINANCE_ROLE: &str = "arn:aws:iam::111122223333:role/sftp-finance";
    const USER_ROLE: &str = "arn:aws:iam::111122223333:role/sftp-user";

    fn guardrails(roles: Option<&[&str]>) -> Guardrails {
        Guardrails {
            servers: vec![ServerId::parse("s-0123456789abcdef0").unwrap()],
            roots: vec![
                HomeRoot::parse("/acme-sftp/home").unwrap(),
                HomeRoot::parse("/acme-sftp/groups").unwrap(),
            ],
            roles: roles.map(|r| r.iter().map(|a| RoleArn::parse(a).unwrap()).collect()),
            unrooted: None,
        }
    }

    fn parse(v: Value) -> Result<GroupProfiles, String> {
        GroupProfiles::parse(
            &v.to_string(),
            &guardrails(Some(&[FINANCE_ROLE, USER_ROLE])),
        )
    }

    fn sample() -> GroupProfiles {
        parse(json!({
            "Profiles": [
                {"Group": "sftp-staff", "Priority": 1, "HomeDirectory": "/acme-sftp/home/${UserName}"},
                {"Group": "sftp-finance", "Priority": 20,
                 "HomeDirectory": "/acme-sftp/groups/${GroupName}/${UserName}",
                 "Role": FINANCE_ROLE,
                 "Policy": {"Version": "2012-10-17", "Statement": []},
                 "PosixProfile": {"Uid": 1001, "Gid": 2001}},
                {"Group": "sftp-engineering", "Priority": 10,
                 "HomeDirectory": "/acme-sftp/groups/engineering/${transfer:UserName}"}
            ],
            "Default": {"HomeDirectory": "/acme-sftp/home/${UserName}", "Role": USER_ROLE}
        }))
        .unwrap()
    }

    #[test]
    fn highest_priority_wins_whatever_the_order_of_groups() {
        let p = sample();
        for groups in [
            vec!["sftp-engineering", "sftp-finance", "sftp-staff"],
            vec!["sftp-staff", "sftp-finance", "sftp-engineering"],
            vec!["other", "SFTP-Finance"],
        ] {
            assert_eq!(
                p.resolve(&groups).unwrap().label(),
                "sftp-finance",
                "{groups:?}"
            );
        }
        assert_eq!(
            p.resolve(&["sftp-staff", "sftp-engineering"])
                .unwrap()
                .label(),
            "sftp-engineering"
        );
    }

    #[test]
    fn default_when_nothing_matches_and_none_without_default() {
        let p = sample();
        let d = p.resolve(&["staff"]).unwrap();
        assert!(d.is_default());
        assert_eq!(d.label(), "Default");
        assert!(p.resolve::<&str>(&[]).unwrap().is_default());

        let no_default = parse(json!({"Profiles": [
            {"Group": "sftp-finance", "Priority": 1, "HomeDirectory": "/acme-sftp/groups/finance/${UserName}"}
        ]}))
        .unwrap();
        assert!(no_default.resolve(&["staff"]).is_none());
        assert!(no_default.for_group("sftp-engineering").is_none());
        assert_eq!(
            no_default.for_group("sftp-finance").unwrap().label(),
            "sftp-finance"
        );
    }

    #[test]
    fn templates_render_per_kind() {
        let p = sample();
        let finance = p.resolve(&["sftp-finance"]).unwrap();
        assert_eq!(
            finance.user_home("alice").unwrap(),
            "/acme-sftp/groups/sftp-finance/alice"
        );
        assert_eq!(
            finance.access_home().unwrap(),
            "/acme-sftp/groups/sftp-finance/${transfer:UserName}"
        );
        let eng = p.for_group("sftp-engineering").unwrap();
        assert_eq!(
            eng.user_home("bob").unwrap(),
            "/acme-sftp/groups/engineering/bob"
        );
        assert_eq!(
            eng.access_home().unwrap(),
            "/acme-sftp/groups/engineering/${transfer:UserName}"
        );
        let settings = finance.settings();
        assert_eq!(settings.role.as_ref().unwrap().as_str(), FINANCE_ROLE);
        assert_eq!(
            serde_json::to_value(settings.posix_profile.as_ref().unwrap()).unwrap(),
            json!({"Uid": 1001, "Gid": 2001})
        );
        assert!(settings.policy.is_some());
        assert!(p.resolve(&["x"]).unwrap().settings().policy.is_none());
    }

    #[test]
    fn a_profile_without_home_leaves_it_to_the_caller() {
        let p = parse(json!({"Default": {"Role": USER_ROLE}})).unwrap();
        let d = p.resolve(&["x"]).unwrap();
        assert_eq!(d.user_home("alice"), None);
        assert_eq!(d.access_home(), None);
    }

    /// Each bad configuration fails, and the message names the profile and the field.
    #[test]
    fn every_bad_profile_is_named() {
        let cases: Vec<(Value, &[&str])> = vec![
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "Role": "arn:aws:iam::111122223333:role/admin"}]}),
                &["Profiles[0] (a)", "Role", "not in ALLOWED_ROLE_ARNS"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "HomeDirectory": "/etc/${UserName}"}]}),
                &["Profiles[0] (a)", "HomeDirectory", "outside the home roots"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "HomeDirectory": "/acme-sftp/home"}]}),
                &["Profiles[0] (a)", "HomeDirectory"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "HomeDirectory": "/acme-sftp/home/${Email}"}]}),
                &["Profiles[0] (a)", "unknown placeholder ${Email}"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "HomeDirectory": "/acme-sftp/home/../${UserName}"}]}),
                &["Profiles[0] (a)", "HomeDirectory"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 5}, {"Group": "b", "Priority": 5}]}),
                &["Profiles[1] (b)", "Priority 5", "Profiles[0] (a)", "unique"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1}, {"Group": "A", "Priority": 2}]}),
                &["Profiles[1] (A)", "already has a profile"],
            ),
            (
                json!({"Profiles": [{"Priority": 1}]}),
                &["Profiles[0]", "Group: required"],
            ),
            (
                json!({"Profiles": [{"Group": "a"}]}),
                &["Profiles[0] (a)", "Priority: required"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": "1"}]}),
                &["Priority: must be an integer"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "HomeDirectoryType": "PATH"}]}),
                &["HomeDirectoryType", "not negotiable"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "Home": "/acme-sftp/home/x"}]}),
                &["Profiles[0] (a)", "Home: unknown field"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "PosixProfile": {"Uid": -1, "Gid": 1}}]}),
                &["Profiles[0] (a)", "PosixProfile.Uid"],
            ),
            (
                json!({"Profiles": [{"Group": "a", "Priority": 1, "Policy": "not json"}]}),
                &["Profiles[0] (a)", "Policy"],
            ),
            (
                json!({"Profiles": [{"Group": "Domain Users", "Priority": 1, "HomeDirectory": "/acme-sftp/groups/${GroupName}/${UserName}"}]}),
                &[
                    "Profiles[0] (Domain Users)",
                    "cannot be used as ${GroupName}",
                ],
            ),
            (
                json!({"Default": {"HomeDirectory": "/acme-sftp/groups/${GroupName}"}}),
                &["Default", "${GroupName} has no value in Default"],
            ),
            (
                json!({"Default": {"Priority": 3}}),
                &["Default", "Priority: not accepted in Default"],
            ),
            (
                json!({"Default": {"Role": "arn:aws:iam::999999999999:role/x"}}),
                &["Default", "Role"],
            ),
            (json!({"Profiles": {}}), &["Profiles must be an array"]),
            (json!({"Profile": []}), &["unknown key \"Profile\""]),
            (json!({}), &["neither Profiles nor Default"]),
            (json!([]), &["must be a JSON object"]),
        ];
        for (value, wanted) in cases {
            let err = parse(value.clone()).expect_err(&value.to_string());
            for w in wanted {
                assert!(err.contains(w), "{value}: {err:?} lacks {w:?}");
            }
        }
        assert!(
            GroupProfiles::parse("{not json", &guardrails(None))
                .unwrap_err()
                .contains("must be JSON")
        );
    }

    #[test]
    fn roles_need_allowed_role_arns() {
        let err = GroupProfiles::parse(
            &json!({"Default": {"Role": USER_ROLE}}).to_string(),
            &guardrails(None),
        )
        .unwrap_err();
        assert!(err.contains("ALLOWED_ROLE_ARNS"), "{err}");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let err = parse(json!({"Profiles": [
            {"Group": "a", "Priority": 1, "Role": "arn:aws:iam::111122223333:role/admin"},
            {"Group": "b", "Priority": 2, "HomeDirectory": "/tmp/${UserName}"}
        ], "Default": {"Bogus": 1}}))
        .unwrap_err();
        assert!(
            err.contains("Profiles[0] (a)")
                && err.contains("Profiles[1] (b)")
                && err.contains("Default: Bogus"),
            "{err}"
        );
    }
}
