//! The sync table: order-sync's own records ([`CheckpointStore`], [`TokenLedger`],
//! [`SubscriptionStore`], [`SummaryMarks`]).
//!
//! | item | pk | sk | written by |
//! |---|---|---|---|
//! | checkpoint | `P#{source}` | `C#{shop}#{feed}` | order-sync (conditional on `version`) |
//! | token ledger entry | `P#{source}` | `T#{shop}` | order-sync, refund-dual-check (lease, then commit under it) |
//! | Kuaidi100 subscription | `W#{carrier}#{number}` | `sub` | order-sync (conditional claim) |
//! | callback-outage summary mark | `M#{channel}` | `{yyyy-mm-dd}` | order-sync (conditional on `version`) |
//!
//! A platform's shops share one partition, so one query reads every checkpoint and ledger entry
//! of a platform (a run's roster read). Times used in conditions are stored as epoch
//! milliseconds (numbers compare exactly); the readable ISO time sits beside them. No token is
//! stored here: tokens live in their own SecureString parameters.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use domain::model::sync::{Checkpoint, Claim, Feed, Lease, Subscription, TokenRecord};
use domain::ports::StoreError;
use domain::ports::sync::{CheckpointStore, Roster, SubscriptionStore, SummaryMarks, TokenLedger};
use domain::{ShopId, Source};

use super::{Item, is_condition_failed, iso, n, s, sdk_error, ttl};
use crate::schema::{PK, SK, TTL};

/// order-sync's records in the sync table.
#[derive(Debug, Clone)]
pub struct DynamoSync {
    client: Client,
    table: String,
}

impl DynamoSync {
    /// The records in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn partition(source: Source) -> String {
    format!("P#{source}")
}

fn ms(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp_millis())
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn get_time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    get_n(item, name).and_then(DateTime::from_timestamp_millis)
}

fn get_u64(item: &Item, name: &str) -> u64 {
    get_n(item, name).and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("sync item without {what}"))
}

fn lease_of(item: &Item) -> Option<Lease> {
    Some(Lease { owner: get_s(item, "lease_owner")?, until: get_time(item, "lease_until_ms")? })
}

fn put_time(item: &mut Item, name: &str, at: Option<DateTime<Utc>>) {
    if let Some(at) = at {
        item.insert(format!("{name}_ms"), ms(at));
        item.insert(name.to_owned(), s(iso(at)));
    }
}

fn checkpoint_item(c: &Checkpoint) -> Item {
    let mut item: Item = HashMap::new();
    item.insert(PK.into(), s(partition(c.source)));
    item.insert(SK.into(), s(format!("C#{}#{}", c.shop, c.feed)));
    item.insert("source".into(), s(c.source.as_str()));
    item.insert("shop".into(), s(c.shop.as_str()));
    item.insert("feed".into(), s(c.feed.as_str()));
    item.insert("version".into(), n(c.version));
    item.insert("failures".into(), n(c.failures));
    put_time(&mut item, "through", c.through);
    put_time(&mut item, "backoff_until", c.backoff_until);
    if let Some(lease) = &c.lease {
        item.insert("lease_owner".into(), s(lease.owner.clone()));
        put_time(&mut item, "lease_until", Some(lease.until));
    }
    if let Some(error) = &c.last_error {
        item.insert("last_error".into(), s(error.clone()));
    }
    item
}

fn checkpoint_from(item: &Item) -> Result<Checkpoint, StoreError> {
    let source: Source = get_s(item, "source").and_then(|v| v.parse().ok()).ok_or_else(|| corrupt("source"))?;
    let shop = get_s(item, "shop").and_then(|v| ShopId::parse(&v).ok()).ok_or_else(|| corrupt("shop"))?;
    let feed: Feed = get_s(item, "feed").and_then(|v| v.parse().ok()).ok_or_else(|| corrupt("feed"))?;
    Ok(Checkpoint {
        source,
        shop,
        feed,
        through: get_time(item, "through_ms"),
        version: get_u64(item, "version"),
        lease: lease_of(item),
        failures: u32::try_from(get_u64(item, "failures")).unwrap_or(u32::MAX),
        backoff_until: get_time(item, "backoff_until_ms"),
        last_error: get_s(item, "last_error"),
    })
}

