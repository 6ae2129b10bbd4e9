//! Domain events published to the event bus. The wire shape is the `detail` JSON; the
//! detail-type is the variant name.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::callback::Rejection;
use crate::model::health::{Indicator, ReportBreach, ReportKind, Scope};
use crate::model::ids::{OrderKey, RefundId, Source};
use crate::model::lifecycle::{Lifecycle, RefundState, Stage};
use crate::model::order::Provenance;
use crate::model::source_event::Waybill;
use crate::model::status::RawStatus;
use crate::model::stock::OrderLine;

/// Something other systems (and the health report) want to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "detail")]
pub enum DomainEvent {
    /// An order's fulfilment state moved.
    OrderStatusChanged {
        /// The order.
        key: OrderKey,
        /// Previous state.
        from: Option<Lifecycle>,
        /// New state.
        to: Lifecycle,
        /// Dashboard stage of the new state.
        stage: Stage,
        /// The source's event time.
        event_time: DateTime<Utc>,
        /// When orderhub applied it.
        applied_at: DateTime<Utc>,
        /// Callback, poll, ops or rule.
        provenance: Provenance,
    },
    /// An order's refund state moved (one refund case of it).
    RefundStatusChanged {
        /// The order.
        key: OrderKey,
        /// The platform's refund case, when it names one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refund_id: Option<RefundId>,
        /// Previous state.
        from: Option<RefundState>,
        /// New state.
        to: RefundState,
        /// The source's event time.
        event_time: DateTime<Utc>,
        /// Callback, poll, ops or rule.
        provenance: Provenance,
    },
    /// Kuaidi100 stopped tracking an order's waybill (`status` = `abort`): nobody hears of the
    /// parcel again until it is re-subscribed (Kuaidi100 asks for that after 30 minutes). The
    /// order is flagged `tracking_stopped` until a tracking push arrives again.
    TrackingStopped {
        /// The order.
        key: OrderKey,
        /// The waybill whose tracking stopped (the order's stored one when the push named none).
        waybill: Waybill,
        /// Why, in Kuaidi100's words (`3天查询无记录`, `60天无变化`); `; comNew=<code>` is appended
        /// when Kuaidi100 corrected the carrier code (re-subscribe with that code).
        reason: String,
        /// When orderhub received the abort (the push has no time of its own).
        at: DateTime<Utc>,
    },
    /// A code without a mapping row arrived (published once per source, field and code per
    /// Beijing day, not once per order).
    UnmappedStatus {
        /// The order (the first of the day with this code).
        key: OrderKey,
        /// The code as sent: the missing row is `(source, raw.field, raw.code)`.
        raw: RawStatus,
        /// The Beijing day of receipt this alert stands for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        day: Option<NaiveDate>,
    },
    /// A refund's success was confirmed (by callback or by polling the platform).
    RefundConfirmed {
        /// The order.
        key: OrderKey,
        /// Callback or poll.
        provenance: Provenance,
        /// The source's event time.
        event_time: DateTime<Utc>,
    },
    /// Stock reserved for an order on payment, per order line.
    StockReserved {
        /// The order.
        key: OrderKey,
        /// The lines: the platform's line id, the SKU and the quantity.
        lines: Vec<OrderLine>,
    },
    /// Reserved stock released (exactly once per line).
    InventoryReleased {
        /// The order.
        key: OrderKey,
        /// The lines released for this reason (the same set when derived again).
        lines: Vec<OrderLine>,
        /// Why: `refund`, `ops`, `poll`.
        reason: String,
    },
    /// An order stayed in a state past its limit.
    SlaBreached {
        /// The order.
        key: OrderKey,
        /// The state it is stuck in.
        state: Lifecycle,
        /// When it entered the state (source time).
        since: DateTime<Utc>,
        /// The limit, minutes.
        limit_minutes: i64,
    },
    /// A carrier's "signed" was scored.
    SignInTrustAssessed {
        /// The order.
        key: OrderKey,
        /// Score 0–100.
        score: u8,
        /// Whether it reached the threshold.
        trusted: bool,
        /// Who signed (recipient, proxy, station, locker, unknown).
        sign_kind: String,
        /// Distance from the delivery address, metres.
        distance_m: Option<f64>,
        /// One line per rule.
        reasons: Vec<String>,
    },
    /// An address keeps getting proxy receipts: call a dedicated courier before dispatch.
    DedicatedCourierSuggested {
        /// The order whose sign tipped it.
        key: OrderKey,
        /// The seller's key of the address (no street text).
        addr_key: String,
        /// Proxy receipts this month (Beijing).
        proxy_receipts: u32,
    },
    /// A platform confirmed a refund that no callback had told us about.
    CallbackMissing {
        /// The order.
        key: OrderKey,
        /// What to look at: usually a changed key or an expired token on the callback side.
        hint: String,
    },
    /// A shop's access token could not be refreshed: its platform cannot be asked until fixed.
    TokenRefreshFailed {
        /// The platform.
        source: Source,
        /// The shop.
        shop: String,
        /// Why (no token or secret material).
        reason: String,
    },
    /// order-sync could not pull one shop's changes this run: the shop's checkpoint stays where
    /// it was (nothing is skipped) and the shop is backed off until `retry_at`.
    SyncFailed {
        /// The platform.
        source: Source,
        /// The shop.
        shop: String,
        /// `orders` or `refunds`.
        feed: String,
        /// Why (the platform's code and message, or what was wrong with its answer; never a
        /// token).
        reason: String,
        /// Consecutive failed runs.
        failures: u32,
        /// When the shop is tried again.
        retry_at: DateTime<Utc>,
    },
    /// Pulls of a channel that pushes found changes its callbacks had not delivered: the
    /// summary of a callback outage, per channel and Beijing day.
    CallbackMissingSummary {
        /// The channel.
        channel: Source,
        /// The Beijing business day.
        day: NaiveDate,
        /// Changes pulls applied since the last summary (callbacks had not brought them).
        missing: i64,
        /// Of those, refunds that succeeded.
        refunds: i64,
        /// What to look at.
        hint: String,
    },
    /// A callback was refused at the door.
    WebhookRejected {
        /// Sender.
        source: Source,
        /// Shop from the path (as parsed; absent when it did not parse).
        shop: Option<String>,
        /// What kind of refusal (webhook-verify maps it to its HTTP status).
        rejection: Rejection,
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A channel that normally receives callbacks at this time of the Beijing day has received
    /// none for the configured silence (raised once per quiet spell).
    ChannelSilent {
        /// The channel.
        channel: Source,
        /// Start of the first empty 10-minute slot of the quiet spell.
        silent_since: DateTime<Utc>,
        /// Callbacks the channel typically receives per 10-minute slot at this time.
        expected_per_slot: f64,
    },
    /// A channel reported silent received a callback again.
    ChannelRecovered {
        /// The channel.
        channel: Source,
        /// How long it was quiet, minutes (to 10-minute slot resolution).
        silent_for_minutes: i64,
    },
    /// An order-health indicator is on the wrong side of its threshold.
    HealthThresholdBreached {
        /// Which indicator.
        indicator: Indicator,
        /// Which channel, or `overall`.
        channel: Scope,
        /// The value found, in the indicator's unit.
        value: f64,
        /// The threshold it breached.
        threshold: f64,
        /// The report's period label (`2026-11-11`, `2026-11`, `2026-11-01..2026-11-15`).
        period: String,
        /// Daily, monthly or range.
        kind: ReportKind,
    },
    /// A daily or monthly health report is stored with its page: the short summary its robots
    /// get (notify routes it), with an expiring link to the full page.
    HealthReportReady {
        /// Daily or monthly.
        kind: ReportKind,
        /// The period label (`2026-11-11`, `2026-11`).
        period: String,
        /// Per scope (`overall`, then each channel): the worst verdict of its indicators
        /// (`healthy`, `breached`, `insufficient_data`, `no_data`).
        verdicts: std::collections::BTreeMap<String, String>,
        /// The breaches, overall first.
        breaches: Vec<ReportBreach>,
        /// The page's presigned link.
        url: String,
        /// When the link stops working.
        expires_at: DateTime<Utc>,
    },
    /// The daily count reconciliation found orders the platform has and the hub does not (issue
    /// 14 publishes it; notify routes it).
    OrdersMissing {
        /// The channel.
        source: Source,
        /// The shop.
        shop: String,
        /// The Beijing business day compared.
        day: NaiveDate,
        /// Orders the platform counted that the hub had not seen.
        missing: u32,
        /// The platform's count of orders changed that day.
        platform_count: u32,
        /// The hub's count for the same day.
        hub_count: u32,
        /// The way they should have come: `pull` (the platform's only way in) or `callback`
        /// (pushed, with the hourly pull as backstop).
        channel: String,
    },
    /// A shop's token nears its expiry and must be renewed before then (issue 14 publishes it;
    /// notify routes it). No token material.
    TokenExpiring {
        /// The platform.
        source: Source,
        /// The shop.
        shop: String,
        /// Which token: `access_token` or `refresh_token`.
        token: String,
        /// When it expires.
        expires_at: DateTime<Utc>,
    },
    /// A CloudWatch alarm changed state (read from the `aws.cloudwatch` event; notify routes it).
    AlarmStateChanged {
        /// The alarm's name.
        alarm: String,
        /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
        state: String,
        /// The state before, when given.
        previous: Option<String>,
        /// CloudWatch's reason text.
        reason: String,
        /// When the state changed, as CloudWatch wrote it.
        at: String,
    },
    /// notify could not carry a finding or a notice to its destination (an unknown event type, a
    /// malformed robot URL or key, a provider's refusal). Raised once per cause and window; the
    /// message itself is kept (dead-letter queue or parked record), never dropped.
    NotifyFailed {
        /// What failed: `route`, `robot`, `sms`, `config`.
        stage: String,
        /// Whom it was for: a robot's name, `sms`, or the event type.
        target: String,
        /// A short code: the provider's code, `unknown_event`, `malformed_robot`, …
        code: String,
        /// Why, in one line (no secret, no number).
        reason: String,
        /// Start of the window this failure was reported in (one event per cause and window).
        at: DateTime<Utc>,
    },
}

impl DomainEvent {
    /// The EventBridge detail-type.
    pub fn detail_type(&self) -> &'static str {
        match self {
            DomainEvent::OrderStatusChanged { .. } => "OrderStatusChanged",
            DomainEvent::RefundStatusChanged { .. } => "RefundStatusChanged",
            DomainEvent::UnmappedStatus { .. } => "UnmappedStatus",
            DomainEvent::TrackingStopped { .. } => "TrackingStopped",
            DomainEvent::RefundConfirmed { .. } => "RefundConfirmed",
            DomainEvent::StockReserved { .. } => "StockReserved",
            DomainEvent::InventoryReleased { .. } => "InventoryReleased",
            DomainEvent::SlaBreached { .. } => "SlaBreached",
            DomainEvent::SignInTrustAssessed { .. } => "SignInTrustAssessed",
            DomainEvent::CallbackMissing { .. } => "CallbackMissing",
            DomainEvent::TokenRefreshFailed { .. } => "TokenRefreshFailed",
            DomainEvent::DedicatedCourierSuggested { .. } => "DedicatedCourierSuggested",
            DomainEvent::WebhookRejected { .. } => "WebhookRejected",
            DomainEvent::TokenExpiring { .. } => "TokenExpiring",
            DomainEvent::SyncFailed { .. } => "SyncFailed",
            DomainEvent::OrdersMissing { .. } => "OrdersMissing",
            DomainEvent::CallbackMissingSummary { .. } => "CallbackMissingSummary",
            DomainEvent::ChannelSilent { .. } => "ChannelSilent",
            DomainEvent::ChannelRecovered { .. } => "ChannelRecovered",
            DomainEvent::HealthThresholdBreached { .. } => "HealthThresholdBreached",
            DomainEvent::HealthReportReady { .. } => "HealthReportReady",
            DomainEvent::AlarmStateChanged { .. } => "AlarmStateChanged",
            DomainEvent::NotifyFailed { .. } => "NotifyFailed",
        }
    }

