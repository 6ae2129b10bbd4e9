//! Taobao/Tmall TOP router (`/router/rest`): system parameters `method, app_key, session,
//! timestamp, format, v, sign_method, sign` and the API's own, in the query string or a form
//! body.
//!
//! Serves `taobao.trades.sold.increment.get`, `taobao.refunds.receive.get`,
//! `taobao.trade.fullinfo.get`, `taobao.refund.get` and `taobao.top.auth.token.refresh`.
//! Sources (docs/platform-apis.md, "Taobao"): the API docs generated from TOP's metadata in
//! bububa/opentaobao (`model/tbtrade/TaobaoTradesSoldIncrementGetAPIRequest.go`,
//! `model/refund/TaobaoRefundsReceiveGetAPIRequest.go`, `model/request.go`, `core/client.go`),
//! and TOP's published error table (code < 100 platform errors; `isp.*` sub codes retryable).

use std::collections::BTreeMap;

use axum::response::Response;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{
    Ctx, Denial, Order, Platform, RawRequest, Refund, Served, fmt_cn, fresh, int_param, json, page_of, parse_cn,
    required, same, time_param,
};

/// TOP's three signing methods (`sign_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    /// `md5`: upper hex MD5(secret + s + secret).
    Md5,
    /// `hmac`: upper hex HMAC-MD5(key = secret, s).
    HmacMd5,
    /// `hmac-sha256`: upper hex HMAC-SHA256(key = secret, s).
    HmacSha256,
}

impl SignMethod {
    /// From the `sign_method` parameter (absent means md5, the router's default).
    pub fn from_param(raw: Option<&str>) -> Option<Self> {
        match raw {
            None | Some("" | "md5") => Some(Self::Md5),
            Some("hmac") => Some(Self::HmacMd5),
            Some("hmac-sha256") => Some(Self::HmacSha256),
            Some(_) => None,
        }
    }
}

/// The string TOP signs: every parameter but `sign`, sorted by name, `key + value` with
/// empty values left out.
fn canonical(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !k.is_empty() && !v.is_empty())
        .map(|(k, v)| format!("{k}{v}"))
        .collect()
}

