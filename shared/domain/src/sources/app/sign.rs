//! The seller's own app: Standard Webhooks (HMAC-SHA256, `v1,` signatures, `whsec_` secrets).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::{Choice, ConstantTimeEq};

use crate::sources::signing::{SignatureError, hmac_sha256};

const STANDARD_WEBHOOKS_SECRET_PREFIX: &str = "whsec_";

/// Signs like Standard Webhooks (the `app` source): `"v1,"` + base64 HMAC-SHA256 of
/// `"{msg_id}.{timestamp}.{body}"`, keyed with base64-decode(`secret` without its optional
/// `whsec_` prefix). Returns one `webhook-signature` entry. The body is signed as raw bytes
/// (the reference libraries require UTF-8; that is all they would ever send).
/// Source: standard-webhooks/standard-webhooks `spec/standard-webhooks.md`.
pub fn standard_webhooks_sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    let key = standard_webhooks_key(secret)?;
    let mac = standard_webhooks_mac(&key, msg_id, timestamp, body)?;
    Ok(format!("v1,{}", STANDARD.encode(mac)))
}

/// Verifies a Standard Webhooks `webhook-signature` header: a space-separated list of
/// `version,base64` entries. It passes when any `v1` entry matches (the sender lists one per
/// live secret while it rotates); other versions (`v1a` asymmetric…) are ignored. Every `v1`
/// entry is compared, in constant time, with no early exit. The timestamp is not checked here:
/// call [`crate::sources::signing::check_window`] with [`crate::sources::signing::STANDARD_WEBHOOKS_TOLERANCE_S`] as well.
pub fn standard_webhooks_verify(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
) -> Result<(), SignatureError> {
    let key = standard_webhooks_key(secret)?;
    let expected = standard_webhooks_mac(&key, msg_id, timestamp, body)?;
    let mut seen_v1 = false;
    let mut matched = Choice::from(0);
    for entry in signature_header.split_ascii_whitespace() {
        let Some(("v1", signature)) = entry.split_once(',') else { continue };
        seen_v1 = true;
        // An entry that is not base64 simply matches nothing; comparing decoded bytes (not
        // strings) means a prefix, or an empty entry, can never pass.
        if let Ok(given) = STANDARD.decode(signature) {
            matched |= expected.as_slice().ct_eq(&given);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else if seen_v1 {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Malformed("no v1 signature in header"))
    }
}

fn standard_webhooks_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let secret = secret.trim();
    let encoded = secret.strip_prefix(STANDARD_WEBHOOKS_SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD.decode(encoded).map_err(|_| SignatureError::BadKey("secret is not base64"))?;
    if key.is_empty() { Err(SignatureError::BadKey("empty secret")) } else { Ok(key) }
}

/// HMAC-SHA256 of `"{msg_id}.{timestamp}.{body}"`, shared by sign and verify.
fn standard_webhooks_mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Result<[u8; 32], SignatureError> {
    // The reference libraries refuse negative timestamps when signing.
    if timestamp < 0 {
        return Err(SignatureError::Malformed("negative timestamp"));
    }
    let timestamp = timestamp.to_string();
    Ok(hmac_sha256(key, &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::{one_byte_changes, one_char_changes};

    pub(crate) const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    pub(crate) const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    pub(crate) const SW_TIMESTAMP: i64 = 1_614_265_330;
    pub(crate) const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
    // The public vector: standard-webhooks/standard-webhooks `libraries/php/tests/WebhookTest.php`
    // (testSignFunctionWorks); recomputed with Python hmac/base64 as a cross-check.
    pub(crate) const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_webhooks_public_vectors() {
        assert_eq!(standard_webhooks_sign(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY).as_deref(), Ok(SW_SIGNATURE));
        assert_eq!(standard_webhooks_verify(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY, SW_SIGNATURE), Ok(()));
        // The prefix is optional.
        let bare = SW_SECRET.trim_start_matches("whsec_");
        assert_eq!(standard_webhooks_verify(bare, SW_ID, SW_TIMESTAMP, SW_BODY, SW_SIGNATURE), Ok(()));
        // standard-webhooks/standard-webhooks `libraries/rust/src/lib.rs` (test_sign).
        assert_eq!(
            standard_webhooks_sign(
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            )
            .as_deref(),
            Ok("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=")
        );
    }

    #[test]
    fn standard_webhooks_any_listed_v1_signature_may_match() {
        let verify = |header: &str| standard_webhooks_verify(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY, header);
        let old_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let old = standard_webhooks_sign(old_secret, SW_ID, SW_TIMESTAMP, SW_BODY).unwrap();
        assert_eq!(verify(&format!("{old} {SW_SIGNATURE}")), Ok(()), "new secret listed second");
        assert_eq!(verify(&format!("{SW_SIGNATURE} {old}")), Ok(()), "new secret listed first");
        assert_eq!(
            standard_webhooks_verify(old_secret, SW_ID, SW_TIMESTAMP, SW_BODY, &format!("{SW_SIGNATURE} {old}")),
            Ok(())
        );
        assert_eq!(
            verify(&format!("v1,bm9wZQ==  v1a,abc {SW_SIGNATURE}\tv2,xyz")),
            Ok(()),
            "extra spaces, other versions"
        );
        assert_eq!(
            verify(&format!("v2,{} {old}", &SW_SIGNATURE[3..])),
            Err(SignatureError::Mismatch),
            "only v1 counts"
        );
        assert_eq!(verify("v1,bm9wZQ== v1,%%%"), Err(SignatureError::Mismatch));
        assert_eq!(verify(""), Err(SignatureError::Malformed("no v1 signature in header")));
        assert_eq!(verify("v1a,abc v2,def nocomma"), Err(SignatureError::Malformed("no v1 signature in header")));
    }

    #[test]
    fn standard_webhooks_empty_or_prefix_entries_never_match() {
        // A byte-wise zip over unequal lengths would let these through; a real comparison must not.
        let verify = |header: &str| standard_webhooks_verify(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY, header);
        assert_eq!(verify("v1,"), Err(SignatureError::Mismatch));
        assert_eq!(verify("v1,g0hM"), Err(SignatureError::Mismatch));
        assert_eq!(verify(&format!("{SW_SIGNATURE}AAAA")), Err(SignatureError::Mismatch));
    }

    #[test]
    fn standard_webhooks_refuses_any_changed_byte_of_body_id_timestamp_or_signature() {
        for body in one_byte_changes(SW_BODY) {
            assert_eq!(
                standard_webhooks_verify(SW_SECRET, SW_ID, SW_TIMESTAMP, &body, SW_SIGNATURE),
                Err(SignatureError::Mismatch)
            );
        }
        for id in one_char_changes(SW_ID) {
            assert_eq!(
                standard_webhooks_verify(SW_SECRET, &id, SW_TIMESTAMP, SW_BODY, SW_SIGNATURE),
                Err(SignatureError::Mismatch)
            );
        }
        for ts in one_char_changes(&SW_TIMESTAMP.to_string()) {
            let ts: i64 = ts.parse().unwrap();
            assert_eq!(
                standard_webhooks_verify(SW_SECRET, SW_ID, ts, SW_BODY, SW_SIGNATURE),
                Err(SignatureError::Mismatch)
            );
        }
        for ts in [SW_TIMESTAMP - 1, SW_TIMESTAMP + 1] {
            assert_eq!(
                standard_webhooks_verify(SW_SECRET, SW_ID, ts, SW_BODY, SW_SIGNATURE),
                Err(SignatureError::Mismatch)
            );
        }
        for sig in one_char_changes(SW_SIGNATURE) {
            assert!(standard_webhooks_verify(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY, &sig).is_err(), "{sig}");
        }
    }

    #[test]
    fn standard_webhooks_bad_secrets_and_timestamps() {
        let verify = |secret: &str| standard_webhooks_verify(secret, SW_ID, SW_TIMESTAMP, SW_BODY, SW_SIGNATURE);
        assert_eq!(verify("whsec_"), Err(SignatureError::BadKey("empty secret")));
        assert_eq!(verify(""), Err(SignatureError::BadKey("empty secret")));
        assert_eq!(verify("whsec_not base64!"), Err(SignatureError::BadKey("secret is not base64")));
        assert_eq!(
            standard_webhooks_sign("whsec_%", SW_ID, 1, b""),
            Err(SignatureError::BadKey("secret is not base64"))
        );
        assert_eq!(
            standard_webhooks_sign(SW_SECRET, SW_ID, -1, b""),
            Err(SignatureError::Malformed("negative timestamp"))
        );
        assert_eq!(
            standard_webhooks_verify(SW_SECRET, SW_ID, -1, SW_BODY, SW_SIGNATURE),
            Err(SignatureError::Malformed("negative timestamp"))
        );
    }

    #[test]
    fn standard_webhooks_signs_raw_bytes() {
        let body = [0xff, 0x00, 0xfe];
        let header = standard_webhooks_sign(SW_SECRET, SW_ID, SW_TIMESTAMP, &body).unwrap();
        assert_eq!(standard_webhooks_verify(SW_SECRET, SW_ID, SW_TIMESTAMP, &body, &header), Ok(()));
    }
}
