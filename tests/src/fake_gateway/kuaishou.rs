//! Kuaishou (快手小店) open API: `GET|POST {base}/{method with dots as slashes}` with `appkey,
//! method, version, param (JSON), access_token, timestamp (ms), signMethod, sign`; and the OAuth
//! refresh endpoint `/oauth2/refresh_token`.
//!
//! Serves `open.order.cursor.list` (orders by update time, cursor paging),
//! `open.seller.order.refund.pcursor.list` (refunds, cursor paging), `open.order.detail` and
//! the token refresh. Sources (docs/platform-apis.md "Kuaishou"): westng/kwaishop-php-sdk
//! `src/Signing/*`, `src/Client/Pipeline/RequestFactory.php`, `src/Auth/OAuthClient.php`,
//! `src/Config/Config.php`, `src/Client/Pipeline/ResponseParser.php`; the `open.order.cursor.list`
//! parameter names from public callers. The cursor end marker, the response field names and
//! the error codes are **unconfirmed**.

use std::collections::BTreeMap;

use axum::response::Response;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{
    Ctx, Denial, Order, Platform, RawRequest, Refund, Served, fresh, from_epoch_ms, int_field, json, page_of, required,
    same, text_field,
};

/// The cursor that says there is nothing more (unconfirmed; widely used by public callers).
pub const NO_MORE: &str = "nomore";

/// Kuaishou's signing methods (`signMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    /// `MD5`: lowercase hex MD5 of the string.
    Md5,
    /// `HMAC_SHA256`: base64 HMAC-SHA256 (key = sign secret) of the string.
    HmacSha256,
}

/// Kuaishou's signature: `s` = the parameters but `sign`/`signSecret`, sorted, as `k=v` joined
/// by `&`, then `&signSecret=<secret>` (westng/kwaishop-php-sdk `src/Signing/Md5Signer.php`,
/// `HmacSha256Signer.php`).
pub fn sign(secret: &str, params: &BTreeMap<String, String>, method: SignMethod) -> String {
    let mut segments: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "sign" && k.as_str() != "signSecret")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    segments.push(format!("signSecret={secret}"));
    let s = segments.join("&");
    match method {
        SignMethod::Md5 => hex::encode(Md5::digest(s.as_bytes())),
        SignMethod::HmacSha256 => match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(s.as_bytes());
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        },
    }
}

pub(crate) fn serve(ctx: &mut Ctx<'_>, raw: &RawRequest) -> Served {
    let params = raw.params();
    if raw.path == "/oauth2/refresh_token" {
        let mut served = Served::new("oauth2/refresh_token");
        served.result = refresh(ctx, &params, &mut served);
        return served;
    }
    let mut served = Served::new(params.get("method").cloned().unwrap_or_else(|| "?".into()));
    served.result = answer(ctx, raw, &params, &mut served);
    served
}

fn refresh(ctx: &mut Ctx<'_>, p: &BTreeMap<String, String>, served: &mut Served) -> Result<Response, Denial> {
    let app_id = required(p, "app_id")?.to_owned();
    let secret = ctx.state.secret(&app_id)?;
    // Real apps have an appSecret apart from the signSecret; the fake has one secret per app.
    if !same(required(p, "app_secret")?, &secret) {
        return Err(Denial::UnknownApp);
    }
    if required(p, "grant_type")? != "refresh_token" {
        return Err(Denial::BadParam("grant_type".into(), "must be refresh_token".into()));
    }
    let now = ctx.now;
    let (shop, tokens) =
        ctx.state.refresh(&app_id, p.get("refresh_token").map(String::as_str), now, ctx.serial, Platform::Kuaishou)?;
    served.shop = Some(shop.clone());
    Ok(json(json!({
        "result": 1, "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "expires_in": (tokens.expires_at - now).num_seconds(),
        "refresh_token_expires_in": (tokens.refresh_expires_at - now).num_seconds(),
        "open_id": shop, "scopes": ["merchant_order", "merchant_refund"]
    })))
}

