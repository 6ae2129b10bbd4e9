//! 快递100 (Kuaidi100) tracking pushes: form POST of `param` (JSON) and `sign`.
//!
//! Subscribe each waybill with a callback URL of the form
//! `/webhooks/kuaidi100/<shop>?order=<channel>/<shop>/<order_id>` and `resultv2=4` (sub-states);
//! the `order` parameter names the order the waybill belongs to.

pub mod sign;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::geo::GeoPoint;
use crate::model::ids::OrderKey;
use crate::model::ids::body_hash_id;
use crate::model::ids::{ShopId, Source};
use crate::model::lifecycle::Lifecycle::*;
use crate::model::secret::RotatedSecret;
use crate::model::source_event::{LogisticsEvent, ParseError, SourceEvent, Waybill};
use crate::model::status::{MappingRow, StatusMapping, StatusMapping::*, Target, lookup};
use crate::sources::json::{LooseText, parse_time, text};
use crate::sources::kuaidi100::sign::kuaidi100_sign;
use crate::sources::signing::verify_hex_sign;
use crate::sources::{Ack, Delivery, ShopSecret, SourceModule};
use crate::sources::{Opened, Refusal, slot};

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
///
/// `param` is not read here: what is signed is authentic whatever its shape, so it is accepted,
/// archived and queued, and a param that is not the JSON [`parse`] expects goes to the dead-letter
/// queue with that reason (a 400 would only make Kuaidi100 retry the same bytes). Reading the
/// trace once instead of twice is also most of this source's verify + parse budget.
pub fn open(cb: &RawCallback, secret: &RotatedSecret) -> Result<Opened, Refusal> {
    let (param, sign) = form(&cb.body);
    let sign = sign.ok_or_else(|| Refusal::Signature("missing sign".into()))?;
    let param = param.ok_or_else(|| Refusal::Malformed("missing param".into()))?;
    let key_slot = secret
        .in_order()
        .find(|(salt, _)| verify_hex_sign(&kuaidi100_sign(&param, salt.expose()), &sign).is_ok())
        .map(|(_, previous)| slot(previous))
        .ok_or_else(|| Refusal::Signature("sign mismatch".into()))?;
    // Kuaidi100 sends no message id and retries the same param: its hash is the dedupe key,
    // with the order the callback URL names — one waybill subscribed for two orders (a merged
    // parcel) gets the same param twice, once per order, and each order must get it.
    let order = cb.query.iter().find(|(k, _)| k == "order").map_or("", |(_, v)| v.as_str());
    let mut identity = param.as_bytes().to_vec();
    identity.push(b'\n');
    identity.extend_from_slice(order.as_bytes());
    Ok(Opened::Message { message_id: body_hash_id(&identity), payload: param.into_bytes(), key_slot })
}

fn geo(area_center: &str) -> Option<GeoPoint> {
    let (lng, lat) = area_center.split_once(',')?;
    let (lat, lng) = (lat.trim().parse::<f64>().ok()?, lng.trim().parse::<f64>().ok()?);
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)).then_some(GeoPoint { lat, lng })
}

/// The part of `param` that [`parse`] reads. Only these fields are built, strings borrowed from
/// the payload; every trace line after the newest is skipped unbuilt (a long trace is most of a
/// push). Fields of another type than expected read as absent, as they would from a `Value`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Param<'a> {
    #[serde(borrow)]
    status: LooseText<'a>,
    #[serde(rename = "lastResult", borrow)]
    last_result: Option<LastResult<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LastResult<'a> {
    #[serde(borrow)]
    nu: LooseText<'a>,
    #[serde(borrow)]
    com: LooseText<'a>,
    #[serde(borrow)]
    state: LooseText<'a>,
    /// The newest trace line (Kuaidi100 lists newest first).
    #[serde(deserialize_with = "first_line")]
    data: Value,
}

/// The first element of an array, as a `Value`; the rest skipped. Anything else is `Null`.
fn first_line<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of trace lines")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let first = seq.next_element::<Value>()?.unwrap_or(Value::Null);
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok(first)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
            Ok(Value::Null)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    }
    deserializer.deserialize_any(First)
}

/// Parses `param`: the newest trace line (Kuaidi100 lists newest first) becomes one event for the
/// order named by the callback URL's `order` parameter.
pub fn parse(payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
    if !payload.trim_ascii_start().starts_with(b"{") {
        return Err(ParseError::Malformed("param is not a JSON object".into()));
    }
    // The reason names the kind of failure, never the content (serde's message quotes it).
    let param: Param<'_> = serde_json::from_slice(payload).map_err(|e| {
        ParseError::Malformed(
            if e.is_data() { "param is not the Kuaidi100 push shape" } else { "param is not JSON" }.into(),
        )
    })?;
    if param.status.0.as_deref() == Some("abort") {
        return Ok(vec![SourceEvent::Ignored("kuaidi100 stopped tracking this waybill".into())]);
    }
    let order = query.iter().find(|(k, _)| k == "order").map(|(_, v)| v.as_str()).ok_or(ParseError::Field("order"))?;
    let mut parts = order.splitn(3, '/');
    let (Some(channel), Some(shop), Some(order_id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::Field("order"));
    };
    let channel = channel.parse().map_err(ParseError::Id)?;
    let key = OrderKey::parse(channel, shop, order_id)?;
    let last = param.last_result.ok_or(ParseError::Field("lastResult"))?;
    let number = last.nu.owned().ok_or(ParseError::Field("nu"))?;
    let carrier = last.com.owned().unwrap_or_default();
    let state = last.state.owned().ok_or(ParseError::Field("state"))?;
    let newest = &last.data;
    let event_time = newest.get("ftime").or_else(|| newest.get("time")).and_then(parse_time);
    let stamp = text(newest, "time").unwrap_or_default();
    Ok(vec![SourceEvent::Logistics(LogisticsEvent {
        key,
        message_id: body_hash_id(format!("{carrier}/{number}/{state}/{stamp}").as_bytes()),
        event_time,
        waybill: Waybill { carrier, number },
        state,
        sub_state: text(newest, "statusCode"),
        carrier_code: None,
        text: text(newest, "context").unwrap_or_default(),
        location: text(newest, "areaCenter").as_deref().and_then(geo),
    })])
}

