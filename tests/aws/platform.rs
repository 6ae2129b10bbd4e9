//! The platform clients (`adapters::platform`) against the independent fake gateway
//! (`tests::fake_gateway`, whose signers are checked against the platforms' public vectors, not
//! orderhub's): the refund queries of Douyin, Pinduoduo and Taobao (answer mapping, error
//! mapping, timeouts, token refresh), and the incremental lists of all six platforms (windows,
//! paging, totals and cursors, every error class). No AWS needed:
//! `cargo test -p tests --test aws platform::`.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use adapters::platform::{
    ClientConfig, DouyinClient, JdClient, KuaishouClient, PddClient, TaobaoClient, TaobaoSignMethod, YouzanClient,
};
use chrono::{Duration, Utc};
use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::lifecycle::RefundState;
use domain::model::status::StatusMapping;
use domain::model::sync::Window;
use domain::ports::platform::{Credentials, PlatformQuery, QueryError, RefundAnswer};
use domain::ports::pull::{ChangeFeed, PageRequest};
use domain::ports::secrets::Secret;
use domain::sources::map_status;
use tests::fake_gateway::{Denial, FakeGateway, Order, Platform, RateLimit, RawFault, Refund, SkuLine, default_app};

/// The client timeout of these tests: short, so a delayed answer is a timeout quickly.
const TIMEOUT: StdDuration = StdDuration::from_millis(300);

const SHOP: &str = "shop-1";

fn source(platform: Platform) -> Source {
    match platform {
        Platform::Douyin => Source::Douyin,
        Platform::Pdd => Source::Pdd,
        Platform::Taobao => Source::Taobao,
        Platform::Jd => Source::Jd,
        Platform::Kuaishou => Source::Kuaishou,
        Platform::Youzan => Source::Youzan,
    }
}

fn order_id(platform: Platform) -> &'static str {
    match platform {
        Platform::Douyin => "4781320682406083640",
        Platform::Pdd => "240101-123456789012345",
        _ => "3456789012345678901",
    }
}

/// Now, to the second: the platforms' lists give times to the second.
fn now() -> chrono::DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(0)
}

fn key(platform: Platform, order_id: &str) -> OrderKey {
    OrderKey::parse(source(platform), SHOP, order_id).unwrap()
}

fn shop() -> ShopId {
    ShopId::parse(SHOP).unwrap()
}

fn config(gw: &FakeGateway, platform: Platform, timeout: StdDuration) -> ClientConfig {
    ClientConfig::new(&gw.base_url(platform)).unwrap().with_timeout(timeout).with_clock(Arc::new(gw.clone()))
}

fn query_client(gw: &FakeGateway, platform: Platform, timeout: StdDuration) -> Arc<dyn PlatformQuery> {
    let config = config(gw, platform, timeout);
    match platform {
        Platform::Douyin => Arc::new(DouyinClient::new(config).unwrap()),
        Platform::Pdd => Arc::new(PddClient::new(config).unwrap()),
        Platform::Taobao => Arc::new(TaobaoClient::new(config, TaobaoSignMethod::HmacMd5).unwrap()),
        other => panic!("no query client for {other:?}"),
    }
}

fn feed_client(gw: &FakeGateway, platform: Platform) -> Arc<dyn ChangeFeed> {
    let config = config(gw, platform, StdDuration::from_secs(5));
    match platform {
        Platform::Douyin => Arc::new(DouyinClient::new(config).unwrap()),
        Platform::Pdd => Arc::new(PddClient::new(config).unwrap()),
        Platform::Taobao => Arc::new(TaobaoClient::new(config, TaobaoSignMethod::HmacMd5).unwrap()),
        Platform::Jd => Arc::new(JdClient::new(config).unwrap()),
        Platform::Kuaishou => Arc::new(KuaishouClient::new(config).unwrap()),
        Platform::Youzan => Arc::new(YouzanClient::new(config).unwrap()),
    }
}

fn credentials(gw: &FakeGateway, platform: Platform) -> Credentials {
    let (app_key, secret) = default_app(platform);
    let tokens = gw.issue_default_tokens(platform, SHOP);
    Credentials {
        app_key: app_key.into(),
        app_secret: Secret::new(secret),
        access_token: Secret::new(tokens.access_token),
        refresh_token: Some(Secret::new(tokens.refresh_token)),
    }
}

