//! Youzan (有赞)'s push `Event-Sign` (MD5).

use crate::sources::signing::md5_of;

/// Youzan (有赞) push `Event-Sign`: lowercase hex MD5(client_id + raw body + client_secret).
///
/// Check it with [`crate::sources::signing::verify_hex_sign`]. Source: cuncle/youzanyun-push-demo `pushdemo.go`.
pub fn youzan_event_sign(client_id: &str, body: &[u8], client_secret: &str) -> String {
    hex::encode(md5_of(&[client_id.as_bytes(), body, client_secret.as_bytes()]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::signing::tamper::{one_byte_changes, one_char_changes};
    use crate::sources::signing::{SignatureError, verify_hex_sign};

    pub(crate) const YOUZAN_CLIENT_ID: &str = "yz-client-id";
    pub(crate) const YOUZAN_SECRET: &str = "yz-client-secret";
    pub(crate) const YOUZAN_BODY: &[u8] = br#"{"client_id":"yz-client-id","id":"E20240101","kdt_id":12345,"type":"trade_TradeCreate","msg":"%7B%22tid%22%3A%22E20240101%22%7D"}"#;
    // Vector produced independently with Python: hashlib.md5(client_id + body + secret).hexdigest().
    pub(crate) const YOUZAN_EVENT_SIGN: &str = "5b3a4a506083c8493b15ec5fed5657ef";

    #[test]
    fn youzan_event_sign_known_answer_and_tamper() {
        assert_eq!(youzan_event_sign(YOUZAN_CLIENT_ID, YOUZAN_BODY, YOUZAN_SECRET), YOUZAN_EVENT_SIGN);
        for body in one_byte_changes(YOUZAN_BODY) {
            let expected = youzan_event_sign(YOUZAN_CLIENT_ID, &body, YOUZAN_SECRET);
            assert_eq!(verify_hex_sign(&expected, YOUZAN_EVENT_SIGN), Err(SignatureError::Mismatch));
        }
        let expected = youzan_event_sign(YOUZAN_CLIENT_ID, YOUZAN_BODY, YOUZAN_SECRET);
        for sign in one_char_changes(YOUZAN_EVENT_SIGN) {
            assert!(verify_hex_sign(&expected, &sign).is_err(), "{sign}");
        }
    }
}
