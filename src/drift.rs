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
}
