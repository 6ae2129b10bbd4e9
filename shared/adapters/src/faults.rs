//! A fault-injecting HTTP client under the AWS SDK, for tests against the local stack (moto).
//!
//! [`FaultClient`] implements the SDK's `HttpClient` around the SDK's own default HTTPS client
//! (hyper 1 + rustls/aws-lc, the `default-https-client` one). For each request it reads the
//! operation from the `X-Amz-Target` header (every service orderhub calls speaks an AWS JSON
//! protocol), asks a seeded [`FaultPlan`] whether to inject a [`FaultKind`], and then either
//! forwards the request untouched or produces the failure real AWS produces: a connection that
//! fails before sending, a response lost after the request was applied, a throttle, a 500, a
//! transaction conflict, a slow or never-arriving response, or a partial batch failure. Every
//! injected fault is counted ([`FaultCounts`]) and the whole client can be switched off at run
//! time ([`FaultClient::set_enabled`]).
//!
//! [`sdk_config`] builds an `SdkConfig` over a `FaultClient` with explicit operation/attempt
//! timeouts and a standard retry mode ([`SdkLimits`]); `crate::Clients::from_sdk_config` turns
//! it into the usual clients.
//!
//! Retries draw on the SDK's retry quota, a token bucket shared by every client of a service in
//! the process (aws-smithy-runtime 1.16's `TokenBucket::default`: 500 tokens, 5 per retry, 10 per retry
//! after a timeout, given back on success). Sustained high fault rates empty it, and then the
//! SDK returns the error without retrying — as it would against AWS.
//!
//! Built only with the crate feature `faults`, which no function crate enables. Requests whose body
//! it rewrites (partial batch failures) keep the SigV4 signature of the original body, which
//! moto does not check and real AWS would refuse: this client is for the emulator only.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Value, json};

/// What the client does to one request instead of (or besides) forwarding it.
///
/// The order of the variants is the order in which rates are drawn (see [`FaultPlan::rate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The connection fails before the request is sent: not applied; the SDK sees a
    /// `DispatchFailure` (an IO `ConnectorError`) and retries.
    FailBeforeSend,
    /// The request is forwarded and applied, then its response is lost: the SDK sees a
    /// `DispatchFailure` (an IO `ConnectorError`) and retries a request that already happened.
    DropResponse,
    /// A throttling error, not forwarded: DynamoDB `ProvisionedThroughputExceededException`,
    /// SQS `RequestThrottled`, EventBridge and SSM `ThrottlingException` (all HTTP 400).
    Throttle,
    /// HTTP 500, not forwarded: DynamoDB and SSM `InternalServerError`, EventBridge
    /// `InternalException`, SQS `InternalFailure`.
    ServerError,
    /// DynamoDB `TransactWriteItems` only: `TransactionCanceledException` (HTTP 400, not
    /// forwarded) with one `TransactionConflict` reason and `None` for the other items. The SDK
    /// does not retry it.
    TransactionConflict,
    /// The request is forwarded and applied; its response arrives after [`FaultPlan::delay`].
    Delay,
    /// Not forwarded; the response never comes (a future that never resolves), so only the SDK's
    /// attempt or operation timeout ends the call.
    Hang,
    /// Forwarded and applied; then the response never comes.
    HangAfterApply,
    /// SQS `SendMessageBatch` and EventBridge `PutEvents` only: some entries (at least one,
    /// chosen by the plan's seed) are reported failed with the retryable code `InternalFailure`;
    /// only the other entries are forwarded, so exactly the entries reported successful are
    /// applied. When every entry fails, nothing is forwarded.
    PartialFailure,
}

