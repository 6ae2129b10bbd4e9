//! The ports' contract suite, run against the AWS adapters on the local stack.

use adapters::{BusPublisher, SqsQueue, SsmSecrets};
use domain::testing::contract::{self, Probe};
use tests::stack::{self, clients, namespace, tables};

#[tokio::test]
async fn dynamodb_order_store_honours_the_contract() {
    let clients = clients().await;
    let tables = tables(&clients);
    contract::order_store(&tables.orders, &tables.stats, &namespace("orders")).await;
    contract::order_store_concurrency(&tables.orders, &namespace("race")).await;
    contract::due_markers(&tables.orders, &namespace("due")).await;
    contract::due_counts(&tables.orders, &tables.stats, &namespace("duec")).await;
    contract::outbox(&tables.orders, &namespace("outbox")).await;
}

#[tokio::test]
async fn dynamodb_inventory_and_stats_honour_the_contract() {
    let clients = clients().await;
    let tables = tables(&clients);
    contract::inventory(&tables.inventory, &namespace("inv")).await;
    contract::release_counts(&tables.inventory, &tables.stats, &namespace("relc")).await;
    contract::stats(&tables.stats, &namespace("stats")).await;
    contract::daily_markers(&tables.stats, &namespace("daily")).await;
}

#[tokio::test]
async fn dynamodb_signals_honour_the_contract() {
    let clients = clients().await;
    let tables = tables(&clients);
    contract::signals(&tables.signals, &tables.stats, &namespace("signals")).await;
}

#[tokio::test]
async fn dynamodb_sync_records_honour_the_contract() {
    let clients = clients().await;
    let ns = namespace("sync");
    let table = stack::private_table(&clients, "SYNC_TABLE", &ns).await;
    contract::sync_records(&adapters::DynamoSync::new(clients.dynamodb.clone(), table), &ns).await;
}

#[tokio::test]
async fn dynamodb_inbox_honours_the_contract() {
    let clients = clients().await;
    contract::inbox(&tables(&clients).inbox, &namespace("inbox")).await;
}

struct QueueProbe {
    clients: adapters::Clients,
    url: String,
    detail_only: bool,
}

#[async_trait::async_trait]
impl Probe for QueueProbe {
    async fn received(&self) -> Vec<String> {
        let bodies = stack::drain(&self.clients, &self.url).await;
        if !self.detail_only {
            return bodies;
        }
        // EventBridge delivers the whole event envelope; the contract looks at `detail`.
        bodies
            .iter()
            .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .filter_map(|v| v.get("detail").map(ToString::to_string))
            .collect()
    }
}

#[tokio::test]
async fn sqs_queue_honours_the_contract() {
    let clients = clients().await;
    let ns = namespace("queue");
    let url = stack::scratch_queue(&clients, &ns).await;
    let queue = SqsQueue::new(clients.sqs.clone(), url.clone());
    contract::queue(&queue, &QueueProbe { clients: clients.clone(), url, detail_only: false }, &ns).await;
}

#[tokio::test]
async fn eventbridge_publisher_honours_the_contract() {
    let clients = clients().await;
    let ns = namespace("bus");
    let bus = stack::var("EVENT_BUS_NAME");
    // A rule of our own on the stack's bus, delivering to a scratch queue we can read.
    let url = stack::scratch_queue(&clients, &ns).await;
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();
    clients
        .eventbridge
        .put_rule()
        .name(&ns)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["orderhub"],"detail-type":["WebhookRejected"]}"#)
        .send()
        .await
        .unwrap();
    clients
        .eventbridge
        .put_targets()
        .rule(&ns)
        .event_bus_name(&bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("probe").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let publisher = BusPublisher::new(clients.eventbridge.clone(), bus);
    let before = clients.requests.snapshot().get("EventBridge.PutEvents").copied().unwrap_or(0);
    contract::publisher(&publisher, &QueueProbe { clients: clients.clone(), url, detail_only: true }, &ns).await;
    let after = clients.requests.snapshot().get("EventBridge.PutEvents").copied().unwrap_or(0);
    assert_eq!(after - before, 3, "23 events in 3 PutEvents requests of at most 10");
}

#[tokio::test]
async fn ssm_secrets_honour_the_contract() {
    let clients = clients().await;
    contract::secrets(&SsmSecrets::new(clients.ssm.clone()), &namespace("ssm")).await;
}
