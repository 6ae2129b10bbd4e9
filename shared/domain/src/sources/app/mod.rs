//! The seller's own mini-program and services (Standard Webhooks): orders of the mini-program
//! channel, customer signals (app opened, GPS, logistics viewed, consultation, sign confirmed /
//! not received) and geocoded delivery addresses.
//!
//! Payload: `{"type": "...", "timestamp": "...", "data": {...}}`. Types:
//! - `order.status` `{order_id, status, promised_ship_at?, lines?: [{sku, qty}], waybill?: {carrier, number}, scanned_out?}`
//! - `order.refund` `{order_id, refund_status, kind?: "refund_only"|"return_and_refund"}`
//! - `order.address` `{order: "<channel>/<shop>/<order_id>", addr_key, district, customer?, lat?, lng?}`
//! - `app.opened`, `gps.ping`, `logistics.viewed`, `consultation`, `sign.confirmed`,
//!   `sign.not_received` `{customer, order?: "<channel>/<shop>/<order_id>", at?, lat?, lng?, accuracy_m?}`
//!
//! The app speaks orderhub's own vocabulary: its status codes are the unified state names.

pub mod sign;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::geo::GeoPoint;
use crate::model::ids::{LineId, RefundId};
use crate::model::ids::{OrderKey, ShopId, Sku, Source};
use crate::model::lifecycle::{Lifecycle, RefundKind, RefundState};
use crate::model::secret::RotatedSecret;
use crate::model::signal::AppSignalKind;
use crate::model::source_event::{AddressEvent, AppEvent, OrderFacts, ParseError, SourceEvent, StatusEvent, Waybill};
use crate::model::status::{MappingRow, StatusMapping, Target, kind_of, lookup};
use crate::model::stock::OrderLine;
use crate::sources::app::sign::standard_webhooks_verify;
use crate::sources::json::{first_time, flag, parse_time, text};
use crate::sources::signing::check_window;
use crate::sources::{Ack, Delivery, ShopSecret, SourceModule};
use crate::sources::{Opened, Refusal, header, message_id_or_hash, slot};

/// How far `webhook-timestamp` may be from receipt (Standard Webhooks: 5 minutes).
pub const WINDOW_S: i64 = 300;

/// The app's codes are orderhub's own names: `status` a [`Lifecycle`] name, `refund_status` a
/// [`RefundState`] name (a test checks every state has its row).
pub const STATUS_TABLE: &[MappingRow] = &[
    ("status", "PendingPayment", StatusMapping::Mapped(Target::lifecycle(Lifecycle::PendingPayment))),
    ("status", "Paid", StatusMapping::Mapped(Target::lifecycle(Lifecycle::Paid))),
    ("status", "RiskHold", StatusMapping::Mapped(Target::lifecycle(Lifecycle::RiskHold))),
    ("status", "WarehouseAccepted", StatusMapping::Mapped(Target::lifecycle(Lifecycle::WarehouseAccepted))),
    ("status", "Packing", StatusMapping::Mapped(Target::lifecycle(Lifecycle::Packing))),
    ("status", "Shipped", StatusMapping::Mapped(Target::lifecycle(Lifecycle::Shipped))),
    ("status", "InTransit", StatusMapping::Mapped(Target::lifecycle(Lifecycle::InTransit))),
    ("status", "OutForDelivery", StatusMapping::Mapped(Target::lifecycle(Lifecycle::OutForDelivery))),
    ("status", "Signed", StatusMapping::Mapped(Target::lifecycle(Lifecycle::Signed))),
    ("status", "SignPendingConfirmation", StatusMapping::Mapped(Target::lifecycle(Lifecycle::SignPendingConfirmation))),
    ("status", "SignException", StatusMapping::Mapped(Target::lifecycle(Lifecycle::SignException))),
    ("status", "Completed", StatusMapping::Mapped(Target::lifecycle(Lifecycle::Completed))),
    ("status", "Cancelled", StatusMapping::Mapped(Target::lifecycle(Lifecycle::Cancelled))),
    ("refund_status", "Requested", StatusMapping::Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "Approved", StatusMapping::Mapped(Target::refund(RefundState::Approved))),
    ("refund_status", "Rejected", StatusMapping::Mapped(Target::refund(RefundState::Rejected))),
    ("refund_status", "Closed", StatusMapping::Mapped(Target::refund(RefundState::Closed))),
    ("refund_status", "Succeeded", StatusMapping::Mapped(Target::refund(RefundState::Succeeded))),
    ("kind", "refund_only", StatusMapping::Mapped(Target::kind(RefundKind::RefundOnly))),
    ("kind", "return_and_refund", StatusMapping::Mapped(Target::kind(RefundKind::ReturnAndRefund))),
];

