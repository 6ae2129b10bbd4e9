//! 淘宝/天猫 (Taobao, Tmall): trade and refund codes.
//!
//! Taobao delivers messages over TMC (a long connection), so orderhub pulls with the query API.

pub mod pull;
pub mod sign;

use crate::model::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::model::status::{MappingRow, StatusMapping, StatusMapping::*, Target, lookup};
use serde::{Deserialize, Serialize};

use crate::model::callback::RawCallback;
use crate::model::ids::{ShopId, Source};
use crate::model::secret::{ApiAccess, ApiTokens, Secret};
use crate::model::source_event::{ParseError, SourceEvent};
use crate::model::sync::PulledPayload;
use crate::sources::{Ack, Delivery, Opened, Refusal, ShopSecret, SourceModule, no_callbacks, pulled_only};

/// Taobao's status tables: one row per row of `docs/status-codes.md` § taobao, where each code's
/// meaning and public source are listed (a test reads both and checks they agree). The trade's
/// `status` is `trade_status`; each sub-order's `status` is `order_status` and its
/// `refund_status` is `refund_status`.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("trade_status", "TRADE_NO_CREATE_PAY", Mapped(Target::lifecycle(PendingPayment))),
    ("trade_status", "WAIT_BUYER_PAY", Mapped(Target::lifecycle(PendingPayment))),
    ("trade_status", "PAY_PENDING", Mapped(Target::lifecycle(PendingPayment))),
    ("trade_status", "WAIT_PRE_AUTH_CONFIRM", Mapped(Target::lifecycle(PendingPayment))),
    ("trade_status", "WAIT_SELLER_SEND_GOODS", Mapped(Target::lifecycle(Paid))),
    // 已付款但禁止发货 (拼团中 or 发货强管控): paid, may not ship yet.
    ("trade_status", "PAID_FORBID_CONSIGN", Mapped(Target::lifecycle(RiskHold))),
    ("trade_status", "SELLER_CONSIGNED_PART", Mapped(Target::lifecycle(Shipped))),
    ("trade_status", "WAIT_BUYER_CONFIRM_GOODS", Mapped(Target::lifecycle(Shipped))),
    ("trade_status", "TRADE_BUYER_SIGNED", Mapped(Target::lifecycle(Signed))),
    ("trade_status", "TRADE_FINISHED", Mapped(Target::lifecycle(Completed))),
    // 付款以后用户退款成功，交易自动关闭: the platform's own words say the money went back, so the
    // close is a refund outcome; before shipment the order is also cancelled (after shipment the
    // state machine keeps the fulfilment state). The same rule for every platform's "closed".
    ("trade_status", "TRADE_CLOSED", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("trade_status", "TRADE_CLOSED_BY_TAOBAO", Mapped(Target::lifecycle(Cancelled))),
    ("order_status", "TRADE_NO_CREATE_PAY", Mapped(Target::lifecycle(PendingPayment))),
    ("order_status", "WAIT_BUYER_PAY", Mapped(Target::lifecycle(PendingPayment))),
    ("order_status", "PAY_PENDING", Mapped(Target::lifecycle(PendingPayment))),
    ("order_status", "WAIT_SELLER_SEND_GOODS", Mapped(Target::lifecycle(Paid))),
    ("order_status", "PAID_FORBID_CONSIGN", Mapped(Target::lifecycle(RiskHold))),
    ("order_status", "WAIT_BUYER_CONFIRM_GOODS", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "TRADE_BUYER_SIGNED", Mapped(Target::lifecycle(Signed))),
    ("order_status", "TRADE_FINISHED", Mapped(Target::lifecycle(Completed))),
    ("order_status", "TRADE_CLOSED", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("order_status", "TRADE_CLOSED_BY_TAOBAO", Mapped(Target::lifecycle(Cancelled))),
    // Every sub-order of a normal trade reports NO_REFUND.
    ("refund_status", "NO_REFUND", Informational("no refund on this sub-order")),
    ("refund_status", "WAIT_SELLER_AGREE", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "WAIT_BUYER_RETURN_GOODS", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_status", "WAIT_SELLER_CONFIRM_GOODS", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_status", "SELLER_REFUSE_BUYER", Mapped(Target::refund(RefundState::Rejected))),
    ("refund_status", "CLOSED", Mapped(Target::refund(RefundState::Closed))),
    ("refund_status", "SUCCESS", Mapped(Target::refund(RefundState::Succeeded))),
];

/// Maps a Taobao code (`trade_status`, `order_status`, `refund_status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// What a Taobao shop's secret parameter holds (JSON): the open-API app and the shop's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaobaoSecret {
    /// The app key (client id).
    pub app_key: String,
    /// The app secret that signs API requests.
    pub secret: Secret,
    /// The shop's tokens.
    #[serde(flatten)]
    pub tokens: ApiTokens,
}

