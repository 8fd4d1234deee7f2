//! Planning: (desired, live) → changes. Pure, so dry runs, read-backs and tests all
//! see exactly what a write would do.

use serde_json::{Value, json};

use crate::command::ChrootCommand;
use crate::outcome::Change;
use crate::transfer::{HomeDirectoryType, LiveHome, Mapping, UpdateRequest};

/// The landing directory of a chrooted user.
///
/// Under `LOGICAL`, `HomeDirectory` is a *logical* path and must lie in one of the
/// mappings. A user moved from `PATH` keeps its old value (e.g. `/bucket/home/alice`)
/// unless we change it, and would then land in a folder that does not exist in its
/// view. The chroot's own root, `/`, is always right, so it is always written.
pub const LANDING_DIRECTORY: &str = "/";

pub const POLICY_WITH_LOGICAL_WARNING: &str = "a session Policy together with logical home directories \
     can cause permission denied errors (AWS Transfer Family user guide, \"Implementing logical \
     directories\"); prefer scoping access in the Role";

/// The request that makes `command` true.
pub fn desired(command: &ChrootCommand) -> UpdateRequest {
    UpdateRequest {
        target: command.target.clone(),
        chroot: command.chroot.clone(),
        home_directory: LANDING_DIRECTORY,
        settings: command.settings.clone(),
    }
}

fn mapping_json(m: &[Mapping]) -> Value {
    serde_json::to_value(m).unwrap_or_default()
}

/// `true` when the live mappings are exactly the single `/` → target directory mapping.
fn is_chroot_mapping(live: &[Mapping], target: &str) -> bool {
    matches!(live, [m] if m.entry == "/" && m.target == target && m.is_directory())
}

/// The chroot target when `live` is chrooted (`LOGICAL` with one `/` directory mapping).
pub fn chroot_target(live: &LiveHome) -> Option<&str> {
    match (
        live.home_directory_type.as_ref(),
        live.home_directory_mappings.as_slice(),
    ) {
        (Some(HomeDirectoryType::Logical), [m])
            if is_chroot_mapping(std::slice::from_ref(m), &m.target) =>
        {
            Some(m.target.as_str())
        }
        _ => None,
    }
}

/// Every field that differs between what is live and what `request` would write.
pub fn changes(request: &UpdateRequest, live: &LiveHome) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut change = |field: &str, before: Value, after: Value| {
        changes.push(Change {
            field: field.to_owned(),
            before,
            after,
        })
    };

    if live.home_directory_type != Some(HomeDirectoryType::Logical) {
        change(
            "HomeDirectoryType",
            json!(live.home_directory_type),
            json!(HomeDirectoryType::Logical),
        );
    }
    if !is_chroot_mapping(&live.home_directory_mappings, request.chroot.as_str()) {
        let before = if live.home_directory_mappings.is_empty() {
            Value::Null
        } else {
            mapping_json(&live.home_directory_mappings)
        };
        change(
            "HomeDirectoryMappings",
            before,
            mapping_json(&request.mappings()),
        );
    }
    // Absent or empty lands in `/` too, so it is already right.
    let landing = live.home_directory.as_deref().unwrap_or("");
    if !(landing.is_empty() || landing == request.home_directory) {
        change(
            "HomeDirectory",
            json!(live.home_directory),
            json!(request.home_directory),
        );
    }
    let settings = &request.settings;
    if let Some(role) = &settings.role
        && live.role.as_deref() != Some(role.as_str())
    {
        change("Role", json!(live.role), json!(role.as_str()));
    }
    if let Some(policy) = &settings.policy
        && !live.policy.as_deref().is_some_and(|p| policy.same_as(p))
    {
        change("Policy", json!(live.policy), json!(policy.as_str()));
    }
    if let Some(posix) = &settings.posix_profile {
        let same = live.posix_profile.as_ref().is_some_and(|p| {
            let secondary: Option<Vec<u64>> = p
                .secondary_gids
                .iter()
                .map(|g| u64::try_from(*g).ok())
                .collect();
            match (u64::try_from(p.uid), u64::try_from(p.gid), secondary) {
                (Ok(uid), Ok(gid), Some(sec)) => posix.same_as(uid, gid, &sec),
                _ => false,
            }
        });
        if !same {
            change(
                "PosixProfile",
                serde_json::to_value(&live.posix_profile).unwrap_or_default(),
                serde_json::to_value(posix).unwrap_or_default(),
            );
        }
    }
    changes
}

/// Things AWS documents as likely to break the login even though the call succeeds.
pub fn warnings(request: &UpdateRequest, live: &LiveHome) -> Vec<String> {
    let mut warnings = Vec::new();
    if request.settings.policy.is_some() || live.policy.as_deref().is_some_and(|p| !p.is_empty()) {
        warnings.push(POLICY_WITH_LOGICAL_WARNING.to_owned());
    }
    if request
        .chroot
        .as_str()
        .contains(crate::domain::home::TRANSFER_USER_NAME)
        && request.settings.role.is_none()
        && live.role.is_none()
    {
        warnings
            .push("no Role is set: Transfer needs a role that grants the target path".to_owned());
    }
    warnings
}

