//! Writes the sample events in `events/` from the fixtures (signed with the test keys in
//! `shared/domain/src/fixtures`): `cargo run -p tests --bin samples [-- --now]`.
//!
//! By default they are signed for 2026-11-11 10:00 Beijing time. WeChat Pay and app callbacks
//! carry a timestamp that must be within 5 minutes of receipt, so those two are answered 401
//! (outside the replay window) later on unless regenerated with `--now` just before use.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use domain::Source;
use domain::testing::fixtures::{self, DayCallback};
use serde_json::{Value, json};

fn write(path: &Path, value: &Value) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")?;
    Ok(())
}

/// One sample callback: sender, file name, payload, query parameters, message id.
type Sample<'a> = (Source, &'a str, Vec<u8>, Vec<(String, String)>, &'a str);

fn sqs_record(id: &str, body: &str, queue: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("rh-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1794362400000", "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1794362400001"},
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws-cn:sqs:cn-north-1:123456789012:{queue}"),
        "awsRegion": "cn-north-1"
    })
}

fn main() -> anyhow::Result<()> {
    let root = tests::stack::root().join("events");
    let now = std::env::args().any(|a| a == "--now");
    let at: DateTime<Utc> =
        if now { Utc::now() } else { Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default() };
    let shop = "shop-1001";
    let secret = "demo-secret";
    // One callback per source, as the sender would post it.
    let callbacks: Vec<Sample<'_>> = vec![
        (Source::Douyin, "douyin-refund-success", fixtures::douyin_push("206", "7311111111111111206", json!({"p_id": "6921000000000001", "aftersale_id": "7300000000000001", "aftersale_type": 2, "success_time": at.timestamp()})), vec![], "7311111111111111206"),
        (Source::Youzan, "youzan-trade-paid", fixtures::youzan_push("trade_TradePaid", "E20261111100000001", "WAIT_SELLER_SEND_GOODS", at.timestamp()), vec![], ""),
        (Source::Kuaishou, "kuaishou-order-paid", fixtures::kuaishou_message("ks-20261111-0001", "KWAISHOP_ORDER_STATUS_CHANGE", "2026111100000001", 30, at.timestamp_millis(), false), vec![], ""),
        (Source::Kuaidi100, "kuaidi100-signed-at-station", fixtures::kuaidi100_param("shunfeng", "SF1234567890123", "3", "304", "快件已存放至【菜鸟驿站(幸福里店)】，请凭取货码取件", "2026-11-11 09:58:00", "120.1700,30.2900"), vec![("order".into(), "douyin/shop-1001/6921000000000002".into())], ""),
        (Source::Wechatpay, "wechatpay-payment-success", json!({"mchid": "1900000001", "appid": "wx0000000000000001", "out_trade_no": "mp-20261111-0001", "transaction_id": "4200002026111100000001", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "success_time": at.to_rfc3339(), "amount": {"total": 2990, "currency": "CNY"}}).to_string().into_bytes(), vec![], "EV-2026111100000001"),
        (Source::App, "app-sign-confirmed", fixtures::app_event("sign.confirmed", at, json!({"customer": "cust-0001", "order": "douyin/shop-1001/6921000000000002", "at": at.to_rfc3339()})), vec![], "msg_2026111100000001"),
    ];
    let mut inbound = Vec::new();
    for (source, name, payload, query, id) in &callbacks {
        let mut signed = fixtures::sign(*source, payload, &fixtures::signing_key(*source, secret), at, id);
        signed.query.clone_from(query);
        write(
            &root.join(format!("webhook-verify/{name}.json")),
            &fixtures::http_event("POST", source.as_str(), shop, &signed, at),
        )?;
        // The same callback as status-normalize receives it from the inbound queue.
        let message = DayCallback {
            source: *source,
            shop: shop.into(),
            payload: payload.clone(),
            query: query.clone(),
            message_id: format!("sample-{name}"),
            sent_at: at,
        }
        .inbound();
        inbound.push(sqs_record(
            &format!("00000000-0000-4000-8000-{:012}", inbound.len() + 1),
            &serde_json::to_string(&message)?,
            "orderhub-InboundQueue",
        ));
    }
    let tampered = {
        let mut signed = fixtures::sign(Source::Youzan, &callbacks[1].2, secret, at, "");
        signed.body.extend_from_slice(b" ");
        fixtures::http_event("POST", "youzan", shop, &signed, at)
    };
    write(&root.join("webhook-verify/youzan-tampered.json"), &tampered)?;
    write(
        &root.join("webhook-verify/unknown-source.json"),
        &fixtures::http_event(
            "POST",
            "tiktok",
            shop,
            &fixtures::Signed { headers: vec![], body: b"{}".to_vec(), query: vec![] },
            at,
        ),
    )?;
    write(
        &root.join("webhook-verify/replay-quarantine.json"),
        &json!({"replay": {"source": "douyin", "shop": shop, "from": "2026-11-11T00:00:00Z", "to": "2026-11-12T00:00:00Z"}}),
    )?;
    write(&root.join("status-normalize/sqs-batch-every-source.json"), &json!({"Records": inbound}))?;
    // The trust queue receives the event bus's envelope of OrderStatusChanged to Signed.
    let signed_event = json!({
        "version": "0", "id": "6f1c0e4b-0000-4000-8000-000000000001", "detail-type": "OrderStatusChanged", "source": "orderhub",
        "account": "123456789012", "time": at.to_rfc3339(), "region": "cn-north-1", "resources": [],
        "detail": {"key": {"source": "douyin", "shop": shop, "order_id": "6921000000000002"}, "from": "OutForDelivery", "to": "Signed", "stage": "Signed",
                   "event_time": at.to_rfc3339(), "applied_at": at.to_rfc3339(), "provenance": "Callback"}
    });
    write(
        &root.join("signin-trust-check/sqs-signed.json"),
        &json!({"Records": [sqs_record("00000000-0000-4000-8000-000000000101", &signed_event.to_string(), "orderhub-TrustQueue")]}),
    )?;
    write(
        &root.join("signin-trust-check/evidence.json"),
        &json!({"evidence": {"order": "douyin/shop-1001/6921000000000002"}}),
    )?;
    write(
        &root.join("signin-trust-check/recheck-orders.json"),
        &json!({"recheck": {"orders": ["douyin/shop-1001/6921000000000002"]}}),
    )?;
    write(
        &root.join("refund-dual-check/release-orders.json"),
        &json!({"release": {"orders": ["douyin/shop-1001/6921000000000001", "douyin/shop-1001/6921000000000003"]}}),
    )?;
    write(
        &root.join("refund-dual-check/recheck-orders.json"),
        &json!({"recheck": {"orders": ["douyin/shop-1001/6921000000000001"]}}),
    )?;
    println!("sample events written under {} (signed for {at})", root.display());
    Ok(())
}
