//! The optional settings a chroot write may carry besides its target.

use super::{PosixProfile, RoleArn, SessionPolicy};

/// `Role`, `Policy`, `PosixProfile`: each `None` means "leave as it is" (not sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub role: Option<RoleArn>,
    pub policy: Option<SessionPolicy>,
    pub posix_profile: Option<PosixProfile>,
}