/// The decisive raw refund status of each platform for a succeeded, a pending and a closed
/// refund, and the order's own codes alongside.
fn refund_codes(platform: Platform, outcome: &str) -> (&'static str, &'static str, &'static str) {
    // (order status, order refund status, refund status)
    match (platform, outcome) {
        (Platform::Douyin, "succeeded") => ("4", "3", "12"),
        (Platform::Douyin, "pending") => ("2", "1", "6"),
        (Platform::Douyin, _) => ("2", "1", "28"),
        (Platform::Pdd, "succeeded") => ("1", "4", "10"),
        (Platform::Pdd, "pending") => ("1", "2", "2"),
        (Platform::Pdd, _) => ("1", "1", "11"),
        (_, "succeeded") => ("TRADE_CLOSED", "", "SUCCESS"),
        (_, "pending") => ("WAIT_SELLER_SEND_GOODS", "", "WAIT_SELLER_AGREE"),
        (_, _) => ("WAIT_SELLER_SEND_GOODS", "", "CLOSED"),
    }
}

fn put_refunded(gw: &FakeGateway, platform: Platform, id: &str, outcome: &str) {
    let (status, refund_status, refund) = refund_codes(platform, outcome);
    let mut order = Order::new(id, SHOP, status, gw.now() - Duration::minutes(30));
    order.refund_status = refund_status.into();
    order.refunds.push(Refund {
        id: "200001".into(),
        status: refund.into(),
        line_id: Some(format!("{id}-1")),
        amount_fen: 1990,
        updated_at: gw.now() - Duration::minutes(5),
    });
    gw.put_order(platform, order);
}

fn decisive_field(platform: Platform) -> &'static str {
    match platform {
        Platform::Douyin => "after_sale_status",
        Platform::Pdd => "after_sales_status",
        _ => "refund_status",
    }
}

/// The refund state the answer's code of `field` maps to, as a callback's would.
fn refund_state(platform: Platform, answer: &RefundAnswer, field: &str) -> Option<RefundState> {
    let (status, _) = answer.all_statuses().into_iter().find(|(s, _)| s.field == field)?;
    match map_status(source(platform), &status.field, &status.code) {
        StatusMapping::Mapped(target) => target.refund,
        _ => None,
    }
}

struct Case {
    platform: Platform,
    gw: FakeGateway,
    client: Arc<dyn PlatformQuery>,
    credentials: Credentials,
}

impl Case {
    async fn start(platform: Platform) -> Self {
        let gw = FakeGateway::start_at(now()).await.unwrap();
        let client = query_client(&gw, platform, TIMEOUT);
        let credentials = credentials(&gw, platform);
        Case { platform, gw, client, credentials }
    }

    async fn query(&self, outcome: &str) -> Result<RefundAnswer, QueryError> {
        let id = order_id(self.platform);
        put_refunded(&self.gw, self.platform, id, outcome);
        self.client.refund_status(&key(self.platform, id), &self.credentials).await
    }

    fn denials(&self) -> Vec<Denial> {
        self.gw.records_of(self.platform).into_iter().filter_map(|r| r.denial).collect()
    }
}

async fn refund_outcomes_map_as_callbacks_would(platform: Platform) {
    let case = Case::start(platform).await;
    for (outcome, want) in
        [("succeeded", RefundState::Succeeded), ("pending", RefundState::Requested), ("closed", RefundState::Closed)]
    {
        let answer = case.query(outcome).await.unwrap();
        assert_eq!(refund_state(platform, &answer, decisive_field(platform)), Some(want), "{outcome}: {answer:?}");
        assert!(answer.statuses.iter().all(|(_, at)| at.is_some()), "the platform's time of each state");
    }
    assert!(case.denials().is_empty(), "every request signed as the platform checks: {:?}", case.denials());
}

async fn an_expired_token_asks_for_a_refresh(platform: Platform) {
    let case = Case::start(platform).await;
    put_refunded(&case.gw, platform, order_id(platform), "succeeded");
    case.gw.advance(Duration::days(30));
    let error = case.client.refund_status(&key(platform, order_id(platform)), &case.credentials).await;
    assert_eq!(error, Err(QueryError::TokenExpired));
    assert_eq!(case.denials(), [Denial::ExpiredToken]);
}

