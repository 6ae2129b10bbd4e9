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
use crate::model::geo::{GeoPoint, Located, Precision};
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

/// Kuaidi100's codes: one row per row of `docs/status-codes.md` § kuaidi100, where each code's
/// meaning and public source are listed (a test reads both and checks they agree).
///
/// With `resultv2=4` both `lastResult.state` and each line's `statusCode` carry the detailed code
/// (`"304"`, `"1002"`), so every detailed code has its own row; none is derived from its digits
/// (1001–1003 belong to 0 在途, 10–13 to 8 清关, and 14 is both a state and a detail of 4).
pub const STATUS_TABLE: &[MappingRow] = &[
    // 0 在途
    ("state", "0", Mapped(Target::lifecycle(InTransit))),
    ("state", "1001", Mapped(Target::lifecycle(InTransit))),
    ("state", "1002", Mapped(Target::lifecycle(InTransit))),
    ("state", "1003", Mapped(Target::lifecycle(InTransit))),
    // 1 揽收: the carrier took the parcel: that is the scan-out.
    ("state", "1", Mapped(Target::lifecycle(Shipped))),
    ("state", "101", Informational("已下单: the waybill was created, the carrier has not taken the parcel")),
    ("state", "102", Informational("待揽收: waiting for the carrier to collect")),
    ("state", "103", Mapped(Target::lifecycle(Shipped))),
    // 5 派件
    ("state", "5", Mapped(Target::lifecycle(OutForDelivery))),
    // 投柜或驿站: put into a locker or station: delivery, not a sign.
    ("state", "501", Mapped(Target::lifecycle(OutForDelivery))),
    // 3 签收
    ("state", "3", Mapped(Target::lifecycle(Signed))),
    ("state", "301", Mapped(Target::lifecycle(Signed))),
    ("state", "302", Mapped(Target::lifecycle(Signed))),
    ("state", "303", Mapped(Target::lifecycle(Signed))),
    ("state", "304", Mapped(Target::lifecycle(Signed))),
    // 6 退回, 4 退签, 14 拒签: returned or refused — never a sign.
    ("state", "6", Mapped(Target::lifecycle(SignException))),
    ("state", "4", Mapped(Target::lifecycle(SignException))),
    ("state", "401", Informational("已销单: the waybill was cancelled")),
    ("state", "14", Mapped(Target::lifecycle(SignException))),
    // 7 转投: forwarded to another carrier.
    ("state", "7", Mapped(Target::lifecycle(InTransit))),
    // 2 疑难
    ("state", "2", Informational("疑难: the carrier reports a problem")),
    ("state", "201", Informational("超时未签收: not signed long after delivery started")),
    ("state", "202", Informational("超时未更新: no delivery or sign for a long time")),
    ("state", "203", Mapped(Target::lifecycle(SignException))),
    ("state", "204", Informational("派件异常: a delivery problem")),
    // 柜或驿站超时未取: waiting too long in a locker or station — not a sign.
    ("state", "205", Informational("柜或驿站超时未取: not collected from the locker or station for long")),
    ("state", "206", Informational("无法联系: the recipient cannot be reached")),
    ("state", "207", Informational("超区: outside the carrier's service area")),
    ("state", "208", Informational("滞留: held at the branch, not out for delivery")),
    ("state", "209", Informational("破损: the parcel is damaged")),
    ("state", "210", Informational("销单: the sender cancelled the shipment")),
    // 8 清关
    ("state", "8", Mapped(Target::lifecycle(InTransit))),
    ("state", "10", Mapped(Target::lifecycle(InTransit))),
    ("state", "11", Mapped(Target::lifecycle(InTransit))),
    ("state", "12", Mapped(Target::lifecycle(InTransit))),
    ("state", "13", Informational("清关异常: a customs problem")),
    // the push's monitoring `status`
    ("status", "polling", Informational("监控中")),
    ("status", "shutdown", Informational("结束: tracking ended (signed)")),
    ("status", "abort", Informational("中止: tracking stopped; re-subscribe after 30 minutes")),
    ("status", "updateall", Informational("重新推送: a full re-push")),
    ("message", "3天查询无记录", Informational("abort reason: no trace for 3 days")),
    ("message", "60天无变化", Informational("abort reason: no change for 60 days")),
];

