//! The platform query clients (`adapters::platform`) against the fake gateways
//! (`tests::fake_platform`): signing, answer mapping, error mapping, timeouts and token refresh,
//! for Douyin, Pinduoduo and Taobao. No AWS needed: `cargo test -p tests --test aws platform::`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::platform::{ClientConfig, DouyinClient, PddClient, TaobaoClient, TaobaoSignMethod};
use chrono::Utc;
use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::lifecycle::RefundState;
use domain::model::status::StatusMapping;
use domain::ports::platform::{Credentials, PlatformQuery, QueryError, RefundAnswer};
use domain::ports::secrets::Secret;
use domain::sources::map_status;
use tests::fake_platform::{FakeConfig, FakePlatform, Platform, Reply};

/// The client timeout of these tests: short, so a delayed answer is a timeout quickly.
const TIMEOUT: Duration = Duration::from_millis(300);

fn source(platform: Platform) -> Source {
    match platform {
        Platform::Douyin => Source::Douyin,
        Platform::Pdd => Source::Pdd,
        Platform::Taobao => Source::Taobao,
    }
}

fn order_id(platform: Platform) -> &'static str {
    match platform {
        Platform::Douyin => "4781320682406083640",
        Platform::Pdd => "240101-123456789012345",
        Platform::Taobao => "3456789012345678901",
    }
}

fn key(platform: Platform, order_id: &str) -> OrderKey {
    OrderKey::parse(source(platform), "shop-1", order_id).unwrap()
}

fn shop() -> ShopId {
    ShopId::parse("shop-1").unwrap()
}

/// The field whose code decides the refund state (the one a callback would carry).
fn decisive_field(platform: Platform) -> &'static str {
    match platform {
        Platform::Douyin => "after_sale_status",
        Platform::Pdd => "after_sales_status",
        Platform::Taobao => "refund_status",
    }
}

fn credentials(config: &FakeConfig) -> Credentials {
    Credentials {
        app_key: config.app_key.clone(),
        app_secret: Secret::new(config.app_secret.clone()),
        access_token: Secret::new(config.access_token.clone()),
        refresh_token: Some(Secret::new(config.refresh_token.clone())),
    }
}

fn client(fake: &FakePlatform, timeout: Duration) -> Arc<dyn PlatformQuery> {
    let config = ClientConfig::new(&fake.base_url()).unwrap().with_timeout(timeout);
    match fake.config().platform {
        Platform::Douyin => Arc::new(DouyinClient::new(config).unwrap()),
        Platform::Pdd => Arc::new(PddClient::new(config).unwrap()),
        Platform::Taobao => Arc::new(TaobaoClient::new(config, TaobaoSignMethod::HmacMd5).unwrap()),
    }
}

struct Case {
    platform: Platform,
    fake: FakePlatform,
    client: Arc<dyn PlatformQuery>,
    credentials: Credentials,
}

impl Case {
    async fn start(platform: Platform) -> Self {
        let fake = FakePlatform::start(FakeConfig::new(platform)).await;
        let client = client(&fake, TIMEOUT);
        let credentials = credentials(&fake.config());
        Case { platform, fake, client, credentials }
    }

    async fn query(&self, reply: Reply) -> Result<RefundAnswer, QueryError> {
        let order = order_id(self.platform);
        self.fake.script(order, reply);
        self.client.refund_status(&key(self.platform, order), &self.credentials).await
    }
}

fn codes(answer: &RefundAnswer) -> Vec<String> {
    answer.all_statuses().iter().map(|(status, _)| status.to_string()).collect()
}

/// The refund state the answer's code of `field` maps to, as a callback's would.
fn refund_state(platform: Platform, answer: &RefundAnswer, field: &str) -> Option<RefundState> {
    let (status, _) = answer.all_statuses().into_iter().find(|(s, _)| s.field == field)?;
    match map_status(source(platform), &status.field, &status.code) {
        StatusMapping::Mapped(target) => target.refund,
        _ => None,
    }
}

