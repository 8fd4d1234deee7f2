//! Not built yet: answers every event with a structured failure.

use serde_json::Value;

use crate::handler::{App, HandlerError, Invocation};
use crate::outcome::{ErrorBody, ErrorCode, Identity, Outcome};
use crate::transfer::Transfer;

pub async fn handle<T: Transfer>(
    _app: &App<T>,
    _event: Value,
    _invocation: &Invocation,
) -> Result<Value, HandlerError> {
    Ok(Outcome::failed(
        Identity::default(),
        ErrorBody::new(ErrorCode::Internal, "this source is not supported yet"),
    )
    .to_json())
}
