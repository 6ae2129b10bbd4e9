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
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, body_hash_id};
use crate::model::lifecycle::Lifecycle;
use crate::model::order::{Order, Provenance, RefundScope, StatusChange};
use crate::model::record::{DueKind, DueMarker};
use crate::model::source_event::OrderFacts;
use crate::model::status::{RawStatus, StatusMapping};
use crate::model::stock::{OrderLine, Reservation};
use crate::ports::platform::{Credentials, OrderLines, PlatformQuery, QueryError};
use crate::ports::secrets::SecretCache;
use crate::sources;

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

/// [`OrderLines`] over the platforms' query clients and the shops' stored credentials.
pub struct PlatformLines<'a> {
    /// One client per platform that has one.
    pub platforms: &'a [&'a dyn PlatformQuery],
    /// Shop secrets (app key, app secret, tokens), cached.
    pub secrets: &'a SecretCache<'a>,
}

#[async_trait::async_trait]
impl OrderLines for PlatformLines<'_> {
    async fn order_lines(&self, key: &OrderKey) -> Result<Vec<OrderLine>, QueryError> {
        let client =
            self.platforms.iter().copied().find(|p| p.source() == key.source).ok_or(QueryError::Unsupported)?;
        let secret = self
            .secrets
            .get(key.source, &key.shop)
            .await
            .map_err(|e| QueryError::Platform { code: "shop_secret".into(), message: e.to_string() })?;
        let access = sources::module(key.source).api_access(&secret);
        let credentials = access
            .and_then(|a| {
                Some(Credentials {
                    app_key: a.app_key.clone(),
                    app_secret: a.app_secret.clone(),
                    access_token: a.tokens.access_token.clone()?,
                    refresh_token: a.tokens.refresh_token.clone(),
                })
            })
            .ok_or_else(|| QueryError::Platform {
                code: "shop_secret".into(),
                message: "no app_key or access_token".into(),
            })?;
        client.order_lines(key, &credentials).await
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