/// Maps an app code.
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// Verifies a Standard Webhooks delivery: `webhook-signature` holds one or more `v1,<base64>`
/// HMAC-SHA256 signatures of `{webhook-id}.{webhook-timestamp}.{body}` under the `whsec_`
/// secret; any of them may match the current or the previous secret; the timestamp must be
/// within 5 minutes of receipt.
pub fn open(cb: &RawCallback, secret: &RotatedSecret) -> Result<Opened, Refusal> {
    let id = header(cb, "webhook-id").ok_or_else(|| Refusal::Signature("missing webhook-id".into()))?;
    let timestamp =
        header(cb, "webhook-timestamp").ok_or_else(|| Refusal::Signature("missing webhook-timestamp".into()))?;
    let signatures =
        header(cb, "webhook-signature").ok_or_else(|| Refusal::Signature("missing webhook-signature".into()))?;
    let ts: i64 = timestamp.parse().map_err(|_| Refusal::Signature("webhook-timestamp is not a number".into()))?;
    check_window(ts, cb.received_at.timestamp(), WINDOW_S).map_err(|_| {
        Refusal::Stale(format!("timestamp {}s from receipt", ts.saturating_sub(cb.received_at.timestamp())))
    })?;
    let key_slot = secret
        .in_order()
        .find(|(s, _)| standard_webhooks_verify(s.expose(), id, ts, &cb.body, signatures).is_ok())
        .map(|(_, previous)| slot(previous))
        .ok_or_else(|| Refusal::Signature("no signature matches".into()))?;
    let body: Value = serde_json::from_slice(&cb.body).map_err(|_| Refusal::Malformed("body is not JSON".into()))?;
    if text(&body, "type").is_none() {
        return Err(Refusal::Malformed("no type".into()));
    }
    Ok(Opened::Message { message_id: message_id_or_hash(Some(id), &cb.body), payload: cb.body.clone(), key_slot })
}

fn order_ref(value: &Value) -> Result<Option<OrderKey>, ParseError> {
    let Some(order) = text(value, "order") else { return Ok(None) };
    let mut parts = order.splitn(3, '/');
    let (Some(channel), Some(shop), Some(order_id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::Field("order"));
    };
    let channel: Source = channel.parse()?;
    Ok(Some(OrderKey::parse(channel, shop, order_id)?))
}

fn location(data: &Value) -> Option<GeoPoint> {
    let lat = data.get("lat")?.as_f64()?;
    let lng = data.get("lng")?.as_f64()?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)).then_some(GeoPoint { lat, lng })
}

