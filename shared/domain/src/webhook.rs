//! The front door: one callback in, one answer out, nothing lost.
//!
//! Verified: dedupe on the message id (conditional write in the inbox, which archives the raw
//! callback), enqueue, ack with the body the sender expects: two AWS requests. If the enqueue
//! fails, the dedupe record is removed and the sender gets a 503, so its retry passes.
//! Refused: 401 (signature, replay window) or 400 (malformed), the whole callback quarantined
//! (within the shop's hourly quota) for replay after a key or parser fix, and a
//! `WebhookRejected` event. Unknown source or shop 404, wrong method 405, oversized 413. Nothing
//! the caller controls gets a 500.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::DomainEvent;
use crate::ids::{ShopId, Source};
use crate::inbound::{INLINE_PAYLOAD_LIMIT, InboundMessage};
use crate::inbox::{AcceptOutcome, Accepted, QuarantineOutcome, Quarantined, RawCallback};
use crate::ports::{EventPublisher, Inbox, OutboundMessage, Queue, Stats};
use crate::secrets::{SecretCache, SecretLookupError};
use crate::sources::{self, Opened, Refusal};
use crate::stats::{CounterAdd, names};
use crate::time::business_day;

/// Bodies above this are refused with 413 (platform callbacks are a few KB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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
}

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body (JSON, or empty).
    pub body: String,
}

impl Reply {
    fn error(status: u16, message: &str) -> Self {
        Self { status, body: serde_json::json!({ "error": message }).to_string() }
    }
}

/// Everything the door needs.
pub struct Front<'a> {
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
    /// Quarantined callbacks kept per source and shop per hour.
    pub quarantine_quota_per_hour: u32,
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
        /// Why (for logs; never secret material).
        reason: String,
        /// Whether a copy was kept for replay.
        quarantined: bool,
    },
    /// A dependency failed; the sender should retry.
    Unavailable(String),
}