impl FaultKind {
    /// Every kind, in drawing order.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::FailBeforeSend,
        FaultKind::DropResponse,
        FaultKind::Throttle,
        FaultKind::ServerError,
        FaultKind::TransactionConflict,
        FaultKind::Delay,
        FaultKind::Hang,
        FaultKind::HangAfterApply,
        FaultKind::PartialFailure,
    ];

    /// A short snake-case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::FailBeforeSend => "fail_before_send",
            FaultKind::DropResponse => "drop_response",
            FaultKind::Throttle => "throttle",
            FaultKind::ServerError => "server_error",
            FaultKind::TransactionConflict => "transaction_conflict",
            FaultKind::Delay => "delay",
            FaultKind::Hang => "hang",
            FaultKind::HangAfterApply => "hang_after_apply",
            FaultKind::PartialFailure => "partial_failure",
        }
    }

    /// Whether this kind can be injected into `operation` (a `Service.Operation` name).
    pub fn applies_to(self, operation: &str) -> bool {
        match self {
            FaultKind::TransactionConflict => operation == TRANSACT_WRITE_ITEMS,
            FaultKind::PartialFailure => operation == SEND_MESSAGE_BATCH || operation == PUT_EVENTS,
            _ => true,
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const TRANSACT_WRITE_ITEMS: &str = "DynamoDB.TransactWriteItems";
const SEND_MESSAGE_BATCH: &str = "SQS.SendMessageBatch";
const PUT_EVENTS: &str = "EventBridge.PutEvents";

/// Which faults to inject, where and how often; deterministic for a given seed.
///
/// Operations are named `Service.Operation` as the SDK's own metadata names them (and as
/// [`crate::RequestCounter`] counts them): `DynamoDB.PutItem`, `SQS.SendMessageBatch`,
/// `EventBridge.PutEvents`, `SSM.GetParameter`. The wire spelling of the `X-Amz-Target` header
/// is accepted too (`DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessage`, `AWSEvents.PutEvents`,
/// `AmazonSSM.GetParameter`). For rates, `Service.*` means every operation of a service and `*`
/// every operation.
///
/// For each request the client first takes the next step of the operation's script, if any
/// ([`FaultPlan::script`]); otherwise it draws from the rates. The `n`-th draw for an operation
/// is a pure function of (seed, operation, n), so a sequential run is reproduced exactly; with
/// concurrent calls the sequence of decisions per operation is the same but which call gets
/// which decision follows the scheduling.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    seed: u64,
    rates: BTreeMap<String, BTreeMap<FaultKind, f64>>,
    scripts: BTreeMap<String, VecDeque<Option<FaultKind>>>,
    delay: Duration,
}

impl FaultPlan {
    /// A plan that injects nothing yet, with this seed and a [`FaultKind::Delay`] of 500 ms.
    pub fn new(seed: u64) -> Self {
        Self { seed, rates: BTreeMap::new(), scripts: BTreeMap::new(), delay: Duration::from_millis(500) }
    }

    /// Injects `kind` into a fraction `rate` (0.0 ..= 1.0; clamped, NaN is 0) of the requests of
    /// `operation` (`Service.Operation`, `Service.*` or `*`). The most specific entry wins per
    /// kind: `rate("*", Throttle, 0.01).rate("DynamoDB.PutItem", Throttle, 0.2)` throttles 20 %
    /// of PutItems and 1 % of everything else. Kinds that do not apply to an operation
    /// ([`FaultKind::applies_to`]) are skipped for it. One uniform draw per request is compared
    /// with the running sum of the rates in [`FaultKind::ALL`] order, so rates of one operation
    /// should add up to at most 1 (beyond it, the later kinds are never drawn).
    pub fn rate(mut self, operation: &str, kind: FaultKind, rate: f64) -> Self {
        let rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        self.rates.entry(canonical(operation)).or_default().insert(kind, rate);
        self
    }

    /// The next requests of `operation` (exact `Service.Operation`), in order: `Some(kind)`
    /// injects `kind`, `None` forwards the request untouched. Consumed before any rate applies;
    /// a scripted kind that does not apply to the operation forwards the request. Calling it
    /// again for the same operation appends.
    pub fn script(mut self, operation: &str, steps: impl IntoIterator<Item = Option<FaultKind>>) -> Self {
        self.scripts.entry(canonical(operation)).or_default().extend(steps);
        self
    }

    /// How long a [`FaultKind::Delay`] holds the response.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn rate_of(&self, operation: &str, kind: FaultKind) -> f64 {
        let service = operation.split_once('.').map(|(service, _)| format!("{service}.*"));
        [Some(operation.to_owned()), service, Some("*".to_owned())]
            .into_iter()
            .flatten()
            .find_map(|key| self.rates.get(&key).and_then(|rates| rates.get(&kind)).copied())
            .unwrap_or(0.0)
    }
}

/// Injected faults so far, by operation and kind, plus the requests forwarded untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    injected: BTreeMap<String, BTreeMap<FaultKind, u64>>,
    passed: BTreeMap<String, u64>,
    failed_entries: BTreeMap<String, u64>,
}

impl FaultCounts {
    /// Faults of `kind` injected into `operation` (`Service.Operation`).
    pub fn get(&self, operation: &str, kind: FaultKind) -> u64 {
        self.injected.get(&canonical(operation)).and_then(|kinds| kinds.get(&kind)).copied().unwrap_or(0)
    }

    /// Faults of any kind injected into `operation`.
    pub fn injected_into(&self, operation: &str) -> u64 {
        self.injected.get(&canonical(operation)).map_or(0, |kinds| kinds.values().sum())
    }

    /// Faults of `kind` injected into any operation.
    pub fn of_kind(&self, kind: FaultKind) -> u64 {
        self.injected.values().filter_map(|kinds| kinds.get(&kind)).sum()
    }

    /// Every injected fault.
    pub fn total(&self) -> u64 {
        self.injected.values().flat_map(BTreeMap::values).sum()
    }

    /// Requests of `operation` forwarded without a fault (while switched off too). With
    /// [`FaultCounts::injected_into`] this adds up to the requests the SDK sent for it.
    pub fn passed(&self, operation: &str) -> u64 {
        self.passed.get(&canonical(operation)).copied().unwrap_or(0)
    }

