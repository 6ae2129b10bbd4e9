//! Pinduoduo's open API `sign` (UPPER hex MD5 of secret + sorted key/values + secret).

use std::collections::BTreeMap;

use crate::sources::signing::{concat_sorted, md5_of};

/// Pinduoduo (拼多多) API `sign`: UPPERCASE hex MD5(client_secret + k1v1k2v2… + client_secret)
/// over all request parameters (system and business) sorted by key, with empty values and the
/// `sign` parameter left out. Source: whalesky-labs/pdd-sdk-php `src/Signing/Md5Signer.php`.
pub fn pdd_sign(client_secret: &str, params: &BTreeMap<String, String>) -> String {
    let secret = client_secret.as_bytes();
    hex::encode_upper(md5_of(&[secret, concat_sorted(params, true).as_bytes(), secret]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::params;

    #[test]
    fn pdd_sign_public_vector() {
        // whalesky-labs/pdd-sdk-php `tests/Unit/Md5SignerTest.php`; recomputed with Python hashlib.
        let p = params(&[
            ("client_id", "test-client"),
            ("data_type", "JSON"),
            ("logistics_id", "9"),
            ("order_sn", "240101-1"),
            ("order_state", "1"),
            ("timestamp", "1720000000"),
            ("type", "pdd.erp.order.sync"),
            ("version", "V1"),
            ("waybill_no", "SF123"),
        ]);
        assert_eq!(pdd_sign("test-secret", &p), "CC0F30530BBAC3FD67608391D61E370C");
    }

    #[test]
    fn pdd_sign_ignores_sign_and_empty_values() {
        // The same property the PHP SDK's second test checks.
        assert_eq!(
            pdd_sign("secret", &params(&[("client_id", "a")])),
            pdd_sign("secret", &params(&[("client_id", "a"), ("sign", "old"), ("empty", "")]))
        );
        assert_ne!(
            pdd_sign("secret", &params(&[("client_id", "a")])),
            pdd_sign("secret", &params(&[("client_id", "b")]))
        );
    }
}