/// Maps a Kuaidi100 code (`state`, `status`, `message`).
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
/// the payload; trace lines after the newest are read only as far as their status code and area
/// until the last mile's area is found, the rest skipped unbuilt (a long trace is most of a
/// push). Fields of another type than expected read as absent, as they would from a `Value`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Param<'a> {
    #[serde(borrow)]
    status: LooseText<'a>,
    #[serde(borrow)]
    message: LooseText<'a>,
    #[serde(rename = "comNew", borrow)]
    com_new: LooseText<'a>,
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
    /// The newest trace line (Kuaidi100 lists newest first) and the last mile's area.
    #[serde(deserialize_with = "trace")]
    data: Trace,
}

/// What [`parse`] needs of the trace lines.
#[derive(Default)]
struct Trace {
    /// The newest line, as a `Value` (`Null` when there is none).
    newest: Value,
    /// `(areaCode, areaCenter)` of the newest line that names an area and is the newest line or
    /// a last-mile line (a sign 3/30x, or a delivery 5/501): where the sign happened, to the
    /// precision of the area. A trunk line's area (a transfer centre) is never taken for it.
    area: Option<(Option<String>, String)>,
}

/// One older trace line, as far as the area search reads it.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AreaLine<'a> {
    #[serde(rename = "statusCode", borrow)]
    status_code: LooseText<'a>,
    #[serde(rename = "areaCode", borrow)]
    area_code: LooseText<'a>,
    #[serde(rename = "areaCenter", borrow)]
    area_center: LooseText<'a>,
}

/// Whether a status code is the last mile: a sign (3, 301–304) or a delivery (5, 501).
fn last_mile(code: &str) -> bool {
    matches!(code, "3" | "301" | "302" | "303" | "304" | "5" | "501")
}

