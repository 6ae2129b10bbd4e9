//! The fault-injecting HTTP client (`adapters::faults`) under the real SDK, against moto: each
//! fault kind does to the SDK what the same failure of real AWS does — the SDK classifies the
//! error as it classifies AWS's, retries what it retries, and the emulator's state shows what
//! was applied.
//!
//! Set-up and checks go through plain clients; only the call under test goes through the
//! faulty ones.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use adapters::Clients;
use adapters::faults::{FaultClient, FaultCounts, FaultKind, FaultPlan, SdkLimits, sdk_config};
use aws_runtime::retries::classifiers::THROTTLING_ERRORS;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactWriteItem,
};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tests::stack::{self, namespace};

/// Generous timeouts and a short backoff, so retries are quick and only the tests that want a
/// timeout get one.
fn limits() -> SdkLimits {
    SdkLimits {
        operation_timeout: Duration::from_secs(20),
        attempt_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
    }
}

struct Faulty {
    faults: FaultClient,
    clients: Clients,
}

async fn faulty(plan: FaultPlan, limits: SdkLimits) -> Faulty {
    let faults = FaultClient::new(plan);
    let sdk = sdk_config(&stack::var("AWS_ENDPOINT_URL"), &faults, limits).await;
    Faulty { faults, clients: Clients::from_sdk_config(&sdk) }
}

/// Requests the SDK sent for `operation` (retries included), as the clients' counter saw them.
fn sent(clients: &Clients, operation: &str) -> u64 {
    clients.requests.snapshot().get(operation).copied().unwrap_or(0)
}

/// Every request of `operation` was either forwarded or had exactly one fault injected.
fn assert_accounted(f: &Faulty, operation: &str) {
    let counts = f.faults.counts();
    assert_eq!(
        counts.passed(operation) + counts.injected_into(operation),
        sent(&f.clients, operation),
        "{operation}: {counts}"
    );
}

async fn scratch_table(plain: &Clients, name: &str) -> String {
    plain
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .unwrap();
    name.to_owned()
}

/// PutItem of `pk`, only if absent when `conditional` (the inbox's dedupe write).
async fn put(
    clients: &Clients,
    table: &str,
    pk: &str,
    conditional: bool,
) -> Result<(), SdkError<PutItemError, HttpResponse>> {
    let mut request = clients.dynamodb.put_item().table_name(table).item("pk", AttributeValue::S(pk.to_owned()));
    if conditional {
        request = request.condition_expression("attribute_not_exists(pk)");
    }
    request.send().await.map(|_| ())
}

async fn exists(plain: &Clients, table: &str, pk: &str) -> bool {
    let out = plain
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.is_some()
}

/// Everything on the queue now: polls (long-polling receives of 1 s) until `expected` bodies
/// arrived or 10 s passed, then once more to see that nothing else is there.
async fn receive_all(plain: &Clients, url: &str, expected: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut bodies = Vec::new();
    loop {
        let out = plain
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let got = out.messages().len();
        for message in out.messages() {
            plain
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            bodies.extend(message.body().map(str::to_owned));
        }
        if (bodies.len() >= expected && got == 0) || Instant::now() > deadline {
            return bodies;
        }
    }
}

fn throttling(code: Option<&str>) -> bool {
    code.is_some_and(|code| THROTTLING_ERRORS.contains(&code))
}

#[tokio::test]
async fn a_response_lost_after_a_conditional_put_fails_the_retry_while_the_item_exists() {
    // Issue 12, 1(a): the inbox's PutItem is applied, its response lost; the SDK retries and the
    // retry fails its condition.
    let plain = stack::clients().await;
    let table = scratch_table(&plain, &namespace("faults-drop")).await;
    let f = faulty(FaultPlan::new(1).script("DynamoDB.PutItem", [Some(FaultKind::DropResponse)]), limits()).await;

    let err = put(&f.clients, &table, "order-1", true).await.unwrap_err();

    assert!(err.as_service_error().is_some_and(PutItemError::is_conditional_check_failed_exception), "{err:?}");
    assert!(exists(&plain, &table, "order-1").await, "the first attempt was applied");
    assert_eq!(sent(&f.clients, "DynamoDB.PutItem"), 2);
    assert_eq!(f.faults.counts().get("DynamoDB.PutItem", FaultKind::DropResponse), 1);
    assert_accounted(&f, "DynamoDB.PutItem");
}

