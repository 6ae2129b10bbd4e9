//! signin-trust-check's domain: a carrier's "signed" is not proof the customer has the parcel.
//!
//! On every order that moved to Signed: classify the carrier's sign record, gather the
//! customer's app signals after the sign and the address's proxy receipts this month, score it
//! ([`crate::rules::sign_trust::assess`]), record it at the address, and below the threshold move the order
//! to SignPendingConfirmation, queue the customer notice and set a re-check two hours later. The
//! re-check promotes to Signed on the customer's confirmation or a GPS fix at the address, or
//! to SignException when the customer says it did not arrive. Every step is an order transition
//! through the same state machine and write path as a callback.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::apply::{ApplyChange, Failure, events_of};
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{MessageId, OrderKey};
use crate::model::lifecycle::Lifecycle;
use crate::model::order::{Order, Provenance, RefundScope, StatusChange, TrustSummary};
use crate::model::record::DueKind;
use crate::model::sign::SignKind;
use crate::model::signal::AddressSign;
use crate::model::signal::AppSignal;
use crate::model::source_event::OrderFacts;
use crate::model::status::{RawStatus, StatusMapping, Target};
use crate::model::time::{business_day, business_month};
use crate::ports::{OutboundMessage, Queue, SignalStore};
use crate::rules::sign_trust::{
    Classification, SignRecord, TrustAssessment, TrustInputs, TrustRule, TrustRules, assess, classify,
};

/// The customer notice queued on `notify` (the notify consumer resolves the customer's contact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Dedupe id: one notice per downgrade.
    pub notice_id: String,
    /// The order.
    pub order: OrderKey,
    /// The customer (the seller's opaque id), when known.
    pub customer: Option<String>,
    /// Template name.
    pub template: String,
    /// The text, ready to send.
    pub text: String,
}

/// The one-click evidence for the mini-program: never a name or a phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The order.
    pub order: OrderKey,
    /// Current state.
    pub lifecycle: Option<Lifecycle>,
    /// What the carrier's record says happened (`signed`, `refused`…).
    pub sign_type: String,
    /// Who signed: recipient, proxy person, parcel station, locker, unknown.
    pub signer_kind: Option<SignKind>,
    /// The station or locker, when named.
    pub station: Option<String>,
    /// Distance between the sign and the delivery address, metres.
    pub distance_m: Option<f64>,
    /// Score 0–100.
    pub score: Option<u8>,
    /// Why, one line per rule.
    pub reasons: Vec<String>,
    /// The last three signs at the same address, newest first.
    pub last_signs: Vec<AddressSign>,
}

/// What a re-check sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecheckReport {
    /// Markers looked at.
    pub due: u32,
    /// Promoted to Signed.
    pub confirmed: u32,
    /// Moved to SignException.
    pub exceptions: u32,
    /// Still waiting for the customer.
    pub still_pending: u32,
    /// Orders no longer pending (marker removed).
    pub resolved: u32,
    /// Left for the next run.
    pub errors: u32,
}

/// signin-trust-check's ports and rules.
pub struct SignCheck<'a> {
    /// The order write path (state machine, history, counters, due markers).
    pub write: ApplyChange<'a>,
    /// App signals and address history.
    pub signals: &'a dyn SignalStore,
    /// The `notify` queue.
    pub notify: &'a dyn Queue,
    /// Scoring rules.
    pub rules: &'a TrustRules,
}

fn sign_kind_name(kind: Option<SignKind>) -> String {
    match kind {
        Some(SignKind::Recipient) => "recipient",
        Some(SignKind::ProxyPerson) => "proxy_person",
        Some(SignKind::ParcelStation) => "parcel_station",
        Some(SignKind::Locker) => "locker",
        Some(SignKind::Unknown) | None => "unknown",
    }
    .to_owned()
}

/// The message id of a sign's assessment, and the root of its notice id: the sign's own time.
fn sign_message_id(signed_at: DateTime<Utc>) -> Result<MessageId, Failure> {
    MessageId::parse(&format!("trust-{}", signed_at.timestamp_millis())).map_err(|e| Failure::Permanent(e.to_string()))
}

/// What the last assessment recorded (the order always has one after an assessment).
fn summary_of(order: &Order) -> TrustSummary {
    order.trust.clone().unwrap_or(TrustSummary {
        score: 0,
        assessed_at: order.updated_at,
        reasons: Vec::new(),
        distance_m: None,
        sign_at: None,
        trusted: false,
        sign_kind: None,
    })
}

/// The `SignInTrustAssessed` event of a recorded assessment: the same fields, so the same id,
/// whenever it is derived.
fn assessed_event(key: &OrderKey, trust: &TrustSummary) -> DomainEvent {
    DomainEvent::SignInTrustAssessed {
        key: key.clone(),
        score: trust.score,
        trusted: trust.trusted,
        sign_kind: trust.sign_kind.clone().unwrap_or_else(|| "unknown".to_owned()),
        distance_m: trust.distance_m,
        reasons: trust.reasons.clone(),
    }
}

