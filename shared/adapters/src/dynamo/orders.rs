//! The orders table's order items, history and due markers: [`OrderStore`].

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{CancellationReason, Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use domain::model::counters::CounterAdd;
use domain::model::domain_event::DomainEvent;
use domain::model::record::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite, Unpublished};
use domain::ports::{OrderStore, Page, StoreError};
use domain::{MessageId, Order, OrderKey};

use super::keys::{due_sort_key, history_sort_key, order_pk, outbox_sort_key};
use super::{
    Item, TransactFailure, build_error, counter_updates, cursor_in, cursor_out, decode, encode, is_condition_failed, n,
    page_of, reason_is, s, sdk_error, transact,
};
use crate::schema::{GSI1, GSI1_PK, GSI1_SK, PK, SK};

#[derive(Serialize, Deserialize)]
struct OrderItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    order: Order,
}

#[derive(Serialize, Deserialize)]
struct HistoryItem {
    pk: String,
    sk: String,
    expires_at: i64,
    #[serde(flatten)]
    entry: HistoryEntry,
}

#[derive(Serialize, Deserialize)]
struct DueItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    marker: DueMarker,
}

/// An event of a change, kept until published (`X#{event_id}` beside its order).
#[derive(Serialize, Deserialize)]
struct OutboxItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    expires_at: i64,
    written_at: DateTime<Utc>,
    detail_type: String,
    detail: String,
}

/// The outbox item of one event about `key`.
fn outbox_item(key: &OrderKey, shard: u16, event: &DomainEvent, at: DateTime<Utc>) -> Result<Item, StoreError> {
    encode(&OutboxItem {
        pk: order_pk(key),
        sk: outbox_sort_key(&event.id()),
        gsi1pk: format!("OUTBOX#{shard}"),
        gsi1sk: format!("{}#{}", due_sort_key(at), event.id()),
        expires_at: (at + Duration::days(14)).timestamp(),
        written_at: at,
        detail_type: event.detail_type().to_owned(),
        detail: event.detail().to_string(),
    })
}

/// Orders, history and due markers (orders table); an applied change's counters go to the stats
/// table in the same transaction.
#[derive(Debug, Clone)]
pub struct DynamoOrders {
    client: Client,
    orders_table: String,
    stats_table: String,
    history_ttl: Duration,
}

impl DynamoOrders {
    /// The store over the two tables; history items expire after 180 days.
    pub fn new(client: Client, orders_table: impl Into<String>, stats_table: impl Into<String>) -> Self {
        Self {
            client,
            orders_table: orders_table.into(),
            stats_table: stats_table.into(),
            history_ttl: Duration::days(180),
        }
    }

    /// The orders table's name.
    pub fn orders_table(&self) -> &str {
        &self.orders_table
    }
}