    /// Batch entries reported failed by [`FaultKind::PartialFailure`] in `operation`.
    pub fn failed_entries(&self, operation: &str) -> u64 {
        self.failed_entries.get(&canonical(operation)).copied().unwrap_or(0)
    }

    /// Every (operation, kind, count) with a count above zero, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, FaultKind, u64)> + '_ {
        self.injected
            .iter()
            .flat_map(|(operation, kinds)| kinds.iter().map(move |(kind, n)| (operation.as_str(), *kind, *n)))
    }
}

impl fmt::Display for FaultCounts {
    /// One line per operation: `DynamoDB.PutItem: drop_response=3 throttle=5 (passed 120)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operations: std::collections::BTreeSet<&String> = self.injected.keys().chain(self.passed.keys()).collect();
        for operation in operations {
            write!(f, "{operation}:")?;
            for (kind, n) in self.injected.get(operation).into_iter().flatten() {
                write!(f, " {kind}={n}")?;
            }
            if let Some(n) = self.failed_entries.get(operation) {
                write!(f, " failed_entries={n}")?;
            }
            writeln!(f, " (passed {})", self.passed.get(operation).copied().unwrap_or(0))?;
        }
        Ok(())
    }
}

/// The SDK's `HttpClient` with faults injected per [`FaultPlan`]. Cheap to clone; clones share
/// the plan's progress, the counts and the on/off switch.
#[derive(Debug, Clone)]
pub struct FaultClient {
    inner: SharedHttpClient,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    enabled: AtomicBool,
    decider: Mutex<Decider>,
}

impl FaultClient {
    /// Wraps the SDK's default HTTPS client (the one `default-https-client` builds: hyper 1,
    /// rustls with aws-lc), switched on.
    pub fn new(plan: FaultPlan) -> Self {
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        Self::wrapping(https, plan)
    }

    /// Wraps any HTTP client, switched on.
    pub fn wrapping(inner: SharedHttpClient, plan: FaultPlan) -> Self {
        let state = State { enabled: AtomicBool::new(true), decider: Mutex::new(Decider::new(plan)) };
        Self { inner, state: Arc::new(state) }
    }

    /// Switches injection on or off; while off every request is forwarded untouched and no
    /// script step or draw is consumed. Requests already in flight keep their fault.
    pub fn set_enabled(&self, enabled: bool) {
        self.state.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether injection is on.
    pub fn is_enabled(&self) -> bool {
        self.state.enabled.load(Ordering::SeqCst)
    }

    /// Replaces the plan (its scripts and draw counters start afresh); the counts are kept.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut decider = self.state.lock();
        let counts = std::mem::take(&mut decider.counts);
        *decider = Decider::new(plan);
        decider.counts = counts;
    }