#[tokio::test]
async fn a_connection_failing_before_the_send_is_retried_and_applies_once() {
    let plain = stack::clients().await;
    let table = scratch_table(&plain, &namespace("faults-before")).await;
    let plan = FaultPlan::new(2).script(
        "DynamoDB.PutItem",
        [
            Some(FaultKind::FailBeforeSend),
            None,
            Some(FaultKind::FailBeforeSend),
            Some(FaultKind::FailBeforeSend),
            Some(FaultKind::FailBeforeSend),
        ],
    );
    let f = faulty(plan, limits()).await;

    put(&f.clients, &table, "order-1", true).await.expect("the retry is the first request that arrives");
    assert!(exists(&plain, &table, "order-1").await);

    let err = put(&f.clients, &table, "order-2", true).await.unwrap_err();
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    assert!(!exists(&plain, &table, "order-2").await, "nothing was sent");

    assert_eq!(sent(&f.clients, "DynamoDB.PutItem"), 5);
    assert_eq!(f.faults.counts().get("DynamoDB.PutItem", FaultKind::FailBeforeSend), 4);
    assert_accounted(&f, "DynamoDB.PutItem");
}

#[tokio::test]
async fn throttles_are_classified_as_aws_throttling_retried_and_counted() {
    let plain = stack::clients().await;
    let ns = namespace("faults-throttle");
    let table = scratch_table(&plain, &ns).await;
    let url = stack::scratch_queue(&plain, &ns).await;
    let t = Some(FaultKind::Throttle);
    let plan = FaultPlan::new(3)
        .script("DynamoDB.PutItem", [t, t, None, t, t, t])
        .script("SQS.SendMessage", [t, None, t, t, t])
        .script("EventBridge.PutEvents", [t, t, t])
        .script("SSM.GetParameter", [t, t, t]);
    let f = faulty(plan, limits()).await;

    // DynamoDB: two throttles are absorbed by the SDK's retries; three exhaust them.
    put(&f.clients, &table, "order-1", false).await.expect("retried past two throttles");
    let err = put(&f.clients, &table, "order-2", false).await.unwrap_err();
    let service = err.as_service_error().unwrap();
    assert!(service.is_provisioned_throughput_exceeded_exception(), "{err:?}");
    assert!(throttling(service.code()), "{:?}", service.code());
    assert!(!exists(&plain, &table, "order-2").await);
    assert_eq!(sent(&f.clients, "DynamoDB.PutItem"), 6);

    // SQS (JSON protocol, query-compatible error header).
    f.clients.sqs.send_message().queue_url(&url).message_body("one").send().await.expect("retried past one throttle");
    let err = f.clients.sqs.send_message().queue_url(&url).message_body("two").send().await.unwrap_err();
    let service = err.as_service_error().unwrap();
    assert!(service.is_request_throttled(), "{err:?}");
    assert!(throttling(service.code()), "{:?}", service.code());
    assert_eq!(receive_all(&plain, &url, 1).await, ["one"]);
    assert_eq!(sent(&f.clients, "SQS.SendMessage"), 5);

    // EventBridge and SSM: the AWS common ThrottlingException.
    let entry = PutEventsRequestEntry::builder()
        .event_bus_name(stack::var("EVENT_BUS_NAME"))
        .source(&ns)
        .detail_type("FaultProbe")
        .detail("{}")
        .build();
    let err = f.clients.eventbridge.put_events().entries(entry).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"), "{err:?}");
    assert!(throttling(err.code()));
    assert_eq!(sent(&f.clients, "EventBridge.PutEvents"), 3);
    let err = f.clients.ssm.get_parameter().name(format!("/{ns}/absent")).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"), "{err:?}");
    assert_eq!(sent(&f.clients, "SSM.GetParameter"), 3);

    assert_eq!(f.faults.counts().of_kind(FaultKind::Throttle), 5 + 4 + 3 + 3);
    for operation in ["DynamoDB.PutItem", "SQS.SendMessage", "EventBridge.PutEvents", "SSM.GetParameter"] {
        assert_accounted(&f, operation);
    }
}

