//! Carrier tracking for every waybill: when an order gets a waybill, subscribe it to Kuaidi100
//! (`resultv2=4`, the callback URL carrying the order, the shop's Kuaidi100 secret as the salt
//! its pushes are signed with), exactly once per waybill, retried on failure; when Kuaidi100
//! stops tracking (an `abort` push), subscribe it again after the 30 minutes it asks for.
//!
//! How the work is found: the write path sets a `subscribe` due marker on the order in the same
//! write that records a new waybill (no extra request; see `app::apply`); a `TrackingStopped`
//! event (from status-normalize's Kuaidi100 parser, through an EventBridge rule to order-sync)
//! sets one due 30 minutes later. The sweep reads the markers of each shard through the due
//! index. "Exactly once per waybill" is the subscription record's conditional claim: a waybill
//! subscribed is never subscribed again unless tracking stopped after that subscription.

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{OrderKey, Source};
use crate::model::record::{DueKind, DueMarker};
use crate::model::secret::{RotatedSecret, Secret};
use crate::model::source_event::Waybill;
use crate::model::sync::{Claim, Lease};
use crate::model::time::business_day;
use crate::ports::carrier::{SubscribeError, SubscribeRequest, TrackingSubscriptions};
use crate::ports::clock::Clock;
use crate::ports::secrets::SecretCache;
use crate::ports::sync::SubscriptionStore;
use crate::ports::{OrderStore, Secrets, Stats};

/// How subscriptions behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingRules {
    /// Kuaidi100 asks for half an hour between an `abort` and the new subscription
    /// (`SubscribePushParamResp.java`: "隔半小时再发起该单的订阅").
    pub resubscribe_after: Duration,
    /// The first retry after a failed attempt, doubled per attempt.
    pub retry_after: Duration,
    /// The longest wait between attempts.
    pub max_retry_after: Duration,
    /// How long a claim holds.
    pub lease: Duration,
    /// Subscriptions at the same time.
    pub concurrency: usize,
    /// Counter and due-marker shards.
    pub shards: u16,
}

impl Default for TrackingRules {
    fn default() -> Self {
        Self {
            resubscribe_after: Duration::minutes(30),
            retry_after: Duration::minutes(5),
            max_retry_after: Duration::hours(6),
            lease: Duration::minutes(2),
            concurrency: 8,
            shards: crate::model::counters::DEFAULT_SHARDS,
        }
    }
}

/// Where pushes go and what authorises subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingConfig {
    /// The webhook API's base URL (`https://…`, without `/webhooks`).
    pub webhook_base: String,
    /// The parameter holding the Kuaidi100 account key (授权key).
    pub key_parameter: String,
    /// This process's name in claims.
    pub instance: String,
}

/// What a sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrackingReport {
    /// Due markers looked at.
    pub due: u32,
    /// Subscribed now.
    pub subscribed: u32,
    /// Subscribed before (marker cleared).
    pub already: u32,
    /// Failed now, retried later.
    pub retrying: u32,
    /// Refused for good by Kuaidi100.
    pub refused: u32,
    /// Why the sweep could not run, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The ports subscriptions need.
#[derive(Clone, Copy)]
pub struct TrackingPorts<'a> {
    /// Orders' due markers.
    pub orders: &'a dyn OrderStore,
    /// Subscription records.
    pub subscriptions: &'a dyn SubscriptionStore,
    /// Kuaidi100.
    pub carrier: &'a dyn TrackingSubscriptions,
    /// Shop secrets (the shop's Kuaidi100 salt).
    pub secrets: &'a SecretCache<'a>,
    /// The parameter store (the account key).
    pub params: &'a dyn Secrets,
    /// Counters.
    pub stats: &'a dyn Stats,
    /// Now.
    pub clock: &'a dyn Clock,
}

