//! Is a live user or access chrooted, and if not, to what: classification and
//! derivation, shared by every path that finds targets it did not write itself (a
//! CloudTrail event today, a fleet audit next). Pure: (target, live state, rules) →
//! [`Finding`].
//!
//! Derive, never guess: a target's chroot is its current home when that is a valid
//! target strictly below a home root, or `HOME_TEMPLATE` for a user with no home at
//! all. Anything else (a home outside the roots, a root itself, several logical
//! mappings, ...) needs a person, and is never written.

use crate::command::ChrootCommand;
use crate::config::Config;
use crate::domain::{ChrootTarget, HomePath, Settings, Subject, Target, TargetKind};
use crate::transfer::{HomeDirectoryType, LiveHome, Mapping};

/// The four classes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Chrooted,
    Drifted,
    NeedsAttention,
    Exempt,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chrooted => "Chrooted",
            Self::Drifted => "Drifted",
            Self::NeedsAttention => "NeedsAttention",
            Self::Exempt => "Exempt",
        }
    }
}

/// What a look at one target found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `LOGICAL` with the one `/` → target mapping, the target strictly below a root.
    Chrooted { chroot: ChrootTarget },
    /// Not chrooted; `chroot` is derived without guessing, `reason` says from what.
    Drifted {
        chroot: ChrootTarget,
        reason: String,
    },
    /// Not chrooted, and no chroot can be derived: a person decides.
    NeedsAttention { reason: String },
    /// Named in `EXEMPT_USERS`: never touched.
    Exempt,
}

impl Finding {
    pub fn class(&self) -> Class {
        match self {
            Self::Chrooted { .. } => Class::Chrooted,
            Self::Drifted { .. } => Class::Drifted,
            Self::NeedsAttention { .. } => Class::NeedsAttention,
            Self::Exempt => Class::Exempt,
        }
    }

    /// The command that fixes a drifted target: the chroot alone, every other setting
    /// left as it is.
    pub fn fix(&self, target: &Target, dry_run: bool) -> Option<ChrootCommand> {
        match self {
            Self::Drifted { chroot, .. } => Some(ChrootCommand {
                target: target.clone(),
                chroot: chroot.clone(),
                settings: Settings::default(),
                dry_run,
            }),
            _ => None,
        }
    }
}

/// What the directory says a user should be (`IDENTITY_STORE_ID`): its profile's home
/// and settings, and why that profile ([`crate::membership::Choice`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The profile's label (`sftp-finance`, `Default`).
    pub profile: String,
    pub why: String,
    /// The profile's home for this user, rendered (checked against the roots here).
    pub home: Option<String>,
    /// The profile's `Role`, `Policy`, `PosixProfile`.
    pub settings: Settings,
}

impl Expected {
    /// What `profile` gives the user `name`.
    pub fn of(profile: &crate::profiles::Profile, why: &str, name: &str) -> Self {
        Self {
            profile: profile.label().to_owned(),
            why: why.to_owned(),
            home: profile.user_home(name),
            settings: profile.settings().clone(),
        }
    }

    fn says(&self) -> String {
        format!("its profile {} ({})", self.profile, self.why)
    }
}

/// [`classify`], against what the directory expects of a user when it expects
/// something: chrooted means chrooted to the profile's home with the profile's
/// `Role`; anything else is `Drifted` to the profile's home (a home the roots refuse
/// is `NeedsAttention`). Without an expectation, [`classify`].
pub fn classify_expecting(
    target: &Target,
    live: &LiveHome,
    config: &Config,
    expected: Option<&Expected>,
) -> Finding {
    let base = classify(target, live, config);
    let (Some(e), TargetKind::User) = (expected, target.kind()) else {
        return base;
    };
    if matches!(base, Finding::Exempt) || config.guardrails.no_roots().is_some() {
        return base;
    }
    let role = e.settings.role.as_ref().map(|r| r.as_str());
    let role_differs = role.is_some_and(|r| live.role.as_deref() != Some(r));
    let role_reason = || {
        format!(
            "holds role {}, but {} sets {}",
            live.role.as_deref().unwrap_or("(none)"),
            e.says(),
            role.unwrap_or_default()
        )
    };
    let Some(home) = &e.home else {
        // The profile sets no home: the home is judged as usual, the role is its.
        return match base {
            Finding::Chrooted { chroot } if role_differs => Finding::Drifted {
                chroot,
                reason: role_reason(),
            },
            other => other,
        };
    };
    let want = match admitted(home, TargetKind::User, config) {
        Ok(want) => want,
        Err(why) => {
            return Finding::NeedsAttention {
                reason: format!("{} expects {home}, which {why}", e.says()),
            };
        }
    };
    match base {
        Finding::Chrooted { chroot } if chroot == want && !role_differs => {
            Finding::Chrooted { chroot }
        }
        Finding::Chrooted { chroot } if chroot == want => Finding::Drifted {
            chroot: want,
            reason: role_reason(),
        },
        Finding::Chrooted { chroot } => Finding::Drifted {
            reason: format!("chrooted into {chroot}, but {} expects {want}", e.says()),
            chroot: want,
        },
        Finding::Drifted { reason, .. } | Finding::NeedsAttention { reason } => Finding::Drifted {
            reason: format!("{reason}; {} expects {want}", e.says()),
            chroot: want,
        },
        Finding::Exempt => Finding::Exempt,
    }
}

