//! Youzan's pulled rows (order-sync's hourly backstop): a trade of `youzan.trades.sold.get`
//! (`full_order_info_list[].full_order_info`: `order_info{tid, status, update_time}`,
//! `orders[]`) and a refund of the refund search. The trade fields follow public clients
//! (docs/platform-apis.md "Youzan", [agree]); the refund search is **unconfirmed**. Refund
//! codes go under `refund_status`, as the push parser files them (no mapping rows yet).

use serde_json::Value;

use crate::model::ids::{ShopId, Source};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent};
use crate::model::sync::{Feed, PulledPayload};
use crate::sources::json::text;
use crate::sources::pulled::{line, order_key, refund_scope, status, updated_at};

/// Parses one pulled Youzan row.
pub fn parse(shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
    let row = &pulled.row;
    match pulled.pull.feed {
        Feed::Orders => {
            let full = row.get("full_order_info").unwrap_or(row);
            let info = full.get("order_info").ok_or(ParseError::Field("order_info"))?;
            let key = order_key(Source::Youzan, shop, info, "tid")?;
            let at = updated_at(info, "update_time")?;
            let code = text(info, "status").ok_or(ParseError::Field("status"))?;
            let facts = OrderFacts {
                lines: full
                    .get("orders")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items.iter().filter_map(|i| line(i, "oid", &["outer_sku_id", "sku_id"], "num")).collect()
                    })
                    .unwrap_or_default(),
                ..OrderFacts::default()
            };
            Ok(vec![status(&key, &format!("o-{}", key.order_id), at, "status", code, facts)])
        }
        Feed::Refunds => {
            let key = order_key(Source::Youzan, shop, row, "tid")?;
            let at = updated_at(row, "modified")?;
            let code = text(row, "status").ok_or(ParseError::Field("status"))?;
            let id = text(row, "refund_id");
            let subject = format!("r-{}-{}", key.order_id, id.as_deref().unwrap_or("order"));
            let facts = OrderFacts {
                refund: refund_scope(id, text(row, "oid").into_iter().collect()),
                ..OrderFacts::default()
            };
            Ok(vec![status(&key, &subject, at, "refund_status", code, facts)])
        }
    }
}
