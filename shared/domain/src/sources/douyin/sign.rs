//! Douyin (抖店)'s signing: the push `event-sign` (MD5) and the open API's HMAC-SHA256 `sign`.

use serde_json::Value;

use crate::sources::signing::{hmac_sha256, md5_of};

/// Douyin (抖店) push `event-sign`: lowercase hex MD5(app_key + raw body + app_secret).
///
/// Check it with [`crate::sources::signing::verify_hex_sign`]; the `app-id` header must also equal `app_key`.
/// Source: zsmhub/doudian-sdk `message/doudian_sign.go`, minibear2021/doudian `doudian/core.py`.
/// The HMAC variant announced by a `sign-method` header is not documented anywhere we could
/// read, so it is not implemented.
pub fn douyin_event_sign(app_key: &str, body: &[u8], app_secret: &str) -> String {
    hex::encode(md5_of(&[app_key.as_bytes(), body, app_secret.as_bytes()]))
}

/// Douyin (抖店) API `sign` with `sign_method=hmac-sha256`: lowercase hex
/// HMAC-SHA256(key = app_secret, message = app_secret + "app_key" + app_key + "method" + method
/// + "param_json" + param_json + "timestamp" + timestamp + "v2" + app_secret).
///
/// `param_json` and `timestamp` must be the exact strings sent (see [`douyin_param_json`]).
/// Source: zsmhub/doudian-sdk `utils/sign_util.go`, minibear2021/doudian `doudian/core.py`.
pub fn douyin_api_sign(app_key: &str, app_secret: &str, method: &str, param_json: &str, timestamp: &str) -> String {
    let secret = app_secret.as_bytes();
    hex::encode(hmac_sha256(
        secret,
        &[
            secret,
            b"app_key",
            app_key.as_bytes(),
            b"method",
            method.as_bytes(),
            b"param_json",
            param_json.as_bytes(),
            b"timestamp",
            timestamp.as_bytes(),
            b"v2",
            secret,
        ],
    ))
}

/// Douyin's `param_json`: `params` serialised the way the reference Go SDK does (it marshals,
/// decodes into maps with `UseNumber`, and re-encodes with HTML escaping off):
///
/// - object keys sorted by bytes, at every depth; compact, no whitespace;
/// - `<`, `>`, `&` and non-ASCII written as is; U+2028 and U+2029 escaped as `\u2028`/`\u2029`
///   (Go always does); `"`, `\`, and control characters escaped as in JSON (`\n`, `\u001f`…);
/// - numbers as `serde_json` writes them. Integers match Go exactly; a float may not (Go keeps
///   the literal it was given), so send amounts as integers (fen), as Douyin's APIs expect.
///
/// An empty object gives `{}`, what Douyin expects for a method without parameters.
/// Source: zsmhub/doudian-sdk `utils/sign_util.go` (`Marshal`).
pub fn douyin_param_json(params: &Value) -> String {
    let mut out = String::new();
    write_go_json(params, &mut out);
    out
}

fn write_go_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_go_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here rather than trusting serde_json's map order, which the
            // `preserve_order` feature (enabled anywhere in the build) would change.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                write_go_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_go_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go 1.22+ writes these short forms, as serde_json does; older Go wrote \u0008, \u000c.
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::{one_byte_changes, one_char_changes};
    use crate::sources::signing::{SignatureError, verify_hex_sign};

    use serde_json::json;

    pub(crate) const DOUYIN_APP_KEY: &str = "7012345678901234567";
    pub(crate) const DOUYIN_SECRET: &str = "dd-app-secret";
    pub(crate) const DOUYIN_BODY: &[u8] =
        br#"[{"tag":"100","msg_id":"7300000000000000001","data":"{\"p_id\":4781320682406083640,\"order_status\":1}"}]"#;
    // Vector produced independently with `printf '%s' "$app_key$body$secret" | openssl md5`
    // (and Python's hashlib).
    pub(crate) const DOUYIN_EVENT_SIGN: &str = "470df408ceb132c830063e97d53d885c";

    #[test]
    fn douyin_event_sign_known_answer() {
        assert_eq!(douyin_event_sign(DOUYIN_APP_KEY, DOUYIN_BODY, DOUYIN_SECRET), DOUYIN_EVENT_SIGN);
        assert_eq!(
            verify_hex_sign(&douyin_event_sign(DOUYIN_APP_KEY, DOUYIN_BODY, DOUYIN_SECRET), DOUYIN_EVENT_SIGN),
            Ok(())
        );
    }

    #[test]
    fn douyin_event_sign_refuses_any_changed_byte_of_body_or_sign() {
        for body in one_byte_changes(DOUYIN_BODY) {
            let expected = douyin_event_sign(DOUYIN_APP_KEY, &body, DOUYIN_SECRET);
            assert_eq!(verify_hex_sign(&expected, DOUYIN_EVENT_SIGN), Err(SignatureError::Mismatch));
        }
        let expected = douyin_event_sign(DOUYIN_APP_KEY, DOUYIN_BODY, DOUYIN_SECRET);
        for sign in one_char_changes(DOUYIN_EVENT_SIGN) {
            assert!(verify_hex_sign(&expected, &sign).is_err(), "{sign}");
        }
        assert!(verify_hex_sign(&douyin_event_sign(DOUYIN_APP_KEY, DOUYIN_BODY, "other"), DOUYIN_EVENT_SIGN).is_err());
    }

    #[test]
    fn douyin_api_sign_known_answer() {
        // Vector produced independently with
        // `printf '%s' "${secret}app_key${key}method${m}param_json${pj}timestamp${ts}v2${secret}" | openssl dgst -sha256 -hmac "$secret"`.
        assert_eq!(
            douyin_api_sign(
                "7012345678901234567",
                "dd-app-secret",
                "order.orderDetail",
                r#"{"shop_order_id":"4781320682406083640"}"#,
                "1700000000"
            ),
            "b0975078df91fc02ac3e61b06176e47d302160141c511b93798a0565a1b3291c"
        );
    }

    #[test]
    fn douyin_param_json_sorts_keys_at_every_depth_like_go() {
        let value = json!({
            "z": 1, "a": {"y": [{"b": 2, "a": 1}], "x": "<&>"}, "m": "短袖\u{2028}x", "B": true, "n": null, "f": -12, "e": []
        });
        // Expected from Python: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        // with U+2028/U+2029 then escaped, which is what Go's encoder does with HTML escaping off.
        assert_eq!(
            douyin_param_json(&value),
            r#"{"B":true,"a":{"x":"<&>","y":[{"a":1,"b":2}]},"e":[],"f":-12,"m":"短袖\u2028x","n":null,"z":1}"#
        );
        assert_eq!(douyin_param_json(&json!({})), "{}");
        assert_eq!(
            douyin_param_json(&json!({"order_id": "4781320682406083640"})),
            r#"{"order_id":"4781320682406083640"}"#
        );
        assert_eq!(
            douyin_param_json(&json!({"s": "q\"b\\n\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}\u{2029}"})),
            r#"{"s":"q\"b\\n\n\r\t\b\f\u0001\u001f"#.to_owned() + "\u{7f}" + r#"\u2029"}"#
        );
        assert_eq!(
            douyin_param_json(&json!({"big": u64::MAX, "neg": i64::MIN, "f": 1.5})),
            format!(r#"{{"big":{},"f":1.5,"neg":{}}}"#, u64::MAX, i64::MIN)
        );
    }
}
