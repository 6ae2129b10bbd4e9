//! Domain events published to the event bus. The wire shape is the `detail` JSON; the
//! detail-type is the variant name.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::callback::Rejection;
use crate::model::health::{Indicator, ReportKind, Scope};
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
    /// A code without a mapping row arrived.
    UnmappedStatus {
        /// The order.
        key: OrderKey,
        /// The code as sent: the missing row is `(source, raw.field, raw.code)`.
        raw: RawStatus,
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
    /// A shop's access token or refresh token expires soon and cannot be refreshed in time by
    /// orderhub (the refresh token itself runs out): the shop must authorise the app again.
    TokenExpiring {
        /// The platform.
        source: Source,
        /// The shop.
        shop: String,
        /// When the refresh token expires.
        expires_at: DateTime<Utc>,
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
    /// The daily count reconciliation (全量比对) found orders the platform changed on a Beijing
    /// business day that the hub had not seen; they were pulled in.
    OrdersMissing {
        /// The platform.
        source: Source,
        /// The shop.
        shop: String,
        /// The Beijing business day.
        day: NaiveDate,
        /// How many orders were missing.
        missing: u32,
        /// The way they should have come: `pull` (the platform's only way in) or `callback`
        /// (pushed, with the hourly pull as backstop).
        channel: String,
    },
    /// The carrier tracking service stopped tracking a waybill (Kuaidi100 `status=abort`).
    TrackingStopped {
        /// The order.
        key: OrderKey,
        /// The waybill.
        waybill: Waybill,
        /// Kuaidi100's message (`3天查询无记录`, `60天无变化`).
        reason: String,
        /// When the push said so.
        at: DateTime<Utc>,
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
}

impl DomainEvent {
    /// The EventBridge detail-type.
    pub fn detail_type(&self) -> &'static str {
        match self {
            DomainEvent::OrderStatusChanged { .. } => "OrderStatusChanged",
            DomainEvent::RefundStatusChanged { .. } => "RefundStatusChanged",
            DomainEvent::UnmappedStatus { .. } => "UnmappedStatus",
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
            DomainEvent::TrackingStopped { .. } => "TrackingStopped",
            DomainEvent::CallbackMissingSummary { .. } => "CallbackMissingSummary",
            DomainEvent::ChannelSilent { .. } => "ChannelSilent",
            DomainEvent::ChannelRecovered { .. } => "ChannelRecovered",
            DomainEvent::HealthThresholdBreached { .. } => "HealthThresholdBreached",
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
        hasher.update(self.fields().to_string().as_bytes());
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