/// Subscribes waybills to carrier tracking.
pub struct SubscribeTracking<'a> {
    /// The ports.
    pub ports: TrackingPorts<'a>,
    /// Where and how.
    pub config: &'a TrackingConfig,
    /// The rules.
    pub rules: &'a TrackingRules,
}

/// A subscribe marker's note: `carrier number` and, after an abort, `stopped=<rfc3339>`.
fn read_note(note: Option<&str>) -> Option<(Waybill, Option<DateTime<Utc>>)> {
    let mut parts = note?.split_whitespace();
    let carrier = parts.next()?.to_owned();
    let number = parts.next()?.to_owned();
    let stopped = parts
        .next()
        .and_then(|p| p.strip_prefix("stopped="))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    Some((Waybill { carrier, number }, stopped))
}

/// Kuaidi100 carrier codes are lower-case words (`shunfeng`, `yuantong`; "一律用小写字母",
/// java-demo `SubscribeParam.java`); anything else — a platform's numeric express company id —
/// lets Kuaidi100 identify the carrier from the number (`autoCom`).
fn is_kuaidi100_code(carrier: &str) -> bool {
    carrier.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && carrier.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl SubscribeTracking<'_> {
    /// The callback URL of an order's waybill: the shop's Kuaidi100 webhook with the order.
    pub fn callback_url(&self, key: &OrderKey) -> String {
        let query = form_urlencoded::Serializer::new(String::new()).append_pair("order", &key.to_string()).finish();
        format!("{}/webhooks/kuaidi100/{}?{query}", self.config.webhook_base.trim_end_matches('/'), key.shop)
    }

    /// An `abort` push stopped tracking: subscribe again after the wait Kuaidi100 asks for.
    pub async fn tracking_stopped(
        &self,
        key: &OrderKey,
        waybill: &Waybill,
        at: DateTime<Utc>,
    ) -> Result<DueMarker, crate::ports::StoreError> {
        let marker = DueMarker {
            key: key.clone(),
            kind: DueKind::Subscribe,
            due_at: at + self.rules.resubscribe_after,
            shard: key.shard(self.rules.shards),
            note: Some(format!(
                "{} {} stopped={}",
                waybill.carrier,
                waybill.number,
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        };
        self.ports.orders.set_due(&marker).await?;
        tracing::info!(order_id = %key.order_id, carrier = %waybill.carrier, due_at = %marker.due_at, "tracking stopped: subscribing again later");
        Ok(marker)
    }

    /// The sweep: every due subscribe marker, each waybill subscribed at most once.
    pub async fn sweep(&self) -> (Vec<DomainEvent>, TrackingReport) {
        let mut report = TrackingReport::default();
        let now = self.ports.clock.now();
        let mut markers = Vec::new();
        for shard in 0..self.rules.shards.max(1) {
            let mut cursor: Option<String> = None;
            loop {
                match self.ports.orders.due(DueKind::Subscribe, shard, now, cursor.as_deref(), 100).await {
                    Ok(page) => {
                        markers.extend(page.items);
                        match page.next {
                            Some(next) => cursor = Some(next),
                            None => break,
                        }
                    }
                    Err(err) => {
                        report.error = Some(format!("due index: {err}"));
                        break;
                    }
                }
            }
        }
        report.due = u32::try_from(markers.len()).unwrap_or(u32::MAX);
        if markers.is_empty() {
            return (Vec::new(), report);
        }
        let key = match self.ports.params.get(&self.config.key_parameter).await {
            Ok(Some(key)) => Secret::new(key.trim()),
            Ok(None) => {
                tracing::error!(parameter = %self.config.key_parameter, "no Kuaidi100 account key: waybills wait");
                report.error = Some("no Kuaidi100 account key configured".into());
                return (Vec::new(), report);
            }
            Err(err) => {
                report.error = Some(format!("account key: {err}"));
                return (Vec::new(), report);
            }
        };
        let outcomes: Vec<Outcome> = futures::stream::iter(markers)
            .map(|marker| {
                let key = &key;
                async move { self.one(&marker, key).await }
            })
            .buffer_unordered(self.rules.concurrency.max(1))
            .collect()
            .await;
        let mut counters = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::Subscribed(channel) => {
                    report.subscribed += 1;
                    counters.push(counter(channel, names::KUAIDI100_SUBSCRIBED, now));
                }
                Outcome::Already => report.already += 1,
                Outcome::Retrying => report.retrying += 1,
                Outcome::Refused(channel) => {
                    report.refused += 1;
                    counters.push(counter(channel, names::KUAIDI100_SUBSCRIBE_FAILED, now));
                }
                Outcome::Busy => {}
            }
        }
        if !counters.is_empty()
            && let Err(err) = self.ports.stats.add(&counters).await
        {
            tracing::warn!(error = %err, "could not count subscriptions");
        }
        tracing::info!(
            due = report.due,
            subscribed = report.subscribed,
            retrying = report.retrying,
            "tracking subscriptions done"
        );
        (Vec::new(), report)
    }

    async fn one(&self, marker: &DueMarker, account_key: &Secret) -> Outcome {
        let order = &marker.key;
        let Some((waybill, stopped)) = read_note(marker.note.as_deref()) else {
            tracing::warn!(order_id = %order.order_id, "subscribe marker without a waybill: dropped");
            let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at, &[]).await;
            return Outcome::Refused(order.source);
        };
        let now = self.ports.clock.now();
        let salt = match self.ports.secrets.get(Source::Kuaidi100, &order.shop).await {
            Ok(secret) => match secret.typed::<RotatedSecret>() {
                Ok(rotated) => rotated.secret.clone(),
                Err(_) => return self.retry(marker, 0, "kuaidi100 secret of another type").await,
            },
            Err(err) => return self.retry(marker, 0, &format!("shop's Kuaidi100 secret: {err}")).await,
        };
        let lease = Lease { owner: format!("{}-{}", self.config.instance, order), until: now + self.rules.lease };
        let claim = self.ports.subscriptions.claim(&waybill.carrier, &waybill.number, stopped, &lease, now).await;
        let subscription = match claim {
            Ok(Claim::Claimed(subscription)) => subscription,
            Ok(Claim::Done) => {
                let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at, &[]).await;
                return Outcome::Already;
            }
            Ok(Claim::Busy) => return Outcome::Busy,
            Err(err) => return self.retry(marker, 0, &format!("subscription record: {err}")).await,
        };
        let request = SubscribeRequest {
            company: waybill.carrier.to_lowercase(),
            number: waybill.number.clone(),
            callback_url: self.callback_url(order),
            salt,
            auto_company: !is_kuaidi100_code(&waybill.carrier),
        };
        match self.ports.carrier.subscribe(&request, account_key).await {
            Ok(()) => {
                if let Err(err) =
                    self.ports.subscriptions.subscribed(&waybill.carrier, &waybill.number, &lease.owner, now).await
                {
                    tracing::warn!(order_id = %order.order_id, error = %err, "subscribed, but the record was not updated");
                }
                let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at, &[]).await;
                tracing::info!(order_id = %order.order_id, carrier = %waybill.carrier, "waybill subscribed to Kuaidi100");
                Outcome::Subscribed(order.source)
            }
            Err(SubscribeError::Refused { code, message }) => {
                let reason = format!("{code} {message}");
                let _ = self.ports.subscriptions.failed(&waybill.carrier, &waybill.number, &lease.owner, &reason).await;
                let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at, &[]).await;
                tracing::error!(order_id = %order.order_id, carrier = %waybill.carrier, %reason, "Kuaidi100 refused the subscription");
                Outcome::Refused(order.source)
            }
            Err(SubscribeError::Unavailable(reason)) => {
                let _ = self.ports.subscriptions.failed(&waybill.carrier, &waybill.number, &lease.owner, &reason).await;
                self.retry(marker, subscription.attempts, &reason).await
            }
        }
    }

    /// Moves the marker to the next attempt.
    async fn retry(&self, marker: &DueMarker, attempts: u32, reason: &str) -> Outcome {
        let wait = (self.rules.retry_after * 2_i32.saturating_pow(attempts.min(16))).min(self.rules.max_retry_after);
        let moved = DueMarker { due_at: self.ports.clock.now() + wait, ..marker.clone() };
        tracing::warn!(order_id = %marker.key.order_id, %reason, retry_at = %moved.due_at, "subscription not done: retried later");
        if let Err(err) = self.ports.orders.set_due(&moved).await {
            tracing::warn!(error = %err, "could not move the subscribe marker");
        }
        Outcome::Retrying
    }
}