#[tokio::test]
async fn server_errors_are_retried_and_surface_with_the_services_code() {
    let plain = stack::clients().await;
    let ns = namespace("faults-500");
    let table = scratch_table(&plain, &ns).await;
    let url = stack::scratch_queue(&plain, &ns).await;
    let e = Some(FaultKind::ServerError);
    let plan = FaultPlan::new(4)
        .script("DynamoDB.PutItem", [e, None, e, e, e])
        .script("SQS.SendMessage", [e])
        .script("EventBridge.PutEvents", [e, e, e]);
    let f = faulty(plan, limits()).await;

    put(&f.clients, &table, "order-1", true).await.expect("retried past one 500");
    let err = put(&f.clients, &table, "order-2", true).await.unwrap_err();
    assert!(err.as_service_error().is_some_and(PutItemError::is_internal_server_error), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));

    f.clients.sqs.send_message().queue_url(&url).message_body("once").send().await.expect("retried past one 500");
    assert_eq!(receive_all(&plain, &url, 1).await, ["once"]);

    let entry = PutEventsRequestEntry::builder().source(&ns).detail_type("FaultProbe").detail("{}").build();
    let err = f.clients.eventbridge.put_events().entries(entry).send().await.unwrap_err();
    assert!(err.as_service_error().is_some_and(|e| e.is_internal_exception()), "{err:?}");

    assert_eq!(sent(&f.clients, "DynamoDB.PutItem"), 5);
    assert_eq!(sent(&f.clients, "SQS.SendMessage"), 2);
    assert_eq!(sent(&f.clients, "EventBridge.PutEvents"), 3);
    assert_eq!(f.faults.counts().of_kind(FaultKind::ServerError), 4 + 1 + 3);
    // What the code asked for, each call once however many attempts it took.
    let asked = f.clients.requests.take_operations();
    assert_eq!(asked.get("DynamoDB.PutItem").copied(), Some(2), "{asked:?}");
    assert_eq!(asked.get("SQS.SendMessage").copied(), Some(1), "{asked:?}");
    assert_eq!(asked.get("EventBridge.PutEvents").copied(), Some(1), "{asked:?}");
}

#[tokio::test]
async fn a_transaction_conflict_cancels_everything_and_is_not_retried_by_the_sdk() {
    let plain = stack::clients().await;
    let table = scratch_table(&plain, &namespace("faults-tx")).await;
    let f = faulty(
        FaultPlan::new(5).script("DynamoDB.TransactWriteItems", [Some(FaultKind::TransactionConflict)]),
        limits(),
    )
    .await;
    let items: Vec<TransactWriteItem> = ["line-1", "line-2", "line-3"]
        .iter()
        .map(|pk| {
            let put = Put::builder()
                .table_name(&table)
                .item("pk", AttributeValue::S((*pk).to_owned()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap();
            TransactWriteItem::builder().put(put).build()
        })
        .collect();

    let err =
        f.clients.dynamodb.transact_write_items().set_transact_items(Some(items.clone())).send().await.unwrap_err();
    let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) = err.as_service_error() else {
        panic!("{err:?}");
    };
    let codes: Vec<&str> = canceled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("")).collect();
    assert_eq!(codes.len(), 3, "one reason per item, in order");
    assert_eq!(codes.iter().filter(|c| **c == "TransactionConflict").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == "None").count(), 2, "{codes:?}");
    assert_eq!(sent(&f.clients, "DynamoDB.TransactWriteItems"), 1, "the SDK leaves conflicts to the caller");
    for pk in ["line-1", "line-2", "line-3"] {
        assert!(!exists(&plain, &table, pk).await);
    }

    f.clients.dynamodb.transact_write_items().set_transact_items(Some(items)).send().await.expect("the caller's retry");
    assert!(exists(&plain, &table, "line-2").await);
}

#[tokio::test]
async fn a_hang_is_ended_by_the_sdks_operation_timeout() {
    let plain = stack::clients().await;
    let table = scratch_table(&plain, &namespace("faults-hang")).await;
    let limits =
        SdkLimits { operation_timeout: Duration::from_secs(2), attempt_timeout: Duration::from_secs(10), ..limits() };
    let f = faulty(FaultPlan::new(6).script("DynamoDB.GetItem", [Some(FaultKind::Hang)]), limits).await;

    let started = Instant::now();
    let call = f.clients.dynamodb.get_item().table_name(&table).key("pk", AttributeValue::S("x".to_owned())).send();
    let result = tokio::time::timeout(Duration::from_secs(10), call).await.expect("the SDK ended the call itself");
    let took = started.elapsed();

    let err = result.unwrap_err();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(3500), "{took:?}");
    assert_eq!(f.faults.counts().get("DynamoDB.GetItem", FaultKind::Hang), 1);
}

