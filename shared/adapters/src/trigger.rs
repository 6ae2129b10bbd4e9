//! Typed edges: every function decodes its invocation into its trigger type or its ops enum
//! (serde), and answers with a typed value. A malformed event gets an error naming the field.
//! No AWS type is used here (the fuzz build compiles this file on its own).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One invocation, decoded: the function's trigger (an HTTP request, an SQS batch) or one of its
/// ops events (manual invocations and schedules).
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation<T, O> {
    /// The trigger event.
    Trigger(T),
    /// An ops event.
    Ops(O),
}

/// Why an invocation could not be decoded. The text names the field and never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// It looks like the trigger (has its marker field) but does not decode as one.
    #[error("unreadable {what} event: {reason}")]
    Trigger {
        /// Which trigger (`HTTP API`, `SQS`).
        what: &'static str,
        /// serde's reason, naming the field.
        reason: String,
    },
    /// Not the trigger and not one of the ops events.
    #[error("unrecognised event: {reason}; expected {expected}")]
    Ops {
        /// serde's reason, naming the field or the unknown event.
        reason: String,
        /// The accepted shapes.
        expected: &'static str,
    },
}

/// How a function recognises and names its trigger and its ops events.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// A top-level field only the trigger has (`requestContext`, `Records`); `None` for a
    /// function whose every event is an ops event (schedules send one too).
    pub trigger_marker: Option<&'static str>,
    /// The trigger's name for errors.
    pub trigger_name: &'static str,
    /// The ops events, for the error a caller reads.
    pub expected: &'static str,
}

/// Decodes an invocation into the function's trigger type `T` or its ops enum `O`.
pub fn decode<T: DeserializeOwned, O: DeserializeOwned>(
    event: serde_json::Value,
    shape: Shape,
) -> Result<Invocation<T, O>, DecodeError> {
    if let Some(marker) = shape.trigger_marker
        && event.get(marker).is_some()
    {
        return serde_json::from_value(event)
            .map(Invocation::Trigger)
            .map_err(|e| DecodeError::Trigger { what: shape.trigger_name, reason: e.to_string() });
    }
    serde_json::from_value(event)
        .map(Invocation::Ops)
        .map_err(|e| DecodeError::Ops { reason: e.to_string(), expected: shape.expected })
}

/// The answer to an event that could not be decoded (or an ops call that failed): `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// What went wrong, for the caller.
    pub error: String,
}

impl ErrorAnswer {
    /// An answer saying `error`.
    pub fn new(error: impl ToString) -> Self {
        Self { error: error.to_string() }
    }
}