enum Outcome {
    Subscribed(Source),
    Already,
    Retrying,
    Refused(Source),
    Busy,
}

fn counter(channel: Source, name: &str, now: DateTime<Utc>) -> CounterAdd {
    CounterAdd { channel, day: business_day(now), shard: 0, name: name.into(), by: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::apply::ApplyChange;
    use crate::app::apply_message::ApplyMessage;
    use crate::model::sync::{Feed, PullOrigin, PulledPayload};
    use crate::ports::secrets::parameter_name;
    use crate::rules::timing::Rules;
    use crate::testing::clock::FixedClock;
    use crate::testing::memory::{MemoryInbox, MemorySecrets, MemoryStore, MemorySync};
    use async_trait::async_trait;
    use chrono::TimeZone;
    use serde_json::json;
    use std::sync::Mutex;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 4, 0, 0).single().unwrap_or_default()
    }

    #[derive(Default)]
    struct Kuaidi100 {
        requests: Mutex<Vec<SubscribeRequest>>,
        answers: Mutex<Vec<Result<(), SubscribeError>>>,
    }

    #[async_trait]
    impl TrackingSubscriptions for Kuaidi100 {
        async fn subscribe(&self, request: &SubscribeRequest, key: &Secret) -> Result<(), SubscribeError> {
            assert_eq!(key.expose(), "account-key");
            self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(request.clone());
            let mut answers = self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if answers.is_empty() { Ok(()) } else { answers.remove(0) }
        }
    }

    impl Kuaidi100 {
        fn requests(&self) -> Vec<SubscribeRequest> {
            self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        }
    }

    struct World {
        store: MemoryStore,
        inbox: MemoryInbox,
        sync: MemorySync,
        secrets: MemorySecrets,
        clock: FixedClock,
        rules: Rules,
        config: TrackingConfig,
        tracking: TrackingRules,
    }

    impl World {
        async fn new() -> World {
            let world = World {
                store: MemoryStore::default(),
                inbox: MemoryInbox::default(),
                sync: MemorySync::default(),
                secrets: MemorySecrets::default(),
                clock: FixedClock::new(now()),
                rules: Rules::default(),
                config: TrackingConfig {
                    webhook_base: "https://hooks.example.com/".into(),
                    key_parameter: "/orderhub/test/kuaidi100/key".into(),
                    instance: "test".into(),
                },
                tracking: TrackingRules::default(),
            };
            let shop = crate::model::ids::ShopId::parse("shop-9").unwrap_or_else(|e| panic!("{e}"));
            let _ =
                world.secrets.put(&parameter_name("test", Source::Kuaidi100, &shop), r#"{"secret":"salt-9"}"#).await;
            let _ = world.secrets.put("/orderhub/test/kuaidi100/key", "account-key").await;
            world
        }

        async fn with<R>(&self, carrier: &Kuaidi100, f: impl AsyncFnOnce(&SubscribeTracking<'_>) -> R) -> R {
            let cache = SecretCache::new(&self.secrets, &self.clock, "test", Duration::minutes(2));
            let subscribe = SubscribeTracking {
                ports: TrackingPorts {
                    orders: &self.store,
                    subscriptions: &self.sync,
                    carrier,
                    secrets: &cache,
                    params: &self.secrets,
                    stats: &self.store,
                    clock: &self.clock,
                },
                config: &self.config,
                rules: &self.tracking,
            };
            f(&subscribe).await
        }

        /// A PDD order shipped with waybill `number`, as a pull brings it.
        async fn shipped(&self, id: &str, number: &str, at: DateTime<Utc>) {
            let row = json!({"order_sn": id, "order_status": 2, "tracking_number": number, "logistics_id": 115,
                "updated_at": at.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()});
            let payload = PulledPayload { pull: PullOrigin { feed: Feed::Orders, api: "t".into() }, row };
            let message = crate::model::callback::InboundMessage {
                source: Source::Pdd,
                shop: crate::model::ids::ShopId::parse("shop-9").unwrap_or_else(|e| panic!("{e}")),
                message_id: crate::model::ids::MessageId::parse(&format!("m-{id}-{number}"))
                    .unwrap_or_else(|e| panic!("{e}")),
                received_at: at,
                query: vec![],
                payload: serde_json::to_string(&payload).ok(),
                origin: "pull".into(),
            };
            let apply =
                ApplyMessage::new(ApplyChange::new(self.store.write_ports(&self.inbox, &self.clock), &self.rules));
            apply.handle(&message).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[tokio::test]
    async fn a_new_waybill_is_subscribed_once_with_the_order_in_the_callback_url() {
        let world = World::new().await;
        world.shipped("261111-1", "YT100", now() - Duration::minutes(5)).await;
        let carrier = Kuaidi100::default();
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!((report.due, report.subscribed), (1, 1), "{report:?}");
        let [request] = &carrier.requests()[..] else { panic!() };
        assert_eq!(request.number, "YT100");
        assert!(request.auto_company, "PDD's express company id is not a Kuaidi100 code");
        assert_eq!(request.salt.expose(), "salt-9");
        assert_eq!(
            request.callback_url,
            "https://hooks.example.com/webhooks/kuaidi100/shop-9?order=pdd%2Fshop-9%2F261111-1"
        );
        // Nothing due any more; the same waybill seen again is not subscribed again.
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!(report.due, 0);
        world.shipped("261111-1", "YT100", now() - Duration::minutes(1)).await;
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!(report.due, 0, "the waybill did not change: no marker");
        assert_eq!(carrier.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_subscription_is_retried_later_and_a_refused_one_is_named() {
        let world = World::new().await;
        world.shipped("261111-2", "YT200", now() - Duration::minutes(5)).await;
        let carrier = Kuaidi100::default();
        carrier
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Err(SubscribeError::Unavailable("HTTP 502".into())));
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!(report.retrying, 1, "{report:?}");
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!(report.due, 0, "not before the retry time");
        world.clock.advance(Duration::minutes(11));
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!(report.subscribed, 1, "{report:?}");
    }

    #[tokio::test]
    async fn an_abort_subscribes_again_after_half_an_hour() {
        let world = World::new().await;
        world.shipped("261111-3", "YT300", now() - Duration::minutes(5)).await;
        let carrier = Kuaidi100::default();
        world.with(&carrier, async |s| s.sweep().await).await;
        world.clock.advance(Duration::days(3));
        let key = OrderKey::parse(Source::Pdd, "shop-9", "261111-3").unwrap_or_else(|e| panic!("{e}"));
        let waybill = Waybill { carrier: "115".into(), number: "YT300".into() };
        let stopped = world.clock.now();
        world
            .with(&carrier, async |s| s.tracking_stopped(&key, &waybill, stopped).await)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        world.clock.advance(Duration::minutes(29));
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!(report.due, 0, "Kuaidi100 asks for half an hour");
        world.clock.advance(Duration::minutes(2));
        let (_, report) = world.with(&carrier, async |s| s.sweep().await).await;
        assert_eq!(report.subscribed, 1, "{report:?}");
        assert_eq!(carrier.requests().len(), 2);
    }
}
