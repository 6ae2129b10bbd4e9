//! Taobao TOP's API `sign` (MD5, HMAC-MD5 or HMAC-SHA256 over the sorted key/values).

use std::collections::BTreeMap;

use crate::sources::signing::{concat_sorted, hmac_md5, hmac_sha256, md5_of};

/// Taobao/Tmall TOP `sign_method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaobaoSignMethod {
    /// `md5`: MD5(secret + s + secret).
    Md5,
    /// `hmac`: HMAC-MD5 keyed with the secret.
    HmacMd5,
    /// `hmac-sha256`: HMAC-SHA256 keyed with the secret.
    HmacSha256,
}

impl TaobaoSignMethod {
    /// The value of the `sign_method` request parameter, which is itself signed.
    pub fn as_param(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::HmacMd5 => "hmac",
            Self::HmacSha256 => "hmac-sha256",
        }
    }
}

/// Taobao/Tmall TOP API `sign`, UPPERCASE hex. `s` = k1v1k2v2… over all parameters sorted by
/// key, pairs with an empty key or value and the `sign` parameter left out; then
/// `Md5` = MD5(secret + s + secret), `HmacMd5` = HMAC-MD5(key = secret, s),
/// `HmacSha256` = HMAC-SHA256(key = secret, s). `params` must include `sign_method`
/// ([`TaobaoSignMethod::as_param`]).
///
/// Source: cattles/taobao-sdk-java `TaobaoUtils.java` (`md5`, `hmac`); `hmac-sha256` uses the
/// same string by agreement of several SDKs, not a page we could read.
pub fn taobao_sign(app_secret: &str, params: &BTreeMap<String, String>, method: TaobaoSignMethod) -> String {
    let secret = app_secret.as_bytes();
    let joined = concat_sorted(params, true);
    match method {
        TaobaoSignMethod::Md5 => hex::encode_upper(md5_of(&[secret, joined.as_bytes(), secret])),
        TaobaoSignMethod::HmacMd5 => hex::encode_upper(hmac_md5(secret, &[joined.as_bytes()])),
        TaobaoSignMethod::HmacSha256 => hex::encode_upper(hmac_sha256(secret, &[joined.as_bytes()])),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::params;

    fn taobao_params(method: TaobaoSignMethod) -> BTreeMap<String, String> {
        params(&[
            ("method", "taobao.trade.fullinfo.get"),
            ("app_key", "12345678"),
            ("session", "sess-token"),
            ("timestamp", "2024-01-01 12:00:00"),
            ("format", "json"),
            ("v", "2.0"),
            ("fields", "tid,status,refund_status"),
            ("tid", "1234567890"),
            ("empty", ""),
            ("sign_method", method.as_param()),
        ])
    }

    #[test]
    fn taobao_sign_known_answers() {
        // Vectors produced independently with Python: s = "".join(k + v for k, v in sorted(p.items()) if k and v);
        // md5 = hashlib.md5(secret + s + secret), hmac = hmac.new(secret, s, md5 / sha256); upper-case hex.
        let secret = "tb-app-secret";
        let cases = [
            (TaobaoSignMethod::Md5, "7D8FCA3346BAF5450E2A3868506884DF"),
            (TaobaoSignMethod::HmacMd5, "F613212CE7A1EAD9B2725B3C7CFCE245"),
            (TaobaoSignMethod::HmacSha256, "26FB9A364C74443463D47242AC4E78C97B3849F0EA464D474B5DF38964A5399E"),
        ];
        for (method, expected) in cases {
            assert_eq!(taobao_sign(secret, &taobao_params(method), method), expected, "{method:?}");
            let mut with_sign = taobao_params(method);
            with_sign.insert("sign".into(), "stale".into());
            assert_eq!(taobao_sign(secret, &with_sign, method), expected, "the sign parameter is not signed");
        }
    }
}
