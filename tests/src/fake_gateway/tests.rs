//! Tests of the fake gateway itself, driven with a plain reqwest client that signs with the
//! fake's own per-platform signers (already checked against the public vectors).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::*;

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn form(params: &BTreeMap<String, String>) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish()
}

async fn post_form(url: &str, params: &BTreeMap<String, String>) -> Value {
    let response = http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
        .body(form(params))
        .send()
        .await
        .expect("the fake answers");
    response.json().await.expect("a JSON body")
}

/// A signed PDD call at the gateway's clock.
async fn pdd(gw: &FakeGateway, kind: &str, token: Option<&str>, business: &[(&str, String)]) -> Value {
    pdd_at(gw, kind, token, business, gw.now()).await
}

async fn pdd_at(
    gw: &FakeGateway,
    kind: &str,
    token: Option<&str>,
    business: &[(&str, String)],
    at: DateTime<Utc>,
) -> Value {
    let (client_id, secret) = default_app(Platform::Pdd);
    let mut p = BTreeMap::from([
        ("type".to_owned(), kind.to_owned()),
        ("client_id".to_owned(), client_id.to_owned()),
        ("timestamp".to_owned(), at.timestamp().to_string()),
        ("data_type".to_owned(), "JSON".to_owned()),
        ("version".to_owned(), "V1".to_owned()),
    ]);
    if let Some(token) = token {
        p.insert("access_token".into(), token.into());
    }
    p.extend(business.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let signature = pdd::sign(secret, &p);
    p.insert("sign".into(), signature);
    post_form(&gw.base_url(Platform::Pdd), &p).await
}

fn pdd_list_params(start: DateTime<Utc>, end: DateTime<Utc>, page: i64, size: i64) -> Vec<(&'static str, String)> {
    vec![
        ("start_updated_at", start.timestamp().to_string()),
        ("end_updated_at", end.timestamp().to_string()),
        ("order_status", "5".into()),
        ("refund_status", "5".into()),
        ("page", page.to_string()),
        ("page_size", size.to_string()),
    ]
}

/// A signed TOP call (md5) at the gateway's clock.
async fn taobao(gw: &FakeGateway, method: &str, session: Option<&str>, business: &[(&str, String)]) -> Value {
    let (app_key, secret) = default_app(Platform::Taobao);
    let mut p = BTreeMap::from([
        ("method".to_owned(), method.to_owned()),
        ("app_key".to_owned(), app_key.to_owned()),
        ("timestamp".to_owned(), fmt_cn(gw.now())),
        ("format".to_owned(), "json".to_owned()),
        ("v".to_owned(), "2.0".to_owned()),
        ("sign_method".to_owned(), "hmac".to_owned()),
    ]);
    if let Some(session) = session {
        p.insert("session".into(), session.into());
    }
    p.extend(business.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let signature = taobao::sign(secret, &p, taobao::SignMethod::HmacMd5);
    p.insert("sign".into(), signature);
    post_form(&gw.base_url(Platform::Taobao), &p).await
}

async fn douyin(gw: &FakeGateway, path: &str, token: Option<&str>, param_json: &str) -> Value {
    let (app_key, secret) = default_app(Platform::Douyin);
    let method = path.trim_start_matches('/').replace('/', ".");
    let q = douyin::signed_query(secret, app_key, &method, param_json, gw.now().timestamp(), token);
    let url = format!("{}{path}?{}", gw.base_url(Platform::Douyin), form(&q));
    let response = http().post(url).header("content-type", "application/json").body(param_json.to_owned()).send().await;
    response.expect("the fake answers").json().await.expect("a JSON body")
}

async fn kuaishou(gw: &FakeGateway, method: &str, token: &str, param: &Value) -> Value {
    let (app_key, secret) = default_app(Platform::Kuaishou);
    let q = kuaishou::signed_query(secret, app_key, method, &param.to_string(), gw.now().timestamp_millis(), token);
    let url = format!("{}/{}?{}", gw.base_url(Platform::Kuaishou), method.replace('.', "/"), form(&q));
    http().get(url).send().await.expect("the fake answers").json().await.expect("a JSON body")
}

fn pdd_error(v: &Value) -> Option<i64> {
    v.pointer("/error_response/error_code").and_then(Value::as_i64)
}

fn top_error(v: &Value) -> Option<(i64, Option<String>)> {
    let e = v.get("error_response")?;
    Some((e.get("code")?.as_i64()?, e.get("sub_code").and_then(Value::as_str).map(str::to_owned)))
}

/// `n` orders of `shop`, updated one second apart from `from`.
fn seed(gw: &FakeGateway, platform: Platform, shop: &str, n: usize, from: DateTime<Utc>, status: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("{shop}-{i:04}");
            let at = from + Duration::seconds(i64::try_from(i).unwrap_or(0));
            gw.put_order(platform, Order::new(&id, shop, status, at));
            id
        })
        .collect()
}

