//! Youzan (有赞云) open API: `POST {base}/api/{method}/{version}?access_token=…` with the API's
//! parameters as a JSON body; tokens from `POST {base}/auth/token`.
//!
//! API calls carry **no signature**: the access token alone authenticates them (public clients
//! build `https://open.youzanyun.com/api/<method>/<version>` with `access_token` in the query).
//! Serves `youzan.trades.sold.get` (orders by update time), `youzan.trade.refund.search`
//! (refunds by update time), `youzan.trade.get` and the token endpoint with
//! `authorize_type=refresh_token`. Parameter names of the refund search, the time window
//! parameter names, the error codes and the token answer's field names are **unconfirmed**
//! (docs/platform-apis.md "Youzan").

use std::collections::BTreeMap;

use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    Ctx, Denial, Order, Platform, RawRequest, Refund, Served, fmt_cn, int_field, json, page_of, parse_cn, same,
    text_field,
};

pub(crate) fn serve(ctx: &mut Ctx<'_>, raw: &RawRequest) -> Served {
    let body: Value =
        if raw.body.is_empty() { json!({}) } else { serde_json::from_slice(&raw.body).unwrap_or(Value::Null) };
    if raw.path == "/auth/token" {
        let mut served = Served::new("auth/token");
        served.result = token(ctx, &body, &mut served);
        return served;
    }
    let mut parts = raw.path.trim_start_matches('/').split('/');
    let (api, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some("api"), Some(method), Some(version)) => (method.to_owned(), version.to_owned()),
        _ => ("?".to_owned(), String::new()),
    };
    let mut served = Served::new(api.clone());
    served.result = answer(ctx, &raw.query, &api, &version, &body, &mut served);
    served
}

fn token(ctx: &mut Ctx<'_>, body: &Value, served: &mut Served) -> Result<Response, Denial> {
    let client_id = text_field(body, "client_id").ok_or_else(|| Denial::MissingParam("client_id".into()))?;
    let secret = ctx.state.secret(&client_id)?;
    let given = text_field(body, "client_secret").ok_or_else(|| Denial::MissingParam("client_secret".into()))?;
    if !same(&given, &secret) {
        return Err(Denial::UnknownApp);
    }
    if text_field(body, "authorize_type").as_deref() != Some("refresh_token") {
        return Err(Denial::BadParam("authorize_type".into(), "the fake serves refresh_token".into()));
    }
    let now = ctx.now;
    let refresh = text_field(body, "refresh_token");
    let (shop, tokens) = ctx.state.refresh(&client_id, refresh.as_deref(), now, ctx.serial, Platform::Youzan)?;
    served.shop = Some(shop.clone());
    Ok(ok(json!({
        "access_token": tokens.access_token, "expires": tokens.expires_at.timestamp_millis(),
        "refresh_token": tokens.refresh_token, "scope": "trade", "authority_id": shop
    })))
}

fn answer(
    ctx: &mut Ctx<'_>,
    query: &BTreeMap<String, String>,
    api: &str,
    version: &str,
    body: &Value,
    served: &mut Served,
) -> Result<Response, Denial> {
    if api == "?" || version.is_empty() {
        return Err(Denial::UnknownMethod);
    }
    if body.is_null() {
        return Err(Denial::BadParam("body".into(), "not JSON".into()));
    }
    let now = ctx.now;
    // The request names no app: the token says whose it is.
    let token = query.get("access_token").map(String::as_str);
    let app_key = token.and_then(|t| ctx.state.token_app(t)).unwrap_or_default();
    let shop = ctx.state.shop_of(&app_key, token, now)?;
    served.shop = Some(shop.clone());
    ctx.state.admit(&app_key, &shop, now)?;
    match api {
        "youzan.trades.sold.get" => orders(ctx, body, &shop, served),
        "youzan.trade.refund.search" => refunds(ctx, body, &shop, served),
        "youzan.trade.get" => {
            let tid = text_field(body, "tid").ok_or_else(|| Denial::MissingParam("tid".into()))?;
            let order = ctx.state.order(&shop, &tid)?;
            Ok(ok(json!({ "full_order_info": order_json(&order) })))
        }
        _ => Err(Denial::UnknownMethod),
    }
}

fn ok(data: Value) -> Response {
    json(json!({"success": true, "code": 200, "message": "successful", "data": data, "trace_id": "fake"}))
}

