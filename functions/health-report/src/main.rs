//! health-report's Lambda entry point: read config, build clients and ports once, serve.

use adapters::{BusPublisher, Clients, DynamoStore};
use domain::time::SystemClock;
use health_report::{App, Config};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let store = DynamoStore::for_resources(clients.dynamodb.clone(), &config.resources);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    let clock = SystemClock;
    let app =
        App { stats: &store, events: &bus, clock: &clock, thresholds: &config.thresholds, silence: &config.silence };
    tracing::info!(stage = %config.resources.stage, "health-report ready");
    let (app, requests) = (&app, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let answer = app.handle(event.payload).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        answer.map_err(Error::from)
    }))
    .await
}