fn ids(rows: &Value, field: &str) -> Vec<String> {
    rows.as_array()
        .map(|a| a.iter().filter_map(|r| r.get(field).and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn pdd_window_longer_than_thirty_minutes_is_refused_with_its_error() {
    let gw = FakeGateway::start().await.expect("starts");
    let tokens = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    let end = gw.now() - Duration::minutes(5);
    let too_long = pdd(
        &gw,
        "pdd.order.number.list.increment.get",
        Some(&tokens.access_token),
        &pdd_list_params(end - Duration::minutes(31), end, 1, 100),
    )
    .await;
    assert_eq!(pdd_error(&too_long), Some(10000));
    let exact = pdd(
        &gw,
        "pdd.order.number.list.increment.get",
        Some(&tokens.access_token),
        &pdd_list_params(end - Duration::minutes(30), end, 1, 100),
    )
    .await;
    assert_eq!(pdd_error(&exact), None, "{exact}");
    let records = gw.records_of(Platform::Pdd);
    assert_eq!(records[0].denial, Some(Denial::WindowTooLong));
    assert!(records[1].accepted());
}

#[tokio::test]
async fn taobao_window_longer_than_a_day_and_page_size_over_100_are_refused() {
    let gw = FakeGateway::start().await.expect("starts");
    let tokens = gw.issue_default_tokens(Platform::Taobao, "tb-shop");
    let end = gw.now();
    let call = |start: DateTime<Utc>, size: i64| {
        vec![
            ("fields", "tid,status,modified".to_owned()),
            ("start_modified", fmt_cn(start)),
            ("end_modified", fmt_cn(end)),
            ("page_size", size.to_string()),
        ]
    };
    let long = taobao(
        &gw,
        "taobao.trades.sold.increment.get",
        Some(&tokens.access_token),
        &call(end - Duration::hours(25), 40),
    )
    .await;
    assert_eq!(top_error(&long).map(|e| e.0), Some(41));
    let big = taobao(
        &gw,
        "taobao.trades.sold.increment.get",
        Some(&tokens.access_token),
        &call(end - Duration::hours(1), 101),
    )
    .await;
    assert_eq!(top_error(&big).map(|e| e.0), Some(41));
    let fine = taobao(
        &gw,
        "taobao.trades.sold.increment.get",
        Some(&tokens.access_token),
        &call(end - Duration::hours(24), 100),
    )
    .await;
    assert_eq!(top_error(&fine), None, "{fine}");
}

#[tokio::test]
async fn rate_limits_answer_with_each_platforms_code_per_app_and_shop() {
    let gw = FakeGateway::start().await.expect("starts");
    let limit = Some(RateLimit { max: 2, per: Duration::seconds(60) });
    gw.set_rate_limit(Platform::Pdd, limit);
    gw.set_rate_limit(Platform::Taobao, limit);
    gw.set_rate_limit(Platform::Douyin, limit);
    let a = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    let b = gw.issue_default_tokens(Platform::Pdd, "shop-b");
    let end = gw.now();
    let list = pdd_list_params(end - Duration::minutes(10), end, 1, 10);
    for _ in 0..2 {
        assert_eq!(
            pdd_error(&pdd(&gw, "pdd.order.number.list.increment.get", Some(&a.access_token), &list).await),
            None
        );
    }
    assert_eq!(
        pdd_error(&pdd(&gw, "pdd.order.number.list.increment.get", Some(&a.access_token), &list).await),
        Some(70031)
    );
    // Another shop of the same app has its own allowance.
    assert_eq!(pdd_error(&pdd(&gw, "pdd.order.number.list.increment.get", Some(&b.access_token), &list).await), None);
    // The window slides with the (injected) clock.
    gw.advance(Duration::seconds(61));
    let end = gw.now();
    let list = pdd_list_params(end - Duration::minutes(10), end, 1, 10);
    assert_eq!(pdd_error(&pdd(&gw, "pdd.order.number.list.increment.get", Some(&a.access_token), &list).await), None);

    let tb = gw.issue_default_tokens(Platform::Taobao, "tb-shop");
    let tid = [("fields", "tid".to_owned()), ("tid", "none".to_owned())];
    for _ in 0..2 {
        taobao(&gw, "taobao.trade.fullinfo.get", Some(&tb.access_token), &tid).await;
    }
    let limited = taobao(&gw, "taobao.trade.fullinfo.get", Some(&tb.access_token), &tid).await;
    assert_eq!(top_error(&limited).map(|e| e.0), Some(7));
    let sub_msg = limited.pointer("/error_response/sub_msg").and_then(Value::as_str).unwrap_or_default();
    assert!(sub_msg.starts_with("This ban will last for ") && sub_msg.ends_with(" more seconds"), "{sub_msg}");

    let dy = gw.issue_default_tokens(Platform::Douyin, "dy-shop");
    let detail = r#"{"shop_order_id":"none"}"#;
    for _ in 0..2 {
        douyin(&gw, "/order/orderDetail", Some(&dy.access_token), detail).await;
    }
    let limited = douyin(&gw, "/order/orderDetail", Some(&dy.access_token), detail).await;
    assert_eq!(limited.get("code").and_then(Value::as_i64), Some(60000));
}

#[tokio::test]
async fn pdd_tells_expired_foreign_and_revoked_tokens_apart_and_refresh_rotates_both_tokens() {
    let gw = FakeGateway::start().await.expect("starts");
    gw.add_app(Platform::Pdd, "other-client", "other-secret");
    let foreign = gw.issue_tokens(Platform::Pdd, "other-client", "shop-a");
    let mine = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    let info = [("order_sn", "none".to_owned())];
    assert_eq!(
        pdd_error(&pdd(&gw, "pdd.order.information.get", Some(&foreign.access_token), &info).await),
        Some(20032)
    );
    assert_eq!(pdd_error(&pdd(&gw, "pdd.order.information.get", Some("never-issued"), &info).await), Some(20032));
    assert_eq!(pdd_error(&pdd(&gw, "pdd.order.information.get", None, &info).await), Some(20007));

    gw.set_now(mine.expires_at);
    assert_eq!(pdd_error(&pdd(&gw, "pdd.order.information.get", Some(&mine.access_token), &info).await), Some(10019));

    let refreshed =
        pdd(&gw, "pdd.pop.auth.token.refresh", None, &[("refresh_token", mine.refresh_token.clone())]).await;
    let body = refreshed.get("pop_auth_token_refresh_response").cloned().unwrap_or_default();
    let new_token = body.get("access_token").and_then(Value::as_str).unwrap_or_default().to_owned();
    assert!(!new_token.is_empty(), "{refreshed}");
    assert_eq!(body.get("owner_id").and_then(Value::as_str), Some("shop-a"));
    assert!(body.get("refresh_token_expires_at").and_then(Value::as_i64).is_some());
    // The old refresh token is spent.
    let again = pdd(&gw, "pdd.pop.auth.token.refresh", None, &[("refresh_token", mine.refresh_token.clone())]).await;
    assert!(pdd_error(&again).is_some());

    gw.put_order(Platform::Pdd, Order::new("240101-1", "shop-a", "1", gw.now()));
    let found = pdd(&gw, "pdd.order.information.get", Some(&new_token), &[("order_sn", "240101-1".into())]).await;
    assert_eq!(found.pointer("/order_info_get_response/order_info/order_sn").and_then(Value::as_str), Some("240101-1"));

    gw.revoke(Platform::Pdd, &new_token);
    assert_eq!(pdd_error(&pdd(&gw, "pdd.order.information.get", Some(&new_token), &info).await), Some(10014));
    let denials: Vec<Option<Denial>> = gw.records_of(Platform::Pdd).into_iter().map(|r| r.denial).collect();
    assert!(denials.contains(&Some(Denial::ForeignToken)));
    assert!(denials.contains(&Some(Denial::ExpiredToken)));
    assert!(denials.contains(&Some(Denial::RevokedToken)));
}

#[tokio::test]
async fn taobao_and_douyin_token_errors() {
    let gw = FakeGateway::start().await.expect("starts");
    let tb = gw.issue_default_tokens(Platform::Taobao, "tb-shop");
    let tid = [("fields", "tid".to_owned()), ("tid", "1".to_owned())];
    assert_eq!(top_error(&taobao(&gw, "taobao.trade.fullinfo.get", None, &tid).await).map(|e| e.0), Some(26));
    let dy = gw.issue_default_tokens(Platform::Douyin, "dy-shop");
    gw.advance(Duration::days(8));
    let expired = taobao(&gw, "taobao.trade.fullinfo.get", Some(&tb.access_token), &tid).await;
    assert_eq!(top_error(&expired), Some((27, Some("invalid-sessionkey".into()))));
    let detail = r#"{"shop_order_id":"1"}"#;
    let expired = douyin(&gw, "/order/orderDetail", Some(&dy.access_token), detail).await;
    assert_eq!(expired.get("sub_code").and_then(Value::as_str), Some("isv.access-token-expired"));
    let unknown = douyin(&gw, "/order/orderDetail", Some("nope"), detail).await;
    assert_eq!(unknown.get("sub_code").and_then(Value::as_str), Some("isv.access-token-no-existed"));
    // Douyin's refresh token lives 14 days: a week later it still works.
    let refreshed = douyin(
        &gw,
        "/token/refresh",
        None,
        &json!({"grant_type": "refresh_token", "refresh_token": dy.refresh_token}).to_string(),
    )
    .await;
    assert_eq!(refreshed.get("code").and_then(Value::as_i64), Some(10000), "{refreshed}");
    let spent = douyin(
        &gw,
        "/token/refresh",
        None,
        &json!({"grant_type": "refresh_token", "refresh_token": dy.refresh_token}).to_string(),
    )
    .await;
    assert_eq!(spent.get("sub_code").and_then(Value::as_str), Some("dop.token-generate-failed:token-invalid"));
}

#[tokio::test]
async fn clock_skew_bad_signatures_and_unknown_apps_get_distinct_codes() {
    let gw = FakeGateway::start().await.expect("starts");
    let tokens = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    let info = [("order_sn", "none".to_owned())];
    let skewed =
        pdd_at(&gw, "pdd.order.information.get", Some(&tokens.access_token), &info, gw.now() - Duration::minutes(11))
            .await;
    assert_eq!(pdd_error(&skewed), Some(10001));
    let within =
        pdd_at(&gw, "pdd.order.information.get", Some(&tokens.access_token), &info, gw.now() - Duration::minutes(9))
            .await;
    assert_ne!(pdd_error(&within), Some(10001));

    let mut p = BTreeMap::from([
        ("type".to_owned(), "pdd.order.information.get".to_owned()),
        ("client_id".to_owned(), "pdd-client-id".to_owned()),
        ("timestamp".to_owned(), gw.now().timestamp().to_string()),
        ("access_token".to_owned(), tokens.access_token.clone()),
        ("order_sn".to_owned(), "none".to_owned()),
    ]);
    p.insert("sign".into(), pdd::sign("wrong-secret", &p));
    assert_eq!(pdd_error(&post_form(&gw.base_url(Platform::Pdd), &p).await), Some(20004));
    p.insert("client_id".into(), "nobody".into());
    assert_eq!(pdd_error(&post_form(&gw.base_url(Platform::Pdd), &p).await), Some(10016));
    p.remove("client_id");
    assert_eq!(pdd_error(&post_form(&gw.base_url(Platform::Pdd), &p).await), Some(20007));

    let tb = gw.issue_default_tokens(Platform::Taobao, "tb-shop");
    gw.set_now(gw.now() + Duration::minutes(11));
    let mut q = BTreeMap::from([
        ("method".to_owned(), "taobao.trade.fullinfo.get".to_owned()),
        ("app_key".to_owned(), "12345678".to_owned()),
        ("session".to_owned(), tb.access_token.clone()),
        ("timestamp".to_owned(), fmt_cn(gw.now() - Duration::minutes(11))),
        ("fields".to_owned(), "tid".to_owned()),
        ("tid".to_owned(), "1".to_owned()),
    ]);
    q.insert("sign".into(), taobao::sign("taobao-app-secret", &q, taobao::SignMethod::Md5));
    assert_eq!(top_error(&post_form(&gw.base_url(Platform::Taobao), &q).await).map(|e| e.0), Some(31));
}

#[tokio::test]
async fn retryable_server_errors_on_demand_then_normal_answers() {
    let gw = FakeGateway::start().await.expect("starts");
    let tokens = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    gw.fail_next(Platform::Pdd, 2);
    let end = gw.now();
    let list = pdd_list_params(end - Duration::minutes(10), end, 1, 10);
    assert_eq!(
        pdd_error(&pdd(&gw, "pdd.order.number.list.increment.get", Some(&tokens.access_token), &list).await),
        Some(52103)
    );
    assert_eq!(
        pdd_error(&pdd(&gw, "pdd.order.number.list.increment.get", Some(&tokens.access_token), &list).await),
        Some(52103)
    );
    assert_eq!(
        pdd_error(&pdd(&gw, "pdd.order.number.list.increment.get", Some(&tokens.access_token), &list).await),
        None
    );
    let codes: Vec<Option<String>> = gw.records_of(Platform::Pdd).into_iter().map(|r| r.code).collect();
    assert_eq!(codes, [Some("52103".to_owned()), Some("52103".to_owned()), None]);
}

/// Pages a PDD window with a plain loop: forward (1, 2, 3, …) or, as PDD asks, backward from
/// the last page (page 1 first only to learn the total). Returns the order ids seen.
async fn page_pdd(
    gw: &FakeGateway,
    token: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    size: i64,
    backward: bool,
) -> BTreeSet<String> {
    let kind = "pdd.order.number.list.increment.get";
    let key = "order_sn_increment_get_response";
    let mut seen = BTreeSet::new();
    let first = pdd(gw, kind, Some(token), &pdd_list_params(start, end, 1, size)).await;
    let total = first.pointer(&format!("/{key}/total_count")).and_then(Value::as_i64).unwrap_or(0);
    let last = (total + size - 1) / size;
    let pages: Vec<i64> = if backward { (1..=last).rev().collect() } else { (2..=last).collect() };
    if !backward {
        seen.extend(ids(first.pointer(&format!("/{key}/order_sn_list")).unwrap_or(&Value::Null), "order_sn"));
    }
    for page in pages {
        let answer = pdd(gw, kind, Some(token), &pdd_list_params(start, end, page, size)).await;
        assert_eq!(pdd_error(&answer), None, "{answer}");
        seen.extend(ids(answer.pointer(&format!("/{key}/order_sn_list")).unwrap_or(&Value::Null), "order_sn"));
    }
    seen
}

/// Moves the 5th order of the window out of it (updated "now", after the window's end), as a
/// buyer acting while the client pages would.
fn touch_fifth(start: DateTime<Utc>) -> Mutation {
    Box::new(move |orders: &mut Vec<Order>, now: DateTime<Utc>| {
        if let Some(order) = orders.iter_mut().find(|o| o.updated_at == start + Duration::seconds(4)) {
            order.updated_at = now;
            order.status = "2".into();
        }
    })
}

#[tokio::test]
async fn a_change_while_paging_makes_a_forward_pager_miss_an_order_and_a_backward_pager_does_not() {
    let gw = FakeGateway::start().await.expect("starts");
    let tokens = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    let start = gw.now() - Duration::minutes(30);
    let end = start + Duration::minutes(25);
    let all = seed(&gw, Platform::Pdd, "shop-a", 250, start, "1");
    let moved = all[4].clone();
    let unchanged: BTreeSet<String> = all.iter().filter(|id| **id != moved).cloned().collect();

    // Forward: the change lands right after page 1 is served.
    gw.after_list_request(Platform::Pdd, 1, touch_fifth(start));
    let forward = page_pdd(&gw, &tokens.access_token, start, end, 100, false).await;
    let missed: Vec<&String> = unchanged.difference(&forward).collect();
    assert_eq!(missed, [&all[100]], "the first order of page 2 slid onto page 1 after it was read");

    // Backward, same data and the same change after the first page it reads.
    for (i, id) in all.iter().enumerate() {
        let at = start + Duration::seconds(i64::try_from(i).unwrap_or(0));
        gw.update_order(Platform::Pdd, id, |o| {
            o.updated_at = at;
            o.status = "1".into();
        });
    }
    gw.after_list_request(Platform::Pdd, 2, touch_fifth(start));
    let backward = page_pdd(&gw, &tokens.access_token, start, end, 100, true).await;
    assert!(unchanged.is_subset(&backward), "missed: {:?}", unchanged.difference(&backward).collect::<Vec<_>>());
    // The moved order belongs to a later window now, where the next pull finds it.
    let later = page_pdd(&gw, &tokens.access_token, end, gw.now(), 100, true).await;
    assert!(later.contains(&moved));
}

#[tokio::test]
async fn taobao_pages_newest_first_with_total_or_has_next() {
    let gw = FakeGateway::start().await.expect("starts");
    let tokens = gw.issue_default_tokens(Platform::Taobao, "tb-shop");
    let start = gw.now() - Duration::hours(2);
    let all = seed(&gw, Platform::Taobao, "tb-shop", 45, start, "WAIT_SELLER_SEND_GOODS");
    let call = |page: i64, has_next: bool| {
        vec![
            ("fields", "tid,status,modified,orders".to_owned()),
            ("start_modified", fmt_cn(start)),
            ("end_modified", fmt_cn(start + Duration::hours(1))),
            ("page_no", page.to_string()),
            ("use_has_next", has_next.to_string()),
        ]
    };
    let first = taobao(&gw, "taobao.trades.sold.increment.get", Some(&tokens.access_token), &call(1, false)).await;
    let body = first.get("trades_sold_increment_get_response").cloned().unwrap_or_default();
    assert_eq!(body.get("total_results").and_then(Value::as_i64), Some(45));
    let rows = body.pointer("/trades/trade").cloned().unwrap_or_default();
    assert_eq!(rows.as_array().map(Vec::len), Some(40), "default page_size is 40");
    assert_eq!(ids(&rows, "tid").first(), all.last(), "newest first");
    let second = taobao(&gw, "taobao.trades.sold.increment.get", Some(&tokens.access_token), &call(2, true)).await;
    let body = second.get("trades_sold_increment_get_response").cloned().unwrap_or_default();
    assert_eq!(body.get("total_results"), None, "use_has_next drops the total");
    assert_eq!(body.get("has_next").and_then(Value::as_bool), Some(false));
    assert_eq!(body.pointer("/trades/trade").and_then(Value::as_array).map(Vec::len), Some(5));
}

#[tokio::test]
async fn refund_lists_find_refunds_by_their_own_update_time() {
    let gw = FakeGateway::start().await.expect("starts");
    let pdd_tokens = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    let dy_tokens = gw.issue_default_tokens(Platform::Douyin, "dy-shop");
    let now = gw.now();
    let old = now - Duration::days(3);
    for (platform, shop, status) in [(Platform::Pdd, "shop-a", "10"), (Platform::Douyin, "dy-shop", "12")] {
        let mut order = Order::new(&format!("{shop}-r1"), shop, "2", old);
        order.refunds.push(Refund {
            id: format!("{shop}-as-1"),
            status: status.into(),
            line_id: Some(format!("{shop}-r1-1")),
            amount_fen: 1990,
            updated_at: now - Duration::minutes(3),
        });
        gw.put_order(platform, order);
    }
    let answer = pdd(
        &gw,
        "pdd.refund.list.increment.get",
        Some(&pdd_tokens.access_token),
        &[
            ("start_updated_at", (now - Duration::minutes(10)).timestamp().to_string()),
            ("end_updated_at", now.timestamp().to_string()),
            ("after_sales_status", "1".into()),
            ("after_sales_type", "1".into()),
        ],
    )
    .await;
    let list = answer.pointer("/refund_increment_get_response/refund_list").cloned().unwrap_or_default();
    assert_eq!(ids(&list, "order_sn"), ["shop-a-r1"]);
    assert_eq!(list.pointer("/0/after_sales_status").and_then(Value::as_i64), Some(10));

    let param = json!({"page": 0, "size": 10, "update_end_time": now.timestamp(), "update_start_time": (now - Duration::minutes(10)).timestamp()});
    let answer = douyin(&gw, "/afterSale/List", Some(&dy_tokens.access_token), &param.to_string()).await;
    assert_eq!(answer.pointer("/data/total").and_then(Value::as_i64), Some(1), "{answer}");
    assert_eq!(answer.pointer("/data/has_more").and_then(Value::as_bool), Some(false));
    assert_eq!(answer.pointer("/data/items/0/aftersale_info/aftersale_status").and_then(Value::as_i64), Some(12));
}

#[tokio::test]
async fn douyin_pages_from_zero_and_kuaishou_cursors_end_with_nomore() {
    let gw = FakeGateway::start().await.expect("starts");
    let dy = gw.issue_default_tokens(Platform::Douyin, "dy-shop");
    let ks = gw.issue_default_tokens(Platform::Kuaishou, "ks-shop");
    let start = gw.now() - Duration::hours(1);
    seed(&gw, Platform::Douyin, "dy-shop", 25, start, "2");
    let ks_ids = seed(&gw, Platform::Kuaishou, "ks-shop", 25, start, "30");
    let end = start + Duration::minutes(30);

    let param = |page: i64| json!({"page": page, "size": 10, "update_time_end": end.timestamp(), "update_time_start": start.timestamp(), "order_by": "update_time"});
    let third = douyin(&gw, "/order/searchList", Some(&dy.access_token), &param(2).to_string()).await;
    assert_eq!(third.pointer("/data/total").and_then(Value::as_i64), Some(25));
    assert_eq!(third.pointer("/data/shop_order_list").and_then(Value::as_array).map(Vec::len), Some(5));
    let over = douyin(
        &gw,
        "/order/searchList",
        Some(&dy.access_token),
        &json!({"page": 0, "size": 101, "update_time_end": end.timestamp(), "update_time_start": start.timestamp()})
            .to_string(),
    )
    .await;
    assert_eq!(over.get("code").and_then(Value::as_i64), Some(40004));

    let mut cursor = String::new();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let param = json!({"queryType": 2, "sort": 2, "pageSize": 10, "beginTime": start.timestamp_millis(), "endTime": end.timestamp_millis(), "cursor": cursor});
        let answer = kuaishou(&gw, "open.order.cursor.list", &ks.access_token, &param).await;
        assert_eq!(answer.get("result").and_then(Value::as_i64), Some(1), "{answer}");
        let rows = answer.pointer("/data/orderList").cloned().unwrap_or_default();
        seen.extend(
            rows.as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.pointer("/orderBaseInfo/oid").and_then(Value::as_str).map(str::to_owned)),
        );
        cursor = answer.pointer("/data/cursor").and_then(Value::as_str).unwrap_or(kuaishou::NO_MORE).to_owned();
        if cursor == kuaishou::NO_MORE {
            break;
        }
    }
    assert_eq!(seen, ks_ids, "ascending, every order once");
}

#[tokio::test]
async fn jd_and_youzan_serve_their_lists() {
    let gw = FakeGateway::start().await.expect("starts");
    let jd_tokens = gw.issue_default_tokens(Platform::Jd, "jd-shop");
    let yz = gw.issue_default_tokens(Platform::Youzan, "yz-shop");
    let start = gw.now() - Duration::hours(1);
    seed(&gw, Platform::Jd, "jd-shop", 3, start, "WAIT_SELLER_STOCK_OUT");
    seed(&gw, Platform::Youzan, "yz-shop", 3, start, "WAIT_SELLER_SEND_GOODS");

    let (app_key, secret) = default_app(Platform::Jd);
    let business = json!({"start_date": fmt_cn(start), "end_date": fmt_cn(gw.now()), "page": "1", "page_size": "2", "order_state": "WAIT_SELLER_STOCK_OUT"});
    let mut p = BTreeMap::from([
        ("method".to_owned(), "jingdong.pop.order.enSearch".to_owned()),
        ("app_key".to_owned(), app_key.to_owned()),
        ("access_token".to_owned(), jd_tokens.access_token.clone()),
        ("timestamp".to_owned(), fmt_cn(gw.now())),
        ("v".to_owned(), "2.0".to_owned()),
        ("360buy_param_json".to_owned(), business.to_string()),
    ]);
    p.insert("sign".into(), jd::sign(secret, &p));
    let answer = post_form(&gw.base_url(Platform::Jd), &p).await;
    let result =
        answer.pointer("/jingdong_pop_order_enSearch_responce/searchorderinfo_result").cloned().unwrap_or_default();
    assert_eq!(result.get("orderTotal").and_then(Value::as_i64), Some(3), "{answer}");
    assert_eq!(result.get("orderInfoList").and_then(Value::as_array).map(Vec::len), Some(2));
    p.insert("sign".into(), "0".repeat(32));
    let bad = post_form(&gw.base_url(Platform::Jd), &p).await;
    assert_eq!(bad.pointer("/error_response/code").and_then(Value::as_str), Some("14"));

    let url =
        format!("{}/api/youzan.trades.sold.get/4.0.0?access_token={}", gw.base_url(Platform::Youzan), yz.access_token);
    let body = json!({"start_update": fmt_cn(start), "end_update": fmt_cn(gw.now()), "page_no": 1, "page_size": 20});
    let answer: Value = http().post(&url).json(&body).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(answer.pointer("/data/total_results").and_then(Value::as_i64), Some(3), "{answer}");
    let bad_token = format!("{}/api/youzan.trades.sold.get/4.0.0?access_token=nope", gw.base_url(Platform::Youzan));
    let answer: Value = http().post(&bad_token).json(&body).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(answer.get("success").and_then(Value::as_bool), Some(false));
}

#[tokio::test]
async fn every_request_is_recorded_with_its_outcome() {
    let gw = FakeGateway::start().await.expect("starts");
    let tokens = gw.issue_default_tokens(Platform::Pdd, "shop-a");
    let end = gw.now();
    pdd(
        &gw,
        "pdd.order.number.list.increment.get",
        Some(&tokens.access_token),
        &pdd_list_params(end - Duration::minutes(5), end, 3, 50),
    )
    .await;
    pdd(
        &gw,
        "pdd.order.number.list.increment.get",
        Some("nope"),
        &pdd_list_params(end - Duration::minutes(5), end, 1, 50),
    )
    .await;
    let records = gw.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].api, "pdd.order.number.list.increment.get");
    assert_eq!(records[0].shop.as_deref(), Some("shop-a"));
    assert_eq!(records[0].page, Some(3));
    assert!(records[0].accepted());
    assert_eq!(records[1].denial, Some(Denial::UnknownToken));
    assert_eq!(records[1].code.as_deref(), Some("20032"));
    assert_eq!(records[1].at, gw.now());
}

#[tokio::test]
async fn broken_answers_on_demand() {
    let gw = FakeGateway::start().await.expect("starts");
    gw.break_next(Platform::Taobao, RawFault::Garbage, 1);
    gw.break_next(Platform::Taobao, RawFault::Status(429), 1);
    let url = gw.base_url(Platform::Taobao);
    let garbage = http().post(&url).body("x=1").send().await.expect("answers");
    assert_eq!(garbage.status(), 200);
    assert!(garbage.json::<Value>().await.is_err(), "not JSON");
    let limited = http().post(&url).body("x=1").send().await.expect("answers");
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let codes: Vec<Option<String>> = gw.records_of(Platform::Taobao).into_iter().map(|r| r.code).collect();
    assert_eq!(codes, [Some("garbage".to_owned()), Some("http-429".to_owned())]);
    // Then the gateway answers normally again (here: TOP's missing app key).
    let normal = http().post(&url).body("x=1").send().await.expect("answers").json::<Value>().await.expect("JSON");
    assert_eq!(top_error(&normal).map(|e| e.0), Some(28));
}
