//! transfer-chroot: keeps AWS Transfer Family users and directory-group accesses
//! chrooted to their home directories.
//!
//! - [`sources`]: envelopes in, commands out; outcomes in, replies out.
//! - [`command`], [`domain`], [`plan`]: validated values and pure planning.
//! - [`apply`]: the use case (read, plan, write only when needed).
//! - [`transfer`]: the port to AWS Transfer Family and its SDK implementation.

pub mod apply;
pub mod command;
pub mod config;
pub mod domain;
pub mod handler;
pub mod outcome;
pub mod plan;
pub mod profiles;
pub mod sources;
pub mod telemetry;
pub mod transfer;

pub use apply::Chroot;
pub use config::Config;
pub use handler::{App, HandlerError, Invocation};
pub use outcome::{Outcome, Status};
