//! The one contract every implementation of a port must honour, as async test functions.
//! The in-memory ports run it in unit tests; the AWS adapters run it against the local AWS
//! emulator. Each function takes a namespace so runs against shared tables never collide.
//!
//! Conditional-write conflicts, idempotent retries and pagination are part of the contract.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::model::callback::{Accepted, Claim, QuarantineOutcome, Quarantined, RawCallback};
use crate::model::counters::{CounterAdd, StoredReport};
use crate::model::domain_event::DomainEvent;
use crate::model::geo::GeoPoint;
use crate::model::ids::{LineId, MessageId, OrderKey, ShopId, Sku, Source};
use crate::model::lifecycle::Lifecycle;
use crate::model::order::{Order, Provenance, Verdict};
use crate::model::record::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite};
use crate::model::sign::SignKind;
use crate::model::signal::AppSignalKind;
use crate::model::signal::{AddressSign, SignalRecord};
use crate::model::status::RawStatus;
use crate::model::stock::{ReleaseOutcome, Reservation};
use crate::ports::{
    EventPublisher, Inbox, InventoryStore, OrderStore, OutboundMessage, Queue, Secrets, SignalStore, Stats, StoreError,
};

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap() + Duration::minutes(minute)
}

fn key(ns: &str, order: &str) -> OrderKey {
    OrderKey::parse(Source::Douyin, &format!("{ns}-shop"), order).unwrap()
}

fn history(key: &OrderKey, minute: i64, id: &str) -> HistoryEntry {
    HistoryEntry {
        key: key.clone(),
        event_time: t(minute),
        message_id: MessageId::parse(id).unwrap(),
        received_at: t(minute),
        applied_at: t(minute),
        raw: RawStatus::new("tag", "101"),
        provenance: Provenance::Callback,
        verdict: Verdict::Applied,
        lifecycle: Some((None, Lifecycle::Paid)),
        refund: None,
        refund_id: None,
    }
}

fn order(key: &OrderKey, version: u64, state: Lifecycle) -> Order {
    let mut order = Order::new(key.clone(), t(0));
    order.version = version;
    order.lifecycle = Some(state);
    order.entered.insert(state, t(0));
    order
}

fn counter(channel: Source, day: NaiveDate, shard: u16, name: &str, by: i64) -> CounterAdd {
    CounterAdd { channel, day, shard, name: name.to_owned(), by }
}