fn window(ctx: &Ctx<'_>, body: &Value, start: &str, end: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), Denial> {
    let read = |name: &str| {
        let raw = text_field(body, name).ok_or_else(|| Denial::MissingParam(name.into()))?;
        parse_cn(&raw).ok_or_else(|| Denial::BadParam(name.into(), format!("not a time: {raw}")))
    };
    let (start, end) = (read(start)?, read(end)?);
    ctx.state.check_window(start, end)?;
    Ok((start, end))
}

fn paging(ctx: &Ctx<'_>, body: &Value) -> Result<(i64, i64), Denial> {
    let page = int_field(body, "page_no", 1)?;
    let size = int_field(body, "page_size", 20)?;
    ctx.state.check_page_size(size)?;
    if page < 1 {
        return Err(Denial::BadParam("page_no".into(), "from 1".into()));
    }
    Ok((page, size))
}

fn orders(ctx: &mut Ctx<'_>, body: &Value, shop: &str, served: &mut Served) -> Result<Response, Denial> {
    let (start, end) = window(ctx, body, "start_update", "end_update")?;
    let (page, size) = paging(ctx, body)?;
    served.page = Some(page);
    let all = ctx.state.orders_in(shop, start, end, true);
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let rows: Vec<Value> =
        page_of(&all, page - 1, size).iter().map(|o| json!({ "full_order_info": order_json(o) })).collect();
    ctx.state.list_page_served(ctx.now);
    Ok(ok(json!({"total_results": total, "full_order_info_list": rows})))
}

fn refunds(ctx: &mut Ctx<'_>, body: &Value, shop: &str, served: &mut Served) -> Result<Response, Denial> {
    let (start, end) = window(ctx, body, "update_time_start", "update_time_end")?;
    let (page, size) = paging(ctx, body)?;
    served.page = Some(page);
    let all: Vec<(Order, Refund)> = ctx.state.refunds_in(shop, start, end, true);
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let rows: Vec<Value> = page_of(&all, page - 1, size)
        .iter()
        .map(|(o, r)| {
            json!({
                "refund_id": r.id, "tid": o.id, "oid": r.line_id, "status": r.status,
                "modified": fmt_cn(r.updated_at), "refund_fee": r.amount_fen
            })
        })
        .collect();
    ctx.state.list_page_served(ctx.now);
    Ok(ok(json!({"total": total, "refunds": rows})))
}

fn order_json(order: &Order) -> Value {
    json!({
        "order_info": {"tid": order.id, "status": order.status, "created": fmt_cn(order.created_at), "update_time": fmt_cn(order.updated_at)},
        "orders": order.lines.iter().map(|l| json!({
            "oid": l.line_id, "sku_id": l.sku_id, "outer_sku_id": l.outer_sku_id, "num": l.quantity
        })).collect::<Vec<_>>(),
        "refund_info": order.refunds.iter().map(|r| json!({"refund_id": r.id, "status": r.status})).collect::<Vec<_>>()
    })
}

/// The error for a denial: `(code, response)` as `{success: false, code, message}`. The codes
/// are **unconfirmed** (docs/platform-apis.md "Youzan").
pub(crate) fn deny(denial: &Denial) -> (String, Response) {
    let (code, msg): (i64, String) = match denial {
        Denial::MissingParam(name) => (4001, format!("缺少参数 {name}")),
        Denial::BadParam(name, why) => (4002, format!("{name}: {why}")),
        Denial::UnknownApp => (4003, "client_id 或 client_secret 不正确".into()),
        Denial::BadTimestamp | Denial::BadSignature => (4004, "请求不合法".into()),
        Denial::MissingToken => (4201, "缺少 access_token".into()),
        Denial::UnknownToken | Denial::ForeignToken => (4202, "access_token 不合法".into()),
        Denial::ExpiredToken => (4203, "access_token 已过期".into()),
        Denial::RevokedToken => (4204, "授权已取消".into()),
        Denial::InvalidRefreshToken => (4205, "refresh_token 不合法".into()),
        Denial::ExpiredRefreshToken => (4206, "refresh_token 已过期".into()),
        Denial::RateLimited { .. } => (4290, "调用频率超限".into()),
        Denial::ServerError => (5000, "服务繁忙，请稍后重试".into()),
        Denial::WindowTooLong => (4002, "时间跨度过大".into()),
        Denial::BadPageSize => (4002, "page_size 超出范围".into()),
        Denial::UnknownMethod => (4040, "API 不存在".into()),
        Denial::NotFound => (4041, "订单不存在".into()),
    };
    (code.to_string(), json(json!({"success": false, "code": code, "message": msg, "trace_id": "fake"})))
}
