//! Benchmark of one callback per source: `sources::open` (verify the signature, decrypt where
//! the source encrypts) then `sources::parse` of what opened. Target: ≤ 20 µs per callback.
//! WeChat Pay is the exception by construction: an RSA-2048 signature check (and parsing the
//! platform key's PEM, which `open` does per callback) costs more than that on its own.
//!
//! Run with `cargo bench -p domain --bench verify`.
//!
//! The callbacks are signed here with the public signing functions of `domain::sources::<source>::sign` and the fixture
//! test keys, exactly as `domain::testing::fixtures::sign` signs them, so the bench needs no feature.

// A bench is test code: a broken fixture should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use domain::model::callback::RawCallback;
use domain::model::ids::{ShopId, Source};
use domain::sources::ShopSecret;
use domain::sources::app::sign::standard_webhooks_sign;
use domain::sources::douyin::sign::douyin_event_sign;
use domain::sources::kuaidi100::sign::kuaidi100_sign;
use domain::sources::kuaishou::sign::kuaishou_encrypt;
use domain::sources::wechatpay::sign::{wechatpay_encrypt_resource, wechatpay_sign};
use domain::sources::youzan::sign::youzan_event_sign;
use domain::sources::{self, Opened};
use serde_json::json;

const SHOP: &str = "shop-1001";
const SECRET: &str = "bench-shop-secret";
const DOUYIN_APP_KEY: &str = "7123456789012345678";
const YOUZAN_CLIENT_ID: &str = "yz-client-1";
const KUAISHOU_APP_KEY: &str = "ks-app-1";
/// The fixture keys (`domain::testing::fixtures`): test keys, never used anywhere else.
const KUAISHOU_MESSAGE_KEY: &str = "b3JkZXJodWIta3dhaS0xNg==";
const WECHATPAY_PRIVATE_KEY: &str = include_str!("../src/testing/fixtures/wechatpay_test_private_key.pem");
const WECHATPAY_PUBLIC_KEY: &str = include_str!("../src/testing/fixtures/wechatpay_test_public_key.pem");
const WECHATPAY_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A72";
const WECHATPAY_API_V3_KEY: &str = "orderhub-test-apiv3-key-32-bytes";
const APP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn callback(source: Source, headers: Vec<(String, String)>, body: Vec<u8>, query: &[(&str, &str)]) -> RawCallback {
    RawCallback {
        source,
        shop: ShopId::parse(SHOP).unwrap(),
        received_at: received_at(),
        query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        headers,
        body,
    }
}

