//! What the first segment of a chroot target names: an S3 bucket or an EFS file system.
//! Transfer reads `/<bucket>/<key...>` on S3 servers and `/<fs-id>/<path...>` on EFS
//! servers, so a target whose first segment cannot be the server's kind of storage
//! can never be reached.

use super::home::ChrootTarget;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketNameViolation {
    #[error("must be 3 to 63 characters, got {0}")]
    Length(usize),
    #[error("may contain only lower-case ASCII letters, digits, '.' and '-' (found {0:?})")]
    Char(char),
    #[error("must begin and end with a letter or digit")]
    Edge,
    #[error("must not contain '..'")]
    AdjacentDots,
    #[error("must not be formatted as an IP address")]
    IpAddress,
}

/// An S3 general purpose bucket name (the S3 user guide's naming rules).
pub fn bucket_name(raw: &str) -> Result<(), BucketNameViolation> {
    if !(3..=63).contains(&raw.len()) {
        return Err(BucketNameViolation::Length(raw.chars().count()));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(BucketNameViolation::Char(c));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(raw.chars().next()) || !edge(raw.chars().last()) {
        return Err(BucketNameViolation::Edge);
    }
    if raw.contains("..") {
        return Err(BucketNameViolation::AdjacentDots);
    }
    if raw.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(BucketNameViolation::IpAddress);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an EFS file system id ('fs-' and 8 to 40 lower-case hex digits)")]
pub struct EfsIdViolation;

/// An EFS file system id, as the service model's `FileSystemId` pattern has it.
pub fn efs_id(raw: &str) -> Result<(), EfsIdViolation> {
    match raw.strip_prefix("fs-") {
        Some(hex)
            if (8..=40).contains(&hex.len())
                && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) =>
        {
            Ok(())
        }
        _ => Err(EfsIdViolation),
    }
}

/// The first segment of a target: `/acme-sftp/home/alice` → `acme-sftp`.
pub fn first_segment(target: &ChrootTarget) -> &str {
    target
        .as_str()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
}

/// The S3 key of a target's folder object: `/acme-sftp/home/alice` → `home/alice/`.
pub fn folder_key(target: &ChrootTarget) -> String {
    let rest = target.as_str().trim_start_matches('/');
    match rest.split_once('/') {
        Some((_, key)) => format!("{key}/"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{HomePath, HomeRoot, TargetKind};

    #[test]
    fn bucket_names() {
        for ok in [
            "acme-sftp",
            "a.b.c",
            "abc",
            &"a".repeat(63),
            "my-bucket-2026",
        ] {
            assert_eq!(bucket_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("ab", BucketNameViolation::Length(2)),
            ("Acme", BucketNameViolation::Char('A')),
            ("acme_sftp", BucketNameViolation::Char('_')),
            ("-acme", BucketNameViolation::Edge),
            ("acme.", BucketNameViolation::Edge),
            ("a..b", BucketNameViolation::AdjacentDots),
            ("192.168.1.1", BucketNameViolation::IpAddress),
        ] {
            assert_eq!(bucket_name(bad), Err(why), "{bad}");
        }
        assert!(bucket_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn efs_ids() {
        assert_eq!(efs_id("fs-0123456789abcdef0"), Ok(()));
        assert_eq!(efs_id("fs-01234567"), Ok(()));
        for bad in [
            "fs-0123",
            "fs-0123456G",
            "acme-sftp",
            "FS-01234567",
            "fsap-01234567",
        ] {
            assert_eq!(efs_id(bad), Err(EfsIdViolation), "{bad}");
        }
    }

    #[test]
    fn segments_and_keys() {
        let t = ChrootTarget::admit(
            HomePath::parse("/acme-sftp/home/alice", TargetKind::User).unwrap(),
            &[HomeRoot::parse("/acme-sftp/home").unwrap()],
        )
        .unwrap();
        assert_eq!(first_segment(&t), "acme-sftp");
        assert_eq!(folder_key(&t), "home/alice/");
    }
}
