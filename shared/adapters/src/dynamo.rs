//! DynamoDB implementations of the order store, inventory, stats and inbox ports.
//!
//! Item layout (see `docs/data-model.md`): generic keys `pk`/`sk`, one sparse index `gsi1`
//! (`gsi1pk`/`gsi1sk`), TTL attribute `expires_at`. Key names and index names come from
//! [`crate::schema`], which a test compares with `infra/template.yaml` and the live tables.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::result::SdkError;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use domain::inbox::{AcceptOutcome, Accepted, QuarantineOutcome, Quarantined, RawCallback};
use domain::inventory::{ReleaseOutcome, Reservation};
use domain::memory::{due_sort_key, history_sort_key};
use domain::ports::{Inbox, InventoryStore, OrderStore, SignalStore, Stats, StoreError};
use domain::signals::{AddressSign, SignalRecord};
use domain::stats::{CounterAdd, DayCounters, StoredReport, valid_counter_name};
use domain::store::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite, Page};
use domain::{MessageId, Order, OrderKey, ShopId, Sku, Source};

use crate::aws::error_code;
use crate::schema::{GSI1, GSI1_PK, GSI1_SK, PK, SK, TTL};

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn ttl(at: DateTime<Utc>, keep: Duration) -> AttributeValue {
    n((at + keep).timestamp())
}

/// The partition key of an order and everything filed under it.
pub fn order_pk(key: &OrderKey) -> String {
    format!("O#{}#{}#{}", key.source, key.shop, key.order_id)
}

fn sdk_error<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> StoreError {
    let (retryable, code) = error_code(err);
    if retryable { StoreError::Unavailable(code) } else { StoreError::Rejected(code) }
}

fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Rejected(format!("request build failed: {err}"))
}

fn encode<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value).map_err(|e| StoreError::Rejected(format!("encode: {e}")))
}

fn decode<'a, T: Deserialize<'a>>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// One page of a query: its items decoded as `I` and projected by `f`, and the next cursor.
fn page_of<I: serde::de::DeserializeOwned, T>(
    items: Option<Vec<Item>>,
    last: Option<&Item>,
    f: impl Fn(I) -> T,
) -> Result<Page<T>, StoreError> {
    let items =
        items.unwrap_or_default().into_iter().map(|item| decode::<I>(item).map(&f)).collect::<Result<_, _>>()?;
    Ok(Page { items, next: cursor_out(last) })
}

/// Opaque page cursors: the last evaluated key, as JSON of its string attributes.
fn cursor_out(key: Option<&Item>) -> Option<String> {
    let key = key?;
    let plain: BTreeMap<&str, &str> =
        key.iter().filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str()))).collect();
    serde_json::to_string(&plain).ok()
}

