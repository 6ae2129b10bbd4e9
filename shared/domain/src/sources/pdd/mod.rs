//! 拼多多 (Pinduoduo): order, group, confirm, risk and after-sale codes.
//!
//! PDD delivers messages over a long connection, so orderhub pulls changes with the query API;
//! the codes below are the fields of `pdd.order.information.get` and `pdd.refund.information.get`.

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

/// PDD's status tables (`../shared/reference/platforms.md`, lywzx/pdd-node-sdk).
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
    // refund_status: 1 covers "never had an after-sale" and "closed": both end in Closed
    ("refund_status", "1", Mapped(Target::refund(RefundState::Closed))),
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
];

/// Maps a PDD code (`order_status`, `confirm_status`, `group_status`, `risk_control_status`,
/// `refund_status`, `after_sales_status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
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
                ("1", None, Some(RefundState::Closed)),
                ("2", None, Some(RefundState::Requested)),
                ("3", None, Some(RefundState::Approved)),
                ("4", None, Some(RefundState::Succeeded)),
            ],
        );
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
        for exchange in ["0", "14", "15", "16", "17", "18"] {
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
        assert_eq!(map_status("after_sales_status", "1"), Unmapped);
    }
}
