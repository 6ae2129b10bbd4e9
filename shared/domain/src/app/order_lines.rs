//! Order lines the message did not carry.
//!
//! A Douyin payment push (tag 101, 110) names the order's sub-order ids (`s_ids`, 子订单ID列表)
//! and nothing else about its lines: no SKU, no quantity. Stock is reserved per line with the SKU
//! an ERP acts on and the quantity, so those come from the order detail API
//! (`/order/orderDetail` `sku_order_list`), one call per paid order, before anything is reserved.
//! When the call fails the order is held: flagged [`LINES_PENDING`], nothing reserved (never
//! against a sub-order id as if it were a SKU), and a [`DueKind::Lines`] marker asks again; the
//! retry ([`LinesRetry::sweep`]) reserves and publishes `StockReserved` once the lines arrive.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::app::apply::{ApplyChange, Failure};
use crate::app::tokens::{TokenError, TokenKeeper};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, body_hash_id};
use crate::model::lifecycle::Lifecycle;
use crate::model::order::{Order, Provenance, RefundScope, StatusChange};
use crate::model::record::{DueKind, DueMarker};
use crate::model::source_event::OrderFacts;
use crate::model::status::{RawStatus, StatusMapping};
use crate::model::stock::{OrderLine, Reservation};
use crate::ports::platform::{OrderLines, PlatformQuery, QueryError};

/// The flag of an order whose lines are still to be fetched (nothing reserved yet).
pub const LINES_PENDING: &str = "lines_pending";

/// The lines to reserve for the line ids a message named, out of the lines the platform
/// answered: `None` unless every named id is there (a partial answer reserves nothing).
pub fn lines_for(ids: &[LineId], fetched: &[OrderLine]) -> Option<Vec<OrderLine>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let line = fetched.iter().find(|l| l.line == *id && l.qty > 0)?;
        if !out.contains(line) {
            out.push(line.clone());
        }
    }
    (!out.is_empty()).then_some(out)
}

/// [`OrderLines`] over the platforms' query clients and the shops' tokens, kept by the
/// [`TokenKeeper`]: a token that expires soon is refreshed first, and one the platform says has
/// expired (or was revoked for a new one) is refreshed under the keeper's lease and the call made
/// once more, so a held order is not held for as long as nobody else happens to refresh.
pub struct PlatformLines<'a> {
    /// One client per platform that has one.
    pub platforms: &'a [&'a dyn PlatformQuery],
    /// The shops' tokens (read, and refreshed through the token ledger's lease).
    pub tokens: &'a TokenKeeper<'a>,
}

fn token_failure(err: &TokenError) -> QueryError {
    QueryError::Platform { code: "shop_token".into(), message: err.to_string() }
}

#[async_trait::async_trait]
impl OrderLines for PlatformLines<'_> {
    async fn order_lines(&self, key: &OrderKey) -> Result<Vec<OrderLine>, QueryError> {
        let client =
            self.platforms.iter().copied().find(|p| p.source() == key.source).ok_or(QueryError::Unsupported)?;
        let credentials =
            self.tokens.fresh_credentials(key.source, &key.shop, None).await.map_err(|e| token_failure(&e))?;
        match client.order_lines(key, &credentials).await {
            Err(QueryError::TokenExpired) => {
                let fresh = match self.tokens.refresh(key.source, &key.shop).await {
                    Ok(fresh) => fresh,
                    Err(err) => {
                        tracing::warn!(source = %key.source, shop = %key.shop, error = %err, "token expired and not refreshed");
                        return Err(QueryError::TokenExpired);
                    }
                };
                client.order_lines(key, &fresh).await
            }
            other => other,
        }
    }
}

/// Fills `facts.lines` for a paid message that named only line ids. Returns whether the order
/// must be held (the lines could not be had).
pub async fn fetch_lines(lines: Option<&dyn OrderLines>, key: &OrderKey, facts: &mut OrderFacts) -> bool {
    if !facts.lines.is_empty() || facts.line_ids.is_empty() {
        return false;
    }
    let Some(port) = lines else { return true };
    match port.order_lines(key).await {
        Ok(fetched) => match lines_for(&facts.line_ids, &fetched) {
            Some(found) => {
                facts.lines = found;
                false
            }
            None => {
                tracing::warn!(source = %key.source, shop = %key.shop, order_id = %key.order_id, "order detail lacks a named line: held");
                true
            }
        },
        Err(err) => {
            tracing::warn!(source = %key.source, shop = %key.shop, order_id = %key.order_id, error = %err, "order lines not fetched: held");
            true
        }
    }
}

/// What a retry sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinesReport {
    /// Markers looked at.
    pub due: u32,
    /// Orders whose lines arrived and were reserved.
    pub reserved: u32,
    /// Orders still held (asked again later).
    pub still_pending: u32,
    /// Markers of orders that no longer wait for lines (removed).
    pub resolved: u32,
    /// Markers left for the next run (a read or write failed).
    pub errors: u32,
}

