//! Pinduoduo's pulled rows (order-sync): an order of `pdd.order.number.list.increment.get`
//! (`order_sn_list[]`) and an after-sale of `pdd.refund.list.increment.get` (`refund_list[]`).
//! Field names from lywzx/pdd-node-sdk `packages/pdd-origin-api/src/dingDan/PddOrderNumberListIncrementGet.ts`
//! and `shouHou/PddRefundListIncrementGet.ts` (docs/platform-apis.md "PDD").

use serde_json::Value;

use crate::model::ids::{ShopId, Source};
use crate::model::lifecycle::RefundKind;
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, Waybill};
use crate::model::sync::{Feed, PulledPayload};
use crate::sources::json::text;
use crate::sources::pulled::{line, order_key, refund_scope, status, updated_at};

/// Parses one pulled PDD row.
pub fn parse(shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
    match pulled.pull.feed {
        Feed::Orders => order(shop, &pulled.row),
        Feed::Refunds => refund(shop, &pulled.row),
    }
}

/// An order row: its `order_status` (with its lines, and the waybill once shipped), a
/// cancellation (`confirm_status` 2), and a refund under way (`refund_status` 2–4; 1 means "none
/// or closed", which the after-sale list says precisely).
fn order(shop: &ShopId, row: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let key = order_key(Source::Pdd, shop, row, "order_sn")?;
    let at = updated_at(row, "updated_at")?;
    let subject = format!("o-{}", key.order_id);
    let mut events = Vec::new();
    if let Some(code) = text(row, "order_status") {
        let lines = row
            .get("item_list")
            .and_then(Value::as_array)
            .map(|items| {
                items.iter().filter_map(|i| line(i, "sku_id", &["outer_id", "sku_id"], "goods_count")).collect()
            })
            .unwrap_or_default();
        let mut facts = OrderFacts { lines, ..OrderFacts::default() };
        if let Some(number) = text(row, "tracking_number") {
            // `logistics_id` is PDD's own express company id, not a Kuaidi100 code.
            let carrier = text(row, "logistics_id").unwrap_or_default();
            facts.waybill = Some(Waybill { carrier, number });
        }
        events.push(status(&key, &subject, at, "order_status", code, facts));
    }
    if text(row, "confirm_status").as_deref() == Some("2") {
        events.push(status(&key, &subject, at, "confirm_status", "2".into(), OrderFacts::default()));
    }
    if let Some(code) = text(row, "refund_status").filter(|c| matches!(c.as_str(), "2" | "3" | "4")) {
        events.push(status(&key, &subject, at, "refund_status", code, OrderFacts::default()));
    }
    if events.is_empty() {
        return Err(ParseError::Field("order_status"));
    }
    Ok(events)
}

/// An after-sale row: its `after_sales_status`, for its after-sale id and sku line.
fn refund(shop: &ShopId, row: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let key = order_key(Source::Pdd, shop, row, "order_sn")?;
    let at = updated_at(row, "updated_time")?;
    let code = text(row, "after_sales_status").ok_or(ParseError::Field("after_sales_status"))?;
    let id = text(row, "id");
    let subject = format!("r-{}-{}", key.order_id, id.as_deref().unwrap_or("order"));
    let facts = OrderFacts {
        refund: refund_scope(id, text(row, "sku_id").into_iter().collect()),
        // after_sales_type in the list: 2 仅退款, 3 退货退款 (PddRefundListIncrementGet.ts).
        refund_kind: match text(row, "after_sales_type").as_deref() {
            Some("2") => Some(RefundKind::RefundOnly),
            Some("3") => Some(RefundKind::ReturnAndRefund),
            _ => None,
        },
        ..OrderFacts::default()
    };
    Ok(vec![status(&key, &subject, at, "after_sales_status", code, facts)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sync::PullOrigin;
    use serde_json::json;

    fn shop() -> ShopId {
        ShopId::parse("pdd-shop-1").unwrap_or_else(|e| panic!("{e}"))
    }

    fn pulled(feed: Feed, row: Value) -> PulledPayload {
        PulledPayload { pull: PullOrigin { feed, api: "test".into() }, row }
    }

    #[test]
    fn a_paid_order_row_gives_its_status_and_lines() {
        let row = json!({"order_sn": "261111-1001", "order_status": 1, "refund_status": 1, "confirm_status": 1,
            "updated_at": "2026-11-11 10:00:00",
            "item_list": [{"goods_id": 1, "sku_id": 77001, "outer_id": "SKU-A", "goods_count": 2}]});
        let events = parse(&shop(), &pulled(Feed::Orders, row)).unwrap_or_else(|e| panic!("{e}"));
        let [SourceEvent::Status(paid)] = &events[..] else { panic!("{events:?}") };
        assert_eq!(paid.raw.to_string(), "order_status=1");
        assert_eq!(paid.facts.lines.len(), 1);
        assert_eq!(
            (paid.facts.lines[0].line.as_str(), paid.facts.lines[0].sku.as_str(), paid.facts.lines[0].qty),
            ("77001", "SKU-A", 2)
        );
        assert_eq!(paid.event_time.map(|t| t.to_rfc3339()), Some("2026-11-11T02:00:00+00:00".into()));
    }

    #[test]
    fn a_refund_row_names_its_case_and_line() {
        let row = json!({"id": 5501, "order_sn": "261111-1001", "after_sales_status": 10, "after_sales_type": 2,
            "updated_time": "2026-11-11 11:00:00", "sku_id": 77001});
        let events = parse(&shop(), &pulled(Feed::Refunds, row)).unwrap_or_else(|e| panic!("{e}"));
        let [SourceEvent::Status(refund)] = &events[..] else { panic!("{events:?}") };
        assert_eq!(refund.raw.to_string(), "after_sales_status=10");
        assert_eq!(refund.facts.refund.id.as_ref().map(|r| r.as_str()), Some("5501"));
        assert_eq!(refund.facts.refund.lines.iter().map(|l| l.as_str()).collect::<Vec<_>>(), ["77001"]);
        assert_eq!(refund.facts.refund_kind, Some(RefundKind::RefundOnly));
    }

    #[test]
    fn a_row_without_an_order_number_or_time_is_refused() {
        assert!(parse(&shop(), &pulled(Feed::Orders, json!({"order_status": 1}))).is_err());
        assert!(parse(&shop(), &pulled(Feed::Orders, json!({"order_sn": "1", "order_status": 1}))).is_err());
    }
}