/// A counter name of the namespace's own, so runs against shared tables never add up.
fn ns_counter(ns: &str) -> String {
    format!("c_{}", ns.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        .chars()
        .take(48)
        .collect()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

/// A deadline for polling: `tick` waits a little longer each time and fails the test once the
/// deadline has passed. No fixed sleeps.
pub struct Deadline {
    start: std::time::Instant,
    limit: StdDuration,
    wait: StdDuration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn after(limit: StdDuration) -> Self {
        Self { start: std::time::Instant::now(), limit, wait: StdDuration::from_millis(5) }
    }

    /// Waits before the next poll; panics once the deadline has passed.
    pub async fn tick(&mut self, what: &str) {
        assert!(self.start.elapsed() < self.limit, "{what}: not within {:?}", self.limit);
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(StdDuration::from_millis(200));
    }
}

/// Orders: versioned conditional writes, duplicate history, atomic counters, history paging.
pub async fn order_store(store: &dyn OrderStore, stats: &dyn Stats, ns: &str) {
    let k = key(ns, "1001");
    assert_eq!(store.get(&k).await.unwrap(), None, "unknown order");

    let applied_name = ns_counter(ns);
    let counters = vec![counter(Source::Douyin, day(11), 3, &applied_name, 1)];
    let first = OrderWrite {
        key: k.clone(),
        order: Some(order(&k, 1, Lifecycle::Paid)),
        expected_version: 0,
        history: history(&k, 1, "m1"),
        due: vec![],
        counters: counters.clone(),
        outbox: vec![],
        shard: 0,
    };
    store.commit(&first).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Some(order(&k, 1, Lifecycle::Paid)), "round trip");

    // A retry of the same write is refused as a duplicate and adds nothing.
    assert_eq!(store.commit(&first).await, Err(StoreError::Duplicate));

    // A writer that read version 0 loses to the one that wrote version 1, and writes nothing.
    let stale =
        OrderWrite { order: Some(order(&k, 1, Lifecycle::Cancelled)), history: history(&k, 2, "m2"), ..first.clone() };
    assert_eq!(store.commit(&stale).await, Err(StoreError::Conflict));
    assert_eq!(store.get(&k).await.unwrap().and_then(|o| o.lifecycle), Some(Lifecycle::Paid));

    // Retrying with the right version succeeds.
    let retry = OrderWrite { order: Some(order(&k, 2, Lifecycle::Shipped)), expected_version: 1, ..stale.clone() };
    store.commit(&retry).await.unwrap();

    // A history-only write (stale event) leaves the order alone.
    let only_history = OrderWrite { order: None, expected_version: 2, history: history(&k, 0, "m0"), ..first.clone() };
    store.commit(&only_history).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap().map(|o| o.version), Some(2));

    // Counters of committed writes only: m1 and m0 (m2 conflicted once, then committed).
    let month = stats.month(Source::Douyin, day(1)).await.unwrap();
    let applied: i64 = month.iter().filter(|d| d.day == Some(day(11))).map(|d| d.get(&applied_name)).sum();
    assert_eq!(applied, 3, "three committed writes each added 1; refused ones added nothing");

    // More history, then page through it two at a time: oldest first, nothing lost or repeated.
    for (minute, id) in [(5, "m5"), (3, "m3"), (4, "m4")] {
        let w = OrderWrite {
            order: None,
            expected_version: 2,
            history: history(&k, minute, id),
            counters: vec![],
            ..first.clone()
        };
        store.commit(&w).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.history(&k, cursor.as_deref(), 2).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|h| h.message_id.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4", "m5"]);
    let one = store.history_entry(&k, t(3), &MessageId::parse("m3").unwrap()).await.unwrap();
    assert_eq!(one, Some(history(&k, 3, "m3")), "one entry by its time and id");
    assert_eq!(store.history_entry(&k, t(3), &MessageId::parse("m9").unwrap()).await.unwrap(), None);
    assert!(pages >= 3, "six entries in pages of two");
    let other = key(ns, "1002");
    assert!(store.history(&other, None, 10).await.unwrap().items.is_empty(), "history is per order");
}

/// Two writers that read the same version: exactly one wins.
pub async fn order_store_concurrency(store: &dyn OrderStore, ns: &str) {
    let k = key(ns, "2001");
    let base = OrderWrite {
        key: k.clone(),
        order: Some(order(&k, 1, Lifecycle::Paid)),
        expected_version: 0,
        history: history(&k, 1, "c0"),
        due: vec![],
        counters: vec![],
        outbox: vec![],
        shard: 0,
    };
    store.commit(&base).await.unwrap();
    let writers: Vec<OrderWrite> = (0..6)
        .map(|n| OrderWrite {
            order: Some(order(&k, 2, Lifecycle::Packing)),
            expected_version: 1,
            history: history(&k, 10 + n, &format!("c{}", n + 1)),
            ..base.clone()
        })
        .collect();
    let results = futures::future::join_all(writers.iter().map(|w| store.commit(w))).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one of concurrent writers wins: {results:?}");
    assert!(results.iter().all(|r| r.is_ok() || *r == Err(StoreError::Conflict)));
    assert_eq!(store.history(&k, None, 100).await.unwrap().items.len(), 2, "losers leave no history");
}

/// The outbox: events written with a change are listed until published, per shard, oldest
/// first; a refused duplicate write adds none.
pub async fn outbox(store: &dyn OrderStore, ns: &str) {
    let k = key(ns, "5001");
    let shard = 5;
    let event = |minute: i64| DomainEvent::SlaBreached {
        key: k.clone(),
        state: Lifecycle::Paid,
        since: t(minute),
        limit_minutes: 30,
    };
    let write = |id: &str, version: u64, events: Vec<DomainEvent>| {
        let mut order = Order::new(k.clone(), t(1));
        order.version = version + 1;
        OrderWrite {
            key: k.clone(),
            order: Some(order),
            expected_version: version,
            history: history(&k, 1, id),
            due: vec![],
            counters: vec![],
            outbox: events,
            shard,
        }
    };
    store.commit(&write(&format!("{ns}-o1"), 0, vec![event(1), event(2)])).await.unwrap();
    assert_eq!(store.commit(&write(&format!("{ns}-o1"), 1, vec![event(3)])).await, Err(StoreError::Duplicate));
    let listed = store.unpublished(shard, t(100), None, 100).await.unwrap().items;
    let mut mine: Vec<DomainEvent> = listed.into_iter().filter(|u| u.key == k).map(|u| u.event).collect();
    // Events of one commit share its time: among them, no order is promised.
    mine.sort_by_key(DomainEvent::id);
    let mut both = vec![event(1), event(2)];
    both.sort_by_key(DomainEvent::id);
    assert_eq!(mine, both, "both; the duplicate wrote none");
    assert!(
        store.unpublished(shard, t(0), None, 100).await.unwrap().items.iter().all(|u| u.key != k),
        "not before written"
    );
    store.published(&[(k.clone(), event(1).id())]).await.unwrap();
    let left: Vec<DomainEvent> = store
        .unpublished(shard, t(100), None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|u| u.key == k)
        .map(|u| u.event)
        .collect();
    assert_eq!(left, vec![event(2)]);
    store.published(&[(k.clone(), event(2).id()), (k.clone(), "ev-never-written".into())]).await.unwrap();
    assert!(store.unpublished(shard, t(100), None, 100).await.unwrap().items.iter().all(|u| u.key != k));
}

/// Due markers: only what is due, earliest first, per kind and shard, paged; cleared when resolved.
pub async fn due_markers(store: &dyn OrderStore, ns: &str) {
    // A shard of our own so other tests' (and earlier runs') markers do not show up.
    let shard = 1000
        + u16::try_from(ns.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 30_000).unwrap();
    let mut expected = Vec::new();
    for n in 0..7i64 {
        let k = key(ns, &format!("30{n}"));
        let due_at = t(100 - n * 10);
        let marker =
            DueMarker { key: k.clone(), kind: DueKind::RefundCheck, due_at, shard, note: Some("Requested".into()) };
        let write = OrderWrite {
            key: k.clone(),
            order: Some(order(&k, 1, Lifecycle::Paid)),
            expected_version: 0,
            history: history(&k, 1, "d1"),
            due: vec![DueChange::Set(marker)],
            counters: vec![],
            outbox: vec![],
            shard: 0,
        };
        store.commit(&write).await.unwrap();
        if due_at <= t(70) {
            expected.push((due_at, k));
        }
    }
    expected.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.due(DueKind::RefundCheck, shard, t(70), cursor.as_deref(), 2).await.unwrap();
        seen.extend(page.items.iter().map(|m| (m.due_at, m.key.clone())));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected, "due at or before the time, earliest first, across pages");
    assert!(store.due(DueKind::Sla, shard, t(1000), None, 10).await.unwrap().items.is_empty(), "per kind");
    assert!(store.due(DueKind::RefundCheck, shard + 1, t(1000), None, 10).await.unwrap().items.is_empty(), "per shard");

    // A sweeper clears a marker only while it is still due at the time it saw.
    let (seen_at, second) = expected[1].clone();
    assert!(
        !store.clear_due(&second, DueKind::RefundCheck, seen_at + Duration::seconds(1), &[]).await.unwrap(),
        "moved"
    );
    assert!(store.clear_due(&second, DueKind::RefundCheck, seen_at, &[]).await.unwrap());
    assert!(!store.clear_due(&second, DueKind::RefundCheck, seen_at, &[]).await.unwrap(), "already gone");
    expected.remove(1);

    // Resolving clears the marker.
    let (_, first) = expected[0].clone();
    let clear = OrderWrite {
        key: first.clone(),
        order: Some(order(&first, 2, Lifecycle::Shipped)),
        expected_version: 1,
        history: history(&first, 2, "d2"),
        due: vec![DueChange::Clear(DueKind::RefundCheck)],
        counters: vec![],
        outbox: vec![],
        shard: 0,
    };
    store.commit(&clear).await.unwrap();
    let after = store.due(DueKind::RefundCheck, shard, t(70), None, 100).await.unwrap();
    assert_eq!(after.items.len(), expected.len() - 1);
    assert!(after.items.iter().all(|m| m.key != first));

    // A marker set on its own ("re-check now") is found like the others.
    let now_marker = DueMarker { key: first.clone(), kind: DueKind::TrustRecheck, due_at: t(5), shard, note: None };
    store.set_due(&now_marker).await.unwrap();
    let found = store.due(DueKind::TrustRecheck, shard, t(6), None, 10).await.unwrap();
    assert_eq!(found.items, vec![now_marker]);
}