fn cursor_in(cursor: Option<&str>) -> Result<Option<Item>, StoreError> {
    let Some(cursor) = cursor else { return Ok(None) };
    let plain: BTreeMap<String, String> =
        serde_json::from_str(cursor).map_err(|_| StoreError::Rejected("malformed page cursor".into()))?;
    Ok(Some(plain.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

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

#[derive(Serialize, Deserialize)]
struct ReservationItem {
    pk: String,
    sk: String,
    key: OrderKey,
    sku: Sku,
    qty: u32,
    reserved_at: DateTime<Utc>,
    // Absent (not NULL) until released: the release condition is `attribute_not_exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    released_at: Option<DateTime<Utc>>,
}

/// Orders, history, due markers, reservations (orders table) and counters, reports (stats table).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    orders_table: String,
    stats_table: String,
    history_ttl: Duration,
}

impl DynamoStore {
    /// A store over the two tables; history items expire after 180 days.
    pub fn new(client: Client, orders_table: impl Into<String>, stats_table: impl Into<String>) -> Self {
        Self {
            client,
            orders_table: orders_table.into(),
            stats_table: stats_table.into(),
            history_ttl: Duration::days(180),
        }
    }

    /// The store over the tables a function's configuration names.
    pub fn for_resources(client: Client, resources: &crate::config::Resources) -> Self {
        Self::new(client, &resources.orders_table, &resources.stats_table)
    }

    /// The orders table's name.
    pub fn orders_table(&self) -> &str {
        &self.orders_table
    }

    fn counter_updates(&self, adds: &[CounterAdd]) -> Result<Vec<Update>, StoreError> {
        // One update per item: a transaction may not touch the same item twice.
        let mut by_item: BTreeMap<(Source, NaiveDate, u16), BTreeMap<&str, i64>> = BTreeMap::new();
        for add in adds {
            if !valid_counter_name(&add.name) {
                return Err(StoreError::Rejected(format!("invalid counter name `{}`", add.name)));
            }
            *by_item.entry((add.channel, add.day, add.shard)).or_default().entry(&add.name).or_default() += add.by;
        }
        by_item
            .into_iter()
            .map(|((channel, day, shard), counters)| {
                let mut update = Update::builder()
                    .table_name(&self.stats_table)
                    .key(PK, s(stats_pk(channel, day)))
                    .key(SK, s(format!("{:02}#{shard:03}", day.day())));
                let mut parts = Vec::new();
                for (i, (name, by)) in counters.into_iter().enumerate() {
                    parts.push(format!("#c{i} :c{i}"));
                    update = update
                        .expression_attribute_names(format!("#c{i}"), format!("c_{name}"))
                        .expression_attribute_values(format!(":c{i}"), n(by));
                }
                update.update_expression(format!("ADD {}", parts.join(", "))).build().map_err(build_error)
            })
            .collect()
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map(|_| ()).map_err(|err| {
            match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    TransactFailure::Cancelled(cancel.cancellation_reasons().to_vec())
                }
                _ => TransactFailure::Other(sdk_error(&err)),
            }
        })
    }
}

enum TransactFailure {
    Cancelled(Vec<CancellationReason>),
    Other(StoreError),
}

fn reason_is(reasons: &[CancellationReason], index: Option<usize>, code: &str) -> bool {
    index.and_then(|i| reasons.get(i)).and_then(CancellationReason::code) == Some(code)
}

fn stats_pk(channel: Source, day: NaiveDate) -> String {
    format!("D#{channel}#{:04}-{:02}", day.year(), day.month())
}

