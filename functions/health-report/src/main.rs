//! health-report's Lambda entry point: read config, build clients and ports once, serve.

use adapters::{BusPublisher, Clients, DynamoStats};
use domain::app::health_report::HealthReporting;
use domain::ports::clock::SystemClock;
use health_report::Config;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let stats = DynamoStats::new(clients.dynamodb.clone(), &config.stats_table).with_shards(config.shards);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    let clock = SystemClock;
    let reporting = HealthReporting {
        stats: &stats,
        events: &bus,
        clock: &clock,
        thresholds: &config.thresholds,
        silence: &config.silence,
    };
    tracing::info!(stage = %config.stage, "health-report ready");
    let (reporting, requests) = (&reporting, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let answer = health_report::handle(reporting, event.payload).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        answer.map_err(Error::from)
    }))
    .await
}
