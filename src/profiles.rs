//! `GROUP_PROFILES`: which chroot settings a directory group confers.

use crate::config::Guardrails;

/// Parsed group profiles (filled in by the directory-group work).
#[derive(Debug, Clone, Default)]
pub struct GroupProfiles {}

impl GroupProfiles {
    pub fn parse(_raw: &str, _guardrails: &Guardrails) -> Result<Self, String> {
        Err("group profiles are not supported yet".into())
    }
}
