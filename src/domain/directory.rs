//! Identifiers of IAM Identity Center's Identity Store, as its service model
//! (identitystore-2020-06-15) constrains them. An id from an event is only ever sent
//! to the Identity Store once it is one of these: a path segment, a wildcard or an
//! oversize value never reaches a call.

use std::fmt;

/// The Identity Store's id: `d-` and 10 lower-case hex digits, or a UUID (at most 36
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityStoreId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityStoreIdViolation {
    #[error("must be d- and 10 lower-case hex digits (d-1234567890) or a UUID, got {0} characters")]
    Length(usize),
    #[error("must be d- and 10 lower-case hex digits (d-1234567890) or a UUID")]
    Shape,
}

fn hex(s: &str, lower_only: bool) -> bool {
    s.chars().all(|c| {
        c.is_ascii_digit() || matches!(c, 'a'..='f') || (!lower_only && matches!(c, 'A'..='F'))
    })
}

/// `8-4-4-4-12` hex digits.
fn uuid(s: &str, lower_only: bool) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && hex(p, lower_only))
}

impl IdentityStoreId {
    pub fn parse(raw: &str) -> Result<Self, IdentityStoreIdViolation> {
        let len = raw.chars().count();
        if !(1..=36).contains(&len) {
            return Err(IdentityStoreIdViolation::Length(len));
        }
        let short = raw
            .strip_prefix("d-")
            .is_some_and(|h| h.len() == 10 && hex(h, true));
        if short || uuid(raw, true) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdentityStoreIdViolation::Shape)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdentityStoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryIdViolation {
    #[error("must be 1 to 47 characters, got {0}")]
    Length(usize),
    #[error(
        "must be an Identity Store id: a UUID, optionally after 10 hex digits and '-' \
         (9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001)"
    )]
    Shape,
}

/// The model's `ResourceId` pattern: `([0-9a-f]{10}-|)` then a UUID of either case.
fn resource_id(raw: &str) -> Result<String, DirectoryIdViolation> {
    let len = raw.chars().count();
    if !(1..=47).contains(&len) {
        return Err(DirectoryIdViolation::Length(len));
    }
    let plain = uuid(raw, false);
    let prefixed = raw.len() == 47
        && raw.as_bytes()[10] == b'-'
        && hex(&raw[..10], true)
        && uuid(&raw[11..], false);
    if plain || prefixed {
        Ok(raw.to_owned())
    } else {
        Err(DirectoryIdViolation::Shape)
    }
}

/// A directory user's `UserId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, DirectoryIdViolation> {
        resource_id(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directory group's `GroupId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);

impl GroupId {
    pub fn parse(raw: &str) -> Result<Self, DirectoryIdViolation> {
        resource_id(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directory `UserName` as a lookup key (`GetUserId`): 1 to 128 characters, none of
/// them a control character or white space. Whether Transfer can hold it is a
/// separate question ([`crate::domain::UserName`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirectoryUserName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryUserNameViolation {
    #[error("must be 1 to 128 characters, got {0}")]
    Length(usize),
    #[error("may not contain white space or control characters")]
    Char,
}

impl DirectoryUserName {
    pub fn parse(raw: &str) -> Result<Self, DirectoryUserNameViolation> {
        let len = raw.chars().count();
        if !(1..=128).contains(&len) {
            return Err(DirectoryUserNameViolation::Length(len));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(DirectoryUserNameViolation::Char);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DirectoryUserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn store_ids() {
        for ok in ["d-9067a1b2c3", "0c5a4f2e-1b3d-4e6f-8a9b-0c1d2e3f4a5b"] {
            assert!(IdentityStoreId::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", IdentityStoreIdViolation::Length(0)),
            ("d-9067A1B2C3", IdentityStoreIdViolation::Shape),
            ("d-9067a1b2c", IdentityStoreIdViolation::Shape),
            ("d-9067a1b2c3/..", IdentityStoreIdViolation::Shape),
            ("x-9067a1b2c3", IdentityStoreIdViolation::Shape),
            (&"d".repeat(37), IdentityStoreIdViolation::Length(37)),
        ] {
            assert_eq!(IdentityStoreId::parse(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn resource_ids_follow_the_model_and_nothing_else() {
        for ok in [
            "9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001",
            "1a2b3c4d-0001-4e5f-8A9B-000000000001",
        ] {
            assert!(UserId::parse(ok).is_ok(), "{ok}");
            assert!(GroupId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "alice",
            "../user/9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001",
            "9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001/x",
            "9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-00000000000",
            "*",
            "9067A1B2C3-1a2b3c4d-0001-4e5f-8a9b-000000000001",
            "1a2b3c4d-0001-4e5f-8a9b-000000000001\n",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            UserId::parse(&"a".repeat(48)),
            Err(DirectoryIdViolation::Length(48))
        );
    }

    #[test]
    fn directory_user_names() {
        assert!(DirectoryUserName::parse("alice@example.com").is_ok());
        assert!(DirectoryUserName::parse("Zoë").is_ok());
        assert!(DirectoryUserName::parse("a b").is_err());
        assert!(DirectoryUserName::parse("a\u{0}").is_err());
        assert!(DirectoryUserName::parse(&"a".repeat(129)).is_err());
    }

    proptest! {
        #[test]
        fn any_accepted_id_is_in_the_models_shape(s in "\\PC{0,60}") {
            if let Ok(id) = UserId::parse(&s) {
                let re = regex::Regex::new(
                    "^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$",
                ).unwrap();
                prop_assert!(re.is_match(id.as_str()));
            }
        }
    }
}
