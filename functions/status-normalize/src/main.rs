//! status-normalize's Lambda entry point: read config, build clients, serve.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config =
        status_normalize::Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let _clients = adapters::Clients::from_env().await;
    tracing::info!(stage = %config.resources.stage, "status-normalize ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        let _ = event;
        Ok::<_, Error>(serde_json::json!({"status": "not ready"}))
    }))
    .await
}
