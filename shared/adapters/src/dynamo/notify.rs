//! notify's state in the inbox table, under the `N#` key prefix ([`NotifyStore`]), and the
//! customers' contacts (`N#contact#…`, [`Contacts`]).
//!
//! | item | pk | due index (`gsi1`) | notes |
//! |---|---|---|---|
//! | record | `N#{kind}#{id}` (`ev`, `out`, `esc`, `sms`, `rate`, `once`) | `N#due#{kind}` / `{due}#{id}` while due | `version` (conditional puts), `data` (JSON), TTL |
//! | fold | `N#fold#{id}` | `N#due#fold` / `{window end}#{id}` until closed | `count` (ADD), `lines` (first few), `fold` (JSON), `closed_at` |
//! | counters | `N#count#{yyyy-mm-dd}` | — | `c_{name}` (ADD), TTL 90 days |
//! | contact | `N#contact#{customer}` | — | `mobile`: personal data, read only right before a send |
//!
//! The due index is sparse: an item is in it only while it has `gsi1pk`, so "what is due" is one
//! query per kind, never a scan. The template lets notify touch only `N#` keys
//! (`dynamodb:LeadingKeys`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use domain::model::alert::MobileNumber;
use domain::model::counters::valid_counter_name;
use domain::ports::StoreError;
use domain::ports::notify::{Contacts, FoldOpen, FoldState, NotifyStore, Record, RecordKind, Tally};

use super::keys::{contact_pk, notify_count_pk, notify_due_pk, notify_due_sort_key, notify_fold_pk, notify_pk};
use super::{Item, is_condition_failed, iso, n, s, sdk_error};
use crate::schema::{GSI1, GSI1_PK, GSI1_SK, PK, TTL};

/// notify's records, folds and counters in the inbox table.
#[derive(Debug, Clone)]
pub struct DynamoNotify {
    client: Client,
    table: String,
}

impl DynamoNotify {
    /// notify's state in `table` (the inbox table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn kind_of(name: &str) -> Option<RecordKind> {
    [
        RecordKind::Event,
        RecordKind::Outbox,
        RecordKind::Escalation,
        RecordKind::Notice,
        RecordKind::Rate,
        RecordKind::Once,
    ]
    .into_iter()
    .find(|kind| kind.as_str() == name)
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a String> {
    item.get(name).and_then(|v| v.as_s().ok())
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn parse_time(value: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn record_from(item: &Item) -> Result<Record, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("notify record without `{what}`"));
    let kind = text(item, "kind").and_then(|k| kind_of(k)).ok_or_else(|| corrupt("kind"))?;
    let id = text(item, "id").ok_or_else(|| corrupt("id"))?.clone();
    let version = number(item, "version").and_then(|v| u64::try_from(v).ok()).ok_or_else(|| corrupt("version"))?;
    let due = text(item, "due").map(|d| parse_time(d)).transpose()?;
    let expires_at = number(item, TTL).and_then(|t| Utc.timestamp_opt(t, 0).single()).unwrap_or_default();
    let data = match text(item, "data") {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("notify record data: {e}")))?
        }
        None => serde_json::Value::Null,
    };
    Ok(Record { kind, id, version, due, expires_at, data })
}

fn fold_from(item: &Item) -> Result<FoldState, StoreError> {
    let open: FoldOpen = text(item, "fold")
        .ok_or_else(|| StoreError::Corrupt("fold without `fold`".into()))
        .and_then(|json| serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("fold: {e}"))))?;
    let count = number(item, "count").and_then(|c| u64::try_from(c).ok()).unwrap_or(0);
    let lines = item
        .get("lines")
        .and_then(|v| v.as_l().ok())
        .map(|lines| lines.iter().filter_map(|l| l.as_s().ok().cloned()).collect())
        .unwrap_or_default();
    Ok(FoldState { open, count, lines })
}

