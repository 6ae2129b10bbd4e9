//! JD (京东) JOS router (`/routerjson`): system parameters `method, app_key, access_token,
//! timestamp, v` and `360buy_param_json` (the API's parameters as one JSON string), signed, in
//! the query string or a form body; and the OAuth refresh endpoint (`/oauth2/refresh_token`).
//!
//! Serves `jingdong.pop.order.enSearch` (orders by modified time), `jingdong.pop.order.get`,
//! `jingdong.pop.afs.soa.refundapply.queryPageList` (refund applications) and the token
//! refresh. The signature follows JD's developer guide (open.jd.com dev-guide listId=2643,
//! official example in the tests below). The error envelope and codes, the response keys and
//! the refund API's parameters are **unconfirmed** (no public source found; docs/platform-apis.md
//! "JD"): they live in this file only, so correcting them touches one place.

use std::collections::BTreeMap;

use axum::response::Response;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde_json::{Value, json};

use super::{
    Ctx, Denial, Order, Platform, RawRequest, Refund, Served, fmt_cn, fresh, int_field, json, page_of, parse_cn,
    required, same, text_field,
};

/// JD's signature: upper hex MD5(secret + k1v1k2v2… + secret) over every parameter but `sign`,
/// sorted by name, empty values skipped (open.jd.com dev-guide listId=2643).
pub fn sign(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut hasher = Md5::new();
    hasher.update(secret.as_bytes());
    for (key, value) in params.iter().filter(|(k, v)| k.as_str() != "sign" && !v.is_empty()) {
        hasher.update(key.as_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(secret.as_bytes());
    hex::encode_upper(hasher.finalize())
}

pub(crate) fn serve(ctx: &mut Ctx<'_>, raw: &RawRequest) -> Served {
    let params = raw.params();
    if raw.path == "/oauth2/refresh_token" {
        let mut served = Served::new("oauth2/refresh_token");
        served.result = refresh(ctx, &params, &mut served);
        return served;
    }
    let mut served = Served::new(params.get("method").cloned().unwrap_or_else(|| "?".into()));
    served.result = answer(ctx, &params, &mut served);
    served
}

fn refresh(ctx: &mut Ctx<'_>, p: &BTreeMap<String, String>, served: &mut Served) -> Result<Response, Denial> {
    let app_key = required(p, "app_key")?.to_owned();
    let secret = ctx.state.secret(&app_key)?;
    if !same(required(p, "app_secret")?, &secret) {
        return Err(Denial::UnknownApp);
    }
    if required(p, "grant_type")? != "refresh_token" {
        return Err(Denial::BadParam("grant_type".into(), "must be refresh_token".into()));
    }
    let now = ctx.now;
    let (shop, tokens) =
        ctx.state.refresh(&app_key, p.get("refresh_token").map(String::as_str), now, ctx.serial, Platform::Jd)?;
    served.shop = Some(shop.clone());
    // Field names as two public JD token classes have them (cdrcool/op-alliance JdTokenResponse.java):
    // expires_in in seconds, refresh_token_expires and time in epoch milliseconds.
    Ok(json(json!({
        "access_token": tokens.access_token, "expires_in": (tokens.expires_at - now).num_seconds(),
        "refresh_token": tokens.refresh_token, "refresh_token_expires": tokens.refresh_expires_at.timestamp_millis(),
        "time": now.timestamp_millis(), "uid": shop, "code": 0
    })))
}

fn answer(ctx: &mut Ctx<'_>, p: &BTreeMap<String, String>, served: &mut Served) -> Result<Response, Denial> {
    let app_key = required(p, "app_key")?.to_owned();
    let secret = ctx.state.secret(&app_key)?;
    let method = required(p, "method")?.to_owned();
    if !fresh(ctx, parse_cn(required(p, "timestamp")?)) {
        return Err(Denial::BadTimestamp);
    }
    if !same(required(p, "sign")?, &sign(&secret, p)) {
        return Err(Denial::BadSignature);
    }
    let now = ctx.now;
    let shop = ctx.state.shop_of(&app_key, p.get("access_token").map(String::as_str), now)?;
    served.shop = Some(shop.clone());
    ctx.state.admit(&app_key, &shop, now)?;
    let business: Value = match p.get("360buy_param_json").filter(|v| !v.is_empty()) {
        None => json!({}),
        Some(raw) => {
            serde_json::from_str(raw).map_err(|_| Denial::BadParam("360buy_param_json".into(), "not JSON".into()))?
        }
    };
    match method.as_str() {
        "jingdong.pop.order.enSearch" => orders(ctx, &business, &shop, served),
        "jingdong.pop.order.get" => {
            let id = text_field(&business, "order_id").ok_or_else(|| Denial::MissingParam("order_id".into()))?;
            let order = ctx.state.order(&shop, &id)?;
            Ok(json(
                json!({"jingdong_pop_order_get_responce": {"code": "0", "orderDetailInfo": {"orderInfo": order_json(&order)}}}),
            ))
        }
        "jingdong.pop.afs.soa.refundapply.queryPageList" => refunds(ctx, &business, &shop, served),
        _ => Err(Denial::UnknownMethod),
    }
}

fn window(business: &Value, start: &str, end: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), Denial> {
    let read = |name: &str| {
        let raw = text_field(business, name).ok_or_else(|| Denial::MissingParam(name.into()))?;
        parse_cn(&raw).ok_or_else(|| Denial::BadParam(name.into(), format!("not a time: {raw}")))
    };
    Ok((read(start)?, read(end)?))
}

fn orders(ctx: &mut Ctx<'_>, business: &Value, shop: &str, served: &mut Served) -> Result<Response, Denial> {
    let (start, end) = window(business, "start_date", "end_date")?;
    // "开始时间和结束时间，不得相差超过1个月" (taken as 30 days).
    ctx.state.check_window(start, end)?;
    let page = int_field(business, "page", 1)?;
    let size = int_field(business, "page_size", 100)?;
    ctx.state.check_page_size(size)?;
    if page < 1 {
        return Err(Denial::BadParam("page".into(), "from 1".into()));
    }
    served.page = Some(page);
    let states: Vec<String> = text_field(business, "order_state")
        .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != "ALL").map(str::to_owned).collect())
        .unwrap_or_default();
    // sortType 1 = newest first is an assumption (public examples pass sortType=1 and dateType=0).
    let newest_first = int_field(business, "sortType", 1)? == 1;
    let all: Vec<Order> = ctx
        .state
        .orders_in(shop, start, end, newest_first)
        .into_iter()
        .filter(|o| states.is_empty() || states.contains(&o.status))
        .collect();
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let rows: Vec<Value> = page_of(&all, page - 1, size).iter().map(order_json).collect();
    ctx.state.list_page_served(ctx.now);
    Ok(json(json!({"jingdong_pop_order_enSearch_responce": {"code": "0", "searchorderinfo_result": {
        "apiResult": {"success": true, "code": "0"}, "orderTotal": total, "orderInfoList": rows
    }}})))
}

