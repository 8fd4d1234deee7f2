//! Chroot targets: the path a user or access is locked into.
//!
//! A target is a security boundary, so the rules are deliberately narrower than what S3
//! or EFS would store: ASCII only (no Unicode look-alikes of `.` or `/`), no backslash or
//! `%` (no second decoding can turn a segment into `..`), no `.`/`..`/empty segments, and
//! it must lie strictly below one of `HOME_ROOTS` by whole segments.

use std::fmt;

pub const MAX_PATH_BYTES: usize = 1024;
/// Kept literally: Transfer substitutes it with the logged-in user's name at login.
pub const TRANSFER_USER_NAME: &str = "${transfer:UserName}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    User,
    Access,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathViolation {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 1024 bytes, got {0}")]
    TooLong(usize),
    #[error("must not contain control characters")]
    Control,
    #[error(
        "must not contain {0:?}: paths use ASCII letters, digits and - _ . @ + = , ~ ! ( ) ' * only"
    )]
    Char(char),
    #[error("must be an absolute path starting with '/'")]
    NotAbsolute,
    #[error("must not end with '/'")]
    TrailingSlash,
    #[error("must not contain empty segments ('//')")]
    EmptySegment,
    #[error("must not contain '.' or '..' segments")]
    DotSegment,
    #[error(
        "'${{transfer:UserName}}' is only allowed in an access target; a user's home must be concrete"
    )]
    TransferVariableForUser,
    #[error("must not be '/': a chroot target is a folder below a home root")]
    Root,
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '/' | '-' | '_' | '.' | '@' | '+' | '=' | ',' | '~' | '!' | '(' | ')' | '\'' | '*'
        )
}

/// An absolute, normalised path (validated shape, not yet admitted under a root).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HomePath(String);

impl HomePath {
    pub fn parse(raw: &str, kind: TargetKind) -> Result<Self, PathViolation> {
        if raw.is_empty() {
            return Err(PathViolation::Empty);
        }
        if raw.chars().any(char::is_control) {
            return Err(PathViolation::Control);
        }
        let placeholders = raw.matches(TRANSFER_USER_NAME).count();
        let plain = raw.replace(TRANSFER_USER_NAME, "x");
        if let Some(c) = plain.chars().find(|c| !allowed_char(*c)) {
            return Err(PathViolation::Char(c));
        }
        if placeholders > 0 && kind == TargetKind::User {
            return Err(PathViolation::TransferVariableForUser);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathViolation::TooLong(raw.len()));
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathViolation::NotAbsolute);
        };
        if rest.is_empty() {
            return Err(PathViolation::Root);
        }
        if rest.ends_with('/') {
            return Err(PathViolation::TrailingSlash);
        }
        for segment in rest.split('/') {
            match segment {
                "" => return Err(PathViolation::EmptySegment),
                "." | ".." => return Err(PathViolation::DotSegment),
                _ => {}
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0[1..].split('/')
    }

    pub fn has_transfer_variable(&self) -> bool {
        self.0.contains(TRANSFER_USER_NAME)
    }
}

/// One entry of `HOME_ROOTS`: chroot targets must lie strictly below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeRoot(HomePath);

impl HomeRoot {
    pub fn parse(raw: &str) -> Result<Self, PathViolation> {
        // A root is concrete: it may not hold Transfer's variable.
        HomePath::parse(raw, TargetKind::User).map(Self)
    }