fn token_item(r: &TokenRecord) -> Item {
    let mut item: Item = HashMap::new();
    item.insert(PK.into(), s(partition(r.source)));
    item.insert(SK.into(), s(format!("T#{}", r.shop)));
    item.insert("source".into(), s(r.source.as_str()));
    item.insert("shop".into(), s(r.shop.as_str()));
    item.insert("version".into(), n(r.version));
    put_time(&mut item, "access_expires_at", r.access_expires_at);
    put_time(&mut item, "refresh_expires_at", r.refresh_expires_at);
    if let Some(lease) = &r.lease {
        item.insert("lease_owner".into(), s(lease.owner.clone()));
        put_time(&mut item, "lease_until", Some(lease.until));
    }
    if let Some(error) = &r.last_error {
        item.insert("last_error".into(), s(error.clone()));
    }
    if let Some(day) = r.warned_on {
        item.insert("warned_on".into(), s(day.to_string()));
    }
    item
}

fn token_from(item: &Item) -> Result<TokenRecord, StoreError> {
    let source: Source = get_s(item, "source").and_then(|v| v.parse().ok()).ok_or_else(|| corrupt("source"))?;
    let shop = get_s(item, "shop").and_then(|v| ShopId::parse(&v).ok()).ok_or_else(|| corrupt("shop"))?;
    Ok(TokenRecord {
        source,
        shop,
        version: get_u64(item, "version"),
        access_expires_at: get_time(item, "access_expires_at_ms"),
        refresh_expires_at: get_time(item, "refresh_expires_at_ms"),
        lease: lease_of(item),
        last_error: get_s(item, "last_error"),
        warned_on: get_s(item, "warned_on").and_then(|d| d.parse().ok()),
    })
}

#[async_trait]
impl CheckpointStore for DynamoSync {
    async fn roster(&self, source: Source) -> Result<Roster, StoreError> {
        let mut roster = Roster::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(partition(source)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&e))?;
            for item in out.items() {
                let sk = get_s(item, SK).unwrap_or_default();
                if sk.starts_with("C#") {
                    roster.checkpoints.push(checkpoint_from(item)?);
                } else if sk.starts_with("T#") {
                    roster.tokens.push(token_from(item)?);
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(roster),
            }
        }
    }

    async fn checkpoint(&self, source: Source, shop: &ShopId, feed: Feed) -> Result<Checkpoint, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(partition(source)))
            .key(SK, s(format!("C#{shop}#{feed}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        match out.item {
            Some(item) => checkpoint_from(&item),
            None => Ok(Checkpoint::new(source, shop.clone(), feed)),
        }
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint, expected_version: u64) -> Result<(), StoreError> {
        let mut request = self.client.put_item().table_name(&self.table).set_item(Some(checkpoint_item(checkpoint)));
        request = if expected_version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request.condition_expression("version = :v").expression_attribute_values(":v", n(expected_version))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(&err)),
        }
    }
}