fn refunds(ctx: &mut Ctx<'_>, business: &Value, shop: &str, served: &mut Served) -> Result<Response, Denial> {
    let (start, end) = window(business, "applyTimeStart", "applyTimeEnd")?;
    ctx.state.check_window(start, end)?;
    let page = int_field(business, "pageIndex", 1)?;
    let size = int_field(business, "pageSize", 50)?;
    ctx.state.check_page_size(size)?;
    if page < 1 {
        return Err(Denial::BadParam("pageIndex".into(), "from 1".into()));
    }
    served.page = Some(page);
    let all = ctx.state.refunds_in(shop, start, end, false);
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let rows: Vec<Value> = page_of(&all, page - 1, size).iter().map(|(o, r)| refund_json(o, r)).collect();
    ctx.state.list_page_served(ctx.now);
    Ok(json(json!({"jingdong_pop_afs_soa_refundapply_queryPageList_responce": {"code": "0", "queryResult": {
        "success": true, "totalCount": total, "result": rows
    }}})))
}

fn order_json(order: &Order) -> Value {
    json!({
        "orderId": order.id, "orderState": order.status,
        "orderStartTime": fmt_cn(order.created_at), "modified": fmt_cn(order.updated_at),
        "itemInfoList": order.lines.iter().map(|l| json!({
            "skuId": l.sku_id, "outerSkuId": l.outer_sku_id, "itemTotal": l.quantity.to_string(), "wareId": l.line_id
        })).collect::<Vec<_>>()
    })
}

