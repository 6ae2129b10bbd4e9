//! The cryptographic primitives of every source's signature scheme: how a callback proves it
//! came from its source (inbound, checked by `webhook-verify`) and how a query API request is
//! signed (outbound, sent by the refund double-check and the scheduled pulls).
//!
//! Pure functions only: no I/O, no clock, no secrets lookup. The source modules pick the headers
//! and the shop's secrets and call these. Inbound checks work on the raw body bytes as received,
//! compare in constant time, and never put secret material or the body into an error.
//!
//! ```
//! use domain::signature::{standard_webhooks_sign, standard_webhooks_verify};
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let header = standard_webhooks_sign(secret, "msg_1", 1_700_000_000, b"{}")?;
//! standard_webhooks_verify(secret, "msg_1", 1_700_000_000, b"{}", &header)?;
//! # Ok::<(), domain::signature::SignatureError>(())
//! ```

mod inbound;
mod outbound;
#[cfg(test)]
mod test_keys;

pub use inbound::{
    douyin_event_sign, kuaidi100_sign, kuaishou_decrypt, kuaishou_encrypt, standard_webhooks_sign,
    standard_webhooks_verify, wechatpay_decrypt_resource, wechatpay_encrypt_resource, wechatpay_message,
    wechatpay_sign, wechatpay_verify, youzan_event_sign,
};
pub use outbound::{
    KuaishouSignMethod, TaobaoSignMethod, douyin_api_sign, douyin_param_json, jd_sign, kuaishou_api_sign, pdd_sign,
    taobao_sign,
};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a WeChat Pay `Wechatpay-Timestamp` may be from now, in seconds.
pub const WECHATPAY_TOLERANCE_S: i64 = 300;

/// How far a Standard Webhooks `webhook-timestamp` (the `app` source) may be from now, in seconds.
pub const STANDARD_WEBHOOKS_TOLERANCE_S: i64 = 300;

