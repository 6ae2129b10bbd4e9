//! Douyin's pulled rows (order-sync's hourly backstop): an order of `/order/searchList`
//! (`shop_order_list[]`) and an after-sale of `/afterSale/List` (`items[]`). Field names from
//! zsmhub/doudian-sdk `api/order_searchList/**` and `api/afterSale_List/**`
//! (docs/platform-apis.md "Douyin"). Kept apart from the push parser: the status table is the
//! one callbacks use (`order_status`, `after_sale_status` rows).

use serde_json::Value;

use crate::model::ids::{ShopId, Source};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent};
use crate::model::sync::{Feed, PulledPayload};
use crate::sources::douyin::refund_kind;
use crate::sources::json::text;
use crate::sources::pulled::{line, order_key, refund_scope, status, updated_at};

/// Parses one pulled Douyin row.
pub fn parse(shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
    let row = &pulled.row;
    match pulled.pull.feed {
        Feed::Orders => {
            let key = order_key(Source::Douyin, shop, row, "order_id")?;
            let at = updated_at(row, "update_time")?;
            let code = text(row, "order_status").ok_or(ParseError::Field("order_status"))?;
            // A sku order id is the line, as the pushes' `s_ids` name them.
            let facts = OrderFacts {
                lines: row
                    .get("sku_order_list")
                    .and_then(Value::as_array)
                    .map(|items| items.iter().filter_map(|i| line(i, "order_id", &["order_id"], "item_num")).collect())
                    .unwrap_or_default(),
                ..OrderFacts::default()
            };
            Ok(vec![status(&key, &format!("o-{}", key.order_id), at, "order_status", code, facts)])
        }
        Feed::Refunds => {
            let info = row.get("aftersale_info").ok_or(ParseError::Field("aftersale_info"))?;
            let order = row.get("order_info").ok_or(ParseError::Field("order_info"))?;
            let key = order_key(Source::Douyin, shop, order, "shop_order_id")?;
            let at = updated_at(info, "update_time")?;
            let code = text(info, "aftersale_status").ok_or(ParseError::Field("aftersale_status"))?;
            let id = text(info, "aftersale_id");
            let lines: Vec<String> = order
                .get("related_order_info")
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(|i| text(i, "sku_order_id")).collect())
                .unwrap_or_default();
            let subject = format!("r-{}-{}", key.order_id, id.as_deref().unwrap_or("order"));
            let facts = OrderFacts {
                refund: refund_scope(id, lines),
                refund_kind: text(info, "aftersale_type").and_then(|t| refund_kind(&t)),
                ..OrderFacts::default()
            };
            Ok(vec![status(&key, &subject, at, "after_sale_status", code, facts)])
        }
    }
}