fn refund_json(order: &Order, refund: &Refund) -> Value {
    json!({
        "id": refund.id, "orderId": order.id, "status": refund.status,
        "applyTime": fmt_cn(refund.updated_at), "checkTime": fmt_cn(refund.updated_at),
        "applyRefundSum": refund.amount_fen
    })
}

/// The error for a denial: `(code, response)` in the `error_response {code, zh_desc, en_desc}`
/// envelope. **All codes here are unconfirmed** (docs/platform-apis.md "JD").
pub(crate) fn deny(denial: &Denial) -> (String, Response) {
    let (code, zh, en): (&str, String, &str) = match denial {
        Denial::MissingParam(name) => ("61", format!("缺少参数 {name}"), "Missing required arguments"),
        Denial::BadParam(name, why) => ("62", format!("{name}: {why}"), "Invalid arguments"),
        Denial::UnknownApp => ("12", "无效的app_key".into(), "Invalid app_key"),
        Denial::BadTimestamp => ("15", "时间戳与服务器时间误差过大".into(), "Invalid timestamp"),
        Denial::BadSignature => ("14", "签名无效".into(), "Invalid signature"),
        Denial::MissingToken => ("18", "缺少access_token".into(), "Missing access_token"),
        Denial::UnknownToken | Denial::ForeignToken => {
            ("19", "token不存在，请重新授权访问".into(), "Invalid access_token")
        }
        Denial::ExpiredToken => ("19", "token已过期，请重新授权访问".into(), "Invalid access_token"),
        Denial::RevokedToken => ("19", "商家已取消授权".into(), "Invalid access_token"),
        Denial::InvalidRefreshToken => ("2013", "refresh_token无效".into(), "Invalid refresh_token"),
        Denial::ExpiredRefreshToken => ("2014", "refresh_token已过期".into(), "Expired refresh_token"),
        Denial::RateLimited { .. } => ("7", "调用频率超限".into(), "Call limited"),
        Denial::ServerError => ("66", "平台连接后端服务超时".into(), "Backend service timeout"),
        Denial::WindowTooLong => ("62", "开始时间和结束时间不得相差超过1个月".into(), "Invalid arguments"),
        Denial::BadPageSize => ("62", "page_size 超出范围".into(), "Invalid arguments"),
        Denial::UnknownMethod => ("22", "无效的方法名".into(), "Invalid method"),
        Denial::NotFound => ("10400001", "订单不存在".into(), "Order not found"),
    };
    (code.to_owned(), json(json!({"error_response": {"code": code, "zh_desc": zh, "en_desc": en}})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_the_official_guide_example() {
        // JD developer guide, "签名算法" (open.jd.com/v2/#/doc/dev-guide?listId=2643), as
        // transcribed in a public signature-vector fixture; reproduced with Python hashlib.
        let p: BTreeMap<String, String> = [
            (
                "360buy_param_json",
                r#"{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200","start_date":null}"#,
            ),
            ("access_token", "yourtoken"),
            ("app_key", "yourappkey"),
            ("method", "jingdong.pop.order.search"),
            ("timestamp", "2021-05-07 09:20:39.683+0800"),
            ("v", "2.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(sign("yourappSecret", &p), "D70825340F4084360B9362B60DFD7930");
        let mut with_sign = p.clone();
        with_sign.insert("sign".into(), "stale".into());
        assert_eq!(sign("yourappSecret", &with_sign), "D70825340F4084360B9362B60DFD7930");
    }

    #[test]
    fn the_guide_timestamp_reads_as_shanghai_time() {
        let at = parse_cn("2021-05-07 09:20:39.683+0800").map(|t| t.timestamp_millis());
        assert_eq!(at, Some(1_620_350_439_683));
    }
}