    /// A snapshot of the counts so far.
    pub fn counts(&self) -> FaultCounts {
        self.state.lock().counts.clone()
    }
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Decider> {
        // The decider holds no invariant a panicking holder could break halfway.
        self.decider.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HttpClient for FaultClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            inner: self.inner.http_connector(settings, components),
            state: self.state.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(&self, runtime_components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct FaultConnector {
    inner: SharedHttpConnector,
    state: Arc<State>,
}

impl HttpConnector for FaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request.headers().get("x-amz-target").map(canonical);
        // Only the batch operations' bodies are read (for how many entries a partial failure
        // can fail).
        let entries = match operation.as_deref() {
            Some(SEND_MESSAGE_BATCH | PUT_EVENTS) => request.body().bytes().map(entries_of).unwrap_or(0),
            _ => 0,
        };
        let decision = match &operation {
            Some(operation) if self.state.enabled.load(Ordering::SeqCst) => {
                self.state.lock().decide(operation, entries)
            }
            _ => {
                self.state.lock().count_pass(operation.as_deref().unwrap_or("unknown"));
                Decision::pass()
            }
        };
        let inner = self.inner.clone();
        let operation = operation.unwrap_or_default();
        HttpConnectorFuture::new(inject(inner, request, operation, decision))
    }
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
struct Decision {
    kind: Option<FaultKind>,
    /// A per-request random value for the choices inside a fault (which item, which entries).
    draw: u64,
    /// For [`FaultKind::PartialFailure`]: which entries fail.
    failing: Vec<bool>,
    delay: Duration,
}

impl Decision {
    fn pass() -> Self {
        Self { kind: None, draw: 0, failing: Vec::new(), delay: Duration::ZERO }
    }
}

#[derive(Debug)]
struct Decider {
    plan: FaultPlan,
    draws: BTreeMap<String, u64>,
    counts: FaultCounts,
}

impl Decider {
    fn new(plan: FaultPlan) -> Self {
        Self { plan, draws: BTreeMap::new(), counts: FaultCounts::default() }
    }

    fn count_pass(&mut self, operation: &str) {
        *self.counts.passed.entry(operation.to_owned()).or_default() += 1;
    }

    /// Decides for the next request of `operation`, whose body holds `entries` batch entries.
    fn decide(&mut self, operation: &str, entries: usize) -> Decision {
        let n = {
            let next = self.draws.entry(operation.to_owned()).or_default();
            *next += 1;
            *next - 1
        };
        let draw = mix(self.plan.seed ^ mix(fnv1a(operation) ^ mix(n)));
        let usable = |kind: FaultKind| kind.applies_to(operation) && (kind != FaultKind::PartialFailure || entries > 0);
        let scripted = self.plan.scripts.get_mut(operation).and_then(VecDeque::pop_front);
        let kind = match scripted {
            Some(step) => step.filter(|kind| usable(*kind)),
            None => {
                let u = unit(draw);
                let mut sum = 0.0;
                FaultKind::ALL.into_iter().filter(|kind| usable(*kind)).find(|kind| {
                    sum += self.plan.rate_of(operation, *kind);
                    u < sum
                })
            }
        };
        let Some(kind) = kind else {
            self.count_pass(operation);
            return Decision::pass();
        };
        *self.counts.injected.entry(operation.to_owned()).or_default().entry(kind).or_default() += 1;
        let failing = if kind == FaultKind::PartialFailure { failing_entries(draw, entries) } else { Vec::new() };
        let failed = failing.iter().filter(|f| **f).count() as u64;
        if failed > 0 {
            *self.counts.failed_entries.entry(operation.to_owned()).or_default() += failed;
        }
        Decision { kind: Some(kind), draw, failing, delay: self.plan.delay }
    }
}

/// Each entry fails with probability 1/2, at least one fails.
fn failing_entries(draw: u64, entries: usize) -> Vec<bool> {
    let mut failing: Vec<bool> = (0..entries as u64).map(|i| mix(draw ^ mix(i.wrapping_add(1))) & 1 == 1).collect();
    if !failing.contains(&true)
        && let Some(one) = failing.get_mut((draw % entries.max(1) as u64) as usize)
    {
        *one = true;
    }
    failing
}

/// `Service.Operation` from an `X-Amz-Target` value or a name given to the plan.
fn canonical(name: &str) -> String {
    let Some((prefix, action)) = name.split_once('.') else {
        return name.to_owned();
    };
    let service = match prefix {
        // Target prefixes of the AWS JSON protocols (the SDK's request serialisers set them):
        // aws-sdk-dynamodb `DynamoDB_20120810.*`, aws-sdk-sqs `AmazonSQS.*`,
        // aws-sdk-eventbridge `AWSEvents.*`, aws-sdk-ssm `AmazonSSM.*`.
        p if p.starts_with("DynamoDB") => "DynamoDB",
        "AmazonSQS" | "SQS" => "SQS",
        "AWSEvents" | "EventBridge" => "EventBridge",
        "AmazonSSM" | "SSM" => "SSM",
        other => other,
    };
    format!("{service}.{action}")
}

/// How many entries a batch request body holds (`Entries`), for the partial-failure kinds.
fn entries_of(body: &[u8]) -> usize {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("Entries").and_then(Value::as_array).map(Vec::len))
        .unwrap_or(0)
}

// splitmix64's finaliser (Steele, Lea, Flood: "Fast splittable pseudorandom number generators",
// OOPSLA 2014): a bijective mix, enough to turn (seed, operation, n) into independent draws.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// FNV-1a, 64 bit: stable across runs and platforms (std's hasher is not).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A uniform draw in [0, 1) from the top 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Why an injected connection failure happened (the text the SDK's error chain shows).
#[derive(Debug, thiserror::Error)]
#[error("injected fault: {0}")]
struct Injected(&'static str);

fn io_error(what: &'static str) -> ConnectorError {
    ConnectorError::io(Box::new(Injected(what)))
}

async fn inject(
    inner: SharedHttpConnector,
    request: HttpRequest,
    operation: String,
    decision: Decision,
) -> Result<HttpResponse, ConnectorError> {
    let Some(kind) = decision.kind else {
        return inner.call(request).await;
    };
    let service = Service::of(&operation);
    match kind {
        FaultKind::FailBeforeSend => Err(io_error("connection failed before the request was sent")),
        FaultKind::DropResponse => {
            let response = inner.call(request).await?;
            drop(response);
            Err(io_error("connection lost after the request was sent; the response was not read"))
        }
        FaultKind::Throttle => error_response(service, service.throttle(), decision.draw, None),
        FaultKind::ServerError => error_response(service, service.server_error(), decision.draw, None),
        FaultKind::TransactionConflict => {
            let items = request.body().bytes().map(transact_items_of).unwrap_or(1).max(1);
            let conflicting = (decision.draw % items as u64) as usize;
            error_response(service, &DYNAMODB_CANCELED, decision.draw, Some(cancellation(items, conflicting)))
        }
        FaultKind::Delay => {
            let response = inner.call(request).await;
            tokio::time::sleep(decision.delay).await;
            response
        }
        FaultKind::Hang => std::future::pending().await,
        FaultKind::HangAfterApply => {
            let _applied = inner.call(request).await;
            std::future::pending().await
        }
        FaultKind::PartialFailure => {
            partial_failure(inner, request, &operation, &decision.failing, decision.draw).await
        }
    }
}

/// The service a `Service.Operation` belongs to, for its error protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    DynamoDb,
    Sqs,
    EventBridge,
    Ssm,
    Other,
}

/// One error as the service returns it.
struct ErrorSpec {
    status: u16,
    code: &'static str,
    /// The `Sender`/`Receiver` half of SQS's `x-amzn-query-error` header.
    query_fault: &'static str,
    message: &'static str,
}

// DynamoDB (awsJson1_0): status, codes and body shape from the DynamoDB Developer Guide, "Error
// handling with DynamoDB" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html):
// ProvisionedThroughputExceededException 400, InternalServerError 500, body
// {"__type":"com.amazonaws.dynamodb.v20120810#<Code>","message":…}.
const DYNAMODB_THROTTLE: ErrorSpec = ErrorSpec {
    status: 400,
    code: "ProvisionedThroughputExceededException",
    query_fault: "Sender",
    message: "The level of configured provisioned throughput for the table was exceeded (injected).",
};
const DYNAMODB_500: ErrorSpec = ErrorSpec {
    status: 500,
    code: "InternalServerError",
    query_fault: "Receiver",
    message: "Internal server error (injected).",
};
// TransactionCanceledException: the cancellation reasons (`None` for items without error,
// `TransactionConflict` / "Transaction is ongoing for the item.") are documented on the shape in
// the DynamoDB API model (aws-sdk-dynamodb 1.136.0, src/types/error/_transaction_canceled_exception.rs).
// The top-level `Message` format is the one moto 5.2.5 produces (moto/dynamodb/exceptions.py);
// unconfirmed against real DynamoDB.
const DYNAMODB_CANCELED: ErrorSpec =
    ErrorSpec { status: 400, code: "TransactionCanceledException", query_fault: "Sender", message: "" };
// SQS (awsJson1_0 with awsQueryCompatible, botocore's sqs/2012-11-05 model metadata): the SDK
// takes the code from the `x-amzn-query-error: <Code>;<Sender|Receiver>` header
// (aws-sdk-sqs 1.119.0 src/aws_query_compatible_errors.rs). RequestThrottled is the SQS model's
// throttling error (client error, so 400 and `Sender`). SQS models no server error for its data
// operations; InternalFailure 500 is the AWS common error — its header value is unconfirmed.
const SQS_THROTTLE: ErrorSpec = ErrorSpec {
    status: 400,
    code: "RequestThrottled",
    query_fault: "Sender",
    message: "Request is throttled (injected).",
};
const SQS_500: ErrorSpec = ErrorSpec {
    status: 500,
    code: "InternalFailure",
    query_fault: "Receiver",
    message: "We encountered an internal error. Please try again (injected).",
};
// EventBridge (awsJson1_1): ThrottlingException 400 is an AWS common error (EventBridge API
// reference, Common Errors); InternalException (500, a server fault) is PutEvents' modeled error
// (aws-sdk-eventbridge 1.127.0, src/protocol_serde/shape_put_events.rs).
const EVENTBRIDGE_THROTTLE: ErrorSpec =
    ErrorSpec { status: 400, code: "ThrottlingException", query_fault: "Sender", message: "Rate exceeded (injected)." };
const EVENTBRIDGE_500: ErrorSpec = ErrorSpec {
    status: 500,
    code: "InternalException",
    query_fault: "Receiver",
    message: "Internal error (injected).",
};
// SSM (awsJson1_1): ThrottlingException 400 (AWS common error); InternalServerError 500 is
// SSM's modeled server fault.
const SSM_500: ErrorSpec = ErrorSpec {
    status: 500,
    code: "InternalServerError",
    query_fault: "Receiver",
    message: "Internal server error (injected).",
};
const COMMON_500: ErrorSpec = ErrorSpec {
    status: 500,
    code: "InternalFailure",
    query_fault: "Receiver",
    message: "Internal failure (injected).",
};

impl Service {
    fn of(operation: &str) -> Self {
        match operation.split_once('.').map(|(service, _)| service) {
            Some("DynamoDB") => Service::DynamoDb,
            Some("SQS") => Service::Sqs,
            Some("EventBridge") => Service::EventBridge,
            Some("SSM") => Service::Ssm,
            _ => Service::Other,
        }
    }