/// Why a signature or ciphertext was refused. Never carries secret material, the body or the
/// offending value: only what kind of thing was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Well formed, but not the signature of this message under this key.
    #[error("signature does not match")]
    Mismatch,
    /// An input is not of the form the scheme needs (not hex, not base64, wrong length…).
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// The signed timestamp is too far from now. `skew_s` is `now - timestamp` (positive: in the
    /// past), saturating.
    #[error("timestamp outside the accepted window (skew {skew_s} s)")]
    OutOfWindow {
        /// `now - timestamp`, in seconds.
        skew_s: i64,
    },
    /// A probe the sender sends on purpose to check that bad signatures are refused (WeChat Pay's
    /// `WECHATPAY/SIGNTEST/…`): refuse it, but it is no attack and need not alert.
    #[error("signature is a sender's verification probe")]
    Probe,
    /// The ciphertext does not decrypt under this key: wrong key, tampered, bad padding or tag.
    #[error("ciphertext does not decrypt")]
    Decrypt,
    /// The configured key cannot be used (wrong length, not base64, not a PEM RSA key…): a
    /// configuration problem rather than a bad request.
    #[error("unusable key: {0}")]
    BadKey(&'static str),
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ. Slices of
/// unequal length are unequal (the length itself is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Checks a hex signature `given` (as received, case-insensitive, surrounding whitespace
/// ignored) against `expected_hex` (as computed). Both are decoded to bytes first, so upper and
/// lower case compare equal, then compared in constant time.
pub fn verify_hex_sign(expected_hex: &str, given: &str) -> Result<(), SignatureError> {
    let expected =
        hex::decode(expected_hex.trim()).map_err(|_| SignatureError::Malformed("expected sign is not hex"))?;
    let given = given.trim();
    if given.is_empty() {
        return Err(SignatureError::Malformed("empty signature"));
    }
    let given = hex::decode(given).map_err(|_| SignatureError::Malformed("signature is not hex"))?;
    if constant_time_eq(&expected, &given) { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// Checks that a signed `timestamp` is within `tolerance_s` seconds of `now`, either side
/// (`|now - timestamp| <= tolerance_s`). All values are Unix seconds. A negative tolerance
/// accepts nothing but `timestamp == now`.
///
/// WeChat Pay's own SDK refuses at exactly 300 s (`>=`); this accepts the boundary, as the
/// Standard Webhooks reference libraries do.
pub fn check_window(timestamp: i64, now: i64, tolerance_s: i64) -> Result<(), SignatureError> {
    let skew_s = now.saturating_sub(timestamp);
    if skew_s.unsigned_abs() <= tolerance_s.max(0).unsigned_abs() {
        Ok(())
    } else {
        Err(SignatureError::OutOfWindow { skew_s })
    }
}

/// MD5 of the concatenation of `parts`.
fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HMAC-SHA256 under `key` of the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (long ones are hashed), so this never happens.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-MD5 under `key` of the concatenation of `parts`.
fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = match Hmac::<Md5>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constant_time_eq_is_plain_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"), "a prefix is not equal");
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn hex_signs_compare_without_regard_to_case_or_surrounding_space() {
        let sign = "470df408ceb132c830063e97d53d885c";
        assert_eq!(verify_hex_sign(sign, sign), Ok(()));
        assert_eq!(verify_hex_sign(sign, &sign.to_uppercase()), Ok(()));
        assert_eq!(verify_hex_sign(&sign.to_uppercase(), sign), Ok(()));
        assert_eq!(verify_hex_sign(sign, &format!(" {sign}\r\n")), Ok(()));
        assert_eq!(verify_hex_sign(sign, "570df408ceb132c830063e97d53d885c"), Err(SignatureError::Mismatch));
        assert_eq!(verify_hex_sign(sign, &sign[..30]), Err(SignatureError::Mismatch), "a prefix is not a match");
        assert_eq!(verify_hex_sign(sign, ""), Err(SignatureError::Malformed("empty signature")));
        assert_eq!(verify_hex_sign(sign, "xyz"), Err(SignatureError::Malformed("signature is not hex")));
        assert_eq!(verify_hex_sign(sign, &sign[..31]), Err(SignatureError::Malformed("signature is not hex")));
    }

    #[test]
    fn the_window_is_inclusive_and_symmetric() {
        let now = 1_700_000_000;
        assert_eq!(check_window(now, now, 300), Ok(()));
        assert_eq!(check_window(now - 300, now, 300), Ok(()));
        assert_eq!(check_window(now + 300, now, 300), Ok(()));
        assert_eq!(check_window(now - 301, now, 300), Err(SignatureError::OutOfWindow { skew_s: 301 }));
        assert_eq!(check_window(now + 301, now, 300), Err(SignatureError::OutOfWindow { skew_s: -301 }));
        assert_eq!(check_window(now, now, -5), Ok(()));
        assert_eq!(check_window(now - 1, now, -5), Err(SignatureError::OutOfWindow { skew_s: 1 }));
        assert_eq!(check_window(i64::MIN, i64::MAX, 300), Err(SignatureError::OutOfWindow { skew_s: i64::MAX }));
        assert_eq!(check_window(i64::MAX, i64::MIN, 300), Err(SignatureError::OutOfWindow { skew_s: i64::MIN }));
    }

    #[test]
    fn errors_name_the_problem_not_the_value() {
        assert_eq!(SignatureError::Mismatch.to_string(), "signature does not match");
        assert_eq!(
            SignatureError::OutOfWindow { skew_s: 301 }.to_string(),
            "timestamp outside the accepted window (skew 301 s)"
        );
        assert_eq!(
            SignatureError::BadKey("message key is not 16 bytes").to_string(),
            "unusable key: message key is not 16 bytes"
        );
    }

    #[test]
    fn hmac_helpers_match_rfc_4231_and_rfc_2202() {
        // RFC 4231 test case 2 (HMAC-SHA256) and RFC 2202 test case 2 (HMAC-MD5).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_md5(b"Jefe", &[b"what do ya want for nothing?"])),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        // RFC 1321 test suite.
        assert_eq!(hex::encode(md5_of(&[b"a", b"bc"])), "900150983cd24fb0d6963f7d28e17f72");
    }

    proptest! {
        #[test]
        fn verify_hex_sign_never_panics(expected in ".*", given in ".*") {
            let _ = verify_hex_sign(&expected, &given);
        }

        #[test]
        fn verify_hex_sign_accepts_exactly_the_same_bytes(a in proptest::collection::vec(any::<u8>(), 0..40),
                                                          b in proptest::collection::vec(any::<u8>(), 1..40)) {
            let expected = hex::encode(&a);
            prop_assert_eq!(verify_hex_sign(&expected, &hex::encode_upper(&a)).is_ok(), !a.is_empty());
            prop_assert_eq!(verify_hex_sign(&expected, &hex::encode(&b)).is_ok(), a == b);
        }

        #[test]
        fn check_window_never_panics_and_agrees_with_wide_arithmetic(ts in any::<i64>(), now in any::<i64>(), tol in any::<i64>()) {
            let inside = (i128::from(now) - i128::from(ts)).abs() <= i128::from(tol.max(0));
            prop_assert_eq!(check_window(ts, now, tol).is_ok(), inside);
        }
    }
}
