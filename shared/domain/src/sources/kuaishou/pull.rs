//! Kuaishou's pulled rows (order-sync's hourly backstop): an order of `open.order.cursor.list`
//! (`orderList[]`: `orderBaseInfo{oid, status, updateTime}`, `orderItemInfo`) and a refund of
//! `open.seller.order.refund.pcursor.list` (`refundOrderInfoList[]`). The order fields follow
//! public callers (docs/platform-apis.md "Kuaishou", [agree]); the refund list's fields are
//! **unconfirmed**. Refund codes go under `refund_status`, as the push parser files them (no
//! mapping rows yet: flagged and alerted, never dropped).

use crate::model::ids::{ShopId, Source};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent};
use crate::model::sync::{Feed, PulledPayload};
use crate::sources::json::text;
use crate::sources::pulled::{line, order_key, refund_scope, status, updated_at};

/// Parses one pulled Kuaishou row.
pub fn parse(shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
    let row = &pulled.row;
    match pulled.pull.feed {
        Feed::Orders => {
            let base = row.get("orderBaseInfo").ok_or(ParseError::Field("orderBaseInfo"))?;
            let key = order_key(Source::Kuaishou, shop, base, "oid")?;
            let at = updated_at(base, "updateTime")?;
            let code = text(base, "status").ok_or(ParseError::Field("status"))?;
            let facts = OrderFacts {
                lines: row
                    .get("orderItemInfo")
                    .and_then(|item| line(item, "itemId", &["relSkuId", "skuId"], "num"))
                    .into_iter()
                    .collect(),
                ..OrderFacts::default()
            };
            Ok(vec![status(&key, &format!("o-{}", key.order_id), at, "status", code, facts)])
        }
        Feed::Refunds => {
            let key = order_key(Source::Kuaishou, shop, row, "oid")?;
            let at = updated_at(row, "updateTime")?;
            let code = text(row, "status").ok_or(ParseError::Field("status"))?;
            let id = text(row, "refundId");
            let subject = format!("r-{}-{}", key.order_id, id.as_deref().unwrap_or("order"));
            let facts = OrderFacts { refund: refund_scope(id, Vec::new()), ..OrderFacts::default() };
            Ok(vec![status(&key, &subject, at, "refund_status", code, facts)])
        }
    }
}