fn answer(
    ctx: &mut Ctx<'_>,
    raw: &RawRequest,
    p: &BTreeMap<String, String>,
    served: &mut Served,
) -> Result<Response, Denial> {
    let app_key = required(p, "appkey")?.to_owned();
    let secret = ctx.state.secret(&app_key)?;
    let method = required(p, "method")?.to_owned();
    // "{base}/" + method with dots replaced by slashes (RequestFactory.php).
    if raw.path != format!("/{}", method.replace('.', "/")) {
        return Err(Denial::BadParam("method".into(), "does not match the path".into()));
    }
    if !fresh(ctx, from_epoch_ms(required(p, "timestamp")?)) {
        return Err(Denial::BadTimestamp);
    }
    let sign_method = match required(p, "signMethod")? {
        "MD5" => SignMethod::Md5,
        "HMAC_SHA256" => SignMethod::HmacSha256,
        _ => return Err(Denial::BadSignature),
    };
    if !same(required(p, "sign")?, &sign(&secret, p, sign_method)) {
        return Err(Denial::BadSignature);
    }
    let now = ctx.now;
    let shop = ctx.state.shop_of(&app_key, p.get("access_token").map(String::as_str), now)?;
    served.shop = Some(shop.clone());
    ctx.state.admit(&app_key, &shop, now)?;
    let param: Value = match p.get("param").filter(|v| !v.is_empty()) {
        None => json!({}),
        Some(raw) => serde_json::from_str(raw).map_err(|_| Denial::BadParam("param".into(), "not JSON".into()))?,
    };
    match method.as_str() {
        "open.order.cursor.list" => orders(ctx, &param, &shop, served),
        "open.seller.order.refund.pcursor.list" => refunds(ctx, &param, &shop, served),
        "open.order.detail" => {
            let id = text_field(&param, "oid").ok_or_else(|| Denial::MissingParam("oid".into()))?;
            let order = ctx.state.order(&shop, &id)?;
            Ok(ok(order_json(&order)))
        }
        _ => Err(Denial::UnknownMethod),
    }
}

fn ok(data: Value) -> Response {
    json(json!({"result": 1, "error_msg": "", "data": data}))
}

/// The page a cursor points at: the fake's cursors are the next offset as text.
fn offset(cursor: Option<String>) -> Result<i64, Denial> {
    match cursor.as_deref() {
        None | Some("") => Ok(0),
        Some(NO_MORE) => Err(Denial::BadParam("cursor".into(), "nothing more".into())),
        Some(raw) => raw.parse().map_err(|_| Denial::BadParam("cursor".into(), "unknown cursor".into())),
    }
}

fn window(
    ctx: &Ctx<'_>,
    param: &Value,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), Denial> {
    let read = |name: &str| {
        let raw = text_field(param, name).ok_or_else(|| Denial::MissingParam(name.into()))?;
        from_epoch_ms(&raw).ok_or_else(|| Denial::BadParam(name.into(), format!("not epoch milliseconds: {raw}")))
    };
    let (start, end) = (read("beginTime")?, read("endTime")?);
    ctx.state.check_window(start, end)?;
    Ok((start, end))
}

fn orders(ctx: &mut Ctx<'_>, param: &Value, shop: &str, served: &mut Served) -> Result<Response, Denial> {
    // queryType 2 = by update time (the fake serves only that); sort 1 = newest first (unconfirmed).
    if int_field(param, "queryType", 1)? != 2 {
        return Err(Denial::BadParam("queryType".into(), "the fake serves queryType=2 (update time)".into()));
    }
    let (start, end) = window(ctx, param)?;
    let size = int_field(param, "pageSize", 20)?;
    ctx.state.check_page_size(size)?;
    let from = offset(text_field(param, "cursor"))?;
    served.page = Some(from / size.max(1));
    let newest_first = int_field(param, "sort", 1)? == 1;
    let all = ctx.state.orders_in(shop, start, end, newest_first);
    let rows: Vec<Value> = all
        .iter()
        .skip(usize::try_from(from).unwrap_or(usize::MAX))
        .take(usize::try_from(size).unwrap_or(0))
        .map(order_json)
        .collect();
    let next = from + size;
    let cursor =
        if next >= i64::try_from(all.len()).unwrap_or(i64::MAX) { NO_MORE.to_owned() } else { next.to_string() };
    ctx.state.list_page_served(ctx.now);
    Ok(ok(
        json!({"cursor": cursor, "pageSize": size, "beginTime": start.timestamp_millis(), "endTime": end.timestamp_millis(), "orderList": rows}),
    ))
}

fn refunds(ctx: &mut Ctx<'_>, param: &Value, shop: &str, served: &mut Served) -> Result<Response, Denial> {
    let (start, end) = window(ctx, param)?;
    let size = int_field(param, "pageSize", 20)?;
    ctx.state.check_page_size(size)?;
    let from = offset(text_field(param, "pcursor"))?;
    served.page = Some(from / size.max(1));
    let newest_first = int_field(param, "sort", 1)? == 1;
    let all: Vec<(Order, Refund)> = ctx.state.refunds_in(shop, start, end, newest_first);
    let rows: Vec<Value> = page_of(&all[usize::try_from(from).unwrap_or(0).min(all.len())..], 0, size)
        .iter()
        .map(|(o, r)| refund_json(o, r))
        .collect();
    let next = from + size;
    let cursor =
        if next >= i64::try_from(all.len()).unwrap_or(i64::MAX) { NO_MORE.to_owned() } else { next.to_string() };
    ctx.state.list_page_served(ctx.now);
    Ok(ok(json!({"pcursor": cursor, "refundOrderInfoList": rows})))
}

fn code(raw: &str) -> Value {
    raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n))
}