impl DynamoNotify {
    /// Items of one due-index partition with `gsi1sk <= until`, earliest first, up to `limit`.
    async fn due_items(&self, partition: &str, until: DateTime<Utc>, limit: usize) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        // `~` sorts after `#`: every item due exactly at `until` is included.
        let upper = format!("{}~", iso(until));
        loop {
            let room = limit.saturating_sub(items.len());
            if room == 0 {
                break;
            }
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk AND #sk <= :until")
                .expression_attribute_names("#pk", GSI1_PK)
                .expression_attribute_names("#sk", GSI1_SK)
                .expression_attribute_values(":pk", s(partition))
                .expression_attribute_values(":until", s(upper.clone()))
                .limit(i32::try_from(room.min(100)).unwrap_or(100))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(&e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }
}

#[async_trait]
impl NotifyStore for DynamoNotify {
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(notify_pk(kind.as_str(), id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        out.item.as_ref().map(record_from).transpose()
    }

    async fn put(&self, record: &Record) -> Result<bool, StoreError> {
        let data = serde_json::to_string(&record.data).map_err(|e| StoreError::Rejected(e.to_string()))?;
        let mut item: Item = Item::new();
        item.insert(PK.into(), s(notify_pk(record.kind.as_str(), &record.id)));
        item.insert("kind".into(), s(record.kind.as_str()));
        item.insert("id".into(), s(record.id.clone()));
        item.insert("version".into(), n(record.version + 1));
        item.insert("data".into(), s(data));
        item.insert(TTL.into(), n(record.expires_at.timestamp()));
        if let Some(due) = record.due {
            item.insert("due".into(), s(iso(due)));
            item.insert(GSI1_PK.into(), s(notify_due_pk(record.kind.as_str())));
            item.insert(GSI1_SK.into(), s(notify_due_sort_key(due, &record.id)));
        }
        let mut request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        request = if record.version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(record.version))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn due(&self, kind: RecordKind, until: DateTime<Utc>, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.due_items(&notify_due_pk(kind.as_str()), until, limit).await?.iter().map(record_from).collect()
    }

    async fn tally(&self, fold: &FoldOpen, line: &str, keep: usize) -> Result<Tally, StoreError> {
        let pk = notify_fold_pk(&fold.id);
        let open = serde_json::to_string(fold).map_err(|e| StoreError::Rejected(e.to_string()))?;
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk.clone()))
            .update_expression(
                "ADD #count :one SET #fold = if_not_exists(#fold, :fold), #gpk = if_not_exists(#gpk, :gpk), \
                 #gsk = if_not_exists(#gsk, :gsk), #ttl = if_not_exists(#ttl, :ttl)",
            )
            .condition_expression("attribute_not_exists(closed_at)")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#fold", "fold")
            .expression_attribute_names("#gpk", GSI1_PK)
            .expression_attribute_names("#gsk", GSI1_SK)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":fold", s(open))
            .expression_attribute_values(":gpk", s(notify_due_pk("fold")))
            .expression_attribute_values(":gsk", s(notify_due_sort_key(fold.end, &fold.id)))
            .expression_attribute_values(":ttl", n(fold.expires_at.timestamp()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let count = match counted {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(|a| number(a, "count"))
                .and_then(|c| u64::try_from(c).ok())
                .unwrap_or(1),
            Err(err) if is_condition_failed(&err) => return Ok(Tally::Closed),
            Err(err) => return Err(sdk_error(&err)),
        };
        // Only the first few findings of a fold cost a second request: the line list stays small
        // however large the burst.
        let opener_sent = count == 1 && !fold.held;
        let room = keep as u64 + u64::from(!fold.held);
        if !opener_sent && count <= room {
            let appended = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s(pk))
                .update_expression("SET #lines = list_append(if_not_exists(#lines, :empty), :line)")
                .condition_expression(
                    "attribute_exists(pk) AND attribute_not_exists(closed_at) AND \
                     (attribute_not_exists(#lines) OR size(#lines) < :keep)",
                )
                .expression_attribute_names("#lines", "lines")
                .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":line", AttributeValue::L(vec![s(line)]))
                .expression_attribute_values(":keep", n(keep))
                .send()
                .await;
            match appended {
                Ok(_) => {}
                // Full already, or closed meanwhile: the count is what matters.
                Err(err) if is_condition_failed(&err) => {}
                Err(err) => return Err(sdk_error(&err)),
            }
        }
        Ok(Tally::Counted(count))
    }

    async fn due_folds(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<String>, StoreError> {
        let items = self.due_items(&notify_due_pk("fold"), until, limit).await?;
        Ok(items.iter().filter_map(|item| text(item, PK)?.strip_prefix("N#fold#").map(str::to_owned)).collect())
    }

    async fn close_fold(&self, id: &str, at: DateTime<Utc>) -> Result<Option<FoldState>, StoreError> {
        let closed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(notify_fold_pk(id)))
            .update_expression("SET closed_at = :at REMOVE #gpk, #gsk")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(closed_at)")
            .expression_attribute_names("#gpk", GSI1_PK)
            .expression_attribute_names("#gsk", GSI1_SK)
            .expression_attribute_values(":at", s(iso(at)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match closed {
            Ok(out) => out.attributes.as_ref().map(fold_from).transpose(),
            Err(err) if is_condition_failed(&err) => Ok(None),
            Err(err) => Err(sdk_error(&err)),
        }
    }

    async fn add_count(&self, name: &str, day: NaiveDate, by: i64) -> Result<(), StoreError> {
        if !valid_counter_name(name) {
            return Err(StoreError::Rejected(format!("invalid counter name `{name}`")));
        }
        let expires = domain::model::time::day_start(day) + Duration::days(90);
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(notify_count_pk(day)))
            .update_expression("ADD #c :by SET #ttl = if_not_exists(#ttl, :ttl)")
            .expression_attribute_names("#c", format!("c_{name}"))
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":ttl", n(expires.timestamp()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e))
    }

    async fn counts(&self, day: NaiveDate) -> Result<BTreeMap<String, i64>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(notify_count_pk(day)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        Ok(out
            .item
            .unwrap_or_default()
            .iter()
            .filter_map(|(name, value)| {
                let counter = name.strip_prefix("c_")?;
                Some((counter.to_owned(), value.as_n().ok()?.parse().ok()?))
            })
            .collect())
    }
}

