//! Taobao/Tmall's pulled rows (order-sync): a trade of `taobao.trades.sold.increment.get`
//! (`trades.trade[]`, with `orders.order[]`) and a refund of `taobao.refunds.receive.get`
//! (`refunds.refund[]`). Field names from bububa/opentaobao
//! `model/tbtrade/TaobaoTradesSoldIncrementGetAPIRequest.go` and
//! `model/refund/TaobaoRefundsReceiveGetAPIRequest.go` (docs/platform-apis.md "Taobao").

use serde_json::Value;

use crate::model::ids::{ShopId, Source};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent};
use crate::model::sync::{Feed, PulledPayload};
use crate::sources::json::text;
use crate::sources::pulled::{line, order_key, refund_scope, status, updated_at};

/// Parses one pulled Taobao row.
pub fn parse(shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
    match pulled.pull.feed {
        Feed::Orders => trade(shop, &pulled.row),
        Feed::Refunds => refund(shop, &pulled.row),
    }
}

/// The sub-orders of a trade (`orders` is `{"order": [...]}` in TOP's JSON, or a bare list).
fn sub_orders(trade: &Value) -> Vec<&Value> {
    let orders = trade.get("orders");
    let list = orders.and_then(|o| o.get("order")).or(orders).and_then(Value::as_array);
    list.map(|l| l.iter().collect()).unwrap_or_default()
}

/// A trade row: its `status` with its lines, and each sub-order's refund when it has one
/// (`NO_REFUND` is no refund at all).
fn trade(shop: &ShopId, row: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let key = order_key(Source::Taobao, shop, row, "tid")?;
    let at = updated_at(row, "modified")?;
    let subject = format!("o-{}", key.order_id);
    let code = text(row, "status").ok_or(ParseError::Field("status"))?;
    let orders = sub_orders(row);
    let facts = OrderFacts {
        lines: orders.iter().filter_map(|o| line(o, "oid", &["outer_sku_id", "sku_id"], "num")).collect(),
        ..OrderFacts::default()
    };
    let mut events = vec![status(&key, &subject, at, "trade_status", code, facts)];
    for order in orders {
        let Some(refund) = text(order, "refund_status").filter(|r| r != "NO_REFUND") else { continue };
        let oid = text(order, "oid");
        let scope = refund_scope(text(order, "refund_id"), oid.clone().into_iter().collect());
        let subject = format!("o-{}-{}", key.order_id, oid.as_deref().unwrap_or("line"));
        events.push(status(
            &key,
            &subject,
            at,
            "refund_status",
            refund,
            OrderFacts { refund: scope, ..OrderFacts::default() },
        ));
    }
    Ok(events)
}

/// A refund row: its `status` for its refund id and sub-order.
fn refund(shop: &ShopId, row: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let key = order_key(Source::Taobao, shop, row, "tid")?;
    let at = updated_at(row, "modified")?;
    let code = text(row, "status").ok_or(ParseError::Field("status"))?;
    let id = text(row, "refund_id");
    let subject = format!("r-{}-{}", key.order_id, id.as_deref().unwrap_or("order"));
    let scope = refund_scope(id, text(row, "oid").into_iter().collect());
    Ok(vec![status(&key, &subject, at, "refund_status", code, OrderFacts { refund: scope, ..OrderFacts::default() })])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sync::PullOrigin;
    use serde_json::json;

    fn shop() -> ShopId {
        ShopId::parse("tb-shop-1").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_trade_row_gives_its_status_lines_and_line_refunds() {
        let row = json!({"tid": "3001", "status": "WAIT_SELLER_SEND_GOODS", "modified": "2026-11-11 10:00:00",
        "orders": {"order": [
            {"oid": "3001-1", "sku_id": "9", "outer_sku_id": "SKU-A", "num": 1, "refund_status": "NO_REFUND"},
            {"oid": "3001-2", "sku_id": "8", "outer_sku_id": "SKU-B", "num": 2, "refund_status": "SUCCESS", "refund_id": "rf-1"}
        ]}});
        let pulled = PulledPayload { pull: PullOrigin { feed: Feed::Orders, api: "t".into() }, row };
        let events = parse(&shop(), &pulled).unwrap_or_else(|e| panic!("{e}"));
        let codes: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                SourceEvent::Status(s) => Some(s.raw.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(codes, ["trade_status=WAIT_SELLER_SEND_GOODS", "refund_status=SUCCESS"]);
        let SourceEvent::Status(refund) = &events[1] else { panic!() };
        assert_eq!(refund.facts.refund.lines.iter().map(|l| l.as_str()).collect::<Vec<_>>(), ["3001-2"]);
        let SourceEvent::Status(paid) = &events[0] else { panic!() };
        assert_eq!(paid.facts.lines.len(), 2);
    }
}
