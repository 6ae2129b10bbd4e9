//! Kuaidi100's push `sign` (UPPER hex MD5 of param + salt).

use crate::sources::signing::md5_of;

/// Kuaidi100 tracking push `sign`: UPPERCASE hex MD5(param + salt), where `param` is the form
/// field exactly as received (URL-decoded, not re-serialised).
///
/// Check it with [`crate::sources::signing::verify_hex_sign`]. Source: kuaidi100-api/java-demo `SignUtils.java`.
pub fn kuaidi100_sign(param: &str, salt: &str) -> String {
    hex::encode_upper(md5_of(&[param.as_bytes(), salt.as_bytes()]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::{one_byte_changes, one_char_changes};
    use crate::sources::signing::verify_hex_sign;

    pub(crate) const KUAIDI100_PARAM: &str =
        r#"{"status":"polling","message":"","lastResult":{"nu":"SF1234567890","state":"3","com":"shunfeng"}}"#;
    pub(crate) const KUAIDI100_SALT: &str = "kd100-salt";
    // Vectors produced independently with Python: hashlib.md5((param + salt).encode()).hexdigest().upper().
    pub(crate) const KUAIDI100_SIGN: &str = "FEE8341DFF1C05FAFA2AE9D3B2E84E8C";

    #[test]
    fn kuaidi100_sign_known_answers_and_tamper() {
        assert_eq!(kuaidi100_sign(KUAIDI100_PARAM, KUAIDI100_SALT), KUAIDI100_SIGN);
        assert_eq!(
            kuaidi100_sign(
                r#"{"status":"polling","message":"签收","lastResult":{"nu":"YT1234","state":"3"}}"#,
                KUAIDI100_SALT
            ),
            "EFB266DCDE94FAE41A5831B578BDAA5C",
            "non-ASCII is signed as UTF-8"
        );
        // The sender sends upper case; a lower-case copy still verifies.
        assert_eq!(
            verify_hex_sign(&kuaidi100_sign(KUAIDI100_PARAM, KUAIDI100_SALT), &KUAIDI100_SIGN.to_lowercase()),
            Ok(())
        );
        for param in one_byte_changes(KUAIDI100_PARAM.as_bytes()) {
            let param = String::from_utf8_lossy(&param);
            assert!(verify_hex_sign(&kuaidi100_sign(&param, KUAIDI100_SALT), KUAIDI100_SIGN).is_err());
        }
        let expected = kuaidi100_sign(KUAIDI100_PARAM, KUAIDI100_SALT);
        for sign in one_char_changes(KUAIDI100_SIGN) {
            assert!(verify_hex_sign(&expected, &sign).is_err(), "{sign}");
        }
    }
}