#[async_trait]
impl TokenLedger for DynamoSync {
    async fn all(&self, source: Source) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(self.roster(source).await?.tokens)
    }

    async fn token(&self, source: Source, shop: &ShopId) -> Result<Option<TokenRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(partition(source)))
            .key(SK, s(format!("T#{shop}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        out.item.as_ref().map(token_from).transpose()
    }

    async fn register(&self, record: &TokenRecord) -> Result<bool, StoreError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(token_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn lease(
        &self,
        source: Source,
        shop: &ShopId,
        expected_version: u64,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(partition(source)))
            .key(SK, s(format!("T#{shop}")))
            .update_expression("SET lease_owner = :o, lease_until_ms = :u, lease_until = :ui")
            // Our own lease too: the SDK's retry of a write whose answer was lost.
            .condition_expression(
                "version = :v AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now OR lease_owner = :o)",
            )
            .expression_attribute_values(":o", s(lease.owner.clone()))
            .expression_attribute_values(":u", ms(lease.until))
            .expression_attribute_values(":ui", s(iso(lease.until)))
            .expression_attribute_values(":v", n(expected_version))
            .expression_attribute_values(":now", ms(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn commit(&self, record: &TokenRecord, owner: &str) -> Result<(), StoreError> {
        let record = TokenRecord { lease: None, ..record.clone() };
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(token_item(&record)))
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn release(&self, source: Source, shop: &ShopId, owner: &str, error: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(partition(source)))
            .key(SK, s(format!("T#{shop}")))
            .update_expression("SET last_error = :e REMOVE lease_owner, lease_until_ms, lease_until")
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":e", s(error.chars().take(300).collect::<String>()))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn warned(&self, source: Source, shop: &ShopId, day: NaiveDate) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(partition(source)))
            .key(SK, s(format!("T#{shop}")))
            .update_expression("SET warned_on = :d")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(warned_on) OR warned_on <> :d)")
            .expression_attribute_values(":d", s(day.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(sdk_error(&err)),
        }
    }
}

fn waybill_key(carrier: &str, number: &str) -> String {
    format!("W#{carrier}#{number}")
}

/// Subscription records expire half a year after their last write (a waybill is long done).
const SUBSCRIPTION_KEEP_DAYS: i64 = 180;

#[async_trait]
impl SubscriptionStore for DynamoSync {
    async fn claim(
        &self,
        carrier: &str,
        number: &str,
        stopped_at: Option<DateTime<Utc>>,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let not_done = match stopped_at {
            None => "attribute_not_exists(subscribed_at_ms)",
            Some(_) => "(attribute_not_exists(subscribed_at_ms) OR subscribed_at_ms < :stopped)",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(waybill_key(carrier, number)))
            .key(SK, s("sub"))
            .update_expression(
                "SET carrier = :c, #number = :num, lease_owner = :o, lease_until_ms = :u, #ttl = :ttl ADD attempts :one",
            )
            .condition_expression(format!(
                "{not_done} AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now OR lease_owner = :o)"
            ))
            .expression_attribute_names("#number", "number")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":c", s(carrier))
            .expression_attribute_values(":num", s(number))
            .expression_attribute_values(":o", s(lease.owner.clone()))
            .expression_attribute_values(":u", ms(lease.until))
            .expression_attribute_values(":now", ms(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", ttl(now, Duration::days(SUBSCRIPTION_KEEP_DAYS)))
            .return_values(ReturnValue::AllNew);
        if let Some(stopped) = stopped_at {
            request = request.expression_attribute_values(":stopped", ms(stopped));
        }
        match request.send().await {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Claim::Claimed(Subscription {
                    carrier: carrier.to_owned(),
                    number: number.to_owned(),
                    subscribed_at: get_time(&item, "subscribed_at_ms"),
                    attempts: u32::try_from(get_u64(&item, "attempts")).unwrap_or(u32::MAX),
                }))
            }
            Err(err) if is_condition_failed(&err) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key(PK, s(waybill_key(carrier, number)))
                    .key(SK, s("sub"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&e))?;
                let subscribed = out.item.as_ref().and_then(|item| get_time(item, "subscribed_at_ms"));
                Ok(match subscribed {
                    Some(at) if stopped_at.is_none_or(|stopped| at >= stopped) => Claim::Done,
                    _ => Claim::Busy,
                })
            }
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn subscribed(&self, carrier: &str, number: &str, owner: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(waybill_key(carrier, number)))
            .key(SK, s("sub"))
            .update_expression(
                "SET subscribed_at_ms = :at, subscribed_at = :iso REMOVE lease_owner, lease_until_ms, last_error",
            )
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":at", ms(at))
            .expression_attribute_values(":iso", s(iso(at)))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn failed(&self, carrier: &str, number: &str, owner: &str, error: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(waybill_key(carrier, number)))
            .key(SK, s("sub"))
            .update_expression("SET last_error = :e REMOVE lease_owner, lease_until_ms")
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":e", s(error.chars().take(300).collect::<String>()))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(sdk_error(&err)),
        }
    }
}

#[async_trait]
impl SummaryMarks for DynamoSync {
    async fn mark(&self, channel: Source, day: NaiveDate) -> Result<((i64, i64), u64), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(format!("M#{channel}")))
            .key(SK, s(day.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        Ok(out.item.map_or(((0, 0), 0), |item| {
            ((get_n(&item, "missing").unwrap_or(0), get_n(&item, "refunds").unwrap_or(0)), get_u64(&item, "version"))
        }))
    }

    async fn set_mark(
        &self,
        channel: Source,
        day: NaiveDate,
        reported: (i64, i64),
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let mut item: Item = HashMap::new();
        item.insert(PK.into(), s(format!("M#{channel}")));
        item.insert(SK.into(), s(day.to_string()));
        item.insert("missing".into(), n(reported.0));
        item.insert("refunds".into(), n(reported.1));
        item.insert("version".into(), n(expected_version + 1));
        item.insert(TTL.into(), ttl(domain::model::time::day_start(day), Duration::days(40)));
        let mut request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        request = if expected_version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request.condition_expression("version = :v").expression_attribute_values(":v", n(expected_version))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(&err)),
        }
    }
}
