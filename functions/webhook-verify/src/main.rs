//! webhook-verify's Lambda entry point: read config, build clients, serve.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = webhook_verify::Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let _clients = adapters::Clients::from_env().await;
    tracing::info!(stage = %config.stage, "webhook-verify ready");
    lambda_http::run(service_fn(|_request: Request| async move {
        Response::builder()
            .status(503)
            .header("content-type", "application/json")
            .body(Body::from("{\"error\":\"not ready\"}"))
            .map_err(Error::from)
    }))
    .await
}