#[async_trait]
impl OrderStore for DynamoStore {
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
        for update in self.counter_updates(&write.counters)? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(items).await {
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

    async fn clear_due(&self, key: &OrderKey, kind: DueKind, due_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.orders_table)
            .key(PK, s(order_pk(key)))
            .key(SK, s(format!("D#{}", kind.as_str())))
            .condition_expression("#due = :due")
            .expression_attribute_names("#due", GSI1_SK)
            .expression_attribute_values(":due", s(due_sort_key(due_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(sdk_error(&err)),
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

#[derive(Serialize, Deserialize)]
struct SignalItem {
    pk: String,
    sk: String,
    expires_at: i64,
    #[serde(flatten)]
    signal: SignalRecord,
}

#[derive(Serialize, Deserialize)]
struct AddressSignItem {
    pk: String,
    sk: String,
    expires_at: i64,
    #[serde(flatten)]
    sign: AddressSign,
}

#[async_trait]
impl SignalStore for DynamoStore {
    async fn record_signal(
        &self,
        customer: &str,
        signal: &SignalRecord,
        counters: &[CounterAdd],
    ) -> Result<(), StoreError> {
        let item = encode(&SignalItem {
            pk: format!("C#{customer}"),
            sk: format!("E#{}#{}", iso(signal.at), signal.message_id),
            expires_at: (signal.at + Duration::days(7)).timestamp(),
            signal: signal.clone(),
        })?;
        let put = Put::builder()
            .table_name(&self.orders_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for update in self.counter_updates(counters)? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            // Recorded before: the counters went with that first write.
            Err(TransactFailure::Cancelled(reasons)) if reason_is(&reasons, Some(0), "ConditionalCheckFailed") => {
                Ok(())
            }
            Err(TransactFailure::Cancelled(_)) => Err(StoreError::Conflict),
            Err(TransactFailure::Other(err)) => Err(err),
        }
    }

    async fn signals(
        &self,
        customer: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SignalRecord>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.orders_table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(format!("C#{customer}")))
                .expression_attribute_values(":from", s(format!("E#{}", iso(from))))
                // `~` sorts after every character of a message id: the whole last millisecond.
                .expression_attribute_values(":to", s(format!("E#{}#~", iso(to))))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&e))?;
            for item in page.items.unwrap_or_default() {
                out.push(decode::<SignalItem>(item)?.signal);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }

    async fn record_sign(
        &self,
        addr_key: &str,
        month: &str,
        sign: &AddressSign,
        proxy: bool,
    ) -> Result<u32, StoreError> {
        let pk = format!("A#{addr_key}");
        let item = encode(&AddressSignItem {
            pk: pk.clone(),
            sk: format!("S#{}#{}", iso(sign.at), order_pk(&sign.order)),
            expires_at: (sign.at + Duration::days(400)).timestamp(),
            sign: sign.clone(),
        })?;
        let put = Put::builder()
            .table_name(&self.orders_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if proxy {
            let update = Update::builder()
                .table_name(&self.orders_table)
                .key(PK, s(pk.clone()))
                .key(SK, s(format!("M#{month}")))
                .update_expression("ADD proxy :one SET expires_at = if_not_exists(expires_at, :ttl)")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":ttl", ttl(sign.at, Duration::days(120)))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(items).await {
            Ok(()) => {}
            Err(TransactFailure::Cancelled(reasons)) if reason_is(&reasons, Some(0), "ConditionalCheckFailed") => {}
            Err(TransactFailure::Cancelled(_)) => return Err(StoreError::Conflict),
            Err(TransactFailure::Other(err)) => return Err(err),
        }
        self.proxy_receipts(addr_key, month).await
    }

    async fn proxy_receipts(&self, addr_key: &str, month: &str) -> Result<u32, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key(PK, s(format!("A#{addr_key}")))
            .key(SK, s(format!("M#{month}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        Ok(out
            .item
            .and_then(|item| item.get("proxy").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()))
            .unwrap_or(0))
    }

    async fn address_signs(&self, addr_key: &str, n: u32) -> Result<Vec<AddressSign>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.orders_table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :s)")
            .expression_attribute_values(":pk", s(format!("A#{addr_key}")))
            .expression_attribute_values(":s", s("S#"))
            .scan_index_forward(false)
            .limit(i32::try_from(n.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        out.items.unwrap_or_default().into_iter().map(|item| decode::<AddressSignItem>(item).map(|i| i.sign)).collect()
    }
}

fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl InventoryStore for DynamoStore {
    async fn reserve(&self, reservations: &[Reservation]) -> Result<(), StoreError> {
        let puts = reservations.iter().map(|r| async move {
            let item = encode(&ReservationItem {
                pk: order_pk(&r.key),
                sk: format!("R#{}", r.sku),
                key: r.key.clone(),
                sku: r.sku.clone(),
                qty: r.qty,
                reserved_at: r.reserved_at,
                released_at: r.released_at,
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

    async fn release(&self, key: &OrderKey, sku: &Sku, at: DateTime<Utc>) -> Result<ReleaseOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.orders_table)
            .key(PK, s(order_pk(key)))
            .key(SK, s(format!("R#{sku}")))
            .update_expression("SET released_at = :at")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(released_at)")
            .expression_attribute_values(":at", s(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ReleaseOutcome::Released),
            Err(err) if is_condition_failed(&err) => {
                let old = err.as_service_error().and_then(|e| match e {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item().cloned()
                    }
                    _ => None,
                });
                match old {
                    Some(_) => Ok(ReleaseOutcome::AlreadyReleased),
                    // Not every endpoint returns the old item: look once to tell the two apart.
                    None => {
                        let found = self
                            .client
                            .get_item()
                            .table_name(&self.orders_table)
                            .key(PK, s(order_pk(key)))
                            .key(SK, s(format!("R#{sku}")))
                            .consistent_read(true)
                            .send()
                            .await
                            .map_err(|e| sdk_error(&e))?;
                        Ok(if found.item.is_some() {
                            ReleaseOutcome::AlreadyReleased
                        } else {
                            ReleaseOutcome::NotReserved
                        })
                    }
                }
            }
            Err(err) => Err(sdk_error(&err)),
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
                    sku: r.sku,
                    qty: r.qty,
                    reserved_at: r.reserved_at,
                    released_at: r.released_at,
                });
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl Stats for DynamoStore {
    async fn add(&self, adds: &[CounterAdd]) -> Result<(), StoreError> {
        let mut updates = self.counter_updates(adds)?;
        match updates.len() {
            0 => Ok(()),
            1 => {
                let Some(update) = updates.pop() else { return Ok(()) };
                let mut req = self
                    .client
                    .update_item()
                    .table_name(update.table_name())
                    .set_key(Some(update.key().clone()))
                    .update_expression(update.update_expression())
                    .set_expression_attribute_names(update.expression_attribute_names().cloned());
                req = req.set_expression_attribute_values(update.expression_attribute_values().cloned());
                req.send().await.map(|_| ()).map_err(|e| sdk_error(&e))
            }
            // Several items: all or nothing, so a retry never double-counts half of them.
            _ => {
                let items = updates.into_iter().map(|u| TransactWriteItem::builder().update(u).build()).collect();
                match self.transact(items).await {
                    Ok(()) => Ok(()),
                    Err(TransactFailure::Cancelled(_)) => Err(StoreError::Conflict),
                    Err(TransactFailure::Other(err)) => Err(err),
                }
            }
        }
    }

    async fn month(&self, channel: Source, month_of: NaiveDate) -> Result<Vec<DayCounters>, StoreError> {
        let mut days: BTreeMap<NaiveDate, DayCounters> = BTreeMap::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.stats_table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(stats_pk(channel, month_of)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&e))?;
            for item in page.items.unwrap_or_default() {
                let sk = item.get(SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let day_of_month: u32 = sk.split('#').next().and_then(|d| d.parse().ok()).unwrap_or(0);
                let Some(day) = NaiveDate::from_ymd_opt(month_of.year(), month_of.month(), day_of_month) else {
                    return Err(StoreError::Corrupt(format!("counter item with sort key `{sk}`")));
                };
                let entry = days.entry(day).or_insert_with(|| DayCounters { day: Some(day), ..Default::default() });
                for (name, value) in item {
                    if let (Some(counter), Ok(number)) = (name.strip_prefix("c_"), value.as_n()) {
                        let number: i64 =
                            number.parse().map_err(|_| StoreError::Corrupt(format!("counter `{counter}`")))?;
                        *entry.counters.entry(counter.to_owned()).or_default() += number;
                    }
                }
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(days.into_values().collect()),
            }
        }
    }

    async fn put_report(&self, report: &StoredReport) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.stats_table)
            .item(PK, s(format!("R#{}", report.kind)))
            .item(SK, s(report.period.clone()))
            .item("json", s(report.json.clone()))
            .item("rendered", s(report.rendered.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e))
    }

    async fn report(&self, kind: &str, period: &str) -> Result<Option<StoredReport>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.stats_table)
            .key(PK, s(format!("R#{kind}")))
            .key(SK, s(period))
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        let Some(item) = out.item else { return Ok(None) };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        Ok(Some(StoredReport {
            kind: kind.to_owned(),
            period: period.to_owned(),
            json: text("json"),
            rendered: text("rendered"),
        }))
    }
}

/// Raw bodies above this size are stored deflated (a DynamoDB item is at most 400 KB).
const COMPRESS_ABOVE: usize = 32 * 1024;

/// The inbox table: dedupe records with the raw archive, quarantine, and quarantine quotas.
#[derive(Debug, Clone)]
pub struct DynamoInbox {
    client: Client,
    table: String,
    archive_ttl: Duration,
    quarantine_ttl: Duration,
}

impl DynamoInbox {
    /// An inbox over `table`: archived callbacks kept 30 days, quarantined ones 30 days.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), archive_ttl: Duration::days(30), quarantine_ttl: Duration::days(30) }
    }
}

fn callback_attributes(item: &mut Item, callback: &RawCallback) -> Result<(), StoreError> {
    item.insert("source".into(), s(callback.source.as_str()));
    item.insert("shop".into(), s(callback.shop.as_str()));
    item.insert("received_at".into(), s(iso(callback.received_at)));
    item.insert(
        "query".into(),
        AttributeValue::L(
            callback.query.iter().map(|(k, v)| AttributeValue::L(vec![s(k.clone()), s(v.clone())])).collect(),
        ),
    );
    item.insert(
        "headers".into(),
        AttributeValue::L(
            callback.headers.iter().map(|(k, v)| AttributeValue::L(vec![s(k.clone()), s(v.clone())])).collect(),
        ),
    );
    put_bytes(item, "body", &callback.body)
}

/// Stores bytes as a binary attribute, deflated (as `{name}_deflate`) above `COMPRESS_ABOVE`.
fn put_bytes(item: &mut Item, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() > COMPRESS_ABOVE {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).map_err(|e| StoreError::Rejected(e.to_string()))?;
        let packed = encoder.finish().map_err(|e| StoreError::Rejected(e.to_string()))?;
        item.insert(format!("{name}_deflate"), AttributeValue::B(Blob::new(packed)));
    } else {
        item.insert(name.to_owned(), AttributeValue::B(Blob::new(bytes.to_vec())));
    }
    Ok(())
}

