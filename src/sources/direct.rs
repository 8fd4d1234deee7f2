//! Direct commands: Lambda invoke, Step Functions, or an SQS body.

use serde_json::Value;

use crate::command::InputRules;
use crate::handler::{App, Invocation};
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome};
use crate::transfer::Transfer;

/// Runs one direct command (`{"Action": "UpdateUser", ...}`) and logs its outcome.
pub async fn handle<T: Transfer>(app: &App<T>, event: &Value, invocation: &Invocation) -> Outcome {
    let outcome = match event.as_object() {
        Some(input) => {
            app.chroot
                .run_before(input, InputRules::default(), invocation.work_deadline())
                .await
        }
        None => Outcome::failed(
            Identity::default(),
            ErrorBody::new(
                ErrorCode::ValidationFailed,
                "a direct command must be a JSON object with an Action",
            ),
        ),
    };
    outcome.log("direct");
    outcome
}