async fn success_maps_to_succeeded(platform: Platform) {
    let case = Case::start(platform).await;
    let before = Utc::now();
    let answer = case.query(Reply::RefundSucceeded).await.unwrap();
    let expected: &[&str] = match platform {
        Platform::Douyin => &["order_status=4", "main_status=22", "after_sale_status=12", "refund_status=3"],
        Platform::Pdd => &["after_sales_status=10", "refund_status=4"],
        Platform::Taobao => &["trade_status=TRADE_CLOSED", "refund_status=SUCCESS"],
    };
    assert_eq!(codes(&answer), expected);
    // Every code that speaks of the refund says it succeeded.
    for (status, at) in answer.all_statuses() {
        if let StatusMapping::Mapped(target) = map_status(source(platform), &status.field, &status.code)
            && let Some(refund) = target.refund
        {
            assert_eq!(refund, RefundState::Succeeded, "{status}");
        }
        let at = at.expect("the platform's time of the state");
        assert!((at - before).num_seconds().abs() <= 2, "{status} at {at}");
    }
    assert_eq!(refund_state(platform, &answer, decisive_field(platform)), Some(RefundState::Succeeded));
    assert_eq!(refund_state(platform, &answer, "refund_status"), Some(RefundState::Succeeded));
    match platform {
        Platform::Douyin => assert_eq!(answer.any_kind(), Some(domain::model::lifecycle::RefundKind::RefundOnly)),
        Platform::Taobao => {
            assert_eq!(
                answer.cases.first().and_then(|c| c.refund_id.as_deref()),
                Some("200001"),
                "the refund's own case"
            )
        }
        Platform::Pdd => {}
    }
    assert_eq!(case.fake.requests(order_id(platform)), 1);
    assert!(case.fake.rejections().is_empty(), "{:?}", case.fake.rejections());
}

async fn pending_maps_to_requested(platform: Platform) {
    let case = Case::start(platform).await;
    let answer = case.query(Reply::RefundPending).await.unwrap();
    assert_eq!(refund_state(platform, &answer, decisive_field(platform)), Some(RefundState::Requested));
}

async fn closed_maps_to_closed(platform: Platform) {
    let case = Case::start(platform).await;
    let answer = case.query(Reply::RefundClosed).await.unwrap();
    assert_eq!(refund_state(platform, &answer, decisive_field(platform)), Some(RefundState::Closed));
    if platform == Platform::Douyin {
        // The buyer withdrew: refund_status stays "pending" while the after-sale says closed.
        assert!(codes(&answer).contains(&"refund_status=1".to_owned()));
    }
}

async fn platform_error_keeps_its_code(platform: Platform) {
    let case = Case::start(platform).await;
    let long = format!("系统繁忙 {}", "x".repeat(400));
    let (code, sub_code, expected) = match platform {
        Platform::Douyin => ("50002", Some("isv.business-failed:20004"), "50002/isv.business-failed:20004"),
        Platform::Pdd => ("52103", None, "52103"),
        Platform::Taobao => ("15", Some("isp.remote-service-error"), "15/isp.remote-service-error"),
    };
    let reply = Reply::Error { code: code.into(), sub_code: sub_code.map(Into::into), message: long };
    match case.query(reply).await {
        Err(QueryError::Platform { code, message }) => {
            assert_eq!(code, expected);
            assert!(message.starts_with("系统繁忙 xxx"), "{message}");
            assert_eq!(message.chars().count(), 200, "trimmed to 200 characters");
        }
        other => panic!("expected a platform error, got {other:?}"),
    }
}

async fn token_expired(platform: Platform) {
    let case = Case::start(platform).await;
    assert_eq!(case.query(Reply::TokenExpired).await, Err(QueryError::TokenExpired));
    // A token the platform does not know (revoked, or replaced by a refresh) is the same.
    let mut stale = case.credentials.clone();
    stale.access_token = Secret::new("some-old-token");
    case.fake.script(order_id(platform), Reply::RefundSucceeded);
    let error = case.client.refund_status(&key(platform, order_id(platform)), &stale).await;
    assert_eq!(error, Err(QueryError::TokenExpired));
    assert_eq!(case.fake.rejections(), ["access token"]);
}