#[tokio::test]
async fn a_hang_after_the_apply_is_retried_by_the_attempt_timeout_and_fails_its_condition() {
    // Issue 12, 1(b) seen from the SDK: the write happened, the answer never came.
    let plain = stack::clients().await;
    let table = scratch_table(&plain, &namespace("faults-hang-applied")).await;
    let limits =
        SdkLimits { operation_timeout: Duration::from_secs(10), attempt_timeout: Duration::from_secs(1), ..limits() };
    let f = faulty(FaultPlan::new(7).script("DynamoDB.PutItem", [Some(FaultKind::HangAfterApply)]), limits).await;

    let started = Instant::now();
    let err = put(&f.clients, &table, "order-1", true).await.unwrap_err();
    let took = started.elapsed();

    assert!(err.as_service_error().is_some_and(PutItemError::is_conditional_check_failed_exception), "{err:?}");
    assert!(exists(&plain, &table, "order-1").await);
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(sent(&f.clients, "DynamoDB.PutItem"), 2);
}

#[tokio::test]
async fn a_delay_holds_the_response_and_one_past_the_attempt_timeout_is_retried() {
    let plain = stack::clients().await;
    let table = scratch_table(&plain, &namespace("faults-delay")).await;
    let plan = FaultPlan::new(8)
        .delay(Duration::from_millis(1500))
        .script("DynamoDB.GetItem", [Some(FaultKind::Delay)])
        .script("DynamoDB.PutItem", [Some(FaultKind::Delay)]);

    let f = faulty(plan.clone(), limits()).await;
    let started = Instant::now();
    f.clients.dynamodb.get_item().table_name(&table).key("pk", AttributeValue::S("x".to_owned())).send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));

    // A response slower than the attempt timeout: applied, timed out, retried.
    let limits = SdkLimits { attempt_timeout: Duration::from_millis(500), ..limits() };
    let f = faulty(plan, limits).await;
    let err = put(&f.clients, &table, "order-1", true).await.unwrap_err();
    assert!(err.as_service_error().is_some_and(PutItemError::is_conditional_check_failed_exception), "{err:?}");
    assert!(exists(&plain, &table, "order-1").await);
}

#[tokio::test]
async fn a_send_message_batch_partial_failure_enqueues_exactly_the_reported_successes() {
    let plain = stack::clients().await;
    let ns = namespace("faults-batch");
    let url = stack::scratch_queue(&plain, &ns).await;
    let f = faulty(FaultPlan::new(9).script("SQS.SendMessageBatch", [Some(FaultKind::PartialFailure)]), limits()).await;
    let entries: Vec<SendMessageBatchRequestEntry> = (0..10)
        .map(|i| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(format!("body-{i}"))
                .build()
                .unwrap()
        })
        .collect();

    let out = f.clients.sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap();

    let ok: BTreeSet<String> = out.successful().iter().map(|e| e.id().to_owned()).collect();
    let failed: BTreeSet<String> = out.failed().iter().map(|e| e.id().to_owned()).collect();
    assert!(!failed.is_empty(), "at least one entry fails");
    assert!(ok.is_disjoint(&failed));
    assert_eq!(ok.len() + failed.len(), 10);
    assert!(out.failed().iter().all(|e| !e.sender_fault() && e.code() == "InternalFailure"));
    let expected: BTreeSet<String> = ok.iter().map(|id| id.replace('m', "body-")).collect();
    let queued: BTreeSet<String> = receive_all(&plain, &url, ok.len()).await.into_iter().collect();
    assert_eq!(queued, expected, "only the entries reported successful are on the queue");

    let counts = f.faults.counts();
    assert_eq!(counts.get("SQS.SendMessageBatch", FaultKind::PartialFailure), 1);
    assert_eq!(counts.failed_entries("SQS.SendMessageBatch"), failed.len() as u64);
}

