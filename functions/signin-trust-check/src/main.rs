//! signin-trust-check's Lambda entry point: read config, build clients and ports once, serve.

use adapters::metrics::{MeteredBus, MeteredOrders};
use adapters::{BusPublisher, Clients, DynamoTables, SqsDeadLetters, SqsQueue};
use domain::app::announce::Announce;
use domain::app::apply::{ApplyChange, WritePorts};
use domain::app::dead_letters::DeadLetterOps;
use domain::app::sign_check::SignCheck;
use domain::ports::clock::SystemClock;
use domain::rules::timing::Rules;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use signin_trust_check::{Config, Handler};

/// Time kept back from Lambda's deadline to publish the batch's events and answer.
const MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    adapters::metrics::init("signin-trust-check");
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let tables = DynamoTables::new(clients.dynamodb.clone(), &config.resources);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    // Publishes, then clears the outbox entries of what went out.
    // What went out and what was committed are the function's metrics.
    let metered_bus = MeteredBus::new(&bus);
    let orders = MeteredOrders::new(&tables.orders);
    let announce = Announce { bus: &metered_bus, orders: &tables.orders };
    let notify = SqsQueue::new(clients.sqs.clone(), &config.notify_queue_url);
    let dead_letters = SqsDeadLetters::new(clients.sqs.clone(), &config.trust_dlq_url);
    let trust_queue = SqsQueue::new(clients.sqs.clone(), &config.trust_queue_url);
    let clock = SystemClock;
    let rules = Rules { shards: config.resources.shards, ..Rules::default() };
    let handler = Handler {
        checker: SignCheck {
            write: ApplyChange::new(WritePorts { orders: &orders, ..tables.write_ports(&clock) }, &rules),
            signals: &tables.signals,
            notify: &notify,
            rules: &config.trust,
        },
        events: &announce,
        letters: DeadLetterOps { dead_letters: &dead_letters, source: &trust_queue },
    };
    let (handler, requests) = (&handler, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let time_left = adapters::lambda::time_left(event.context.deadline, MARGIN);
        let answer = handler.handle_within(event.payload, time_left).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        adapters::metrics::flush();
        answer.map_err(Error::from)
    }))
    .await
}