/// TOP's signature of `params` (TOP 签名算法, open.taobao.com docId=101617; the Go SDK
/// bububa/opentaobao `core/client.go` `sign`).
pub fn sign(secret: &str, params: &BTreeMap<String, String>, method: SignMethod) -> String {
    let s = canonical(params);
    let digest = match method {
        SignMethod::Md5 => {
            let mut hasher = Md5::new();
            hasher.update(secret.as_bytes());
            hasher.update(s.as_bytes());
            hasher.update(secret.as_bytes());
            hasher.finalize().to_vec()
        }
        SignMethod::HmacMd5 => match Hmac::<Md5>::new_from_slice(secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(s.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        SignMethod::HmacSha256 => match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(s.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
    };
    hex::encode_upper(digest)
}

pub(crate) fn serve(ctx: &mut Ctx<'_>, raw: &RawRequest) -> Served {
    let params = raw.params();
    let mut served = Served::new(params.get("method").cloned().unwrap_or_else(|| "?".into()));
    served.result = answer(ctx, &params, &mut served);
    served
}

fn answer(ctx: &mut Ctx<'_>, p: &BTreeMap<String, String>, served: &mut Served) -> Result<Response, Denial> {
    let app_key = required(p, "app_key")?.to_owned();
    let secret = ctx.state.secret(&app_key)?;
    let method = required(p, "method")?.to_owned();
    // "时间戳，格式为yyyy-MM-dd HH:mm:ss，时区为GMT+8 … 允许客户端请求最大时间误差为10分钟" (model/request.go).
    let timestamp = required(p, "timestamp")?;
    if !fresh(ctx, parse_cn(timestamp)) {
        return Err(Denial::BadTimestamp);
    }
    let given = required(p, "sign")?;
    let sign_method = SignMethod::from_param(p.get("sign_method").map(String::as_str)).ok_or(Denial::BadSignature)?;
    if !same(given, &sign(&secret, p, sign_method)) {
        return Err(Denial::BadSignature);
    }
    let now = ctx.now;
    if method == "taobao.top.auth.token.refresh" {
        let (shop, tokens) = ctx.state.refresh(
            &app_key,
            p.get("refresh_token").map(String::as_str),
            now,
            ctx.serial,
            Platform::Taobao,
        )?;
        served.shop = Some(shop.clone());
        // `token_result` is a JSON string ("返回的是json信息"); the field names inside follow the
        // OAuth token answer and are unconfirmed.
        let token = json!({
            "access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "token_type": "Bearer",
            "expires_in": (tokens.expires_at - now).num_seconds(), "expire_time": tokens.expires_at.timestamp_millis(),
            "re_expires_in": (tokens.refresh_expires_at - now).num_seconds(),
            "refresh_token_valid_time": tokens.refresh_expires_at.timestamp_millis(),
            "taobao_user_nick": shop, "taobao_user_id": shop
        });
        return Ok(json(
            json!({"top_auth_token_refresh_response": {"token_result": token.to_string(), "request_id": "fake"}}),
        ));
    }
    let session = p.get("session").map(String::as_str).filter(|s| !s.is_empty()).ok_or(Denial::MissingToken)?;
    let shop = ctx.state.shop_of(&app_key, Some(session), now)?;
    served.shop = Some(shop.clone());
    ctx.state.admit(&app_key, &shop, now)?;
    match method.as_str() {
        "taobao.trades.sold.increment.get" => trades(ctx, p, &shop, served),
        "taobao.refunds.receive.get" => refunds(ctx, p, &shop, served),
        "taobao.trade.fullinfo.get" => {
            let order = ctx.state.order(&shop, required(p, "tid")?)?;
            Ok(json(json!({"trade_fullinfo_get_response": {"trade": trade_json(&order), "request_id": "fake"}})))
        }
        "taobao.refund.get" => {
            let (order, refund) = ctx.state.refund(&shop, required(p, "refund_id")?)?;
            Ok(json(json!({"refund_get_response": {"refund": refund_json(&order, &refund), "request_id": "fake"}})))
        }
        _ => Err(Denial::UnknownMethod),
    }
}

fn window(p: &BTreeMap<String, String>) -> Result<(DateTime<Utc>, DateTime<Utc>), Denial> {
    Ok((time_param(p, "start_modified", parse_cn)?, time_param(p, "end_modified", parse_cn)?))
}

fn paging(ctx: &Ctx<'_>, p: &BTreeMap<String, String>) -> Result<(i64, i64, bool), Denial> {
    // "页码。取值范围:大于零的整数;默认值:1", "每页条数。取值范围：1~100，默认值：40".
    let page = int_param(p, "page_no", 1)?;
    let size = int_param(p, "page_size", 40)?;
    ctx.state.check_page_size(size)?;
    if page < 1 {
        return Err(Denial::BadParam("page_no".into(), "大于零的整数".into()));
    }
    Ok((page, size, p.get("use_has_next").is_some_and(|v| v == "true")))
}

fn trades(
    ctx: &mut Ctx<'_>,
    p: &BTreeMap<String, String>,
    shop: &str,
    served: &mut Served,
) -> Result<Response, Denial> {
    required(p, "fields")?;
    let (start, end) = window(p)?;
    // "end_modified - start_modified <= 1天".
    ctx.state.check_window(start, end)?;
    let (page, size, use_has_next) = paging(ctx, p)?;
    served.page = Some(page);
    let status = p.get("status").filter(|s| !s.is_empty()).cloned();
    // "返回的数据结果是以订单的修改时间倒序排列的".
    let all: Vec<Order> = ctx
        .state
        .orders_in(shop, start, end, true)
        .into_iter()
        .filter(|o| status.as_ref().is_none_or(|s| &o.status == s))
        .collect();
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let rows: Vec<Value> = page_of(&all, page - 1, size).iter().map(trade_json).collect();
    let mut body = json!({"trades": {"trade": rows}, "has_next": page * size < total, "request_id": "fake"});
    if !use_has_next {
        body["total_results"] = json!(total);
    }
    ctx.state.list_page_served(ctx.now);
    Ok(json(json!({ "trades_sold_increment_get_response": body })))
}

fn refunds(
    ctx: &mut Ctx<'_>,
    p: &BTreeMap<String, String>,
    shop: &str,
    served: &mut Served,
) -> Result<Response, Denial> {
    required(p, "fields")?;
    let (start, end) = window(p)?;
    // No window limit is documented for this API (docs/platform-apis.md: unconfirmed).
    if end < start {
        return Err(Denial::BadParam("end_modified".into(), "end before start".into()));
    }
    let (page, size, use_has_next) = paging(ctx, p)?;
    served.page = Some(page);
    let status = p.get("status").filter(|s| !s.is_empty()).cloned();
    // Order of the refund list is not documented; newest first like the trade list (unconfirmed).
    let all: Vec<(Order, Refund)> = ctx
        .state
        .refunds_in(shop, start, end, true)
        .into_iter()
        .filter(|(_, r)| status.as_ref().is_none_or(|s| &r.status == s))
        .collect();
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let rows: Vec<Value> = page_of(&all, page - 1, size).iter().map(|(o, r)| refund_json(o, r)).collect();
    let mut body = json!({"refunds": {"refund": rows}, "has_next": page * size < total, "request_id": "fake"});
    if !use_has_next {
        body["total_results"] = json!(total);
    }
    ctx.state.list_page_served(ctx.now);
    Ok(json(json!({ "refunds_receive_get_response": body })))
}

fn trade_json(order: &Order) -> Value {
    json!({
        "tid": order.id, "status": order.status,
        "created": fmt_cn(order.created_at), "modified": fmt_cn(order.updated_at),
        "orders": {"order": order.lines.iter().map(|l| {
            let refund = order.refunds.iter().filter(|r| r.line_id.as_deref() == Some(l.line_id.as_str())).max_by_key(|r| r.updated_at);
            json!({
                "oid": l.line_id, "status": order.status, "sku_id": l.sku_id, "outer_sku_id": l.outer_sku_id, "num": l.quantity,
                "refund_status": refund.map_or_else(|| if order.refund_status.is_empty() { "NO_REFUND".to_owned() } else { order.refund_status.clone() }, |r| r.status.clone()),
                "refund_id": refund.map(|r| r.id.clone())
            })
        }).collect::<Vec<_>>()}
    })
}

fn refund_json(order: &Order, refund: &Refund) -> Value {
    json!({
        "refund_id": refund.id, "tid": order.id, "oid": refund.line_id, "status": refund.status,
        "order_status": order.status, "modified": fmt_cn(refund.updated_at),
        "refund_fee": format!("{:.2}", refund.amount_fen as f64 / 100.0)
    })
}

/// TOP's error for a denial: `(code, response)`. Codes below 100 are TOP's platform errors
/// (7 App Call Limited, 15 Remote service error, 21–31, 40, 41); sub codes starting `isp.` are
/// the platform's own faults, to retry later. Which sub code TOP sends for the window and
/// refresh cases is unconfirmed (docs/platform-apis.md).
pub(crate) fn deny(denial: &Denial) -> (String, Response) {
    let (code, msg, sub): (i64, &str, Option<(String, String)>) = match denial {
        Denial::MissingParam(name) if name == "app_key" => (28, "Missing App Key", None),
        Denial::MissingParam(name) if name == "method" => (21, "Missing Method", None),
        Denial::MissingParam(name) if name == "timestamp" => (30, "Missing Timestamp", None),
        Denial::MissingParam(name) if name == "sign" => (24, "Missing Signature", None),
        Denial::MissingParam(name) => (
            40,
            "Missing required arguments",
            Some((format!("isv.missing-parameter:{name}"), format!("缺少参数{name}"))),
        ),
        Denial::BadParam(name, why) => {
            (41, "Invalid arguments", Some((format!("isv.invalid-parameter:{name}"), why.clone())))
        }
        Denial::UnknownApp => (29, "Invalid App Key", None),
        Denial::BadTimestamp => (31, "Invalid Timestamp", None),
        Denial::BadSignature => (25, "Invalid Signature", None),
        Denial::MissingToken => (26, "Missing Session", None),
        Denial::UnknownToken | Denial::ForeignToken => {
            (27, "Invalid session", Some(("invalid-sessionkey".into(), "SessionKey非法".into())))
        }
        Denial::ExpiredToken => (27, "Invalid session", Some(("invalid-sessionkey".into(), "SessionKey已过期".into()))),
        Denial::RevokedToken => (27, "Invalid session", Some(("invalid-sessionkey".into(), "用户已取消授权".into()))),
        Denial::InvalidRefreshToken | Denial::ExpiredRefreshToken => {
            (15, "Remote service error", Some(("isv.invalid-parameter".into(), "refresh_token非法或已过期".into())))
        }
        Denial::RateLimited { retry_after_s } => (
            7,
            "App Call Limited",
            Some((
                "accesscontrol.limited-by-app-api-access-count".into(),
                format!("This ban will last for {retry_after_s} more seconds"),
            )),
        ),
        Denial::ServerError => {
            (15, "Remote service error", Some(("isp.top-remote-connection-timeout".into(), "远程服务调用超时".into())))
        }
        Denial::WindowTooLong => (
            41,
            "Invalid arguments",
            Some(("isv.invalid-parameter:end_modified".into(), "修改时间跨度不能大于一天".into())),
        ),
        Denial::BadPageSize => {
            (41, "Invalid arguments", Some(("isv.invalid-parameter:page_size".into(), "取值范围：1~100".into())))
        }
        Denial::UnknownMethod => (22, "Invalid Method", None),
        Denial::NotFound => (15, "Remote service error", Some(("isv.trade-not-exist".into(), "交易订单不存在".into()))),
    };
    let mut error = json!({"code": code, "msg": msg, "request_id": "fake"});
    if let Some((sub_code, sub_msg)) = sub {
        error["sub_code"] = json!(sub_code);
        error["sub_msg"] = json!(sub_msg);
    }
    (code.to_string(), json(json!({ "error_response": error })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn md5_matches_top_official_example() {
        // TOP 签名算法 example, open.taobao.com docId=101617 (secret "helloworld"); the same
        // expected value is asserted by several unrelated public SDK tests.
        let p = params(&[
            ("method", "taobao.item.seller.get"),
            ("app_key", "12345678"),
            ("session", "test"),
            ("timestamp", "2016-01-01 12:00:00"),
            ("format", "json"),
            ("v", "2.0"),
            ("sign_method", "md5"),
            ("fields", "num_iid,title,nick,price,num"),
            ("num_iid", "11223344"),
        ]);
        assert_eq!(sign("helloworld", &p, SignMethod::Md5), "66987CB115214E59E6EC978214934FB8");
        let mut with_sign = p.clone();
        with_sign.insert("sign".into(), "stale".into());
        with_sign.insert("empty".into(), String::new());
        assert_eq!(sign("helloworld", &with_sign, SignMethod::Md5), "66987CB115214E59E6EC978214934FB8");
    }

    #[test]
    fn hmac_methods_match_the_rfc_vectors() {
        // The canonical string of {"Hi": " There"} is "Hi There": RFC 2202 test case 1 (HMAC-MD5,
        // key 16 × 0x0b) and RFC 4231 test case 1 (HMAC-SHA256, key 20 × 0x0b).
        let p = params(&[("Hi", " There")]);
        assert_eq!(sign(&"\u{b}".repeat(16), &p, SignMethod::HmacMd5), "9294727A3638BB1C13F48EF8158BFC9D");
        assert_eq!(
            sign(&"\u{b}".repeat(20), &p, SignMethod::HmacSha256),
            "B0344C61D8DB38535CA8AFCEAF0BF12B881DC200C9833DA726E9376C2E32CFF7"
        );
    }
}
