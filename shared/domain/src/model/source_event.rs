//! What a source's payload becomes once parsed: platform-neutral [`SourceEvent`]s (an order
//! or refund code, a carrier tracking update, an app signal, an address). status-normalize asks
//! the source's module to parse the payload of an inbound message into these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::geo::{GeoPoint, Located};
use crate::model::ids::{LineId, MessageId, OrderKey};
use crate::model::lifecycle::RefundKind;
use crate::model::order::RefundScope;
pub use crate::model::parcel::Waybill;
use crate::model::signal::AppSignalKind;
use crate::model::status::RawStatus;
use crate::model::stock::OrderLine;

/// Facts about an order that a status event may carry beside its code.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderFacts {
    /// The waybill, when the event says the parcel left.
    pub waybill: Option<Waybill>,
    /// Whether a carrier scanned the parcel (Kuaidi100 tracking, or a platform field that really
    /// is the carrier's scan). A platform's "shipped" code is the seller's declaration: not this.
    pub scanned_out: bool,
    /// Promised ship time (platform SLA).
    pub promised_ship_at: Option<DateTime<Utc>>,
    /// The order's lines, for stock reservation on payment.
    pub lines: Vec<OrderLine>,
    /// Line (sub-order) ids the message names without their SKUs and quantities (Douyin `s_ids`):
    /// the lines are fetched from the platform before anything is reserved.
    #[serde(default)]
    pub line_ids: Vec<LineId>,
    /// Which refund case the event is about and the lines it covers.
    pub refund: RefundScope,
    /// Refund kind, when the event says.
    pub refund_kind: Option<RefundKind>,
}

/// A status code about one order, from a platform or the seller's app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The order.
    pub key: OrderKey,
    /// Per-event id (a callback may carry several events).
    pub message_id: MessageId,
    /// The source's own event time; `None` when the payload has none (receipt time is used,
    /// and the event is flagged).
    pub event_time: Option<DateTime<Utc>>,
    /// The code as sent.
    pub raw: RawStatus,
    /// Other facts it carries.
    pub facts: OrderFacts,
}

/// A carrier tracking update (kuaidi100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticsEvent {
    /// The order the waybill belongs to.
    pub key: OrderKey,
    /// Per-event id.
    pub message_id: MessageId,
    /// Time of the newest trace line.
    pub event_time: Option<DateTime<Utc>>,
    /// The waybill.
    pub waybill: Waybill,
    /// Kuaidi100 top state (`0` in transit … `3` signed …).
    pub state: String,
    /// Kuaidi100 sub-state of the newest line (`301` …), when subscribed with `resultv2=4`.
    pub sub_state: Option<String>,
    /// The carrier's own code, when it gives one.
    pub carrier_code: Option<String>,
    /// The newest trace line's text.
    pub text: String,
    /// Where the last mile happened, at its precision: the centre of the administrative area of
    /// the newest sign or delivery line that names one (Kuaidi100 `areaCenter`, `areaCode`).
    pub location: Option<Located>,
    /// Kuaidi100 stopped tracking the waybill (`status` = `abort`): why, in its words
    /// (`3天查询无记录`, `60天无变化`), with `comNew=<code>` when it corrected the carrier code.
    #[serde(default)]
    pub stopped: Option<String>,
}

/// One app signal about a customer (and usually an order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppEvent {
    /// The order it concerns, if any.
    pub key: Option<OrderKey>,
    /// The customer (the seller's own id, opaque).
    pub customer: String,
    /// Per-event id.
    pub message_id: MessageId,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: AppSignalKind,
    /// Where, for GPS pings.
    pub location: Option<GeoPoint>,
    /// GPS accuracy, metres.
    pub accuracy_m: Option<f64>,
}

/// The delivery address of an order, as the seller's systems geocoded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressEvent {
    /// The order.
    pub key: OrderKey,
    /// Per-event id.
    pub message_id: MessageId,
    /// A stable key for the address (the seller's hash of the normalised address).
    pub addr_key: String,
    /// District, for logs and reports (never the full address).
    pub district: String,
    /// The customer this order goes to (the seller's own opaque id), when the app says.
    pub customer: Option<String>,
    /// Geocoded location.
    pub location: Option<GeoPoint>,
    /// The sender's time of the message (the payload's own, not its arrival): files the
    /// address once however often it is delivered.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// A payload, parsed: what status-normalize applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SourceEvent {
    /// An order or refund code.
    Status(StatusEvent),
    /// A carrier tracking update.
    Logistics(LogisticsEvent),
    /// A customer signal from the app.
    App(AppEvent),
    /// An order's delivery address.
    Address(AddressEvent),
    /// Nothing to apply (a test push, a message type orderhub does not use); the text says which.
    Ignored(String),
}

/// Why a payload could not be parsed (never contains the payload: it may hold personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not the JSON (or form) the source sends.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// A required field is missing or of the wrong type.
    #[error("missing or invalid field `{0}`")]
    Field(&'static str),
    /// An identifier in the payload is not acceptable.
    #[error(transparent)]
    Id(#[from] crate::model::ids::IdError),
}
