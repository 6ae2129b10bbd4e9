//! webhook-verify's use case, the front door: one callback in, one outcome out, nothing lost.
//!
//! Verified: dedupe on the message id (conditional write in the inbox, which archives the raw
//! callback), enqueue, then [`Handled::Enqueued`] (the function acks with the body the sender
//! expects): two AWS requests. If the enqueue fails, the dedupe record is removed and the outcome
//! is [`Handled::Unavailable`], so the sender's retry passes.
//! Refused ([`Handled::Rejected`] with its [`Rejection`]): the whole callback quarantined when
//! its signature, replay window or shape failed (within the shop's hourly quota) for replay after
//! a key or parser fix, and a `WebhookRejected` event. The HTTP status of each outcome is
//! webhook-verify's choice, not the domain's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::callback::{Accepted, Claim, QuarantineOutcome, Quarantined, RawCallback, Rejection, quota_bucket};
use crate::model::callback::{INLINE_PAYLOAD_LIMIT, InboundMessage};
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{ShopId, Source};
use crate::model::time::business_day;
use crate::ports::clock::Clock;
use crate::ports::secrets::{SecretCache, SecretLookupError};
use crate::ports::{EventPublisher, Inbox, Queue, Stats};
use crate::sources::{self, Opened, Refusal};

/// Bodies above this are refused with 413 (platform callbacks are a few KB; a long Kuaidi100
/// trace tens of KB). The bound is what the archive can always keep: one DynamoDB item holds at
/// most 400 KiB, and the dedupe record carries the body and, for encrypted sources, the opened
/// payload (never longer than the body), plus headers (API Gateway allows 10 KiB): twice 192 KiB
/// plus 10 KiB is under 400 KiB even when nothing compresses. Above it the sender gets 413 at once,
/// instead of a 503 for a write that can never succeed.
pub const MAX_BODY_BYTES: usize = 192 * 1024;

/// Callbacks kept per source and sender network per hour for all shops without a configured
/// secret together (a shop being set up; a mistyped URL): enough to replay a new shop's first
/// hour, bounded however many shop names a sender makes up.
pub const UNCONFIGURED_SHOPS_QUOTA_PER_HOUR: u32 = 200;

/// One HTTP request at the door, as the HTTP adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// HTTP method.
    pub method: String,
    /// `{source}` path segment, raw.
    pub source: String,
    /// `{shop}` path segment, raw.
    pub shop: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes (base64 already undone).
    pub body: Vec<u8>,
    /// Arrival time.
    pub received_at: DateTime<Utc>,
    /// The sender's address as API Gateway saw it (`requestContext.http.sourceIp`): only its
    /// network is used, for the quarantine quota, and it is never logged.
    pub sender: Option<std::net::IpAddr>,
}

/// Everything the door needs.
pub struct Intake<'a> {
    /// Dedupe, archive, quarantine.
    pub inbox: &'a dyn Inbox,
    /// The `inbound` queue.
    pub queue: &'a dyn Queue,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
    /// Rejection counters.
    pub stats: &'a dyn Stats,
    /// Shop secrets, cached.
    pub secrets: &'a SecretCache<'a>,
    /// Now.
    pub clock: &'a dyn Clock,
    /// Quarantined callbacks kept per source and shop per hour.
    pub quarantine_quota_per_hour: u32,
    /// How long a delivery holds its dedupe record while it enqueues: longer than any attempt
    /// can still act (the function's timeout), so two deliveries never enqueue at once and a
    /// delivery killed mid-way is retried by the sender once it ends.
    pub lease: chrono::Duration,
    /// The time one callback may take at the door (the SDK's own timeouts are shorter); past
    /// it the sender is asked to retry, which the lease makes safe.
    pub budget: std::time::Duration,
    /// Counter shards.
    pub shards: u16,
}

/// What happened to one callback, for the log line and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Archived and enqueued.
    Enqueued,
    /// Seen before: acknowledged, not enqueued again.
    Duplicate,
    /// A verified test push or heartbeat.
    Probe,
    /// Refused; quarantined when the source and shop are known and the quota allows.
    Rejected {
        /// What kind of refusal.
        rejection: Rejection,
        /// Why (for logs; never secret material).
        reason: String,
        /// Whether a copy was kept for replay.
        quarantined: bool,
    },
    /// A dependency failed; the sender should retry.
    Unavailable(String),
}

