//! `SERVER_TAG`: the tag that marks the servers the function may touch, `key=value`
//! (that value) or `key` (any value). AWS tag keys are 1 to 128 characters and values
//! at most 256 (Transfer's `Tag` shape); a key starting `aws:` is AWS's own.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTag {
    key: String,
    value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagViolation {
    #[error("needs a key (key=value, or key for any value)")]
    NoKey,
    #[error("has a key of {0} characters: at most 128")]
    KeyTooLong(usize),
    #[error("has a value of {0} characters: at most 256")]
    ValueTooLong(usize),
}

impl ServerTag {
    /// `key=value` or `key`; the key is trimmed, the value taken as written after the
    /// first `=` (a value may hold `=` itself, and may be empty: `key=` is that value).
    pub fn parse(raw: &str) -> Result<Self, TagViolation> {
        let (key, value) = match raw.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.to_owned())),
            None => (raw.trim(), None),
        };
        if key.is_empty() {
            return Err(TagViolation::NoKey);
        }
        let n = key.chars().count();
        if n > 128 {
            return Err(TagViolation::KeyTooLong(n));
        }
        if let Some(n) = value
            .as_ref()
            .map(|v| v.chars().count())
            .filter(|n| *n > 256)
        {
            return Err(TagViolation::ValueTooLong(n));
        }
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether a resource with `tags` carries this tag.
    pub fn matches(&self, tags: &[(String, String)]) -> bool {
        tags.iter()
            .any(|(k, v)| *k == self.key && self.value.as_ref().is_none_or(|want| want == v))
    }
}

impl fmt::Display for ServerTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_key_with_a_value_matches_that_value_only() {
        let t = ServerTag::parse("transfer-chroot=enforce").unwrap();
        assert!(t.matches(&tags(&[("env", "prod"), ("transfer-chroot", "enforce")])));
        assert!(!t.matches(&tags(&[("transfer-chroot", "off")])));
        assert!(!t.matches(&tags(&[("Transfer-Chroot", "enforce")])));
        assert!(!t.matches(&[]));
        assert_eq!(t.to_string(), "transfer-chroot=enforce");
    }

    #[test]
    fn a_bare_key_matches_any_value_and_an_empty_value_only_empty() {
        let any = ServerTag::parse("chroot").unwrap();
        assert!(any.matches(&tags(&[("chroot", "")])));
        assert!(any.matches(&tags(&[("chroot", "yes")])));
        let empty = ServerTag::parse("chroot=").unwrap();
        assert!(empty.matches(&tags(&[("chroot", "")])));
        assert!(!empty.matches(&tags(&[("chroot", "yes")])));
        let eq = ServerTag::parse("k=a=b").unwrap();
        assert!(eq.matches(&tags(&[("k", "a=b")])));
    }

    #[test]
    fn refusals() {
        assert_eq!(ServerTag::parse(""), Err(TagViolation::NoKey));
        assert_eq!(ServerTag::parse(" =x"), Err(TagViolation::NoKey));
        assert_eq!(
            ServerTag::parse(&"k".repeat(129)),
            Err(TagViolation::KeyTooLong(129))
        );
        assert_eq!(
            ServerTag::parse(&format!("k={}", "v".repeat(257))),
            Err(TagViolation::ValueTooLong(257))
        );
    }
}