async fn rate_limited(platform: Platform) {
    let case = Case::start(platform).await;
    let expected = if platform == Platform::Taobao { Some(3) } else { None };
    assert_eq!(
        case.query(Reply::RateLimited { ban_s: Some(3) }).await,
        Err(QueryError::RateLimited { retry_after_s: expected })
    );
    assert_eq!(
        case.query(Reply::TooManyRequests { retry_after_s: Some(7) }).await,
        Err(QueryError::RateLimited { retry_after_s: Some(7) })
    );
    assert_eq!(
        case.query(Reply::TooManyRequests { retry_after_s: None }).await,
        Err(QueryError::RateLimited { retry_after_s: None })
    );
    assert!(QueryError::RateLimited { retry_after_s: None }.is_transient());
}

async fn unknown_order_is_not_found(platform: Platform) {
    let case = Case::start(platform).await;
    let unknown = key(platform, "999999999");
    assert_eq!(case.client.refund_status(&unknown, &case.credentials).await, Err(QueryError::NotFound));
    assert_eq!(case.query(Reply::NotFound).await, Err(QueryError::NotFound));
}

async fn wrong_app_secret_is_refused_by_the_fake(platform: Platform) {
    let case = Case::start(platform).await;
    case.fake.script(order_id(platform), Reply::RefundSucceeded);
    let mut wrong = case.credentials.clone();
    wrong.app_secret = Secret::new("not-the-app-secret");
    let error = case.client.refund_status(&key(platform, order_id(platform)), &wrong).await.unwrap_err();
    let expected = match platform {
        Platform::Douyin => "40003/isv.signature-invalid",
        Platform::Pdd => "20004",
        Platform::Taobao => "25",
    };
    assert!(matches!(&error, QueryError::Platform { code, .. } if code == expected), "{error:?}");
    assert_eq!(case.fake.rejections(), ["signature"]);
    assert_eq!(case.fake.requests(order_id(platform)), 0, "refused before the order was looked at");
    let text = format!("{error} {error:?}");
    for secret in ["not-the-app-secret", case.credentials.access_token.expose(), case.credentials.app_secret.expose()] {
        assert!(!text.contains(secret), "{text}");
    }
    // The right secret passes the same check.
    assert!(case.query(Reply::RefundSucceeded).await.is_ok());
}

async fn slow_answer_is_a_timeout(platform: Platform) {
    let case = Case::start(platform).await;
    case.fake.delay(order_id(platform), Duration::from_secs(1));
    let started = Instant::now();
    assert_eq!(case.query(Reply::RefundSucceeded).await, Err(QueryError::Timeout));
    let took = started.elapsed();
    assert!(took >= TIMEOUT && took < Duration::from_millis(900), "{took:?}");
    assert!(QueryError::Timeout.is_transient());
}

async fn garbage_is_malformed(platform: Platform) {
    let case = Case::start(platform).await;
    assert!(matches!(case.query(Reply::Garbage).await, Err(QueryError::Malformed(_))));
}

async fn refresh_rotates_the_tokens(platform: Platform) {
    let case = Case::start(platform).await;
    let before = Utc::now();
    let token = case.client.refresh_token(&shop(), &case.credentials).await.unwrap();
    assert_ne!(token.access_token, case.credentials.access_token);
    assert_eq!(token.access_token.expose(), case.fake.config().access_token);
    assert_eq!(token.refresh_token.as_ref().map(Secret::expose), Some(case.fake.config().refresh_token.as_str()));
    let lifetime = (token.expires_at - before).num_seconds();
    assert!((604_790..=604_810).contains(&lifetime), "expires in {lifetime} s");
    assert_eq!(case.fake.refresh_requests(), 1);

    // The old token is now refused; the new one works.
    assert_eq!(case.query(Reply::RefundSucceeded).await, Err(QueryError::TokenExpired));
    let renewed = Credentials {
        access_token: token.access_token.clone(),
        refresh_token: token.refresh_token.clone(),
        ..case.credentials.clone()
    };
    let answer = case.client.refund_status(&key(platform, order_id(platform)), &renewed).await.unwrap();
    assert_eq!(refund_state(platform, &answer, decisive_field(platform)), Some(RefundState::Succeeded));
    // The spent refresh token cannot be used twice.
    assert!(case.client.refresh_token(&shop(), &case.credentials).await.is_err());
}