#[async_trait]
impl OrderStore for DynamoOrders {
    async fn get(&self, key: &OrderKey) -> Result<Option<Order>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key(PK, s(order_pk(key)))
            .key(SK, s("#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        out.item.map(|item| decode::<OrderItem>(item).map(|i| i.order)).transpose()
    }

    async fn commit(&self, write: &OrderWrite) -> Result<(), StoreError> {
        let pk = order_pk(&write.key);
        let mut items = Vec::new();
        let mut order_index = None;
        if let Some(order) = &write.order {
            if order.version != write.expected_version + 1 {
                return Err(StoreError::Rejected("order version must be expected_version + 1".into()));
            }
            let item = encode(&OrderItem { pk: pk.clone(), sk: "#".into(), order: order.clone() })?;
            let put = Put::builder().table_name(&self.orders_table).set_item(Some(item));
            let put = if write.expected_version == 0 {
                put.condition_expression("attribute_not_exists(pk)")
            } else {
                put.condition_expression("version = :expected")
                    .expression_attribute_values(":expected", n(write.expected_version))
            };
            order_index = Some(items.len());
            items.push(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build());
        }
        let history_index = items.len();
        let history = encode(&HistoryItem {
            pk: pk.clone(),
            sk: history_sort_key(write.history.event_time, &write.history.message_id),
            expires_at: (write.history.applied_at + self.history_ttl).timestamp(),
            entry: write.history.clone(),
        })?;
        let put = Put::builder()
            .table_name(&self.orders_table)
            .set_item(Some(history))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().put(put).build());
        for change in &write.due {
            let item = match change {
                DueChange::Set(marker) => {
                    let item = encode(&DueItem {
                        pk: pk.clone(),
                        sk: format!("D#{}", marker.kind.as_str()),
                        gsi1pk: format!("DUE#{}#{}", marker.kind.as_str(), marker.shard),
                        gsi1sk: due_sort_key(marker.due_at),
                        marker: marker.clone(),
                    })?;
                    let put = Put::builder().table_name(&self.orders_table).set_item(Some(item));
                    TransactWriteItem::builder().put(put.build().map_err(build_error)?).build()
                }
                DueChange::Clear(kind) => {
                    let delete = Delete::builder()
                        .table_name(&self.orders_table)
                        .key(PK, s(pk.clone()))
                        .key(SK, s(format!("D#{}", kind.as_str())));
                    TransactWriteItem::builder().delete(delete.build().map_err(build_error)?).build()
                }
            };
            items.push(item);
        }
        for update in counter_updates(&self.stats_table, &write.counters)? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        // The outbox: the change's events, in the same transaction (idempotent puts).
        for event in &write.outbox {
            let item = outbox_item(&write.key, write.shard, event, write.history.applied_at)?;
            let put = Put::builder().table_name(&self.orders_table).set_item(Some(item));
            items.push(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build());
        }
        match transact(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Cancelled(reasons)) => {
                if reason_is(&reasons, Some(history_index), "ConditionalCheckFailed") {
                    Err(StoreError::Duplicate)
                } else if reason_is(&reasons, order_index, "ConditionalCheckFailed")
                    || reasons.iter().any(|r| r.code() == Some("TransactionConflict"))
                {
                    Err(StoreError::Conflict)
                } else {
                    let codes: Vec<&str> =
                        reasons.iter().filter_map(CancellationReason::code).filter(|c| *c != "None").collect();
                    Err(StoreError::Unavailable(format!("transaction cancelled: {}", codes.join(","))))
                }
            }
            Err(TransactFailure::Other(err)) => Err(err),
        }
    }

    async fn history_entry(
        &self,
        key: &OrderKey,
        event_time: DateTime<Utc>,
        message_id: &MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key(PK, s(order_pk(key)))
            .key(SK, s(history_sort_key(event_time, message_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        out.item.map(|item| decode::<HistoryItem>(item).map(|h| h.entry)).transpose()
    }

    async fn clear_due(
        &self,
        key: &OrderKey,
        kind: DueKind,
        due_at: DateTime<Utc>,
        counters: &[CounterAdd],
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.orders_table)
            .key(PK, s(order_pk(key)))
            .key(SK, s(format!("D#{}", kind.as_str())))
            .condition_expression("#due = :due")
            .expression_attribute_names("#due", GSI1_SK)
            .expression_attribute_values(":due", s(due_sort_key(due_at)))
            .build()
            .map_err(build_error)?;
        if counters.is_empty() {
            let result = self
                .client
                .delete_item()
                .table_name(delete.table_name())
                .set_key(Some(delete.key().clone()))
                .set_condition_expression(delete.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(delete.expression_attribute_names().cloned())
                .set_expression_attribute_values(delete.expression_attribute_values().cloned())
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(err) if is_condition_failed(&err) => Ok(false),
                Err(err) => Err(sdk_error(&err)),
            };
        }
        // The marker's removal and its counters in one transaction.
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        for update in counter_updates(&self.stats_table, counters)? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match transact(&self.client, items).await {
            Ok(()) => Ok(true),
            Err(TransactFailure::Cancelled(reasons)) if reason_is(&reasons, Some(0), "ConditionalCheckFailed") => {
                Ok(false)
            }
            Err(TransactFailure::Cancelled(_)) => Err(StoreError::Conflict),
            Err(TransactFailure::Other(err)) => Err(err),
        }
    }

    async fn set_due(&self, marker: &DueMarker) -> Result<(), StoreError> {
        let item = encode(&DueItem {
            pk: order_pk(&marker.key),
            sk: format!("D#{}", marker.kind.as_str()),
            gsi1pk: format!("DUE#{}#{}", marker.kind.as_str(), marker.shard),
            gsi1sk: due_sort_key(marker.due_at),
            marker: marker.clone(),
        })?;
        self.client
            .put_item()
            .table_name(&self.orders_table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e))
    }

    async fn history(
        &self,
        key: &OrderKey,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.orders_table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :h)")
            .expression_attribute_values(":pk", s(order_pk(key)))
            .expression_attribute_values(":h", s("H#"))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(cursor_in(cursor)?)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        page_of(out.items, out.last_evaluated_key.as_ref(), |h: HistoryItem| h.entry)
    }

    async fn keep(
        &self,
        key: &OrderKey,
        shard: u16,
        events: &[DomainEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let puts = events.iter().map(|event| async move {
            let result = self
                .client
                .put_item()
                .table_name(&self.orders_table)
                .set_item(Some(outbox_item(key, shard, event, at)?))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                // Kept before (or published and gone: then kept again, published again, same id).
                Err(err) if is_condition_failed(&err) => Ok(()),
                Err(err) => Err(sdk_error(&err)),
            }
        });
        futures::future::try_join_all(puts).await.map(|_| ())
    }

    async fn published(&self, entries: &[(OrderKey, String)]) -> Result<(), StoreError> {
        // BatchWriteItem takes 25 deletes a request; a delete of a missing item is a no-op.
        for chunk in entries.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|(key, id)| {
                    let delete = DeleteRequest::builder()
                        .key(PK, s(order_pk(key)))
                        .key(SK, s(outbox_sort_key(id)))
                        .build()
                        .map_err(build_error)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for attempt in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.orders_table, requests)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&e))?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.orders_table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 4 {
                    return Err(StoreError::Unavailable(format!("{} outbox deletes unprocessed", requests.len())));
                }
                domain::app::failure::backoff(attempt).await;
            }
        }
        Ok(())
    }

    async fn unpublished(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Unpublished>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.orders_table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk AND #sk <= :until")
            .expression_attribute_names("#pk", GSI1_PK)
            .expression_attribute_names("#sk", GSI1_SK)
            .expression_attribute_values(":pk", s(format!("OUTBOX#{shard}")))
            // `{written_at}#ev-…` sorts after `{written_at}`: `~` sorts after every id character.
            .expression_attribute_values(":until", s(format!("{}#~", due_sort_key(until))))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(cursor_in(cursor)?)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let o: OutboxItem = decode(item)?;
                let detail = serde_json::from_str(&o.detail).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let event =
                    DomainEvent::from_parts(&o.detail_type, detail).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let key = event
                    .order()
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt("outbox event without an order".into()))?;
                Ok(Unpublished { key, written_at: o.written_at, event })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next: cursor_out(out.last_evaluated_key.as_ref()) })
    }

    async fn due(
        &self,
        kind: DueKind,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<DueMarker>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.orders_table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk AND #sk <= :until")
            .expression_attribute_names("#pk", GSI1_PK)
            .expression_attribute_names("#sk", GSI1_SK)
            .expression_attribute_values(":pk", s(format!("DUE#{}#{shard}", kind.as_str())))
            .expression_attribute_values(":until", s(due_sort_key(until)))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(cursor_in(cursor)?)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        page_of(out.items, out.last_evaluated_key.as_ref(), |d: DueItem| d.marker)
    }
}
