//! 拼多多 (Pinduoduo): order, group, confirm, risk and after-sale codes.
//!
//! PDD delivers messages over a long connection, so orderhub pulls changes with the query API;
//! the codes below are the fields of `pdd.order.information.get` and `pdd.refund.information.get`.

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

/// PDD's status tables: one row per row of `docs/status-codes.md` § pdd, where each code's
/// meaning and public source are listed (a test reads both and checks they agree).
pub const STATUS_TABLE: &[MappingRow] = &[
    ("order_status", "1", Mapped(Target::lifecycle(Paid))),
    ("order_status", "2", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "3", Mapped(Target::lifecycle(Signed))),
    ("confirm_status", "0", Informational("not yet a deal (未成交)")),
    ("confirm_status", "1", Informational("deal confirmed (已成交)")),
    ("confirm_status", "2", Mapped(Target::lifecycle(Cancelled))),
    ("group_status", "0", Mapped(Target::lifecycle(RiskHold))),
    ("group_status", "1", Mapped(Target::lifecycle(Paid))),
    ("group_status", "2", Mapped(Target::lifecycle(Cancelled))),
    ("risk_control_status", "0", Informational("not under risk control")),
    ("risk_control_status", "1", Mapped(Target::lifecycle(RiskHold))),
    // refund_status 1 is 无售后或售后关闭: it cannot say Closed on its own (an order that never
    // had an after-sale would move to Closed); closure comes from after_sales_status.
    ("refund_status", "1", Informational("no after-sale, or the after-sale closed")),
    ("refund_status", "2", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "3", Mapped(Target::refund(RefundState::Approved))),
    ("refund_status", "4", Mapped(Target::refund(RefundState::Succeeded))),
    ("after_sales_status", "0", Informational("no after-sale")),
    ("after_sales_status", "2", Mapped(Target::refund_of(RefundState::Requested, RefundOnly))),
    ("after_sales_status", "3", Mapped(Target::refund_of(RefundState::Requested, ReturnAndRefund))),
    ("after_sales_status", "4", Mapped(Target::refund(RefundState::Approved))),
    ("after_sales_status", "5", Mapped(Target::refund(RefundState::Approved))),
    ("after_sales_status", "6", Mapped(Target::refund(RefundState::Rejected))),
    ("after_sales_status", "7", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("after_sales_status", "8", Mapped(Target::refund(RefundState::Requested))),
    ("after_sales_status", "9", Mapped(Target::refund(RefundState::Closed))),
    ("after_sales_status", "10", Mapped(Target::refund(RefundState::Succeeded))),
    ("after_sales_status", "11", Mapped(Target::refund(RefundState::Closed))),
    ("after_sales_status", "12", Mapped(Target::refund(RefundState::Closed))),
    ("after_sales_status", "13", Mapped(Target::refund(RefundState::Closed))),
    ("after_sales_status", "14", Informational("exchange or re-send: waiting for the seller")),
    ("after_sales_status", "15", Informational("exchange or re-send: waiting for the buyer")),
    ("after_sales_status", "16", Informational("exchange or re-send: done")),
    ("after_sales_status", "17", Informational("exchange or re-send: failed")),
    ("after_sales_status", "18", Informational("exchange or re-send: waiting for the buyer to confirm")),
    ("after_sales_status", "21", Informational("repair: waiting for the seller to agree")),
    ("after_sales_status", "22", Informational("repair: waiting for the buyer to confirm shipment")),
    ("after_sales_status", "24", Informational("repair closed")),
    ("after_sales_status", "25", Informational("repair done")),
    ("after_sales_status", "27", Informational("repair: waiting for the buyer to confirm receipt")),
    // 已同意拒收退款，待用户拒收: refund agreed on refusal; the parcel comes back.
    ("after_sales_status", "31", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("after_sales_status", "32", Informational("re-send: waiting for the seller to ship")),
    // 同意召回后退款，待商家召回 (unnamed public copies only; the first row to re-check).
    ("after_sales_status", "33", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    // after_sales_type: the response enum of pdd.refund.information.get (not the request filter
    // of pdd.refund.list.increment.get, which numbers differently)
    ("after_sales_type", "1", Mapped(Target::kind(RefundOnly))),
    ("after_sales_type", "2", Mapped(Target::kind(ReturnAndRefund))),
    ("after_sales_type", "3", Informational("exchange: no refund")),
    ("after_sales_type", "4", Informational("re-send: no refund")),
    ("after_sales_type", "5", Informational("repair: no refund")),
];

/// Maps a PDD code (`order_status`, `confirm_status`, `group_status`, `risk_control_status`,
/// `refund_status`, `after_sales_status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// The kind of an after-sale (`after_sales_type`): `None` for an exchange, a re-send or a repair.
pub fn refund_kind(after_sales_type: &str) -> Option<crate::model::lifecycle::RefundKind> {
    kind_of(STATUS_TABLE, "after_sales_type", after_sales_type)
}

/// What a Pinduoduo shop's secret parameter holds (JSON): the open-API app and the shop's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PddSecret {
    /// The app key (client id).
    pub app_key: String,
    /// The app secret that signs API requests.
    pub secret: Secret,
    /// The shop's tokens.
    #[serde(flatten)]
    pub tokens: ApiTokens,
}

impl PddSecret {
    /// The open-API access this secret gives.
    pub fn api_access(&self) -> Option<ApiAccess> {
        Some(ApiAccess { app_key: self.app_key.clone(), app_secret: self.secret.clone(), tokens: self.tokens.clone() })
    }
}

/// Pinduoduo in the registry: its changes are pulled, it sends no callbacks.
pub struct Pdd;

impl SourceModule for Pdd {
    fn source(&self) -> Source {
        Source::Pdd
    }

    fn delivery(&self) -> Delivery {
        Delivery::Pulled
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<PddSecret>(json)
    }

    fn open(&self, cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal> {
        let _ = (cb, secret);
        Err(no_callbacks(Source::Pdd))
    }

    /// Pdd's payloads are the rows order-sync pulls ([`PulledPayload`]); anything else is refused.
    fn parse(&self, shop: &ShopId, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
        let _ = query;
        match PulledPayload::read(payload) {
            Some(pulled) => pull::parse(shop, &pulled),
            None => Err(pulled_only(Source::Pdd)),
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
        secret.typed::<PddSecret>().ok().and_then(PddSecret::api_access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn order_status_row() {
        assert_rows(
            map_status,
            "order_status",
            &[("1", Some(Paid), None), ("2", Some(Shipped), None), ("3", Some(Signed), None)],
        );
    }

    #[test]
    fn confirm_and_group_status_rows() {
        assert_rows(map_status, "confirm_status", &[("2", Some(Cancelled), None)]);
        assert!(matches!(map_status("confirm_status", "0"), Informational(_)));
        assert!(matches!(map_status("confirm_status", "1"), Informational(_)));
        assert_rows(
            map_status,
            "group_status",
            &[("0", Some(RiskHold), None), ("1", Some(Paid), None), ("2", Some(Cancelled), None)],
        );
        assert_rows(map_status, "risk_control_status", &[("1", Some(RiskHold), None)]);
    }

    #[test]
    fn refund_status_row() {
        assert_rows(
            map_status,
            "refund_status",
            &[
                ("2", None, Some(RefundState::Requested)),
                ("3", None, Some(RefundState::Approved)),
                ("4", None, Some(RefundState::Succeeded)),
            ],
        );
        // 无售后或售后关闭: an order that never had an after-sale must not become "Closed".
        assert!(matches!(map_status("refund_status", "1"), Informational(_)));
    }

    #[test]
    fn after_sales_status_row() {
        assert_rows(
            map_status,
            "after_sales_status",
            &[
                ("2", None, Some(RefundState::Requested)),
                ("3", None, Some(RefundState::Requested)),
                ("4", None, Some(RefundState::Approved)),
                ("5", None, Some(RefundState::Approved)),
                ("6", None, Some(RefundState::Rejected)),
                ("7", None, Some(RefundState::Approved)),
                ("8", None, Some(RefundState::Requested)),
                ("9", None, Some(RefundState::Closed)),
                ("10", None, Some(RefundState::Succeeded)),
                ("11", None, Some(RefundState::Closed)),
                ("12", None, Some(RefundState::Closed)),
                ("13", None, Some(RefundState::Closed)),
            ],
        );
        assert_rows(
            map_status,
            "after_sales_status",
            &[("31", None, Some(RefundState::Approved)), ("33", None, Some(RefundState::Approved))],
        );
        for exchange in ["0", "14", "15", "16", "17", "18", "21", "22", "24", "25", "27", "32"] {
            assert!(matches!(map_status("after_sales_status", exchange), Informational(_)), "{exchange}");
        }
        assert_eq!(
            map_status("after_sales_status", "3"),
            Mapped(Target::refund_of(RefundState::Requested, ReturnAndRefund))
        );
    }

    #[test]
    fn unknown_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("order_status", "4"), Unmapped);
        for unconfirmed in ["1", "19", "20", "23", "26", "28", "29", "30"] {
            assert_eq!(map_status("after_sales_status", unconfirmed), Unmapped, "{unconfirmed}");
        }
    }

    #[test]
    fn after_sales_type_row() {
        assert_eq!(refund_kind("1"), Some(RefundOnly));
        assert_eq!(refund_kind("2"), Some(ReturnAndRefund));
        for no_refund in ["3", "4", "5", "0"] {
            assert_eq!(refund_kind(no_refund), None, "{no_refund}");
        }
    }
}
