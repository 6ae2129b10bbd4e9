//! 快递100 (Kuaidi100) tracking pushes: form POST of `param` (JSON) and `sign`.
//!
//! Subscribe each waybill with a callback URL of the form
//! `/webhooks/kuaidi100/<shop>?order=<channel>/<shop>/<order_id>` and `resultv2=4` (sub-states);
//! the `order` parameter names the order the waybill belongs to.

use serde_json::Value;

use crate::ids::OrderKey;
use crate::inbound::{GeoPoint, InboundEvent, LogisticsEvent, ParseError, Waybill};
use crate::inbox::RawCallback;
use crate::json::{parse_time, text};
use crate::lifecycle::Lifecycle::*;
use crate::secrets::SourceSecret;
use crate::signature::{kuaidi100_sign, verify_hex_sign};
use crate::sources::{Opened, Refusal, body_hash_id, secrets_in_order, slot};
use crate::status::{MappingRow, StatusMapping, StatusMapping::*, Target, lookup};

/// Kuaidi100's states. The sign-related ones are in `../shared/reference/platforms.md`; 0 在途,
/// 1 揽收 and 5 派件 are Kuaidi100's documented in-transit states.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("state", "0", Mapped(Target::lifecycle(InTransit))),
    // 揽收: the carrier took the parcel: that is the scan-out.
    ("state", "1", Mapped(Target::lifecycle(Shipped))),
    ("state", "2", Informational("疑难: the carrier reports a problem")),
    ("state", "3", Mapped(Target::lifecycle(Signed))),
    ("state", "4", Mapped(Target::lifecycle(SignException))),
    ("state", "5", Mapped(Target::lifecycle(OutForDelivery))),
    ("state", "6", Mapped(Target::lifecycle(SignException))),
    ("state", "14", Mapped(Target::lifecycle(SignException))),
];

/// Maps a Kuaidi100 code (`state`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// Splits a form body into `param` and `sign` (URL-decoded).
fn form(body: &[u8]) -> (Option<String>, Option<String>) {
    let mut param = None;
    let mut sign = None;
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "param" => param = Some(v.into_owned()),
            "sign" => sign = Some(v.into_owned()),
            _ => {}
        }
    }
    (param, sign)
}

/// Verifies a push: `sign` is the UPPER hex MD5(param + salt), salt = the shop's secret.
pub fn open(cb: &RawCallback, secret: &SourceSecret) -> Result<Opened, Refusal> {
    let (param, sign) = form(&cb.body);
    let sign = sign.ok_or_else(|| Refusal::Signature("missing sign".into()))?;
    let param = param.ok_or_else(|| Refusal::Malformed("missing param".into()))?;
    let key_slot = secrets_in_order(secret)
        .find(|(salt, _)| verify_hex_sign(&kuaidi100_sign(&param, salt.expose()), &sign).is_ok())
        .map(|(_, previous)| slot(previous))
        .ok_or_else(|| Refusal::Signature("sign mismatch".into()))?;
    // Checked, not built: `parse` reads it later, and a trace of many lines is most of the cost.
    serde_json::from_str::<serde::de::IgnoredAny>(&param)
        .map_err(|_| Refusal::Malformed("param is not JSON".into()))?;
    if !param.trim_start().starts_with('{') {
        return Err(Refusal::Malformed("param is not a JSON object".into()));
    }
    // Kuaidi100 sends no message id and retries the same param: its hash is the dedupe key.
    Ok(Opened::Message { message_id: body_hash_id(param.as_bytes()), payload: param.into_bytes(), key_slot })
}

fn geo(area_center: &str) -> Option<GeoPoint> {
    let (lng, lat) = area_center.split_once(',')?;
    let (lat, lng) = (lat.trim().parse::<f64>().ok()?, lng.trim().parse::<f64>().ok()?);
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)).then_some(GeoPoint { lat, lng })
}

/// Parses `param`: the newest trace line (Kuaidi100 lists newest first) becomes one event for the
/// order named by the callback URL's `order` parameter.
pub fn parse(payload: &[u8], query: &[(String, String)]) -> Result<Vec<InboundEvent>, ParseError> {
    let param: Value =
        serde_json::from_slice(payload).map_err(|_| ParseError::Malformed("param is not JSON".into()))?;
    if text(&param, "status").as_deref() == Some("abort") {
        return Ok(vec![InboundEvent::Ignored("kuaidi100 stopped tracking this waybill".into())]);
    }
    let order = query.iter().find(|(k, _)| k == "order").map(|(_, v)| v.as_str()).ok_or(ParseError::Field("order"))?;
    let mut parts = order.splitn(3, '/');
    let (Some(channel), Some(shop), Some(order_id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::Field("order"));
    };
    let channel = channel.parse().map_err(ParseError::Id)?;
    let key = OrderKey::parse(channel, shop, order_id)?;
    let last = param.get("lastResult").ok_or(ParseError::Field("lastResult"))?;
    let number = text(last, "nu").ok_or(ParseError::Field("nu"))?;
    let carrier = text(last, "com").unwrap_or_default();
    let state = text(last, "state").ok_or(ParseError::Field("state"))?;
    let newest =
        last.get("data").and_then(Value::as_array).and_then(|lines| lines.first()).cloned().unwrap_or(Value::Null);
    let event_time = newest.get("ftime").or_else(|| newest.get("time")).and_then(parse_time);
    let stamp = text(&newest, "time").unwrap_or_default();
    Ok(vec![InboundEvent::Logistics(LogisticsEvent {
        key,
        message_id: body_hash_id(format!("{carrier}/{number}/{state}/{stamp}").as_bytes()),
        event_time,
        waybill: Waybill { carrier, number },
        state,
        sub_state: text(&newest, "statusCode"),
        carrier_code: None,
        text: text(&newest, "context").unwrap_or_default(),
        location: text(&newest, "areaCenter").as_deref().and_then(geo),
    })])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn state_row() {
        assert_rows(
            map_status,
            "state",
            &[
                ("0", Some(InTransit), None),
                ("1", Some(Shipped), None),
                ("3", Some(Signed), None),
                ("4", Some(SignException), None),
                ("5", Some(OutForDelivery), None),
                ("6", Some(SignException), None),
                ("14", Some(SignException), None),
            ],
        );
        assert!(matches!(map_status("state", "2"), Informational(_)));
        assert_eq!(map_status("state", "8"), Unmapped, "清关 is not in our table yet");
    }

    #[test]
    fn area_centres_are_lng_lat() {
        assert_eq!(geo("120.15,30.28"), Some(GeoPoint { lat: 30.28, lng: 120.15 }));
        assert_eq!(geo("999,30"), None);
        assert_eq!(geo("nonsense"), None);
    }
}
