//! WeChat Pay's notification signature (SHA256withRSA over timestamp, nonce and body) and resource encryption (AES-256-GCM).

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use crate::sources::signing::SignatureError;

const WECHATPAY_PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";
const GCM_TAG: usize = 16;
/// WeChat Pay platform keys are 2048-bit; anything shorter is a misconfiguration.
const MIN_RSA_BYTES: usize = 256;

/// The message WeChat Pay signs: `"{timestamp}\n{nonce}\n{body}\n"`, with the
/// `Wechatpay-Timestamp` and `Wechatpay-Nonce` headers verbatim and the raw body bytes.
pub fn wechatpay_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(nonce.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// Verifies a WeChat Pay `Wechatpay-Signature`: base64 SHA256withRSA (PKCS#1 v1.5) over
/// [`wechatpay_message`], under the platform public key chosen by `Wechatpay-Serial`.
///
/// `public_key_pem` is a PEM `PUBLIC KEY` (what WeChat Pay's public-key mode hands out) or
/// `RSA PUBLIC KEY`, at least 2048 bits. A platform *certificate* is refused with
/// [`SignatureError::BadKey`]: extract its public key when configuring the shop.
/// A signature starting `WECHATPAY/SIGNTEST/` is WeChat Pay's deliberate probe and always fails
/// with [`SignatureError::Probe`]. The timestamp is not checked here: call
/// [`crate::sources::signing::check_window`] with [`crate::sources::signing::WECHATPAY_TOLERANCE_S`] as well.
/// Source: wechatpay-apiv3/wechatpay-go `core/auth/validators`, `core/auth/verifiers`.
pub fn wechatpay_verify(
    public_key_pem: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
    signature_b64: &str,
) -> Result<(), SignatureError> {
    if signature_b64.trim_start().starts_with(WECHATPAY_PROBE_PREFIX) {
        return Err(SignatureError::Probe);
    }
    let key = parse_public_key(public_key_pem)?;
    let raw =
        STANDARD.decode(signature_b64.trim()).map_err(|_| SignatureError::Malformed("signature is not base64"))?;
    if raw.len() != key.size() {
        return Err(SignatureError::Malformed("signature length does not match the key"));
    }
    let signature = Signature::try_from(raw.as_slice())
        .map_err(|_| SignatureError::Malformed("signature is not an RSA signature"))?;
    VerifyingKey::<Sha256>::new(key)
        .verify(&wechatpay_message(timestamp, nonce, body), &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// Signs like WeChat Pay (see [`wechatpay_verify`]) with a PEM `PRIVATE KEY` (PKCS#8) or
/// `RSA PRIVATE KEY` (PKCS#1), returning base64. For tests and the demo sender only: PKCS#1 v1.5
/// signing is deterministic and this path does no blinding.
pub fn wechatpay_sign(
    private_key_pem: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Result<String, SignatureError> {
    let pem = private_key_pem.trim();
    let key = RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| SignatureError::BadKey("not a PEM RSA private key"))?;
    let signature = SigningKey::<Sha256>::new(key)
        .try_sign(&wechatpay_message(timestamp, nonce, body))
        .map_err(|_| SignatureError::BadKey("RSA signing failed"))?;
    Ok(STANDARD.encode(signature.to_bytes()))
}

fn parse_public_key(pem: &str) -> Result<RsaPublicKey, SignatureError> {
    let pem = pem.trim();
    if pem.contains("BEGIN CERTIFICATE") {
        return Err(SignatureError::BadKey("a certificate, not a public key"));
    }
    let key = RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|_| SignatureError::BadKey("not a PEM RSA public key"))?;
    if key.size() < MIN_RSA_BYTES {
        return Err(SignatureError::BadKey("RSA key shorter than 2048 bits"));
    }
    Ok(key)
}

/// Decrypts the `resource` of a WeChat Pay notice: AES-256-GCM with key = the merchant's APIv3
/// key (32 bytes), IV = `resource.nonce` (12 bytes), AAD = `resource.associated_data`, and
/// `resource.ciphertext` = base64(ciphertext ‖ 16-byte tag).
/// Source: wechatpay-apiv3/wechatpay-go `utils/aes.go`.
pub fn wechatpay_decrypt_resource(
    api_v3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, SignatureError> {
    let cipher =
        Aes256Gcm::new_from_slice(api_v3_key).map_err(|_| SignatureError::BadKey("APIv3 key is not 32 bytes"))?;
    gcm_open(&cipher, nonce, associated_data, ciphertext_b64)
}

/// Encrypts a WeChat Pay `resource` (see [`wechatpay_decrypt_resource`]), returning
/// base64(ciphertext ‖ tag). For tests and the demo sender.
pub fn wechatpay_encrypt_resource(
    api_v3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, SignatureError> {
    let cipher =
        Aes256Gcm::new_from_slice(api_v3_key).map_err(|_| SignatureError::BadKey("APIv3 key is not 32 bytes"))?;
    let nonce = gcm_nonce(nonce)?;
    let sealed = cipher
        .encrypt(&nonce, Payload { msg: plaintext, aad: associated_data.as_bytes() })
        .map_err(|_| SignatureError::Malformed("plaintext too long for AES-GCM"))?;
    Ok(STANDARD.encode(sealed))
}

/// The GCM framing WeChat Pay uses, over any AES key size (the tests check it against the
/// wechatpay-go vector, which happens to use a 16-byte key).
fn gcm_open<C: Aead<NonceSize = U12>>(
    cipher: &C,
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, SignatureError> {
    let nonce = gcm_nonce(nonce)?;
    let sealed =
        STANDARD.decode(ciphertext_b64.trim()).map_err(|_| SignatureError::Malformed("ciphertext is not base64"))?;
    if sealed.len() < GCM_TAG {
        return Err(SignatureError::Malformed("ciphertext shorter than its tag"));
    }
    cipher
        .decrypt(&nonce, Payload { msg: &sealed, aad: associated_data.as_bytes() })
        .map_err(|_| SignatureError::Decrypt)
}

fn gcm_nonce(nonce: &str) -> Result<GenericArray<u8, U12>, SignatureError> {
    GenericArray::from_exact_iter(nonce.bytes()).ok_or(SignatureError::Malformed("nonce is not 12 bytes"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::{one_byte_changes, one_char_changes};

    use aes_gcm::Aes128Gcm;
    use rsa::pkcs1::EncodeRsaPrivateKey;

    use super::super::test_keys::{A_PRIVATE_PKCS8, A_PUBLIC_PKCS1, A_PUBLIC_SPKI, B_PUBLIC_SPKI, SHORT_PUBLIC_SPKI};

    pub(crate) const WX_TIMESTAMP: &str = "1700000000";
    pub(crate) const WX_NONCE: &str = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    pub(crate) const WX_BODY: &[u8] = br#"{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00","resource_type":"encrypt-resource","event_type":"TRANSACTION.SUCCESS"}"#;
    // Vector produced independently with
    // `printf '%s\n%s\n%s\n' "$ts" "$nonce" "$body" | openssl dgst -sha256 -sign a_priv.pem | base64 -w0`
    // over key A of `test_keys`; PKCS#1 v1.5 is deterministic, so signing must reproduce it.
    pub(crate) const WX_SIGNATURE: &str = "k74dtWzegp4X2odN50PnCjI4MdZ3OOjXUvRyHHD/zjLXIG0ME0DvF9ZhtEo1vc6qZEOQzeWdxH2xGHJcjDgqXw2OBcWieA2i1Ptw7CXEgTX6oR5y81DQgXT3YCgSPeFZkgYpkvr5HtgEO6Y6F/EYTHXKIJP1JYvxGllN3surrenG3/oSnowp7YUh3JmKzdxFBt2HoL1h817Ivsr65MUW8l+kv2TucePJZndYmHuQAbdtXo+/efzdsDDixDkzcecO/1UGiDRX2FXIaBGaavECL2umERW57jmzvRBr+G5iO2ekfD1MKZd3K0dpAuSLsLAR2asLxD7At1UgrEm0Apgzcw==";

    #[test]
    fn wechatpay_message_is_three_lines_each_ended() {
        assert_eq!(wechatpay_message("1", "n", b"{}"), b"1\nn\n{}\n");
        assert_eq!(wechatpay_message("", "", b""), b"\n\n\n");
    }

    #[test]
    fn wechatpay_known_answer_verifies_and_signing_reproduces_it() {
        assert_eq!(wechatpay_verify(A_PUBLIC_SPKI, WX_TIMESTAMP, WX_NONCE, WX_BODY, WX_SIGNATURE), Ok(()));
        assert_eq!(wechatpay_verify(A_PUBLIC_PKCS1, WX_TIMESTAMP, WX_NONCE, WX_BODY, WX_SIGNATURE), Ok(()));
        assert_eq!(wechatpay_sign(A_PRIVATE_PKCS8, WX_TIMESTAMP, WX_NONCE, WX_BODY).as_deref(), Ok(WX_SIGNATURE));
        let pkcs1 = RsaPrivateKey::from_pkcs8_pem(A_PRIVATE_PKCS8).unwrap().to_pkcs1_pem(Default::default()).unwrap();
        assert_eq!(wechatpay_sign(&pkcs1, WX_TIMESTAMP, WX_NONCE, WX_BODY).as_deref(), Ok(WX_SIGNATURE));
    }

    #[test]
    fn wechatpay_round_trip_and_wrong_key() {
        let body = "{\"summary\":\"支付成功\"}\n".as_bytes();
        let signature = wechatpay_sign(A_PRIVATE_PKCS8, "1700000300", "nonce", body).unwrap();
        assert_eq!(wechatpay_verify(A_PUBLIC_SPKI, "1700000300", "nonce", body, &signature), Ok(()));
        assert_eq!(
            wechatpay_verify(B_PUBLIC_SPKI, "1700000300", "nonce", body, &signature),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            wechatpay_verify(B_PUBLIC_SPKI, WX_TIMESTAMP, WX_NONCE, WX_BODY, WX_SIGNATURE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wechatpay_probe_fails_with_its_own_error() {
        for probe in ["WECHATPAY/SIGNTEST/", "WECHATPAY/SIGNTEST/abc==", " WECHATPAY/SIGNTEST/x"] {
            assert_eq!(
                wechatpay_verify(A_PUBLIC_SPKI, WX_TIMESTAMP, WX_NONCE, WX_BODY, probe),
                Err(SignatureError::Probe)
            );
            assert_eq!(
                wechatpay_verify("not a key", WX_TIMESTAMP, WX_NONCE, WX_BODY, probe),
                Err(SignatureError::Probe)
            );
        }
        assert_ne!(SignatureError::Probe, SignatureError::Mismatch);
    }

    #[test]
    fn wechatpay_refuses_unusable_keys_and_malformed_signatures() {
        let bad = |pem: &str| wechatpay_verify(pem, WX_TIMESTAMP, WX_NONCE, WX_BODY, WX_SIGNATURE);
        assert_eq!(bad(""), Err(SignatureError::BadKey("not a PEM RSA public key")));
        assert_eq!(bad(A_PRIVATE_PKCS8), Err(SignatureError::BadKey("not a PEM RSA public key")));
        assert_eq!(bad(SHORT_PUBLIC_SPKI), Err(SignatureError::BadKey("RSA key shorter than 2048 bits")));
        assert_eq!(
            bad("-----BEGIN CERTIFICATE-----\nMIIC/zCCAeegAwIBAgIUMX5zz8zkQsiJyH6Nk\n-----END CERTIFICATE-----\n"),
            Err(SignatureError::BadKey("a certificate, not a public key"))
        );
        let verify = |sig: &str| wechatpay_verify(A_PUBLIC_SPKI, WX_TIMESTAMP, WX_NONCE, WX_BODY, sig);
        assert_eq!(verify(""), Err(SignatureError::Malformed("signature length does not match the key")));
        assert_eq!(verify("%%%"), Err(SignatureError::Malformed("signature is not base64")));
        assert_eq!(
            verify(&WX_SIGNATURE[4..]),
            Err(SignatureError::Malformed("signature length does not match the key"))
        );
        assert_eq!(verify(&STANDARD.encode([0xffu8; 256])), Err(SignatureError::Mismatch), "a value above the modulus");
        assert_eq!(wechatpay_sign("nope", "1", "n", b""), Err(SignatureError::BadKey("not a PEM RSA private key")));
    }

    #[test]
    fn wechatpay_refuses_any_changed_byte_of_body_timestamp_nonce_or_signature() {
        let verify =
            |ts: &str, nonce: &str, body: &[u8], sig: &str| wechatpay_verify(A_PUBLIC_SPKI, ts, nonce, body, sig);
        for body in one_byte_changes(WX_BODY) {
            assert_eq!(verify(WX_TIMESTAMP, WX_NONCE, &body, WX_SIGNATURE), Err(SignatureError::Mismatch));
        }
        for ts in one_char_changes(WX_TIMESTAMP) {
            assert_eq!(verify(&ts, WX_NONCE, WX_BODY, WX_SIGNATURE), Err(SignatureError::Mismatch), "{ts}");
        }
        for nonce in one_char_changes(WX_NONCE) {
            assert_eq!(verify(WX_TIMESTAMP, &nonce, WX_BODY, WX_SIGNATURE), Err(SignatureError::Mismatch), "{nonce}");
        }
        // Every fifth position keeps the RSA work small; each changed character still changes bits.
        for sig in one_char_changes(WX_SIGNATURE).into_iter().step_by(5) {
            assert!(verify(WX_TIMESTAMP, WX_NONCE, WX_BODY, &sig).is_err(), "{sig}");
        }
        assert_eq!(
            verify(WX_TIMESTAMP, WX_NONCE, &[WX_BODY, b" "].concat(), WX_SIGNATURE),
            Err(SignatureError::Mismatch)
        );
    }

    pub(crate) const WX_API_V3_KEY: &[u8] = b"orderhubTestApiV3Key0123456789ab";
    pub(crate) const WX_RESOURCE_NONCE: &str = "fdasflkja484";
    pub(crate) const WX_RESOURCE_AAD: &str = "transaction";
    pub(crate) const WX_RESOURCE_PLAIN: &[u8] =
        br#"{"out_trade_no":"1217752501201407033233368018","trade_state":"SUCCESS","amount":{"total":100}}"#;
    // Vector produced independently with Python `cryptography`:
    // base64(AESGCM(key).encrypt(nonce, plaintext, aad)), which appends the 16-byte tag.
    pub(crate) const WX_RESOURCE_CIPHERTEXT: &str = "B8CAc0jun6nt+acmfLcIf59wsDYdz4WeM7ZzpXj4RKXAwCglZN11AbFTzvUgkdx/n1r4zv/Led1M6J+et02kzt4eM0Rg0kK2yPDaBG1lVGhHhrHXL2OuJ35sasqvhgHrN/Ctdpfc8WHtjDq3POM=";

    #[test]
    fn wechatpay_resource_known_answer_both_ways() {
        let decrypt =
            wechatpay_decrypt_resource(WX_API_V3_KEY, WX_RESOURCE_NONCE, WX_RESOURCE_AAD, WX_RESOURCE_CIPHERTEXT);
        assert_eq!(decrypt.as_deref(), Ok(WX_RESOURCE_PLAIN));
        let encrypt = wechatpay_encrypt_resource(WX_API_V3_KEY, WX_RESOURCE_NONCE, WX_RESOURCE_AAD, WX_RESOURCE_PLAIN);
        assert_eq!(encrypt.as_deref(), Ok(WX_RESOURCE_CIPHERTEXT));
    }

    #[test]
    fn wechatpay_gcm_framing_matches_the_wechatpay_go_vector() {
        // wechatpay-apiv3/wechatpay-go `utils/aes_test.go`. Its key is 16 bytes (Go picks AES-128
        // by key length), so it checks the framing (base64, nonce, AAD, trailing tag) through
        // the shared helper rather than the AES-256 entry point.
        let cipher = Aes128Gcm::new_from_slice(b"testAPIv3Key0000").unwrap();
        let open =
            |cipher: &Aes128Gcm, ct: &str| gcm_open(cipher, "wCq51qZv4Yfg", "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", ct);
        assert_eq!(open(&cipher, "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC").as_deref(), Ok(&b"Hello World"[..]));
        assert_eq!(open(&cipher, "invalid cipher"), Err(SignatureError::Malformed("ciphertext is not base64")));
        assert_eq!(
            open(&cipher, "SGVsbG8gV29ybGQK"),
            Err(SignatureError::Malformed("ciphertext shorter than its tag"))
        );
        let wrong = Aes128Gcm::new_from_slice(b"testAPIv3Key1111").unwrap();
        assert_eq!(open(&wrong, "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"), Err(SignatureError::Decrypt));
        // And the public entry point refuses that 16-byte key: APIv3 keys are 32 bytes.
        assert_eq!(
            wechatpay_decrypt_resource(b"testAPIv3Key0000", "wCq51qZv4Yfg", "", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"),
            Err(SignatureError::BadKey("APIv3 key is not 32 bytes"))
        );
    }

    #[test]
    fn wechatpay_resource_round_trip_and_tampering() {
        let sealed = wechatpay_encrypt_resource(WX_API_V3_KEY, "abcdefghijkl", "", b"").unwrap();
        assert_eq!(wechatpay_decrypt_resource(WX_API_V3_KEY, "abcdefghijkl", "", &sealed), Ok(Vec::new()));

        let raw = STANDARD.decode(WX_RESOURCE_CIPHERTEXT).unwrap();
        for changed in one_byte_changes(&raw) {
            let tampered = STANDARD.encode(changed);
            assert_eq!(
                wechatpay_decrypt_resource(WX_API_V3_KEY, WX_RESOURCE_NONCE, WX_RESOURCE_AAD, &tampered),
                Err(SignatureError::Decrypt)
            );
        }
        let mut tag_flipped = raw.clone();
        if let Some(last) = tag_flipped.last_mut() {
            *last ^= 0x80;
        }
        assert_eq!(
            wechatpay_decrypt_resource(
                WX_API_V3_KEY,
                WX_RESOURCE_NONCE,
                WX_RESOURCE_AAD,
                &STANDARD.encode(tag_flipped)
            ),
            Err(SignatureError::Decrypt),
            "a tampered tag fails"
        );
        for aad in one_char_changes(WX_RESOURCE_AAD) {
            let result = wechatpay_decrypt_resource(WX_API_V3_KEY, WX_RESOURCE_NONCE, &aad, WX_RESOURCE_CIPHERTEXT);
            assert_eq!(result, Err(SignatureError::Decrypt));
        }
        for nonce in one_char_changes(WX_RESOURCE_NONCE) {
            let result = wechatpay_decrypt_resource(WX_API_V3_KEY, &nonce, WX_RESOURCE_AAD, WX_RESOURCE_CIPHERTEXT);
            assert_eq!(result, Err(SignatureError::Decrypt));
        }
        let mut wrong_key = WX_API_V3_KEY.to_vec();
        wrong_key[0] ^= 1;
        let result = wechatpay_decrypt_resource(&wrong_key, WX_RESOURCE_NONCE, WX_RESOURCE_AAD, WX_RESOURCE_CIPHERTEXT);
        assert_eq!(result, Err(SignatureError::Decrypt));
    }

    #[test]
    fn wechatpay_resource_malformed_inputs() {
        let decrypt = |key: &[u8], nonce: &str, ct: &str| wechatpay_decrypt_resource(key, nonce, "", ct);
        assert_eq!(decrypt(&[0; 31], "abcdefghijkl", "AAAA"), Err(SignatureError::BadKey("APIv3 key is not 32 bytes")));
        assert_eq!(decrypt(WX_API_V3_KEY, "short", "AAAA"), Err(SignatureError::Malformed("nonce is not 12 bytes")));
        assert_eq!(
            decrypt(WX_API_V3_KEY, "abcdefghijklm", "AAAA"),
            Err(SignatureError::Malformed("nonce is not 12 bytes"))
        );
        assert_eq!(
            decrypt(WX_API_V3_KEY, "abcdefghijkl", ""),
            Err(SignatureError::Malformed("ciphertext shorter than its tag"))
        );
        assert_eq!(
            wechatpay_encrypt_resource(WX_API_V3_KEY, "nonce", "", b"x"),
            Err(SignatureError::Malformed("nonce is not 12 bytes"))
        );
    }
}