/// Reads what `put_bytes` stored.
fn get_bytes(item: &Item, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(packed) = item.get(&format!("{name}_deflate")).and_then(|v| v.as_b().ok()) {
        let mut bytes = Vec::new();
        flate2::read::DeflateDecoder::new(packed.as_ref())
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::Corrupt(format!("archived {name}: {e}")))?;
        return Ok(Some(bytes));
    }
    Ok(item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec()))
}

fn pairs(item: &Item, name: &str) -> Vec<(String, String)> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|pair| {
                    let pair = pair.as_l().ok()?;
                    Some((pair.first()?.as_s().ok()?.clone(), pair.get(1)?.as_s().ok()?.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn callback_from(item: &Item) -> Result<RawCallback, StoreError> {
    let text = |name: &str| -> Result<String, StoreError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("inbox item without `{name}`")))
    };
    let source: Source = text("source")?.parse().map_err(|_| StoreError::Corrupt("inbox source".into()))?;
    let shop = ShopId::parse(&text("shop")?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let received_at = DateTime::parse_from_rfc3339(&text("received_at")?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .with_timezone(&Utc);
    let body = get_bytes(item, "body")?.unwrap_or_default();
    Ok(RawCallback { source, shop, received_at, query: pairs(item, "query"), headers: pairs(item, "headers"), body })
}

fn quarantine_keys(q: &Quarantined) -> (String, String, String) {
    let cb = &q.callback;
    (
        format!("Q#{}#{}#{}", cb.source, cb.shop, q.id),
        format!("Q#{}#{}", cb.source, cb.shop),
        format!("{}#{}", iso(cb.received_at), q.id),
    )
}

#[async_trait]
impl Inbox for DynamoInbox {
    async fn accept(&self, accepted: &Accepted) -> Result<AcceptOutcome, StoreError> {
        let cb = &accepted.callback;
        let mut item: Item = HashMap::new();
        item.insert(PK.into(), s(format!("M#{}#{}", cb.source, accepted.message_id)));
        item.insert("message_id".into(), s(accepted.message_id.as_str()));
        if let Some(slot) = &accepted.key_slot {
            item.insert("key_slot".into(), s(slot.clone()));
        }
        item.insert(TTL.into(), ttl(cb.received_at, self.archive_ttl));
        callback_attributes(&mut item, cb)?;
        if let Some(opened) = &accepted.opened {
            put_bytes(&mut item, "opened", opened)?;
        }
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(AcceptOutcome::New),
            Err(err) if is_condition_failed(&err) => Ok(AcceptOutcome::Duplicate),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn archived(&self, source: Source, message_id: &MessageId) -> Result<Option<Accepted>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(format!("M#{source}#{message_id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        let Some(item) = out.item else { return Ok(None) };
        Ok(Some(Accepted {
            message_id: message_id.clone(),
            callback: callback_from(&item)?,
            key_slot: item.get("key_slot").and_then(|v| v.as_s().ok()).cloned(),
            opened: get_bytes(&item, "opened")?,
        }))
    }

    async fn forget(&self, source: Source, message_id: &MessageId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(format!("M#{source}#{message_id}")))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e))
    }

    async fn quarantine(
        &self,
        quarantined: &Quarantined,
        quota_per_hour: u32,
    ) -> Result<QuarantineOutcome, StoreError> {
        let cb = &quarantined.callback;
        let (pk, gsi_pk, gsi_sk) = quarantine_keys(quarantined);
        let quota = Update::builder()
            .table_name(&self.table)
            .key(PK, s(format!("QQ#{}#{}#{}", cb.source, cb.shop, cb.received_at.format("%Y-%m-%dT%H"))))
            .update_expression("ADD used :one SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(used) OR used < :quota")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":quota", n(quota_per_hour))
            .expression_attribute_values(":ttl", ttl(cb.received_at, Duration::days(2)))
            .build()
            .map_err(build_error)?;
        let mut item: Item = HashMap::new();
        item.insert(PK.into(), s(pk));
        item.insert(GSI1_PK.into(), s(gsi_pk));
        item.insert(GSI1_SK.into(), s(gsi_sk));
        item.insert("id".into(), s(quarantined.id.clone()));
        item.insert("reason".into(), s(quarantined.reason.clone()));
        item.insert(TTL.into(), ttl(cb.received_at, self.quarantine_ttl));
        callback_attributes(&mut item, cb)?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(build_error)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(quota).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(QuarantineOutcome::Stored),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel))
                    if reason_is(cancel.cancellation_reasons(), Some(0), "ConditionalCheckFailed") =>
                {
                    Ok(QuarantineOutcome::OverQuota)
                }
                _ => Err(sdk_error(&err)),
            },
        }
    }

    async fn quarantined(
        &self,
        source: Source,
        shop: &ShopId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Quarantined>, StoreError> {
        // `BETWEEN from AND to` on `{received_at}#{id}` is exactly [from, to).
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", GSI1_PK)
            .expression_attribute_names("#sk", GSI1_SK)
            .expression_attribute_values(":pk", s(format!("Q#{source}#{shop}")))
            .expression_attribute_values(":from", s(iso(from)))
            .expression_attribute_values(":to", s(iso(to)))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(cursor_in(cursor)?)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        let items = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                Ok(Quarantined { id: text("id"), reason: text("reason"), callback: callback_from(item)? })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next: cursor_out(out.last_evaluated_key.as_ref()) })
    }

    async fn release_quarantined(&self, quarantined: &Quarantined) -> Result<(), StoreError> {
        let (pk, _, _) = quarantine_keys(quarantined);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e))
    }
}