impl TaobaoSecret {
    /// The open-API access this secret gives.
    pub fn api_access(&self) -> Option<ApiAccess> {
        Some(ApiAccess { app_key: self.app_key.clone(), app_secret: self.secret.clone(), tokens: self.tokens.clone() })
    }
}

/// Taobao in the registry: its changes are pulled, it sends no callbacks.
pub struct Taobao;

impl SourceModule for Taobao {
    fn source(&self) -> Source {
        Source::Taobao
    }

    fn delivery(&self) -> Delivery {
        Delivery::Pulled
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<TaobaoSecret>(json)
    }

    fn open(&self, cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal> {
        let _ = (cb, secret);
        Err(no_callbacks(Source::Taobao))
    }

    /// Taobao's payloads are the rows order-sync pulls ([`PulledPayload`]); anything else is refused.
    fn parse(&self, shop: &ShopId, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
        let _ = query;
        match PulledPayload::read(payload) {
            Some(pulled) => pull::parse(shop, &pulled),
            None => Err(pulled_only(Source::Taobao)),
        }
    }

    fn parse_pulled(&self, shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
        pull::parse(shop, pulled)
    }

    fn status_table(&self) -> &'static [MappingRow] {
        STATUS_TABLE
    }

    fn ack(&self) -> Ack {
        Ack { status: 200, body: r#"{"code":0}"# }
    }

    fn api_access(&self, secret: &ShopSecret) -> Option<ApiAccess> {
        secret.typed::<TaobaoSecret>().ok().and_then(TaobaoSecret::api_access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn trade_status_row() {
        assert_rows(
            map_status,
            "trade_status",
            &[
                ("TRADE_NO_CREATE_PAY", Some(PendingPayment), None),
                ("WAIT_BUYER_PAY", Some(PendingPayment), None),
                ("PAY_PENDING", Some(PendingPayment), None),
                ("WAIT_PRE_AUTH_CONFIRM", Some(PendingPayment), None),
                ("WAIT_SELLER_SEND_GOODS", Some(Paid), None),
                ("SELLER_CONSIGNED_PART", Some(Shipped), None),
                ("WAIT_BUYER_CONFIRM_GOODS", Some(Shipped), None),
                ("TRADE_BUYER_SIGNED", Some(Signed), None),
                ("TRADE_FINISHED", Some(Completed), None),
                ("TRADE_CLOSED", Some(Cancelled), Some(RefundState::Succeeded)),
                ("TRADE_CLOSED_BY_TAOBAO", Some(Cancelled), None),
            ],
        );
    }

    #[test]
    fn refund_status_row() {
        assert_rows(
            map_status,
            "refund_status",
            &[
                ("WAIT_SELLER_AGREE", None, Some(RefundState::Requested)),
                ("WAIT_BUYER_RETURN_GOODS", None, Some(RefundState::Approved)),
                ("WAIT_SELLER_CONFIRM_GOODS", None, Some(RefundState::Approved)),
                ("SELLER_REFUSE_BUYER", None, Some(RefundState::Rejected)),
                ("CLOSED", None, Some(RefundState::Closed)),
                ("SUCCESS", None, Some(RefundState::Succeeded)),
            ],
        );
    }

    #[test]
    fn unknown_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("trade_status", "TRADE_SOMETHING_NEW"), Unmapped);
        assert_eq!(map_status("trade_status", "wait_buyer_pay"), Unmapped, "codes are case-sensitive");
    }
}
