//! transfer-chroot: keeps AWS Transfer Family users and directory-group accesses
//! chrooted to their home directories.
//!
//! Layers, each looking only down (docs/ARCHITECTURE.md):
//!
//! - [`domain`]: validated newtypes, [`domain::Target`], the guardrails;
//! - [`outcome`]: the structured result every source returns or embeds;
//! - [`transfer`]: the port to AWS Transfer Family and its SDK implementation;
//! - [`input`]: what a source read, typed but unconstrained, and the JSON field reader;
//! - [`command`], [`profiles`]: validation into a command; group profiles;
//! - [`config`]: the environment, validated at cold start; [`scope`]: the servers it
//!   covers (`ALLOWED_SERVER_IDS`, or `SERVER_TAG`) and each one's roots;
//! - [`plan`], [`apply`]: pure planning and the use case (read, plan, write if needed);
//! - [`reconcile`]: every automatic fix (read now, classify, write only if still drifted);
//! - [`audit`]: the fleet audit, its fixes reconciles; [`report`]: a run as people read it;
//! - [`invocation`], [`sources`]: envelopes in, replies out;
//! - [`lambda`]: the entry point that routes an event to its source.

pub mod apply;
pub mod audit;
pub mod command;
pub mod config;
pub mod directory;
pub mod domain;
pub mod drift;
pub mod findings;
pub mod folders;
pub mod follow;
pub mod input;
pub mod invocation;
pub mod lambda;
pub mod membership;
pub mod metrics;
pub mod outcome;
pub mod plan;
pub mod profiles;
pub mod queue;
pub mod reconcile;
pub mod report;
pub mod reports;
pub mod scope;
pub mod servers;
pub mod signed;

pub mod sources;
pub mod telemetry;
pub mod transfer;

pub use apply::Chroot;
pub use config::Config;
pub use invocation::Invocation;
pub use lambda::App;
pub use outcome::{Outcome, Status};
pub use sources::HandlerError;