    fn throttle(self) -> &'static ErrorSpec {
        match self {
            Service::DynamoDb => &DYNAMODB_THROTTLE,
            Service::Sqs => &SQS_THROTTLE,
            Service::EventBridge | Service::Ssm | Service::Other => &EVENTBRIDGE_THROTTLE,
        }
    }

    fn server_error(self) -> &'static ErrorSpec {
        match self {
            Service::DynamoDb => &DYNAMODB_500,
            Service::Sqs => &SQS_500,
            Service::EventBridge => &EVENTBRIDGE_500,
            Service::Ssm => &SSM_500,
            Service::Other => &COMMON_500,
        }
    }

    /// The `Content-Type` of the service's AWS JSON protocol version.
    fn content_type(self) -> &'static str {
        match self {
            Service::DynamoDb | Service::Sqs => "application/x-amz-json-1.0",
            Service::EventBridge | Service::Ssm | Service::Other => "application/x-amz-json-1.1",
        }
    }

    /// The `__type` value: awsJson1_0 services as DynamoDB's documented example
    /// (`<namespace>#<Code>`); the SDK keeps only what follows `#`, so the bare code (used for
    /// awsJson1_1) classifies the same.
    fn error_type(self, code: &str) -> String {
        match self {
            Service::DynamoDb => format!("com.amazonaws.dynamodb.v20120810#{code}"),
            // The namespace of the SQS Smithy model; unconfirmed on the wire.
            Service::Sqs => format!("com.amazonaws.sqs#{code}"),
            Service::EventBridge | Service::Ssm | Service::Other => code.to_owned(),
        }
    }
}