async fn a_revoked_authorisation_is_told_apart_where_the_platform_tells_it(platform: Platform) {
    let case = Case::start(platform).await;
    put_refunded(&case.gw, platform, order_id(platform), "succeeded");
    case.gw.revoke(platform, case.credentials.access_token.expose());
    let error = case.client.refund_status(&key(platform, order_id(platform)), &case.credentials).await.unwrap_err();
    match platform {
        // PDD 10014 授权已被取消; Douyin dop.authorization-no-existed: refreshing will not help.
        Platform::Pdd | Platform::Douyin => assert!(matches!(error, QueryError::Revoked { .. }), "{error:?}"),
        // TOP answers 27 for expired, revoked and foreign sessions alike: refresh, then alert.
        _ => assert_eq!(error, QueryError::TokenExpired),
    }
}

async fn rate_limits_and_retryable_faults_are_transient(platform: Platform) {
    let case = Case::start(platform).await;
    case.gw.set_rate_limit(platform, Some(RateLimit { max: 1, per: Duration::minutes(1) }));
    assert!(case.query("succeeded").await.is_ok());
    let limited = case.query("succeeded").await.unwrap_err();
    let expected_wait = if platform == Platform::Taobao { Some(60) } else { None };
    assert_eq!(limited, QueryError::RateLimited { retry_after_s: expected_wait }, "TOP says how long the ban lasts");
    case.gw.set_rate_limit(platform, None);
    case.gw.fail_next(platform, 1);
    let fault = case.query("succeeded").await.unwrap_err();
    assert!(fault.is_transient(), "{fault:?}");
    case.gw.break_next(platform, RawFault::Status(429), 1);
    assert_eq!(case.query("succeeded").await, Err(QueryError::RateLimited { retry_after_s: Some(1) }));
    case.gw.break_next(platform, RawFault::Garbage, 1);
    assert!(matches!(case.query("succeeded").await, Err(QueryError::Malformed(_))));
    case.gw.break_next(platform, RawFault::Status(502), 1);
    assert!(case.query("succeeded").await.unwrap_err().is_transient());
}

async fn an_unknown_order(platform: Platform) {
    let case = Case::start(platform).await;
    let error = case.client.refund_status(&key(platform, "999999999"), &case.credentials).await.unwrap_err();
    match platform {
        // PDD's code for an unknown order is not in any source read; the fake's 50001 is named.
        Platform::Pdd => {
            assert!(matches!(error, QueryError::Platform { ref code, .. } if code == "50001"), "{error:?}")
        }
        _ => assert_eq!(error, QueryError::NotFound),
    }
}

async fn a_wrong_app_secret_is_refused_by_the_fakes_own_signer(platform: Platform) {
    let case = Case::start(platform).await;
    put_refunded(&case.gw, platform, order_id(platform), "succeeded");
    let mut wrong = case.credentials.clone();
    wrong.app_secret = Secret::new("not-the-app-secret");
    let error = case.client.refund_status(&key(platform, order_id(platform)), &wrong).await.unwrap_err();
    let expected = match platform {
        Platform::Douyin => "40003/isv.signature-invalid",
        Platform::Pdd => "20004",
        _ => "25",
    };
    assert!(matches!(&error, QueryError::Platform { code, .. } if code == expected), "{error:?}");
    assert_eq!(case.denials(), [Denial::BadSignature]);
    let text = format!("{error} {error:?}");
    for secret in ["not-the-app-secret", case.credentials.access_token.expose(), case.credentials.app_secret.expose()] {
        assert!(!text.contains(secret), "{text}");
    }
}

