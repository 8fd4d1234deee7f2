//! The integration tests: one binary (so the SDK and the stand-in are linked once),
//! one module per source or concern, sharing `common` (stand-in + real SDK client).
//!
//! Run one module with `cargo test --test it apigw::`.

mod common;

mod apigw;
mod audit;
#[cfg(feature = "cli")]
mod cli;
mod cloudformation;
mod cloudformation_allowlist;
mod cloudtrail;
mod direct;
mod directory;
mod eventbridge;
mod events;
mod folders;
mod hostile;
mod hostile_sources;
mod layers;
mod metrics;
mod org;
mod permissions;
mod races;
mod reliability;
mod reliability_sources;
mod reports;
mod runtime;
mod servers;
mod servers_change;
mod sqs;
mod template;