/// A `TransactionCanceledException` body's members for `items` items, one of them conflicting.
fn cancellation(items: usize, conflicting: usize) -> Value {
    let reasons: Vec<Value> = (0..items)
        .map(|i| {
            if i == conflicting {
                json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item."})
            } else {
                json!({"Code": "None"})
            }
        })
        .collect();
    let codes: Vec<&str> = (0..items).map(|i| if i == conflicting { "TransactionConflict" } else { "None" }).collect();
    json!({
        "Message": format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}] (injected)",
            codes.join(", ")
        ),
        "CancellationReasons": reasons,
    })
}

fn transact_items_of(body: &[u8]) -> usize {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("TransactItems").and_then(Value::as_array).map(Vec::len))
        .unwrap_or(1)
}

fn status(code: u16) -> Result<StatusCode, ConnectorError> {
    StatusCode::try_from(code).map_err(|e| ConnectorError::other(Box::new(e), None))
}

/// An error response of `service`'s protocol; `members` replace the default `message` member.
fn error_response(
    service: Service,
    spec: &ErrorSpec,
    draw: u64,
    members: Option<Value>,
) -> Result<HttpResponse, ConnectorError> {
    let mut body = members.unwrap_or_else(|| json!({"message": spec.message}));
    if let Some(object) = body.as_object_mut() {
        object.insert("__type".to_owned(), Value::String(service.error_type(spec.code)));
    }
    let mut headers = vec![("content-type", service.content_type().to_owned())];
    if service == Service::Sqs {
        headers.push(("x-amzn-query-error", format!("{};{}", spec.code, spec.query_fault)));
    }
    json_response(spec.status, &body, headers, draw)
}

fn json_response(
    code: u16,
    body: &Value,
    headers: Vec<(&'static str, String)>,
    draw: u64,
) -> Result<HttpResponse, ConnectorError> {
    let bytes = serde_json::to_vec(body).map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let mut response = HttpResponse::new(status(code)?, SdkBody::from(bytes.clone()));
    let all = headers
        .into_iter()
        .chain([("content-length", bytes.len().to_string()), ("x-amzn-requestid", format!("injected-{draw:016x}"))]);
    for (name, value) in all {
        response.headers_mut().try_insert(name, value).map_err(|e| ConnectorError::other(Box::new(e), None))?;
    }
    Ok(response)
}

/// Forwards only the entries not marked failing, then reports the others failed in the
/// operation's own result shape.
async fn partial_failure(
    inner: SharedHttpConnector,
    mut request: HttpRequest,
    operation: &str,
    failing: &[bool],
    draw: u64,
) -> Result<HttpResponse, ConnectorError> {
    let parsed = request.body().bytes().and_then(|b| serde_json::from_slice::<Value>(b).ok());
    let Some(mut body) = parsed else {
        return inner.call(request).await;
    };
    let entries = body.get("Entries").and_then(Value::as_array).cloned().unwrap_or_default();
    let kept: Vec<Value> =
        entries.iter().zip(failing).filter(|(_, failed)| !**failed).map(|(entry, _)| entry.clone()).collect();
    let service = Service::of(operation);
    let forwarded = if kept.is_empty() {
        None
    } else {
        if let Some(object) = body.as_object_mut() {
            object.insert("Entries".to_owned(), Value::Array(kept));
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| ConnectorError::other(Box::new(e), None))?;
        request
            .headers_mut()
            .try_insert("content-length", bytes.len().to_string())
            .map_err(|e| ConnectorError::other(Box::new(e), None))?;
        *request.body_mut() = SdkBody::from(bytes);
        let response = inner.call(request).await?;
        if !response.status().is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let collected = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| ConnectorError::io(Box::new(e)))?
            .to_vec();
        let result =
            serde_json::from_slice::<Value>(&collected).map_err(|e| ConnectorError::other(Box::new(e), None))?;
        Some((headers, result))
    };
    let (headers, result) = match forwarded {
        Some((headers, result)) => (Some(headers), result),
        None => (None, Value::Null),
    };
    let merged = if operation == SEND_MESSAGE_BATCH {
        merge_send_message_batch(result, &entries, failing)
    } else {
        merge_put_events(result, entries.len(), failing)
    };
    let mut response = json_response(200, &merged, vec![("content-type", service.content_type().to_owned())], draw)?;
    // Keep the server's request id when there was a server answer.
    if let Some(id) = headers.as_ref().and_then(|h| h.get("x-amzn-requestid")) {
        response
            .headers_mut()
            .try_insert("x-amzn-requestid", id.to_owned())
            .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    }
    Ok(response)
}

