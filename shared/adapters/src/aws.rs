//! SDK configuration and clients, built once per Lambda instance, plus a counter of the AWS
//! requests they send (for "requests per event" measurements and per-invocation logs).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts every HTTP request the SDK clients send (retries included), by `Service.Operation`,
/// and the time spent waiting for their answers.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    operations: Arc<Mutex<BTreeMap<String, u64>>>,
    waited: Arc<Mutex<BTreeMap<String, std::time::Duration>>>,
}

/// When the request in flight was sent (kept in the request's config bag).
#[derive(Debug, Clone, Copy)]
struct SentAt(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for SentAt {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>().map_or_else(|| "unknown".to_owned(), |m| format!("{}.{}", m.service(), m.name()))
}

impl RequestCounter {
    /// Counts since the last [`RequestCounter::take`].
    pub fn take(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default()
    }

    /// Operations (calls, each counted once however many attempts it took) since the last
    /// call: what the code asks for, where [`RequestCounter::take`] is what AWS bills.
    pub fn take_operations(&self) -> BTreeMap<String, u64> {
        self.operations.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default()
    }

    /// Counts so far, without resetting.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Total requests so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Time spent waiting for answers, per operation, since the last call.
    pub fn take_waited(&self) -> BTreeMap<String, std::time::Duration> {
        self.waited.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut operations) = self.operations.lock() {
            *operations.entry(operation(cfg)).or_default() += 1;
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(operation(cfg)).or_default() += 1;
        }
        cfg.interceptor_state().store_put(SentAt(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<
            '_,
        >,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(SentAt(sent)) = cfg.load::<SentAt>().copied()
            && let Ok(mut waited) = self.waited.lock()
        {
            *waited.entry(operation(cfg)).or_default() += sent.elapsed();
        }
        Ok(())
    }
}

/// Timeouts and retries of the SDK clients: every call ends well before the function's own
/// deadline (30 s; the front door's budget is 4 s), and retries back off from 50 ms, not the
/// SDK's default 1 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkLimits {
    /// The whole call, retries and backoff included (`TimeoutConfig::operation_timeout`).
    pub operation_timeout: Duration,
    /// One attempt (`TimeoutConfig::operation_attempt_timeout`).
    pub attempt_timeout: Duration,
    /// Establishing a connection (`TimeoutConfig::connect_timeout`).
    pub connect_timeout: Duration,
    /// Attempts in the standard retry mode, the first included (`RetryConfig::with_max_attempts`).
    pub max_attempts: u32,
    /// Base of the exponential backoff with full jitter (`RetryConfig::with_initial_backoff`;
    /// the SDK's default is 1 s).
    pub initial_backoff: Duration,
}

impl Default for SdkLimits {
    /// Operation 5 s, attempt 2 s, connect 1 s, 3 attempts, 50 ms backoff base.
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
        }
    }
}

impl SdkLimits {
    /// These limits as the SDK's timeout configuration.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(self.operation_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .connect_timeout(self.connect_timeout)
            .build()
    }

    /// These limits as the SDK's retry configuration (standard mode).
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard().with_max_attempts(self.max_attempts).with_initial_backoff(self.initial_backoff)
    }
}

/// The SDK clients of one function instance.
#[derive(Debug, Clone)]
pub struct Clients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// SSM Parameter Store.
    pub ssm: aws_sdk_ssm::Client,
    /// Requests sent by all of the above.
    pub requests: RequestCounter,
    /// The loaded configuration, for the clients only one function needs (S3: [`Clients::s3`]).
    sdk: aws_config::SdkConfig,
}

impl Clients {
    /// Loads region, credentials and endpoint (`AWS_ENDPOINT_URL` points everything at a local
    /// emulator) and builds the clients.
    pub async fn from_env() -> Self {
        let limits = SdkLimits::default();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(limits.timeout_config())
            .retry_config(limits.retry_config())
            .load()
            .await;
        Self::from_sdk_config(&sdk)
    }

    /// Builds the clients from a loaded configuration.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        let requests = RequestCounter::default();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(requests.clone()).build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk).interceptor(requests.clone()).build(),
        );
        let eventbridge = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(sdk).interceptor(requests.clone()).build(),
        );
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(sdk).interceptor(requests.clone()).build(),
        );
        Self { dynamodb, sqs, eventbridge, ssm, requests, sdk: sdk.clone() }
    }

    /// An S3 client over the same configuration and request counter, built on demand (only
    /// health-report stores pages, so no other function builds one at init). Against a local
    /// endpoint (`AWS_ENDPOINT_URL`) it addresses buckets by path, which an emulator on an IP
    /// address needs.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.sdk.endpoint_url().is_some())
            .interceptor(self.requests.clone())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// Maps an SDK error to "retry later" or "refused", without its (possibly long) text.
pub(crate) fn error_code<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> (bool, String)
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_owned();
            let retryable = matches!(
                code.as_str(),
                "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "ThrottlingException"
                    | "Throttling"
                    | "InternalServerError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "TransactionInProgressException"
                    | "TransactionConflictException"
                    | "RequestThrottled"
                    | "RequestThrottledException"
                    | "InternalException"
                    | "Unknown"
            );
            (retryable, code)
        }
        SdkError::ConstructionFailure(_) => (false, "ConstructionFailure".to_owned()),
        SdkError::TimeoutError(_) => (true, "Timeout".to_owned()),
        SdkError::DispatchFailure(_) => (true, "DispatchFailure".to_owned()),
        SdkError::ResponseError(_) => (true, "ResponseError".to_owned()),
        _ => (true, "Unknown".to_owned()),
    }
}
