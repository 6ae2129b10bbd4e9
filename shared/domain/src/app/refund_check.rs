//! refund-dual-check's domain: never trust one channel.
//!
//! A refund callback can be lost (an expired token, a changed signing algorithm, a platform
//! review step that never pushes). The sweep finds, through the due index (no scan), every order
//! whose refund was asked for or approved more than two hours ago with no outcome, and every
//! refunded order whose stock may still be reserved; asks the platform's own query API; applies
//! the answer through the same path as a callback (provenance "poll"); releases reserved stock
//! exactly once; and says which shop lost callbacks.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::Duration;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::app::apply::{ApplyChange, Failure};
use crate::app::failure::add_counters;
use crate::app::release_stock::{release_lines, release_order};
use crate::app::tokens::{TokenError, TokenKeeper};
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, RefundId, ShopId, Source};
use crate::model::lifecycle::RefundState;
use crate::model::order::{Order, Provenance, RefundScope, StatusChange};
use crate::model::record::{DueKind, DueMarker};
use crate::model::source_event::OrderFacts;
use crate::model::time::business_day;
use crate::ports::platform::{Credentials, PlatformQuery, QueryError};
use crate::sources;

/// How the dual check behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRules {
    /// A refund the platform still shows open is asked about again after this.
    pub pending_recheck_after: Duration,
    /// Shops checked at the same time.
    pub concurrency: usize,
    /// Attempts when the platform rate-limits.
    pub rate_limit_attempts: u32,
    /// Longest wait between those attempts.
    pub max_backoff: StdDuration,
}

impl Default for RefundRules {
    fn default() -> Self {
        Self {
            pending_recheck_after: Duration::hours(2),
            concurrency: 4,
            rate_limit_attempts: 3,
            max_backoff: StdDuration::from_secs(2),
        }
    }
}

/// What one order's check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// The platform confirmed the refund succeeded (and we had no callback for it).
    Confirmed,
    /// Already known to have succeeded; stock confirmed released.
    Released,
    /// The platform still shows it open: asked again later.
    StillPending,
    /// The platform shows it closed or refused.
    Closed,
    /// The platform does not know the order.
    NotFound,
    /// No query client for this platform: asked again later.
    Unsupported,
    /// The platform failed or its token could not be refreshed: left for the next run.
    Failed,
}

/// What a sweep or an ops re-check did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RefundSweepReport {
    /// Due markers (or listed orders) looked at.
    pub checked: u32,
    /// Outcome counts.
    pub outcomes: BTreeMap<String, u32>,
    /// Stock lines released.
    pub lines_released: u32,
    /// Shops whose token could not be refreshed.
    pub token_failures: Vec<String>,
    /// Per order (ops re-check only).
    pub orders: BTreeMap<String, CheckOutcome>,
}

impl RefundSweepReport {
    fn count(&mut self, outcome: CheckOutcome) {
        let name = serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        *self.outcomes.entry(name).or_default() += 1;
    }
}

/// The answer for one order of an ops release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseAnswer {
    /// Released now.
    Released,
    /// Released before (by a callback, a poll or an earlier ops call).
    AlreadyReleased,
    /// Nothing was reserved for this order.
    NothingReserved,
    /// Our record does not show a succeeded refund: re-check it first.
    NotRefunded,
    /// No such order.
    NotFound,
    /// A store failed: try again.
    Failed,
}

/// refund-dual-check's ports and rules.
pub struct RefundCheck<'a> {
    /// The order write path.
    pub write: ApplyChange<'a>,
    /// One client per platform that has one.
    pub platforms: &'a [&'a dyn PlatformQuery],
    /// Shops' tokens: read, and refreshed ahead of expiry or on a token error, through the
    /// token ledger's lease (never written into a webhook secret).
    pub tokens: &'a TokenKeeper<'a>,
    /// Rules.
    pub rules: &'a RefundRules,
}

enum ShopAccess {
    Ready(Credentials),
    Broken(String),
}