impl Finding {
    /// [`Finding::fix`], with the expected profile's settings (its role, policy and
    /// POSIX profile) written along with the home.
    pub fn fix_expecting(
        &self,
        target: &Target,
        dry_run: bool,
        expected: Option<&Expected>,
    ) -> Option<ChrootCommand> {
        let mut command = self.fix(target, dry_run)?;
        if let (Some(e), TargetKind::User) = (expected, target.kind()) {
            command.settings = e.settings.clone();
        }
        Some(command)
    }
}

/// Whether `target` is named in `EXEMPT_USERS` (user names and external ids).
pub fn is_exempt(target: &Target, config: &Config) -> bool {
    config.exempt.contains(target.subject.as_str())
}

/// A path admitted as a chroot target, or why not.
fn admitted(path: &str, kind: TargetKind, config: &Config) -> Result<ChrootTarget, String> {
    let path = HomePath::parse(path, kind).map_err(|e| format!("it {e}"))?;
    let roots = &config.guardrails.roots;
    if roots.iter().any(|r| r.as_str() == path.as_str()) {
        return Err("it is a home root itself, which would expose every other home".to_owned());
    }
    ChrootTarget::admit(path, roots).map_err(|e| e.to_string())
}

fn no_home(live: &LiveHome) -> bool {
    live.home_directory
        .as_deref()
        .is_none_or(|h| h.is_empty() || h == "/")
}

/// Classifies the live state of `target` (as DescribeUser/DescribeAccess, or a list
/// operation for a `PATH` one, report it).
pub fn classify(target: &Target, live: &LiveHome, config: &Config) -> Finding {
    if is_exempt(target, config) {
        return Finding::Exempt;
    }
    if let Some(reason) = config.guardrails.no_roots() {
        return Finding::NeedsAttention { reason };
    }
    let kind = target.kind();
    let logical = live.home_directory_type == Some(HomeDirectoryType::Logical);
    match (logical, live.home_directory_mappings.as_slice()) {
        (true, [m]) => chrooted_or_not(m, kind, config),
        (true, [_, _, ..]) => Finding::NeedsAttention {
            reason: format!(
                "LOGICAL with {} mappings: which one is the home cannot be told",
                live.home_directory_mappings.len()
            ),
        },
        // PATH, no type, or LOGICAL without a mapping: the home is `HomeDirectory`.
        _ if no_home(live) => from_template(target, config),
        _ => {
            let home = live.home_directory.as_deref().unwrap_or_default();
            match admitted(home, kind, config) {
                Ok(chroot) => Finding::Drifted {
                    reason: format!("home {home} is not chrooted: chroot it there"),
                    chroot,
                },
                Err(why) => Finding::NeedsAttention {
                    reason: format!("home {home} cannot be the chroot: {why}"),
                },
            }
        }
    }
}

fn chrooted_or_not(m: &Mapping, kind: TargetKind, config: &Config) -> Finding {
    if m.entry != "/" || !m.is_directory() {
        return Finding::NeedsAttention {
            reason: format!(
                "LOGICAL with one mapping {} → {} that is not the chroot's / → directory",
                m.entry, m.target
            ),
        };
    }
    match admitted(&m.target, kind, config) {
        Ok(chroot) => Finding::Chrooted { chroot },
        Err(why) => Finding::NeedsAttention {
            reason: format!("chrooted to {}, which cannot be a chroot: {why}", m.target),
        },
    }
}

