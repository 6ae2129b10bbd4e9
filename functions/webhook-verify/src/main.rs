//! webhook-verify's Lambda entry point: read config, build clients and ports once, serve.

use adapters::{BusPublisher, Clients, DynamoInbox, DynamoStats, SqsQueue, SsmSecrets};
use domain::app::intake::Intake;
use domain::ports::clock::{Clock, SystemClock};
use domain::ports::secrets::SecretCache;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    adapters::metrics::init("webhook-verify");
    let config = webhook_verify::Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let inbox = DynamoInbox::new(clients.dynamodb.clone(), &config.inbox_table);
    let queue = SqsQueue::new(clients.sqs.clone(), &config.inbound_queue_url);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    let stats = DynamoStats::new(clients.dynamodb.clone(), &config.stats_table);
    let ssm = SsmSecrets::new(clients.ssm.clone());
    let clock = SystemClock;
    let secrets = SecretCache::new(&ssm, &clock, &config.stage, chrono::Duration::seconds(config.secret_ttl_s));
    let intake = Intake {
        inbox: &inbox,
        queue: &queue,
        events: &bus,
        stats: &stats,
        secrets: &secrets,
        quarantine_quota_per_hour: config.quarantine_quota_per_hour,
        clock: &clock,
        lease: chrono::Duration::seconds(config.lease_s),
        budget: std::time::Duration::from_millis(config.budget_ms),
        shards: config.shards,
    };
    let (intake, clock, requests) = (&intake, &clock, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let answer = webhook_verify::handle(intake, event.payload, clock.now()).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        adapters::metrics::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
