//! 京东 (JD): order states and after-sale service codes. JD's push scheme is unknown
//! (see `../shared/reference/platforms.md`), so only the query-side codes are here.

pub mod pull;
pub mod sign;

use crate::model::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::model::status::{MappingRow, StatusMapping, StatusMapping::*, Target, kind_of, lookup};
use serde::{Deserialize, Serialize};

use crate::model::callback::RawCallback;
use crate::model::ids::{ShopId, Source};
use crate::model::secret::{ApiAccess, ApiTokens, Secret};
use crate::model::source_event::{ParseError, SourceEvent};
use crate::model::sync::PulledPayload;
use crate::sources::{Ack, Delivery, Opened, Refusal, ShopSecret, SourceModule, no_callbacks, pulled_only};

/// JD's status tables: one row per row of `docs/status-codes.md` § jd, where each code's meaning
/// and public source are listed (a test reads both and checks they agree).
pub const STATUS_TABLE: &[MappingRow] = &[
    ("order_state", "WAIT_SELLER_STOCK_OUT", Mapped(Target::lifecycle(Paid))),
    // 等待发货 (海外购 'waiting for domestic shipment'): paid, awaiting shipment.
    ("order_state", "WAIT_SELLER_DELIVERY", Mapped(Target::lifecycle(Paid))),
    ("order_state", "WAIT_SEND_CODE", Mapped(Target::lifecycle(Paid))),
    // POP暂停 / 暂停 / 已锁定: paid, the platform forbids shipping for now.
    ("order_state", "POP_ORDER_PAUSE", Mapped(Target::lifecycle(RiskHold))),
    ("order_state", "PAUSE", Mapped(Target::lifecycle(RiskHold))),
    ("order_state", "LOCKED", Mapped(Target::lifecycle(RiskHold))),
    ("order_state", "SEND_TO_DISTRIBUTION_CENER", Mapped(Target::lifecycle(Shipped))),
    ("order_state", "DISTRIBUTION_CENTER_RECEIVED", Mapped(Target::lifecycle(InTransit))),
    ("order_state", "WAIT_GOODS_RECEIVE_CONFIRM", Mapped(Target::lifecycle(Shipped))),
    ("order_state", "RECEIPTS_CONFIRM", Mapped(Target::lifecycle(Completed))),
    ("order_state", "FINISHED_L", Mapped(Target::lifecycle(Completed))),
    ("order_state", "TRADE_CANCELED", Mapped(Target::lifecycle(Cancelled))),
    ("service_status", "10000", Mapped(Target::refund(RefundState::Requested))),
    ("service_status", "10001", Mapped(Target::refund(RefundState::Requested))),
    ("service_status", "10002", Mapped(Target::refund(RefundState::Requested))),
    ("service_status", "10004", Mapped(Target::refund(RefundState::Rejected))),
    ("service_status", "10005", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("service_status", "10006", Mapped(Target::refund(RefundState::Approved))),
    ("service_status", "10007", Mapped(Target::refund(RefundState::Approved))),
    ("service_status", "10009", Mapped(Target::refund(RefundState::Approved))),
    ("service_status", "10010", Mapped(Target::refund(RefundState::Succeeded))),
    ("service_status", "10011", Mapped(Target::refund(RefundState::Closed))),
    ("service_status", "10012", Mapped(Target::refund(RefundState::Requested))),
    ("service_status", "10013", Mapped(Target::refund(RefundState::Requested))),
    ("service_status", "10041", Mapped(Target::refund(RefundState::Approved))),
    ("service_status", "1100", Informational("repair: waiting for the repair centre")),
    ("service_status", "12000", Informational("on-site repair")),
    ("service_status", "13000", Informational("collection pending (three meanings in the source)")),
    ("service_status", "14000", Informational("on-site inspection")),
    // customer_expect (`customerExpect`): the kind of the after-sale
    ("customer_expect", "1", Mapped(Target::kind(RefundOnly))),
    ("customer_expect", "10", Mapped(Target::kind(ReturnAndRefund))),
    ("customer_expect", "11", Mapped(Target::kind(RefundOnly))),
    ("customer_expect", "20", Informational("exchange: no refund")),
    ("customer_expect", "30", Informational("repair: no refund")),
    ("customer_expect", "40", Informational("appliance installation: no refund")),
    ("customer_expect", "50", Informational("appliance relocation: no refund")),
    ("customer_expect", "60", Informational("appliance service: no refund")),
    ("customer_expect", "70", Informational("on-site repair: no refund")),
    ("customer_expect", "80", Informational("re-send: no refund")),
    // 优鲜赔: compensation without goods back; never a stock release.
    ("customer_expect", "90", Informational("compensation (优鲜赔): no stock movement")),
    ("customer_expect", "100", Informational("trial goods recalled: no refund")),
];

/// Maps a JD code (`order_state`, `service_status`, `customer_expect`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// The kind of an after-sale (`customerExpect`): `None` for an exchange, a repair or another
/// service, which are no refund.
pub fn refund_kind(customer_expect: &str) -> Option<crate::model::lifecycle::RefundKind> {
    kind_of(STATUS_TABLE, "customer_expect", customer_expect)
}

/// What a JD shop's secret parameter holds (JSON): the open-API app and the shop's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JdSecret {
    /// The app key (client id).
    pub app_key: String,
    /// The app secret that signs API requests.
    pub secret: Secret,
    /// The shop's tokens.
    #[serde(flatten)]
    pub tokens: ApiTokens,
}

