//! Kuaishou (快手)'s message encryption (AES-128-CBC, which is its authentication) and its open API `sign`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};

use crate::sources::signing::{SIGN_PARAM, SignatureError, hmac_sha256, md5_of};

const AES_BLOCK: usize = 16;

/// Standard alphabet, padding optional: Kuaishou's reference decoder (Apache commons-codec) does
/// not insist on padding, so neither do we.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;
type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

/// Decrypts a Kuaishou (快手) message push: the body is base64 of AES-128-CBC ciphertext with
/// PKCS#5/7 padding, key = base64-decode(message key) (16 bytes), IV = 16 zero bytes.
/// ASCII whitespace anywhere in the body (around it, or line breaks of a wrapped encoding) is
/// ignored. Source: kwaishopTradePlatform/kwaishop-digital-access-demo
/// `PlatformEventSecurityUtil.java`.
///
/// CBC has no integrity: a wrong key or a tampered body is refused only when the padding comes
/// out wrong, which is *most* of the time, not always. Authenticity comes from the caller's next
/// step: the plaintext must be JSON carrying the shop's `appKey`. Answer a [`SignatureError::Decrypt`]
/// and a bad plaintext the same way, or the difference is a padding oracle.
pub fn kuaishou_decrypt(message_key_b64: &str, ciphertext_b64: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let key = kuaishou_key(message_key_b64)?;
    let compact: Vec<u8> = ciphertext_b64.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(SignatureError::Malformed("empty ciphertext"));
    }
    let ciphertext =
        LENIENT_BASE64.decode(&compact).map_err(|_| SignatureError::Malformed("ciphertext is not base64"))?;
    if ciphertext.is_empty() || ciphertext.len() % AES_BLOCK != 0 {
        return Err(SignatureError::Malformed("ciphertext is not whole AES blocks"));
    }
    let decryptor = Aes128CbcDec::new_from_slices(&key, &[0u8; AES_BLOCK])
        .map_err(|_| SignatureError::BadKey("message key is not 16 bytes"))?;
    decryptor.decrypt_padded_vec_mut::<Pkcs7>(&ciphertext).map_err(|_| SignatureError::Decrypt)
}

/// Encrypts `plaintext` the way Kuaishou does (see [`kuaishou_decrypt`]), returning standard
/// padded base64. For tests and the demo sender.
pub fn kuaishou_encrypt(message_key_b64: &str, plaintext: &[u8]) -> Result<String, SignatureError> {
    let key = kuaishou_key(message_key_b64)?;
    let encryptor = Aes128CbcEnc::new_from_slices(&key, &[0u8; AES_BLOCK])
        .map_err(|_| SignatureError::BadKey("message key is not 16 bytes"))?;
    Ok(STANDARD.encode(encryptor.encrypt_padded_vec_mut::<Pkcs7>(plaintext)))
}

fn kuaishou_key(message_key_b64: &str) -> Result<Vec<u8>, SignatureError> {
    let key = LENIENT_BASE64
        .decode(message_key_b64.trim())
        .map_err(|_| SignatureError::BadKey("message key is not base64"))?;
    // The reference decoder would also take 24- or 32-byte keys (AES-192/256); the documented
    // scheme is AES-128, so anything else is refused as a configuration error.
    if key.len() == AES_BLOCK { Ok(key) } else { Err(SignatureError::BadKey("message key is not 16 bytes")) }
}

/// Kuaishou (快手) open API `signMethod` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KuaishouSignMethod {
    /// `MD5`: lowercase hex MD5.
    Md5,
    /// `HMAC_SHA256`: base64 HMAC-SHA256 keyed with the sign secret.
    HmacSha256,
}

impl KuaishouSignMethod {
    /// The value of the `signMethod` request parameter, which is itself signed.
    pub fn as_param(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC_SHA256",
        }
    }
}

