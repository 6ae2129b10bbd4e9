//! health-report's Lambda entry point: read config, build clients and ports once, serve.

use adapters::metrics::MeteredBus;
use adapters::pages::S3Pages;
use adapters::{BusPublisher, Clients, DynamoStats};
use domain::app::health_report::HealthReporting;
use domain::ports::ReportPages;
use domain::ports::clock::SystemClock;
use health_report::Config;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    adapters::metrics::init("health-report");
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let stats = DynamoStats::new(clients.dynamodb.clone(), &config.stats_table).with_shards(config.shards);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    // Health breaches that went out are a metric.
    let bus = MeteredBus::new(&bus);
    let link_ttl = std::time::Duration::from_secs(config.link_days * 24 * 3600);
    let pages = config.report_bucket.as_deref().map(|bucket| S3Pages::new(clients.s3(), bucket, link_ttl));
    let clock = SystemClock;
    let reporting = HealthReporting {
        stats: &stats,
        events: &bus,
        clock: &clock,
        thresholds: &config.thresholds,
        silence: &config.silence,
        pages: pages.as_ref().map(|p| p as &dyn ReportPages),
    };
    tracing::info!(stage = %config.stage, "health-report ready");
    let (reporting, requests) = (&reporting, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let answer = health_report::handle(reporting, event.payload).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        adapters::metrics::flush();
        answer.map_err(Error::from)
    }))
    .await
}
