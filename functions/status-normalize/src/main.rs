//! status-normalize's Lambda entry point: read config, build clients and ports once, serve.

use std::time::Duration;

use adapters::metrics::{MeteredBus, MeteredOrders};
use adapters::{BusPublisher, Clients, DynamoSync, DynamoTables, SqsDeadLetters, SqsQueue, SsmSecrets};
use domain::app::announce::Announce;
use domain::app::apply::{ApplyChange, WritePorts};
use domain::app::apply_message::ApplyMessage;
use domain::app::dead_letters::DeadLetterOps;
use domain::app::order_lines::PlatformLines;
use domain::app::tokens::{TokenKeeper, TokenPorts, TokenRules};
use domain::ports::clock::SystemClock;
use domain::ports::platform::PlatformQuery;
use domain::ports::pull::TokenRefresh;
use domain::ports::secrets::SecretCache;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use status_normalize::{Config, Handler};

/// Time kept back from Lambda's deadline to publish the batch's events and answer.
const MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    adapters::metrics::init("status-normalize");
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let timeout = Duration::from_millis(config.platform_timeout_ms);
    let platform_clients =
        adapters::platform::build_clients(&config.api_urls, timeout).unwrap_or_else(|(source, err)| {
            adapters::config::exit(&adapters::ConfigError::Malformed {
                var: "platform API URL",
                reason: format!("{source}: {err}"),
            })
        });
    let platforms: Vec<&dyn PlatformQuery> = platform_clients.iter().filter_map(|c| c.query.as_deref()).collect();
    let refreshers: Vec<&dyn TokenRefresh> =
        platform_clients.iter().map(|c| c.feed.as_ref() as &dyn TokenRefresh).collect();
    let clients = Clients::from_env().await;
    let tables = DynamoTables::new(clients.dynamodb.clone(), &config.resources);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    // Publishes, then clears the outbox entries of what went out.
    // What went out and what was committed are the function's metrics.
    let metered_bus = MeteredBus::new(&bus);
    let orders = MeteredOrders::new(&tables.orders);
    let announce = Announce { bus: &metered_bus, orders: &tables.orders };
    let dead_letter = SqsQueue::new(clients.sqs.clone(), &config.dead_letter_url);
    let dead_letters = SqsDeadLetters::new(clients.sqs.clone(), &config.dead_letter_url);
    let inbound = SqsQueue::new(clients.sqs.clone(), &config.inbound_url);
    let ssm = SsmSecrets::new(clients.ssm.clone());
    let clock = SystemClock;
    let secrets =
        SecretCache::new(&ssm, &clock, &config.resources.stage, chrono::Duration::seconds(config.secret_ttl_s));
    // A paid order that names only its line ids gets its lines from the platform, with the
    // shop's tokens from the token keeper: an expired one is refreshed under the ledger's lease
    // (into the shop's own token parameter), so the order is not held until someone else does.
    let ledger = DynamoSync::new(clients.dynamodb.clone(), &config.sync_table);
    let token_rules = TokenRules {
        refresh_before: chrono::Duration::minutes(config.token_refresh_before_minutes),
        ..TokenRules::default()
    };
    let tokens = TokenKeeper::new(
        TokenPorts { ledger: &ledger, params: &ssm, secrets: &secrets, refreshers: &refreshers, clock: &clock },
        &config.resources.stage,
        token_rules,
        adapters::config::instance_name(),
    );
    let lines = PlatformLines { platforms: &platforms, tokens: &tokens };
    let handler = Handler {
        messages: ApplyMessage::new(ApplyChange::new(
            WritePorts { orders: &orders, ..tables.write_ports(&clock) },
            &config.rules,
        ))
        .with_lines(&lines),
        events: &announce,
        dead_letter: &dead_letter,
        letters: DeadLetterOps { dead_letters: &dead_letters, source: &inbound },
        stats: &tables.stats,
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