/// The trace lines: the first as a `Value`, then the last mile's area; anything else is `Null`.
fn trace<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Trace, D::Error> {
    struct Lines;
    impl<'de> Visitor<'de> for Lines {
        type Value = Trace;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of trace lines")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Trace, A::Error> {
            let newest = seq.next_element::<Value>()?.unwrap_or(Value::Null);
            let mut area = text(&newest, "areaCenter").map(|center| (text(&newest, "areaCode"), center));
            // A newest line that is not the last mile (still in transit) ends the search.
            let mut searching = area.is_none() && text(&newest, "statusCode").is_some_and(|c| last_mile(&c));
            while searching {
                let Some(line) = seq.next_element::<AreaLine<'de>>()? else { break };
                let code = line.status_code.0.as_deref().unwrap_or_default();
                if !last_mile(code) {
                    searching = false;
                } else if let Some(center) = line.area_center.owned() {
                    area = Some((line.area_code.owned(), center));
                    searching = false;
                }
            }
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok(Trace { newest, area })
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Trace, A::Error> {
            while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
            Ok(Trace::default())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Trace, E> {
            Ok(Trace::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Trace, E> {
            Ok(Trace::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Trace, E> {
            Ok(Trace::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Trace, E> {
            Ok(Trace::default())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Trace, E> {
            Ok(Trace::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Trace, E> {
            Ok(Trace::default())
        }
    }
    deserializer.deserialize_any(Lines)
}

/// Why Kuaidi100 stopped tracking, in its words, bounded.
fn abort_reason(message: Option<&str>, com_new: Option<&str>) -> String {
    let mut reason: String = message.unwrap_or("abort").chars().take(100).collect();
    if let Some(code) = com_new.map(str::trim).filter(|c| !c.is_empty()) {
        reason.push_str("; comNew=");
        reason.extend(code.chars().take(40));
    }
    reason
}

/// Parses `param`: the newest trace line (Kuaidi100 lists newest first) becomes one event for the
/// order named by the callback URL's `order` parameter.
///
/// `status` = `abort` (3天查询无记录, 60天无变化, or the carrier code corrected in `comNew`) is an
/// event too: the order is flagged `tracking_stopped` and `TrackingStopped` is published, for the
/// re-subscription Kuaidi100 asks for after half an hour (kuaidi100-api/java-demo
/// `SubscribePushParamResp.java` L12-L14, L27-L31).
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
    let order = query.iter().find(|(k, _)| k == "order").map(|(_, v)| v.as_str()).ok_or(ParseError::Field("order"))?;
    let mut parts = order.splitn(3, '/');
    let (Some(channel), Some(shop), Some(order_id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::Field("order"));
    };
    let channel = channel.parse().map_err(ParseError::Id)?;
    let key = OrderKey::parse(channel, shop, order_id)?;
    let stopped = (param.status.0.as_deref() == Some("abort"))
        .then(|| abort_reason(param.message.0.as_deref(), param.com_new.0.as_deref()));
    let last = match (param.last_result, &stopped) {
        (Some(last), _) => last,
        // An abort may name no trace: the order's stored waybill is the one that stopped.
        (None, Some(_)) => LastResult::default(),
        (None, None) => return Err(ParseError::Field("lastResult")),
    };
    let number = match (last.nu.owned(), &stopped) {
        (Some(number), _) => number,
        (None, Some(_)) => String::new(),
        (None, None) => return Err(ParseError::Field("nu")),
    };
    let carrier = last.com.owned().unwrap_or_default();
    let state = match (last.state.owned(), &stopped) {
        (Some(state), _) => state,
        (None, Some(_)) => String::new(),
        (None, None) => return Err(ParseError::Field("state")),
    };
    let newest = &last.data.newest;
    let event_time = newest.get("ftime").or_else(|| newest.get("time")).and_then(parse_time);
    let stamp = text(newest, "time").unwrap_or_default();
    let location = last.data.area.as_ref().and_then(|(code, center)| {
        geo(center).map(|point| Located::area(point, Precision::of_area_code(code.as_deref())))
    });
    let id = match &stopped {
        Some(reason) => format!("abort/{carrier}/{number}/{reason}"),
        None => format!("{carrier}/{number}/{state}/{stamp}"),
    };
    Ok(vec![SourceEvent::Logistics(LogisticsEvent {
        key,
        message_id: body_hash_id(id.as_bytes()),
        event_time,
        waybill: Waybill { carrier, number },
        state,
        sub_state: text(newest, "statusCode"),
        carrier_code: None,
        text: text(newest, "context").unwrap_or_default(),
        location,
        stopped,
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
        assert_rows(
            map_status,
            "state",
            &[
                ("7", Some(InTransit), None),
                ("8", Some(InTransit), None),
                ("1002", Some(InTransit), None),
                ("301", Some(Signed), None),
                ("304", Some(Signed), None),
                ("501", Some(OutForDelivery), None),
                ("203", Some(SignException), None),
            ],
        );
        assert!(matches!(map_status("state", "205"), Informational(_)), "waiting at a station is no sign");
        assert!(matches!(map_status("status", "abort"), Informational(_)));
        for unconfirmed in ["211", "1004", "502", "9"] {
            assert_eq!(map_status("state", unconfirmed), Unmapped, "{unconfirmed}");
        }
    }

    fn one(payload: &[u8]) -> LogisticsEvent {
        let query = vec![("order".to_owned(), "douyin/shop-1/6921000000001".to_owned())];
        match parse(payload, &query) {
            Ok(events) => match events.as_slice() {
                [SourceEvent::Logistics(e)] => e.clone(),
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_sign_area_is_the_last_miles_area_at_its_level_never_a_trunk_line() {
        let station = one(include_bytes!("../../../../../events/real/kuaidi100/signed-304-station.json"));
        assert_eq!((station.state.as_str(), station.sub_state.as_deref()), ("304", Some("304")));
        // The sign and locker lines have no area; the 派件 line before them is in 西湖区.
        let located = station.location.unwrap_or_else(|| panic!("the delivery line's area"));
        assert_eq!(located.precision, Precision::District);
        assert_eq!(located.point, GeoPoint { lat: 30.259324, lng: 120.130203 });
        assert_eq!(station.stopped, None);
        // A sign line followed only by trunk lines names no area.
        let trunk_only = br#"{"lastResult":{"nu":"1","com":"sf","state":"301","data":[
            {"time":"2026-11-11 10:00:00","statusCode":"301","areaCenter":null},
            {"time":"2026-11-11 09:00:00","statusCode":"1002","areaCode":"CN330110000000","areaCenter":"120.29,30.41"}]}}"#;
        assert_eq!(one(trunk_only).location, None);
    }

    #[test]
    fn an_abort_is_an_event_with_its_reason() {
        let abort = one(include_bytes!("../../../../../events/real/kuaidi100/abort-no-trace-3-days.json"));
        assert_eq!(abort.stopped.as_deref(), Some("3天查询无记录"));
        assert_eq!(abort.waybill.number, "78912345670000");
        let corrected = one(br#"{"status":"abort","message":"","autoCheck":"0","comOld":"","comNew":"yuantong"}"#);
        assert_eq!(corrected.stopped.as_deref(), Some("abort; comNew=yuantong"));
        assert_eq!(corrected.waybill.number, "", "no trace: the order's stored waybill is the one that stopped");
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
        // (A point only: its precision comes from the line's areaCode.)
        assert_eq!(geo("120.15,30.28"), Some(GeoPoint { lat: 30.28, lng: 120.15 }));
        assert_eq!(geo("999,30"), None);
        assert_eq!(geo("nonsense"), None);
    }
}
