//! SQS implementation of the queue port (batches of at most 10 entries and 256 KiB), and a
//! dead-letter queue read back for ops (inspect, redrive).

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use domain::ports::dead_letters::{DeadLetter, DeadLetters};
use domain::ports::{MAX_MESSAGE_BYTES, OutboundMessage, Queue, QueueError};

use crate::aws::error_code;

/// One SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }
}

fn size(message: &OutboundMessage) -> usize {
    message.body.len() + message.attributes.iter().map(|(k, v)| k.len() + v.len() + "String".len()).sum::<usize>()
}

/// Splits messages into requests of at most 10 entries and `MAX_MESSAGE_BYTES` in total.
fn batches(messages: &[OutboundMessage]) -> Vec<&[OutboundMessage]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, message) in messages.iter().enumerate() {
        let len = size(message);
        if i > start && (i - start == 10 || bytes + len > MAX_MESSAGE_BYTES) {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: &[OutboundMessage]) -> Result<Vec<String>, QueueError> {
        if let Some(big) = messages.iter().find(|m| size(m) > MAX_MESSAGE_BYTES) {
            return Err(QueueError::TooLarge(size(big)));
        }
        let mut failed = Vec::new();
        for batch in batches(messages) {
            let mut request = self.client.send_message_batch().queue_url(&self.url);
            for (i, message) in batch.iter().enumerate() {
                let mut entry = SendMessageBatchRequestEntry::builder().id(format!("m{i}")).message_body(&message.body);
                for (name, value) in &message.attributes {
                    let attribute = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(value)
                        .build()
                        .map_err(|e| QueueError::Unavailable(e.to_string()))?;
                    entry = entry.message_attributes(name, attribute);
                }
                request = request.entries(entry.build().map_err(|e| QueueError::Unavailable(e.to_string()))?);
            }
            let out = request.send().await.map_err(|e| QueueError::Unavailable(error_code(&e).1))?;
            for failure in out.failed() {
                let index: Option<usize> = failure.id().strip_prefix('m').and_then(|i| i.parse().ok());
                if let Some(message) = index.and_then(|i| batch.get(i)) {
                    failed.push(message.id.clone());
                }
            }
        }
        Ok(failed)
    }
}

/// A dead-letter queue read back.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: Client,
    url: String,
}

impl SqsDeadLetters {
    /// The queue at `url`.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn receive(&self, max: u32) -> Result<Vec<DeadLetter>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            // Long enough to handle one message; an unhandled one comes back by itself.
            .visibility_timeout(120)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(error_code(&e).1))?;
        Ok(out
            .messages()
            .iter()
            .map(|message| {
                let mut attributes: Vec<(String, String)> = message
                    .message_attributes()
                    .map(|attributes| {
                        attributes
                            .iter()
                            .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(system) = message.attributes() {
                    attributes.extend(system.iter().map(|(name, value)| (name.as_str().to_owned(), value.clone())));
                }
                DeadLetter {
                    body: message.body().unwrap_or_default().to_owned(),
                    attributes,
                    handle: message.receipt_handle().unwrap_or_default().to_owned(),
                }
            })
            .collect())
    }

    async fn delete(&self, handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(error_code(&e).1))
    }

    async fn release(&self, handle: &str) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(error_code(&e).1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: usize, len: usize) -> OutboundMessage {
        OutboundMessage { id: format!("e{n}"), body: "x".repeat(len), attributes: vec![] }
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_256_kib() {
        let small: Vec<_> = (0..23).map(|n| message(n, 10)).collect();
        assert_eq!(batches(&small).iter().map(|b| b.len()).collect::<Vec<_>>(), [10, 10, 3]);
        let large: Vec<_> = (0..5).map(|n| message(n, 100 * 1024)).collect();
        assert_eq!(batches(&large).iter().map(|b| b.len()).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(batches(&[]).is_empty());
    }
}
