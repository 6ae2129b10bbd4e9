//! Ops on a dead-letter queue: see what failed and why (without its payload), and send it back
//! to its queue once the cause is fixed.
//!
//! A redrive sends a message back first and deletes it from the dead-letter queue second: a
//! crash in between leaves it in both, and the consumer applies it once (its write path
//! dedupes). An inspection looks at messages and makes them visible again at once.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ports::dead_letters::{DeadLetter, DeadLetters};
use crate::ports::{OutboundMessage, Queue};

/// What an ops event asks of a dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LetterRequest {
    /// `{"inspect": {"max": 20}}`: list up to `max` messages with their reasons.
    Inspect(Max),
    /// `{"redrive": {"max": 100}}`: send up to `max` messages back to their queue.
    Redrive(Max),
}

/// How many messages at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Max {
    /// At most this many (default 10, at most 1 000).
    #[serde(default = "ten")]
    pub max: u32,
}

fn ten() -> u32 {
    10
}

/// Most messages one ops call handles.
pub const MAX_PER_CALL: u32 = 1000;

/// One dead-lettered message as ops see it: never its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// A stable id of its body (the same message listed twice has the same id).
    pub id: String,
    /// Why it was dead-lettered, when the consumer said (`reason` attribute); otherwise it ran
    /// out of receives.
    pub reason: String,
    /// Deliveries before it was dead-lettered, as SQS counted them.
    pub receives: Option<u32>,
    /// When it was first sent (epoch milliseconds, as SQS gives it).
    pub sent_at_ms: Option<u64>,
    /// What it is about: source, shop, message id, order — identifiers, never the payload.
    pub about: Value,
}

/// What an inspection saw.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InspectReport {
    /// The messages looked at.
    pub letters: Vec<Letter>,
    /// Messages could not be made visible again (they return after their visibility timeout).
    pub errors: u32,
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RedriveReport {
    /// Messages read from the dead-letter queue.
    pub read: u32,
    /// Sent back to their queue and removed from the dead-letter queue.
    pub redriven: u32,
    /// Sent back but not removed (they will be redriven again; the consumer dedupes).
    pub not_removed: u32,
    /// Could not be sent back (left in the dead-letter queue).
    pub errors: u32,
}

/// A dead-letter queue and the queue its messages came from.
pub struct DeadLetterOps<'a> {
    /// The dead-letter queue.
    pub dead_letters: &'a dyn DeadLetters,
    /// Where its messages go back to.
    pub source: &'a dyn Queue,
}

/// Attributes that say why a message was dead-lettered, not what it is: not sent back.
const DEAD_LETTER_ATTRIBUTES: [&str; 3] = ["reason", "ApproximateReceiveCount", "SentTimestamp"];