/// Asks again for the lines of held orders.
pub struct LinesRetry<'a> {
    /// The write path.
    pub write: ApplyChange<'a>,
    /// The platforms.
    pub lines: &'a dyn OrderLines,
    /// How long until a failed retry is tried again.
    pub retry_after: Duration,
}

impl LinesRetry<'_> {
    /// Every due `Lines` marker, shard by shard.
    pub async fn sweep(&self) -> (Vec<DomainEvent>, LinesReport) {
        let ports = self.write.ports;
        let now = ports.clock.now();
        let mut events = Vec::new();
        let mut report = LinesReport::default();
        for shard in 0..self.write.rules.shards.max(1) {
            let mut cursor: Option<String> = None;
            loop {
                let Ok(page) = ports.orders.due(DueKind::Lines, shard, now, cursor.as_deref(), 100).await else {
                    report.errors += 1;
                    break;
                };
                for marker in page.items {
                    report.due += 1;
                    match self.one(&marker).await {
                        Ok(Some(produced)) => {
                            report.reserved += 1;
                            events.extend(produced);
                        }
                        Ok(None) => report.resolved += 1,
                        Err(Failure::Retry(reason) | Failure::Permanent(reason)) => {
                            tracing::info!(order_id = %marker.key.order_id, reason, "order lines still pending");
                            report.still_pending += 1;
                            let later = DueMarker { due_at: now + self.retry_after, ..marker.clone() };
                            if ports.orders.set_due(&later).await.is_err() {
                                report.errors += 1;
                            }
                        }
                    }
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        (events, report)
    }

    /// One held order: `Some(events)` when its lines were reserved now, `None` when it no longer
    /// waits, an error when it still does.
    async fn one(&self, marker: &DueMarker) -> Result<Option<Vec<DomainEvent>>, Failure> {
        let ports = self.write.ports;
        let order = ports.orders.get(&marker.key).await?;
        let Some(order) = order.filter(|o| o.flags.contains(LINES_PENDING)) else {
            ports.orders.clear_due(&marker.key, DueKind::Lines, marker.due_at, &[]).await?;
            return Ok(None);
        };
        let ids: Vec<LineId> = order.pending_lines.clone();
        let fetched = self.lines.order_lines(&order.key).await.map_err(|e| Failure::Retry(e.to_string()))?;
        let found = lines_for(&ids, &fetched).ok_or_else(|| Failure::Retry("a named line is missing".into()))?;
        // Reserved and announced (kept in the outbox) before the hold is lifted: a function
        // killed in between leaves the marker and the flag, and the next sweep does it again
        // (reserving is idempotent per line; the event keeps its id).
        let mut events = Vec::new();
        // A cancelled order reserves nothing; nor do lines a refund already gave back.
        let refunded = order.refunded_lines();
        let to_reserve: Vec<OrderLine> = found
            .into_iter()
            .filter(|l| refunded.as_ref().is_none_or(|r| !r.is_empty() && !r.contains(&l.line)))
            .collect();
        if order.lifecycle != Some(Lifecycle::Cancelled) && !to_reserve.is_empty() {
            let paid_at = order.entered.get(&Lifecycle::Paid).copied().unwrap_or(order.updated_at);
            let reservations: Vec<Reservation> = to_reserve
                .iter()
                .map(|l| Reservation {
                    key: order.key.clone(),
                    line: l.line.clone(),
                    sku: l.sku.clone(),
                    qty: l.qty,
                    reserved_at: paid_at,
                    released_at: None,
                    released_by: None,
                })
                .collect();
            ports.inventory.reserve(&reservations).await?;
            events.push(DomainEvent::StockReserved { key: order.key.clone(), lines: to_reserve });
            let shard = order.key.shard(self.write.rules.shards);
            ports.orders.keep(&order.key, shard, &events, ports.clock.now()).await?;
        }
        let now = ports.clock.now();
        let id = format!("lines-{}", marker.due_at.timestamp_millis());
        let change = StatusChange {
            key: order.key.clone(),
            message_id: MessageId::parse(&id).unwrap_or_else(|_| body_hash_id(id.as_bytes())),
            event_time: now,
            received_at: now,
            raw: RawStatus::new("lines", "fetched"),
            mapping: StatusMapping::Informational("order lines fetched from the platform"),
            provenance: Provenance::Rule,
            refund_scope: RefundScope::default(),
        };
        let clear = |o: &mut Order| {
            o.flags.remove(LINES_PENDING);
            o.pending_lines.clear();
        };
        self.write.apply_change(&change, &OrderFacts::default(), &clear, &[]).await?;
        ports.orders.clear_due(&marker.key, DueKind::Lines, marker.due_at, &[]).await?;
        Ok(Some(events))
    }
}

/// The marker that asks for a held order's lines again.
pub fn retry_marker(key: &OrderKey, due_at: chrono::DateTime<chrono::Utc>, shards: u16) -> DueMarker {
    DueMarker {
        key: key.clone(),
        kind: DueKind::Lines,
        due_at,
        shard: key.shard(shards),
        note: Some(LINES_PENDING.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::app::apply_message::ApplyMessage;
    use crate::app::tokens::{TokenPorts, TokenRules, token_parameter};
    use crate::model::ids::{ShopId, Sku, Source};
    use crate::model::sync::ShopTokens;
    use crate::ports::platform::{Credentials, RefreshedToken, RefundAnswer};
    use crate::ports::pull::TokenRefresh;
    use crate::ports::secrets::{Secret, SecretCache, parameter_name};
    use crate::ports::{InventoryStore, OrderStore, Secrets};
    use crate::rules::timing::Rules;
    use crate::testing::clock::FixedClock;
    use crate::testing::fixtures;
    use crate::testing::memory::{MemoryInbox, MemorySecrets, MemoryStore, MemorySync};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default()
    }

    fn key(id: &str) -> OrderKey {
        OrderKey::parse(Source::Douyin, "shop-1001", id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Douyin's order detail: answers only with a token it still honours (`tok-1` was revoked
    /// for a newer one), as the soak's fake does after 06:00.
    #[derive(Default)]
    struct Douyin {
        calls: Mutex<BTreeMap<&'static str, u32>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl Douyin {
        fn count(&self, what: &'static str) -> u32 {
            let mut calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = calls.entry(what).or_default();
            *n += 1;
            *n
        }

        fn calls(&self, what: &str) -> u32 {
            self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(what).copied().unwrap_or(0)
        }
    }

    #[async_trait]
    impl PlatformQuery for Douyin {
        fn source(&self) -> Source {
            Source::Douyin
        }
        async fn refund_status(&self, _key: &OrderKey, _credentials: &Credentials) -> Result<RefundAnswer, QueryError> {
            Err(QueryError::NotFound)
        }
        async fn refresh_token(&self, shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
            TokenRefresh::refresh_token(self, shop, credentials).await
        }
        async fn order_lines(&self, key: &OrderKey, credentials: &Credentials) -> Result<Vec<OrderLine>, QueryError> {
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                self.count("timeout");
                return Err(QueryError::Timeout);
            }
            if credentials.access_token.expose() != "tok-2" {
                self.count("token_expired");
                return Err(QueryError::TokenExpired);
            }
            self.count("lines");
            let line = |id: &str, sku: &str, qty| OrderLine {
                line: LineId::parse(id).unwrap_or_else(|e| panic!("{e}")),
                sku: Sku::parse(sku).unwrap_or_else(|e| panic!("{e}")),
                qty,
            };
            Ok(vec![
                line(&format!("{}1", key.order_id), "TEA-LJ-250", 2),
                line(&format!("{}2", key.order_id), "CUP-GL-01", 1),
            ])
        }
    }

    #[async_trait]
    impl TokenRefresh for Douyin {
        fn source(&self) -> Source {
            Source::Douyin
        }
        async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
            assert_eq!(credentials.refresh_token.as_ref().map(Secret::expose), Some("refresh-1"));
            self.count("refreshed");
            Ok(RefreshedToken {
                access_token: Secret::new("tok-2"),
                expires_at: at() + chrono::Duration::days(7),
                refresh_token: Some(Secret::new("refresh-2")),
                refresh_expires_at: None,
            })
        }
    }

    struct World {
        store: MemoryStore,
        inbox: MemoryInbox,
        secrets: MemorySecrets,
        sync: MemorySync,
        clock: FixedClock,
        rules: Rules,
        douyin: Douyin,
    }

    impl World {
        /// A Douyin shop whose webhook secret still carries the open API's tokens (`tok-1`,
        /// valid for another day by its own expiry), as the soak installs them.
        async fn new() -> Self {
            let world = World {
                store: MemoryStore::default(),
                inbox: MemoryInbox::default(),
                secrets: MemorySecrets::default(),
                sync: MemorySync::default(),
                clock: FixedClock::new(at()),
                rules: Rules::default(),
                douyin: Douyin::default(),
            };
            let mut secret: serde_json::Value =
                serde_json::from_str(&fixtures::secret_json(Source::Douyin, "s3cret", None)).unwrap_or_default();
            secret["access_token"] = json!("tok-1");
            secret["access_token_expires_at"] = json!((at() + chrono::Duration::hours(24)).to_rfc3339());
            secret["refresh_token"] = json!("refresh-1");
            world.secrets.put(&world.webhook_parameter(), &secret.to_string()).await.unwrap_or_else(|e| panic!("{e}"));
            world
        }

        fn webhook_parameter(&self) -> String {
            parameter_name("test", Source::Douyin, &key("1").shop)
        }

        fn write(&self) -> ApplyChange<'_> {
            ApplyChange::new(self.store.write_ports(&self.inbox, &self.clock), &self.rules)
        }

        /// Runs `f` with status-normalize's lines port as main.rs wires it.
        async fn with_lines<R>(&self, f: impl AsyncFnOnce(&PlatformLines<'_>) -> R) -> R {
            let cache = SecretCache::new(&self.secrets, &self.clock, "test", chrono::Duration::minutes(2));
            let platforms: [&dyn PlatformQuery; 1] = [&self.douyin];
            let refreshers: [&dyn TokenRefresh; 1] = [&self.douyin];
            let ports = TokenPorts {
                ledger: &self.sync,
                params: &self.secrets,
                secrets: &cache,
                refreshers: &refreshers,
                clock: &self.clock,
            };
            let tokens = TokenKeeper::new(ports, "test", TokenRules::default(), "normalize-1");
            f(&PlatformLines { platforms: &platforms, tokens: &tokens }).await
        }

        async fn paid(&self, id: &str) -> Vec<DomainEvent> {
            let payload = fixtures::douyin_push(
                "101",
                &format!("m-{id}"),
                json!({"p_id": id, "pay_time": at().timestamp() - 60, "s_ids": [format!("{id}1"), format!("{id}2")]}),
            );
            let message = fixtures::DayCallback {
                source: Source::Douyin,
                shop: "shop-1001".into(),
                payload,
                query: vec![],
                message_id: format!("m-{id}"),
                sent_at: at(),
            }
            .inbound();
            self.with_lines(async |lines| ApplyMessage::new(self.write()).with_lines(lines).handle(&message).await)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }

        async fn stored_tokens(&self) -> Option<ShopTokens> {
            let raw =
                self.secrets.get(&token_parameter("test", Source::Douyin, &key("1").shop)).await.ok().flatten()?;
            serde_json::from_str(&raw).ok()
        }
    }

    #[tokio::test]
    async fn a_paid_order_whose_token_the_platform_revoked_gets_its_lines_after_a_refresh_not_held() {
        let world = World::new().await;
        let webhook_secret = world.secrets.get(&world.webhook_parameter()).await.ok().flatten();
        let events = world.paid("6921").await;
        let kinds: Vec<&str> = events.iter().map(DomainEvent::detail_type).collect();
        assert_eq!(kinds, ["OrderStatusChanged", "StockReserved"]);
        let order = world.store.get(&key("6921")).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert!(!order.flags.contains(LINES_PENDING), "not held: {:?}", order.flags);
        let reserved = world.store.reservations(&order.key).await.unwrap_or_default();
        let skus: Vec<(String, u32)> = reserved.iter().map(|r| (r.sku.to_string(), r.qty)).collect();
        assert_eq!(skus, [("TEA-LJ-250".to_owned(), 2), ("CUP-GL-01".to_owned(), 1)]);
        assert_eq!((world.douyin.calls("token_expired"), world.douyin.calls("refreshed")), (1, 1));
        // The new tokens live in their own parameter (a later call uses them without another
        // refresh); the webhook secret is never written.
        let stored = world.stored_tokens().await.unwrap_or_else(|| panic!("token parameter written"));
        assert_eq!(stored.access_token.expose(), "tok-2");
        assert_eq!(world.secrets.get(&world.webhook_parameter()).await.ok().flatten(), webhook_secret);
        world.paid("6922").await;
        assert_eq!(world.douyin.calls("refreshed"), 1, "refreshed once");
        assert_eq!(world.douyin.calls("lines"), 2);
    }

    #[tokio::test]
    async fn a_held_order_is_reserved_by_the_retry_once_its_token_is_refreshed() {
        let world = World::new().await;
        world.douyin.down.store(true, std::sync::atomic::Ordering::Relaxed);
        world.paid("6931").await;
        let order = world.store.get(&key("6931")).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert!(order.flags.contains(LINES_PENDING), "held while the platform is down");
        world.douyin.down.store(false, std::sync::atomic::Ordering::Relaxed);
        world.clock.set(at() + chrono::Duration::hours(1));
        let (events, report) = world
            .with_lines(async |lines| {
                LinesRetry { write: world.write(), lines, retry_after: chrono::Duration::minutes(10) }.sweep().await
            })
            .await;
        assert_eq!((report.reserved, report.still_pending), (1, 0), "{report:?}");
        assert!(events.iter().any(|e| e.detail_type() == "StockReserved"));
        let order = world.store.get(&key("6931")).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert!(!order.flags.contains(LINES_PENDING));
        assert_eq!(world.douyin.calls("refreshed"), 1);
    }
}
