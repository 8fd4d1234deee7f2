//! Source adapters: each translates its envelope into a [`crate::input::CommandInput`]
//! for the core and the core's outcomes into its own reply. None builds an SDK request.
//!
//! Where an SQS record becomes a command: [`sqs`] → [`direct`] or [`eventbridge`] →
//! [`crate::apply::Chroot::run`]. Where a command becomes a request: [`crate::plan`].

pub mod apigw;
pub mod cloudformation;
pub mod cloudtrail;
pub mod direct;
pub mod directory;
pub mod error;
pub mod eventbridge;
pub mod shape;
pub mod sqs;
#[cfg(test)]
mod tests;

pub use error::HandlerError;
pub use shape::{EXPECTED_SHAPES, Shape, shape, unknown_shape};
