//! refund-dual-check's Lambda entry point: read config, build clients and ports once, serve.

use std::time::Duration;

use adapters::metrics::{MeteredBus, MeteredOrders};
use adapters::{BusPublisher, Clients, DynamoSync, DynamoTables, SsmSecrets};
use domain::app::announce::Announce;
use domain::app::apply::{ApplyChange, WritePorts};
use domain::app::refund_check::{RefundCheck, RefundRules};
use domain::app::tokens::{TokenKeeper, TokenPorts, TokenRules};
use domain::ports::clock::SystemClock;
use domain::ports::platform::PlatformQuery;
use domain::ports::pull::TokenRefresh;
use domain::ports::secrets::SecretCache;
use domain::rules::timing::Rules;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use refund_dual_check::{Config, Handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    adapters::metrics::init("refund-dual-check");
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
    let ssm = SsmSecrets::new(clients.ssm.clone());
    let clock = SystemClock;
    let rules = Rules { shards: config.resources.shards, ..Rules::default() };
    let secrets =
        SecretCache::new(&ssm, &clock, &config.resources.stage, chrono::Duration::seconds(config.secret_ttl_s));
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
    let refund_rules = RefundRules {
        pending_recheck_after: chrono::Duration::minutes(config.pending_recheck_minutes),
        concurrency: config.shop_concurrency,
        ..RefundRules::default()
    };
    let handler = Handler {
        checker: RefundCheck {
            write: ApplyChange::new(WritePorts { orders: &orders, ..tables.write_ports(&clock) }, &rules),
            platforms: &platforms,
            tokens: &tokens,
            rules: &refund_rules,
        },
        events: &announce,
        release_concurrency: config.release_concurrency,
    };
    let (handler, requests) = (&handler, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let answer = handler.handle(event.payload).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        adapters::metrics::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
