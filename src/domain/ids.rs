//! Identifiers as the Transfer service model constrains them.
//!
//! The model's patterns are Java regular expressions whose `\w` and `\d` are ASCII-only,
//! so `ålice` is not a valid user name even though it is a "word".

use std::fmt;

/// `s-` followed by 17 lower-case hex digits (length exactly 19).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerIdViolation {
    #[error("must be exactly 19 characters ('s-' and 17 hex digits), got {0}")]
    Length(usize),
    #[error("must start with 's-'")]
    Prefix,
    #[error("must be 's-' followed by 17 lower-case hex digits (found {0:?})")]
    Char(char),
}

impl ServerId {
    pub fn parse(raw: &str) -> Result<Self, ServerIdViolation> {
        let len = raw.chars().count();
        if len != 19 {
            return Err(ServerIdViolation::Length(len));
        }
        let Some(hex) = raw.strip_prefix("s-") else {
            return Err(ServerIdViolation::Prefix);
        };
        if let Some(c) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(ServerIdViolation::Char(c));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 3 to 100 characters: an ASCII word character, then word characters, `@`, `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserNameViolation {
    #[error("must be 3 to 100 characters, got {0}")]
    Length(usize),
    #[error("must start with an ASCII letter, digit or '_' (found {0:?})")]
    FirstChar(char),
    #[error("may contain only ASCII letters, digits, '_', '@', '.' and '-' (found {0:?})")]
    Char(char),
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, UserNameViolation> {
        let len = raw.chars().count();
        if !(3..=100).contains(&len) {
            return Err(UserNameViolation::Length(len));
        }
        let mut chars = raw.chars();
        if let Some(first) = chars.next().filter(|c| !is_word(*c)) {
            return Err(UserNameViolation::FirstChar(first));
        }
        if let Some(c) = chars.find(|c| !(is_word(*c) || matches!(c, '@' | '.' | '-'))) {
            return Err(UserNameViolation::Char(c));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A directory group's security identifier: `S-1-` then digits and dashes, at most 256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalIdViolation {
    #[error("must be at most 256 characters, got {0}")]
    TooLong(usize),
    #[error("must be a SID starting with 'S-1-' followed by digits and '-'")]
    Prefix,
    #[error("may contain only digits and '-' after 'S-1-' (found {0:?})")]
    Char(char),
}

impl ExternalId {
    pub fn parse(raw: &str) -> Result<Self, ExternalIdViolation> {
        let len = raw.chars().count();
        if len > 256 {
            return Err(ExternalIdViolation::TooLong(len));
        }
        let rest = raw
            .strip_prefix("S-1-")
            .filter(|r| !r.is_empty())
            .ok_or(ExternalIdViolation::Prefix)?;
        if let Some(c) = rest.chars().find(|c| !(c.is_ascii_digit() || *c == '-')) {
            return Err(ExternalIdViolation::Char(c));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
display_as_str!(ServerId, UserName, ExternalId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_id_rules() {
        assert!(ServerId::parse("s-0123456789abcdef0").is_ok());
        assert_eq!(ServerId::parse("s-0123"), Err(ServerIdViolation::Length(6)));
        assert_eq!(
            ServerId::parse("x-0123456789abcdef0"),
            Err(ServerIdViolation::Prefix)
        );
        assert_eq!(
            ServerId::parse("s-0123456789ABCDEF0"),
            Err(ServerIdViolation::Char('A'))
        );
        assert_eq!(
            ServerId::parse("s-0123456789abcdefg"),
            Err(ServerIdViolation::Char('g'))
        );
        assert_eq!(ServerId::parse(""), Err(ServerIdViolation::Length(0)));
    }

    #[test]
    fn user_name_rules() {
        for ok in [
            "alice",
            "a_b",
            "_x.",
            "alice@example.com",
            "a-b.c@d",
            &"a".repeat(100),
        ] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(UserName::parse("al"), Err(UserNameViolation::Length(2)));
        assert_eq!(
            UserName::parse(&"a".repeat(101)),
            Err(UserNameViolation::Length(101))
        );
        assert_eq!(
            UserName::parse("-alice"),
            Err(UserNameViolation::FirstChar('-'))
        );
        assert_eq!(
            UserName::parse(".alice"),
            Err(UserNameViolation::FirstChar('.'))
        );
        assert_eq!(
            UserName::parse("ålice"),
            Err(UserNameViolation::FirstChar('å'))
        );
        assert_eq!(UserName::parse("al ice"), Err(UserNameViolation::Char(' ')));
        assert_eq!(UserName::parse("al/ice"), Err(UserNameViolation::Char('/')));
        assert_eq!(UserName::parse("bjørn"), Err(UserNameViolation::Char('ø')));
    }

    #[test]
    fn external_id_rules() {
        assert!(ExternalId::parse("S-1-5-21-1004336348-1177238915-682003330-1105").is_ok());
        assert!(ExternalId::parse("S-1-5").is_ok());
        assert_eq!(ExternalId::parse("S-1-"), Err(ExternalIdViolation::Prefix));
        assert_eq!(ExternalId::parse(""), Err(ExternalIdViolation::Prefix));
        assert_eq!(ExternalId::parse("S-2-5"), Err(ExternalIdViolation::Prefix));
        assert_eq!(
            ExternalId::parse("S-1-5-x"),
            Err(ExternalIdViolation::Char('x'))
        );
        assert_eq!(
            ExternalId::parse(&format!("S-1-{}", "1".repeat(253))),
            Err(ExternalIdViolation::TooLong(257))
        );
    }
}