/// Kuaishou open API `sign`. `s` = `k=v` pairs sorted by key joined with `&` (the `sign` and
/// `signSecret` parameters left out; empty values kept, as the reference SDK drops only
/// absent ones), then `&signSecret=<sign_secret>`. `Md5` gives lowercase hex MD5(s);
/// `HmacSha256` gives base64 HMAC-SHA256(key = sign_secret, s). `params` are the system
/// parameters (`appkey`, `method`, `version`, `param`, `access_token`, `timestamp`, and
/// `signMethod` from [`KuaishouSignMethod::as_param`]).
///
/// The sign secret is the app's separate `signSecret`, not its app secret. The official page
/// shows the string but not the HMAC key; the key is the sign secret in westng/kwaishop-php-sdk
/// `src/Signing/HmacSha256Signer.php` and the other SDKs we read.
pub fn kuaishou_api_sign(sign_secret: &str, params: &BTreeMap<String, String>, method: KuaishouSignMethod) -> String {
    let mut joined = String::new();
    for (key, value) in params.iter().filter(|(key, _)| key.as_str() != SIGN_PARAM && key.as_str() != "signSecret") {
        joined.push_str(key);
        joined.push('=');
        joined.push_str(value);
        joined.push('&');
    }
    joined.push_str("signSecret=");
    joined.push_str(sign_secret);
    match method {
        KuaishouSignMethod::Md5 => hex::encode(md5_of(&[joined.as_bytes()])),
        KuaishouSignMethod::HmacSha256 => STANDARD.encode(hmac_sha256(sign_secret.as_bytes(), &[joined.as_bytes()])),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::{one_char_changes, params};

    /// base64 of the bytes 0x10..=0x1f.
    pub(crate) const KUAISHOU_KEY: &str = "EBESExQVFhcYGRobHB0eHw==";
    pub(crate) const KUAISHOU_PLAIN: &[u8] = br#"{"eventId":"evt-1","msgId":"msg-1","bizId":"2400000000000001","appKey":"ks_app_key","event":"order_status_changed","info":"{\"oid\":2400000000000001,\"status\":30}","status":1,"createTime":1700000000000,"updateTime":1700000000000,"test":false}"#;
    // Vector produced independently with
    // `openssl enc -aes-128-cbc -K 101112131415161718191a1b1c1d1e1f -iv 00000000000000000000000000000000 | base64 -w0`
    // (PKCS#7 padding is openssl's default), cross-checked with Python `cryptography`.
    pub(crate) const KUAISHOU_CIPHERTEXT: &str = "y7lG63mq9o0v1LS98jkDnsBoDZDxAAPzekzKozr3F0fOaXKj0dMmCF5Zq3zSlKuV9x0uXqnlLhZbJC5gQHrc/qRL0g73cpU3fqeQ/4Adnpt0UVchxwcU7i/lY1FkKncY5K8k7Ay9iQ1A7OPLMm0zz/u06omOOGCOYhiL+DpZIasACahslDIzLYpmGxGD3D0rdBiLMhdcGTyPqaovGQUiYJ3zeFrs8FIAmkYqGNBPBty1/GhCv1JK3NiqGYFpBUewySQmUAqAedSP6cKa+TX0iCEDQs7x5/IiO19NvAPid7KuEAKnW7wBqxKMkmHNUtuNgSZ1eY4wGcdkSd3dcLwBHA==";

    #[test]
    fn kuaishou_known_answer_both_ways() {
        assert_eq!(kuaishou_decrypt(KUAISHOU_KEY, KUAISHOU_CIPHERTEXT.as_bytes()).as_deref(), Ok(KUAISHOU_PLAIN));
        assert_eq!(kuaishou_encrypt(KUAISHOU_KEY, KUAISHOU_PLAIN).as_deref(), Ok(KUAISHOU_CIPHERTEXT));
    }

    #[test]
    fn kuaishou_round_trips_and_tolerates_whitespace_and_missing_padding() {
        for plain in [&b""[..], b"x", b"0123456789abcdef", KUAISHOU_PLAIN] {
            let ciphertext = kuaishou_encrypt(KUAISHOU_KEY, plain).unwrap();
            assert_eq!(kuaishou_decrypt(KUAISHOU_KEY, ciphertext.as_bytes()).as_deref(), Ok(plain));
        }
        let wrapped: String = KUAISHOU_CIPHERTEXT
            .as_bytes()
            .chunks(76)
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n");
        let padded_body = format!("  \n{wrapped}\r\n\t");
        assert_eq!(kuaishou_decrypt(KUAISHOU_KEY, padded_body.as_bytes()).as_deref(), Ok(KUAISHOU_PLAIN));
        let unpadded = KUAISHOU_CIPHERTEXT.trim_end_matches('=');
        assert_eq!(kuaishou_decrypt(KUAISHOU_KEY, unpadded.as_bytes()).as_deref(), Ok(KUAISHOU_PLAIN));
        assert_eq!(
            kuaishou_decrypt(" EBESExQVFhcYGRobHB0eHw \n", KUAISHOU_CIPHERTEXT.as_bytes()).as_deref(),
            Ok(KUAISHOU_PLAIN)
        );
    }

    #[test]
    fn kuaishou_wrong_key_fails_cleanly() {
        // 16 bytes of 0x20..=0x2f: with this key the padding check fails, deterministically.
        let wrong = STANDARD.encode((0x20u8..0x30).collect::<Vec<_>>());
        assert_eq!(kuaishou_decrypt(&wrong, KUAISHOU_CIPHERTEXT.as_bytes()), Err(SignatureError::Decrypt));
        // CBC padding is no MAC: with some wrong keys the padding happens to check out and garbage
        // comes back. It is never the plaintext; the caller's JSON and appKey check rejects it.
        for first in 0u8..=255 {
            let mut key = [0x10u8; 16];
            key[0] = first;
            if first == 0x10 {
                continue;
            }
            let result = kuaishou_decrypt(&STANDARD.encode(key), KUAISHOU_CIPHERTEXT.as_bytes());
            assert_ne!(result.as_deref(), Ok(KUAISHOU_PLAIN));
        }
    }

    #[test]
    fn kuaishou_garbage_is_an_error_not_a_panic() {
        let key = KUAISHOU_KEY;
        assert_eq!(kuaishou_decrypt(key, b""), Err(SignatureError::Malformed("empty ciphertext")));
        assert_eq!(kuaishou_decrypt(key, b" \r\n "), Err(SignatureError::Malformed("empty ciphertext")));
        assert_eq!(kuaishou_decrypt(key, b"not base64!"), Err(SignatureError::Malformed("ciphertext is not base64")));
        assert_eq!(
            kuaishou_decrypt(key, "中文".as_bytes()),
            Err(SignatureError::Malformed("ciphertext is not base64"))
        );
        assert_eq!(
            kuaishou_decrypt(key, &[0xff, 0xfe, 0x00]),
            Err(SignatureError::Malformed("ciphertext is not base64"))
        );
        assert_eq!(
            kuaishou_decrypt(key, b"aGVsbG8="),
            Err(SignatureError::Malformed("ciphertext is not whole AES blocks"))
        );
        assert_eq!(
            kuaishou_decrypt(key, br#"{"eventId":"plain json"}"#),
            Err(SignatureError::Malformed("ciphertext is not base64"))
        );
        assert_eq!(
            kuaishou_decrypt("", KUAISHOU_CIPHERTEXT.as_bytes()),
            Err(SignatureError::BadKey("message key is not 16 bytes"))
        );
        assert_eq!(
            kuaishou_decrypt("***", KUAISHOU_CIPHERTEXT.as_bytes()),
            Err(SignatureError::BadKey("message key is not base64"))
        );
        let key32 = STANDARD.encode([7u8; 32]);
        assert_eq!(
            kuaishou_decrypt(&key32, KUAISHOU_CIPHERTEXT.as_bytes()),
            Err(SignatureError::BadKey("message key is not 16 bytes"))
        );
        assert_eq!(kuaishou_encrypt(&key32, b"x"), Err(SignatureError::BadKey("message key is not 16 bytes")));
    }

    #[test]
    fn kuaishou_any_changed_character_never_yields_the_plaintext() {
        for body in one_char_changes(KUAISHOU_CIPHERTEXT) {
            assert_ne!(kuaishou_decrypt(KUAISHOU_KEY, body.as_bytes()).as_deref(), Ok(KUAISHOU_PLAIN), "{body}");
        }
    }

    fn kuaishou_params(method: KuaishouSignMethod) -> BTreeMap<String, String> {
        // The example request of westng/kwaishop-php-sdk's signer test and Kuaishou's own page.
        params(&[
            ("appkey", "ks123"),
            ("method", "open.seller.order.list"),
            ("version", "1"),
            ("param", r#"{"title":"短袖"}"#),
            ("access_token", "token"),
            ("timestamp", "1583271919000"),
            ("signMethod", method.as_param()),
        ])
    }

    #[test]
    fn kuaishou_api_sign_known_answers() {
        // Vectors produced independently with Python: s = "&".join(f"{k}={v}" for k, v in sorted(p.items()))
        // + "&signSecret=" + secret; hashlib.md5(s).hexdigest() and base64(hmac.new(secret, s, sha256)).
        let md5 = KuaishouSignMethod::Md5;
        let hmac = KuaishouSignMethod::HmacSha256;
        assert_eq!(kuaishou_api_sign("sign-secret", &kuaishou_params(md5), md5), "6005da269b372ff10945e565ef37a4c6");
        assert_eq!(
            kuaishou_api_sign("sign-secret", &kuaishou_params(hmac), hmac),
            "ZpPrG0oB1g/T93FyyVD+VCzRey41yqxZoCqcGg7upYM="
        );
        let mut extra = kuaishou_params(hmac);
        extra.insert("sign".into(), "stale".into());
        extra.insert("signSecret".into(), "leaked".into());
        assert_eq!(kuaishou_api_sign("sign-secret", &extra, hmac), "ZpPrG0oB1g/T93FyyVD+VCzRey41yqxZoCqcGg7upYM=");
        // No parameters: the string is just "signSecret=…".
        assert_eq!(kuaishou_api_sign("s", &BTreeMap::new(), md5), hex::encode(md5_of(&[b"signSecret=s"])),);
    }
}