fn classification(order: &Order) -> Classification {
    let sign = order.sign.as_ref();
    classify(&SignRecord {
        kuaidi100_state: sign.map(|s| s.state.as_str()),
        kuaidi100_sub_state: sign.and_then(|s| s.sub_state.as_deref()),
        carrier: order.waybill.as_ref().map(|w| w.carrier.as_str()),
        carrier_code: sign.and_then(|s| s.carrier_code.as_deref()),
        text: sign.map_or("", |s| s.text.as_str()),
    })
}

impl SignCheck<'_> {
    async fn app_signals(
        &self,
        order: &Order,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AppSignal>, Failure> {
        let Some(customer) = &order.customer else { return Ok(Vec::new()) };
        let records = self.signals.signals(customer, from, to).await?;
        // Signals about another order of the same customer say nothing about this parcel.
        Ok(records.iter().filter(|r| r.order.as_ref().is_none_or(|k| *k == order.key)).map(|r| r.signal()).collect())
    }

    fn signed_at(order: &Order) -> DateTime<Utc> {
        order
            .sign
            .as_ref()
            .map(|s| s.at)
            .or_else(|| order.entered.get(&Lifecycle::Signed).copied())
            .unwrap_or(order.updated_at)
    }

    async fn assessment(
        &self,
        order: &Order,
        rules: &TrustRules,
        proxy_receipts: u32,
    ) -> Result<(Classification, TrustAssessment, DateTime<Utc>), Failure> {
        let signed_at = Self::signed_at(order);
        let classified = classification(order);
        let signals = self.app_signals(order, signed_at, signed_at + rules.app_window).await?;
        // As old as the evidence it rests on: the sign, or the latest signal of the customer.
        let evidence_at = signals.iter().map(|s| s.at).fold(signed_at, DateTime::max);
        let inputs = TrustInputs {
            kind: classified.sign_kind().unwrap_or(SignKind::Unknown),
            weak_sign: classified.weak_sign,
            signed_at,
            sign_location: order.sign.as_ref().and_then(|s| s.location),
            delivery_location: order.address.as_ref().and_then(|a| a.location),
            app_signals: &signals,
            proxy_receipts_this_month: proxy_receipts,
        };
        let assessment = assess(&inputs, rules);
        Ok((classified, assessment, evidence_at))
    }

    /// Scores an order the carrier says is signed; downgrades it when the evidence is weak.
    #[tracing::instrument(name = "sign_check", skip_all, fields(source = %key.source, shop = %key.shop, order_id = %key.order_id))]
    pub async fn on_signed(&self, key: &OrderKey) -> Result<Vec<DomainEvent>, Failure> {
        let n = self.write;
        let Some(order) = n.ports.orders.get(key).await? else {
            tracing::warn!(source = %key.source, shop = %key.shop, order_id = %key.order_id, "signed order not found");
            return Ok(Vec::new());
        };
        let signed_at = Self::signed_at(&order);
        if let Some(trust) =
            order.trust.as_ref().filter(|t| t.sign_at == Some(signed_at) || order.lifecycle != Some(Lifecycle::Signed))
        {
            // This sign was judged: a redelivery (the first publish or notice may have failed),
            // or a Signed made by a rule (a re-check on the customer's word). One assessment and
            // one notice per sign: its events and notice again, with the same ids. Also when
            // the order is no longer Signed and its sign's time moved since (the carrier's
            // record arrived after the platform's Signed it was judged on): that judgment, not
            // a new one.
            return self.judged(&order, trust).await;
        }
        if order.lifecycle != Some(Lifecycle::Signed) {
            // Already downgraded, confirmed or moved on: nothing to judge.
            return Ok(Vec::new());
        }
        let month = business_month(signed_at);
        let classified = classification(&order);
        let kind = classified.sign_kind().unwrap_or(SignKind::Unknown);
        // This sign's own proxy receipt counts toward the month.
        let earlier = match &order.address {
            Some(address) => self.signals.proxy_receipts(&address.addr_key, &month).await?,
            None => 0,
        };
        let proxy_receipts = earlier + u32::from(kind.is_proxy() && order.address.is_some());
        let (classified, assessment, _) = self.assessment(&order, self.rules, proxy_receipts).await?;
        if let Some(address) = &order.address {
            let sign = AddressSign {
                at: signed_at,
                order: key.clone(),
                kind,
                station: classified.station_name.clone(),
                score: assessment.score,
            };
            self.signals.record_sign(&address.addr_key, &month, &sign, kind.is_proxy()).await?;
        }
        let message_id = sign_message_id(signed_at)?;
        let now = n.ports.clock.now();
        let downgrade = !assessment.trusted;
        let change = StatusChange {
            key: key.clone(),
            message_id: message_id.clone(),
            // The sign's own time, not "now": the assessment's history entry is then one per
            // sign, whoever writes it, so two checks racing on the same sign write it once (the
            // loser finds it recorded) instead of two entries a few milliseconds apart.
            event_time: signed_at,
            received_at: now,
            raw: RawStatus::new("trust", assessment.score.to_string()),
            mapping: if downgrade {
                StatusMapping::Mapped(Target::lifecycle(Lifecycle::SignPendingConfirmation))
            } else {
                StatusMapping::Informational("sign-in trust assessed")
            },
            provenance: Provenance::Rule,
            refund_scope: RefundScope::default(),
        };
        let summary = TrustSummary {
            score: assessment.score,
            assessed_at: now,
            reasons: assessment.reasons.iter().map(|r| r.detail.clone()).collect(),
            distance_m: assessment.distance_m,
            sign_at: Some(signed_at),
            trusted: assessment.trusted,
            sign_kind: Some(sign_kind_name(Some(kind))),
        };
        let dedicated = proxy_receipts >= self.rules.dedicated_courier_after;
        let patch = move |o: &mut Order| {
            o.trust = Some(summary.clone());
            if dedicated {
                o.flags.insert("dedicated_courier_suggested".to_owned());
            }
        };
        let day = business_day(now);
        let shard = key.shard(n.rules.shards);
        let counter = |name: &str, by: i64| CounterAdd { channel: key.source, day, shard, name: name.to_owned(), by };
        let mut extra =
            vec![counter(names::TRUST_ASSESSED, 1), counter(names::TRUST_SCORE_SUM, i64::from(assessment.score))];
        if downgrade {
            extra.push(counter(names::SIGN_DOWNGRADED, 1));
        }
        let applied = n.apply_change(&change, &OrderFacts::default(), &patch, &extra).await?;
        tracing::info!(
            source = %key.source, shop = %key.shop, order_id = %key.order_id,
            score = assessment.score, trusted = assessment.trusted, sign_kind = %sign_kind_name(Some(kind)),
            fresh = applied.fresh, "sign-in trust assessed"
        );
        let mut events = events_of(&applied.entry);
        events.push(assessed_event(key, &summary_of(&applied.order)));
        if dedicated && let Some(address) = &order.address {
            events.push(DomainEvent::DedicatedCourierSuggested {
                key: key.clone(),
                addr_key: address.addr_key.clone(),
                proxy_receipts,
            });
        }
        if applied.entry.lifecycle.is_some_and(|(_, to)| to == Lifecycle::SignPendingConfirmation) {
            self.notify(&order, &classified, signed_at).await?;
        }
        Ok(events)
    }

    /// The events and notice of a sign judged before, derived again from what was recorded.
    async fn judged(&self, order: &Order, trust: &TrustSummary) -> Result<Vec<DomainEvent>, Failure> {
        let mut events = vec![assessed_event(&order.key, trust)];
        if let Some(address) = &order.address
            && order.flags.contains("dedicated_courier_suggested")
            && let Some(signed_at) = trust.sign_at
        {
            let receipts = self.signals.proxy_receipts(&address.addr_key, &business_month(signed_at)).await?;
            events.push(DomainEvent::DedicatedCourierSuggested {
                key: order.key.clone(),
                addr_key: address.addr_key.clone(),
                proxy_receipts: receipts,
            });
        }
        // A downgrade's notice again (the notify consumer sends a notice id once): while the
        // customer is waited for, and also when the order moved on before a failed notice was
        // retried — the downgrade happened, its notice is owed. Whether this sign was
        // downgraded is read from its assessment's history entry (one per sign).
        if !trust.trusted
            && let Some(signed_at) = trust.sign_at
        {
            let downgraded = order.lifecycle == Some(Lifecycle::SignPendingConfirmation)
                || self
                    .write
                    .ports
                    .orders
                    .history_entry(&order.key, signed_at, &sign_message_id(signed_at)?)
                    .await?
                    .is_some_and(|e| e.lifecycle.is_some_and(|(_, to)| to == Lifecycle::SignPendingConfirmation));
            if downgraded {
                self.notify(order, &classification(order), signed_at).await?;
            }
        }
        Ok(events)
    }

    async fn notify(
        &self,
        order: &Order,
        classified: &Classification,
        signed_at: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let (template, text) = match &classified.station_name {
            Some(station) => ("parcel_at_station", format!("您的包裹已在{station}，请及时领取")),
            None => ("confirm_receipt", "您的包裹显示已签收，如未收到请在小程序中点击“未收到”告诉我们".to_owned()),
        };
        let notice = Notice {
            // One notice per sign: its id is the order and the sign, whoever sends it again.
            notice_id: format!("{}-{}", order.key, sign_message_id(signed_at)?),
            order: order.key.clone(),
            customer: order.customer.clone(),
            template: template.to_owned(),
            text,
        };
        let body = serde_json::to_string(&notice).map_err(|e| Failure::Permanent(e.to_string()))?;
        let message =
            OutboundMessage { id: "0".into(), body, attributes: vec![("template".into(), template.to_owned())] };
        match self.notify.send(std::slice::from_ref(&message)).await {
            Ok(failed) if failed.is_empty() => {
                tracing::info!(order_id = %order.key.order_id, template, "customer notice queued");
                Ok(())
            }
            Ok(_) => Err(Failure::Retry("notify queue refused the notice".into())),
            Err(err) => Err(Failure::Retry(err.to_string())),
        }
    }

    /// Looks at a pending sign again: the customer's word or a GPS fix at the address decides.
    #[tracing::instrument(name = "sign_recheck", skip_all, fields(source = %key.source, shop = %key.shop, order_id = %key.order_id))]
    pub async fn recheck(&self, key: &OrderKey) -> Result<(Vec<DomainEvent>, Option<Lifecycle>), Failure> {
        let n = self.write;
        let Some(order) = n.ports.orders.get(key).await? else { return Ok((Vec::new(), None)) };
        if order.lifecycle != Some(Lifecycle::SignPendingConfirmation) {
            return Ok((Vec::new(), order.lifecycle));
        }
        let now = n.ports.clock.now();
        let signed_at = Self::signed_at(&order);
        // Everything the customer did since the sign counts now, not only the first two hours.
        let rules = TrustRules { app_window: (now - signed_at).max(self.rules.app_window), ..self.rules.clone() };
        let receipts = match &order.address {
            Some(a) => self.signals.proxy_receipts(&a.addr_key, &business_month(signed_at)).await?,
            None => 0,
        };
        let (_, assessment, evidence_at) = self.assessment(&order, &rules, receipts).await?;
        let said_not_received = assessment.reasons.iter().any(|r| r.rule == TrustRule::CustomerNotReceived);
        let to = if said_not_received {
            Lifecycle::SignException
        } else if assessment.trusted {
            Lifecycle::Signed
        } else {
            return Ok((Vec::new(), Some(Lifecycle::SignPendingConfirmation)));
        };
        let change = StatusChange {
            key: key.clone(),
            message_id: MessageId::parse(&format!("recheck-{}", now.timestamp_millis()))
                .map_err(|e| Failure::Permanent(e.to_string()))?,
            // Stamped with its evidence's time, not the check's: the platform's own later word
            // (a Completed from before the check that arrives after it) still moves the order.
            event_time: evidence_at,
            received_at: now,
            raw: RawStatus::new("trust_recheck", assessment.score.to_string()),
            mapping: StatusMapping::Mapped(Target::lifecycle(to)),
            provenance: Provenance::Rule,
            refund_scope: RefundScope::default(),
        };
        let summary = TrustSummary {
            score: assessment.score,
            assessed_at: now,
            reasons: assessment.reasons.iter().map(|r| r.detail.clone()).collect(),
            distance_m: assessment.distance_m,
            sign_at: Some(signed_at),
            trusted: assessment.trusted,
            sign_kind: order.trust.as_ref().and_then(|t| t.sign_kind.clone()),
        };
        let patch = move |o: &mut Order| o.trust = Some(summary.clone());
        let applied = n.apply_change(&change, &OrderFacts::default(), &patch, &[]).await?;
        tracing::info!(order_id = %key.order_id, to = %to, score = assessment.score, "pending sign re-checked");
        Ok((events_of(&applied.entry), Some(to)))
    }

    /// Re-checks every pending sign that is due (a query of the due index per shard).
    pub async fn sweep(&self) -> (Vec<DomainEvent>, RecheckReport) {
        let n = self.write;
        let now = n.ports.clock.now();
        let mut events = Vec::new();
        let mut report = RecheckReport::default();
        for shard in 0..n.rules.shards.max(1) {
            let mut cursor: Option<String> = None;
            loop {
                let Ok(page) = n.ports.orders.due(DueKind::TrustRecheck, shard, now, cursor.as_deref(), 100).await
                else {
                    report.errors += 1;
                    break;
                };
                for marker in page.items {
                    report.due += 1;
                    match self.recheck(&marker.key).await {
                        Ok((produced, state)) => {
                            events.extend(produced);
                            match state {
                                Some(Lifecycle::Signed) => report.confirmed += 1,
                                Some(Lifecycle::SignException) => report.exceptions += 1,
                                Some(Lifecycle::SignPendingConfirmation) => report.still_pending += 1,
                                _ => report.resolved += 1,
                            }
                            // One re-check per marker; the customer's later word sets a new one.
                            if n.ports
                                .orders
                                .clear_due(&marker.key, DueKind::TrustRecheck, marker.due_at, &[])
                                .await
                                .is_err()
                            {
                                report.errors += 1;
                            }
                        }
                        Err(err) => {
                            tracing::warn!(order_id = %marker.key.order_id, error = %err, "re-check failed; left for the next run");
                            report.errors += 1;
                        }
                    }
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        (events, report)
    }

    /// The evidence page of one order (no writes).
    pub async fn evidence(&self, key: &OrderKey) -> Result<Option<Evidence>, Failure> {
        let Some(order) = self.write.ports.orders.get(key).await? else { return Ok(None) };
        let classified = classification(&order);
        let last_signs = match &order.address {
            Some(a) => self.signals.address_signs(&a.addr_key, 3).await?,
            None => Vec::new(),
        };
        let (score, reasons, distance_m) = match &order.trust {
            Some(t) => (Some(t.score), t.reasons.clone(), t.distance_m),
            None if order.sign.is_some() => {
                let receipts = match &order.address {
                    Some(a) => {
                        self.signals.proxy_receipts(&a.addr_key, &business_month(Self::signed_at(&order))).await?
                    }
                    None => 0,
                };
                let (_, a, _) = self.assessment(&order, self.rules, receipts).await?;
                (Some(a.score), a.reasons.iter().map(|r| r.detail.clone()).collect(), a.distance_m)
            }
            None => (None, Vec::new(), None),
        };
        let sign_type = match classified.outcome {
            crate::rules::sign_trust::DeliveryOutcome::Signed(_) => "signed".to_owned(),
            crate::rules::sign_trust::DeliveryOutcome::NotDelivered(why) => why.to_owned(),
            crate::rules::sign_trust::DeliveryOutcome::InTransit => "in_transit".to_owned(),
        };
        Ok(Some(Evidence {
            order: order.key.clone(),
            lifecycle: order.lifecycle,
            sign_type,
            signer_kind: classified.sign_kind(),
            station: classified.station_name,
            distance_m,
            score,
            reasons,
            last_signs,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::apply_message::ApplyMessage;
    use crate::model::ids::Source;
    use crate::ports::clock::Clock;
    use crate::ports::{OrderStore, Stats};
    use crate::rules::timing::Rules;
    use crate::testing::clock::FixedClock;
    use crate::testing::fixtures::{self, DayCallback};
    use crate::testing::memory::{MemoryInbox, MemoryQueue, MemoryStore};
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default()
    }

    struct World {
        store: MemoryStore,
        inbox: MemoryInbox,
        notify: MemoryQueue,
        clock: FixedClock,
        rules: Rules,
        trust: TrustRules,
    }

    impl World {
        fn new() -> Self {
            World {
                store: MemoryStore::default(),
                inbox: MemoryInbox::default(),
                notify: MemoryQueue::default(),
                clock: FixedClock::new(at()),
                rules: Rules::default(),
                trust: TrustRules::default(),
            }
        }
        fn write(&self) -> ApplyChange<'_> {
            ApplyChange::new(self.store.write_ports(&self.inbox, &self.clock), &self.rules)
        }

        fn messages(&self) -> ApplyMessage<'_> {
            ApplyMessage::new(self.write())
        }
        async fn feed(&self, source: Source, payload: Vec<u8>, query: &[(&str, &str)]) {
            let callback = DayCallback {
                source,
                shop: "shop-1001".into(),
                payload,
                query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                message_id: format!("m{}", self.store.writes()),
                sent_at: self.clock.now(),
            };
            self.messages().handle(&callback.inbound()).await.unwrap_or_else(|e| panic!("{e}"));
        }
        /// An app order to `addr`, shipped, then signed by the carrier with `sub`/`text` at `area`.
        async fn signed_order(&self, id: &str, addr: &str, sub: &str, text: &str, area: &str) -> OrderKey {
            let order = format!("app/shop-1001/{id}");
            self.feed(
                Source::App,
                fixtures::app_event(
                    "order.status",
                    at(),
                    json!({"order_id": id, "status": "Paid", "at": (at() - Duration::hours(30)).to_rfc3339()}),
                ),
                &[],
            )
            .await;
            self.feed(Source::App, fixtures::app_event("order.address", at(), json!({"order": order, "addr_key": addr, "district": "西湖区", "customer": format!("cust-{id}"), "lat": 30.2741, "lng": 120.1551})), &[]).await;
            self.feed(
                Source::Kuaidi100,
                fixtures::kuaidi100_param(
                    "shunfeng",
                    &format!("SF{id}"),
                    "1",
                    "101",
                    "已收取快件",
                    "2026-11-10 08:00:00",
                    "",
                ),
                &[("order", &order)],
            )
            .await;
            self.feed(
                Source::Kuaidi100,
                fixtures::kuaidi100_param("shunfeng", &format!("SF{id}"), "3", sub, text, "2026-11-11 09:30:00", area),
                &[("order", &order)],
            )
            .await;
            OrderKey::parse(Source::App, "shop-1001", id).unwrap_or_else(|e| panic!("{e}"))
        }
        async fn signal(&self, id: &str, kind: &str, minutes_after_sign: i64, extra: serde_json::Value) {
            let when = Utc.with_ymd_and_hms(2026, 11, 11, 1, 30, 0).single().unwrap_or_default()
                + Duration::minutes(minutes_after_sign);
            let mut data = json!({"customer": format!("cust-{id}"), "order": format!("app/shop-1001/{id}"), "at": when.to_rfc3339()});
            if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
                d.extend(e.clone());
            }
            self.feed(Source::App, fixtures::app_event(kind, when, data), &[]).await;
        }
    }

    fn checker<'a>(world: &'a World, write: &ApplyChange<'a>) -> SignCheck<'a> {
        SignCheck { write: *write, signals: &world.store, notify: &world.notify, rules: &world.trust }
    }

    #[tokio::test]
    async fn a_station_sign_without_app_evidence_is_downgraded_and_the_customer_told() {
        let world = World::new();
        let key = world
            .signed_order(
                "o1",
                "addr-1",
                "304",
                "快件已存放至【菜鸟驿站(幸福里店)】，请凭取货码取件",
                "120.1552,30.2742",
            )
            .await;
        let n = world.write();
        let events = checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        let order = world.store.get(&key).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.lifecycle, Some(Lifecycle::SignPendingConfirmation));
        assert!(order.trust.as_ref().is_some_and(|t| t.score < 92));
        assert!(matches!(
            &events[0],
            DomainEvent::OrderStatusChanged {
                from: Some(Lifecycle::Signed),
                to: Lifecycle::SignPendingConfirmation,
                ..
            }
        ));
        assert!(events.iter().any(|e| matches!(e, DomainEvent::SignInTrustAssessed { trusted: false, sign_kind, .. } if sign_kind == "parcel_station")));
        let notices = world.notify.drain();
        assert_eq!(notices.len(), 1);
        let notice: Notice = serde_json::from_str(&notices[0].body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(notice.text, "您的包裹已在菜鸟驿站(幸福里店)，请及时领取");
        let due = world
            .store
            .due(
                DueKind::TrustRecheck,
                key.shard(crate::model::counters::DEFAULT_SHARDS),
                at() + Duration::hours(2),
                None,
                10,
            )
            .await
            .map(|p| p.items)
            .unwrap_or_default();
        assert_eq!(due.len(), 1, "re-check two hours later");
        let month = world.store.month(Source::App, at().date_naive()).await.unwrap_or_default();
        let total = |name| month.iter().map(|d| d.get(name)).sum::<i64>();
        assert_eq!((total("trust_assessed"), total("sign_downgraded")), (1, 1));
        // The same Signed event delivered again (the first publish or notice may have failed)
        // judges nothing again: the same assessment event and the same notice id come again —
        // consumers dedupe on them, the notify consumer sends a notice id once — and nothing is
        // counted twice.
        let assessed = |events: &[DomainEvent]| {
            events.iter().filter(|e| e.detail_type() == "SignInTrustAssessed").map(DomainEvent::id).collect::<Vec<_>>()
        };
        let again = checker(&world, &n).on_signed(&key).await.unwrap_or_default();
        assert_eq!(assessed(&again), assessed(&events));
        let resent = world.notify.drain();
        assert_eq!(resent.len(), 1);
        let resent: Notice = serde_json::from_str(&resent[0].body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resent.notice_id, notice.notice_id);
        let month = world.store.month(Source::App, at().date_naive()).await.unwrap_or_default();
        let total = |name| month.iter().map(|d| d.get(name)).sum::<i64>();
        assert_eq!((total("trust_assessed"), total("sign_downgraded")), (1, 1));
    }

    #[tokio::test]
    async fn a_sign_confirmed_late_is_promoted_once_and_never_judged_or_told_again() {
        // Before: the re-check promoted the sign to Signed, the bus rule sent that Signed back to
        // the trust check, which no longer saw the confirmation in its two-hour window,
        // downgraded it again and told the customer again — every two hours.
        let world = World::new();
        let key = world
            .signed_order("o9", "addr-9", "501", "快件已送达【菜鸟驿站(幸福里店)】，请凭取货码取件", "120.1552,30.2742")
            .await;
        let n = world.write();
        checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(world.notify.drain().len(), 1);
        // Three hours later the customer confirms; the re-check promotes the sign.
        world.clock.advance(Duration::hours(3));
        world.signal("o9", "sign.confirmed", 180, json!({})).await;
        let (events, state) = checker(&world, &n).recheck(&key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state, Some(Lifecycle::Signed));
        assert!(events.iter().any(|e| matches!(
            e,
            DomainEvent::OrderStatusChanged { to: Lifecycle::Signed, provenance: Provenance::Rule, .. }
        )));
        // That Signed reaches the trust check anyway (the bus rule filters rule-made changes;
        // suppose it did not): nothing is judged again, nobody is told again.
        for _ in 0..3 {
            world.clock.advance(Duration::hours(2));
            checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let order = world.store.get(&key).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.lifecycle, Some(Lifecycle::Signed));
        assert!(world.notify.drain().is_empty(), "one notice per sign");
        let month = world.store.month(Source::App, at().date_naive()).await.unwrap_or_default();
        assert_eq!(month.iter().map(|d| d.get("sign_downgraded")).sum::<i64>(), 1);
    }

    #[tokio::test]
    async fn a_downgrade_whose_notice_failed_is_still_told_when_the_order_moved_on() {
        // Found by the soak (tests/soak, seed 14): the downgrade was written, the notice could
        // not be queued, and before the Signed came back a platform's own "signed" (Kuaishou
        // sends one after the carrier's) moved the order on. The retry judged nothing (right)
        // and told nobody (wrong): a downgrade without its customer notice.
        let world = World::new();
        let key = world
            .signed_order("o8", "addr-8", "501", "快件已送达【菜鸟驿站(幸福里店)】，请凭取货码取件", "120.1552,30.2742")
            .await;
        let n = world.write();
        world.notify.fail_next("throttled");
        assert!(checker(&world, &n).on_signed(&key).await.is_err(), "the notice could not be queued");
        let order = world.store.get(&key).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.lifecycle, Some(Lifecycle::SignPendingConfirmation));
        // The platform's own Signed, a minute after the carrier's sign (09:30 Beijing).
        let later = Utc.with_ymd_and_hms(2026, 11, 11, 1, 31, 0).single().unwrap_or_default();
        world
            .feed(
                Source::App,
                fixtures::app_event(
                    "order.status",
                    later,
                    json!({"order_id": "o8", "status": "Signed", "at": later.to_rfc3339()}),
                ),
                &[],
            )
            .await;
        checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        let notices = world.notify.drain();
        assert_eq!(notices.len(), 1, "the downgrade's notice, once queued");
    }

    #[tokio::test]
    async fn a_sign_judged_before_the_carriers_record_arrived_is_not_forgotten_when_it_does() {
        // Found by the soak (tests/soak, seed 12): the platform's own Signed came before the
        // carrier's sign record, so the check judged the sign by the platform's time and
        // downgraded it; its notice failed. Then the carrier's record arrived (an earlier sign
        // time), and the retried check no longer recognised its own judgment — a different
        // sign time — found the order downgraded, and did nothing: no notice, no
        // `SignInTrustAssessed` ever.
        let world = World::new();
        let order = "app/shop-1001/o6";
        let paid = json!({"order_id": "o6", "status": "Paid", "at": (at() - Duration::hours(30)).to_rfc3339()});
        world.feed(Source::App, fixtures::app_event("order.status", at(), paid), &[]).await;
        let pickup = fixtures::kuaidi100_param("shunfeng", "SFo6", "1", "101", "已收取快件", "2026-11-10 08:00:00", "");
        world.feed(Source::Kuaidi100, pickup, &[("order", order)]).await;
        let platform = Utc.with_ymd_and_hms(2026, 11, 11, 1, 31, 0).single().unwrap_or_default();
        let signed = json!({"order_id": "o6", "status": "Signed", "at": platform.to_rfc3339()});
        world.feed(Source::App, fixtures::app_event("order.status", platform, signed), &[]).await;
        let key = OrderKey::parse(Source::App, "shop-1001", "o6").unwrap_or_else(|e| panic!("{e}"));
        let n = world.write();
        world.notify.fail_next("throttled");
        assert!(checker(&world, &n).on_signed(&key).await.is_err(), "the notice could not be queued");
        let downgraded = world.store.get(&key).await.ok().flatten().and_then(|o| o.lifecycle);
        assert_eq!(downgraded, Some(Lifecycle::SignPendingConfirmation));
        // The carrier's sign record, a minute earlier than the platform's Signed, arrives late.
        let sign = fixtures::kuaidi100_param(
            "shunfeng",
            "SFo6",
            "3",
            "304",
            "快件已被丰巢智能柜签收",
            "2026-11-11 09:30:00",
            "",
        );
        world.feed(Source::Kuaidi100, sign, &[("order", order)]).await;
        let events = checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(events.iter().any(|e| e.detail_type() == "SignInTrustAssessed"), "{events:?}");
        assert_eq!(world.notify.drain().len(), 1, "the notice owed");
        let history = world.store.history(&key, None, 100).await.map(|p| p.items).unwrap_or_default();
        assert_eq!(history.iter().filter(|h| h.raw.field == "trust").count(), 1, "judged once");
    }

    /// A clock that moves a second every time it is read: two invocations never see the same
    /// "now".
    struct Ticking(std::sync::atomic::AtomicI64);

    impl Clock for Ticking {
        fn now(&self) -> DateTime<Utc> {
            at() + Duration::seconds(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        }
    }

    #[tokio::test]
    async fn a_sign_judged_by_two_deliveries_at_once_is_assessed_once() {
        // Found by the soak (tests/soak, seed 12): the Signed event reached the trust check
        // twice at once (the carrier's and the platform's Signed, or an SQS duplicate). Both
        // read the order before either wrote; the loser of the write race reloaded and wrote its
        // own assessment, whose history entry differed only by its time ("now"), so the order
        // had two assessments, two counts, and the second's events only in the outbox.
        use crate::testing::faults::{FaultPlan, Faults, Faulty};
        let world = World::new();
        let key = world
            .signed_order("o7", "addr-7", "501", "快件已送达【菜鸟驿站(幸福里店)】，请凭取货码取件", "120.1552,30.2742")
            .await;
        // Every store call takes 1–2 ms, so the two checks interleave.
        let faults = Faults::new(
            FaultPlan::new(7).latency(std::time::Duration::from_millis(1), std::time::Duration::from_millis(2)),
        );
        let store = Faulty::new(&world.store, &faults);
        let clock = Ticking(std::sync::atomic::AtomicI64::new(0));
        let ports = crate::app::apply::WritePorts {
            orders: &store,
            inventory: &store,
            stats: &store,
            signals: &store,
            inbox: &world.inbox,
            clock: &clock,
        };
        let write = ApplyChange::new(ports, &world.rules);
        let check = SignCheck { write, signals: &store, notify: &world.notify, rules: &world.trust };
        let (a, b) = futures::join!(check.on_signed(&key), check.on_signed(&key));
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        let history = world.store.history(&key, None, 100).await.map(|p| p.items).unwrap_or_default();
        let assessments: Vec<&crate::model::record::HistoryEntry> =
            history.iter().filter(|h| h.raw.field == "trust").collect();
        assert_eq!(assessments.len(), 1, "one assessment per sign: {assessments:?}");
        let month = world.store.month(Source::App, at().date_naive()).await.unwrap_or_default();
        assert_eq!(month.iter().map(|d| d.get("trust_assessed")).sum::<i64>(), 1);
    }

    #[tokio::test]
    async fn a_recipient_sign_at_the_address_stays_signed() {
        let world = World::new();
        let key = world.signed_order("o2", "addr-2", "301", "已签收，签收人是本人", "120.1552,30.2742").await;
        let n = world.write();
        let events = checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        let order = world.store.get(&key).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.lifecycle, Some(Lifecycle::Signed));
        assert!(events.iter().any(|e| matches!(e, DomainEvent::SignInTrustAssessed { trusted: true, .. })));
        assert!(world.notify.drain().is_empty());
    }

    #[tokio::test]
    async fn a_gps_fix_at_the_address_after_a_locker_sign_makes_it_trusted() {
        let world = World::new();
        world.signal("o3", "gps.ping", 20, json!({"lat": 30.2745, "lng": 120.1555, "accuracy_m": 30.0})).await;
        let key = world.signed_order("o3", "addr-3", "304", "快件已被丰巢智能柜签收", "120.1552,30.2742").await;
        let n = world.write();
        checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        let order = world.store.get(&key).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.lifecycle, Some(Lifecycle::Signed), "{:?}", order.trust);
    }

    #[tokio::test]
    async fn the_recheck_follows_the_customers_word() {
        for (signal, want) in [("sign.confirmed", Lifecycle::Signed), ("sign.not_received", Lifecycle::SignException)] {
            let world = World::new();
            let key = world
                .signed_order("o4", "addr-4", "304", "快件已存放至【菜鸟驿站(幸福里店)】", "120.1552,30.2742")
                .await;
            let n = world.write();
            let check = checker(&world, &n);
            check.on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
            world.clock.advance(Duration::minutes(50));
            world.signal("o4", signal, 75, json!({})).await;
            let (_, report) = check.sweep().await;
            assert_eq!(report.due, 1, "the customer's word asks for a re-check now");
            let order = world.store.get(&key).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
            assert_eq!(order.lifecycle, Some(want), "{signal}");
        }
    }

    #[tokio::test]
    async fn without_evidence_the_recheck_leaves_the_sign_pending() {
        let world = World::new();
        let key =
            world.signed_order("o5", "addr-5", "304", "快件已存放至【菜鸟驿站(幸福里店)】", "120.1552,30.2742").await;
        let n = world.write();
        let check = checker(&world, &n);
        check.on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        world.clock.advance(Duration::hours(2) + Duration::minutes(1));
        let (events, report) = check.sweep().await;
        assert!(events.is_empty());
        assert_eq!(report.still_pending, 1);
        let (_, report) = check.sweep().await;
        assert_eq!(report.due, 0, "one re-check per marker");
    }

    #[tokio::test]
    async fn the_third_proxy_receipt_at_an_address_this_month_suggests_a_dedicated_courier() {
        let world = World::new();
        let n = world.write();
        let mut suggested = Vec::new();
        for id in ["p1", "p2", "p3"] {
            let key = world
                .signed_order(id, "addr-shared", "304", "快件已存放至【菜鸟驿站(幸福里店)】", "120.1552,30.2742")
                .await;
            let events = checker(&world, &n).on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
            suggested.push(
                events.iter().any(|e| matches!(e, DomainEvent::DedicatedCourierSuggested { proxy_receipts: 3, .. })),
            );
        }
        assert_eq!(suggested, [false, false, true]);
    }

    #[tokio::test]
    async fn the_evidence_page_names_no_one() {
        let world = World::new();
        let key = world
            .signed_order("o6", "addr-6", "303", "已签收，签收人是门卫张三，电话13812345678", "120.1700,30.2900")
            .await;
        let n = world.write();
        let check = checker(&world, &n);
        check.on_signed(&key).await.unwrap_or_else(|e| panic!("{e}"));
        let evidence = check.evidence(&key).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("found"));
        assert_eq!(evidence.signer_kind, Some(SignKind::ProxyPerson));
        // The sign location is Kuaidi100's area centre: the page says which area, never metres
        // (it said "> 1000 m" from the centre of the area as if the courier had stood there).
        assert_eq!(evidence.distance_m, None);
        assert!(evidence.reasons.iter().any(|r| r.contains("签收所在")), "{:?}", evidence.reasons);
        assert!(evidence.score.is_some() && !evidence.reasons.is_empty());
        assert_eq!(evidence.last_signs.len(), 1);
        let page = serde_json::to_string(&evidence).unwrap_or_default();
        assert!(!page.contains("张三") && !page.contains("13812345678"), "{page}");
        let stats = world.store.month(Source::App, at().date_naive()).await.unwrap_or_default();
        assert!(!stats.is_empty());
    }
}