impl DeadLetterOps<'_> {
    /// Runs an ops request.
    pub async fn run(&self, request: LetterRequest) -> Value {
        match request {
            LetterRequest::Inspect(Max { max }) => serde_json::to_value(self.inspect(max).await),
            LetterRequest::Redrive(Max { max }) => serde_json::to_value(self.redrive(max).await),
        }
        .unwrap_or_default()
    }

    /// Lists up to `max` messages with their reasons and makes them visible again.
    #[tracing::instrument(name = "dead_letters.inspect", skip(self))]
    pub async fn inspect(&self, max: u32) -> InspectReport {
        let mut report = InspectReport::default();
        let max = max.min(MAX_PER_CALL);
        let mut seen = Vec::new();
        while u32::try_from(report.letters.len()).unwrap_or(u32::MAX) < max {
            let want = (max - u32::try_from(report.letters.len()).unwrap_or(max)).min(10);
            let letters = match self.dead_letters.receive(want).await {
                Ok(letters) if !letters.is_empty() => letters,
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "dead-letter queue unavailable");
                    report.errors += 1;
                    break;
                }
            };
            for letter in letters {
                report.letters.push(view(&letter));
                seen.push(letter.handle);
            }
        }
        for handle in seen {
            if self.dead_letters.release(&handle).await.is_err() {
                report.errors += 1;
            }
        }
        report
    }

    /// Sends up to `max` messages back to their queue, then removes them from the dead-letter
    /// queue.
    #[tracing::instrument(name = "dead_letters.redrive", skip(self))]
    pub async fn redrive(&self, max: u32) -> RedriveReport {
        let mut report = RedriveReport::default();
        let max = max.min(MAX_PER_CALL);
        while report.read < max {
            let letters = match self.dead_letters.receive((max - report.read).min(10)).await {
                Ok(letters) if !letters.is_empty() => letters,
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "dead-letter queue unavailable");
                    report.errors += 1;
                    break;
                }
            };
            for letter in letters {
                report.read += 1;
                let message = OutboundMessage {
                    id: "0".into(),
                    body: letter.body.clone(),
                    attributes: letter
                        .attributes
                        .iter()
                        .filter(|(name, _)| !DEAD_LETTER_ATTRIBUTES.contains(&name.as_str()))
                        .cloned()
                        .collect(),
                };
                match self.source.send(std::slice::from_ref(&message)).await {
                    Ok(failed) if failed.is_empty() => {}
                    _ => {
                        report.errors += 1;
                        // Visible again for the next redrive rather than hidden for minutes.
                        let _ = self.dead_letters.release(&letter.handle).await;
                        continue;
                    }
                }
                match self.dead_letters.delete(&letter.handle).await {
                    Ok(()) => report.redriven += 1,
                    Err(err) => {
                        tracing::warn!(error = %err, "redriven but not removed from the dead-letter queue");
                        report.not_removed += 1;
                    }
                }
            }
        }
        tracing::info!(read = report.read, redriven = report.redriven, errors = report.errors, "redrive done");
        report
    }
}

/// The ops view of one message: its reason and identifiers, never its payload.
fn view(letter: &DeadLetter) -> Letter {
    let id = hex::encode(&Sha256::digest(letter.body.as_bytes())[..8]);
    let reason = letter.attribute("reason").map_or_else(
        || "ran out of receives (the consumer failed or timed out each time)".to_owned(),
        |r| r.chars().take(500).collect(),
    );
    Letter {
        id,
        reason,
        receives: letter.attribute("ApproximateReceiveCount").and_then(|n| n.parse().ok()),
        sent_at_ms: letter.attribute("SentTimestamp").and_then(|n| n.parse().ok()),
        about: about(&letter.body),
    }
}