// SendMessageBatch result: `Successful` and `Failed` lists; a failed entry has Id, SenderFault,
// Code and Message (botocore's sqs/2012-11-05 model, BatchResultErrorEntry: Id, SenderFault and
// Code required). The code an SQS server fault puts in `Code` is unconfirmed; InternalFailure is
// the AWS common error for a 500.
fn merge_send_message_batch(result: Value, entries: &[Value], failing: &[bool]) -> Value {
    let mut result = if result.is_object() { result } else { json!({"Successful": []}) };
    let injected: Vec<Value> = entries
        .iter()
        .zip(failing)
        .filter(|(_, failed)| **failed)
        .map(|(entry, _)| {
            json!({
                "Id": entry.get("Id").cloned().unwrap_or(Value::Null),
                "SenderFault": false,
                "Code": "InternalFailure",
                "Message": "The message was not sent (injected).",
            })
        })
        .collect();
    if let Some(object) = result.as_object_mut() {
        let failed = object.entry("Failed").or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = failed.as_array_mut() {
            list.extend(injected);
        } else {
            *failed = Value::Array(injected);
        }
    }
    result
}

// PutEvents result: `Entries` in request order, each with EventId or ErrorCode/ErrorMessage, and
// `FailedEntryCount`. InternalFailure is a documented retryable ErrorCode of a result entry
// (aws-sdk-eventbridge 1.127.0, src/types/_put_events_result_entry.rs).
fn merge_put_events(result: Value, entries: usize, failing: &[bool]) -> Value {
    let mut sent = result.get("Entries").and_then(Value::as_array).cloned().unwrap_or_default().into_iter();
    let mut failed = result.get("FailedEntryCount").and_then(Value::as_u64).unwrap_or(0);
    let error = || json!({"ErrorCode": "InternalFailure", "ErrorMessage": "The event was not put (injected)."});
    let merged: Vec<Value> = (0..entries)
        .map(|i| {
            if failing.get(i).copied().unwrap_or(false) {
                failed += 1;
                error()
            } else {
                sent.next().unwrap_or_else(|| {
                    failed += 1;
                    error()
                })
            }
        })
        .collect();
    json!({"FailedEntryCount": failed, "Entries": merged})
}

pub use crate::aws::SdkLimits;