/// The policy variables Transfer documents for session policies (AWS Transfer Family
/// user guide, "Creating a session policy for an Amazon S3 bucket"), compared without
/// regard to case: `${Transfer:UserName}` is seen working in the wild.
pub const POLICY_VARIABLES: [&str; 4] = ["UserName", "HomeDirectory", "HomeBucket", "HomeFolder"];

/// What a session `policy` about to be written is likely to get wrong on a server of
/// `domain` (never a refusal: the call itself would succeed):
/// - on EFS: "Amazon EFS does not use session policies" (AWS Transfer Family user
///   guide): access there is the role's and the POSIX profile's;
/// - a `transfer:` variable Transfer does not substitute: another sigil (`&{…}`,
///   `{…}`) or a name it does not document (`${transfer:HomeDir}`) stays literal, and
///   the statement then matches nothing it was meant to.
pub fn policy_warnings(
    policy: Option<&str>,
    domain: &crate::transfer::StorageDomain,
) -> Vec<String> {
    let Some(policy) = policy.filter(|p| !p.trim().is_empty()) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    if *domain == crate::transfer::StorageDomain::Efs {
        warnings.push(
            "a session Policy on an EFS server has no effect: Amazon EFS does not use session \
             policies (the role and the POSIX profile decide access there)"
                .to_owned(),
        );
    }
    let lower = policy.to_ascii_lowercase();
    let mut seen: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("{transfer:") {
        let start = from + at;
        from = start + 1;
        let Some(len) = policy[start..].find('}') else {
            break;
        };
        let name = &policy[start + "{transfer:".len()..start + len];
        // The character before the brace, whatever its width.
        let before = policy[..start].char_indices().next_back();
        let sigil = before.map(|(_, c)| c);
        let written = &policy[before.map_or(start, |(i, _)| i)..start + len + 1];
        let problem = if sigil != Some('$') {
            Some(format!(
                "{written} in the session Policy is not a policy variable (variables are \
                 written ${{transfer:Name}}): Transfer keeps it literally"
            ))
        } else if !POLICY_VARIABLES
            .iter()
            .any(|v| v.eq_ignore_ascii_case(name))
        {
            Some(format!(
                "{written} in the session Policy is not a variable Transfer substitutes \
                 (${{transfer:UserName}}, ${{transfer:HomeDirectory}}, ${{transfer:HomeBucket}}, \
                 ${{transfer:HomeFolder}}): it stays literal and the statement matches nothing"
            ))
        } else {
            None
        };
        if let Some(p) = problem
            && !seen.contains(&p)
        {
            seen.push(p.clone());
            warnings.push(p);
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_policy_warnings_name_efs_and_variables_transfer_does_not_substitute() {
        use crate::transfer::StorageDomain;
        let ok = r#"{"Statement":[{"Resource":"arn:aws:s3:::${transfer:HomeBucket}/${Transfer:UserName}/*"}]}"#;
        assert!(
            policy_warnings(Some(ok), &StorageDomain::S3).is_empty(),
            "case alone is fine"
        );
        assert_eq!(policy_warnings(Some(ok), &StorageDomain::Efs).len(), 1);
        assert!(policy_warnings(None, &StorageDomain::Efs).is_empty());
        let bad = r#"{"Statement":[{"Resource":["arn:aws:s3:::b/&{transfer:UserName}/*",
            "arn:aws:s3:::b/${transfer:HomeDir}/*", "arn:aws:s3:::b/${transfer:HomeDir}/x"]}]}"#;
        let w = policy_warnings(Some(bad), &StorageDomain::S3);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("&{transfer:UserName}") && w[0].contains("not a policy variable"));
        assert!(
            w[1].contains("${transfer:HomeDir}")
                && w[1].contains("not a variable Transfer substitutes")
        );
        // Any text before the brace, however wide its characters: no panic.
        let wide = "é{transfer:UserName} ü{transfer:x";
        assert_eq!(policy_warnings(Some(wide), &StorageDomain::S3).len(), 1);
    }

    use crate::domain::{
        ChrootTarget, HomePath, HomeRoot, PosixProfile, RoleArn, ServerId, SessionPolicy, Settings,
        Target, TargetKind, UserName,
    };
    use crate::transfer::{LivePosix, MappingType, Subject};

    fn request() -> UpdateRequest {
        let roots = [HomeRoot::parse("/b/home").unwrap()];
        UpdateRequest {
            target: Target::new(
                ServerId::parse("s-0123456789abcdef0").unwrap(),
                Subject::User(UserName::parse("alice").unwrap()),
            ),
            chroot: ChrootTarget::admit(
                HomePath::parse("/b/home/alice", TargetKind::User).unwrap(),
                &roots,
            )
            .unwrap(),
            home_directory: LANDING_DIRECTORY,
            settings: Settings::default(),
        }
    }

    fn chrooted() -> LiveHome {
        LiveHome {
            home_directory: Some("/".into()),
            home_directory_type: Some(HomeDirectoryType::Logical),
            home_directory_mappings: vec![Mapping {
                entry: "/".into(),
                target: "/b/home/alice".into(),
                r#type: None,
            }],
            ..LiveHome::default()
        }
    }

    fn fields(c: &[Change]) -> Vec<&str> {
        c.iter().map(|c| c.field.as_str()).collect()
    }

    #[test]
    fn chrooted_user_needs_nothing() {
        assert!(changes(&request(), &chrooted()).is_empty());
        let mut live = chrooted();
        live.home_directory = None;
        assert!(
            changes(&request(), &live).is_empty(),
            "no landing dir means /"
        );
        live.home_directory_mappings[0].r#type = Some(MappingType::Directory);
        assert!(
            changes(&request(), &live).is_empty(),
            "DIRECTORY is the default type"
        );
        assert_eq!(chroot_target(&live), Some("/b/home/alice"));
    }

    #[test]
    fn path_user_becomes_logical_and_loses_stale_home() {
        let live = LiveHome {
            home_directory: Some("/b/home/alice".into()),
            home_directory_type: Some(HomeDirectoryType::Path),
            ..LiveHome::default()
        };
        let c = changes(&request(), &live);
        assert_eq!(
            fields(&c),
            [
                "HomeDirectoryType",
                "HomeDirectoryMappings",
                "HomeDirectory"
            ]
        );
        assert_eq!(c[2].before, json!("/b/home/alice"));
        assert_eq!(c[2].after, json!("/"));
        assert_eq!(chroot_target(&live), None);
    }

    #[test]
    fn wrong_mappings_are_replaced() {
        for mappings in [
            vec![Mapping {
                entry: "/".into(),
                target: "/b/home/bob".into(),
                r#type: None,
            }],
            vec![Mapping {
                entry: "/".into(),
                target: "/b/home/alice".into(),
                r#type: Some(MappingType::File),
            }],
            vec![
                Mapping {
                    entry: "/".into(),
                    target: "/b/home/alice".into(),
                    r#type: None,
                },
                Mapping {
                    entry: "/shared".into(),
                    target: "/b/shared".into(),
                    r#type: None,
                },
            ],
        ] {
            let mut live = chrooted();
            live.home_directory_mappings = mappings;
            assert_eq!(
                fields(&changes(&request(), &live)),
                ["HomeDirectoryMappings"]
            );
            if live.home_directory_mappings.len() > 1
                || live.home_directory_mappings[0].r#type.is_some()
            {
                assert_eq!(chroot_target(&live), None);
            }
        }
    }

    #[test]
    fn optional_fields_change_only_when_given_and_different() {
        let mut req = request();
        req.settings.role = Some(RoleArn::parse("arn:aws:iam::111122223333:role/sftp").unwrap());
        req.settings.policy = Some(SessionPolicy::parse(r#"{"Statement":[]}"#).unwrap());
        req.settings.posix_profile = Some(PosixProfile::new(1, 2, vec![3, 4]).unwrap());
        let mut live = chrooted();
        assert_eq!(
            fields(&changes(&req, &live)),
            ["Role", "Policy", "PosixProfile"]
        );
        live.role = Some("arn:aws:iam::111122223333:role/sftp".into());
        live.policy = Some("{ \"Statement\": [] }".into());
        live.posix_profile = Some(LivePosix {
            uid: 1,
            gid: 2,
            secondary_gids: vec![4, 3],
        });
        assert!(changes(&req, &live).is_empty());
        // Omitted means "leave as it is", whatever is live.
        assert!(changes(&request(), &live).is_empty());
    }

    #[test]
    fn policy_with_logical_warns() {
        assert!(warnings(&request(), &chrooted()).is_empty());
        let mut live = chrooted();
        live.policy = Some(r#"{"Statement":[]}"#.into());
        assert_eq!(warnings(&request(), &live), [POLICY_WITH_LOGICAL_WARNING]);
    }

    #[test]
    fn request_json_is_the_chroot() {
        let body = serde_json::to_value(request()).unwrap();
        assert_eq!(
            body,
            json!({"ServerId": "s-0123456789abcdef0", "UserName": "alice",
                   "HomeDirectoryType": "LOGICAL",
                   "HomeDirectoryMappings": [{"Entry": "/", "Target": "/b/home/alice"}],
                   "HomeDirectory": "/"})
        );
    }
}
