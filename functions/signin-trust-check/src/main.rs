//! signin-trust-check's Lambda entry point: read config, build clients and ports once, serve.

use adapters::{BusPublisher, Clients, DynamoInbox, DynamoStore, SqsQueue};
use domain::normalize::{Normalizer, Rules};
use domain::time::SystemClock;
use domain::trustcheck::TrustChecker;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use signin_trust_check::{App, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let store = DynamoStore::for_resources(clients.dynamodb.clone(), &config.resources);
    let inbox = DynamoInbox::new(clients.dynamodb.clone(), &config.inbox_table);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    let notify = SqsQueue::new(clients.sqs.clone(), &config.notify_queue_url);
    let clock = SystemClock;
    let rules = Rules { shards: config.resources.shards, ..Rules::default() };
    let normalizer = Normalizer {
        orders: &store,
        inventory: &store,
        stats: &store,
        inbox: &inbox,
        signals: &store,
        clock: &clock,
        rules: &rules,
    };
    let app = App {
        checker: TrustChecker { normalizer: &normalizer, signals: &store, notify: &notify, rules: &config.trust },
        events: &bus,
    };
    let (app, requests) = (&app, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let answer = app.handle(event.payload).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        Ok::<_, Error>(answer)
    }))
    .await
}