impl Front<'_> {
    /// Answers one callback.
    pub async fn receive(&self, incoming: Incoming) -> (Reply, Handled) {
        if !incoming.method.eq_ignore_ascii_case("POST") {
            return self.refuse(&incoming, None, 405, "method not allowed", None).await;
        }
        let Ok(source) = incoming.source.parse::<Source>() else {
            return self.refuse(&incoming, None, 404, "unknown source", None).await;
        };
        if !sources::accepts_callbacks(source) {
            return self.refuse(&incoming, Some(source), 404, "source delivers no callbacks", None).await;
        }
        let Ok(shop) = ShopId::parse(&incoming.shop) else {
            return self.refuse(&incoming, Some(source), 404, "unknown shop", None).await;
        };
        if incoming.body.len() > MAX_BODY_BYTES {
            return self.refuse(&incoming, Some(source), 413, "body too large", None).await;
        }
        let secret = match self.secrets.get(source, &shop).await {
            Ok(secret) => secret,
            Err(SecretLookupError::UnknownShop) => {
                return self.refuse(&incoming, Some(source), 404, "unknown shop", None).await;
            }
            Err(SecretLookupError::Malformed(reason)) => {
                tracing::error!(%source, %shop, %reason, "shop secret parameter is malformed");
                return (Reply::error(503, "temporarily unavailable"), Handled::Unavailable("secret malformed".into()));
            }
            Err(SecretLookupError::Unavailable(err)) => {
                tracing::warn!(%source, %shop, error = %err, "secrets unavailable");
                return (Reply::error(503, "temporarily unavailable"), Handled::Unavailable(err.to_string()));
            }
        };
        let callback = RawCallback {
            source,
            shop: shop.clone(),
            received_at: incoming.received_at,
            query: incoming.query.clone(),
            headers: incoming.headers.clone(),
            body: incoming.body.clone(),
        };
        match sources::open(&callback, &secret) {
            Ok(Opened::Probe { key_slot }) => {
                tracing::info!(%source, %shop, %key_slot, "test push acknowledged");
                let ack = sources::ack(source);
                (Reply { status: ack.status, body: ack.body.to_owned() }, Handled::Probe)
            }
            Ok(Opened::Message { message_id, payload, key_slot }) => {
                let handled = self.take(callback, &incoming.query, message_id, payload, key_slot, "callback").await;
                match handled {
                    Handled::Enqueued | Handled::Duplicate => {
                        let ack = sources::ack(source);
                        (Reply { status: ack.status, body: ack.body.to_owned() }, handled)
                    }
                    other => (Reply::error(503, "temporarily unavailable, retry"), other),
                }
            }
            Err(refusal) => {
                let status = if matches!(refusal, Refusal::Malformed(_)) { 400 } else { 401 };
                let reason = refusal.to_string();
                self.refuse(&incoming, Some(source), status, &reason, Some(callback)).await
            }
        }
    }

    /// Archives (dedupe) and enqueues a verified callback.
    async fn take(
        &self,
        callback: RawCallback,
        query: &[(String, String)],
        message_id: crate::ids::MessageId,
        payload: Vec<u8>,
        key_slot: String,
        origin: &str,
    ) -> Handled {
        let source = callback.source;
        let shop = callback.shop.clone();
        let received_at = callback.received_at;
        let inline = (payload.len() <= INLINE_PAYLOAD_LIMIT).then(|| String::from_utf8(payload.clone()).ok()).flatten();
        let opened = (inline.is_none() && payload != callback.body).then_some(payload);
        let accepted = Accepted { message_id: message_id.clone(), callback, key_slot: Some(key_slot.clone()), opened };
        match self.inbox.accept(&accepted).await {
            Ok(AcceptOutcome::Duplicate) => {
                tracing::info!(%source, %shop, %message_id, "duplicate callback acknowledged");
                return Handled::Duplicate;
            }
            Ok(AcceptOutcome::New) => {}
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
        let body = match serde_json::to_string(&message) {
            Ok(body) => body,
            Err(err) => return Handled::Unavailable(err.to_string()),
        };
        let outbound = OutboundMessage {
            id: "0".into(),
            body,
            attributes: vec![("source".into(), source.to_string()), ("shop".into(), shop.to_string())],
        };
        match self.queue.send(std::slice::from_ref(&outbound)).await {
            Ok(failed) if failed.is_empty() => {
                tracing::info!(%source, %shop, %message_id, %key_slot, origin, "callback accepted");
                Handled::Enqueued
            }
            result => {
                let reason = match result {
                    Err(err) => err.to_string(),
                    Ok(_) => "queue refused the message".to_owned(),
                };
                // Without this the sender's retry would be taken for a duplicate and lost.
                if let Err(err) = self.inbox.forget(source, &message_id).await {
                    tracing::error!(%source, %shop, %message_id, error = %err, "could not undo dedupe record");
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
        status: u16,
        reason: &str,
        callback: Option<RawCallback>,
    ) -> (Reply, Handled) {
        let mut quarantined = false;
        if let Some(callback) = &callback {
            // Unique per callback: its arrival time and its exact bytes.
            let mut identity = callback.received_at.timestamp_nanos_opt().unwrap_or_default().to_be_bytes().to_vec();
            identity.extend_from_slice(&callback.body);
            for (name, value) in &callback.headers {
                identity.extend_from_slice(name.as_bytes());
                identity.extend_from_slice(value.as_bytes());
            }
            let copy = Quarantined {
                id: crate::sources::body_hash_id(&identity).to_string(),
                callback: callback.clone(),
                reason: reason.to_owned(),
            };
            match self.inbox.quarantine(&copy, self.quarantine_quota_per_hour).await {
                Ok(QuarantineOutcome::Stored) => quarantined = true,
                Ok(QuarantineOutcome::OverQuota) => {
                    tracing::warn!(source = %callback.source, shop = %callback.shop, "quarantine quota used up; not kept");
                }
                Err(err) => {
                    // A signature failure must never be lost silently: let the sender retry.
                    tracing::error!(source = %callback.source, shop = %callback.shop, error = %err, "quarantine unavailable");
                    return (
                        Reply::error(503, "temporarily unavailable, retry"),
                        Handled::Unavailable(err.to_string()),
                    );
                }
            }
        }
        let shop = ShopId::parse(&incoming.shop).ok();
        tracing::warn!(
            source = source.map(Source::as_str).unwrap_or("unknown"),
            shop = shop.as_ref().map(ShopId::as_str).unwrap_or("unknown"),
            status,
            reason,
            quarantined,
            "callback rejected"
        );
        let event = DomainEvent::WebhookRejected {
            source: source.unwrap_or(Source::App),
            shop: shop.as_ref().map(ToString::to_string),
            status,
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
        (Reply::error(status, reason_for_caller(status)), Handled::Rejected { reason: reason.to_owned(), quarantined })
    }

    /// Replays quarantined callbacks of one source and shop received in `[from, to)`: each is
    /// verified again with the shop's current secrets and, if it passes now, goes the normal
    /// way (dedupe, archive, enqueue) and leaves the quarantine.
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

fn reason_for_caller(status: u16) -> &'static str {
    match status {
        400 => "malformed body",
        401 => "verification failed",
        404 => "not found",
        405 => "method not allowed",
        413 => "body too large",
        _ => "refused",
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, Signed};
    use crate::memory::{MemoryInbox, MemoryPublisher, MemoryQueue, MemorySecrets, MemoryStore};
    use crate::ports::Secrets;
    use crate::secrets::parameter_name;
    use crate::time::FixedClock;
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default()
    }

    struct World {
        inbox: MemoryInbox,
        queue: MemoryQueue,
        bus: MemoryPublisher,
        store: MemoryStore,
        secrets: MemorySecrets,
        clock: FixedClock,
    }

    impl World {
        async fn new() -> Self {
            let world = World {
                inbox: MemoryInbox::default(),
                queue: MemoryQueue::default(),
                bus: MemoryPublisher::default(),
                store: MemoryStore::default(),
                secrets: MemorySecrets::default(),
                clock: FixedClock::new(at()),
            };
            for source in
                [Source::Douyin, Source::Youzan, Source::Kuaishou, Source::Kuaidi100, Source::Wechatpay, Source::App]
            {
                world.set_secret(source, "s3cret", None).await;
            }
            world
        }

        async fn set_secret(&self, source: Source, secret: &str, previous: Option<&str>) {
            let shop = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
            let name = parameter_name("test", source, &shop);
            self.secrets
                .put(&name, &fixtures::secret_json(source, secret, previous))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }

        fn front<'a>(&'a self, cache: &'a SecretCache<'a>) -> Front<'a> {
            Front {
                inbox: &self.inbox,
                queue: &self.queue,
                events: &self.bus,
                stats: &self.store,
                secrets: cache,
                quarantine_quota_per_hour: 3,
                shards: 8,
            }
        }
    }

    fn incoming(source: Source, signed: &Signed) -> Incoming {
        Incoming {
            method: "POST".into(),
            source: source.to_string(),
            shop: "shop-1".into(),
            query: signed.query.clone(),
            headers: signed.headers.clone(),
            body: signed.body.clone(),
            received_at: at(),
        }
    }

    fn payload(source: Source) -> Vec<u8> {
        match source {
            Source::Douyin => fixtures::douyin_push("101", "7000000000000000001", json!({"p_id": 6_921_000_000_001_i64, "pay_time": 1_794_362_400, "s_ids": [1]})),
            Source::Youzan => fixtures::youzan_push("trade_TradePaid", "E2026111100001", "WAIT_SELLER_SEND_GOODS", 1_794_362_400),
            Source::Kuaishou => fixtures::kuaishou_message("ks-msg-1", "KWAISHOP_ORDER_STATUS_CHANGE", "2026111100001", 30, 1_794_362_400_000, false),
            Source::Kuaidi100 => fixtures::kuaidi100_param("shunfeng", "SF1001", "3", "304", "快件已被丰巢智能柜签收", "2026-11-11 10:00:00", "120.15,30.28"),
            Source::Wechatpay => json!({"out_trade_no": "mp-1001", "transaction_id": "4200001", "trade_state": "SUCCESS", "success_time": "2026-11-11T10:00:00+08:00"}).to_string().into_bytes(),
            _ => fixtures::app_event("order.status", at(), json!({"order_id": "mp-1001", "status": "Paid"})),
        }
    }

    const SOURCES: [Source; 6] =
        [Source::Douyin, Source::Youzan, Source::Kuaishou, Source::Kuaidi100, Source::Wechatpay, Source::App];

    #[tokio::test]
    async fn every_source_valid_callback_is_archived_enqueued_and_acked_as_the_sender_expects() {
        let world = World::new().await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        for source in SOURCES {
            let mut signed = fixtures::sign(
                source,
                &payload(source),
                &fixtures::signing_key(source, "s3cret"),
                at(),
                &format!("{source}-m1"),
            );
            if source == Source::Kuaidi100 {
                signed.query = vec![("order".into(), "douyin/shop-1/6921000000001".into())];
            }
            let (reply, handled) = front.receive(incoming(source, &signed)).await;
            assert_eq!(handled, Handled::Enqueued, "{source}");
            let ack = sources::ack(source);
            assert_eq!((reply.status, reply.body.as_str()), (ack.status, ack.body), "{source}");
            let sent = world.queue.drain();
            assert_eq!(sent.len(), 1, "{source}");
            let message: InboundMessage = serde_json::from_str(&sent[0].body).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(message.source, source);
            let events = sources::parse(
                source,
                &message.shop,
                message.payload.as_deref().unwrap_or_default().as_bytes(),
                &message.query,
                message.received_at,
            );
            assert!(events.is_ok_and(|e| !e.is_empty()), "{source}: the enqueued payload parses");
            // A duplicate is acked and not enqueued again.
            let (reply, handled) = front.receive(incoming(source, &signed)).await;
            assert_eq!((reply.status, handled), (ack.status, Handled::Duplicate), "{source}");
            assert!(world.queue.drain().is_empty());
        }
    }

    #[tokio::test]
    async fn a_tampered_callback_is_401_quarantined_and_replayable_after_the_key_fix() {
        let world = World::new().await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        for source in [Source::Douyin, Source::Youzan, Source::Kuaidi100, Source::App] {
            // The platform signs with a new secret we do not know yet (the 327-order outage).
            let new_secret = if source == Source::App {
                "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy0xMjM0NQ=="
            } else {
                "rotated-by-platform"
            };
            let signed = fixtures::sign(
                source,
                &payload(source),
                &fixtures::signing_key(source, new_secret),
                at(),
                &format!("{source}-q1"),
            );
            let (reply, handled) = front.receive(incoming(source, &signed)).await;
            assert_eq!(reply.status, 401, "{source}");
            assert!(matches!(handled, Handled::Rejected { quarantined: true, .. }), "{source}: {handled:?}");
            assert!(!reply.body.contains("s3cret") && !reply.body.contains("rotated"), "no secret in the answer");
            assert!(world.queue.drain().is_empty());
            // Ops fix the key, then replay the window.
            world.set_secret(source, new_secret, Some("s3cret")).await;
            let report = front
                .replay(&ReplayRequest {
                    source: source.to_string(),
                    shop: "shop-1".into(),
                    from: at() - Duration::hours(1),
                    to: at() + Duration::hours(1),
                })
                .await;
            assert_eq!((report.replayed, report.still_failing, report.duplicates), (1, 0, 0), "{source}: {report:?}");
            assert_eq!(world.queue.drain().len(), 1, "{source}: replayed into the queue");
            let again = front
                .replay(&ReplayRequest {
                    source: source.to_string(),
                    shop: "shop-1".into(),
                    from: at() - Duration::hours(1),
                    to: at() + Duration::hours(1),
                })
                .await;
            assert_eq!(again.examined, 0, "{source}: replayed copies leave the quarantine");
        }
        let rejected = world.bus.published().iter().filter(|e| e.detail_type() == "WebhookRejected").count();
        assert_eq!(rejected, 4, "every rejection is published");
    }

    #[tokio::test]
    async fn the_previous_secret_still_verifies_during_a_rotation() {
        let world = World::new().await;
        for source in [Source::Douyin, Source::Youzan, Source::Kuaidi100] {
            world.set_secret(source, "new-secret", Some("s3cret")).await;
        }
        world
            .set_secret(Source::App, "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy0xMjM0NQ==", Some(fixtures::APP_SECRET))
            .await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        for source in [Source::Douyin, Source::Youzan, Source::Kuaidi100, Source::App] {
            let signed = fixtures::sign(
                source,
                &payload(source),
                &fixtures::signing_key(source, "s3cret"),
                at(),
                &format!("{source}-r1"),
            );
            let (reply, handled) = front.receive(incoming(source, &signed)).await;
            assert_eq!(handled, Handled::Enqueued, "{source}: {reply:?}");
            let archived = world
                .inbox
                .archived(
                    source,
                    &serde_json::from_str::<InboundMessage>(&world.queue.drain()[0].body)
                        .map(|m| m.message_id)
                        .unwrap_or_else(|e| panic!("{e}")),
                )
                .await;
            assert_eq!(archived.ok().flatten().and_then(|a| a.key_slot).as_deref(), Some("previous"), "{source}");
        }
    }

    #[tokio::test]
    async fn bad_requests_get_clear_answers_and_never_a_500() {
        let world = World::new().await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        let good = fixtures::sign(Source::Youzan, &payload(Source::Youzan), "s3cret", at(), "m");
        let mut get = incoming(Source::Youzan, &good);
        get.method = "GET".into();
        assert_eq!(front.receive(get).await.0.status, 405);
        let mut unknown = incoming(Source::Youzan, &good);
        unknown.source = "tiktok".into();
        assert_eq!(front.receive(unknown).await.0.status, 404);
        let mut no_shop = incoming(Source::Youzan, &good);
        no_shop.shop = "shop-2".into();
        assert_eq!(front.receive(no_shop).await.0.status, 404, "a shop without secrets is unknown");
        let mut pulled = incoming(Source::Youzan, &good);
        pulled.source = "pdd".into();
        assert_eq!(front.receive(pulled).await.0.status, 404, "pdd is pulled, not pushed");
        let mut huge = incoming(Source::Youzan, &good);
        huge.body = vec![b'x'; MAX_BODY_BYTES + 1];
        assert_eq!(front.receive(huge).await.0.status, 413);
        let malformed = fixtures::sign(Source::Youzan, b"{not json", "s3cret", at(), "m");
        let (reply, handled) = front.receive(incoming(Source::Youzan, &malformed)).await;
        assert_eq!(reply.status, 400);
        assert!(matches!(handled, Handled::Rejected { quarantined: true, .. }), "malformed bodies are kept too");
        assert!(world.queue.drain().is_empty());
    }

    #[tokio::test]
    async fn test_pushes_and_heartbeats_are_acked_and_not_enqueued() {
        let world = World::new().await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        let douyin = fixtures::sign(Source::Douyin, &fixtures::douyin_push("0", "1", json!({})), "s3cret", at(), "m");
        let (reply, handled) = front.receive(incoming(Source::Douyin, &douyin)).await;
        assert_eq!(
            (reply.status, reply.body.as_str(), handled),
            (200, r#"{"code":0,"msg":"success"}"#, Handled::Probe)
        );
        let heartbeat = fixtures::kuaishou_message("hb", "", "0", 0, 1_794_362_400_000, true);
        let kuaishou = fixtures::sign(Source::Kuaishou, &heartbeat, fixtures::KUAISHOU_MESSAGE_KEY, at(), "m");
        let (reply, handled) = front.receive(incoming(Source::Kuaishou, &kuaishou)).await;
        assert_eq!((reply.body.as_str(), handled), (r#"{"result":1}"#, Handled::Probe));
        assert!(world.queue.drain().is_empty());
    }

    #[tokio::test]
    async fn a_failed_enqueue_is_503_and_the_retry_is_not_taken_for_a_duplicate() {
        let world = World::new().await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        let signed = fixtures::sign(Source::Youzan, &payload(Source::Youzan), "s3cret", at(), "m");
        world.queue.fail_next("throttled");
        let (reply, handled) = front.receive(incoming(Source::Youzan, &signed)).await;
        assert_eq!(reply.status, 503);
        assert!(matches!(handled, Handled::Unavailable(_)));
        let (reply, handled) = front.receive(incoming(Source::Youzan, &signed)).await;
        assert_eq!((reply.status, handled), (200, Handled::Enqueued));
    }

    #[tokio::test]
    async fn the_quarantine_is_bounded_per_shop_and_hour() {
        let world = World::new().await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        let mut kept = 0;
        for n in 0..10 {
            let body = format!("{{\"garbage\":{n}}}").into_bytes();
            let forged = Signed {
                headers: vec![("client-id".into(), "yz-client-1".into()), ("event-sign".into(), "00".into())],
                body,
                query: vec![],
            };
            let mut request = incoming(Source::Youzan, &forged);
            request.received_at = at() + Duration::seconds(n);
            let (reply, handled) = front.receive(request).await;
            assert_eq!(reply.status, 401);
            if matches!(handled, Handled::Rejected { quarantined: true, .. }) {
                kept += 1;
            }
        }
        assert_eq!(kept, 3, "the quota of 3 per hour holds");
    }

    #[tokio::test]
    async fn wechatpay_probes_and_stale_timestamps_are_refused() {
        let world = World::new().await;
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let front = world.front(&cache);
        let mut probe = fixtures::sign(
            Source::Wechatpay,
            &payload(Source::Wechatpay),
            fixtures::WECHATPAY_PRIVATE_KEY,
            at(),
            "wx-1",
        );
        for (name, value) in &mut probe.headers {
            if name == "wechatpay-signature" {
                *value = format!("WECHATPAY/SIGNTEST/{value}");
            }
        }
        assert_eq!(front.receive(incoming(Source::Wechatpay, &probe)).await.0.status, 401);
        let old = fixtures::sign(
            Source::Wechatpay,
            &payload(Source::Wechatpay),
            fixtures::WECHATPAY_PRIVATE_KEY,
            at() - Duration::seconds(301),
            "wx-2",
        );
        let (reply, handled) = front.receive(incoming(Source::Wechatpay, &old)).await;
        assert_eq!(reply.status, 401);
        assert!(matches!(handled, Handled::Rejected { reason, .. } if reason.contains("replay window")));
        let fresh = fixtures::sign(
            Source::Wechatpay,
            &payload(Source::Wechatpay),
            fixtures::WECHATPAY_PRIVATE_KEY,
            at() - Duration::seconds(299),
            "wx-3",
        );
        assert_eq!(front.receive(incoming(Source::Wechatpay, &fresh)).await.0.status, 204);
    }
}