async fn refresh_failure_is_an_error(platform: Platform) {
    let case = Case::start(platform).await;
    case.fake.fail_refresh(true);
    let error = case.client.refresh_token(&shop(), &case.credentials).await.unwrap_err();
    assert!(matches!(error, QueryError::Platform { .. }), "{error:?}");
    assert!(!error.is_transient(), "a failed refresh needs someone: alert");
    assert!(!format!("{error:?}").contains(case.credentials.refresh_token.as_ref().unwrap().expose()));
    assert_eq!(case.fake.refreshes(), 0);

    let mut none = case.credentials.clone();
    none.refresh_token = None;
    assert!(matches!(
        case.client.refresh_token(&shop(), &none).await,
        Err(QueryError::Platform { code, .. }) if code == "no_refresh_token"
    ));
    assert_eq!(case.fake.refresh_requests(), 1, "nothing sent without a refresh token");
}

async fn concurrent_queries_are_counted_per_order(platform: Platform) {
    let case = Case::start(platform).await;
    let order = order_id(platform);
    case.fake.script(order, Reply::RefundPending);
    case.fake.delay(order, Duration::from_millis(100));
    let key = key(platform, order);
    let queries = (0..6).map(|_| case.client.refund_status(&key, &case.credentials));
    let answers = futures::future::join_all(queries).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(case.fake.requests(order), 6);
    assert!(case.fake.max_concurrent(order) > 1, "the client does not serialise queries");
    assert_eq!(case.fake.requests("other-order"), 0);
}

/// Raw requests missing the app key, then the timestamp, get the platform's own refusals.
async fn the_fake_refuses_a_request_without_app_key_or_timestamp(platform: Platform) {
    let case = Case::start(platform).await;
    let config = case.fake.config();
    let http = reqwest::Client::new();
    let send = |params: Vec<(&str, String)>| {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            form.append_pair(k, v);
        }
        let encoded = form.finish();
        let request = match platform {
            // Douyin's system parameters are in the query string, the body is param_json.
            Platform::Douyin => http
                .post(format!("{}/order/orderDetail?{encoded}", case.fake.base_url()))
                .body(r#"{"shop_order_id":"1"}"#),
            _ => http
                .post(case.fake.base_url())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encoded),
        };
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let now = Utc::now().timestamp().to_string();
    let (app_key_param, method_param) = match platform {
        Platform::Douyin => ("app_key", ("method", "order.orderDetail")),
        Platform::Pdd => ("client_id", ("type", "pdd.order.information.get")),
        Platform::Taobao => ("app_key", ("method", "taobao.trade.fullinfo.get")),
    };
    let no_key =
        send(vec![("timestamp", now.clone()), (method_param.0, method_param.1.into()), ("sign", "AB".into())]).await;
    let no_time = send(vec![
        (app_key_param, config.app_key.clone()),
        (method_param.0, method_param.1.into()),
        ("sign", "AB".into()),
    ])
    .await;
    let code = |body: &serde_json::Value| match platform {
        Platform::Douyin => format!("{}/{}", body["code"], body["sub_code"].as_str().unwrap()),
        Platform::Pdd => body["error_response"]["error_code"].to_string(),
        Platform::Taobao => body["error_response"]["code"].to_string(),
    };
    let (expected_no_key, expected_no_time) = match platform {
        Platform::Douyin => ("40001/isv.app-id-missing", "40003/isv.timestamp-invalid"),
        Platform::Pdd => ("10000", "10000"),
        Platform::Taobao => ("28", "30"),
    };
    assert_eq!(code(&no_key), expected_no_key, "{no_key}");
    assert_eq!(code(&no_time), expected_no_time, "{no_time}");
    let expected_rejections = match platform {
        Platform::Pdd => ["missing client_id", "timestamp"],
        _ => ["missing app_key", "missing timestamp"],
    };
    assert_eq!(case.fake.rejections(), expected_rejections);
}

