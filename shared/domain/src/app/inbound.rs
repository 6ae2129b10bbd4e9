//! The road into status-normalize, shared by everything that brings changes in: archive the
//! change in the inbox under its dedupe key (a conditional write: a key seen before is a
//! duplicate and goes no further), put it on the `inbound` queue, and undo the dedupe record
//! of whatever the queue did not take, so the next attempt passes.
//!
//! webhook-verify's [`crate::app::intake`] does this for one callback at a time (and builds its
//! queue message with [`outbound`]); order-sync's pull does it for the rows of a page
//! ([`admit`]), with the same inbox and queue ports and the same message.

use futures::StreamExt;

use crate::model::callback::{AcceptOutcome, Accepted, InboundMessage};
use crate::ports::{Inbox, OutboundMessage, Queue};

/// The queue message of an inbound change: its JSON, with its source and shop as attributes
/// (for filtering and logs). `id` names the entry within one send.
pub fn outbound(message: &InboundMessage, id: impl Into<String>) -> Result<OutboundMessage, serde_json::Error> {
    Ok(OutboundMessage {
        id: id.into(),
        body: serde_json::to_string(message)?,
        attributes: vec![("source".into(), message.source.to_string()), ("shop".into(), message.shop.to_string())],
    })
}

/// Sends of the same entries to the queue before they are given up.
const SEND_ATTEMPTS: u32 = 3;

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Admitted {
    /// Archived and enqueued now.
    pub enqueued: u32,
    /// Seen before (same dedupe key): not enqueued again.
    pub duplicates: u32,
}

/// Why a batch was not wholly admitted. What was enqueued stays enqueued; what was not has no
/// dedupe record left, so a later attempt passes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{failed} of the batch not enqueued: {reason}")]
pub struct AdmitError {
    /// Enqueued and duplicates before the failure.
    pub admitted: Admitted,
    /// How many were not enqueued.
    pub failed: u32,
    /// The first reason.
    pub reason: String,
}

/// Archives and enqueues a batch of changes (each an [`Accepted`] archive record and the
/// [`InboundMessage`] that goes on the queue), `concurrency` inbox writes at a time, the queue
/// in batches of 10. `Ok` only when every change is either enqueued or a duplicate.
pub async fn admit(
    inbox: &dyn Inbox,
    queue: &dyn Queue,
    batch: Vec<(Accepted, InboundMessage)>,
    concurrency: usize,
) -> Result<Admitted, AdmitError> {
    let outcomes: Vec<(Result<AcceptOutcome, String>, Accepted, InboundMessage)> = futures::stream::iter(batch)
        .map(|(accepted, message)| async move {
            let outcome = inbox.accept(&accepted).await.map_err(|e| e.to_string());
            (outcome, accepted, message)
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut admitted = Admitted::default();
    let mut failed = 0;
    let mut reason: Option<String> = None;
    let mut fresh: Vec<(Accepted, OutboundMessage)> = Vec::new();
    for (outcome, accepted, message) in outcomes {
        match outcome {
            Ok(AcceptOutcome::Duplicate) => admitted.duplicates += 1,
            Ok(AcceptOutcome::New) => match outbound(&message, fresh.len().to_string()) {
                Ok(out) => fresh.push((accepted, out)),
                Err(err) => {
                    failed += 1;
                    reason.get_or_insert(err.to_string());
                    forget(inbox, &accepted).await;
                }
            },
            Err(err) => {
                failed += 1;
                reason.get_or_insert(err);
            }
        }
    }
    // The queue's own failures are transient as a rule (throttling, a dropped connection): the
    // entries it did not take are sent again twice, a moment apart, before they are given up.
    let mut pending: Vec<&(Accepted, OutboundMessage)> = fresh.iter().collect();
    for attempt in 0..SEND_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
        }
        let messages: Vec<OutboundMessage> = pending.iter().map(|(_, m)| m.clone()).collect();
        let refused: Vec<String> = match queue.send(&messages).await {
            Ok(refused) => refused,
            Err(err) => {
                reason = Some(err.to_string());
                messages.iter().map(|m| m.id.clone()).collect()
            }
        };
        let before = pending.len();
        pending.retain(|(_, m)| refused.contains(&m.id));
        admitted.enqueued += u32::try_from(before - pending.len()).unwrap_or(u32::MAX);
        if !pending.is_empty() && reason.is_none() {
            reason = Some("queue refused a message".to_owned());
        }
    }
    for (accepted, _) in pending {
        failed += 1;
        // Without this the next attempt would be taken for a duplicate and lost.
        forget(inbox, accepted).await;
    }
    match reason {
        Some(reason) if failed > 0 => Err(AdmitError { admitted, failed, reason }),
        _ => Ok(admitted),
    }
}

async fn forget(inbox: &dyn Inbox, accepted: &Accepted) {
    if let Err(err) = inbox.forget(accepted.callback.source, &accepted.message_id).await {
        tracing::error!(source = %accepted.callback.source, message_id = %accepted.message_id, error = %err, "could not undo a dedupe record");
    }
}
