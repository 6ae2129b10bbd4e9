//! The local stack as the test script left it: `AWS_ENDPOINT_URL` and the resource names the
//! template set (exported from `.stack/env` by `scripts/test.sh`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use adapters::Clients;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The local stack's environment. Fails with a clear message when the stack is not up.
pub fn env() -> HashMap<String, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.is_empty() && std::env::var("ORDERS_TABLE").is_ok(),
        "the local AWS stack is not running: run the tests with scripts/test.sh (it starts moto and creates the stack)"
    );
    std::env::vars().collect()
}

/// A variable of the stack's environment.
pub fn var(name: &str) -> String {
    env().get(name).cloned().unwrap_or_else(|| panic!("{name} is not set by the local stack"))
}

/// SDK clients pointed at the local stack.
pub async fn clients() -> Clients {
    let _ = env();
    Clients::from_env().await
}

/// Every DynamoDB store over the stack's tables.
pub fn tables(clients: &Clients) -> adapters::DynamoTables {
    adapters::DynamoTables::from_names(
        clients.dynamodb.clone(),
        &var("ORDERS_TABLE"),
        &var("STATS_TABLE"),
        &var("INBOX_TABLE"),
    )
}

/// A namespace unique to this process and call, so tests never collide in shared tables.
pub fn namespace(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Creates a fresh SQS queue and returns its URL.
pub async fn scratch_queue(clients: &Clients, name: &str) -> String {
    clients.sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

/// Receives whatever is on a queue now (deleting it), as bodies.
pub async fn drain(clients: &Clients, url: &str) -> Vec<String> {
    let out = clients
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for message in out.messages() {
        if let Some(handle) = message.receipt_handle() {
            clients.sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.unwrap();
        }
        bodies.extend(message.body().map(str::to_owned));
    }
    bodies
}

/// Receives everything on a queue (deleting it) until it is empty, as bodies.
pub async fn drain_all(clients: &Clients, url: &str) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        let bodies = drain(clients, url).await;
        if bodies.is_empty() {
            return all;
        }
        all.extend(bodies);
    }
}

/// A private copy of one of the stack's tables (same keys, indexes and TTL, read from the live
/// table the template created), for tests whose sweeps must see only their own due markers.
pub async fn private_table(clients: &Clients, env_var: &str, ns: &str) -> String {
    use aws_sdk_dynamodb::types::{BillingMode, GlobalSecondaryIndex, TimeToLiveSpecification};
    let source = var(env_var);
    let table = clients.dynamodb.describe_table().table_name(&source).send().await.unwrap().table.unwrap();
    let name = format!("{source}-{ns}");
    let mut create = clients
        .dynamodb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(table.attribute_definitions().to_vec()))
        .set_key_schema(Some(table.key_schema().to_vec()));
    for index in table.global_secondary_indexes() {
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(index.index_name().unwrap_or_default())
            .set_key_schema(Some(index.key_schema().to_vec()))
            .set_projection(index.projection().cloned())
            .build()
            .unwrap();
        create = create.global_secondary_indexes(gsi);
    }
    create.send().await.unwrap();
    let ttl = clients.dynamodb.describe_time_to_live().table_name(&source).send().await.unwrap();
    if let Some(attribute) = ttl.time_to_live_description().and_then(|d| d.attribute_name()) {
        let spec = TimeToLiveSpecification::builder().attribute_name(attribute).enabled(true).build().unwrap();
        clients.dynamodb.update_time_to_live().table_name(&name).time_to_live_specification(spec).send().await.unwrap();
    }
    name
}
