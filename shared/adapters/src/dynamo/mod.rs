//! DynamoDB implementations of the storage ports, one module per table and item kind:
//! [`orders`] (orders, history, due markers), [`inventory`] (reservations), [`signals`] (app
//! signals, address sign history), [`stats`] (day counters, reports), [`inbox`] (dedupe, raw
//! archive, quarantine), [`notify`] (notify's records and folds, customers' contacts), [`sync`]
//! (order-sync's checkpoints, token ledger, Kuaidi100 subscriptions). A function builds only the
//! stores of the tables it uses.
//!
//! Item layout (see `docs/data-model.md`): generic keys `pk`/`sk`, one sparse index `gsi1`
//! (`gsi1pk`/`gsi1sk`), TTL attribute `expires_at`. Key formats live in [`keys`]; key names and
//! index names come from [`crate::schema`], which a test compares with `infra/template.yaml`
//! and the live tables.

pub mod inbox;
pub mod inventory;
pub mod keys;
pub mod notify;
pub mod orders;
pub mod signals;
pub mod stats;
pub mod sync;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem, Update};
use aws_smithy_runtime_api::client::result::SdkError;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use domain::Source;
use domain::model::counters::{CounterAdd, valid_counter_name};
use domain::ports::{Page, StoreError};

pub use inbox::DynamoInbox;
pub use inventory::DynamoInventory;
pub use notify::{DynamoContacts, DynamoNotify};
pub use orders::DynamoOrders;
pub use signals::DynamoSignals;
pub use stats::DynamoStats;
pub use sync::DynamoSync;

use crate::aws::error_code;
use crate::schema::{PK, SK};
use keys::stats_pk;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(super) fn ttl(at: DateTime<Utc>, keep: Duration) -> AttributeValue {
    n((at + keep).timestamp())
}

pub(super) fn sdk_error<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> StoreError {
    let (retryable, code) = error_code(err);
    if retryable { StoreError::Unavailable(code) } else { StoreError::Rejected(code) }
}

pub(super) fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Rejected(format!("request build failed: {err}"))
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value).map_err(|e| StoreError::Rejected(format!("encode: {e}")))
}

pub(super) fn decode<'a, T: Deserialize<'a>>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// One page of a query: its items decoded as `I` and projected by `f`, and the next cursor.
pub(super) fn page_of<I: serde::de::DeserializeOwned, T>(
    items: Option<Vec<Item>>,
    last: Option<&Item>,
    f: impl Fn(I) -> T,
) -> Result<Page<T>, StoreError> {
    let items =
        items.unwrap_or_default().into_iter().map(|item| decode::<I>(item).map(&f)).collect::<Result<_, _>>()?;
    Ok(Page { items, next: cursor_out(last) })
}

/// Opaque page cursors: the last evaluated key, as JSON of its string attributes.
pub(super) fn cursor_out(key: Option<&Item>) -> Option<String> {
    let key = key?;
    let plain: BTreeMap<&str, &str> =
        key.iter().filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str()))).collect();
    serde_json::to_string(&plain).ok()
}

pub(super) fn cursor_in(cursor: Option<&str>) -> Result<Option<Item>, StoreError> {
    let Some(cursor) = cursor else { return Ok(None) };
    let plain: BTreeMap<String, String> =
        serde_json::from_str(cursor).map_err(|_| StoreError::Rejected("malformed page cursor".into()))?;
    Ok(Some(plain.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

pub(super) enum TransactFailure {
    Cancelled(Vec<CancellationReason>),
    Other(StoreError),
}

pub(super) fn reason_is(reasons: &[CancellationReason], index: Option<usize>, code: &str) -> bool {
    index.and_then(|i| reasons.get(i)).and_then(CancellationReason::code) == Some(code)
}

pub(super) fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}

pub(super) fn counter_updates(stats_table: &str, adds: &[CounterAdd]) -> Result<Vec<Update>, StoreError> {
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
                .table_name(stats_table)
                .key(PK, s(stats_pk(channel, day, shard)))
                .key(SK, s(format!("{:02}", day.day())));
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

pub(super) async fn transact(client: &Client, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
    client.transact_write_items().set_transact_items(Some(items)).send().await.map(|_| ()).map_err(|err| {
        match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                TransactFailure::Cancelled(cancel.cancellation_reasons().to_vec())
            }
            _ => TransactFailure::Other(sdk_error(&err)),
        }
    })
}

/// Every store over the tables a function's configuration names, for the functions on the
/// write path (status-normalize, refund-dual-check, signin-trust-check).
#[derive(Debug, Clone)]
pub struct DynamoTables {
    /// Orders, history, due markers.
    pub orders: DynamoOrders,
    /// Reservations.
    pub inventory: DynamoInventory,
    /// App signals and address sign history.
    pub signals: DynamoSignals,
    /// Day counters and reports.
    pub stats: DynamoStats,
    /// Archived callbacks (payloads too large for the queue).
    pub inbox: DynamoInbox,
}

impl DynamoTables {
    /// The stores over `resources`' tables.
    pub fn new(client: Client, resources: &crate::config::Resources) -> Self {
        let mut tables =
            Self::from_names(client, &resources.orders_table, &resources.stats_table, &resources.inbox_table);
        tables.stats = tables.stats.with_shards(resources.shards);
        tables
    }

    /// The stores over the named tables (the default number of counter shards).
    pub fn from_names(client: Client, orders_table: &str, stats_table: &str, inbox_table: &str) -> Self {
        Self {
            orders: DynamoOrders::new(client.clone(), orders_table, stats_table),
            inventory: DynamoInventory::new(client.clone(), orders_table, stats_table),
            signals: DynamoSignals::new(client.clone(), orders_table, stats_table),
            stats: DynamoStats::new(client.clone(), stats_table),
            inbox: DynamoInbox::new(client, inbox_table),
        }
    }

    /// The write path's ports over these tables and `clock`.
    pub fn write_ports<'a>(&'a self, clock: &'a dyn domain::ports::clock::Clock) -> domain::app::apply::WritePorts<'a> {
        domain::app::apply::WritePorts {
            orders: &self.orders,
            inventory: &self.inventory,
            stats: &self.stats,
            signals: &self.signals,
            inbox: &self.inbox,
            clock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One channel-day's counters at a peak land in one partition per shard, not one per
    /// channel-month: the partition key carries the shard.
    #[test]
    fn a_channel_day_spreads_over_one_partition_per_shard() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 11).unwrap_or_default();
        let adds: Vec<CounterAdd> = (0..8u16)
            .flat_map(|shard| {
                ["received", "applied"].map(|name| CounterAdd {
                    channel: Source::Douyin,
                    day,
                    shard,
                    name: name.into(),
                    by: 1,
                })
            })
            .collect();
        let updates = counter_updates("stats", &adds).unwrap_or_default();
        assert_eq!(updates.len(), 8, "one item per shard, its counters in one update");
        let partitions: std::collections::BTreeSet<String> = updates
            .iter()
            .filter_map(|u| u.key().get(crate::schema::PK).and_then(|v| v.as_s().ok()).cloned())
            .collect();
        assert_eq!(partitions.len(), 8, "{partitions:?}");
        assert!(partitions.contains("D#douyin#2026-11#7"), "{partitions:?}");
    }
}
