//! Writes the seed corpora (`fuzz/corpus/<target>/seed-*`): a handful of valid inputs per
//! target, built with `domain::testing::fixtures`, each checked before it is written (it decodes back to
//! what was meant, opens, and parses). Run from the repository root after a fixture or format
//! change, and commit the result:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use chrono::Duration;
use domain::model::callback::InboundMessage;
use domain::model::ids::{MessageId, ShopId, Source};
use domain::sources::Opened;
use domain::testing::fixtures::{self, Signed};
use orderhub_fuzz::encode;
use orderhub_fuzz::{CallbackInput, HeaderName, KNOWN_HEADERS, PREVIOUS_SECRET, QueryPayload, SECRET, SHOP};
use serde_json::{Value, json};

type Seeds = Vec<(String, Vec<u8>)>;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut written = 0;
    let mut bytes = 0;
    let mut targets: Vec<(String, Seeds)> = Vec::new();
    let mut http = Seeds::new();
    let mut inbound = Seeds::new();
    let mut first_opened = Vec::new();
    for source in orderhub_fuzz::CALLBACK_SOURCES {
        let (open, parse) = open_and_parse_seeds(source, &mut http, &mut first_opened);
        targets.push((format!("open_{source}"), open));
        targets.push((format!("parse_{source}"), parse));
    }
    // The queue message of each source's first opened payload, and one whose payload travels
    // through the inbox archive instead (too large to go inline).
    for (source, opened, query, message_id) in std::mem::take(&mut first_opened) {
        let message = InboundMessage {
            source,
            shop: ShopId::parse(SHOP).expect("fixture shop"),
            message_id: MessageId::parse(&message_id).expect("fixture message id"),
            received_at: orderhub_fuzz::received_at(),
            query,
            payload: Some(String::from_utf8(opened).expect("opened payloads are UTF-8")),
            origin: "callback".into(),
        };
        if source == Source::Douyin {
            let archived = InboundMessage { payload: None, origin: "replay".into(), ..message.clone() };
            inbound.push(("douyin-archived".into(), inbound_seed(&archived)));
        }
        inbound.push((source.to_string(), inbound_seed(&message)));
    }
    targets.push(("http_incoming".into(), http));
    targets.push(("inbound_message".into(), inbound));
    for (target, seeds) in targets {
        let dir = root.join(&target);
        clear_seeds(&dir);
        for (name, data) in seeds {
            let path = dir.join(format!("seed-{}", sanitize(&name)));
            bytes += data.len();
            written += 1;
            fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
    }
    println!("wrote {written} seeds, {bytes} bytes, under {}", root.display());
}

fn clear_seeds(dir: &PathBuf) {
    fs::create_dir_all(dir).expect("corpus dir");
    for entry in fs::read_dir(dir).expect("corpus dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("seed-") {
            fs::remove_file(entry.path()).expect("remove old seed");
        }
    }
}