fn from_template(target: &Target, config: &Config) -> Finding {
    let Subject::User(user) = &target.subject else {
        return Finding::NeedsAttention {
            reason: "an access without a home: its target cannot be derived".to_owned(),
        };
    };
    let Some(template) = &config.defaults.home_template else {
        return Finding::NeedsAttention {
            reason: "no home, and no HOME_TEMPLATE to derive one from".to_owned(),
        };
    };
    let home = template.render(&[("UserName", user.as_str())]);
    match admitted(&home, TargetKind::User, config) {
        Ok(chroot) => Finding::Drifted {
            reason: format!("no home: HOME_TEMPLATE gives {home}"),
            chroot,
        },
        Err(why) => Finding::NeedsAttention {
            reason: format!("no home, and HOME_TEMPLATE gives {home}, which {why}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::MappingType;

    fn config(template: bool) -> Config {
        let mut vars = vec![
            ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
            ("HOME_ROOTS", "/b/home,/b/groups"),
            ("EXEMPT_USERS", "admin,S-1-5-21-9"),
        ];
        if template {
            vars.push(("HOME_TEMPLATE", "/b/home/${UserName}"));
        }
        Config::from_pairs(&vars).unwrap()
    }

    fn target(label: &str) -> Target {
        label.parse().unwrap()
    }

    fn path(home: Option<&str>) -> LiveHome {
        LiveHome {
            home_directory: home.map(str::to_owned),
            home_directory_type: Some(HomeDirectoryType::Path),
            ..LiveHome::default()
        }
    }

    fn logical(mappings: &[(&str, &str)]) -> LiveHome {
        LiveHome {
            home_directory: Some("/".into()),
            home_directory_type: Some(HomeDirectoryType::Logical),
            home_directory_mappings: mappings
                .iter()
                .map(|(e, t)| Mapping::directory(e, t))
                .collect(),
            ..LiveHome::default()
        }
    }

    const ALICE: &str = "s-0123456789abcdef0/users/alice";
    const GROUP: &str = "s-0123456789abcdef0/accesses/S-1-5-21-1";

    #[test]
    fn every_class_and_reason() {
        let c = config(true);
        let alice = target(ALICE);
        let chroot = |f: Finding| match f {
            Finding::Chrooted { chroot } | Finding::Drifted { chroot, .. } => {
                chroot.as_str().to_owned()
            }
            other => panic!("no chroot: {other:?}"),
        };
        // Chrooted.
        let f = classify(&alice, &logical(&[("/", "/b/home/alice")]), &c);
        assert_eq!(f.class(), Class::Chrooted);
        assert_eq!(chroot(f), "/b/home/alice");
        // Drifted: from the PATH home, from the template when there is no home.
        let f = classify(&alice, &path(Some("/b/home/alice")), &c);
        assert_eq!(f.class(), Class::Drifted);
        assert_eq!(chroot(f), "/b/home/alice");
        for none in [None, Some(""), Some("/")] {
            let f = classify(&alice, &path(none), &c);
            assert_eq!(f.class(), Class::Drifted, "{none:?}");
            assert_eq!(chroot(f), "/b/home/alice");
        }
        let mut untyped = path(Some("/b/home/x"));
        untyped.home_directory_type = None;
        assert_eq!(classify(&alice, &untyped, &c).class(), Class::Drifted);
        // Exempt, by user name and by external id.
        assert_eq!(
            classify(&target("s-0123456789abcdef0/users/admin"), &path(None), &c),
            Finding::Exempt
        );
        assert_eq!(
            classify(
                &target("s-0123456789abcdef0/accesses/S-1-5-21-9"),
                &path(None),
                &c
            ),
            Finding::Exempt
        );
        // NeedsAttention, each with its reason.
        for (live, why) in [
            (path(Some("/etc/alice")), "not strictly below"),
            (path(Some("/b/home")), "home root itself"),
            (path(Some("/b/home/../x")), "'.' or '..'"),
            (
                logical(&[("/", "/b/home/a"), ("/s", "/b/shared")]),
                "2 mappings",
            ),
            (logical(&[("/in", "/b/home/alice")]), "not the chroot"),
            (logical(&[("/", "/b/home")]), "home root itself"),
            (logical(&[("/", "/elsewhere/alice")]), "not strictly below"),
        ] {
            match classify(&alice, &live, &c) {
                Finding::NeedsAttention { reason } => assert!(reason.contains(why), "{reason}"),
                other => panic!("{live:?}: {other:?}"),
            }
        }
        let mut file = logical(&[("/", "/b/home/alice")]);
        file.home_directory_mappings[0].r#type = Some(MappingType::File);
        assert_eq!(classify(&alice, &file, &c).class(), Class::NeedsAttention);
    }

    #[test]
    fn without_a_template_or_for_an_access_no_home_needs_attention() {
        let reason = |f: Finding| match f {
            Finding::NeedsAttention { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert!(
            reason(classify(&target(ALICE), &path(None), &config(false))).contains("HOME_TEMPLATE")
        );
        assert!(reason(classify(&target(GROUP), &path(None), &config(true))).contains("access"));
        // An access's own home still derives.
        let f = classify(
            &target(GROUP),
            &path(Some("/b/groups/finance")),
            &config(true),
        );
        assert_eq!(f.class(), Class::Drifted);
    }

    #[test]
    fn the_fix_is_the_chroot_alone() {
        let c = config(true);
        let alice = target(ALICE);
        let f = classify(&alice, &path(Some("/b/home/alice")), &c);
        let fix = f.fix(&alice, false).unwrap();
        assert_eq!(fix.chroot.as_str(), "/b/home/alice");
        assert_eq!(fix.settings, Settings::default());
        assert!(Finding::Exempt.fix(&alice, false).is_none());
    }

    #[test]
    fn a_server_without_roots_needs_attention_whatever_its_home() {
        let c = Config::from_pairs(&[("SERVER_TAG", "k"), ("EXEMPT_USERS", "admin")]).unwrap();
        let chrooted = LiveHome {
            home_directory_type: Some(HomeDirectoryType::Logical),
            home_directory_mappings: vec![Mapping::directory("/", "/b/home/alice")],
            ..LiveHome::default()
        };
        for live in [chrooted, path(Some("/b/home/alice")), path(None)] {
            match classify(&target(ALICE), &live, &c) {
                Finding::NeedsAttention { reason } => {
                    assert!(
                        reason.starts_with("no home roots for this server"),
                        "{reason}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
        let admin = target("s-0123456789abcdef0/users/admin");
        assert_eq!(classify(&admin, &path(None), &c), Finding::Exempt);
    }

    mod expected {
        use super::*;
        use crate::domain::RoleArn;

        fn finance(home: &str, role: Option<&str>) -> Expected {
            Expected {
                profile: "sftp-finance".into(),
                why: "member of sftp-finance in the directory now (priority 20)".into(),
                home: Some(home.into()),
                settings: Settings {
                    role: role.map(|r| RoleArn::parse(r).unwrap()),
                    ..Settings::default()
                },
            }
        }

        fn logical(to: &str, role: Option<&str>) -> LiveHome {
            LiveHome {
                home_directory: Some("/".into()),
                home_directory_type: Some(HomeDirectoryType::Logical),
                home_directory_mappings: vec![Mapping::directory("/", to)],
                role: role.map(str::to_owned),
                ..LiveHome::default()
            }
        }

        const ROLE: &str = "arn:aws:iam::111122223333:role/sftp-finance";

        #[test]
        fn chrooted_means_the_profiles_home_and_role() {
            let c = config(true);
            let alice = target("s-0123456789abcdef0/users/alice");
            let e = finance("/b/groups/finance/alice", Some(ROLE));
            let ok = classify_expecting(
                &alice,
                &logical("/b/groups/finance/alice", Some(ROLE)),
                &c,
                Some(&e),
            );
            assert_eq!(ok.class(), Class::Chrooted);
            let elsewhere =
                classify_expecting(&alice, &logical("/b/home/alice", Some(ROLE)), &c, Some(&e));
            let Finding::Drifted { chroot, reason } = &elsewhere else {
                panic!("{elsewhere:?}")
            };
            assert_eq!(chroot.as_str(), "/b/groups/finance/alice");
            assert!(
                reason.contains("chrooted into /b/home/alice") && reason.contains("sftp-finance"),
                "{reason}"
            );
            let role = classify_expecting(
                &alice,
                &logical("/b/groups/finance/alice", None),
                &c,
                Some(&e),
            );
            assert!(
                matches!(&role, Finding::Drifted { reason, .. } if reason.contains("holds role (none)")),
                "{role:?}"
            );
            // The fix writes the profile's role with the home.
            let fix = role.fix_expecting(&alice, false, Some(&e)).unwrap();
            assert_eq!(fix.settings.role.as_ref().map(|r| r.as_str()), Some(ROLE));
        }

        #[test]
        fn a_path_home_or_several_mappings_are_drifted_to_the_profile_and_a_home_outside_the_roots_needs_attention()
         {
            let c = config(true);
            let alice = target("s-0123456789abcdef0/users/alice");
            let e = finance("/b/groups/finance/alice", None);
            for live in [path(Some("/elsewhere")), path(None)] {
                let f = classify_expecting(&alice, &live, &c, Some(&e));
                assert!(
                    matches!(&f, Finding::Drifted { chroot, .. } if chroot.as_str() == "/b/groups/finance/alice"),
                    "{f:?}"
                );
            }
            let outside = finance("/other/alice", None);
            let f = classify_expecting(&alice, &path(None), &c, Some(&outside));
            assert_eq!(f.class(), Class::NeedsAttention, "{f:?}");
            // Exempt and accesses stay what they are.
            let admin = target("s-0123456789abcdef0/users/admin");
            assert_eq!(
                classify_expecting(&admin, &path(None), &c, Some(&e)),
                Finding::Exempt
            );
        }
    }
}