async fn a_slow_answer_is_a_timeout_and_queries_run_side_by_side(platform: Platform) {
    let case = Case::start(platform).await;
    put_refunded(&case.gw, platform, order_id(platform), "pending");
    case.gw.delay_next(platform, StdDuration::from_secs(1), 1);
    let started = Instant::now();
    let key = key(platform, order_id(platform));
    assert_eq!(case.client.refund_status(&key, &case.credentials).await, Err(QueryError::Timeout));
    let took = started.elapsed();
    assert!(took >= TIMEOUT && took < StdDuration::from_millis(900), "{took:?}");
    // Six queries each held 150 ms finish together, not one after another.
    case.gw.delay_next(platform, StdDuration::from_millis(150), 6);
    let slow = query_client(&case.gw, platform, StdDuration::from_secs(5));
    let started = Instant::now();
    let answers = futures::future::join_all((0..6).map(|_| slow.refund_status(&key, &case.credentials))).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert!(
        started.elapsed() < StdDuration::from_millis(600),
        "the client does not serialise: {:?}",
        started.elapsed()
    );
}

async fn refresh_rotates_the_tokens_once(platform: Platform) {
    let case = Case::start(platform).await;
    let refresher = feed_client(&case.gw, platform);
    let token = refresher.refresh_token(&shop(), &case.credentials).await.unwrap();
    assert_ne!(token.access_token, case.credentials.access_token);
    let lifetime = (token.expires_at - case.gw.now()).num_hours();
    assert!((20..=24 * 8).contains(&lifetime), "expires in {lifetime} h");
    let renewed = Credentials {
        access_token: token.access_token.clone(),
        refresh_token: token.refresh_token.clone(),
        ..case.credentials.clone()
    };
    put_refunded(&case.gw, platform, order_id(platform), "succeeded");
    assert!(case.client.refund_status(&key(platform, order_id(platform)), &renewed).await.is_ok());
    // The spent refresh token cannot be used twice: a failure that needs people, not a retry.
    let again = refresher.refresh_token(&shop(), &case.credentials).await.unwrap_err();
    assert!(matches!(again, QueryError::Platform { .. }), "{again:?}");
    assert!(!again.is_transient());
    assert!(!format!("{again:?}").contains(case.credentials.refresh_token.as_ref().unwrap().expose()));
    let mut none = case.credentials.clone();
    none.refresh_token = None;
    assert!(matches!(
        refresher.refresh_token(&shop(), &none).await,
        Err(QueryError::Platform { code, .. }) if code == "no_refresh_token"
    ));
}

