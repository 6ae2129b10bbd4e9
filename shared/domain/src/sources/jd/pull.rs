//! JD's pulled rows (order-sync): an order of `jingdong.pop.order.enSearch`
//! (`orderInfoList[]`; `orderId`, `orderState`, `modified`, `itemInfoList[]`) and a refund
//! application of the refund list. The order API's fields follow public JOS request classes
//! (docs/platform-apis.md "JD"); the response field names and the refund API are
//! **unconfirmed**, so a refund row's code is kept under its own field, `refund_apply_status`,
//! which has no mapping row: every such refund is flagged unmapped and alerted on until JD's
//! real refund list and its codes are confirmed.

use serde_json::Value;

use crate::model::ids::{ShopId, Source};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent};
use crate::model::sync::{Feed, PulledPayload};
use crate::sources::json::text;
use crate::sources::pulled::{line, order_key, refund_scope, status, updated_at};

/// Parses one pulled JD row.
pub fn parse(shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
    let row = &pulled.row;
    let key = order_key(Source::Jd, shop, row, "orderId")?;
    match pulled.pull.feed {
        Feed::Orders => {
            let at = updated_at(row, "modified")?;
            let code = text(row, "orderState").ok_or(ParseError::Field("orderState"))?;
            let facts = OrderFacts {
                lines: row
                    .get("itemInfoList")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items.iter().filter_map(|i| line(i, "skuId", &["outerSkuId", "skuId"], "itemTotal")).collect()
                    })
                    .unwrap_or_default(),
                ..OrderFacts::default()
            };
            Ok(vec![status(&key, &format!("o-{}", key.order_id), at, "order_state", code, facts)])
        }
        Feed::Refunds => {
            let at = row.get("checkTime").or_else(|| row.get("applyTime"));
            let at = at.and_then(crate::sources::json::parse_time).ok_or(ParseError::Field("applyTime"))?;
            let code = text(row, "status").ok_or(ParseError::Field("status"))?;
            let id = text(row, "id");
            let subject = format!("r-{}-{}", key.order_id, id.as_deref().unwrap_or("order"));
            let facts = OrderFacts { refund: refund_scope(id, Vec::new()), ..OrderFacts::default() };
            Ok(vec![status(&key, &subject, at, "refund_apply_status", code, facts)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sync::PullOrigin;
    use serde_json::json;

    #[test]
    fn an_order_row_gives_its_state_and_lines() {
        let row = json!({"orderId": "7001", "orderState": "WAIT_SELLER_STOCK_OUT", "modified": "2026-11-11 10:00:00",
            "itemInfoList": [{"skuId": "55", "outerSkuId": "SKU-J", "itemTotal": "3"}]});
        let pulled = PulledPayload { pull: PullOrigin { feed: Feed::Orders, api: "t".into() }, row };
        let shop = ShopId::parse("jd-1").unwrap_or_else(|e| panic!("{e}"));
        let events = parse(&shop, &pulled).unwrap_or_else(|e| panic!("{e}"));
        let [SourceEvent::Status(event)] = &events[..] else { panic!("{events:?}") };
        assert_eq!(event.raw.to_string(), "order_state=WAIT_SELLER_STOCK_OUT");
        assert_eq!(event.facts.lines[0].qty, 3);
    }
}