/// Parses a delivery.
pub fn parse(shop: &ShopId, payload: &[u8]) -> Result<Vec<SourceEvent>, ParseError> {
    let body: Value = serde_json::from_slice(payload).map_err(|_| ParseError::Malformed("not JSON".into()))?;
    let kind = text(&body, "type").ok_or(ParseError::Field("type"))?;
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let message_id = message_id_or_hash(text(&body, "id").as_deref(), payload);
    let at = first_time(&data, &["at"]).or_else(|| body.get("timestamp").and_then(parse_time));
    let signal = match kind.as_str() {
        "app.opened" => Some(AppSignalKind::AppOpened),
        "gps.ping" => Some(AppSignalKind::GpsPing),
        "logistics.viewed" => Some(AppSignalKind::LogisticsViewed),
        "consultation" => Some(AppSignalKind::Consultation),
        "sign.confirmed" => Some(AppSignalKind::SignConfirmed),
        "sign.not_received" => Some(AppSignalKind::NotReceived),
        _ => None,
    };
    if let Some(signal) = signal {
        let customer = text(&data, "customer").ok_or(ParseError::Field("customer"))?;
        let at = at.ok_or(ParseError::Field("at"))?;
        return Ok(vec![SourceEvent::App(AppEvent {
            key: order_ref(&data)?,
            customer,
            message_id,
            at,
            kind: signal,
            location: location(&data),
            accuracy_m: data.get("accuracy_m").and_then(Value::as_f64).filter(|a| a.is_finite() && *a >= 0.0),
        })]);
    }
    match kind.as_str() {
        "order.status" | "order.refund" => {
            let order_id = text(&data, "order_id").ok_or(ParseError::Field("order_id"))?;
            let key = OrderKey::parse(Source::App, shop.as_str(), &order_id)?;
            let (field, code) = if kind == "order.status" {
                ("status", text(&data, "status").ok_or(ParseError::Field("status"))?)
            } else {
                ("refund_status", text(&data, "refund_status").ok_or(ParseError::Field("refund_status"))?)
            };
            let mut facts = OrderFacts {
                promised_ship_at: first_time(&data, &["promised_ship_at"]),
                scanned_out: flag(&data, "scanned_out"),
                ..OrderFacts::default()
            };
            if let Some(waybill) = data.get("waybill")
                && let (Some(carrier), Some(number)) = (text(waybill, "carrier"), text(waybill, "number"))
            {
                facts.waybill = Some(Waybill { carrier, number });
            }
            if let Some(lines) = data.get("lines").and_then(Value::as_array) {
                for line in lines {
                    let sku = Sku::parse(&text(line, "sku").ok_or(ParseError::Field("lines.sku"))?)?;
                    let qty = line.get("qty").and_then(Value::as_u64).and_then(|q| u32::try_from(q).ok()).unwrap_or(1);
                    let id = match text(line, "line") {
                        Some(id) => LineId::parse(&id)?,
                        None => LineId::of_sku(&sku),
                    };
                    facts.lines.push(OrderLine { line: id, sku, qty });
                }
            }
            // A refund names its case (`refund_id`) and the lines it covers (`refund_lines`);
            // without them it is the order's one refund, of every line.
            if let Some(id) = text(&data, "refund_id") {
                facts.refund.id = Some(RefundId::parse(&id)?);
            }
            if let Some(lines) = data.get("refund_lines").and_then(Value::as_array) {
                for line in lines {
                    let id = line.as_str().ok_or(ParseError::Field("refund_lines"))?;
                    facts.refund.lines.push(LineId::parse(id)?);
                }
            }
            facts.refund_kind = text(&data, "kind").and_then(|kind| kind_of(STATUS_TABLE, "kind", &kind));
            Ok(vec![SourceEvent::Status(StatusEvent {
                key,
                message_id,
                event_time: at,
                raw: crate::model::status::RawStatus::new(field, code),
                facts,
            })])
        }
        "order.address" => {
            let key = order_ref(&data)?.ok_or(ParseError::Field("order"))?;
            Ok(vec![SourceEvent::Address(AddressEvent {
                key,
                message_id,
                addr_key: text(&data, "addr_key").ok_or(ParseError::Field("addr_key"))?,
                district: text(&data, "district").unwrap_or_default(),
                customer: text(&data, "customer"),
                location: location(&data),
                at,
            })])
        }
        other => Ok(vec![SourceEvent::Ignored(format!(
            "app event type `{}` is not used",
            other.chars().take(40).collect::<String>()
        ))]),
    }
}

/// The seller's own app in the registry: a `whsec_` secret, rotated.
pub struct App;

impl SourceModule for App {
    fn source(&self) -> Source {
        Source::App
    }

    fn delivery(&self) -> Delivery {
        Delivery::Callbacks
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<RotatedSecret>(json)
    }

    fn open(&self, cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal> {
        open(cb, secret.typed()?)
    }

    fn parse(&self, shop: &ShopId, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
        let _ = query;
        parse(shop, payload)
    }

    fn status_table(&self) -> &'static [MappingRow] {
        STATUS_TABLE
    }

    fn ack(&self) -> Ack {
        Ack { status: 204, body: "" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_codes_are_the_unified_state_names() {
        for state in Lifecycle::ALL {
            assert_eq!(map_status("status", state.as_str()), StatusMapping::Mapped(Target::lifecycle(state)));
        }
        assert_eq!(
            map_status("refund_status", "Succeeded"),
            StatusMapping::Mapped(Target::refund(RefundState::Succeeded))
        );
        assert_eq!(map_status("refund_status", "None"), StatusMapping::Unmapped);
        assert_eq!(map_status("status", "paid"), StatusMapping::Unmapped, "names are exact");
    }

    // Found while writing the fuzz targets, and kept as their regression input
    // (fuzz/corpus/open_app/regress-timestamp-i64-min): the refusal's message computed
    // `timestamp - receipt` and overflowed for `i64::MIN`.
    #[test]
    fn a_timestamp_of_i64_min_is_stale_not_an_overflow() {
        use chrono::TimeZone;
        let headers =
            [("webhook-id", "msg_1"), ("webhook-timestamp", "-9223372036854775808"), ("webhook-signature", "v1,AAAA")];
        let cb = RawCallback {
            source: Source::App,
            shop: ShopId::parse("shop-1").unwrap(),
            received_at: chrono::Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).unwrap(),
            query: vec![],
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: b"{}".to_vec(),
        };
        let secret = RotatedSecret {
            secret: crate::ports::secrets::Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            previous_secret: None,
        };
        assert!(matches!(open(&cb, &secret), Err(Refusal::Stale(_))));
    }
}
