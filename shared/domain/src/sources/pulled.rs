//! What the source modules share to read pulled rows (order-sync's list pages, one row per
//! inbound message in a [`PulledPayload`] envelope): the per-event message ids, order lines, and
//! the one shape every pulled status event has. Each module's `pull.rs` reads its platform's row.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::ids::{LineId, MessageId, OrderKey, RefundId, ShopId, Sku, Source, body_hash_id};
use crate::model::order::RefundScope;
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent};
use crate::model::status::RawStatus;
use crate::model::stock::OrderLine;
use crate::model::sync::PulledPayload;
use crate::sources::json::{parse_time, text};

/// The id of one event of a pulled row: the row's subject and update time, and the field.
/// The same row pulled again gives the same ids (one history entry per event, however often it
/// is seen); a later update gives new ones.
pub fn event_id(subject: &str, at: DateTime<Utc>, field: &str) -> MessageId {
    let id = format!("pull-{subject}-{}:{field}", at.timestamp_millis());
    MessageId::parse(&id).unwrap_or_else(|_| body_hash_id(id.as_bytes()))
}

/// One status event of a pulled row.
pub fn status(
    key: &OrderKey,
    subject: &str,
    at: DateTime<Utc>,
    field: &str,
    code: String,
    facts: OrderFacts,
) -> SourceEvent {
    SourceEvent::Status(StatusEvent {
        key: key.clone(),
        message_id: event_id(subject, at, field),
        event_time: Some(at),
        raw: RawStatus::new(field, code),
        facts,
    })
}

/// An order key from a row's order id field.
pub fn order_key(source: Source, shop: &ShopId, row: &Value, field: &'static str) -> Result<OrderKey, ParseError> {
    let id = text(row, field).ok_or(ParseError::Field(field))?;
    Ok(OrderKey::parse(source, shop.as_str(), &id)?)
}

/// A row's update time.
pub fn updated_at(row: &Value, field: &'static str) -> Result<DateTime<Utc>, ParseError> {
    row.get(field).and_then(parse_time).ok_or(ParseError::Field(field))
}

/// An order line from a row's line id, seller SKU (else the platform's SKU id) and quantity
/// fields; `None` when the row lacks them.
pub fn line(item: &Value, line: &str, skus: &[&str], qty: &str) -> Option<OrderLine> {
    let sku = skus.iter().find_map(|field| text(item, field)).and_then(|s| Sku::parse(&s).ok())?;
    let line = text(item, line).and_then(|l| LineId::parse(&l).ok()).unwrap_or_else(|| LineId::of_sku(&sku));
    let qty = text(item, qty).and_then(|q| q.parse().ok()).unwrap_or(1);
    Some(OrderLine { line, sku, qty })
}

/// The refund case a refund row names, covering `lines` (none: the whole order).
pub fn refund_scope(id: Option<String>, lines: Vec<String>) -> RefundScope {
    RefundScope {
        id: id.and_then(|id| RefundId::parse(&id).ok()),
        lines: lines.into_iter().filter_map(|l| LineId::parse(&l).ok()).collect(),
    }
}

/// The refusal of a pulled payload a module cannot read.
pub fn unknown(source: Source, pulled: &PulledPayload) -> ParseError {
    ParseError::Malformed(format!("{source} has no pulled rows of `{}`", pulled.pull.api))
}