impl Intake<'_> {
    /// Takes one callback and says what became of it.
    #[tracing::instrument(name = "intake", skip_all, fields(source = tracing::field::Empty, shop = tracing::field::Empty, message_id = tracing::field::Empty))]
    pub async fn receive(&self, incoming: Incoming) -> Handled {
        if !incoming.method.eq_ignore_ascii_case("POST") {
            return self.refuse(&incoming, None, Rejection::MethodNotAllowed, "method not allowed", None).await;
        }
        let Ok(source) = incoming.source.parse::<Source>() else {
            return self.refuse(&incoming, None, Rejection::UnknownSource, "unknown source", None).await;
        };
        if !sources::accepts_callbacks(source) {
            return self
                .refuse(&incoming, Some(source), Rejection::UnknownSource, "source delivers no callbacks", None)
                .await;
        }
        let Ok(shop) = ShopId::parse(&incoming.shop) else {
            return self.refuse(&incoming, Some(source), Rejection::UnknownShop, "unknown shop", None).await;
        };
        tracing::Span::current().record("source", source.as_str()).record("shop", shop.as_str());
        if incoming.body.len() > MAX_BODY_BYTES {
            return self.refuse(&incoming, Some(source), Rejection::TooLarge, "body too large", None).await;
        }
        let callback = RawCallback {
            source,
            shop: shop.clone(),
            received_at: incoming.received_at,
            query: incoming.query.clone(),
            headers: incoming.headers.clone(),
            body: incoming.body.clone(),
        };
        let secret = match self.secrets.get(source, &shop).await {
            Ok(secret) => secret,
            Err(SecretLookupError::UnknownShop) => {
                // A shop whose secret is not configured yet (a new shop, a typo in the stage):
                // kept, within one small quota for all such shops, to replay once it is set.
                let reason = "unknown shop: no secret configured";
                return self.refuse(&incoming, Some(source), Rejection::UnknownShop, reason, Some(callback)).await;
            }
            Err(SecretLookupError::Malformed(reason)) => {
                tracing::error!(%source, %shop, %reason, "shop secret parameter is malformed");
                return Handled::Unavailable("secret malformed".into());
            }
            Err(SecretLookupError::Unavailable(err)) => {
                tracing::warn!(%source, %shop, error = %err, "secrets unavailable");
                return Handled::Unavailable(err.to_string());
            }
        };
        match sources::open(&callback, &secret) {
            Ok(Opened::Probe { key_slot }) => {
                tracing::info!(%source, %shop, %key_slot, "test push acknowledged");
                Handled::Probe
            }
            Ok(Opened::Message { message_id, payload, key_slot }) => {
                tracing::Span::current().record("message_id", message_id.as_str());
                let take = self.take(callback, &incoming.query, message_id, payload, key_slot, "callback");
                match tokio::time::timeout(self.budget, take).await {
                    Ok(handled) => handled,
                    Err(_) => {
                        tracing::warn!(%source, %shop, "callback not on its way within the door's budget; sender will retry");
                        Handled::Unavailable("timed out".into())
                    }
                }
            }
            Err(refusal) => {
                let rejection =
                    if matches!(refusal, Refusal::Malformed(_)) { Rejection::Malformed } else { Rejection::Unverified };
                let reason = refusal.to_string();
                self.refuse(&incoming, Some(source), rejection, &reason, Some(callback)).await
            }
        }
    }

    /// Archives (dedupe) and enqueues a verified callback.
    async fn take(
        &self,
        callback: RawCallback,
        query: &[(String, String)],
        message_id: crate::model::ids::MessageId,
        payload: Vec<u8>,
        key_slot: String,
        origin: &str,
    ) -> Handled {
        let source = callback.source;
        let shop = callback.shop.clone();
        let received_at = callback.received_at;
        let inline = (payload.len() <= INLINE_PAYLOAD_LIMIT).then(|| String::from_utf8(payload.clone()).ok()).flatten();
        // The archive keeps the opened payload whenever it is not the body itself, so the
        // consumer can read it from there whether or not the message carries it.
        let opened = (payload != callback.body).then_some(payload);
        let accepted = Accepted { message_id: message_id.clone(), callback, key_slot: Some(key_slot.clone()), opened };
        let attempt = attempt_id(received_at);
        let now = self.clock.now();
        match self.inbox.claim(&accepted, &attempt, now + self.lease, now).await {
            Ok(Claim::Done) => {
                tracing::info!(%source, %shop, %message_id, "duplicate callback acknowledged");
                return Handled::Duplicate;
            }
            Ok(Claim::InFlight { until }) => {
                tracing::info!(%source, %shop, %message_id, %until, "another delivery is in flight; sender will retry");
                return Handled::Unavailable("another delivery of this callback is in flight".into());
            }
            Ok(Claim::Claimed) => {}
            Err(err) => {
                tracing::warn!(%source, %shop, %message_id, error = %err, "inbox unavailable");
                return Handled::Unavailable(err.to_string());
            }
        }
        let message = InboundMessage {
            source,
            shop: shop.clone(),
            message_id: message_id.clone(),
            received_at,
            query: query.to_vec(),
            payload: inline,
            origin: origin.to_owned(),
        };
        let outbound = match crate::app::inbound::outbound(&message, "0") {
            Ok(outbound) => outbound,
            Err(err) => return Handled::Unavailable(err.to_string()),
        };
        match self.queue.send(std::slice::from_ref(&outbound)).await {
            Ok(failed) if failed.is_empty() => {
                // On its way. Should marking it done fail, the record stays claimed until its
                // lease ends; a sender's retry after that enqueues it again, and the write path
                // applies it once.
                if let Err(err) = self.inbox.complete(&accepted, &attempt).await {
                    tracing::warn!(%source, %shop, %message_id, error = %err, "enqueued; could not mark the dedupe record done");
                }
                tracing::info!(%source, %shop, %message_id, %key_slot, origin, "callback accepted");
                Handled::Enqueued
            }
            result => {
                let reason = match result {
                    Err(err) => err.to_string(),
                    Ok(_) => "queue refused the message".to_owned(),
                };
                // The sender's retry is taken at once; should this fail, once the lease ends.
                if let Err(err) = self.inbox.abandon(&accepted, &attempt).await {
                    tracing::warn!(%source, %shop, %message_id, error = %err, "could not end the lease; it runs out");
                }
                tracing::warn!(%source, %shop, %message_id, %reason, "enqueue failed; sender will retry");
                Handled::Unavailable(reason)
            }
        }
    }

    async fn refuse(
        &self,
        incoming: &Incoming,
        source: Option<Source>,
        rejection: Rejection,
        reason: &str,
        callback: Option<RawCallback>,
    ) -> Handled {
        let mut quarantined = false;
        if let Some(callback) = &callback {
            // Unique per callback: its arrival time and its exact bytes.
            let mut identity = callback.received_at.timestamp_nanos_opt().unwrap_or_default().to_be_bytes().to_vec();
            identity.extend_from_slice(&callback.body);
            for (name, value) in &callback.headers {
                identity.extend_from_slice(name.as_bytes());
                identity.extend_from_slice(value.as_bytes());
            }
            let configured = rejection != Rejection::UnknownShop;
            let copy = Quarantined {
                id: crate::model::ids::body_hash_id(&identity).to_string(),
                callback: callback.clone(),
                reason: reason.to_owned(),
                bucket: quota_bucket(configured.then_some(&callback.shop), incoming.sender),
            };
            let quota = if configured { self.quarantine_quota_per_hour } else { UNCONFIGURED_SHOPS_QUOTA_PER_HOUR };
            match self.inbox.quarantine(&copy, quota).await {
                Ok(QuarantineOutcome::Stored) => quarantined = true,
                Ok(QuarantineOutcome::OverQuota) => {
                    tracing::warn!(source = %callback.source, shop = %callback.shop, "quarantine quota used up; not kept");
                }
                Err(err) => {
                    // A signature failure must never be lost silently: let the sender retry.
                    tracing::error!(source = %callback.source, shop = %callback.shop, error = %err, "quarantine unavailable");
                    return Handled::Unavailable(err.to_string());
                }
            }
        }
        let shop = ShopId::parse(&incoming.shop).ok();
        tracing::warn!(
            source = source.map(Source::as_str).unwrap_or("unknown"),
            shop = shop.as_ref().map(ShopId::as_str).unwrap_or("unknown"),
            rejection = rejection.as_str(),
            reason,
            quarantined,
            "callback rejected"
        );
        let event = DomainEvent::WebhookRejected {
            source: source.unwrap_or(Source::App),
            shop: shop.as_ref().map(ToString::to_string),
            rejection,
            reason: reason.to_owned(),
            at: incoming.received_at,
        };
        if source.is_some()
            && let Err(err) = self.events.publish(std::slice::from_ref(&event)).await
        {
            tracing::warn!(error = %err, "could not publish WebhookRejected");
        }
        if let Some(source) = source {
            let day = business_day(incoming.received_at);
            let shard = u16::try_from(incoming.received_at.timestamp_subsec_micros() % u32::from(self.shards.max(1)))
                .unwrap_or(0);
            let mut adds =
                vec![CounterAdd { channel: source, day, shard, name: names::WEBHOOK_REJECTED.into(), by: 1 }];
            if quarantined {
                adds.push(CounterAdd { channel: source, day, shard, name: names::QUARANTINED.into(), by: 1 });
            }
            if let Err(err) = self.stats.add(&adds).await {
                tracing::warn!(error = %err, "could not count the rejection");
            }
        }
        Handled::Rejected { rejection, reason: reason.to_owned(), quarantined }
    }

    /// Replays quarantined callbacks of one source and shop received in `[from, to)`: each is
    /// verified again with the shop's current secrets and, if it passes now, goes the normal
    /// way (dedupe, archive, enqueue) and leaves the quarantine.
    #[tracing::instrument(name = "replay", skip_all, fields(source = tracing::field::Empty, shop = tracing::field::Empty))]
    pub async fn replay(&self, request: &ReplayRequest) -> ReplayReport {
        let mut report = ReplayReport::default();
        let Ok(source) = request.source.parse::<Source>() else {
            report.error = Some("unknown source".into());
            return report;
        };
        let Ok(shop) = ShopId::parse(&request.shop) else {
            report.error = Some("invalid shop".into());
            return report;
        };
        tracing::Span::current().record("source", source.as_str()).record("shop", shop.as_str());
        // The key was just fixed: read it now, not from the cache.
        self.secrets.invalidate(source, &shop).await;
        let secret = match self.secrets.get(source, &shop).await {
            Ok(secret) => secret,
            Err(err) => {
                report.error = Some(err.to_string());
                return report;
            }
        };
        let mut cursor: Option<String> = None;
        loop {
            let page =
                match self.inbox.quarantined(source, &shop, request.from, request.to, cursor.as_deref(), 100).await {
                    Ok(page) => page,
                    Err(err) => {
                        report.error = Some(err.to_string());
                        return report;
                    }
                };
            for copy in page.items {
                report.examined += 1;
                match sources::open(&copy.callback, &secret) {
                    Ok(Opened::Message { message_id, payload, key_slot }) => {
                        let query = copy.callback.query.clone();
                        match self.take(copy.callback.clone(), &query, message_id, payload, key_slot, "replay").await {
                            Handled::Enqueued => report.replayed += 1,
                            Handled::Duplicate => report.duplicates += 1,
                            _ => {
                                report.unavailable += 1;
                                continue;
                            }
                        }
                        if let Err(err) = self.inbox.release_quarantined(&copy).await {
                            tracing::warn!(error = %err, "replayed but could not clear the quarantined copy");
                        }
                    }
                    Ok(Opened::Probe { .. }) => {
                        report.duplicates += 1;
                        let _ = self.inbox.release_quarantined(&copy).await;
                    }
                    Err(refusal) => {
                        report.still_failing += 1;
                        *report.reasons.entry(refusal.to_string()).or_default() += 1;
                    }
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        tracing::info!(%source, %shop, replayed = report.replayed, still_failing = report.still_failing, duplicates = report.duplicates, "replay finished");
        report
    }
}

/// A unique id for one attempt at the door: the callback's arrival, this process's random seed
/// and a counter, so two Lambda instances (whose process ids may be equal) never share one.
pub(crate) fn attempt_id(received_at: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    let nanos = received_at.timestamp_nanos_opt().unwrap_or_default();
    format!("{nanos:x}-{seed:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Ops: replay quarantined callbacks of a source and shop over a time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// Source name.
    pub source: String,
    /// Shop id.
    pub shop: String,
    /// Window start (inclusive).
    pub from: DateTime<Utc>,
    /// Window end (exclusive).
    pub to: DateTime<Utc>,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplayReport {
    /// Quarantined copies looked at.
    pub examined: u32,
    /// Passed now and enqueued.
    pub replayed: u32,
    /// Passed now but were processed before (a retry got through).
    pub duplicates: u32,
    /// Still refused (left in quarantine).
    pub still_failing: u32,
    /// Passed but could not be enqueued now (left in quarantine; run again).
    pub unavailable: u32,
    /// Why the still-failing ones fail, with counts.
    pub reasons: BTreeMap<String, u32>,
    /// Why the replay could not run at all.
    pub error: Option<String>,
}
