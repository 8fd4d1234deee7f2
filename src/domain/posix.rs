//! POSIX identities for EFS-backed servers.

use serde::Serialize;

/// The service model's `PosixId` range.
pub const MAX_POSIX_ID: u64 = 4_294_967_295;
pub const MAX_SECONDARY_GIDS: usize = 16;

/// Uid, Gid and up to 16 secondary Gids, each within 0..=4294967295.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PosixProfile {
    uid: u64,
    gid: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secondary_gids: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PosixViolation {
    #[error("must be an integer from 0 to 4294967295")]
    OutOfRange,
    #[error("at most 16 secondary GIDs, got {0}")]
    TooManySecondaryGids(usize),
}

pub fn posix_id(value: i128) -> Result<u64, PosixViolation> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_POSIX_ID)
        .ok_or(PosixViolation::OutOfRange)
}

impl PosixProfile {
    pub fn new(uid: u64, gid: u64, secondary_gids: Vec<u64>) -> Result<Self, PosixViolation> {
        if uid > MAX_POSIX_ID
            || gid > MAX_POSIX_ID
            || secondary_gids.iter().any(|g| *g > MAX_POSIX_ID)
        {
            return Err(PosixViolation::OutOfRange);
        }
        if secondary_gids.len() > MAX_SECONDARY_GIDS {
            return Err(PosixViolation::TooManySecondaryGids(secondary_gids.len()));
        }
        Ok(Self {
            uid,
            gid,
            secondary_gids,
        })
    }

    pub fn uid(&self) -> u64 {
        self.uid
    }
    pub fn gid(&self) -> u64 {
        self.gid
    }
    pub fn secondary_gids(&self) -> &[u64] {
        &self.secondary_gids
    }

    /// Secondary groups are a set: order does not make two profiles different.
    pub fn same_as(&self, uid: u64, gid: u64, secondary: &[u64]) -> bool {
        let mut a = self.secondary_gids.clone();
        let mut b = secondary.to_vec();
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        self.uid == uid && self.gid == gid && a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rules() {
        assert!(PosixProfile::new(0, MAX_POSIX_ID, vec![1; 16]).is_ok());
        assert_eq!(
            PosixProfile::new(MAX_POSIX_ID + 1, 0, vec![]),
            Err(PosixViolation::OutOfRange)
        );
        assert_eq!(
            PosixProfile::new(1, 1, vec![1; 17]),
            Err(PosixViolation::TooManySecondaryGids(17))
        );
        assert_eq!(posix_id(-1), Err(PosixViolation::OutOfRange));
        assert_eq!(posix_id(4_294_967_295), Ok(4_294_967_295));
        assert_eq!(posix_id(4_294_967_296), Err(PosixViolation::OutOfRange));
    }

    #[test]
    fn secondary_gids_compare_as_a_set() {
        let p = PosixProfile::new(1, 2, vec![3, 4]).unwrap();
        assert!(p.same_as(1, 2, &[4, 3]));
        assert!(!p.same_as(1, 2, &[4]));
        assert!(!p.same_as(9, 2, &[3, 4]));
    }
}