    /// The order the event is about, when it is about one.
    pub fn order(&self) -> Option<&OrderKey> {
        match self {
            DomainEvent::OrderStatusChanged { key, .. }
            | DomainEvent::RefundStatusChanged { key, .. }
            | DomainEvent::UnmappedStatus { key, .. }
            | DomainEvent::RefundConfirmed { key, .. }
            | DomainEvent::StockReserved { key, .. }
            | DomainEvent::InventoryReleased { key, .. }
            | DomainEvent::SlaBreached { key, .. }
            | DomainEvent::SignInTrustAssessed { key, .. }
            | DomainEvent::DedicatedCourierSuggested { key, .. }
            | DomainEvent::CallbackMissing { key, .. } => Some(key),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The variant's fields as JSON, without the id.
    fn fields(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => map.remove("detail").unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// A stable id for consumers to dedupe on: a hash of the detail-type and the fields. The same
    /// event derived again (a redelivery re-derives it from the recorded history entry) or
    /// published again (after a failed publish) has the same id; two different events never share
    /// one.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.detail_type().as_bytes());
        hasher.update(b"\n");
        let mut fields = self.fields();
        // A report announced again (a retried or re-run invocation) signs a new link: the same
        // report must keep its id, so the link is not part of it.
        if let (DomainEvent::HealthReportReady { .. }, serde_json::Value::Object(map)) = (self, &mut fields) {
            map.remove("url");
            map.remove("expires_at");
        }
        hasher.update(fields.to_string().as_bytes());
        let digest = hasher.finalize();
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("ev-{hex}")
    }

    /// The EventBridge detail: the variant's fields as JSON, and its stable [`Self::id`] as
    /// `event_id`.
    pub fn detail(&self) -> serde_json::Value {
        let id = self.id();
        let mut fields = self.fields();
        if let serde_json::Value::Object(map) = &mut fields {
            map.insert("event_id".to_owned(), serde_json::Value::String(id));
        }
        fields
    }

    /// Rebuilds an event from its detail-type and detail (consumers, tests).
    pub fn from_parts(detail_type: &str, detail: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": detail_type, "detail": detail }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{OrderKey, Source};

    fn breach(minutes: i64) -> DomainEvent {
        let key = OrderKey::parse(Source::Douyin, "shop-1", "6921").unwrap_or_else(|e| panic!("{e}"));
        let since = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        DomainEvent::SlaBreached { key, state: Lifecycle::Paid, since, limit_minutes: minutes }
    }

    #[test]
    fn the_id_is_stable_travels_in_the_detail_and_differs_between_events() {
        let event = breach(30);
        assert_eq!(event.id(), breach(30).id(), "derived again, same id");
        assert_ne!(event.id(), breach(31).id());
        let detail = event.detail();
        assert_eq!(detail["event_id"], event.id());
        let back = DomainEvent::from_parts(event.detail_type(), detail).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event, "consumers read the event back, the id aside");
        assert_eq!(back.id(), event.id(), "and can recompute the id");
    }
}
