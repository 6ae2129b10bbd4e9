//! The orders table's reservation items (`R#{sku}`): [`InventoryStore`].

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use domain::model::counters::CounterAdd;
use domain::model::ids::LineId;
use domain::model::stock::{ReleaseOutcome, Reservation};
use domain::ports::{InventoryStore, StoreError};
use domain::{OrderKey, Sku};

use super::keys::{order_pk, reservation_sort_key};
use super::{
    Item, TransactFailure, build_error, counter_updates, decode, encode, is_condition_failed, s, sdk_error, transact,
};
use crate::schema::{PK, SK};

#[derive(Serialize, Deserialize)]
struct ReservationItem {
    pk: String,
    sk: String,
    key: OrderKey,
    // Absent on items written before reservations were per line: their line is their SKU.
    #[serde(default)]
    line: Option<LineId>,
    sku: Sku,
    qty: u32,
    reserved_at: DateTime<Utc>,
    // Absent (not NULL) until released: the release condition is `attribute_not_exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    released_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    released_by: Option<String>,
}

/// Per-order stock reservations (orders table).
#[derive(Debug, Clone)]
pub struct DynamoInventory {
    client: Client,
    orders_table: String,
    stats_table: String,
}

impl DynamoInventory {
    /// The store over the orders table; release counters go to the stats table.
    pub fn new(client: Client, orders_table: impl Into<String>, stats_table: impl Into<String>) -> Self {
        Self { client, orders_table: orders_table.into(), stats_table: stats_table.into() }
    }
}

#[async_trait]
impl InventoryStore for DynamoInventory {
    async fn reserve(&self, reservations: &[Reservation]) -> Result<(), StoreError> {
        let puts = reservations.iter().map(|r| async move {
            let item = encode(&ReservationItem {
                pk: order_pk(&r.key),
                sk: reservation_sort_key(&r.line),
                key: r.key.clone(),
                line: Some(r.line.clone()),
                sku: r.sku.clone(),
                qty: r.qty,
                reserved_at: r.reserved_at,
                released_at: r.released_at,
                released_by: r.released_by.clone(),
            })?;
            match self
                .client
                .put_item()
                .table_name(&self.orders_table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(err) if is_condition_failed(&err) => Ok(()),
                Err(err) => Err(sdk_error(&err)),
            }
        });
        futures::future::try_join_all(puts).await.map(|_| ())
    }

    async fn release(
        &self,
        key: &OrderKey,
        lines: &[LineId],
        at: DateTime<Utc>,
        reason: &str,
        counters: &[CounterAdd],
    ) -> Result<ReleaseOutcome, StoreError> {
        // One transaction: every line's conditional release, then its counters (a retry of an
        // applied transaction fails its conditions, so the counters are never added twice).
        let mut items = Vec::with_capacity(lines.len() + 1);
        for line in lines {
            let update = Update::builder()
                .table_name(&self.orders_table)
                .key(PK, s(order_pk(key)))
                .key(SK, s(reservation_sort_key(line)))
                .update_expression("SET released_at = :at, released_by = :by")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(released_at)")
                .expression_attribute_values(":at", s(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
                .expression_attribute_values(":by", s(reason))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        for update in counter_updates(&self.stats_table, counters)? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match transact(&self.client, items).await {
            Ok(()) => Ok(ReleaseOutcome::Released),
            Err(TransactFailure::Cancelled(reasons)) => {
                let failed = reasons.iter().take(lines.len()).position(|r| r.code() == Some("ConditionalCheckFailed"));
                let Some(index) = failed else {
                    // Cancelled for another reason (a concurrent transaction on a counter).
                    return Err(StoreError::Conflict);
                };
                if reasons[index].item().is_some() {
                    return Ok(ReleaseOutcome::AlreadyReleased);
                }
                // Not every endpoint returns the old item: look once to tell the two apart.
                let found = self
                    .client
                    .get_item()
                    .table_name(&self.orders_table)
                    .key(PK, s(order_pk(key)))
                    .key(SK, s(reservation_sort_key(&lines[index])))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&e))?;
                Ok(if found.item.is_some() { ReleaseOutcome::AlreadyReleased } else { ReleaseOutcome::NotReserved })
            }
            Err(TransactFailure::Other(err)) => Err(err),
        }
    }

    async fn reservations(&self, key: &OrderKey) -> Result<Vec<Reservation>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.orders_table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :r)")
                .expression_attribute_values(":pk", s(order_pk(key)))
                .expression_attribute_values(":r", s("R#"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&e))?;
            for item in page.items.unwrap_or_default() {
                let r: ReservationItem = decode(item)?;
                out.push(Reservation {
                    key: r.key,
                    line: r.line.unwrap_or_else(|| LineId::of_sku(&r.sku)),
                    sku: r.sku,
                    qty: r.qty,
                    reserved_at: r.reserved_at,
                    released_at: r.released_at,
                    released_by: r.released_by,
                });
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }
}