fn order_json(order: &Order) -> Value {
    json!({
        "orderBaseInfo": {
            "oid": order.id, "status": code(&order.status), "createTime": order.created_at.timestamp_millis(),
            "updateTime": order.updated_at.timestamp_millis()
        },
        "orderItemInfo": order.lines.first().map(|l| json!({"itemId": l.line_id, "skuId": l.sku_id, "relSkuId": l.outer_sku_id, "num": l.quantity})),
        "orderRefundList": order.refunds.iter().map(|r| json!({"refundId": r.id, "refundStatus": code(&r.status)})).collect::<Vec<_>>()
    })
}

fn refund_json(order: &Order, refund: &Refund) -> Value {
    json!({
        "refundId": refund.id, "oid": order.id, "status": code(&refund.status),
        "updateTime": refund.updated_at.timestamp_millis(), "refundFee": refund.amount_fen,
        "skuId": order.lines.first().map(|l| l.sku_id.clone())
    })
}

/// The error for a denial: `(code, response)` as `{result: <code>, error_msg, sub_code?}`.
/// The classes follow westng/kwaishop-php-sdk `ResponseParser.php` (result 1 = success; 21/24
/// authentication, 22/25/26 authorisation, 27/28 signature, 15/16/17 rate limit); which code
/// within a class Kuaishou sends for each case is **unconfirmed**.
pub(crate) fn deny(denial: &Denial) -> (String, Response) {
    let (code, msg): (i64, String) = match denial {
        Denial::MissingParam(name) => (100_026, format!("缺少参数 {name}")),
        Denial::BadParam(name, why) => (100_027, format!("{name}: {why}")),
        Denial::UnknownApp => (21, "appkey 不存在".into()),
        Denial::BadTimestamp => (100_030, "timestamp 与服务器时间相差过大".into()),
        Denial::BadSignature => (28, "签名错误".into()),
        Denial::MissingToken => (24, "缺少 access_token".into()),
        Denial::UnknownToken | Denial::ForeignToken => (24, "access_token 无效".into()),
        Denial::ExpiredToken => (24, "access_token 已过期".into()),
        Denial::RevokedToken => (26, "商家已取消授权".into()),
        Denial::InvalidRefreshToken => (22, "refresh_token 无效".into()),
        Denial::ExpiredRefreshToken => (22, "refresh_token 已过期".into()),
        Denial::RateLimited { .. } => (15, "调用频率超限".into()),
        Denial::ServerError => (802_000, "服务繁忙，请稍后重试".into()),
        Denial::WindowTooLong => (100_027, "beginTime 与 endTime 跨度过大".into()),
        Denial::BadPageSize => (100_027, "pageSize 超出范围".into()),
        Denial::UnknownMethod => (22, "method 不存在".into()),
        Denial::NotFound => (100_404, "订单不存在".into()),
    };
    (code.to_string(), json(json!({"result": code, "error_msg": msg, "code": code.to_string()})))
}

/// The signed query of a Kuaishou call (for tests and demos driving the fake with a plain
/// HTTP client).
pub fn signed_query(
    secret: &str,
    app_key: &str,
    method: &str,
    param: &str,
    timestamp_ms: i64,
    access_token: &str,
) -> BTreeMap<String, String> {
    let mut q = BTreeMap::from([
        ("appkey".to_owned(), app_key.to_owned()),
        ("method".to_owned(), method.to_owned()),
        ("version".to_owned(), "1".to_owned()),
        ("param".to_owned(), param.to_owned()),
        ("access_token".to_owned(), access_token.to_owned()),
        ("timestamp".to_owned(), timestamp_ms.to_string()),
        ("signMethod".to_owned(), "HMAC_SHA256".to_owned()),
    ]);
    let signature = sign(secret, &q, SignMethod::HmacSha256);
    q.insert("sign".into(), signature);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(method: &str) -> BTreeMap<String, String> {
        // The example request of westng/kwaishop-php-sdk `tests/Unit/HmacSha256SignerTest.php`,
        // whose expected input string is spelt out there ("matches official Java flow").
        [
            ("appkey", "ks123"),
            ("method", "open.seller.order.list"),
            ("version", "1"),
            ("param", r#"{"title":"短袖"}"#),
            ("access_token", "token"),
            ("timestamp", "1583271919000"),
            ("signMethod", method),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn sign_known_answers() {
        // Expected values computed with Python from the SDK test's input string:
        // base64(hmac.new(b"sign-secret", s, sha256)) and hashlib.md5(s).hexdigest().
        assert_eq!(
            sign("sign-secret", &example("HMAC_SHA256"), SignMethod::HmacSha256),
            "ZpPrG0oB1g/T93FyyVD+VCzRey41yqxZoCqcGg7upYM="
        );
        assert_eq!(sign("sign-secret", &example("MD5"), SignMethod::Md5), "6005da269b372ff10945e565ef37a4c6");
        let mut extra = example("HMAC_SHA256");
        extra.insert("sign".into(), "stale".into());
        extra.insert("signSecret".into(), "leaked".into());
        assert_eq!(sign("sign-secret", &extra, SignMethod::HmacSha256), "ZpPrG0oB1g/T93FyyVD+VCzRey41yqxZoCqcGg7upYM=");
    }
}
