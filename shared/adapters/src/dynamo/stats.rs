//! The stats table: day counters and stored reports ([`Stats`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{Datelike, NaiveDate};

use domain::Source;
use domain::model::counters::{CounterAdd, DayCounters, StoredReport};
use domain::ports::{Stats, StoreError};

use super::keys::stats_pk;
use super::{Item, TransactFailure, build_error, counter_updates, n, reason_is, s, sdk_error, transact};
use crate::schema::{PK, SK, TTL};

/// How long a counted-once token is kept: longer than any retry or re-run of the same work.
const ONCE_KEPT_S: u64 = 8 * 24 * 3600;

/// Day counters and reports (stats table).
#[derive(Debug, Clone)]
pub struct DynamoStats {
    client: Client,
    stats_table: String,
}

impl DynamoStats {
    /// The store over the stats table.
    pub fn new(client: Client, stats_table: impl Into<String>) -> Self {
        Self { client, stats_table: stats_table.into() }
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
