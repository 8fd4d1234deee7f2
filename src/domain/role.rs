//! IAM role ARNs that Transfer will assume for a user or access.

use std::fmt;

/// `arn:<partition>:iam::<12-digit account>:role/<path/><name>`, 20 to 2048 characters.
///
/// Stricter than the service model's `arn:.*role/\S+` (which any string containing
/// `role/` nearly satisfies): the value is compared against `ALLOWED_ROLE_ARNS`, so it
/// must be a real, canonical IAM role ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleArnViolation {
    #[error("must be 20 to 2048 characters, got {0}")]
    Length(usize),
    #[error("must look like arn:aws:iam::111122223333:role/name")]
    Shape,
    #[error("partition must be aws, aws-cn, aws-us-gov or another aws-* partition")]
    Partition,
    #[error("account must be 12 digits")]
    Account,
    #[error("role name must be 1 to 64 characters")]
    NameLength,
    #[error(
        "role path and name may contain only ASCII letters, digits and + = , . @ _ - / (found {0:?})"
    )]
    Char(char),
}

impl RoleArn {
    pub fn parse(raw: &str) -> Result<Self, RoleArnViolation> {
        let len = raw.chars().count();
        if !(20..=2048).contains(&len) {
            return Err(RoleArnViolation::Length(len));
        }
        let mut parts = raw.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(RoleArnViolation::Shape);
        };
        if !(partition == "aws" || partition.starts_with("aws-"))
            || !partition[3..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
        {
            return Err(RoleArnViolation::Partition);
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RoleArnViolation::Account);
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(RoleArnViolation::Shape);
        };
        if let Some(c) = path_and_name.chars().find(|c| {
            !(c.is_ascii_alphanumeric()
                || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-' | '/'))
        }) {
            return Err(RoleArnViolation::Char(c));
        }
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        if name.is_empty() || name.len() > 64 {
            return Err(RoleArnViolation::NameLength);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_rules() {
        for ok in [
            "arn:aws:iam::111122223333:role/sftp-user",
            "arn:aws:iam::111122223333:role/service-role/transfer/sftp.user@x",
            "arn:aws-us-gov:iam::111122223333:role/r",
            "arn:aws-cn:iam::111122223333:role/r",
        ] {
            assert!(RoleArn::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            RoleArn::parse("arn:role/x"),
            Err(RoleArnViolation::Length(10))
        );
        assert_eq!(
            RoleArn::parse("arn:aws:iam::111122223333:user/sftp"),
            Err(RoleArnViolation::Shape)
        );
        assert_eq!(
            RoleArn::parse("arn:aws:s3:::bucket/role/whatever"),
            Err(RoleArnViolation::Shape)
        );
        assert_eq!(
            RoleArn::parse("arn:xyz:iam::111122223333:role/r"),
            Err(RoleArnViolation::Partition)
        );
        assert_eq!(
            RoleArn::parse("arn:aws:iam::11112222333:role/r"),
            Err(RoleArnViolation::Account)
        );
        assert_eq!(
            RoleArn::parse("arn:aws:iam::111122223333:role/"),
            Err(RoleArnViolation::NameLength)
        );
        assert_eq!(
            RoleArn::parse("arn:aws:iam::111122223333:role/a b"),
            Err(RoleArnViolation::Char(' '))
        );
        assert_eq!(
            RoleArn::parse(&format!(
                "arn:aws:iam::111122223333:role/{}",
                "r".repeat(65)
            )),
            Err(RoleArnViolation::NameLength)
        );
        assert_eq!(
            RoleArn::parse(&format!(
                "arn:aws:iam::111122223333:role/{}",
                "r".repeat(2048)
            )),
            Err(RoleArnViolation::Length(2079))
        );
    }
}
