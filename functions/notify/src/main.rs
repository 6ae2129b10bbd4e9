//! notify's Lambda entry point: read config, build clients and adapters once, serve.

use std::sync::Arc;

use adapters::{Clients, SsmSecrets};
use domain::ports::clock::{Clock, SystemClock};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use notify::{Answer, Config, Wired};

/// Time kept back from Lambda's deadline to publish and answer.
const MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    adapters::metrics::init("notify");
    let config = Config::from_env(&adapters::ProcessEnv).unwrap_or_else(|e| adapters::config::exit(&e));
    let clients = Clients::from_env().await;
    let ssm = SsmSecrets::new(clients.ssm.clone());
    let clock = SystemClock;
    let shared_clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let wired =
        Wired::new(&config, &clients, &ssm, &clock, shared_clock).unwrap_or_else(|e| adapters::config::exit(&e));
    let handler = wired.handler();
    let (handler, requests) = (&handler, &clients.requests);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let time_left = adapters::lambda::time_left(event.context.deadline, MARGIN);
        let answer = handler.handle_within(event.payload, time_left).await;
        tracing::debug!(aws_requests = ?requests.take(), "invocation done");
        adapters::metrics::flush();
        match answer {
            // An async invocation that errs is retried by Lambda, then kept by the on-failure
            // destination (the dead-letter queue).
            Answer::Retry(retry) => Err(Error::from(retry.retry)),
            answer => Ok(answer),
        }
    }))
    .await
}