/// App signals and address sign history: idempotent records, windows, newest-first history.
pub async fn signals(store: &dyn SignalStore, stats: &dyn Stats, ns: &str) {
    let customer = format!("{ns}-cust");
    let counter_name = ns_counter(ns);
    let signal = |n: i64, kind| SignalRecord {
        message_id: MessageId::parse(&format!("sig{n}")).unwrap(),
        kind,
        at: t(n),
        order: Some(key(ns, "5001")),
        location: (kind == AppSignalKind::GpsPing).then_some(GeoPoint { lat: 30.27, lng: 120.15 }),
        accuracy_m: (kind == AppSignalKind::GpsPing).then_some(25.0),
    };
    let counters = |n: i64| vec![counter(Source::App, day(11), u16::try_from(n).unwrap() % 8, &counter_name, 1)];
    for (n, kind) in [(1, AppSignalKind::AppOpened), (5, AppSignalKind::GpsPing), (9, AppSignalKind::LogisticsViewed)] {
        store.record_signal(&customer, &signal(n, kind), &counters(n)).await.unwrap();
    }
    // A redelivered signal changes nothing, counters included.
    store.record_signal(&customer, &signal(5, AppSignalKind::GpsPing), &counters(5)).await.unwrap();
    let found = store.signals(&customer, t(1), t(5)).await.unwrap();
    assert_eq!(
        found,
        vec![signal(1, AppSignalKind::AppOpened), signal(5, AppSignalKind::GpsPing)],
        "inclusive window, oldest first"
    );
    assert!(store.signals(&format!("{ns}-other"), t(0), t(100)).await.unwrap().is_empty(), "per customer");
    let month = stats.month(Source::App, day(11)).await.unwrap();
    assert_eq!(month.iter().map(|d| d.get(&counter_name)).sum::<i64>(), 3);

    let addr = format!("{ns}-addr");
    let sign = |n: i64, kind| AddressSign {
        at: t(n),
        order: key(ns, &format!("60{n}")),
        kind,
        station: Some("菜鸟驿站(幸福里店)".into()),
        score: 55,
    };
    assert_eq!(store.record_sign(&addr, "2026-11", &sign(1, SignKind::ParcelStation), true).await.unwrap(), 1);
    assert_eq!(
        store.record_sign(&addr, "2026-11", &sign(1, SignKind::ParcelStation), true).await.unwrap(),
        1,
        "idempotent"
    );
    assert_eq!(store.record_sign(&addr, "2026-11", &sign(2, SignKind::Recipient), false).await.unwrap(), 1);
    assert_eq!(store.record_sign(&addr, "2026-11", &sign(3, SignKind::Locker), true).await.unwrap(), 2);
    assert_eq!(store.record_sign(&addr, "2026-11", &sign(4, SignKind::ProxyPerson), true).await.unwrap(), 3);
    assert_eq!(store.proxy_receipts(&addr, "2026-11").await.unwrap(), 3);
    assert_eq!(store.proxy_receipts(&addr, "2026-12").await.unwrap(), 0, "per month");
    let last: Vec<i64> =
        store.address_signs(&addr, 3).await.unwrap().iter().map(|s| (s.at - t(0)).num_minutes()).collect();
    assert_eq!(last, [4, 3, 2], "the last three, newest first");
}