/// An SDK configuration whose clients send every request through `client` to `endpoint`, with
/// `limits`. Region and credentials are loaded as [`crate::Clients::from_env`] loads them (the
/// environment: `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …). Build the clients with
/// [`crate::Clients::from_sdk_config`].
pub async fn sdk_config(endpoint: &str, client: &FaultClient, limits: SdkLimits) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(client.clone())
        .endpoint_url(endpoint)
        .timeout_config(limits.timeout_config())
        .retry_config(limits.retry_config())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(plan: FaultPlan, operation: &str, n: usize) -> Vec<Option<FaultKind>> {
        let mut decider = Decider::new(plan);
        (0..n).map(|_| decider.decide(operation, 0).kind).collect()
    }

    #[test]
    fn wire_targets_and_plan_names_meet_in_one_spelling() {
        assert_eq!(canonical("DynamoDB_20120810.PutItem"), "DynamoDB.PutItem");
        assert_eq!(canonical("AmazonSQS.SendMessageBatch"), "SQS.SendMessageBatch");
        assert_eq!(canonical("AWSEvents.PutEvents"), "EventBridge.PutEvents");
        assert_eq!(canonical("AmazonSSM.GetParameter"), "SSM.GetParameter");
        assert_eq!(canonical("DynamoDB.PutItem"), "DynamoDB.PutItem");
        assert_eq!(canonical("*"), "*");
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let plan = |seed| FaultPlan::new(seed).rate("*", FaultKind::Throttle, 0.3).rate("*", FaultKind::Hang, 0.1);
        let a = decisions(plan(7), "DynamoDB.PutItem", 200);
        assert_eq!(a, decisions(plan(7), "DynamoDB.PutItem", 200));
        assert_ne!(a, decisions(plan(8), "DynamoDB.PutItem", 200));
        assert_ne!(a, decisions(plan(7), "DynamoDB.GetItem", 200), "each operation has its own sequence");
    }

    #[test]
    fn rates_are_honoured_and_the_most_specific_wins() {
        let plan = FaultPlan::new(1)
            .rate("*", FaultKind::Throttle, 0.05)
            .rate("DynamoDB.*", FaultKind::ServerError, 0.1)
            .rate("DynamoDB_20120810.PutItem", FaultKind::Throttle, 0.3);
        let count = |ds: &[Option<FaultKind>], k| ds.iter().filter(|d| **d == Some(k)).count();
        let put = decisions(plan.clone(), "DynamoDB.PutItem", 10_000);
        assert!((2_700..3_300).contains(&count(&put, FaultKind::Throttle)), "{}", count(&put, FaultKind::Throttle));
        assert!((800..1_200).contains(&count(&put, FaultKind::ServerError)));
        let send = decisions(plan, "SQS.SendMessage", 10_000);
        assert!((350..650).contains(&count(&send, FaultKind::Throttle)));
        assert_eq!(count(&send, FaultKind::ServerError), 0);
    }

    #[test]
    fn kinds_that_do_not_apply_are_never_drawn() {
        let plan =
            FaultPlan::new(3).rate("*", FaultKind::TransactionConflict, 1.0).rate("*", FaultKind::PartialFailure, 1.0);
        assert!(decisions(plan.clone(), "DynamoDB.PutItem", 100).iter().all(Option::is_none));
        assert!(
            decisions(plan.clone(), "DynamoDB.TransactWriteItems", 100)
                .iter()
                .all(|d| *d == Some(FaultKind::TransactionConflict))
        );
        let mut decider = Decider::new(plan);
        assert_eq!(decider.decide("SQS.SendMessageBatch", 0).kind, None, "no entries, nothing to fail");
        let batch = decider.decide("SQS.SendMessageBatch", 10);
        assert_eq!(batch.kind, Some(FaultKind::PartialFailure));
        assert_eq!(batch.failing.len(), 10);
        assert!(batch.failing.contains(&true));
    }

    #[test]
    fn scripts_come_first_then_rates_and_everything_is_counted() {
        let plan = FaultPlan::new(5)
            .script("DynamoDB.PutItem", [Some(FaultKind::DropResponse), None, Some(FaultKind::TransactionConflict)])
            .rate("DynamoDB.PutItem", FaultKind::Throttle, 1.0);
        let mut decider = Decider::new(plan);
        let kinds: Vec<_> = (0..5).map(|_| decider.decide("DynamoDB.PutItem", 0).kind).collect();
        assert_eq!(
            kinds,
            [Some(FaultKind::DropResponse), None, None, Some(FaultKind::Throttle), Some(FaultKind::Throttle)]
        );
        let counts = &decider.counts;
        assert_eq!(counts.get("DynamoDB.PutItem", FaultKind::DropResponse), 1);
        assert_eq!(counts.get("DynamoDB_20120810.PutItem", FaultKind::Throttle), 2);
        assert_eq!(counts.passed("DynamoDB.PutItem"), 2);
        assert_eq!(counts.total(), 3);
        assert_eq!(counts.to_string(), "DynamoDB.PutItem: drop_response=1 throttle=2 (passed 2)\n");
    }

    #[test]
    fn partial_failures_fail_at_least_one_entry_and_not_always_the_same() {
        let sets: Vec<Vec<bool>> = (0..50).map(|d| failing_entries(mix(d), 10)).collect();
        assert!(sets.iter().all(|s| s.len() == 10 && s.contains(&true)));
        assert!(sets.iter().any(|s| s.contains(&false)));
        assert!(sets.windows(2).any(|w| w[0] != w[1]));
        assert_eq!(failing_entries(9, 1), [true]);
    }

    #[test]
    fn merged_results_report_every_entry_in_its_place() {
        let entries = [json!({"Id": "a"}), json!({"Id": "b"}), json!({"Id": "c"})];
        let sent = json!({"Successful": [{"Id": "a", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []});
        let merged = merge_send_message_batch(sent, &entries, &[false, true, true]);
        let failed: Vec<&str> =
            merged["Failed"].as_array().into_iter().flatten().filter_map(|f| f["Id"].as_str()).collect();
        assert_eq!(failed, ["b", "c"]);
        assert_eq!(merged["Successful"][0]["Id"], "a");

        let sent = json!({"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}, {"EventId": "e2"}]});
        let merged = merge_put_events(sent, 3, &[false, true, false]);
        assert_eq!(merged["FailedEntryCount"], 1);
        assert_eq!(merged["Entries"][0]["EventId"], "e1");
        assert_eq!(merged["Entries"][1]["ErrorCode"], "InternalFailure");
        assert_eq!(merged["Entries"][2]["EventId"], "e2");
        let all_failed = merge_put_events(Value::Null, 2, &[true, true]);
        assert_eq!(all_failed["FailedEntryCount"], 2);
    }

    #[test]
    fn cancellation_reasons_follow_the_items() {
        let body = cancellation(3, 1);
        let codes: Vec<&str> =
            body["CancellationReasons"].as_array().into_iter().flatten().filter_map(|r| r["Code"].as_str()).collect();
        assert_eq!(codes, ["None", "TransactionConflict", "None"]);
    }
}
