//! The stats table: day counters, stored reports and once-a-day markers ([`Stats`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Datelike, NaiveDate, Utc};

use domain::Source;
use domain::model::counters::{CounterAdd, DayCounters, StoredReport};
use domain::ports::{DailyMarker, Stats, StoreError};

use super::keys::{daily_pk, stats_pk};
use super::{
    Item, TransactFailure, build_error, counter_updates, is_condition_failed, n, reason_is, s, sdk_error, transact, ttl,
};
use crate::schema::{PK, SK, TTL};

/// Shard queries of one channel-month in flight at once.
const SHARD_QUERIES_IN_FLIGHT: usize = 4;

/// How long a counted-once token is kept: longer than any retry or re-run of the same work.
const ONCE_KEPT_S: u64 = 8 * 24 * 3600;

/// Day counters and reports (stats table).
#[derive(Debug, Clone)]
pub struct DynamoStats {
    client: Client,
    stats_table: String,
    shards: u16,
}

impl DynamoStats {
    /// The store over the stats table, reading the default number of counter shards.
    pub fn new(client: Client, stats_table: impl Into<String>) -> Self {
        Self { client, stats_table: stats_table.into(), shards: domain::model::counters::DEFAULT_SHARDS }
    }

    /// Reads `shards` counter shards (`COUNTER_SHARDS`; raise it, never lower it: counters
    /// written to a shard above the new count would no longer be read).
    #[must_use]
    pub fn with_shards(mut self, shards: u16) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// One shard's days of a channel-month.
    async fn month_shard(&self, channel: Source, month_of: NaiveDate, shard: u16) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.stats_table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(stats_pk(channel, month_of, shard)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl Stats for DynamoStats {
    async fn add(&self, adds: &[CounterAdd]) -> Result<(), StoreError> {
        let mut updates = counter_updates(&self.stats_table, adds)?;
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
                match transact(&self.client, items).await {
                    Ok(()) => Ok(()),
                    Err(TransactFailure::Cancelled(_)) => Err(StoreError::Conflict),
                    Err(TransactFailure::Other(err)) => Err(err),
                }
            }
        }
    }

    /// One transaction: the token's item, written only if absent, and the counters. A token
    /// already written cancels it with `ConditionalCheckFailed` on the first item: counted
    /// before, nothing to do.
    async fn add_once(&self, token: &str, adds: &[CounterAdd]) -> Result<(), StoreError> {
        let updates = counter_updates(&self.stats_table, adds)?;
        if updates.is_empty() {
            return Ok(());
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let marker = Put::builder()
            .table_name(&self.stats_table)
            .item(PK, s(format!("ONCE#{token}")))
            .item(SK, s("ONCE"))
            .item(TTL, n(now + ONCE_KEPT_S))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_error)?;
        let items = std::iter::once(TransactWriteItem::builder().put(marker).build())
            .chain(updates.into_iter().map(|u| TransactWriteItem::builder().update(u).build()))
            .collect();
        match transact(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Cancelled(reasons)) if reason_is(&reasons, Some(0), "ConditionalCheckFailed") => {
                Ok(())
            }
            Err(TransactFailure::Cancelled(_)) => Err(StoreError::Conflict),
            Err(TransactFailure::Other(err)) => Err(err),
        }
    }

    async fn month(&self, channel: Source, month_of: NaiveDate) -> Result<Vec<DayCounters>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        // A few shards at a time: the report reads up to 16 channel-months at once, so all of a
        // month's shards at once would put hundreds of queries in flight (connections refused
        // by a loaded endpoint, a burst DynamoDB does not need).
        let shards: Vec<Vec<Item>> = futures::stream::iter(0..self.shards)
            .map(|shard| self.month_shard(channel, month_of, shard))
            .buffer_unordered(SHARD_QUERIES_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut days: BTreeMap<NaiveDate, DayCounters> = BTreeMap::new();
        for item in shards.into_iter().flatten() {
            let sk = item.get(SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let day_of_month: u32 = sk.parse().unwrap_or(0);
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
        Ok(days.into_values().collect())
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

    async fn claim_daily(
        &self,
        marker: &DailyMarker,
        claimant: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<bool, StoreError> {
        // One conditional write (an update, which creates the item: the functions may update
        // the stats table, not put to it): new, or ours already, or an unconfirmed claim past
        // its lease.
        let out = self
            .client
            .update_item()
            .table_name(&self.stats_table)
            .key(PK, s(daily_pk(marker.day)))
            .key(SK, s(marker.name.clone()))
            .update_expression("SET claimant = :me, claimed_at = :now, published = :no, expires_at = :expires")
            .condition_expression(
                "attribute_not_exists(pk) OR (published = :no AND (claimant = :me OR claimed_at < :stale))",
            )
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":me", s(claimant))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":expires", ttl(now, chrono::Duration::days(3)))
            .expression_attribute_values(":stale", n((now - lease).timestamp_millis()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn confirm_daily(&self, marker: &DailyMarker, claimant: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.stats_table)
            .key(PK, s(daily_pk(marker.day)))
            .key(SK, s(marker.name.clone()))
            .update_expression("SET published = :yes")
            .condition_expression("claimant = :me")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":me", s(claimant))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // Someone took the marker over (our publish was late): theirs stands.
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(sdk_error(&err)),
        }
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