/// Reservations: reserving twice is a no-op, releasing happens exactly once.
pub async fn inventory(store: &dyn InventoryStore, ns: &str) {
    let k = key(ns, "4001");
    let sku = Sku::parse("SKU-RED-M").unwrap();
    let other = Sku::parse("SKU-BLUE-L").unwrap();
    let line = |sku: &Sku, qty| Reservation {
        key: k.clone(),
        line: LineId::of_sku(sku),
        sku: sku.clone(),
        qty,
        reserved_at: t(1),
        released_at: None,
        released_by: None,
    };
    store.reserve(&[line(&sku, 2), line(&other, 1)]).await.unwrap();
    store.reserve(&[line(&sku, 5)]).await.unwrap();
    let mut lines = store.reservations(&k).await.unwrap();
    lines.sort_by(|a, b| a.sku.cmp(&b.sku));
    assert_eq!(
        lines.iter().map(|r| (r.sku.as_str(), r.qty)).collect::<Vec<_>>(),
        [("SKU-BLUE-L", 1), ("SKU-RED-M", 2)]
    );

    let (red, blue) = (LineId::of_sku(&sku), LineId::of_sku(&other));
    let release = |lines: Vec<LineId>, at, reason| {
        let store = &store;
        let k = &k;
        async move { store.release(k, &lines, at, reason, &[]).await.unwrap() }
    };
    assert_eq!(release(vec![red.clone()], t(5), "refund").await, ReleaseOutcome::Released);
    assert_eq!(release(vec![red.clone()], t(6), "ops").await, ReleaseOutcome::AlreadyReleased);
    let missing = LineId::parse("SKU-NONE").unwrap();
    assert_eq!(release(vec![missing.clone()], t(6), "ops").await, ReleaseOutcome::NotReserved);
    // All or none: one line gone means nothing of the others is released.
    assert_eq!(release(vec![blue.clone(), red.clone()], t(6), "ops").await, ReleaseOutcome::AlreadyReleased);
    assert_eq!(release(vec![blue.clone(), missing], t(6), "ops").await, ReleaseOutcome::NotReserved);
    assert!(store.reservations(&k).await.unwrap().iter().any(|r| r.line == blue && r.released_at.is_none()));
    let released = store.reservations(&k).await.unwrap().into_iter().find(|r| r.sku == sku).unwrap();
    assert_eq!(released.released_at, Some(t(5)), "the first release's time is kept");
    assert_eq!(released.released_by.as_deref(), Some("refund"), "and its reason");

    // Two lines of the same SKU are two reservations, released one by one.
    let twin = Reservation { line: LineId::parse("4001-2").unwrap(), ..line(&sku, 3) };
    store.reserve(std::slice::from_ref(&twin)).await.unwrap();
    assert_eq!(store.reservations(&k).await.unwrap().len(), 3);
    assert_eq!(release(vec![twin.line.clone()], t(7), "refund").await, ReleaseOutcome::Released);

    // Concurrent releases of the same line: exactly one wins.
    let blue_only = [blue];
    let results =
        futures::future::join_all((0..5).map(|n| store.release(&k, &blue_only, t(10 + n), "refund", &[]))).await;
    let released = results.iter().filter(|r| **r == Ok(ReleaseOutcome::Released)).count();
    assert_eq!(released, 1, "{results:?}");
}

/// Clearing a due marker adds its counters in the same write: once, never on a retry.
pub async fn due_counts(store: &dyn OrderStore, stats: &dyn Stats, ns: &str) {
    let k = key(ns, "3901");
    let name = ns_counter(&format!("{ns}-due"));
    let marker = DueMarker { key: k.clone(), kind: DueKind::Sla, due_at: t(30), shard: 3, note: None };
    store.set_due(&marker).await.unwrap();
    let counted = [counter(Source::Douyin, day(11), 3, &name, 1)];
    assert!(store.clear_due(&k, DueKind::Sla, t(30), &counted).await.unwrap());
    assert!(!store.clear_due(&k, DueKind::Sla, t(30), &counted).await.unwrap(), "the retry of an applied removal");
    let total: i64 = stats.month(Source::Douyin, day(1)).await.unwrap().iter().map(|d| d.get(&name)).sum();
    assert_eq!(total, 1, "counted with the removal, once");
}

/// A release writes its counters with it, once: a retry of the same release (its answer lost)
/// and a release refused for one line add nothing.
pub async fn release_counts(inventory: &dyn InventoryStore, stats: &dyn Stats, ns: &str) {
    let k = key(ns, "4101");
    let name = ns_counter(&format!("{ns}-release"));
    let lines: Vec<LineId> = (1..=3).map(|n| LineId::parse(&format!("4101-{n}")).unwrap()).collect();
    let reservations: Vec<Reservation> = lines
        .iter()
        .map(|line| Reservation {
            key: k.clone(),
            line: line.clone(),
            sku: Sku::parse("SKU-RED-M").unwrap(),
            qty: 1,
            reserved_at: t(1),
            released_at: None,
            released_by: None,
        })
        .collect();
    inventory.reserve(&reservations).await.unwrap();
    let counted = vec![counter(Source::Douyin, day(11), 1, &name, 2)];
    let first = inventory.release(&k, &lines[..2], t(5), "refund", &counted).await.unwrap();
    assert_eq!(first, ReleaseOutcome::Released);
    let retried = inventory.release(&k, &lines[..2], t(5), "refund", &counted).await.unwrap();
    assert_eq!(retried, ReleaseOutcome::AlreadyReleased, "the retry of an applied release");
    let overlapping = inventory.release(&k, &lines[1..], t(6), "refund", &counted).await.unwrap();
    assert_eq!(overlapping, ReleaseOutcome::AlreadyReleased, "one of its lines went before");
    let total: i64 = stats.month(Source::Douyin, day(1)).await.unwrap().iter().map(|d| d.get(&name)).sum();
    assert_eq!(total, 2, "counted with the one release that happened, once");
    let open = inventory.reservations(&k).await.unwrap().into_iter().filter(|r| r.released_at.is_none()).count();
    assert_eq!(open, 1, "the refused release left its other line reserved");
}