/// Identifiers found in a message body: an inbound message's source, shop, message id and
/// origin, an EventBridge envelope's detail-type and order key. Nothing else is read out.
fn about(body: &str) -> Value {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return Value::String("not JSON".into());
    };
    let mut out = serde_json::Map::new();
    for name in ["source", "shop", "message_id", "origin", "received_at", "detail-type"] {
        if let Some(Value::String(text)) = fields.get(name) {
            out.insert(name.to_owned(), Value::String(text.chars().take(128).collect()));
        }
    }
    if let Some(key) = fields.get("detail").and_then(|d| d.get("key")) {
        out.insert("order".to_owned(), key.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::testing::memory::MemoryQueue;

    /// A dead-letter queue in memory: receive hides, release shows, delete removes.
    #[derive(Default)]
    struct Letters {
        queue: Mutex<Vec<(DeadLetter, bool)>>,
        fail_delete: bool,
    }

    #[async_trait::async_trait]
    impl DeadLetters for Letters {
        async fn receive(&self, max: u32) -> Result<Vec<DeadLetter>, crate::ports::QueueError> {
            let mut queue = self.queue.lock().map_err(|_| crate::ports::QueueError::Unavailable("lock".into()))?;
            Ok(queue
                .iter_mut()
                .filter(|(_, hidden)| !hidden)
                .take(max as usize)
                .map(|(letter, hidden)| {
                    *hidden = true;
                    letter.clone()
                })
                .collect())
        }
        async fn delete(&self, handle: &str) -> Result<(), crate::ports::QueueError> {
            if self.fail_delete {
                return Err(crate::ports::QueueError::Unavailable("delete".into()));
            }
            if let Ok(mut queue) = self.queue.lock() {
                queue.retain(|(l, _)| l.handle != handle);
            }
            Ok(())
        }
        async fn release(&self, handle: &str) -> Result<(), crate::ports::QueueError> {
            if let Ok(mut queue) = self.queue.lock() {
                for (letter, hidden) in queue.iter_mut() {
                    if letter.handle == handle {
                        *hidden = false;
                    }
                }
            }
            Ok(())
        }
    }

    fn letters(n: usize) -> Letters {
        let letters = Letters::default();
        if let Ok(mut queue) = letters.queue.lock() {
            for i in 0..n {
                let body = serde_json::json!({"source": "douyin", "shop": "shop-1", "message_id": format!("m-{i}"),
                    "origin": "callback", "payload": "{\"post_receiver\":\"张三\",\"post_tel\":\"13800138000\"}"});
                let mut attributes = vec![("source".to_owned(), "douyin".to_owned())];
                if i % 2 == 0 {
                    attributes.push(("reason".into(), "payload is not JSON".into()));
                }
                attributes.push(("ApproximateReceiveCount".into(), "5".into()));
                queue.push((DeadLetter { body: body.to_string(), attributes, handle: format!("h-{i}") }, false));
            }
        }
        letters
    }

    #[tokio::test]
    async fn inspect_shows_reasons_and_identifiers_never_the_payload_and_leaves_them_there() {
        let dlq = letters(25);
        let source = MemoryQueue::default();
        let ops = DeadLetterOps { dead_letters: &dlq, source: &source };
        let report = ops.inspect(20).await;
        assert_eq!(report.letters.len(), 20);
        assert_eq!(report.letters[0].reason, "payload is not JSON");
        assert!(report.letters[1].reason.contains("ran out of receives"));
        assert_eq!(report.letters[0].receives, Some(5));
        assert_eq!(report.letters[3].about["message_id"], "m-3");
        let shown = serde_json::to_string(&report).unwrap_or_default();
        assert!(!shown.contains("13800138000") && !shown.contains("张三"), "no payload, no personal data: {shown}");
        assert_eq!(ops.inspect(100).await.letters.len(), 25, "all still there, visible again");
        assert!(source.drain().is_empty());
    }

    #[tokio::test]
    async fn redrive_sends_back_then_removes_without_the_dead_letter_reason() {
        let dlq = letters(23);
        let source = MemoryQueue::default();
        let ops = DeadLetterOps { dead_letters: &dlq, source: &source };
        let report = ops.redrive(100).await;
        assert_eq!((report.read, report.redriven, report.errors), (23, 23, 0));
        let sent = source.drain();
        assert_eq!(sent.len(), 23);
        assert!(sent.iter().all(|m| m.attributes.iter().all(|(n, _)| n != "reason")), "a fresh start");
        assert!(sent.iter().all(|m| m.attributes.iter().any(|(n, v)| n == "source" && v == "douyin")));
        assert!(ops.inspect(100).await.letters.is_empty(), "the dead-letter queue is empty");
    }

    #[tokio::test]
    async fn a_redrive_that_cannot_remove_reports_it_and_the_letter_comes_again() {
        let dlq = Letters { fail_delete: true, ..letters(3) };
        let source = MemoryQueue::default();
        let ops = DeadLetterOps { dead_letters: &dlq, source: &source };
        let report = ops.redrive(3).await;
        assert_eq!((report.redriven, report.not_removed), (0, 3));
        assert_eq!(source.drain().len(), 3, "sent back (at least once)");
    }
}
