//! A dead-letter queue read back: for ops to see what failed and why, and to send it back.

use async_trait::async_trait;

use crate::ports::QueueError;

/// A message read back from a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The body as dead-lettered.
    pub body: String,
    /// Its string attributes (`reason`, …) and the queue's own (`ApproximateReceiveCount`,
    /// `SentTimestamp`).
    pub attributes: Vec<(String, String)>,
    /// What deletes it, or makes it visible again, once handled.
    pub handle: String,
}

impl DeadLetter {
    /// The attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A dead-letter queue, read back (writing to it is the [`crate::ports::Queue`] port).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to `max` messages (at most 10 per call); they stay hidden until deleted, released or
    /// their visibility ends.
    async fn receive(&self, max: u32) -> Result<Vec<DeadLetter>, QueueError>;

    /// Removes a handled message.
    async fn delete(&self, handle: &str) -> Result<(), QueueError>;

    /// Makes a message visible again at once (it was only looked at).
    async fn release(&self, handle: &str) -> Result<(), QueueError>;
}