/// Counters sum over shards per day within the month; reports round-trip.
pub async fn stats(stats: &dyn Stats, ns: &str) {
    let name = ns_counter(ns);
    let adds: Vec<CounterAdd> = (0..8)
        .map(|shard| counter(Source::Kuaishou, day(3), shard, &name, 2))
        .chain([counter(Source::Kuaishou, day(4), 0, &name, 5), counter(Source::Kuaishou, day(3), 0, &name, -1)])
        .chain([counter(Source::Kuaishou, NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(), 0, &name, 100)])
        .collect();
    stats.add(&adds).await.unwrap();
    let month = stats.month(Source::Kuaishou, day(20)).await.unwrap();
    let total = |d: NaiveDate| month.iter().filter(|m| m.day == Some(d)).map(|m| m.get(&name)).sum::<i64>();
    assert_eq!(total(day(3)), 15, "eight shards of 2, minus 1");
    assert_eq!(total(day(4)), 5);
    assert!(month.iter().all(|m| m.day.is_some_and(|d| d >= day(1))), "other months excluded");
    assert!(month.windows(2).all(|w| w[0].day < w[1].day), "one entry per day, in order");

    let bad = counter(Source::Kuaishou, day(3), 0, "Bad Name", 1);
    assert!(matches!(stats.add(&[bad]).await, Err(StoreError::Rejected(_))));

    // Once per token: the same work counted again (a retry whose answer was lost) adds nothing.
    let once = format!("{name}_once");
    let adds = [counter(Source::Kuaishou, day(5), 1, &once, 1), counter(Source::Kuaishou, day(5), 2, &once, 3)];
    let token = format!("{ns}#breach#1");
    stats.add_once(&token, &adds).await.unwrap();
    stats.add_once(&token, &adds).await.unwrap();
    stats.add_once(&format!("{ns}#breach#2"), &adds[..1]).await.unwrap();
    let month = stats.month(Source::Kuaishou, day(20)).await.unwrap();
    let counted: i64 = month.iter().map(|m| m.get(&once)).sum();
    assert_eq!(counted, 5, "4 once for the first token, 1 for the second");

    let report = StoredReport {
        kind: format!("test-{ns}"),
        period: "2026-11".into(),
        json: "{\"ok\":true}".into(),
        rendered: "# 报告".into(),
    };
    stats.put_report(&report).await.unwrap();
    let replaced = StoredReport { json: "{\"ok\":false}".into(), ..report.clone() };
    stats.put_report(&replaced).await.unwrap();
    assert_eq!(stats.report(&report.kind, "2026-11").await.unwrap(), Some(replaced));
    assert_eq!(stats.report(&report.kind, "2026-10").await.unwrap(), None);
}

/// Once-a-day markers: the first claimant wins the day; its own retry re-claims; nobody else
/// does until its lease lapses unconfirmed; a confirmed marker holds for the rest of the day;
/// another day is another marker.
pub async fn daily_markers(stats: &dyn Stats, ns: &str) {
    let raw = RawStatus::new("tag", format!("{ns}-999"));
    let marker = crate::ports::DailyMarker::unmapped(day(11), Source::Douyin, &raw);
    let lease = Duration::minutes(15);
    assert!(stats.claim_daily(&marker, "order-a", t(0), lease).await.unwrap(), "first of the day");
    assert!(!stats.claim_daily(&marker, "order-b", t(1), lease).await.unwrap(), "another order waits");
    assert!(stats.claim_daily(&marker, "order-a", t(2), lease).await.unwrap(), "the claimant's redelivery");
    assert!(stats.claim_daily(&marker, "order-b", t(20), lease).await.unwrap(), "unconfirmed past the lease");
    stats.confirm_daily(&marker, "order-a").await.unwrap(); // late, and no longer the holder: ignored
    assert!(!stats.claim_daily(&marker, "order-c", t(30), lease).await.unwrap(), "order-b holds it");
    stats.confirm_daily(&marker, "order-b").await.unwrap();
    for (who, minute) in [("order-b", 41), ("order-c", 600)] {
        assert!(!stats.claim_daily(&marker, who, t(minute), lease).await.unwrap(), "published: {who}");
    }
    let tomorrow = crate::ports::DailyMarker::unmapped(day(12), Source::Douyin, &raw);
    assert!(stats.claim_daily(&tomorrow, "order-c", t(601), lease).await.unwrap(), "another day");
}

fn callback(ns: &str, minute: i64, body: &[u8]) -> RawCallback {
    RawCallback {
        source: Source::Youzan,
        shop: ShopId::parse(&format!("{ns}-shop")).unwrap(),
        received_at: t(minute),
        query: vec![("order".into(), "douyin/s/1".into())],
        headers: vec![("event-sign".into(), "abc".into()), ("client-id".into(), "cid".into())],
        body: body.to_vec(),
    }
}