impl RefundCheck<'_> {
    fn client(&self, source: Source) -> Option<&dyn PlatformQuery> {
        self.platforms.iter().copied().find(|p| p.source() == source)
    }

    /// The shop's credentials, refreshing the token first when it is about to expire.
    async fn access(&self, source: Source, shop: &ShopId, events: &mut Vec<DomainEvent>) -> ShopAccess {
        match self.tokens.fresh_credentials(source, shop, None).await {
            Ok(credentials) => ShopAccess::Ready(credentials),
            Err(err) => {
                if matches!(err, TokenError::RefreshFailed(_)) {
                    events.push(DomainEvent::TokenRefreshFailed {
                        source,
                        shop: shop.to_string(),
                        reason: err.to_string(),
                    });
                }
                ShopAccess::Broken(err.to_string())
            }
        }
    }

    /// Asks the platform, with backoff on rate limits and one token refresh on expiry.
    async fn ask(
        &self,
        client: &dyn PlatformQuery,
        key: &OrderKey,
        credentials: &mut Credentials,
        events: &mut Vec<DomainEvent>,
    ) -> Result<crate::ports::platform::RefundAnswer, QueryError> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            match client.refund_status(key, credentials).await {
                Err(QueryError::RateLimited { retry_after_s }) if attempt + 1 < self.rules.rate_limit_attempts => {
                    attempt += 1;
                    let wait = retry_after_s.map_or(StdDuration::from_millis(200 << attempt), StdDuration::from_secs);
                    tokio::time::sleep(wait.min(self.rules.max_backoff)).await;
                }
                Err(QueryError::Unavailable { .. }) if attempt + 1 < self.rules.rate_limit_attempts => {
                    attempt += 1;
                    tokio::time::sleep(StdDuration::from_millis(100 << attempt).min(self.rules.max_backoff)).await;
                }
                Err(QueryError::TokenExpired) if !refreshed => {
                    refreshed = true;
                    match self.tokens.refresh(key.source, &key.shop).await {
                        Ok(fresh) => *credentials = fresh,
                        Err(err) => {
                            if !err.is_transient() {
                                events.push(DomainEvent::TokenRefreshFailed {
                                    source: key.source,
                                    shop: key.shop.to_string(),
                                    reason: err.to_string(),
                                });
                            }
                            return Err(QueryError::TokenExpired);
                        }
                    }
                }
                Err(QueryError::Revoked { code }) => {
                    events.push(DomainEvent::TokenRefreshFailed {
                        source: key.source,
                        shop: key.shop.to_string(),
                        reason: format!(
                            "authorisation revoked or not this app's ({code}): the shop must authorise the app again"
                        ),
                    });
                    return Err(QueryError::Revoked { code });
                }
                other => return other,
            }
        }
    }

    /// Checks one order with the platform and applies the answer like a callback.
    async fn check(
        &self,
        key: &OrderKey,
        credentials: &mut Credentials,
        events: &mut Vec<DomainEvent>,
    ) -> Result<CheckOutcome, Failure> {
        let n = self.write;
        let Some(client) = self.client(key.source) else {
            self.reschedule(key, "unsupported").await?;
            return Ok(CheckOutcome::Unsupported);
        };
        let answer = match self.ask(client, key, credentials, events).await {
            Ok(answer) => answer,
            Err(QueryError::NotFound) => return Ok(CheckOutcome::NotFound),
            Err(err) => {
                tracing::warn!(source = %key.source, shop = %key.shop, order_id = %key.order_id, error = %err, "platform query failed");
                return Ok(CheckOutcome::Failed);
            }
        };
        let now = n.ports.clock.now();
        let stored = n.ports.orders.get(key).await?;
        let mut found_by_poll = false;
        let cases = std::iter::once(&answer).chain(answer.cases.iter());
        for case in cases {
            // The case named as the platform's callbacks name it.
            let scope = poll_scope(case.refund_id.as_deref(), &case.lines, stored.as_ref());
            let facts = OrderFacts { refund_kind: case.refund_kind, ..OrderFacts::default() };
            for (raw, at) in &case.statuses {
                let at = at.unwrap_or(now);
                let id = format!("poll-{}-{}-{}-{}", scope.case(), raw.field, raw.code, at.timestamp());
                let change = StatusChange {
                    key: key.clone(),
                    message_id: MessageId::parse(&id)
                        .unwrap_or_else(|_| crate::model::ids::body_hash_id(id.as_bytes())),
                    event_time: at,
                    received_at: now,
                    raw: raw.clone(),
                    mapping: sources::map_status(key.source, &raw.field, &raw.code).with_refund_kind(case.refund_kind),
                    provenance: Provenance::Poll,
                    refund_scope: scope.clone(),
                };
                let (applied, produced) = n.apply_status(&change, &facts).await?;
                // The recorded entry, not whether this call wrote it: the poll found the refund
                // (its `CallbackMissing` and count go with the change itself, see
                // `apply::events_of`), also when a retry finds its own write done. Not when the
                // case had succeeded before this check began: an earlier check found it, and this
                // one (a recheck, the platform's refund time unchanged) goes on to the release.
                let recorded_before = stored.as_ref().is_some_and(|o| {
                    let was = match o.refunds.get(&scope.case()) {
                        Some(case) => case.state,
                        None if scope.id.is_none() => o.refund,
                        None => RefundState::None,
                    };
                    was == RefundState::Succeeded
                });
                if !recorded_before
                    && applied.entry.provenance == Provenance::Poll
                    && applied.entry.refund.is_some_and(|(_, to)| to == RefundState::Succeeded)
                {
                    found_by_poll = true;
                }
                events.extend(produced);
            }
        }
        let after = n.ports.orders.get(key).await?;
        let refund = after.as_ref().map_or(RefundState::None, |o| o.refund);
        if found_by_poll {
            // Its CallbackMissing event and counter were committed with the change (events_of).
            tracing::warn!(source = %key.source, shop = %key.shop, order_id = %key.order_id, "refund succeeded without a callback");
            return Ok(CheckOutcome::Confirmed);
        }
        Ok(match refund {
            RefundState::Requested | RefundState::Approved => {
                self.reschedule(key, refund.as_str()).await?;
                CheckOutcome::StillPending
            }
            RefundState::Succeeded => {
                self.release_if_due(key, events).await?;
                CheckOutcome::Released
            }
            RefundState::Closed | RefundState::Rejected => CheckOutcome::Closed,
            RefundState::None => {
                self.reschedule(key, "unknown").await?;
                CheckOutcome::StillPending
            }
        })
    }

    async fn reschedule(&self, key: &OrderKey, note: &str) -> Result<(), Failure> {
        let n = self.write;
        let marker = DueMarker {
            key: key.clone(),
            kind: DueKind::RefundCheck,
            due_at: n.ports.clock.now() + self.rules.pending_recheck_after,
            shard: key.shard(n.rules.shards),
            note: Some(note.to_owned()),
        };
        Ok(n.ports.orders.set_due(&marker).await?)
    }

    /// Releases a refunded order's stock if it has not left the warehouse; returns lines released.
    async fn release_if_due(&self, key: &OrderKey, events: &mut Vec<DomainEvent>) -> Result<u32, Failure> {
        let n = self.write;
        let Some(order) = n.ports.orders.get(key).await? else { return Ok(0) };
        // The lines of the refunds that succeeded before the parcel left (by the sources' times).
        let Some(refunded) = order.lines_to_release() else { return Ok(0) };
        let refunded_at = order.refund_entered.get(&RefundState::Succeeded).copied().unwrap_or(order.updated_at);
        let now = n.ports.clock.now();
        let produced =
            release_order(n.ports.inventory, n.ports.orders, key, &refunded, refunded_at, now, "poll", n.rules).await?;
        let lines = produced
            .iter()
            .map(|e| match e {
                DomainEvent::InventoryReleased { lines, .. } => u32::try_from(lines.len()).unwrap_or(u32::MAX),
                _ => 0,
            })
            .sum();
        events.extend(produced);
        Ok(lines)
    }

    /// The scheduled sweep: every due refund check, grouped by shop, shops in parallel.
    #[tracing::instrument(name = "refund_sweep", skip_all)]
    pub async fn sweep(&self) -> (Vec<DomainEvent>, RefundSweepReport) {
        let n = self.write;
        let now = n.ports.clock.now();
        let mut by_shop: BTreeMap<(Source, ShopId), Vec<DueMarker>> = BTreeMap::new();
        let mut report = RefundSweepReport::default();
        for shard in 0..n.rules.shards.max(1) {
            let mut cursor: Option<String> = None;
            loop {
                let Ok(page) = n.ports.orders.due(DueKind::RefundCheck, shard, now, cursor.as_deref(), 100).await
                else {
                    report.count(CheckOutcome::Failed);
                    break;
                };
                for marker in page.items {
                    by_shop.entry((marker.key.source, marker.key.shop.clone())).or_default().push(marker);
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        let results: Vec<(Vec<DomainEvent>, RefundSweepReport)> = futures::stream::iter(by_shop)
            .map(|((source, shop), markers)| self.shop(source, shop, markers))
            .buffer_unordered(self.rules.concurrency.max(1))
            .collect()
            .await;
        let mut events = Vec::new();
        for (produced, part) in results {
            events.extend(produced);
            report.checked += part.checked;
            report.lines_released += part.lines_released;
            report.token_failures.extend(part.token_failures);
            for (name, count) in part.outcomes {
                *report.outcomes.entry(name).or_default() += count;
            }
        }
        tracing::info!(checked = report.checked, outcomes = ?report.outcomes, "refund dual-check sweep done");
        (events, report)
    }

    #[tracing::instrument(name = "refund_shop", skip_all, fields(source = %source, shop = %shop))]
    async fn shop(
        &self,
        source: Source,
        shop: ShopId,
        markers: Vec<DueMarker>,
    ) -> (Vec<DomainEvent>, RefundSweepReport) {
        let n = self.write;
        let mut events = Vec::new();
        let mut report = RefundSweepReport::default();
        // Releases need no platform call; do them even when the shop's token is broken.
        let (releases, checks): (Vec<DueMarker>, Vec<DueMarker>) =
            markers.into_iter().partition(|m| m.note.as_deref() == Some("release"));
        for marker in releases {
            report.checked += 1;
            match self.release_if_due(&marker.key, &mut events).await {
                Ok(_) => {
                    report.count(CheckOutcome::Released);
                    let _ = n.ports.orders.clear_due(&marker.key, DueKind::RefundCheck, marker.due_at, &[]).await;
                }
                Err(_) => report.count(CheckOutcome::Failed),
            }
        }
        if checks.is_empty() {
            report.lines_released = lines_in(&events);
            return (events, report);
        }
        let mut credentials = match self.access(source, &shop, &mut events).await {
            ShopAccess::Ready(credentials) => credentials,
            ShopAccess::Broken(reason) => {
                tracing::error!(%source, %shop, %reason, "cannot ask the platform for this shop");
                report.token_failures.push(format!("{source}/{shop}"));
                for _ in &checks {
                    report.count(CheckOutcome::Failed);
                }
                return (events, report);
            }
        };
        for marker in checks {
            report.checked += 1;
            let outcome = self.check(&marker.key, &mut credentials, &mut events).await.unwrap_or(CheckOutcome::Failed);
            report.count(outcome);
            if matches!(
                outcome,
                CheckOutcome::Confirmed | CheckOutcome::Released | CheckOutcome::Closed | CheckOutcome::NotFound
            ) {
                // The order moved on, or its refund is settled: this marker is done (a moved
                // marker — rescheduled meanwhile — is kept by the condition).
                let _ = n.ports.orders.clear_due(&marker.key, DueKind::RefundCheck, marker.due_at, &[]).await;
            }
            if report.token_failures.is_empty()
                && events.iter().any(|e| matches!(e, DomainEvent::TokenRefreshFailed { .. }))
            {
                report.token_failures.push(format!("{source}/{shop}"));
                break;
            }
        }
        report.lines_released = lines_in(&events);
        (events, report)
    }

    /// Ops: ask the platform about these orders now.
    pub async fn recheck(&self, orders: &[OrderKey]) -> (Vec<DomainEvent>, RefundSweepReport) {
        let mut events = Vec::new();
        let mut report = RefundSweepReport::default();
        let mut access: BTreeMap<(Source, ShopId), Option<Credentials>> = BTreeMap::new();
        for key in orders {
            report.checked += 1;
            let slot = (key.source, key.shop.clone());
            if !access.contains_key(&slot) {
                let credentials = match self.access(key.source, &key.shop, &mut events).await {
                    ShopAccess::Ready(c) => Some(c),
                    ShopAccess::Broken(_) => None,
                };
                access.insert(slot.clone(), credentials);
            }
            let outcome = match access.get_mut(&slot).and_then(Option::as_mut) {
                Some(credentials) => self.check(key, credentials, &mut events).await.unwrap_or(CheckOutcome::Failed),
                None => CheckOutcome::Failed,
            };
            report.count(outcome);
            report.orders.insert(key.to_string(), outcome);
        }
        (events, report)
    }

    /// Ops: release reserved stock of these orders (the emergency tool). Each order: released,
    /// already released, nothing reserved, not refunded, not found.
    #[tracing::instrument(name = "ops_release", skip_all, fields(orders = orders.len()))]
    pub async fn release(
        &self,
        orders: &[OrderKey],
        concurrency: usize,
    ) -> (Vec<DomainEvent>, BTreeMap<String, ReleaseAnswer>) {
        let n = self.write;
        let now = n.ports.clock.now();
        let results: Vec<(String, ReleaseAnswer, Vec<DomainEvent>, Vec<CounterAdd>)> =
            futures::stream::iter(orders.iter().cloned())
                .map(|key| async move {
                    let answer = async {
                        let Some(order) = n.ports.orders.get(&key).await? else {
                            return Ok((ReleaseAnswer::NotFound, Vec::new(), Vec::new()));
                        };
                        let Some(refunded) = order.refunded_lines() else {
                            return Ok((ReleaseAnswer::NotRefunded, Vec::new(), Vec::new()));
                        };
                        let refunded_at =
                            order.refund_entered.get(&RefundState::Succeeded).copied().unwrap_or(order.updated_at);
                        let reserved = n.ports.inventory.reservations(&key).await?;
                        if reserved.is_empty() {
                            return Ok((ReleaseAnswer::NothingReserved, Vec::new(), Vec::new()));
                        }
                        let released = release_lines(
                            n.ports.inventory,
                            &key,
                            reserved,
                            &refunded,
                            refunded_at,
                            now,
                            "ops",
                            n.rules,
                        )
                        .await?;
                        let answer = if released.lines.is_empty() {
                            ReleaseAnswer::AlreadyReleased
                        } else {
                            ReleaseAnswer::Released
                        };
                        let event = released.events(&key, "ops");
                        n.ports.orders.keep(&key, key.shard(n.rules.shards), &event, now).await?;
                        Ok::<_, Failure>((answer, event, released.counters))
                    }
                    .await;
                    match answer {
                        Ok((answer, event, counters)) => (key.to_string(), answer, event, counters),
                        Err(err) => {
                            tracing::warn!(order_id = %key.order_id, error = %err, "ops release failed");
                            (key.to_string(), ReleaseAnswer::Failed, Vec::new(), Vec::new())
                        }
                    }
                })
                .buffer_unordered(concurrency.max(1))
                .collect()
                .await;
        let mut events = Vec::new();
        let mut answers = BTreeMap::new();
        // The call itself is counted once at the end.
        let counters = vec![CounterAdd {
            channel: orders.first().map_or(Source::App, |k| k.source),
            day: business_day(now),
            shard: 0,
            name: names::OPS_CALLS.into(),
            by: 1,
        }];
        // Each release's own counters went with it (one write, exactly once).
        for (key, answer, produced, _written) in results {
            answers.insert(key, answer);
            events.extend(produced);
        }
        add_counters(n.ports.stats, &merge(counters), "ops release").await;
        (events, answers)
    }
}

/// Stock lines released by these events.
fn lines_in(events: &[DomainEvent]) -> u32 {
    events
        .iter()
        .map(|e| match e {
            DomainEvent::InventoryReleased { lines, .. } => u32::try_from(lines.len()).unwrap_or(u32::MAX),
            _ => 0,
        })
        .sum()
}

/// Sums counter adds that go to the same counter.
fn merge(adds: Vec<CounterAdd>) -> Vec<CounterAdd> {
    let mut merged: BTreeMap<(Source, chrono::NaiveDate, u16, String), i64> = BTreeMap::new();
    for add in adds {
        *merged.entry((add.channel, add.day, add.shard, add.name)).or_default() += add.by;
    }
    merged.into_iter().map(|((channel, day, shard, name), by)| CounterAdd { channel, day, shard, name, by }).collect()
}

/// The refund case a poll answer's codes are about, named as the platform's callbacks name it:
/// the answer's refund id; else the stored case (named by a callback's after-sale id) that covers
/// the answer's lines — Douyin's order detail gives each sku order's after-sale state but not its
/// after-sale id; else the whole order's case, over the answer's lines.
pub fn poll_scope(refund_id: Option<&str>, lines: &[String], stored: Option<&Order>) -> RefundScope {
    let lines: Vec<LineId> = lines.iter().filter_map(|l| LineId::parse(l).ok()).collect();
    let id = refund_id.and_then(|id| RefundId::parse(id).ok()).or_else(|| {
        let order = stored?;
        order
            .refunds
            .iter()
            .filter(|(id, case)| **id != RefundId::whole_order() && lines.iter().any(|l| case.lines.contains(l)))
            .max_by(|a, b| a.1.stamp.cmp(&b.1.stamp))
            .map(|(id, _)| id.clone())
    });
    RefundScope { id, lines }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::apply_message::ApplyMessage;
    use crate::app::tokens::{TokenPorts, TokenRules, token_parameter};
    use crate::model::status::RawStatus;
    use crate::ports::platform::{RefreshedToken, RefundAnswer};
    use crate::ports::pull::TokenRefresh;
    use crate::ports::secrets::Secret;
    use crate::ports::secrets::{SecretCache, parameter_name};
    use crate::ports::sync::TokenLedger;
    use crate::ports::{InventoryStore, OrderStore, Secrets, Stats};
    use crate::rules::timing::Rules;
    use crate::testing::clock::FixedClock;
    use crate::testing::fixtures::{self, DayCallback};
    use crate::testing::memory::{MemoryInbox, MemoryLines, MemorySecrets, MemoryStore, MemorySync};
    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 6, 0, 0).single().unwrap_or_default()
    }

    #[derive(Default)]
    struct FakeDouyin {
        answers: Mutex<HashMap<String, Vec<Result<RefundAnswer, QueryError>>>>,
        calls: AtomicUsize,
        refreshes: AtomicUsize,
        refresh_fails: bool,
    }

    impl FakeDouyin {
        fn answer(&self, order: &str, answers: Vec<Result<RefundAnswer, QueryError>>) {
            if let Ok(mut map) = self.answers.lock() {
                map.insert(order.to_owned(), answers);
            }
        }
    }

    fn succeeded(at: DateTime<Utc>) -> Result<RefundAnswer, QueryError> {
        Ok(RefundAnswer {
            statuses: vec![(RawStatus::new("after_sale_status", "12"), Some(at))],
            refund_kind: None,
            refund_id: Some("as-1".into()),
            ..RefundAnswer::default()
        })
    }

    fn pending() -> Result<RefundAnswer, QueryError> {
        Ok(RefundAnswer {
            statuses: vec![(RawStatus::new("after_sale_status", "6"), None)],
            refund_kind: None,
            refund_id: None,
            ..RefundAnswer::default()
        })
    }

    #[async_trait]
    impl PlatformQuery for FakeDouyin {
        fn source(&self) -> Source {
            Source::Douyin
        }
        async fn refund_status(&self, key: &OrderKey, credentials: &Credentials) -> Result<RefundAnswer, QueryError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if credentials.access_token.expose() == "expired" {
                return Err(QueryError::TokenExpired);
            }
            let mut answers = self.answers.lock().map_err(|_| QueryError::Transport("poisoned".into()))?;
            match answers.get_mut(key.order_id.as_str()) {
                Some(list) if list.len() > 1 => list.remove(0),
                Some(list) => list.first().cloned().unwrap_or(Err(QueryError::NotFound)),
                None => Err(QueryError::NotFound),
            }
        }
        async fn refresh_token(&self, shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
            TokenRefresh::refresh_token(self, shop, credentials).await
        }
    }

    #[async_trait]
    impl TokenRefresh for FakeDouyin {
        fn source(&self) -> Source {
            Source::Douyin
        }
        async fn refresh_token(
            &self,
            _shop: &ShopId,
            _credentials: &Credentials,
        ) -> Result<RefreshedToken, QueryError> {
            self.refreshes.fetch_add(1, Ordering::Relaxed);
            if self.refresh_fails {
                return Err(QueryError::Platform { code: "30001".into(), message: "refresh_token expired".into() });
            }
            Ok(RefreshedToken {
                access_token: Secret::new("fresh-token"),
                expires_at: at() + Duration::days(7),
                refresh_token: None,
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
        refund_rules: RefundRules,
        lines: MemoryLines,
    }

    impl World {
        async fn new(token: &str, expires_in: Duration) -> Self {
            let world = World {
                store: MemoryStore::default(),
                inbox: MemoryInbox::default(),
                secrets: MemorySecrets::default(),
                sync: MemorySync::default(),
                clock: FixedClock::new(at() - Duration::hours(3)),
                rules: Rules::default(),
                refund_rules: RefundRules { max_backoff: StdDuration::from_millis(5), ..RefundRules::default() },
                lines: MemoryLines::default(),
            };
            for shop in ["shop-1001", "shop-2002"] {
                let secret = json!({"app_key": "7123", "secret": "app-secret", "access_token": token,
                    "access_token_expires_at": (at() + expires_in).to_rfc3339(), "refresh_token": "r1"});
                let name =
                    parameter_name("test", Source::Douyin, &ShopId::parse(shop).unwrap_or_else(|e| panic!("{e}")));
                world.secrets.put(&name, &secret.to_string()).await.unwrap_or_else(|e| panic!("{e}"));
            }
            world
        }
        fn write(&self) -> ApplyChange<'_> {
            ApplyChange::new(self.store.write_ports(&self.inbox, &self.clock), &self.rules)
        }

        fn messages(&self) -> ApplyMessage<'_> {
            ApplyMessage::new(self.write()).with_lines(&self.lines)
        }
        /// A douyin order paid (one reserved line) whose refund was asked for 3 h before `at()`.
        async fn refund_requested(&self, shop: &str, id: &str) -> OrderKey {
            let t = at() - Duration::hours(3);
            let key = OrderKey::parse(Source::Douyin, shop, id).unwrap_or_else(|e| panic!("{e}"));
            self.lines.set_simple(&key, &[(&format!("{id}1"), &format!("SKU-{id}"), 1)]);
            for (tag, data) in [
                (
                    "101",
                    json!({"p_id": id, "pay_time": (t - Duration::minutes(30)).timestamp(), "s_ids": [format!("{id}1")]}),
                ),
                // Douyin names the after-sale (`aftersale_id`) and its sub-order (`s_id`): the case
                // the poll's answer must name the same way.
                (
                    "200",
                    json!({"p_id": id, "apply_time": t.timestamp(), "aftersale_type": 2, "aftersale_id": "as-1", "s_id": format!("{id}1")}),
                ),
            ] {
                let callback = DayCallback {
                    source: Source::Douyin,
                    shop: shop.into(),
                    payload: fixtures::douyin_push(tag, &format!("{id}-{tag}"), data),
                    query: vec![],
                    message_id: format!("{id}-{tag}"),
                    sent_at: t,
                };
                self.messages().handle(&callback.inbound()).await.unwrap_or_else(|e| panic!("{e}"));
            }
            OrderKey::parse(Source::Douyin, shop, id).unwrap_or_else(|e| panic!("{e}"))
        }
    }

    /// Runs `f` with a checker on `world` and `platform`.
    async fn run<'a, R>(world: &'a World, platform: &'a FakeDouyin, f: impl AsyncFnOnce(&RefundCheck<'_>) -> R) -> R {
        run_with(world, platform, world.write(), f).await
    }

    /// Runs `f` with a checker on `world` and `platform` writing through `n`.
    async fn run_with<'a, R>(
        world: &'a World,
        platform: &'a FakeDouyin,
        n: ApplyChange<'_>,
        f: impl AsyncFnOnce(&RefundCheck<'_>) -> R,
    ) -> R {
        let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
        let platforms: [&dyn PlatformQuery; 1] = [platform];
        let refreshers: [&dyn TokenRefresh; 1] = [platform];
        let ports = TokenPorts {
            ledger: &world.sync,
            params: &world.secrets,
            secrets: &cache,
            refreshers: &refreshers,
            clock: &world.clock,
        };
        let rules = TokenRules { refresh_before: Duration::minutes(30), ..TokenRules::default() };
        let tokens = TokenKeeper::new(ports, "test", rules, "test-run");
        let checker = RefundCheck { write: n, platforms: &platforms, tokens: &tokens, rules: &world.refund_rules };
        f(&checker).await
    }

    fn kinds(events: &[DomainEvent]) -> Vec<&'static str> {
        events.iter().map(DomainEvent::detail_type).collect()
    }

    #[tokio::test]
    async fn a_refund_whose_callback_never_came_is_confirmed_by_polling_and_its_stock_released_once() {
        let world = World::new("token", Duration::days(3)).await;
        let key = world.refund_requested("shop-1001", "6921001").await;
        world.clock.set(at());
        let platform = FakeDouyin::default();
        platform.answer("6921001", vec![succeeded(at() - Duration::minutes(20))]);
        let (events, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(report.outcomes.get("confirmed"), Some(&1), "{report:?}");
        assert_eq!(kinds(&events), ["RefundStatusChanged", "RefundConfirmed", "CallbackMissing", "InventoryReleased"]);
        let order = world.store.get(&key).await.ok().flatten().unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.refund, RefundState::Succeeded);
        let history = world.store.history(&key, None, 10).await.map(|p| p.items).unwrap_or_default();
        assert_eq!(history.last().map(|h| h.provenance), Some(Provenance::Poll));
        // The missing callback is derived from the committed entry (so it is in the order's
        // outbox): a sweep killed after the commit still tells ops.
        let derived = history.last().map(crate::app::apply::events_of).unwrap_or_default();
        assert!(kinds(&derived).contains(&"CallbackMissing"), "{derived:?}");
        // A second sweep has nothing due; a late callback releases nothing more.
        let (events, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!((events.len(), report.checked), (0, 0));
        let late = DayCallback {
            source: Source::Douyin,
            shop: "shop-1001".into(),
            payload: fixtures::douyin_push(
                "206",
                "late",
                json!({"p_id": "6921001", "success_time": (at() - Duration::minutes(20)).timestamp(), "aftersale_id": "as-1", "s_id": "69210011"}),
            ),
            query: vec![],
            message_id: "late".into(),
            sent_at: at(),
        };
        let events = world.messages().handle(&late.inbound()).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!kinds(&events).contains(&"InventoryReleased"));
        let month = world.store.month(Source::Douyin, at().date_naive()).await.unwrap_or_default();
        let total = |name| month.iter().map(|d| d.get(name)).sum::<i64>();
        assert_eq!((total("stock_released"), total("callback_missing"), total("refund_found_by_poll")), (1, 1, 1));
    }

    #[tokio::test]
    async fn a_refund_found_by_polling_is_reported_missing_once_though_the_first_check_failed_after_it() {
        // Found by the soak (tests/soak, seed 12): the poll applied the refund, then releasing
        // the stock failed; the next run found the change recorded (not fresh) and neither
        // counted nor reported the missing callback.
        use crate::app::apply::WritePorts;
        use crate::testing::faults::{Fault, FaultPlan, Faults, Faulty};
        let world = World::new("token", Duration::days(3)).await;
        world.refund_requested("shop-1001", "6921009").await;
        world.clock.set(at());
        let platform = FakeDouyin::default();
        platform.answer("6921009", vec![succeeded(at() - Duration::minutes(20))]);
        let lost = Faults::new(FaultPlan::new(5).rate("inventory.release", Fault::After, 1.0));
        let inventory = Faulty::new(&world.store, &lost);
        let ports = WritePorts { inventory: &inventory, ..world.store.write_ports(&world.inbox, &world.clock) };
        let write = ApplyChange::new(ports, &world.rules);
        let (_, report) = run_with(&world, &platform, write, async |c| c.sweep().await).await;
        assert_eq!(report.outcomes.get("failed"), Some(&1), "{report:?}");
        let key = OrderKey::parse(Source::Douyin, "shop-1001", "6921009").unwrap_or_else(|e| panic!("{e}"));
        let kept = world
            .store
            .unpublished(key.shard(world.rules.shards), at(), None, 10)
            .await
            .map(|p| p.items)
            .unwrap_or_default();
        assert!(
            kept.iter().any(|u| u.event.detail_type() == "CallbackMissing"),
            "reported though the rest failed: {kept:?}"
        );
        // What follows the failed check is its release marker, not another check.
        world.clock.advance(Duration::minutes(11));
        let (_, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(report.lines_released, 1, "{report:?}");
        run(&world, &platform, async |c| c.recheck(std::slice::from_ref(&key)).await).await;
        let month = world.store.month(Source::Douyin, at().date_naive()).await.unwrap_or_default();
        let total = |name| month.iter().map(|d| d.get(name)).sum::<i64>();
        assert_eq!((total("callback_missing"), total("stock_released")), (1, 1));
    }

    #[tokio::test]
    async fn a_recheck_of_a_refund_an_earlier_poll_found_says_released_not_confirmed_again() {
        // A platform's refund keeps its time (the fake gateway's, Douyin's): the recheck applies
        // the same change again, finds it recorded by the first check, and reports the release
        // (what it derives again carries the same event ids; nothing is counted twice).
        let world = World::new("token", Duration::days(3)).await;
        let key = world.refund_requested("shop-1001", "6921005").await;
        world.clock.set(at());
        let platform = FakeDouyin::default();
        platform.answer("6921005", vec![succeeded(at() - Duration::minutes(20))]);
        let (_, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(report.outcomes.get("confirmed"), Some(&1), "{report:?}");
        let (_, report) = run(&world, &platform, async |c| c.recheck(std::slice::from_ref(&key)).await).await;
        assert_eq!(report.orders.get(&key.to_string()), Some(&CheckOutcome::Released), "{report:?}");
        let month = world.store.month(Source::Douyin, at().date_naive()).await.unwrap_or_default();
        let total = |name| month.iter().map(|d| d.get(name)).sum::<i64>();
        assert_eq!((total("callback_missing"), total("stock_released")), (1, 1));
    }

    #[tokio::test]
    async fn a_refund_still_open_is_asked_about_again_later_not_every_run() {
        let world = World::new("token", Duration::days(3)).await;
        world.refund_requested("shop-1001", "6921002").await;
        world.clock.set(at());
        let platform = FakeDouyin::default();
        platform.answer("6921002", vec![pending()]);
        let (_, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(report.outcomes.get("still_pending"), Some(&1));
        let (_, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(report.checked, 0, "rescheduled two hours out");
        world.clock.advance(Duration::hours(2));
        let (_, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(report.checked, 1);
    }

    #[tokio::test]
    async fn an_expiring_token_is_refreshed_into_its_own_parameter_and_the_webhook_secret_is_left_alone() {
        let world = World::new("token", Duration::minutes(10)).await;
        world.refund_requested("shop-1001", "6921003").await;
        world.clock.set(at());
        let platform = FakeDouyin::default();
        platform.answer("6921003", vec![pending()]);
        let shop = ShopId::parse("shop-1001").unwrap_or_else(|e| panic!("{e}"));
        let webhook_secret = world.secrets.get(&parameter_name("test", Source::Douyin, &shop)).await.ok().flatten();
        run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(platform.refreshes.load(Ordering::Relaxed), 1);
        let stored =
            world.secrets.get(&token_parameter("test", Source::Douyin, &shop)).await.ok().flatten().unwrap_or_default();
        let stored: crate::model::sync::ShopTokens = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored.access_token.expose(), "fresh-token");
        assert_eq!(stored.refresh_token.as_ref().map(Secret::expose), Some("r1"), "the refresh token is kept");
        assert_eq!(stored.generation, 1);
        assert_eq!(
            world.secrets.get(&parameter_name("test", Source::Douyin, &shop)).await.ok().flatten(),
            webhook_secret,
            "the webhook secret parameter is never written"
        );
        let record = world.sync.token(Source::Douyin, &shop).await.ok().flatten().unwrap_or_else(|| panic!("ledger"));
        assert_eq!((record.version, record.lease), (1, None));
    }

    #[tokio::test]
    async fn a_failed_refresh_alerts_naming_the_shop_and_other_shops_still_get_checked() {
        let world = World::new("expired", Duration::days(3)).await;
        world.refund_requested("shop-1001", "6921004").await;
        world.refund_requested("shop-2002", "6921005").await;
        world.clock.set(at());
        let platform = FakeDouyin { refresh_fails: true, ..FakeDouyin::default() };
        platform.answer("6921004", vec![succeeded(at())]);
        platform.answer("6921005", vec![succeeded(at())]);
        let (events, report) = run(&world, &platform, async |c| c.sweep().await).await;
        let failed: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                DomainEvent::TokenRefreshFailed { shop, .. } => Some(shop.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(failed.len(), 2, "each shop with its own alert: {failed:?}");
        assert_eq!(report.token_failures.len(), 2);
        assert_eq!(report.outcomes.get("failed"), Some(&2));
    }

    #[tokio::test]
    async fn a_rate_limit_is_waited_out() {
        let world = World::new("token", Duration::days(3)).await;
        world.refund_requested("shop-1001", "6921006").await;
        world.clock.set(at());
        let platform = FakeDouyin::default();
        platform.answer("6921006", vec![Err(QueryError::RateLimited { retry_after_s: None }), succeeded(at())]);
        let (_, report) = run(&world, &platform, async |c| c.sweep().await).await;
        assert_eq!(report.outcomes.get("confirmed"), Some(&1));
        assert_eq!(platform.calls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn the_emergency_release_answers_per_order() {
        let world = World::new("token", Duration::days(3)).await;
        let refunded = world.refund_requested("shop-1001", "6921007").await;
        let not_refunded = world.refund_requested("shop-1001", "6921008").await;
        world.clock.set(at());
        // 6921007's refund success arrived by callback and its stock was released then.
        let done = DayCallback {
            source: Source::Douyin,
            shop: "shop-1001".into(),
            payload: fixtures::douyin_push("206", "s7", json!({"p_id": "6921007", "success_time": at().timestamp()})),
            query: vec![],
            message_id: "s7".into(),
            sent_at: at(),
        };
        world.messages().handle(&done.inbound()).await.unwrap_or_else(|e| panic!("{e}"));
        let line = refunded.order_id.to_string() + "1";
        let _ = world
            .store
            .release(
                &refunded,
                &[crate::model::ids::LineId::parse(&line).unwrap_or_else(|e| panic!("{e}"))],
                at(),
                "refund",
                &[],
            )
            .await;
        let missing = OrderKey::parse(Source::Douyin, "shop-1001", "404").unwrap_or_else(|e| panic!("{e}"));
        let keys = [refunded.clone(), not_refunded.clone(), missing.clone()];
        let (_, answers) = run(&world, &FakeDouyin::default(), async |c| c.release(&keys, 8).await).await;
        assert_eq!(answers.get(&refunded.to_string()), Some(&ReleaseAnswer::AlreadyReleased));
        assert_eq!(answers.get(&not_refunded.to_string()), Some(&ReleaseAnswer::NotRefunded));
        assert_eq!(answers.get(&missing.to_string()), Some(&ReleaseAnswer::NotFound));
    }

    #[tokio::test]
    async fn releasing_twice_releases_once() {
        let world = World::new("token", Duration::days(3)).await;
        let key = world.refund_requested("shop-1001", "6921009").await;
        world.clock.set(at());
        // Mark refunded without touching stock (as the 327-order outage left it): apply directly.
        let change = StatusChange {
            key: key.clone(),
            message_id: MessageId::parse("ops-1").unwrap_or_else(|e| panic!("{e}")),
            event_time: at(),
            received_at: at(),
            raw: RawStatus::new("refund_status", "3"),
            mapping: crate::model::status::StatusMapping::Mapped(crate::model::status::Target::refund(
                RefundState::Succeeded,
            )),
            provenance: Provenance::Ops,
            refund_scope: RefundScope::default(),
        };
        world
            .write()
            .apply_change(&change, &OrderFacts::default(), &|_: &mut crate::model::order::Order| {}, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let one = std::slice::from_ref(&key);
        let (first, second) =
            run(&world, &FakeDouyin::default(), async |c| futures::join!(c.release(one, 4), c.release(one, 4))).await;
        let answers = [first.1.get(&key.to_string()).copied(), second.1.get(&key.to_string()).copied()];
        assert_eq!(answers.iter().filter(|a| **a == Some(ReleaseAnswer::Released)).count(), 1, "{answers:?}");
        assert_eq!(answers.iter().filter(|a| **a == Some(ReleaseAnswer::AlreadyReleased)).count(), 1, "{answers:?}");
    }

    #[test]
    fn order_references_parse_as_ops_write_them() {
        assert!(OrderKey::parse_ref("douyin/shop-1001/6921").is_ok());
        assert!(OrderKey::parse_ref("douyin/shop-1001").is_err());
        assert!(OrderKey::parse_ref("kuaidi100/s/1").is_err(), "not a channel");
    }
}