/// A real-shaped Youzan push (`events/real/youzan`) with the fixtures' client id, so it opens.
fn real_youzan(body: &str) -> Vec<u8> {
    body.replace("yzfixtureclient01", "yz-client-1").into_bytes()
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// One payload of a source, named, with the query of its callback URL.
struct Payload {
    name: &'static str,
    payload: Vec<u8>,
    query: Vec<(String, String)>,
    message_id: String,
}

fn payloads(source: Source) -> Vec<Payload> {
    let at = orderhub_fuzz::received_at();
    let p = |name, payload: Vec<u8>, message_id: &str| Payload {
        name,
        payload,
        query: vec![],
        message_id: message_id.to_owned(),
    };
    match source {
        Source::Douyin => vec![
            p(
                "paid",
                fixtures::douyin_push(
                    "101",
                    "7300000000000000101",
                    json!({"p_id": 6921000000001_i64, "pay_time": at.timestamp(), "s_ids": [6921000000011_i64, "SKU-1"]}),
                ),
                "",
            ),
            p(
                "shipped",
                fixtures::douyin_push(
                    "102",
                    "7300000000000000102",
                    json!({"p_id": "6921000000001", "update_time": at.timestamp(),
                        "logistics_msg": {"express_company_id": "shunfeng", "logistics_code": "SF1234567890"}}),
                ),
                "",
            ),
            p(
                "aftersale",
                fixtures::douyin_push(
                    "206",
                    "7300000000000000206",
                    json!({"p_id": "6921000000001", "aftersale_type": 2, "success_time": at.timestamp()}),
                ),
                "",
            ),
            p("test-push", fixtures::douyin_push("0", "7300000000000000000", json!({})), ""),
            // Real shapes (events/real/douyin): sub-order ids, an after-sale naming its case.
            p("real-paid-sub-orders", include_bytes!("../../events/real/douyin/tag-101-trade-paid.json").to_vec(), ""),
            p("real-paid-pending", include_bytes!("../../events/real/douyin/tag-110-trade-pending.json").to_vec(), ""),
            p("real-seller-ship", include_bytes!("../../events/real/douyin/tag-102-seller-ship.json").to_vec(), ""),
            p("real-aftersale", include_bytes!("../../events/real/douyin/tag-200-refund-created.json").to_vec(), ""),
            p(
                "two-messages",
                json!([
                    {"tag": "100", "msg_id": "m-1", "data": json!({"p_id": "6921000000002", "create_time": at.timestamp()}).to_string()},
                    {"tag": "106", "msg_id": "m-2", "data": {"p_id": "6921000000003", "cancel_time": "2026-11-11 10:00:00"}}
                ])
                .to_string()
                .into_bytes(),
                "",
            ),
        ],
        Source::Youzan => vec![
            // Real shapes (events/real/youzan): msg_id, lines, refund pushes mapped by their type
            // (their client id swapped for the fixtures' so they open).
            p("real-paid", real_youzan(include_str!("../../events/real/youzan/trade-buyer-pay-trade-paid.json")), ""),
            p("real-refund-created", real_youzan(include_str!("../../events/real/youzan/refund-buyer-created.json")), ""),
            p("real-refund-success", real_youzan(include_str!("../../events/real/youzan/refund-success.json")), ""),
            p("paid", fixtures::youzan_push("trade_TradePaid", "E20261111000001", "WAIT_SELLER_SEND_GOODS", at.timestamp()), ""),
            p("closed", fixtures::youzan_push("trade_TradeClose", "E20261111000001", "TRADE_CLOSED", at.timestamp()), ""),
            p(
                "refund",
                fixtures::youzan_push("trade_refund_RefundSuccess", "E20261111000002", "SUCCESS", at.timestamp()),
                "",
            ),
            p(
                "test",
                json!({"client_id": "yz-client-1", "id": "t", "type": "trade_TradeCreate", "test": true, "msg": ""})
                    .to_string()
                    .into_bytes(),
                "",
            ),
        ],
        Source::Kuaishou => vec![
            p(
                "paid",
                fixtures::kuaishou_message("ks-30", "KWAISHOP_ORDER_STATUS_CHANGE", "2026111100000001", 30, at.timestamp_millis(), false),
                "",
            ),
            p(
                "refund",
                fixtures::kuaishou_message("ks-r1", "KWAISHOP_REFUND_STATUS_CHANGE", "2026111100000002", 10, at.timestamp_millis(), false),
                "",
            ),
            p(
                "heartbeat",
                fixtures::kuaishou_message("ks-hb", "KWAISHOP_ORDER_STATUS_CHANGE", "0", 0, at.timestamp_millis(), true),
                "",
            ),
            // The real shape of an after-sale push (events/real/kuaishou), for the fixtures' app key.
            p(
                "real-add-refund",
                include_str!("../../events/real/kuaishou/refund-add-plaintext.json")
                    .replace("ks-app-fixture", "ks-app-1")
                    .into_bytes(),
                "",
            ),
        ],
        Source::Kuaidi100 => {
            let order = |id: &str| vec![("order".to_owned(), format!("douyin/{SHOP}/{id}"))];
            let line = |state, sub, text, area| {
                fixtures::kuaidi100_param("shunfeng", "SF1000000001", state, sub, text, "2026-11-11 10:00:00", area)
            };
            vec![
                Payload {
                    name: "picked-up",
                    payload: line("1", "101", "顺丰速运 已收取快件", "120.21,30.25"),
                    query: order("6921000000001"),
                    message_id: String::new(),
                },
                Payload {
                    name: "signed-locker",
                    payload: line("3", "304", "快件已被丰巢智能柜【幸福里2号柜】签收，请凭取件码取件", "120.16,30.28"),
                    query: order("6921000000001"),
                    message_id: String::new(),
                },
                Payload {
                    name: "abort",
                    payload: json!({"status": "abort", "message": "3天查询无记录"}).to_string().into_bytes(),
                    query: order("6921000000001"),
                    message_id: String::new(),
                },
                // Real shapes (events/real/kuaidi100): detailed codes in state and statusCode,
                // area codes and centres, an abort with its lastResult.
                Payload {
                    name: "real-304-station",
                    payload: include_bytes!("../../events/real/kuaidi100/signed-304-station.json").to_vec(),
                    query: order("6921000000001"),
                    message_id: String::new(),
                },
                Payload {
                    name: "real-501-locker",
                    payload: include_bytes!("../../events/real/kuaidi100/locker-501-not-signed.json").to_vec(),
                    query: order("6921000000001"),
                    message_id: String::new(),
                },
                Payload {
                    name: "real-abort",
                    payload: include_bytes!("../../events/real/kuaidi100/abort-no-trace-3-days.json").to_vec(),
                    query: order("6921000000001"),
                    message_id: String::new(),
                },
            ]
        }
        Source::Wechatpay => vec![
            p(
                "paid",
                json!({"mchid": "1900000001", "appid": "wx0000000000000001", "out_trade_no": "mp-000001",
                    "transaction_id": "4200000000202611110000000001", "trade_type": "JSAPI", "trade_state": "SUCCESS",
                    "trade_state_desc": "支付成功", "success_time": "2026-11-11T10:00:00+08:00",
                    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "amount": {"total": 100, "payer_total": 100, "currency": "CNY"}})
                .to_string()
                .into_bytes(),
                "EV-2026111100000001",
            ),
            p(
                "refunded",
                json!({"mchid": "1900000001", "out_trade_no": "mp-000002", "out_refund_no": "R-000002",
                    "refund_id": "50000000002026111100000001", "refund_status": "SUCCESS",
                    "success_time": "2026-11-11T10:05:00+08:00", "amount": {"total": 100, "refund": 100}})
                .to_string()
                .into_bytes(),
                "EV-2026111100000002",
            ),
        ],
        Source::App => vec![
            p(
                "paid",
                fixtures::app_event(
                    "order.status",
                    at,
                    json!({"order_id": "mp-000001", "status": "Paid", "at": at.to_rfc3339(),
                        "promised_ship_at": (at + Duration::hours(24)).to_rfc3339(),
                        "lines": [{"sku": "SKU-TEA-250G", "qty": 2}], "waybill": {"carrier": "shunfeng", "number": "SF1"}}),
                ),
                "msg_2WfGZn2sTcVAbq1sFuVEyYAXXFE",
            ),
            p(
                "refund",
                fixtures::app_event(
                    "order.refund",
                    at,
                    json!({"order_id": "mp-000001", "refund_status": "Succeeded", "kind": "refund_only"}),
                ),
                "msg_refund_1",
            ),
            p(
                "gps",
                fixtures::app_event(
                    "gps.ping",
                    at,
                    json!({"customer": "c-42", "order": format!("douyin/{SHOP}/6921000000001"), "lat": 30.2741, "lng": 120.1551, "accuracy_m": 20.0}),
                ),
                "msg_gps_1",
            ),
            p(
                "address",
                fixtures::app_event(
                    "order.address",
                    at,
                    json!({"order": format!("app/{SHOP}/mp-000001"), "addr_key": "a1b2c3", "district": "西湖区", "lat": 30.27, "lng": 120.15}),
                ),
                "msg_addr_1",
            ),
        ],
        Source::Pdd | Source::Taobao | Source::Jd => vec![],
    }
}

/// The fuzz input for `signed` as raw headers (named with [`HeaderName::Known`] where the
/// name is one).
fn raw_input<'a>(signed: &'a Signed, query: &'a [(String, String)]) -> CallbackInput<'a> {
    CallbackInput {
        signed: false,
        headers: signed
            .headers
            .iter()
            .map(|(name, value)| {
                let name = match KNOWN_HEADERS.iter().position(|k| k == name) {
                    Some(n) => HeaderName::Known(u8::try_from(n).expect("few headers")),
                    None => HeaderName::Other(name.as_str()),
                };
                (name, value.as_str())
            })
            .collect(),
        query: query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        body: &signed.body,
    }
}

/// Checks that `input` encodes to bytes the target reads back as `input`, and that it opens
/// and parses; returns the bytes and the opened payload.
fn check_open(source: Source, input: &CallbackInput<'_>) -> (Vec<u8>, Option<Vec<u8>>) {
    let bytes = encode::callback_input(input);
    let decoded = CallbackInput::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
    assert_eq!(&decoded, input, "{source}: the encoded seed does not read back as written");
    let query = input.query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
    match orderhub_fuzz::open(source, input) {
        Ok(Opened::Message { payload, .. }) => {
            let events = orderhub_fuzz::parse(source, &payload, &query)
                .unwrap_or_else(|e| panic!("{source}: a seed's payload does not parse: {e}"));
            assert!(!events.is_empty());
            (bytes, Some(payload))
        }
        Ok(Opened::Probe { .. }) => (bytes, None),
        Err(refusal) => panic!("{source}: a seed was refused: {refusal}"),
    }
}

/// Opened payloads: source, payload, query, message id.
type OpenedPayloads = Vec<(Source, Vec<u8>, Vec<(String, String)>, String)>;

fn inbound_seed(message: &InboundMessage) -> Vec<u8> {
    let json = serde_json::to_vec(message).expect("serialises");
    let back = orderhub_fuzz::inbound_message(&json).expect("a valid inbound message");
    assert_eq!(&back, message);
    json
}

fn open_and_parse_seeds(source: Source, http: &mut Seeds, first_opened: &mut OpenedPayloads) -> (Seeds, Seeds) {
    let at = orderhub_fuzz::received_at();
    let mut open = Seeds::new();
    let mut parse = Seeds::new();
    for (n, payload) in payloads(source).into_iter().enumerate() {
        // Raw (as the sender sent it), alternately with the current and the previous secret
        // where the source rotates that secret; and the same payload for the harness to sign.
        let shop_secret = if n % 2 == 1 && !matches!(source, Source::Kuaishou | Source::Wechatpay | Source::App) {
            PREVIOUS_SECRET
        } else {
            SECRET
        };
        let message_id = if payload.message_id.is_empty() { "fz-1" } else { payload.message_id.as_str() };
        let signed =
            fixtures::sign(source, &payload.payload, &fixtures::signing_key(source, shop_secret), at, message_id);
        let raw = raw_input(&signed, &payload.query);
        let (bytes, opened) = check_open(source, &raw);
        open.push((format!("{}-raw", payload.name), bytes));
        let mut harness_signed = CallbackInput {
            signed: true,
            headers: vec![],
            query: payload.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            body: &payload.payload,
        };
        if !payload.message_id.is_empty() {
            harness_signed.headers.push((HeaderName::Known(9), payload.message_id.as_str()));
        }
        let (bytes, _) = check_open(source, &harness_signed);
        open.push((format!("{}-signed", payload.name), bytes));
        if let Some(opened) = &opened {
            let seed = if source == Source::Kuaidi100 {
                let input = QueryPayload {
                    query: payload.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                    payload: opened,
                };
                let bytes = encode::query_payload(&input);
                let decoded = QueryPayload::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
                assert_eq!(decoded, input, "kuaidi100: the encoded seed does not read back as written");
                bytes
            } else {
                opened.clone()
            };
            orderhub_fuzz::parse(source, opened, &payload.query).expect("the opened payload parses");
            parse.push((payload.name.to_owned(), seed));
        }
        if n == 0 {
            if let Some(opened) = &opened {
                let id = format!("{source}-{}", payload.name);
                first_opened.push((source, opened.clone(), payload.query.clone(), id));
            }
            http.push((format!("{source}-{}", payload.name), http_event(source, &signed, false)));
            if source == Source::Kuaishou {
                http.push((format!("{source}-{}-base64", payload.name), http_event(source, &signed, true)));
            }
        }
    }
    (open, parse)
}

/// An API Gateway v2 event of a signed callback (optionally with a base64 body), checked.
fn http_event(source: Source, signed: &Signed, base64: bool) -> Vec<u8> {
    let mut event = fixtures::http_event("POST", source.as_str(), SHOP, signed, orderhub_fuzz::received_at());
    if base64 {
        event["body"] = Value::String(base64::engine::general_purpose::STANDARD.encode(&signed.body));
        event["isBase64Encoded"] = Value::Bool(true);
    }
    let bytes = serde_json::to_vec_pretty(&event).expect("serialises");
    let request: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_slice(&bytes).expect("an API Gateway event");
    let incoming = orderhub_fuzz::webhook_verify::incoming(&request, orderhub_fuzz::received_at()).expect("adapts");
    assert_eq!(incoming.body, signed.body, "{source}: the body survives the adapter");
    assert_eq!((incoming.source.as_str(), incoming.shop.as_str()), (source.as_str(), SHOP));
    orderhub_fuzz::http::incoming(&bytes);
    bytes
}
