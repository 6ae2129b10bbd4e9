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
    notify_samples(&root, at, shop)?;
    println!("sample events written under {} (signed for {at})", root.display());
    Ok(())
}

/// notify's samples: one EventBridge envelope per finding kind its rules route (detail with the
/// stable `event_id`, as the bus adapter publishes it), a CloudWatch alarm state change (the shape
/// of docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html, our
/// own names and values), a batch of the notify queue, and every ops event.
fn notify_samples(root: &Path, at: DateTime<Utc>, shop: &str) -> anyhow::Result<()> {
    use chrono::{Duration, NaiveDate};
    use domain::app::sign_check::Notice;
    use domain::model::callback::Rejection;
    use domain::model::domain_event::DomainEvent;
    use domain::model::health::{Indicator, ReportKind, Scope};
    use domain::model::status::RawStatus;
    use domain::{Lifecycle, OrderKey};

    let key = |id: &str| OrderKey::parse(Source::Douyin, shop, id);
    let findings: Vec<(&str, DomainEvent)> = vec![
        (
            "sla-breached",
            DomainEvent::SlaBreached {
                key: key("6921000000000004")?,
                state: Lifecycle::Paid,
                since: at - Duration::minutes(45),
                limit_minutes: 30,
            },
        ),
        (
            "channel-silent",
            DomainEvent::ChannelSilent {
                channel: Source::Youzan,
                silent_since: at - Duration::minutes(40),
                expected_per_slot: 11.5,
            },
        ),
        ("channel-recovered", DomainEvent::ChannelRecovered { channel: Source::Youzan, silent_for_minutes: 50 }),
        (
            "callback-missing",
            DomainEvent::CallbackMissing {
                key: key("6921000000000001")?,
                hint: "refund confirmed by the order query API; no callback arrived".into(),
            },
        ),
        (
            "token-refresh-failed",
            DomainEvent::TokenRefreshFailed {
                source: Source::Douyin,
                shop: shop.into(),
                reason: "refresh token expired".into(),
            },
        ),
        (
            "health-threshold-breached",
            DomainEvent::HealthThresholdBreached {
                indicator: Indicator::OnTimeShipping,
                channel: Scope::Channel(Source::Douyin),
                value: 0.962,
                threshold: 0.985,
                period: "2026-11-10".into(),
                kind: ReportKind::Daily,
            },
        ),
        (
            "unmapped-status",
            DomainEvent::UnmappedStatus {
                key: key("6921000000000005")?,
                raw: RawStatus::new("order_status", "999"),
                day: None,
            },
        ),
        (
            "webhook-rejected",
            DomainEvent::WebhookRejected {
                source: Source::Youzan,
                shop: Some(shop.into()),
                rejection: Rejection::Unverified,
                reason: "signature does not match the current or previous secret".into(),
                at,
            },
        ),
        (
            "orders-missing",
            DomainEvent::OrdersMissing {
                source: Source::Pdd,
                shop: "pdd-shop-2001".into(),
                day: NaiveDate::from_ymd_opt(2026, 11, 10).unwrap_or_default(),
                missing: 3,
                platform_count: 1_204,
                hub_count: 1_201,
                channel: "pull".into(),
            },
        ),
        (
            "token-expiring",
            DomainEvent::TokenExpiring {
                source: Source::Taobao,
                shop: "tb-shop-3001".into(),
                token: "refresh_token".into(),
                expires_at: at + Duration::days(3),
            },
        ),
    ];
    for (n, (name, event)) in findings.iter().enumerate() {
        write(
            &root.join(format!("notify/finding-{name}.json")),
            &json!({
                "version": "0", "id": format!("7a2d0c11-0000-4000-8000-{:012}", n + 1), "detail-type": event.detail_type(),
                "source": "orderhub", "account": "123456789012", "time": at.to_rfc3339(), "region": "cn-north-1",
                "resources": [], "detail": event.detail()
            }),
        )?;
    }
    write(
        &root.join("notify/alarm-state-change.json"),
        &json!({
            "version": "0", "id": "7a2d0c11-0000-4000-8000-000000000100", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": "123456789012", "time": at.to_rfc3339(), "region": "cn-north-1",
            "resources": ["arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:orderhub-local-InboundDLQ-depth"],
            "detail": {
                "alarmName": "orderhub-local-InboundDLQ-depth",
                "state": {"value": "ALARM", "reason": "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).", "timestamp": "2026-11-11T02:00:00.000+0000"},
                "previousState": {"value": "OK", "reason": "Threshold Crossed: 1 datapoint [0.0] was not greater than the threshold (0.0).", "timestamp": "2026-11-11T01:00:00.000+0000"},
                "configuration": {"description": "Messages in the inbound dead-letter queue"}
            }
        }),
    )?;
    let notice = Notice {
        notice_id: format!("douyin/{shop}/6921000000000002-trust-1794362400000"),
        order: key("6921000000000002")?,
        customer: Some("cust-0001".into()),
        template: "parcel_at_station".into(),
        text: "您的包裹已在菜鸟驿站(幸福里店)，请及时领取".into(),
    };
    write(
        &root.join("notify/sqs-notice.json"),
        &json!({"Records": [sqs_record("00000000-0000-4000-8000-000000000201", &serde_json::to_string(&notice)?, "orderhub-NotifyQueue")]}),
    )?;
    write(&root.join("notify/ops-flush.json"), &json!({"flush": "all"}))?;
    write(&root.join("notify/ops-ack.json"), &json!({"ack": {"id": findings[1].1.id(), "by": "值班-王"}}))?;
    write(&root.join("notify/ops-redrive.json"), &json!({"redrive": {"max": 50}}))?;
    write(
        &root.join("notify/ops-resend-notice.json"),
        &json!({"resend_notice": {"notice_id": notice.notice_id, "checked_not_delivered": true}}),
    )?;
    Ok(())
}