/// A paid order's lines, from the order detail, signed as Douyin checks it: each sub-order with
/// the seller's SKU code and its quantity (the paid push names only the sub-order ids).
#[tokio::test]
async fn douyin_order_lines_come_from_the_order_detail_with_skus_and_quantities() {
    let case = Case::start(Platform::Douyin).await;
    let order = order_id(Platform::Douyin);
    // Paid, awaiting shipment (order_status 2 备货中), two sku orders.
    let mut paid = Order::new(order, SHOP, "2", case.gw.now() - Duration::minutes(5));
    paid.lines = vec![
        SkuLine {
            line_id: format!("{order}1"),
            sku_id: "1790000000000001".into(),
            outer_sku_id: format!("SKU-{order}-1"),
            quantity: 2,
        },
        SkuLine {
            line_id: format!("{order}2"),
            sku_id: "1790000000000002".into(),
            outer_sku_id: format!("SKU-{order}-2"),
            quantity: 1,
        },
    ];
    case.gw.put_order(Platform::Douyin, paid);
    let lines = case.client.order_lines(&key(Platform::Douyin, order), &case.credentials).await.unwrap();
    let got: Vec<(String, String, u32)> =
        lines.iter().map(|l| (l.line.to_string(), l.sku.to_string(), l.qty)).collect();
    assert_eq!(
        got,
        [(format!("{order}1"), format!("SKU-{order}-1"), 2), (format!("{order}2"), format!("SKU-{order}-2"), 1)]
    );
    assert_eq!(case.gw.records_of(Platform::Douyin).len(), 1, "one call");
    assert!(case.denials().is_empty(), "{:?}", case.denials());
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

macro_rules! for_each_query_platform {
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

for_each_query_platform!(
    refund_outcomes_map_as_callbacks_would,
    an_expired_token_asks_for_a_refresh,
    a_revoked_authorisation_is_told_apart_where_the_platform_tells_it,
    rate_limits_and_retryable_faults_are_transient,
    an_unknown_order,
    a_wrong_app_secret_is_refused_by_the_fakes_own_signer,
    a_slow_answer_is_a_timeout_and_queries_run_side_by_side,
    refresh_rotates_the_tokens_once,
);

async fn every_taobao_sign_method_is_accepted() {
    let gw = FakeGateway::start_at(now()).await.unwrap();
    let credentials = credentials(&gw, Platform::Taobao);
    put_refunded(&gw, Platform::Taobao, order_id(Platform::Taobao), "succeeded");
    for method in [TaobaoSignMethod::Md5, TaobaoSignMethod::HmacMd5, TaobaoSignMethod::HmacSha256] {
        let client = TaobaoClient::new(config(&gw, Platform::Taobao, TIMEOUT), method).unwrap();
        let answer = client.refund_status(&key(Platform::Taobao, order_id(Platform::Taobao)), &credentials).await;
        assert!(answer.is_ok(), "{method:?}: {answer:?}");
    }
    assert!(gw.records().iter().all(|r| r.accepted()));
}

// ----------------------------------------------------------------------- the change feeds

/// Lists every order of a window the way the pull use case does: backwards for numbered
/// pages, along the cursor otherwise.
async fn list_all(client: &dyn ChangeFeed, window: &Window, credentials: &Credentials) -> Vec<String> {
    let limits = client.limits();
    let mut ids = Vec::new();
    match limits.paging {
        domain::ports::pull::Paging::Numbered { first } => {
            let head = client.list_orders(window, &PageRequest::Number(first), credentials).await.unwrap();
            let total = head.total.expect("a total");
            let pages = u32::try_from(total.div_ceil(u64::from(limits.page_size))).unwrap().max(1);
            ids.extend(head.rows.iter().map(|r| r.order_id.to_string()));
            for page in (first + 1..first + pages).rev() {
                let rows = client.list_orders(window, &PageRequest::Number(page), credentials).await.unwrap().rows;
                ids.extend(rows.iter().map(|r| r.order_id.to_string()));
            }
        }
        domain::ports::pull::Paging::Cursor => {
            let mut cursor = None;
            loop {
                let page = client.list_orders(window, &PageRequest::Cursor(cursor), credentials).await.unwrap();
                ids.extend(page.rows.iter().map(|r| r.order_id.to_string()));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    ids.sort();
    ids
}

fn status_of(platform: Platform) -> &'static str {
    match platform {
        Platform::Pdd => "1",
        Platform::Taobao | Platform::Youzan => "WAIT_SELLER_SEND_GOODS",
        Platform::Jd => "WAIT_SELLER_STOCK_OUT",
        Platform::Douyin => "105",
        Platform::Kuaishou => "30",
    }
}

#[tokio::test]
async fn every_platforms_list_gives_every_order_of_a_window_with_its_update_time() {
    for platform in Platform::ALL {
        let gw = FakeGateway::start_at(now()).await.unwrap();
        let credentials = credentials(&gw, platform);
        let client = feed_client(&gw, platform);
        let start = gw.now() - Duration::minutes(25);
        let mut want = Vec::new();
        for n in 0..230 {
            let id = format!("{}{n:05}", 7000 + n % 3);
            gw.put_order(platform, Order::new(&id, SHOP, status_of(platform), start + Duration::seconds(n * 5)));
            want.push(id);
        }
        gw.put_order(platform, Order::new("other-shop-order", "shop-2", status_of(platform), start));
        want.sort();
        let window = Window { start, end: gw.now() };
        let got = list_all(client.as_ref(), &window, &credentials).await;
        assert_eq!(got, want, "{platform:?}");
        let page = client.list_orders(&window, &first_page(client.as_ref()), &credentials).await.unwrap();
        let row = &page.rows[0];
        let put = gw.orders(platform).into_iter().find(|o| o.id == row.order_id.as_str()).unwrap();
        assert_eq!(row.updated_at, put.updated_at, "{platform:?}: the platform's update time, to the second");
        assert!(gw.records_of(platform).iter().all(|r| r.accepted()), "{platform:?}: {:?}", gw.records_of(platform));
    }
}

fn first_page(client: &dyn ChangeFeed) -> PageRequest {
    match client.limits().paging {
        domain::ports::pull::Paging::Numbered { first } => PageRequest::Number(first),
        domain::ports::pull::Paging::Cursor => PageRequest::Cursor(None),
    }
}

#[tokio::test]
async fn every_platforms_refund_list_names_the_order_and_the_refund() {
    for platform in Platform::ALL {
        let gw = FakeGateway::start_at(now()).await.unwrap();
        let credentials = credentials(&gw, platform);
        let client = feed_client(&gw, platform);
        let mut order = Order::new("88001", SHOP, status_of(platform), gw.now() - Duration::days(2));
        order.refunds.push(Refund {
            id: "rf-1".into(),
            status: "SUCCESS".into(),
            line_id: Some("88001-1".into()),
            amount_fen: 100,
            updated_at: gw.now() - Duration::minutes(10),
        });
        gw.put_order(platform, order);
        let window = Window { start: gw.now() - Duration::minutes(30), end: gw.now() };
        let page = client.list_refunds(&window, &first_page(client.as_ref()), &credentials).await.unwrap();
        assert_eq!(page.rows.len(), 1, "{platform:?}");
        assert_eq!(page.rows[0].order_id.as_str(), "88001");
        assert_eq!(page.rows[0].refund_id.as_deref(), Some("rf-1"), "{platform:?}");
        assert_eq!(page.rows[0].updated_at, gw.now() - Duration::minutes(10));
    }
}

#[tokio::test]
async fn list_errors_are_classified_on_purpose_on_every_platform() {
    for platform in Platform::ALL {
        let gw = FakeGateway::start_at(now()).await.unwrap();
        let credentials = credentials(&gw, platform);
        let client = feed_client(&gw, platform);
        let window = Window { start: gw.now() - Duration::minutes(20), end: gw.now() };
        let page = first_page(client.as_ref());
        gw.set_rate_limit(platform, Some(RateLimit { max: 0, per: Duration::minutes(1) }));
        let limited = client.list_orders(&window, &page, &credentials).await.unwrap_err();
        assert!(matches!(limited, QueryError::RateLimited { .. }), "{platform:?}: {limited:?}");
        gw.set_rate_limit(platform, None);
        gw.fail_next(platform, 1);
        let fault = client.list_orders(&window, &page, &credentials).await.unwrap_err();
        assert!(fault.is_transient(), "{platform:?}: {fault:?}");
        gw.break_next(platform, RawFault::Garbage, 1);
        let garbage = client.list_orders(&window, &page, &credentials).await.unwrap_err();
        assert!(matches!(garbage, QueryError::Malformed(_)), "{platform:?}: {garbage:?}");
        let mut foreign = credentials.clone();
        foreign.app_secret = Secret::new("wrong");
        if platform != Platform::Youzan {
            // Youzan's API calls are not signed at all (only the token authenticates them).
            let bad = client.list_orders(&window, &page, &foreign).await.unwrap_err();
            assert!(matches!(bad, QueryError::Platform { .. }), "{platform:?}: {bad:?}");
        }
        gw.advance(Duration::days(60));
        let expired = client
            .list_orders(&Window { start: gw.now() - Duration::minutes(20), end: gw.now() }, &page, &credentials)
            .await
            .unwrap_err();
        assert_eq!(expired, QueryError::TokenExpired, "{platform:?}");
    }
}

#[tokio::test]
async fn pdd_refuses_a_window_over_thirty_minutes_and_names_its_code() {
    let gw = FakeGateway::start_at(now()).await.unwrap();
    let credentials = credentials(&gw, Platform::Pdd);
    let client = feed_client(&gw, Platform::Pdd);
    let window = Window { start: gw.now() - Duration::minutes(45), end: gw.now() };
    let error = client.list_orders(&window, &PageRequest::Number(1), &credentials).await.unwrap_err();
    assert!(matches!(error, QueryError::Platform { ref code, .. } if code == "10000"), "{error:?}");
    assert_eq!(client.limits().max_window, Duration::minutes(30), "the client never asks for more");
}

/// The pull use case with the real PDD client against the fake gateway: an order that changes
/// while the client pages (after the first page was read) makes later rows shift towards page 1;
/// paging from the last page back, re-reading page 1 when the total moved, misses none.
#[tokio::test]
async fn the_pull_misses_no_pdd_order_that_changes_while_it_pages() {
    use domain::app::sync_channel::{Plan, SyncChannel, SyncPorts, SyncRules};
    use domain::app::tokens::{TokenKeeper, TokenPorts, TokenRules};
    use domain::model::sync::{Feed, PulledPayload, ShopTokens};
    use domain::ports::Secrets;
    use domain::ports::pull::TokenRefresh;
    use domain::ports::secrets::{SecretCache, parameter_name};
    use domain::testing::memory::{MemoryInbox, MemoryQueue, MemorySecrets, MemorySync};

    let gw = FakeGateway::start_at(now()).await.unwrap();
    let start = gw.now() - Duration::minutes(25);
    let ids: Vec<String> = (0..250).map(|n| format!("261111-{n:06}")).collect();
    for (n, id) in ids.iter().enumerate() {
        gw.put_order(Platform::Pdd, Order::new(id, SHOP, "1", start + Duration::seconds(n as i64 * 4)));
    }
    // Right after the first page is served, the 6th order changes: it leaves the window.
    gw.after_list_request(
        Platform::Pdd,
        1,
        Box::new(|orders, now| {
            if let Some(o) = orders.iter_mut().find(|o| o.id == "261111-000005") {
                o.updated_at = now + Duration::minutes(1);
                o.status = "2".into();
            }
        }),
    );
    let secrets = MemorySecrets::default();
    let (app_key, app_secret) = default_app(Platform::Pdd);
    secrets
        .put(
            &parameter_name("t", Source::Pdd, &shop()),
            &format!(r#"{{"app_key":"{app_key}","secret":"{app_secret}"}}"#),
        )
        .await
        .unwrap();
    let (sync, inbox, queue) = (MemorySync::default(), MemoryInbox::default(), MemoryQueue::default());
    let client = feed_client(&gw, Platform::Pdd);
    let cache = SecretCache::new(&secrets, &gw, "t", Duration::minutes(5));
    let refreshers: [&dyn TokenRefresh; 1] = [client.as_ref()];
    let keeper = TokenKeeper::new(
        TokenPorts { ledger: &sync, params: &secrets, secrets: &cache, refreshers: &refreshers, clock: &gw },
        "t",
        TokenRules::default(),
        "test",
    );
    let issued = gw.issue_default_tokens(Platform::Pdd, SHOP);
    let tokens = ShopTokens {
        access_token: Secret::new(issued.access_token),
        access_token_expires_at: Some(issued.expires_at),
        refresh_token: Some(Secret::new(issued.refresh_token)),
        refresh_token_expires_at: None,
        generation: 0,
    };
    keeper.install(Source::Pdd, &shop(), tokens).await.unwrap();
    let feeds: [&dyn ChangeFeed; 1] = [client.as_ref()];
    let rules = SyncRules::default();
    let pull = SyncChannel {
        ports: SyncPorts {
            feeds: &feeds,
            checkpoints: &sync,
            tokens: &keeper,
            inbox: &inbox,
            queue: &queue,
            clock: &gw,
        },
        rules: &rules,
    };
    let plan = Plan {
        sources: vec![Source::Pdd],
        feeds: vec![Feed::Orders],
        shop: Some(shop()),
        from: Some(start - Duration::minutes(1)),
        settle: Duration::zero(),
        run: "t".into(),
        deadline: tokio::time::Instant::now() + StdDuration::from_secs(60),
    };
    let (events, report) = pull.run(&plan).await;
    assert!(events.is_empty(), "{events:?}");
    let pages: Vec<Option<i64>> = gw.records_of(Platform::Pdd).iter().map(|r| r.page).collect();
    assert_eq!(pages, [Some(1), Some(3), Some(2), Some(1)], "first page, then last to second, then page 1 again");
    let seen: std::collections::BTreeSet<String> = queue
        .drain()
        .iter()
        .filter_map(|m| serde_json::from_str::<domain::model::callback::InboundMessage>(&m.body).ok())
        .filter_map(|m| PulledPayload::read(m.payload.unwrap_or_default().as_bytes()))
        .filter_map(|p| domain::sources::json::text(&p.row, "order_sn"))
        .collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "missed {missing:?} ({report:?})");
}
