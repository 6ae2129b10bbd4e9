//! The inbox table: dedupe records with the raw archive, quarantine and its quotas ([`Inbox`]).

use std::collections::HashMap;
use std::io::{Read, Write};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};

use domain::model::callback::{Accepted, Claim, QuarantineOutcome, Quarantined, RawCallback};
use domain::ports::{Inbox, Page, StoreError};
use domain::{MessageId, ShopId, Source};

use super::keys::message_key;
use super::{Item, build_error, cursor_in, cursor_out, is_condition_failed, iso, n, reason_is, s, sdk_error, ttl};
use crate::schema::{GSI1, GSI1_PK, GSI1_SK, PK, TTL};

/// Raw bodies above this size are stored deflated (a DynamoDB item is at most 400 KB).
const COMPRESS_ABOVE: usize = 32 * 1024;

/// Actions in one DynamoDB transaction (its limit).
const TRANSACT_MAX_ITEMS: usize = 100;

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

impl DynamoInbox {
    /// The dedupe record of a callback, read strongly.
    async fn record(&self, accepted: &Accepted) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(message_pk(accepted)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        Ok(out.item)
    }
}

fn message_pk(accepted: &Accepted) -> String {
    message_key(accepted.callback.source, &accepted.callback.shop, &accepted.message_id)
}

#[async_trait]
impl Inbox for DynamoInbox {
    async fn claim(
        &self,
        accepted: &Accepted,
        attempt: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let cb = &accepted.callback;
        let mut item: Item = HashMap::new();
        item.insert(PK.into(), s(message_pk(accepted)));
        item.insert("message_id".into(), s(accepted.message_id.as_str()));
        if let Some(slot) = &accepted.key_slot {
            item.insert("key_slot".into(), s(slot.clone()));
        }
        item.insert("attempt".into(), s(attempt));
        item.insert("lease_until".into(), n(lease_until.timestamp_millis()));
        item.insert(TTL.into(), ttl(cb.received_at, self.archive_ttl));
        callback_attributes(&mut item, cb)?;
        if let Some(opened) = &accepted.opened {
            put_bytes(&mut item, "opened", opened)?;
        }
        // New, ours (a retried write whose answer was lost), or a lease that ran out. A done
        // record has no `lease_until`.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (attribute_exists(lease_until) AND (attempt = :attempt OR lease_until < :now))",
            )
            .expression_attribute_values(":attempt", s(attempt))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Claim::Claimed),
            Err(err) if is_condition_failed(&err) => err,
            Err(err) => return Err(sdk_error(&err)),
        };
        let old = err.as_service_error().and_then(|e| match e {
            PutItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
            _ => None,
        });
        let old = match old {
            Some(old) => old,
            // Not every endpoint returns the old item: look once (the duplicate path's second
            // request only there).
            None => match self.record(accepted).await? {
                Some(item) => item,
                // Gone between the two requests (TTL): try again next time.
                None => return Err(StoreError::Conflict),
            },
        };
        Ok(match old.get("lease_until").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()) {
            None => Claim::Done,
            Some(ms) => Claim::InFlight { until: DateTime::from_timestamp_millis(ms).unwrap_or(now) },
        })
    }

    async fn complete(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(message_pk(accepted)))
            .update_expression("REMOVE lease_until")
            .condition_expression("attempt = :attempt")
            .expression_attribute_values(":attempt", s(attempt))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another attempt took over after our lease ran out: its mark counts.
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    /// In transactions of up to 100 conditional updates (one request per hundred records, not
    /// one each); a transaction cancelled (a record another attempt took over, a conflict) is
    /// done one record at a time, as `complete` does it.
    async fn complete_many(&self, accepted: &[&Accepted], attempt: &str) -> Result<(), StoreError> {
        for chunk in accepted.chunks(TRANSACT_MAX_ITEMS) {
            if let [one] = chunk {
                self.complete(one, attempt).await?;
                continue;
            }
            let mut items = Vec::with_capacity(chunk.len());
            for one in chunk {
                let update = Update::builder()
                    .table_name(&self.table)
                    .key(PK, s(message_pk(one)))
                    .update_expression("REMOVE lease_until")
                    .condition_expression("attempt = :attempt")
                    .expression_attribute_values(":attempt", s(attempt))
                    .build()
                    .map_err(build_error)?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
            let sent = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
            if sent.is_err() {
                for one in chunk {
                    self.complete(one, attempt).await?;
                }
            }
        }
        Ok(())
    }

    async fn abandon(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(message_pk(accepted)))
            .condition_expression("attempt = :attempt AND attribute_exists(lease_until)")
            .expression_attribute_values(":attempt", s(attempt))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn archived(
        &self,
        source: Source,
        shop: &ShopId,
        message_id: &MessageId,
    ) -> Result<Option<Accepted>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(message_key(source, shop, message_id)))
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

    async fn quarantine(
        &self,
        quarantined: &Quarantined,
        quota_per_hour: u32,
    ) -> Result<QuarantineOutcome, StoreError> {
        let cb = &quarantined.callback;
        let (pk, gsi_pk, gsi_sk) = quarantine_keys(quarantined);
        let quota = Update::builder()
            .table_name(&self.table)
            .key(PK, s(format!("QQ#{}#{}#{}", cb.source, quarantined.bucket, cb.received_at.format("%Y-%m-%dT%H"))))
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
        item.insert("bucket".into(), s(quarantined.bucket.clone()));
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
                Ok(Quarantined {
                    id: text("id"),
                    reason: text("reason"),
                    bucket: text("bucket"),
                    callback: callback_from(item)?,
                })
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