/// Inbox: claims with leases (a delivery in flight is not a duplicate; a retried write whose
/// answer was lost is still ours; a lease that ran out is taken over; done is a duplicate),
/// quarantine with quota, window paging.
pub async fn inbox(inbox: &dyn Inbox, ns: &str) {
    let message = |n: u32| Accepted {
        message_id: MessageId::parse(&format!("{ns}-msg-{n}")).unwrap(),
        callback: callback(ns, 1, b"{\"a\":1}"),
        key_slot: Some("current".into()),
        opened: None,
    };
    let shop = ShopId::parse(&format!("{ns}-shop")).unwrap();
    let (now, lease) = (t(10), t(11));
    let accepted = message(1);
    assert_eq!(inbox.claim(&accepted, "a", lease, now).await.unwrap(), Claim::Claimed);
    let archived = inbox.archived(Source::Youzan, &shop, &accepted.message_id).await.unwrap();
    assert_eq!(archived, Some(accepted.clone()), "archived whole");
    assert_eq!(inbox.claim(&accepted, "a", lease, now).await.unwrap(), Claim::Claimed, "our own write, answer lost");
    assert_eq!(inbox.claim(&accepted, "b", t(12), now).await.unwrap(), Claim::InFlight { until: lease });
    inbox.complete(&accepted, "a").await.unwrap();
    assert_eq!(inbox.claim(&accepted, "c", t(12), now).await.unwrap(), Claim::Done);
    assert_eq!(inbox.claim(&accepted, "a", t(12), t(20)).await.unwrap(), Claim::Done, "done never expires");

    // A failed enqueue ends the lease: the sender's retry is taken at once.
    let failed = message(2);
    assert_eq!(inbox.claim(&failed, "a", lease, now).await.unwrap(), Claim::Claimed);
    inbox.abandon(&failed, "a").await.unwrap();
    assert_eq!(inbox.claim(&failed, "b", lease, now).await.unwrap(), Claim::Claimed);
    inbox.abandon(&failed, "a").await.unwrap();
    assert_eq!(inbox.claim(&failed, "c", lease, now).await.unwrap(), Claim::InFlight { until: lease }, "not b's");

    // A delivery that died mid-way: its lease runs out, the next one takes over; the dead one's
    // late mark counts for nothing.
    let died = message(3);
    assert_eq!(inbox.claim(&died, "a", lease, now).await.unwrap(), Claim::Claimed);
    assert_eq!(inbox.claim(&died, "b", t(13), t(12)).await.unwrap(), Claim::Claimed);
    inbox.complete(&died, "a").await.unwrap();
    assert_eq!(inbox.claim(&died, "c", t(14), t(12)).await.unwrap(), Claim::InFlight { until: t(13) });
    inbox.complete(&died, "b").await.unwrap();
    assert_eq!(inbox.claim(&died, "c", t(14), t(12)).await.unwrap(), Claim::Done);

    // Many marked done at once (a pull's window, more than one transaction's worth); one of
    // them taken over by another attempt after its lease ran out stays that attempt's.
    let window: Vec<Accepted> = (100..230).map(message).collect();
    for one in &window {
        assert_eq!(inbox.claim(one, "w", lease, now).await.unwrap(), Claim::Claimed);
    }
    assert_eq!(inbox.claim(&window[7], "x", t(13), t(12)).await.unwrap(), Claim::Claimed);
    inbox.complete_many(&window.iter().collect::<Vec<_>>(), "w").await.unwrap();
    assert_eq!(inbox.claim(&window[0], "y", t(12), now).await.unwrap(), Claim::Done);
    assert_eq!(inbox.claim(&window[129], "y", t(12), now).await.unwrap(), Claim::Done);
    assert_eq!(inbox.claim(&window[7], "y", t(14), t(12)).await.unwrap(), Claim::InFlight { until: t(13) }, "x's");

    // Concurrent first deliveries: exactly one holds it.
    let raced = message(4);
    let attempts = ["p", "q", "r", "s"];
    let claims = futures::future::join_all(attempts.iter().map(|a| inbox.claim(&raced, a, lease, now))).await;
    assert_eq!(claims.iter().filter(|c| **c == Ok(Claim::Claimed)).count(), 1, "{claims:?}");

    // The largest body the door takes, with nothing to compress, and an opened payload as
    // large: one record keeps both whole (binary, not UTF-8), with 10 KiB of headers.
    let noise = |seed: u64| -> Vec<u8> {
        let mut x = seed;
        (0..crate::app::intake::MAX_BODY_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    };
    let big = noise(0x9e37_79b9_7f4a_7c15);
    let mut worst = callback(ns, 2, &big);
    worst.headers.push(("x-padding".into(), "h".repeat(10 * 1024)));
    let large = Accepted {
        message_id: MessageId::parse(&format!("{ns}-msg-big")).unwrap(),
        callback: worst,
        key_slot: None,
        opened: Some(noise(0x2545_f491_4f6c_dd1d)),
    };
    assert_eq!(inbox.claim(&large, "a", lease, now).await.unwrap(), Claim::Claimed);
    assert_eq!(
        inbox.archived(Source::Youzan, &shop, &large.message_id).await.unwrap(),
        Some(large.clone()),
        "a 192 KiB incompressible body and its opened payload come back byte for byte"
    );

    let q = |n: i64| Quarantined {
        id: format!("q{n}"),
        callback: callback(ns, n, format!("{{\"n\":{n}}}").as_bytes()),
        reason: "signature mismatch".into(),
        bucket: format!("{ns}-shop@203.0.113.0/24"),
    };
    for n in 0..5 {
        assert_eq!(inbox.quarantine(&q(n), 100).await.unwrap(), QuarantineOutcome::Stored);
    }
    // The hourly quota: minutes 0..5 are one hour; 5 used, quota 6 leaves one.
    assert_eq!(inbox.quarantine(&q(5), 6).await.unwrap(), QuarantineOutcome::Stored);
    assert_eq!(inbox.quarantine(&q(6), 6).await.unwrap(), QuarantineOutcome::OverQuota);
    // Another sender network has its own quota: junk from elsewhere cannot use up the platform's.
    let elsewhere = Quarantined { bucket: format!("{ns}-shop@198.51.100.0/24"), ..q(7) };
    assert_eq!(inbox.quarantine(&elsewhere, 6).await.unwrap(), QuarantineOutcome::Stored);
    let shop = ShopId::parse(&format!("{ns}-shop")).unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = inbox.quarantined(Source::Youzan, &shop, t(1), t(5), cursor.as_deref(), 3).await.unwrap();
        seen.extend(page.items.iter().map(|x| (x.id.clone(), x.callback.body.clone())));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<(String, Vec<u8>)> =
        (1..5).map(|n| (format!("q{n}"), format!("{{\"n\":{n}}}").into_bytes())).collect();
    assert_eq!(seen, expected, "[from, to) window, oldest first, whole bodies");
    let found = inbox.quarantined(Source::Youzan, &shop, t(2), t(3), None, 10).await.unwrap().items;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].callback.headers, callback(ns, 2, b"").headers, "headers kept");
    inbox.release_quarantined(&found[0]).await.unwrap();
    assert!(inbox.quarantined(Source::Youzan, &shop, t(2), t(3), None, 10).await.unwrap().items.is_empty());
}

/// What a test can observe on the far side of a bus or queue.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Bodies (queue) or detail JSON (bus) received since the last call.
    async fn received(&self) -> Vec<String>;
}