impl JdSecret {
    /// The open-API access this secret gives.
    pub fn api_access(&self) -> Option<ApiAccess> {
        Some(ApiAccess { app_key: self.app_key.clone(), app_secret: self.secret.clone(), tokens: self.tokens.clone() })
    }
}

/// JD in the registry: its changes are pulled, it sends no callbacks.
pub struct Jd;

impl SourceModule for Jd {
    fn source(&self) -> Source {
        Source::Jd
    }

    fn delivery(&self) -> Delivery {
        Delivery::Pulled
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<JdSecret>(json)
    }

    fn open(&self, cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal> {
        let _ = (cb, secret);
        Err(no_callbacks(Source::Jd))
    }

    /// Jd's payloads are the rows order-sync pulls ([`PulledPayload`]); anything else is refused.
    fn parse(&self, shop: &ShopId, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
        let _ = query;
        match PulledPayload::read(payload) {
            Some(pulled) => pull::parse(shop, &pulled),
            None => Err(pulled_only(Source::Jd)),
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
        secret.typed::<JdSecret>().ok().and_then(JdSecret::api_access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn order_state_row() {
        assert_rows(
            map_status,
            "order_state",
            &[
                ("WAIT_SELLER_STOCK_OUT", Some(Paid), None),
                ("WAIT_GOODS_RECEIVE_CONFIRM", Some(Shipped), None),
                ("FINISHED_L", Some(Completed), None),
                ("TRADE_CANCELED", Some(Cancelled), None),
                ("LOCKED", Some(RiskHold), None),
                ("PAUSE", Some(RiskHold), None),
            ],
        );
    }

    #[test]
    fn service_status_row() {
        assert_rows(
            map_status,
            "service_status",
            &[
                ("10000", None, Some(RefundState::Requested)),
                ("10001", None, Some(RefundState::Requested)),
                ("10004", None, Some(RefundState::Rejected)),
                ("10005", None, Some(RefundState::Approved)),
                ("10010", None, Some(RefundState::Succeeded)),
                ("10011", None, Some(RefundState::Closed)),
            ],
        );
    }

    #[test]
    fn customer_expect_row() {
        assert_eq!(refund_kind("1"), Some(RefundOnly));
        assert_eq!(refund_kind("10"), Some(ReturnAndRefund));
        assert_eq!(refund_kind("11"), Some(RefundOnly));
        assert_eq!(refund_kind("20"), None, "an exchange is not a refund");
    }

    #[test]
    fn paused_and_distribution_states_are_mapped() {
        assert_rows(
            map_status,
            "order_state",
            &[
                ("POP_ORDER_PAUSE", Some(RiskHold), None),
                ("WAIT_SELLER_DELIVERY", Some(Paid), None),
                ("WAIT_SEND_CODE", Some(Paid), None),
                ("SEND_TO_DISTRIBUTION_CENER", Some(Shipped), None),
                ("DISTRIBUTION_CENTER_RECEIVED", Some(InTransit), None),
                ("RECEIPTS_CONFIRM", Some(Completed), None),
            ],
        );
        assert_eq!(refund_kind("90"), None, "优鲜赔 is compensation: never a stock release");
        assert_eq!(map_status("order_state", "PARENT_TRADE_CANCELED"), Unmapped, "unconfirmed");
    }
}