/// Customers' mobile numbers in the inbox table, kept by the seller's own systems (or an import).
#[derive(Debug, Clone)]
pub struct DynamoContacts {
    client: Client,
    table: String,
}

impl DynamoContacts {
    /// Contacts in `table` (the inbox table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Stores a customer's mobile number (the seller's import; tests and the demo).
    pub async fn put(&self, customer: &str, mobile: &MobileNumber) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(contact_pk(customer)))
            .item("mobile", s(mobile.expose()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&e))
    }
}

#[async_trait]
impl Contacts for DynamoContacts {
    async fn mobile(&self, customer: &str) -> Result<Option<MobileNumber>, StoreError> {
        if customer.is_empty() || customer.len() > 256 {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(contact_pk(customer)))
            .projection_expression("mobile")
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        Ok(out.item.as_ref().and_then(|item| text(item, "mobile")).map(MobileNumber::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_their_item_shape() {
        let mut item = Item::new();
        item.insert(PK.into(), s("N#esc#ev-1"));
        item.insert("kind".into(), s("esc"));
        item.insert("id".into(), s("ev-1"));
        item.insert("version".into(), n(3));
        item.insert("due".into(), s("2026-03-02T04:00:00.000Z"));
        item.insert(TTL.into(), n(1_775_000_000));
        item.insert("data".into(), s(r#"{"a":1}"#));
        let record = record_from(&item).unwrap();
        assert_eq!((record.kind, record.id.as_str(), record.version), (RecordKind::Escalation, "ev-1", 3));
        assert_eq!(record.due.map(iso).as_deref(), Some("2026-03-02T04:00:00.000Z"));
        assert_eq!(record.data["a"], 1);
        item.insert("kind".into(), s("nope"));
        assert!(matches!(record_from(&item), Err(StoreError::Corrupt(_))));
    }
}