/// The bus: every event of a large batch arrives (the adapter splits into requests of ten).
pub async fn publisher(publisher: &dyn EventPublisher, probe: &dyn Probe, ns: &str) {
    let events: Vec<DomainEvent> = (0..23)
        .map(|n| DomainEvent::WebhookRejected {
            source: Source::Douyin,
            shop: Some(format!("{ns}-{n}")),
            rejection: crate::model::callback::Rejection::Unverified,
            reason: "signature mismatch".into(),
            at: t(n),
        })
        .collect();
    let failed = publisher.publish(&events).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let want: BTreeSet<String> = (0..23).map(|n| format!("{ns}-{n}")).collect();
    let mut got = BTreeSet::new();
    let mut deadline = Deadline::after(StdDuration::from_secs(10));
    loop {
        for detail in probe.received().await {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&detail)
                && let Some(shop) = value.get("shop").and_then(|s| s.as_str())
                && shop.starts_with(ns)
            {
                got.insert(shop.to_owned());
            }
        }
        if got == want {
            break;
        }
        deadline.tick("every published event arrives").await;
    }
}

/// A queue: a batch larger than one request's limit arrives whole, with attributes.
pub async fn queue(queue: &dyn Queue, probe: &dyn Probe, ns: &str) {
    let messages: Vec<OutboundMessage> = (0..13)
        .map(|n| OutboundMessage {
            id: format!("e{n}"),
            body: format!("{{\"ns\":\"{ns}\",\"n\":{n}}}"),
            attributes: vec![("source".into(), "douyin".into())],
        })
        .collect();
    let failed = queue.send(&messages).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let want: BTreeSet<String> = messages.iter().map(|m| m.body.clone()).collect();
    let mut got = BTreeSet::new();
    let mut deadline = Deadline::after(StdDuration::from_secs(10));
    loop {
        got.extend(probe.received().await.into_iter().filter(|b| want.contains(b)));
        if got == want {
            break;
        }
        deadline.tick("every sent message arrives").await;
    }
    let huge = OutboundMessage { id: "big".into(), body: "x".repeat(300 * 1024), attributes: vec![] };
    assert!(queue.send(&[huge]).await.is_err(), "an oversized message is refused, not truncated");
}

