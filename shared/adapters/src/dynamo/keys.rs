//! The key formats of every item: the one place they are written.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use domain::{MessageId, OrderKey, Source};

/// The partition key of an order and everything filed under it.
pub fn order_pk(key: &OrderKey) -> String {
    format!("O#{}#{}#{}", key.source, key.shop, key.order_id)
}

/// The dedupe record of a callback: its source, shop and message id (`M#{source}#{shop}#{id}`).
pub fn message_key(source: Source, shop: &domain::ShopId, message_id: &MessageId) -> String {
    format!("M#{source}#{shop}#{message_id}")
}

/// The sort key of one order line's reservation (`R#{line}`; before lines, the line was the SKU).
pub fn reservation_sort_key(line: &domain::model::ids::LineId) -> String {
    format!("R#{line}")
}

/// The sort key of an event kept in an order's outbox.
pub fn outbox_sort_key(event_id: &str) -> String {
    format!("X#{event_id}")
}

/// The sort key of a history entry: oldest first, then by message id.
pub fn history_sort_key(event_time: DateTime<Utc>, message_id: &MessageId) -> String {
    format!("H#{}#{}", event_time.format("%Y-%m-%dT%H:%M:%S%.3fZ"), message_id)
}

/// The sort key of a due marker in its index: earliest first.
pub fn due_sort_key(due_at: DateTime<Utc>) -> String {
    due_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The partition key of one shard of a channel's day counters of one month: the shard in the
/// partition key spreads a channel's writes at a peak over `COUNTER_SHARDS` partitions (a
/// partition takes about 1 000 write units/s), and a report reads channels x months x shards.
pub fn stats_pk(channel: Source, day: NaiveDate, shard: u16) -> String {
    format!("D#{channel}#{:04}-{:02}#{shard}", day.year(), day.month())
}

/// The partition key of the once-a-day markers of a Beijing day (`M#2026-11-11`).
pub fn daily_pk(day: NaiveDate) -> String {
    format!("M#{day}")
}

/// A notify record in the inbox table: `N#{kind}#{id}` (kinds: `ev`, `out`, `esc`, `sms`, `rate`,
/// `once`).
pub fn notify_pk(kind: &str, id: &str) -> String {
    format!("N#{kind}#{id}")
}

/// A notify fold in the inbox table: `N#fold#{id}`.
pub fn notify_fold_pk(id: &str) -> String {
    format!("N#fold#{id}")
}

/// The due index partition of one kind of notify record (`gsi1pk`): `N#due#{kind}`.
pub fn notify_due_pk(kind: &str) -> String {
    format!("N#due#{kind}")
}

/// The due index sort key: earliest first, then by id.
pub fn notify_due_sort_key(due_at: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", due_sort_key(due_at))
}

/// notify's day counters in the inbox table: `N#count#{yyyy-mm-dd}` (Beijing day).
pub fn notify_count_pk(day: NaiveDate) -> String {
    format!("N#count#{day}")
}

/// A customer's contact for notices in the inbox table: `N#contact#{customer}`.
pub fn contact_pk(customer: &str) -> String {
    format!("N#contact#{customer}")
}
