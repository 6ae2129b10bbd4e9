//! The orders table's app-signal items (`C#…`) and address items (`A#…`): [`SignalStore`].

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use domain::model::counters::CounterAdd;
use domain::model::signal::{AddressSign, SignalRecord};
use domain::ports::{SignalStore, StoreError};

use super::keys::order_pk;
use super::{
    Item, TransactFailure, build_error, counter_updates, decode, encode, iso, n, reason_is, s, sdk_error, transact, ttl,
};
use crate::schema::{PK, SK};

/// App signals per customer and sign history per address (orders table); their counters go to
/// the stats table in the same write.
#[derive(Debug, Clone)]
pub struct DynamoSignals {
    client: Client,
    orders_table: String,
    stats_table: String,
}

impl DynamoSignals {
    /// The store over the two tables.
    pub fn new(client: Client, orders_table: impl Into<String>, stats_table: impl Into<String>) -> Self {
        Self { client, orders_table: orders_table.into(), stats_table: stats_table.into() }
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
impl SignalStore for DynamoSignals {
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
        for update in counter_updates(&self.stats_table, counters)? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match transact(&self.client, items).await {
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
        match transact(&self.client, items).await {
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
