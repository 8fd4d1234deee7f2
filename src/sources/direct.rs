//! Direct commands: Lambda invoke, Step Functions, or an SQS body.

use serde_json::Value;

use crate::apply::Chroot;
use crate::input::{CommandInput, Reading};
use crate::invocation::Invocation;
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome};
use crate::transfer::Transfer;

/// Reads a direct command (`{"Action": "UpdateUser", ...}`); `None` if it is not an
/// object.
pub fn read(event: &Value) -> Option<CommandInput> {
    event
        .as_object()
        .map(|map| CommandInput::read(map, Reading::default()))
}

pub fn not_an_object() -> Outcome {
    Outcome::failed(
        Identity::default(),
        ErrorBody::new(
            ErrorCode::ValidationFailed,
            "a direct command must be a JSON object with an Action",
        ),
    )
}

/// Runs one direct command and logs its outcome.
pub async fn handle<T: Transfer>(
    chroot: &Chroot<T>,
    event: &Value,
    invocation: &Invocation,
) -> Outcome {
    let outcome = match read(event) {
        Some(input) => chroot.run_before(&input, invocation.work_deadline()).await,
        None => not_an_object(),
    };
    outcome.log();
    outcome
}