    /// Whole-segment, strict containment: `/b/home` admits `/b/home/x`, not `/b/home2`
    /// and not `/b/home` itself (that would expose every other home).
    pub fn contains(&self, path: &HomePath) -> bool {
        let mut inner = path.segments();
        self.0.segments().all(|s| inner.next() == Some(s)) && inner.next().is_some()
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A path admitted as a chroot target: well-formed and strictly inside a home root.
/// Only [`ChrootTarget::admit`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChrootTarget(HomePath);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} is not strictly below any allowed home root ({roots})")]
pub struct OutsideHomeRoots {
    pub path: String,
    pub roots: String,
}

impl ChrootTarget {
    pub fn admit(path: HomePath, roots: &[HomeRoot]) -> Result<Self, OutsideHomeRoots> {
        if roots.iter().any(|r| r.contains(&path)) {
            Ok(Self(path))
        } else {
            Err(OutsideHomeRoots {
                path: path.0,
                roots: roots
                    .iter()
                    .map(HomeRoot::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether it lies strictly below one of `roots`.
    pub fn is_below(&self, roots: &[HomeRoot]) -> bool {
        roots.iter().any(|r| r.contains(&self.0))
    }
}

impl fmt::Display for ChrootTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A home path with `${Name}` placeholders that we fill in (`${UserName}`, `${GroupName}`),
/// e.g. `HOME_TEMPLATE=/acme-sftp/home/${UserName}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeTemplate(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateViolation {
    #[error("unknown placeholder ${{{0}}}: allowed are {1}")]
    UnknownPlaceholder(String, String),
    #[error("must contain {0} so that each one gets a home of its own")]
    MissingPlaceholder(String),
    #[error("renders to an invalid path: {0}")]
    Path(#[from] PathViolation),
    #[error("renders outside the home roots: {0}")]
    Outside(#[from] OutsideHomeRoots),
}

impl HomeTemplate {
    /// `allowed` lists the placeholder names we substitute; `required` must appear;
    /// `${transfer:UserName}` passes through for `kind == Access`.
    pub fn parse(
        raw: &str,
        allowed: &[&str],
        required: Option<&str>,
        kind: TargetKind,
        roots: &[HomeRoot],
    ) -> Result<Self, TemplateViolation> {
        let mut rest = raw;
        let mut seen_required = required.is_none();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let end = after.find('}').unwrap_or(after.len());
            let name = &after[..end];
            if name == "transfer:UserName" {
                // validated as part of the path below (kind decides)
            } else if allowed.contains(&name) {
                seen_required |= Some(name) == required;
            } else {
                return Err(TemplateViolation::UnknownPlaceholder(
                    name.to_owned(),
                    allowed
                        .iter()
                        .map(|a| format!("${{{a}}}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            rest = &after[end.min(after.len())..];
        }
        if !seen_required {
            return Err(TemplateViolation::MissingPlaceholder(format!(
                "${{{}}}",
                required.unwrap_or_default()
            )));
        }
        let template = Self(raw.to_owned());
        // A sample rendering must be a valid target inside the roots. No roots yet (each
        // server's own, `SERVER_TAG`): it is admitted against them at each request.
        let sample: Vec<(&str, &str)> = allowed.iter().map(|a| (*a, "sample")).collect();
        let path = HomePath::parse(&template.render(&sample), kind)?;
        if !roots.is_empty() {
            ChrootTarget::admit(path, roots)?;
        }
        Ok(template)
    }

    pub fn render(&self, values: &[(&str, &str)]) -> String {
        values.iter().fold(self.0.clone(), |acc, (name, value)| {
            acc.replace(&format!("${{{name}}}"), value)
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetKind::*;

    fn roots() -> Vec<HomeRoot> {
        vec![
            HomeRoot::parse("/b/home").unwrap(),
            HomeRoot::parse("/fs-1/groups").unwrap(),
        ]
    }

    #[test]
    fn path_rejections() {
        use PathViolation::*;
        let cases: &[(&str, PathViolation)] = &[
            ("", Empty),
            ("b/home/alice", NotAbsolute),
            ("/", Root),
            ("/b/home/alice/", TrailingSlash),
            ("/b//alice", EmptySegment),
            ("/b/home/../etc", DotSegment),
            ("/b/home/./alice", DotSegment),
            ("/b/home/..", DotSegment),
            ("/b/home/al\u{0}ice", Control),
            ("/b/home/al\nice", Control),
            ("/b/home\\..\\x", Char('\\')),
            ("/b/home/%2e%2e", Char('%')),
            ("/b/home/\u{ff0e}\u{ff0e}", Char('\u{ff0e}')),
            ("/b/home/\u{2215}etc", Char('\u{2215}')),
            ("/b/home/al ice", Char(' ')),
            ("/b/home/${UserName}", Char('$')),
        ];
        for (raw, want) in cases {
            assert_eq!(HomePath::parse(raw, Access).as_ref(), Err(want), "{raw:?}");
        }
        let long = format!("/b/{}", "x".repeat(1022));
        assert_eq!(HomePath::parse(&long, User), Err(TooLong(1025)));
        let fits = format!("/b/{}", "x".repeat(1021));
        assert!(HomePath::parse(&fits, User).is_ok());
    }

    #[test]
    fn transfer_variable_only_for_accesses() {
        let raw = "/b/home/${transfer:UserName}";
        assert!(HomePath::parse(raw, Access).is_ok());
        assert_eq!(
            HomePath::parse(raw, User),
            Err(PathViolation::TransferVariableForUser)
        );
        assert_eq!(
            HomePath::parse("/b/home/${transfer:Other}", Access),
            Err(PathViolation::Char('$'))
        );
    }

    #[test]
    fn roots_match_whole_segments_strictly_below() {
        let admit = |p: &str| ChrootTarget::admit(HomePath::parse(p, Access).unwrap(), &roots());
        assert!(admit("/b/home/alice").is_ok());
        assert!(admit("/b/home/a/b").is_ok());
        assert!(admit("/fs-1/groups/fin/${transfer:UserName}").is_ok());
        assert!(
            admit("/b/home").is_err(),
            "the root itself exposes every home"
        );
        assert!(admit("/b/home2/alice").is_err());
        assert!(admit("/b/hom").is_err());
        assert!(admit("/b").is_err());
        assert!(admit("/c/home/alice").is_err());
    }

    #[test]
    fn templates() {
        let t = HomeTemplate::parse(
            "/b/home/${UserName}",
            &["UserName"],
            Some("UserName"),
            User,
            &roots(),
        )
        .unwrap();
        assert_eq!(t.render(&[("UserName", "alice")]), "/b/home/alice");
        assert!(matches!(
            HomeTemplate::parse(
                "/b/home/shared",
                &["UserName"],
                Some("UserName"),
                User,
                &roots()
            ),
            Err(TemplateViolation::MissingPlaceholder(_))
        ));
        assert!(matches!(
            HomeTemplate::parse(
                "/b/home/${Email}",
                &["UserName"],
                Some("UserName"),
                User,
                &roots()
            ),
            Err(TemplateViolation::UnknownPlaceholder(..))
        ));
        assert!(matches!(
            HomeTemplate::parse(
                "/b/home${UserName}",
                &["UserName"],
                Some("UserName"),
                User,
                &roots()
            ),
            Err(TemplateViolation::Outside(_))
        ));
        assert!(matches!(
            HomeTemplate::parse(
                "/x/${UserName}",
                &["UserName"],
                Some("UserName"),
                User,
                &roots()
            ),
            Err(TemplateViolation::Outside(_))
        ));
        assert!(
            HomeTemplate::parse(
                "/fs-1/groups/${GroupName}/${transfer:UserName}",
                &["GroupName"],
                None,
                Access,
                &roots()
            )
            .is_ok()
        );
    }
}