#[tokio::test]
async fn a_put_events_partial_failure_delivers_exactly_the_reported_successes() {
    let plain = stack::clients().await;
    let ns = namespace("faults-events");
    let bus = stack::var("EVENT_BUS_NAME");
    let url = stack::scratch_queue(&plain, &ns).await;
    let arn = plain
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();
    plain
        .eventbridge
        .put_rule()
        .name(&ns)
        .event_bus_name(&bus)
        .event_pattern(serde_json::json!({"source": [ns]}).to_string())
        .send()
        .await
        .unwrap();
    plain
        .eventbridge
        .put_targets()
        .rule(&ns)
        .event_bus_name(&bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("probe").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let f =
        faulty(FaultPlan::new(10).script("EventBridge.PutEvents", [Some(FaultKind::PartialFailure)]), limits()).await;
    let entries: Vec<PutEventsRequestEntry> = (0..8)
        .map(|i| {
            PutEventsRequestEntry::builder()
                .event_bus_name(&bus)
                .source(&ns)
                .detail_type("FaultProbe")
                .detail(serde_json::json!({"n": i}).to_string())
                .build()
        })
        .collect();

    let out = f.clients.eventbridge.put_events().set_entries(Some(entries)).send().await.unwrap();

    assert_eq!(out.entries().len(), 8, "one result per entry, in order");
    let failed: Vec<usize> =
        out.entries().iter().enumerate().filter(|(_, e)| e.error_code().is_some()).map(|(i, _)| i).collect();
    assert!(!failed.is_empty());
    assert_eq!(out.failed_entry_count(), failed.len() as i32);
    assert!(
        out.entries().iter().filter(|e| e.error_code().is_some()).all(|e| e.error_code() == Some("InternalFailure"))
    );
    assert!(out.entries().iter().filter(|e| e.error_code().is_none()).all(|e| e.event_id().is_some()));
    let expected: BTreeSet<i64> = (0..8).filter(|i| !failed.contains(&(*i as usize))).collect();
    let delivered: BTreeSet<i64> = receive_all(&plain, &url, expected.len())
        .await
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter_map(|v| v["detail"]["n"].as_i64())
        .collect();
    assert_eq!(delivered, expected, "only the entries reported successful reached the bus");
    assert_eq!(f.faults.counts().failed_entries("EventBridge.PutEvents"), failed.len() as u64);
}

#[tokio::test]
async fn switched_off_nothing_is_injected_and_switched_on_again_it_is() {
    let plain = stack::clients().await;
    let table = scratch_table(&plain, &namespace("faults-switch")).await;
    let f = faulty(FaultPlan::new(11).rate("*", FaultKind::Throttle, 1.0), limits()).await;

    f.faults.set_enabled(false);
    assert!(!f.faults.is_enabled());
    put(&f.clients, &table, "order-1", false).await.expect("nothing injected while off");
    assert_eq!(f.faults.counts().total(), 0);
    assert_eq!(f.faults.counts().passed("DynamoDB.PutItem"), 1);

    f.faults.set_enabled(true);
    let err = put(&f.clients, &table, "order-2", false).await.unwrap_err();
    assert!(err.as_service_error().is_some_and(PutItemError::is_provisioned_throughput_exceeded_exception));
    assert_eq!(f.faults.counts().get("DynamoDB.PutItem", FaultKind::Throttle), 3);
    assert_accounted(&f, "DynamoDB.PutItem");
}

/// 30 sequential PutItems under mixed rates, with 5 attempts each.
async fn mixed_run(plain: &Clients, seed: u64) -> (FaultCounts, Vec<Option<String>>) {
    let table = scratch_table(plain, &namespace("faults-mixed")).await;
    let op = "DynamoDB.PutItem";
    let plan = FaultPlan::new(seed)
        .rate(op, FaultKind::FailBeforeSend, 0.15)
        .rate(op, FaultKind::DropResponse, 0.15)
        .rate(op, FaultKind::Throttle, 0.15)
        .rate(op, FaultKind::ServerError, 0.15);
    let f = faulty(plan, SdkLimits { max_attempts: 5, ..limits() }).await;
    let mut outcomes = Vec::new();
    for i in 0..30 {
        let pk = format!("order-{i}");
        let outcome = put(&f.clients, &table, &pk, false).await;
        if outcome.is_ok() {
            assert!(exists(plain, &table, &pk).await);
        }
        outcomes.push(outcome.err().map(|e| e.code().unwrap_or("dispatch").to_owned()));
    }
    assert_accounted(&f, op);
    (f.faults.counts(), outcomes)
}

#[tokio::test]
async fn seeded_rates_reproduce_the_same_faults_and_outcomes() {
    let plain = stack::clients().await;
    let (counts, outcomes) = mixed_run(&plain, 42).await;
    for kind in [FaultKind::FailBeforeSend, FaultKind::DropResponse, FaultKind::Throttle, FaultKind::ServerError] {
        assert!(counts.get("DynamoDB.PutItem", kind) > 0, "{counts}");
    }
    let again = mixed_run(&plain, 42).await;
    assert_eq!((counts, outcomes), again);
}
