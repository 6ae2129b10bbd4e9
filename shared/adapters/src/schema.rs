//! The names the code relies on: key attributes, index, TTL attribute, and which template
//! resource and environment variable each table and queue comes from. A test checks these
//! against `infra/template.yaml` and against the tables the local stack created from it.

/// Partition key attribute of every table.
pub const PK: &str = "pk";
/// Sort key attribute (orders and stats tables).
pub const SK: &str = "sk";
/// The one secondary index (sparse: only items that have its keys are in it).
pub const GSI1: &str = "gsi1";
/// Its partition key.
pub const GSI1_PK: &str = "gsi1pk";
/// Its sort key.
pub const GSI1_SK: &str = "gsi1sk";
/// TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";

/// A table as the code uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSchema {
    /// Logical id in `infra/template.yaml`.
    pub logical_id: &'static str,
    /// Environment variable that carries its name.
    pub env: &'static str,
    /// Sort key attribute, if any.
    pub sort_key: Option<&'static str>,
    /// Whether it has `gsi1`.
    pub gsi1: bool,
}

/// Every table.
pub const TABLES: [TableSchema; 4] = [
    TableSchema { logical_id: "OrdersTable", env: "ORDERS_TABLE", sort_key: Some(SK), gsi1: true },
    TableSchema { logical_id: "InboxTable", env: "INBOX_TABLE", sort_key: None, gsi1: true },
    TableSchema { logical_id: "StatsTable", env: "STATS_TABLE", sort_key: Some(SK), gsi1: false },
    TableSchema { logical_id: "SyncTable", env: "SYNC_TABLE", sort_key: Some(SK), gsi1: false },
];

/// A queue as the code uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSchema {
    /// Logical id in `infra/template.yaml`.
    pub logical_id: &'static str,
    /// Environment variable that carries its URL.
    pub env: &'static str,
    /// Logical id of its dead-letter queue.
    pub dlq: &'static str,
}

/// Every queue.
pub const QUEUES: [QueueSchema; 3] = [
    QueueSchema { logical_id: "InboundQueue", env: "INBOUND_QUEUE_URL", dlq: "InboundDeadLetterQueue" },
    QueueSchema { logical_id: "TrustQueue", env: "TRUST_QUEUE_URL", dlq: "TrustDeadLetterQueue" },
    QueueSchema { logical_id: "NotifyQueue", env: "NOTIFY_QUEUE_URL", dlq: "NotifyDeadLetterQueue" },
];

/// Logical id of the event bus; its name comes in `EVENT_BUS_NAME`.
pub const EVENT_BUS: &str = "EventBus";