/// One realistic signed callback of `source`, and the shop's secret.
fn signed(source: Source) -> (RawCallback, ShopSecret) {
    let at = received_at();
    // The shop's secret parameter as stored, loaded by the source's own module.
    let mut secret = serde_json::json!({ "secret": SECRET });
    let cb = match source {
        Source::Douyin => {
            // A paid order with two SKUs: what a busy shop receives most.
            let data = json!({"p_id": "6921000000001", "pay_time": at.timestamp(), "order_status": 2,
                "s_ids": [6921000000011_i64, 6921000000012_i64], "biz": 2, "pay_type": 1, "shop_id": 88_123_456});
            let body = json!([{"tag": "101", "msg_id": "7300000000000000101", "data": data.to_string()}])
                .to_string()
                .into_bytes();
            secret["app_key"] = DOUYIN_APP_KEY.into();
            let sign = douyin_event_sign(DOUYIN_APP_KEY, &body, SECRET);
            let h = headers(&[("app-id", DOUYIN_APP_KEY), ("event-sign", &sign), ("content-type", "application/json")]);
            callback(source, h, body, &[])
        }
        Source::Youzan => {
            let version = at.timestamp();
            let msg = json!({"tid": "E20261111000001", "update_time": version, "status": "WAIT_SELLER_SEND_GOODS"});
            let body = json!({"client_id": YOUZAN_CLIENT_ID, "id": "E20261111000001", "kdt_id": 10_086,
                "kdt_name": "测试店铺", "mode": 1, "sendCount": 0, "status": "WAIT_SELLER_SEND_GOODS", "test": false,
                "type": "trade_TradePaid", "version": version,
                "msg": form_urlencoded::byte_serialize(msg.to_string().as_bytes()).collect::<String>()})
            .to_string()
            .into_bytes();
            secret["app_key"] = YOUZAN_CLIENT_ID.into();
            let sign = youzan_event_sign(YOUZAN_CLIENT_ID, &body, SECRET);
            let h = headers(&[("client-id", YOUZAN_CLIENT_ID), ("event-sign", &sign), ("event-type", "trade")]);
            callback(source, h, body, &[])
        }
        Source::Kuaishou => {
            let ms = at.timestamp_millis();
            let plain = json!({"eventId": "ev-ks-30", "msgId": "ks-30", "bizId": "2026111100000001",
                "appKey": KUAISHOU_APP_KEY, "event": "KWAISHOP_ORDER_STATUS_CHANGE",
                "info": json!({"oid": "2026111100000001", "status": 30, "updateTime": ms}).to_string(),
                "status": 0, "createTime": ms, "updateTime": ms, "test": false})
            .to_string();
            secret["app_key"] = KUAISHOU_APP_KEY.into();
            secret["message_key"] = KUAISHOU_MESSAGE_KEY.into();
            let body = kuaishou_encrypt(KUAISHOU_MESSAGE_KEY, plain.as_bytes()).unwrap().into_bytes();
            callback(source, headers(&[("content-type", "text/plain")]), body, &[])
        }
        Source::Kuaidi100 => {
            let param = json!({"status": "polling", "billstatus": "check", "message": "",
                "lastResult": {"message": "ok", "nu": "SF1000000001", "ischeck": "1", "com": "shunfeng",
                    "status": "200", "state": "3", "data": [
                        {"time": "2026-11-11 10:00:00", "ftime": "2026-11-11 10:00:00",
                         "context": "快件已被丰巢智能柜【幸福里2号柜】签收，请凭取件码取件", "status": "签收",
                         "statusCode": "304", "areaCenter": "120.16,30.28"},
                        {"time": "2026-11-11 08:12:00", "ftime": "2026-11-11 08:12:00",
                         "context": "快件交给张三，正在派送途中", "status": "派件", "statusCode": "501",
                         "areaCenter": "120.16,30.28"},
                        {"time": "2026-11-10 22:40:00", "ftime": "2026-11-10 22:40:00",
                         "context": "快件到达【杭州转运中心】", "status": "在途", "statusCode": "1002",
                         "areaCenter": "120.30,30.30"}]}})
            .to_string();
            let sign = kuaidi100_sign(&param, SECRET);
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("param", &param)
                .append_pair("sign", &sign)
                .finish()
                .into_bytes();
            let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
            callback(source, h, body, &[("order", "douyin/shop-1001/6921000000001")])
        }
        Source::Wechatpay => {
            let resource = json!({"mchid": "1900000001", "appid": "wx0000000000000001", "out_trade_no": "mp-000001",
                "transaction_id": "4200000000202611110000000001", "trade_type": "JSAPI", "trade_state": "SUCCESS",
                "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": "2026-11-11T10:00:00+08:00",
                "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"}})
            .to_string();
            let nonce = "fdasflkja484";
            let ciphertext =
                wechatpay_encrypt_resource(WECHATPAY_API_V3_KEY.as_bytes(), nonce, "transaction", resource.as_bytes())
                    .unwrap();
            let body = json!({"id": "EV-2026111100000001", "create_time": at.to_rfc3339(),
                "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource", "summary": "支付成功",
                "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                    "associated_data": "transaction", "original_type": "transaction", "nonce": nonce}})
            .to_string()
            .into_bytes();
            let timestamp = at.timestamp().to_string();
            let signature = wechatpay_sign(WECHATPAY_PRIVATE_KEY, &timestamp, "n-bench", &body).unwrap();
            secret["api_v3_key"] = WECHATPAY_API_V3_KEY.into();
            secret["platform_keys"] = serde_json::json!({ WECHATPAY_SERIAL: WECHATPAY_PUBLIC_KEY });
            let h = headers(&[
                ("wechatpay-timestamp", &timestamp),
                ("wechatpay-nonce", "n-bench"),
                ("wechatpay-signature", &signature),
                ("wechatpay-serial", WECHATPAY_SERIAL),
                ("content-type", "application/json"),
            ]);
            callback(source, h, body, &[])
        }
        Source::App => {
            let body = json!({"type": "order.status", "timestamp": at.to_rfc3339(), "data": {
                "order_id": "mp-000001", "status": "Paid", "at": at.to_rfc3339(),
                "promised_ship_at": "2026-11-12T02:00:00Z",
                "lines": [{"sku": "SKU-TEA-250G", "qty": 2}, {"sku": "SKU-CUP-01", "qty": 1}]}})
            .to_string()
            .into_bytes();
            secret["secret"] = APP_SECRET.into();
            let id = "msg_2WfGZn2sTcVAbq1sFuVEyYAXXFE";
            let timestamp = at.timestamp();
            let signature = standard_webhooks_sign(APP_SECRET, id, timestamp, &body).unwrap();
            let h = headers(&[
                ("webhook-id", id),
                ("webhook-timestamp", &timestamp.to_string()),
                ("webhook-signature", &signature),
                ("content-type", "application/json"),
            ]);
            callback(source, h, body, &[])
        }
        Source::Pdd | Source::Taobao | Source::Jd => panic!("{source} sends no callbacks"),
    };
    let secret = sources::module(source).load_secret(&secret.to_string()).unwrap();
    (cb, secret)
}

/// What webhook-verify and status-normalize do with one callback, end to end in memory.
fn open_and_parse(cb: &RawCallback, secret: &ShopSecret) -> usize {
    match sources::open(cb, secret) {
        Ok(Opened::Message { payload, .. }) => {
            sources::parse(cb.source, &cb.shop, &payload, &cb.query).map(|events| events.len()).unwrap()
        }
        other => panic!("{}: the bench callback did not open: {other:?}", cb.source),
    }
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("open+parse");
    for source in [Source::Douyin, Source::Youzan, Source::Kuaishou, Source::Kuaidi100, Source::Wechatpay, Source::App]
    {
        let (cb, secret) = signed(source);
        assert_eq!(open_and_parse(&cb, &secret), 1, "{source}: one event per bench callback");
        group.bench_function(source.as_str(), |b| b.iter(|| open_and_parse(black_box(&cb), black_box(&secret))));
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
