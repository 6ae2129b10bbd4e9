//! Why a use case could not finish a piece of work: retry it, or set it aside with its reason.

use crate::ports::StoreError;

/// Why a message was not processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Try again later (store unavailable, too many concurrent writers).
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never succeed as is (malformed payload): dead-letter it with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        if err.is_retryable() { Failure::Retry(err.to_string()) } else { Failure::Permanent(err.to_string()) }
    }
}
