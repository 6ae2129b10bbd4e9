//! status-normalize's Lambda entry point: read config, build clients and ports once, serve.

use adapters::{BusPublisher, Clients, DynamoInbox, DynamoStore, SqsQueue};
use domain::normalize::Normalizer;
use domain::time::SystemClock;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use status_normalize::{App, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let store = DynamoStore::for_resources(clients.dynamodb.clone(), &config.resources);
    let inbox = DynamoInbox::new(clients.dynamodb.clone(), &config.inbox_table);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    let dead_letter = SqsQueue::new(clients.sqs.clone(), &config.dead_letter_url);
    let clock = SystemClock;
    let app = App {
        normalizer: Normalizer {
            orders: &store,
            inventory: &store,
            stats: &store,
            inbox: &inbox,
            signals: &store,
            clock: &clock,
            rules: &config.rules,
        },
        events: &bus,
        dead_letter: &dead_letter,
        stats: &store,
    };
    let (app, requests) = (&app, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let answer = app.handle(event.payload).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        Ok::<_, Error>(answer)
    }))
    .await
}
