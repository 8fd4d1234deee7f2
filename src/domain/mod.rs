//! Validated values: once you hold one, it is valid. Each type has a violation enum
//! naming exactly which rule failed. Nothing here reads JSON.

pub mod directory;
pub mod field;
pub mod guardrails;
pub mod home;
pub mod ids;
pub mod origin;
pub mod policy;
pub mod posix;
pub mod role;
pub mod settings;
pub mod storage;
pub mod tag;
pub mod target;

pub use directory::{DirectoryUserName, GroupId, IdentityStoreId, UserId};
pub use field::{FieldError, Violations};
pub use guardrails::Guardrails;
pub use home::{ChrootTarget, HomePath, HomeRoot, HomeTemplate, TargetKind};
pub use ids::{ExternalId, ServerId, UserName};
pub use origin::{Origin, OriginViolation, ResponseOrigins};
pub use policy::SessionPolicy;
pub use posix::PosixProfile;
pub use role::RoleArn;
pub use settings::Settings;
pub use tag::ServerTag;
pub use target::{Action, Subject, Target};