/// 快递100 in the registry: the subscription's salt, rotated, is the shop's secret.
pub struct Kuaidi100;

impl SourceModule for Kuaidi100 {
    fn source(&self) -> Source {
        Source::Kuaidi100
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
        let _ = shop;
        parse(payload, query)
    }

    fn status_table(&self) -> &'static [MappingRow] {
        STATUS_TABLE
    }

    fn ack(&self) -> Ack {
        Ack { status: 200, body: r#"{"result":true,"returnCode":"200","message":"成功"}"# }
    }
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
    fn a_signed_param_that_is_not_json_is_accepted_and_dead_letters_with_its_reason() {
        use crate::model::ids::{ShopId, Source};
        use crate::ports::secrets::Secret;
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default();
        let signed = crate::testing::fixtures::sign(Source::Kuaidi100, b"{not json", "salt-1", at, "m-1");
        // (starts like an object, so it is the JSON parser that refuses it)
        let cb = RawCallback {
            source: Source::Kuaidi100,
            shop: ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}")),
            received_at: at,
            query: vec![("order".into(), "douyin/shop-1/6921000000001".into())],
            headers: signed.headers,
            body: signed.body,
        };
        let secret = RotatedSecret { secret: Secret::new("salt-1"), previous_secret: None };
        let Ok(Opened::Message { payload, .. }) = open(&cb, &secret) else { panic!("a correct sign opens") };
        assert_eq!(parse(&payload, &cb.query).err(), Some(ParseError::Malformed("param is not JSON".into())));
        let wrong = RotatedSecret { secret: Secret::new("salt-2"), previous_secret: None };
        assert!(matches!(open(&cb, &wrong), Err(Refusal::Signature(_))), "the sign is still checked");
    }

    #[test]
    fn one_waybill_pushed_for_two_orders_is_two_messages_and_a_retry_is_one() {
        use crate::model::ids::{ShopId, Source};
        use crate::ports::secrets::Secret;
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default();
        let signed = crate::testing::fixtures::sign(Source::Kuaidi100, br#"{"status":"polling"}"#, "salt-1", at, "m");
        let for_order = |order: &str| RawCallback {
            source: Source::Kuaidi100,
            shop: ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}")),
            received_at: at,
            query: vec![("order".into(), order.into())],
            headers: signed.headers.clone(),
            body: signed.body.clone(),
        };
        let secret = RotatedSecret { secret: Secret::new("salt-1"), previous_secret: None };
        let id = |cb: &RawCallback| match open(cb, &secret) {
            Ok(Opened::Message { message_id, .. }) => message_id,
            other => panic!("{other:?}"),
        };
        let (a, b) = (for_order("douyin/shop-1/6921000000001"), for_order("douyin/shop-1/6921000000002"));
        assert_ne!(id(&a), id(&b), "the same trace for a merged parcel's two orders: both applied");
        assert_eq!(id(&a), id(&a.clone()), "Kuaidi100's retry of the same push: deduped");
    }

    #[test]
    fn loosely_typed_fields_read_as_text_and_only_the_newest_line_counts() {
        let query = vec![("order".to_owned(), "douyin/shop-1/6921000000001".to_owned())];
        let event = |payload: &str| match parse(payload.as_bytes(), &query) {
            Ok(events) => match events.as_slice() {
                [SourceEvent::Logistics(e)] => e.clone(),
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{e}"),
        };
        let numbers = event(r#"{"lastResult":{"nu":12345,"com":"sf","state":3,"data":"not lines"}}"#);
        assert_eq!((numbers.waybill.number.as_str(), numbers.state.as_str()), ("12345", "3"));
        assert_eq!((numbers.text.as_str(), numbers.event_time), ("", None), "data that is not lines is no line");
        let lines = event(
            r#"{"lastResult":{"nu":"SF1","com":"shunfeng","state":"3","data":[
                {"time":"2026-11-11 10:00:00","context":"已签收","statusCode":"301","areaCenter":{"x":1}},
                {"time":"2026-11-10 10:00:00","context":"older","statusCode":"101"}, 7, null]}}"#,
        );
        assert_eq!((lines.text.as_str(), lines.sub_state.as_deref(), lines.location), ("已签收", Some("301"), None));
        assert!(lines.event_time.is_some());
        assert_eq!(
            parse(br#"{"lastResult": "SF1"}"#, &query).err(),
            Some(ParseError::Malformed("param is not the Kuaidi100 push shape".into()))
        );
        assert_eq!(
            parse(br#"["abort", {"nu": "SF1"}]"#, &query).err(),
            Some(ParseError::Malformed("param is not a JSON object".into())),
            "an array is not read as the struct's fields in order"
        );
    }

    #[test]
    fn area_centres_are_lng_lat() {
        assert_eq!(geo("120.15,30.28"), Some(GeoPoint { lat: 30.28, lng: 120.15 }));
        assert_eq!(geo("999,30"), None);
        assert_eq!(geo("nonsense"), None);
    }
}
