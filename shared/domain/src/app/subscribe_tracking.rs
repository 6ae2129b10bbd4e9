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
            shards: 8,
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

/// Kuaidi100 carrier codes are lower-case letters and digits; anything else (a platform's own
/// express company id) lets Kuaidi100 identify the carrier from the number (`autoCom`).
fn is_kuaidi100_code(carrier: &str) -> bool {
    !carrier.is_empty() && carrier.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
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
            let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at).await;
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
                let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at).await;
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
                let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at).await;
                tracing::info!(order_id = %order.order_id, carrier = %waybill.carrier, "waybill subscribed to Kuaidi100");
                Outcome::Subscribed(order.source)
            }
            Err(SubscribeError::Refused { code, message }) => {
                let reason = format!("{code} {message}");
                let _ = self.ports.subscriptions.failed(&waybill.carrier, &waybill.number, &lease.owner, &reason).await;
                let _ = self.ports.orders.clear_due(order, DueKind::Subscribe, marker.due_at).await;
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
