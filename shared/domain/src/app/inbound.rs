//! The road into status-normalize, shared by everything that brings changes in: claim the
//! change's dedupe record in the inbox (archiving it; a record already done is a duplicate and
//! goes no further), put it on the `inbound` queue, mark the record done, and end the claim of
//! whatever the queue did not take, so the next attempt passes at once.
//!
//! webhook-verify's [`crate::app::intake`] does this for one callback at a time (and builds its
//! queue message with [`outbound`]); order-sync's pull does it for the rows of a page
//! ([`admit`]), with the same inbox and queue ports and the same message.

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;

use crate::model::callback::{Accepted, Claim, InboundMessage};
use crate::ports::{Inbox, MAX_MESSAGE_BYTES, OutboundMessage, Queue};

/// The queue message of an inbound change: its JSON, with its source and shop as attributes
/// (for filtering and logs). `id` names the entry within one send. Escaping can make an inline
/// payload's message too long for SQS: then it goes without it, and the consumer reads the
/// payload from the archive, like any large payload.
pub fn outbound(message: &InboundMessage, id: impl Into<String>) -> Result<OutboundMessage, serde_json::Error> {
    let mut body = serde_json::to_string(message)?;
    if body.len() > MAX_MESSAGE_BYTES && message.payload.is_some() {
        body = serde_json::to_string(&InboundMessage { payload: None, ..message.clone() })?;
    }
    Ok(OutboundMessage {
        id: id.into(),
        body,
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
    /// Seen before and on its way (same dedupe key): not enqueued again.
    pub duplicates: u32,
}

/// How a batch claims its dedupe records.
#[derive(Debug, Clone, Copy)]
pub struct Claiming<'a> {
    /// This attempt's name (unique per call: a record it claimed is its own on a retry).
    pub attempt: &'a str,
    /// Now.
    pub now: DateTime<Utc>,
    /// How long the claims keep other deliveries off while this attempt enqueues.
    pub lease: Duration,
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
/// [`InboundMessage`] that goes on the queue), `concurrency` inbox claims at a time, the queue
/// in batches of 10, then marks what the queue took done. `Ok` only when every change is either
/// enqueued or a duplicate already on its way: a change another delivery holds in flight
/// (a callback's) counts as not admitted, so a pull's checkpoint never moves past it on the
/// word of a delivery that may still fail.
pub async fn admit(
    inbox: &dyn Inbox,
    queue: &dyn Queue,
    batch: Vec<(Accepted, InboundMessage)>,
    claiming: Claiming<'_>,
    concurrency: usize,
) -> Result<Admitted, AdmitError> {
    let Claiming { attempt, now, lease } = claiming;
    let outcomes: Vec<(Result<Claim, String>, Accepted, InboundMessage)> = futures::stream::iter(batch)
        .map(|(accepted, message)| async move {
            let outcome = inbox.claim(&accepted, attempt, now + lease, now).await.map_err(|e| e.to_string());
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
            Ok(Claim::Done) => admitted.duplicates += 1,
            Ok(Claim::InFlight { until }) => {
                failed += 1;
                reason.get_or_insert(format!("another delivery holds a change until {until}"));
            }
            Ok(Claim::Claimed) => match outbound(&message, fresh.len().to_string()) {
                Ok(out) => fresh.push((accepted, out)),
                Err(err) => {
                    failed += 1;
                    reason.get_or_insert(err.to_string());
                    abandon(inbox, &accepted, attempt).await;
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
    for round in 0..SEND_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100 << round)).await;
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
        let (refused, taken): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, m)| refused.contains(&m.id));
        pending = refused;
        // On their way: marked done together (a window costs one request per hundred rows, not
        // one per row). A record whose mark fails stays claimed until its lease ends; a later
        // delivery then enqueues it again, and the write path applies it once.
        let taken: Vec<&Accepted> = taken.iter().map(|(accepted, _)| accepted).collect();
        if !taken.is_empty()
            && let Err(err) = inbox.complete_many(&taken, attempt).await
        {
            tracing::warn!(rows = taken.len(), error = %err, "enqueued; could not mark the dedupe records done");
        }
        admitted.enqueued += u32::try_from(before - pending.len()).unwrap_or(u32::MAX);
        if !pending.is_empty() && reason.is_none() {
            reason = Some("queue refused a message".to_owned());
        }
    }
    for (accepted, _) in pending {
        failed += 1;
        // The next attempt is taken at once (without this, once the lease ends).
        abandon(inbox, accepted, attempt).await;
    }
    match reason {
        Some(reason) if failed > 0 => Err(AdmitError { admitted, failed, reason }),
        _ => Ok(admitted),
    }
}

async fn abandon(inbox: &dyn Inbox, accepted: &Accepted, attempt: &str) {
    if let Err(err) = inbox.abandon(accepted, attempt).await {
        tracing::warn!(source = %accepted.callback.source, message_id = %accepted.message_id, error = %err, "could not end a claim; it runs out with its lease");
    }
}
