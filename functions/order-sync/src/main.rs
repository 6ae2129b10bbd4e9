//! order-sync's Lambda entry point: read config, build clients and ports once, serve.

use std::time::Duration;

use adapters::platform::{ClientConfig, Kuaidi100Client};
use adapters::{BusPublisher, Clients, DynamoSync, DynamoTables, SqsQueue, SsmSecrets};
use domain::app::subscribe_tracking::{SubscribeTracking, TrackingConfig, TrackingPorts, TrackingRules};
use domain::app::sync_channel::{SyncChannel, SyncPorts, SyncRules};
use domain::app::tokens::{TokenKeeper, TokenPorts, TokenRules};
use domain::ports::clock::SystemClock;
use domain::ports::pull::{ChangeFeed, TokenRefresh};
use domain::ports::secrets::SecretCache;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use order_sync::{Config, Handler};

/// Time kept back from the invocation's deadline for the last checkpoint write and the answer.
const MARGIN: Duration = Duration::from_secs(3);

fn bad_url(what: String) -> ! {
    adapters::config::exit(&adapters::ConfigError::Malformed { var: "platform API URL", reason: what })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let timeout = Duration::from_millis(config.platform_timeout_ms);
    let platform_clients = adapters::platform::build_clients(&config.api_urls, timeout)
        .unwrap_or_else(|(source, err)| bad_url(format!("{source}: {err}")));
    let feeds: Vec<&dyn ChangeFeed> = platform_clients.iter().map(|c| c.feed.as_ref()).collect();
    let refreshers: Vec<&dyn TokenRefresh> =
        platform_clients.iter().map(|c| c.feed.as_ref() as &dyn TokenRefresh).collect();
    let kuaidi100 = ClientConfig::new(&config.kuaidi100_url)
        .map(|c| c.with_timeout(timeout))
        .and_then(Kuaidi100Client::new)
        .unwrap_or_else(|err| bad_url(format!("kuaidi100: {err}")));
    let clients = Clients::from_env().await;
    let tables = DynamoTables::new(clients.dynamodb.clone(), &config.resources);
    let sync_store = DynamoSync::new(clients.dynamodb.clone(), &config.sync_table);
    let queue = SqsQueue::new(clients.sqs.clone(), &config.inbound_queue);
    let bus = BusPublisher::new(clients.eventbridge.clone(), &config.event_bus);
    let ssm = SsmSecrets::new(clients.ssm.clone());
    let clock = SystemClock;
    let secrets =
        SecretCache::new(&ssm, &clock, &config.resources.stage, chrono::Duration::seconds(config.secret_ttl_s));
    let instance = adapters::config::instance_name();
    let token_rules = TokenRules {
        refresh_before: chrono::Duration::minutes(config.token_refresh_before_minutes),
        warn_before: chrono::Duration::days(config.token_warn_days),
        ..TokenRules::default()
    };
    let tokens = TokenKeeper::new(
        TokenPorts { ledger: &sync_store, params: &ssm, secrets: &secrets, refreshers: &refreshers, clock: &clock },
        &config.resources.stage,
        token_rules,
        instance.clone(),
    );
    let sync_rules = SyncRules {
        cold_lookback: chrono::Duration::hours(config.cold_lookback_hours),
        overlap: chrono::Duration::seconds(config.overlap_s),
        concurrency: config.shop_concurrency,
        reserve: Duration::from_secs(config.reserve_s),
        ..SyncRules::default()
    };
    let tracking_config = TrackingConfig {
        webhook_base: config.webhook_base.clone(),
        key_parameter: config.kuaidi100_key_parameter.clone(),
        instance,
    };
    let tracking_rules = TrackingRules { shards: config.resources.shards, ..TrackingRules::default() };
    let handler = Handler {
        sync: SyncChannel {
            ports: SyncPorts {
                feeds: &feeds,
                checkpoints: &sync_store,
                tokens: &tokens,
                inbox: &tables.inbox,
                queue: &queue,
                clock: &clock,
            },
            rules: &sync_rules,
        },
        tokens: &tokens,
        tracking: SubscribeTracking {
            ports: TrackingPorts {
                orders: &tables.orders,
                subscriptions: &sync_store,
                carrier: &kuaidi100,
                secrets: &secrets,
                params: &ssm,
                stats: &tables.stats,
                clock: &clock,
            },
            config: &tracking_config,
            rules: &tracking_rules,
        },
        stats: &tables.stats,
        marks: &sync_store,
        events: &bus,
        clock: &clock,
    };
    let (handler, requests, fixed_budget) = (&handler, &clients.requests, config.budget_s.map(Duration::from_secs));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
        let budget = fixed_budget.unwrap_or_else(|| left.saturating_sub(MARGIN));
        tracing::info!(budget_ms = budget.as_millis(), deadline_ms = event.context.deadline, "invocation budget");
        let answer = handler.handle(event.payload, budget, &event.context.request_id).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        Ok::<_, Error>(answer)
    }))
    .await
}