macro_rules! for_each_platform {
    ($($name:ident),* $(,)?) => {
        mod douyin {
            $(#[tokio::test] async fn $name() { super::$name(super::Platform::Douyin).await })*
        }
        mod pdd {
            $(#[tokio::test] async fn $name() { super::$name(super::Platform::Pdd).await })*
        }
        mod taobao {
            $(#[tokio::test] async fn $name() { super::$name(super::Platform::Taobao).await })*

            #[tokio::test]
            async fn every_sign_method_is_accepted() {
                super::every_taobao_sign_method_is_accepted().await
            }
        }
    };
}

/// A paid order's lines, from the order detail, signed as Douyin checks it: each sub-order with
/// the seller's SKU code and its quantity (the paid push names only the sub-order ids).
#[tokio::test]
async fn douyin_order_lines_come_from_the_order_detail_with_skus_and_quantities() {
    let case = Case::start(Platform::Douyin).await;
    let order = order_id(Platform::Douyin);
    case.fake.script(order, Reply::Paid);
    let lines = case.client.order_lines(&key(Platform::Douyin, order), &case.credentials).await.unwrap();
    let got: Vec<(String, String, u32)> =
        lines.iter().map(|l| (l.line.to_string(), l.sku.to_string(), l.qty)).collect();
    assert_eq!(
        got,
        [(format!("{order}1"), format!("SKU-{order}-1"), 2), (format!("{order}2"), format!("SKU-{order}-2"), 1)]
    );
    assert_eq!(case.fake.requests(order), 1, "one call");
    assert!(case.fake.rejections().is_empty(), "{:?}", case.fake.rejections());
    assert_eq!(
        case.client.order_lines(&key(Platform::Douyin, "4781320682406000000"), &case.credentials).await,
        Err(QueryError::NotFound)
    );
    // The other clients have no such query.
    let pdd = Case::start(Platform::Pdd).await;
    assert_eq!(
        pdd.client.order_lines(&key(Platform::Pdd, order_id(Platform::Pdd)), &pdd.credentials).await,
        Err(QueryError::Unsupported)
    );
}

for_each_platform!(
    success_maps_to_succeeded,
    pending_maps_to_requested,
    closed_maps_to_closed,
    platform_error_keeps_its_code,
    token_expired,
    rate_limited,
    unknown_order_is_not_found,
    wrong_app_secret_is_refused_by_the_fake,
    slow_answer_is_a_timeout,
    garbage_is_malformed,
    refresh_rotates_the_tokens,
    refresh_failure_is_an_error,
    concurrent_queries_are_counted_per_order,
    the_fake_refuses_a_request_without_app_key_or_timestamp,
);

async fn every_taobao_sign_method_is_accepted() {
    let fake = FakePlatform::start(FakeConfig::new(Platform::Taobao)).await;
    fake.script(order_id(Platform::Taobao), Reply::RefundSucceeded);
    let credentials = credentials(&fake.config());
    for method in [TaobaoSignMethod::Md5, TaobaoSignMethod::HmacMd5, TaobaoSignMethod::HmacSha256] {
        let config = ClientConfig::new(&fake.base_url()).unwrap().with_timeout(TIMEOUT);
        let client = TaobaoClient::new(config, method).unwrap();
        let answer = client.refund_status(&key(Platform::Taobao, order_id(Platform::Taobao)), &credentials).await;
        assert!(answer.is_ok(), "{method:?}: {answer:?}");
    }
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
}