/// Parameters: missing is `None`, put overwrites, values come back exactly (SecureString).
pub async fn secrets(secrets: &dyn Secrets, ns: &str) {
    let name = format!("/orderhub/test/sources/youzan/{ns}");
    assert_eq!(secrets.get(&name).await.unwrap(), None);
    secrets.put(&name, r#"{"secret":"第一"}"#).await.unwrap();
    secrets.put(&name, r#"{"secret":"第二"}"#).await.unwrap();
    assert_eq!(secrets.get(&name).await.unwrap().as_deref(), Some(r#"{"secret":"第二"}"#));
}

/// order-sync's records: checkpoints written only at the version read, the token ledger's lease
/// held by one run at a time and committed only by its holder, a subscription claimed once per
/// waybill (again only after tracking stopped), summary marks conditional on their version.
pub async fn sync_records<S>(store: &S, ns: &str)
where
    S: crate::ports::sync::CheckpointStore
        + crate::ports::sync::TokenLedger
        + crate::ports::sync::SubscriptionStore
        + crate::ports::sync::SummaryMarks,
{
    use crate::model::sync::{Checkpoint, Claim, Feed, Lease, TokenRecord};
    use crate::ports::sync::CheckpointStore;

    let shop = ShopId::parse(&format!("{ns}-shop")).unwrap();
    let source = Source::Pdd;
    // Checkpoints.
    let fresh = CheckpointStore::checkpoint(store, source, &shop, Feed::Orders).await.unwrap();
    assert_eq!((fresh.version, fresh.through), (0, None), "never pulled");
    let first = Checkpoint { through: Some(t(10)), version: 1, ..Checkpoint::new(source, shop.clone(), Feed::Orders) };
    store.save_checkpoint(&first, 0).await.unwrap();
    assert_eq!(store.save_checkpoint(&first, 0).await, Err(StoreError::Conflict), "created once");
    let leased = Checkpoint {
        through: Some(t(40)),
        version: 2,
        lease: Some(Lease { owner: "run-a".into(), until: t(45) }),
        ..first.clone()
    };
    store.save_checkpoint(&leased, 1).await.unwrap();
    let stale = Checkpoint { through: Some(t(70)), version: 2, ..first.clone() };
    assert_eq!(
        store.save_checkpoint(&stale, 1).await,
        Err(StoreError::Conflict),
        "a run that read version 1 is too late"
    );
    let failed = Checkpoint {
        version: 3,
        lease: None,
        failures: 2,
        backoff_until: Some(t(50)),
        last_error: Some("platform error 70031".into()),
        ..leased.clone()
    };
    store.save_checkpoint(&failed, 2).await.unwrap();
    assert_eq!(CheckpointStore::checkpoint(store, source, &shop, Feed::Orders).await.unwrap(), failed);
    // The ledger.
    let record = TokenRecord {
        source,
        shop: shop.clone(),
        version: 1,
        access_expires_at: Some(t(100)),
        refresh_expires_at: Some(t(1000)),
        lease: None,
        last_error: None,
        warned_on: None,
    };
    assert!(store.register(&record).await.unwrap());
    assert!(!store.register(&record).await.unwrap(), "registered once");
    let roster = store.roster(source).await.unwrap();
    assert!(roster.tokens.iter().any(|r| r.shop == shop) && roster.checkpoints.iter().any(|c| c.shop == shop));
    let a = Lease { owner: "a".into(), until: t(2) };
    let b = Lease { owner: "b".into(), until: t(3) };
    assert!(!store.lease(source, &shop, 0, &a, t(0)).await.unwrap(), "not at the version read");
    assert!(store.lease(source, &shop, 1, &a, t(0)).await.unwrap());
    // A retry of the same lease (its answer lost, the SDK sends it again) is still a's.
    assert!(store.lease(source, &shop, 1, &a, t(0)).await.unwrap(), "a's own lease, taken again");
    assert!(!store.lease(source, &shop, 1, &b, t(1)).await.unwrap(), "held by a");
    assert_eq!(store.commit(&TokenRecord { version: 2, ..record.clone() }, "b").await, Err(StoreError::Conflict));
    store.commit(&TokenRecord { version: 2, access_expires_at: Some(t(200)), ..record.clone() }, "a").await.unwrap();
    let now = store.token(source, &shop).await.unwrap().unwrap();
    assert_eq!((now.version, now.lease, now.access_expires_at), (2, None, Some(t(200))));
    assert!(store.lease(source, &shop, 2, &b, t(1)).await.unwrap());
    store.release(source, &shop, "b", "refresh_token已过期").await.unwrap();
    let released = store.token(source, &shop).await.unwrap().unwrap();
    assert_eq!(released.lease, None);
    assert_eq!(released.last_error.as_deref(), Some("refresh_token已过期"));
    let day = t(0).date_naive();
    assert!(store.warned(source, &shop, day).await.unwrap());
    assert!(!store.warned(source, &shop, day).await.unwrap(), "once a day");
    // Subscriptions.
    let number = format!("{ns}-YT1");
    let claim = |owner: &str, until| Lease { owner: owner.into(), until };
    assert!(
        matches!(store.claim("yuantong", &number, None, &claim("x", t(5)), t(0)).await.unwrap(), Claim::Claimed(s) if s.attempts == 1)
    );
    assert_eq!(store.claim("yuantong", &number, None, &claim("y", t(5)), t(1)).await.unwrap(), Claim::Busy);
    store.failed("yuantong", &number, "x", "HTTP 502").await.unwrap();
    assert!(
        matches!(store.claim("yuantong", &number, None, &claim("y", t(8)), t(2)).await.unwrap(), Claim::Claimed(s) if s.attempts == 2)
    );
    store.subscribed("yuantong", &number, "y", t(3)).await.unwrap();
    assert_eq!(
        store.claim("yuantong", &number, None, &claim("z", t(9)), t(4)).await.unwrap(),
        Claim::Done,
        "once per waybill"
    );
    assert_eq!(
        store.claim("yuantong", &number, Some(t(2)), &claim("z", t(9)), t(4)).await.unwrap(),
        Claim::Done,
        "stopped before that subscription"
    );
    assert!(
        matches!(
            store.claim("yuantong", &number, Some(t(30)), &claim("z", t(40)), t(31)).await.unwrap(),
            Claim::Claimed(_)
        ),
        "tracking stopped since"
    );
    // Summary marks.
    let channel = Source::Douyin;
    let mark_day = NaiveDate::from_ymd_opt(2026, 11, 11).unwrap();
    let (_, version) = store.mark(channel, mark_day).await.unwrap();
    store.set_mark(channel, mark_day, (5, 2), version).await.unwrap();
    assert_eq!(store.set_mark(channel, mark_day, (6, 2), version).await, Err(StoreError::Conflict));
    assert_eq!(store.mark(channel, mark_day).await.unwrap(), ((5, 2), version + 1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{MemoryInbox, MemoryPublisher, MemoryQueue, MemorySecrets, MemoryStore};

    #[tokio::test]
    async fn memory_order_store_honours_the_contract() {
        let store = MemoryStore::default();
        order_store(&store, &store, "mem").await;
        order_store_concurrency(&store, "mem").await;
        due_markers(&store, "mem").await;
        due_counts(&store, &store, "mem").await;
        outbox(&store, "mem").await;
    }

    #[tokio::test]
    async fn memory_inventory_and_stats_honour_the_contract() {
        let store = MemoryStore::default();
        inventory(&store, "mem").await;
        release_counts(&store, &store, "mem").await;
        stats(&store, "mem").await;
        daily_markers(&store, "mem").await;
    }

    #[tokio::test]
    async fn memory_signals_honour_the_contract() {
        let store = MemoryStore::default();
        signals(&store, &store, "mem").await;
    }

    #[tokio::test]
    async fn memory_inbox_honours_the_contract() {
        inbox(&MemoryInbox::default(), "mem").await;
    }

    struct PublishedProbe<'a>(&'a MemoryPublisher, std::sync::Mutex<usize>);

    #[async_trait::async_trait]
    impl Probe for PublishedProbe<'_> {
        async fn received(&self) -> Vec<String> {
            let all = self.0.published();
            let mut seen = self.1.lock().unwrap();
            let new = all[*seen..].iter().map(|e| e.detail().to_string()).collect();
            *seen = all.len();
            new
        }
    }

    struct QueueProbe<'a>(&'a MemoryQueue);

    #[async_trait::async_trait]
    impl Probe for QueueProbe<'_> {
        async fn received(&self) -> Vec<String> {
            self.0.drain().into_iter().map(|m| m.body).collect()
        }
    }

    #[tokio::test]
    async fn memory_sync_records_honour_the_contract() {
        sync_records(&crate::testing::memory::MemorySync::default(), "mem").await;
    }

    #[tokio::test]
    async fn memory_bus_queue_and_secrets_honour_the_contract() {
        let bus = MemoryPublisher::default();
        publisher(&bus, &PublishedProbe(&bus, std::sync::Mutex::new(0)), "mem").await;
        assert_eq!(bus.calls(), 3, "23 events go out in 3 requests of at most 10");
        let q = MemoryQueue::default();
        queue(&q, &QueueProbe(&q), "mem").await;
        secrets(&MemorySecrets::default(), "mem").await;
    }
}
