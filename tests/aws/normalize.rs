//! status-normalize end to end on the local stack: partial batch failures, dead letters with
//! their reason, a day delivered three times shuffled to concurrent consumers, and the AWS
//! requests each applied event and each duplicate costs.

use adapters::{BusPublisher, Clients, DynamoTables, SqsDeadLetters, SqsQueue};
use aws_lambda_events::sqs::SqsMessage;
use chrono::{DateTime, TimeZone, Utc};
use domain::app::announce::Announce;
use domain::app::apply::ApplyChange;
use domain::app::apply_message::ApplyMessage;
use domain::app::dead_letters::DeadLetterOps;
use domain::model::callback::InboundMessage;
use domain::ports::OrderStore;
use domain::rules::timing::Rules;
use domain::testing::clock::FixedClock;
use domain::testing::fixtures::{self, DayCallback};
use domain::testing::memory::{MemoryInbox, MemoryStore};
use serde_json::json;
use status_normalize::Handler;
use tests::stack::{self, clients, namespace, tables};

struct Rig {
    clients: Clients,
    tables: DynamoTables,
    bus: BusPublisher,
    dead_letter: SqsQueue,
    dead_letter_url: String,
    letters: SqsDeadLetters,
    inbound: SqsQueue,
    inbound_url: String,
    clock: FixedClock,
    rules: Rules,
}

impl Rig {
    async fn new(prefix: &str, at: DateTime<Utc>) -> Rig {
        let clients = clients().await;
        let dead_letter_url = stack::scratch_queue(&clients, &namespace(prefix)).await;
        let inbound_url = stack::scratch_queue(&clients, &namespace(&format!("{prefix}-in"))).await;
        Rig {
            letters: SqsDeadLetters::new(clients.sqs.clone(), dead_letter_url.clone()),
            inbound: SqsQueue::new(clients.sqs.clone(), inbound_url.clone()),
            inbound_url,
            tables: tables(&clients),
            bus: BusPublisher::new(clients.eventbridge.clone(), stack::var("EVENT_BUS_NAME")),
            dead_letter: SqsQueue::new(clients.sqs.clone(), dead_letter_url.clone()),
            dead_letter_url,
            clock: FixedClock::new(at),
            rules: Rules::default(),
            clients,
        }
    }

    fn app(&self) -> Handler<'_> {
        Handler {
            messages: ApplyMessage::new(ApplyChange::new(self.tables.write_ports(&self.clock), &self.rules)),
            events: &self.bus,
            dead_letter: &self.dead_letter,
            letters: DeadLetterOps { dead_letters: &self.letters, source: &self.inbound },
            stats: &self.tables.stats,
        }
    }
}

fn record(id: &str, body: &str) -> SqsMessage {
    serde_json::from_value(json!({"messageId": id, "receiptHandle": id, "body": body, "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}})).unwrap()
}

/// Inbound messages as SQS batches of ten, each record with an id unique in the run.
fn batches_of_ten(messages: &[InboundMessage]) -> Vec<Vec<SqsMessage>> {
    messages
        .chunks(10)
        .enumerate()
        .map(|(b, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, m)| record(&format!("{b}-{i}"), &serde_json::to_string(m).unwrap()))
                .collect()
        })
        .collect()
}

/// Shops of their own per test, so tests never share orders.
fn with_shop(day: Vec<DayCallback>, shop: &str) -> Vec<DayCallback> {
    day.into_iter()
        .map(|mut c| {
            c.shop = shop.to_owned();
            c.query = c.query.into_iter().map(|(k, v)| (k, v.replace("shop-1001", shop))).collect();
            c
        })
        .collect()
}

#[tokio::test]
async fn ops_see_dead_letters_with_their_reasons_and_redrive_them_once_fixed() {
    let at = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap();
    let rig = Rig::new("sn-dlq", at).await;
    rig.clients.requests.take();
    let shop = namespace("sd").replace('-', "");
    let malformed = DayCallback {
        source: domain::Source::Douyin,
        shop,
        payload: b"{\"not\":\"an array\"}".to_vec(),
        query: vec![],
        message_id: "d1".into(),
        sent_at: at,
    };
    let body = serde_json::to_string(&malformed.inbound()).unwrap();
    let records = vec![record("r1", &body), record("r2", "this is not an inbound message")];
    assert!(rig.app().batch(records, None).await.batch_item_failures.is_empty());

    let app = rig.app();
    let seen = serde_json::to_value(app.handle(json!({"dead_letters": {"inspect": {"max": 20}}})).await).unwrap();
    let letters = seen["letters"].as_array().cloned().unwrap_or_default();
    assert_eq!(letters.len(), 2, "{seen}");
    assert!(letters.iter().any(|l| l["reason"].as_str().is_some_and(|r| r.contains("malformed"))), "{seen}");
    assert!(letters.iter().any(|l| l["about"]["message_id"] == "d1"), "{seen}");
    assert!(!seen.to_string().contains("an array"), "never the payload: {seen}");
    // Looking leaves them there, visible at once.
    let again = serde_json::to_value(app.handle(json!({"dead_letters": {"inspect": {}}})).await).unwrap();
    assert_eq!(again["letters"].as_array().map(Vec::len), Some(2), "{again}");

    let redriven = serde_json::to_value(app.handle(json!({"dead_letters": {"redrive": {"max": 100}}})).await).unwrap();
    assert_eq!((redriven["read"].as_u64(), redriven["redriven"].as_u64()), (Some(2), Some(2)), "{redriven}");
    let back = stack::drain(&rig.clients, &rig.inbound_url).await;
    assert_eq!(back.len(), 2, "back on the inbound queue");
    assert!(back.contains(&body), "byte for byte");
    let empty = serde_json::to_value(app.handle(json!({"dead_letters": {"inspect": {}}})).await).unwrap();
    assert_eq!(empty["letters"].as_array().map(Vec::len), Some(0), "the dead-letter queue is empty: {empty}");
    tests::policy::assert_granted("StatusNormalizeFunction", &rig.clients.requests.take());
}

#[tokio::test]
async fn one_bad_message_never_redelivers_its_neighbours_and_dead_letters_with_its_reason() {
    let at = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap();
    let rig = Rig::new("sn-batch", at).await;
    let shop = namespace("sb").replace('-', "");
    let good = DayCallback {
        source: domain::Source::Douyin,
        shop: shop.clone(),
        payload: fixtures::douyin_push("101", "b1", json!({"p_id": "7001", "pay_time": at.timestamp()})),
        query: vec![],
        message_id: "b1".into(),
        sent_at: at,
    };
    let malformed =
        DayCallback { payload: b"{\"not\":\"an array\"}".to_vec(), message_id: "b2".into(), ..good.clone() };
    let records = vec![
        record("r1", &serde_json::to_string(&good.inbound()).unwrap()),
        record("r2", &serde_json::to_string(&malformed.inbound()).unwrap()),
        record("r3", "this is not an inbound message"),
    ];
    let response = rig.app().batch(records, None).await;
    assert!(response.batch_item_failures.is_empty(), "permanent failures are dead-lettered, not retried: {response:?}");
    let dead = rig
        .clients
        .sqs
        .receive_message()
        .queue_url(&rig.dead_letter_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let reasons: Vec<String> = dead
        .messages()
        .iter()
        .filter_map(|m| {
            m.message_attributes().and_then(|a| a.get("reason")).and_then(|r| r.string_value()).map(str::to_owned)
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("malformed")), "{reasons:?}");
    let key = domain::OrderKey::parse(domain::Source::Douyin, &shop, "7001").unwrap();
    assert_eq!(rig.tables.orders.get(&key).await.unwrap().and_then(|o| o.lifecycle), Some(domain::Lifecycle::Paid));
}

#[tokio::test]
async fn a_day_three_times_shuffled_with_concurrent_consumers_ends_as_in_order_on_dynamodb() {
    let at = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap();
    let rig = Rig::new("sn-day", at + chrono::Duration::days(1)).await;
    let shop = namespace("sd").replace('-', "");
    let day = with_shop(fixtures::day(6, at), &shop);
    // In order, in memory: the expected final states.
    let memory = MemoryStore::default();
    let memory_inbox = MemoryInbox::default();
    let expected_rules = Rules::default();
    let in_order = ApplyMessage::new(ApplyChange::new(memory.write_ports(&memory_inbox, &rig.clock), &expected_rules));
    for callback in &day {
        in_order.handle(&callback.inbound()).await.unwrap();
    }
    // Three times, shuffled, ten messages per batch, three batches at a time.
    let mut deliveries: Vec<InboundMessage> = day.iter().chain(&day).chain(&day).map(DayCallback::inbound).collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..deliveries.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        deliveries.swap(i, usize::try_from(state % (i as u64 + 1)).unwrap());
    }
    let app = rig.app();
    let batches = batches_of_ten(&deliveries);
    for group in batches.chunks(3) {
        let responses = futures::future::join_all(group.iter().map(|batch| app.batch(batch.clone(), None))).await;
        for response in responses {
            assert!(response.batch_item_failures.is_empty(), "{response:?}");
        }
    }
    let mut compared = 0;
    for callback in &day {
        let message = callback.inbound();
        let Ok(events) = domain::sources::parse(
            message.source,
            &message.shop,
            message.payload.as_deref().unwrap_or_default().as_bytes(),
            &message.query,
        ) else {
            continue;
        };
        for event in events {
            let key = match event {
                domain::model::source_event::SourceEvent::Status(s) => s.key,
                domain::model::source_event::SourceEvent::Logistics(l) => l.key,
                _ => continue,
            };
            let want =
                memory.get(&key).await.unwrap().map(|o| (o.lifecycle, o.refund, o.entered, o.waybill, o.unmapped));
            let got = rig
                .tables
                .orders
                .get(&key)
                .await
                .unwrap()
                .map(|o| (o.lifecycle, o.refund, o.entered, o.waybill, o.unmapped));
            assert!(want.is_some());
            assert_eq!(got, want, "{key}");
            let history = |page: domain::ports::Page<domain::model::record::HistoryEntry>| {
                page.items.into_iter().map(|h| h.message_id).collect::<Vec<_>>()
            };
            assert_eq!(
                history(rig.tables.orders.history(&key, None, 1000).await.unwrap()),
                history(memory.history(&key, None, 1000).await.unwrap()),
                "{key}: nothing missing from history, nothing twice"
            );
            compared += 1;
        }
    }
    eprintln!("compared {compared} events' orders after {} deliveries", deliveries.len());
}

#[tokio::test]
async fn aws_requests_per_applied_event_and_per_duplicate() {
    let at = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap();
    let rig = Rig::new("sn-count", at).await;
    let shop = namespace("sc").replace('-', "");
    let messages: Vec<InboundMessage> = (0..40)
        .map(|n| {
            DayCallback {
                source: domain::Source::Douyin,
                shop: shop.clone(),
                payload: fixtures::douyin_push(
                    "100",
                    &format!("c{n}"),
                    json!({"p_id": format!("80{n:04}"), "create_time": at.timestamp()}),
                ),
                query: vec![],
                message_id: format!("c{n}"),
                sent_at: at,
            }
            .inbound()
        })
        .collect();
    let batches = batches_of_ten(&messages);
    // As the function is wired: the events go out through the outbox publisher, which clears
    // the outbox entries of what the bus took.
    let announce = Announce { bus: &rig.bus, orders: &rig.tables.orders };
    let app = Handler { events: &announce, ..rig.app() };
    rig.clients.requests.take();
    for batch in &batches {
        assert!(app.batch(batch.clone(), None).await.batch_item_failures.is_empty());
    }
    let applied = rig.clients.requests.take();
    tests::policy::assert_granted("StatusNormalizeFunction", &applied);
    let get = applied.get("DynamoDB.GetItem").copied().unwrap_or(0);
    let write = applied.get("DynamoDB.TransactWriteItems").copied().unwrap_or(0);
    let put_events = applied.get("EventBridge.PutEvents").copied().unwrap_or(0);
    let cleared = applied.get("DynamoDB.BatchWriteItem").copied().unwrap_or(0);
    eprintln!(
        "per applied event: {:.2} GetItem, {:.2} TransactWriteItems, {:.2} PutEvents, {:.2} BatchWriteItem (outbox cleared), {:.2} in all ({applied:?})",
        get as f64 / 40.0,
        write as f64 / 40.0,
        put_events as f64 / 40.0,
        cleared as f64 / 40.0,
        applied.values().sum::<u64>() as f64 / 40.0
    );
    assert_eq!(write, 40, "one write per applied event (its outbox entries in the same transaction)");
    assert_eq!(get, 40, "one read per applied event (the version the write is conditional on)");
    assert_eq!(put_events, 4, "events of a batch of ten go out in one PutEvents");
    assert_eq!(cleared, 4, "and their outbox entries are cleared in one BatchWriteItem");
    for batch in &batches {
        assert!(app.batch(batch.clone(), None).await.batch_item_failures.is_empty());
    }
    let duplicate = rig.clients.requests.take();
    tests::policy::assert_granted("StatusNormalizeFunction", &duplicate);
    eprintln!("per duplicate: {duplicate:?} for 40");
    assert_eq!(duplicate.get("DynamoDB.TransactWriteItems").copied(), Some(40), "one refused conditional write each");
}

/// Throughput of one handler instance (batches of ten, one after another, as one Lambda
/// instance takes them) and where the time goes. `scripts/bench.sh stack` runs it with about
/// 10 000 events (`ORDERHUB_BENCH=1`); CI runs a few hundred.
#[tokio::test]
async fn throughput_of_one_instance_and_where_the_time_goes() {
    let at = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap();
    let mut rig = Rig::new("sn-throughput", at + chrono::Duration::days(1)).await;
    let ns = namespace("tp");
    // Tables of its own, so the count and timing see only this run.
    rig.tables = DynamoTables::from_names(
        rig.clients.dynamodb.clone(),
        &stack::private_table(&rig.clients, "ORDERS_TABLE", &ns).await,
        &stack::private_table(&rig.clients, "STATS_TABLE", &ns).await,
        &stack::var("INBOX_TABLE"),
    );
    let bench = std::env::var("ORDERHUB_BENCH").is_ok_and(|v| v == "1");
    let orders_per_channel = if bench { 490 } else { 10 };
    let day = with_shop(fixtures::day(orders_per_channel, at), &ns.replace('-', ""));
    let messages: Vec<SqsMessage> = day
        .iter()
        .enumerate()
        .map(|(i, c)| record(&format!("t{i}"), &serde_json::to_string(&c.inbound()).unwrap()))
        .collect();
    let announce = Announce { bus: &rig.bus, orders: &rig.tables.orders };
    let app = Handler { events: &announce, ..rig.app() };
    rig.clients.requests.take();
    rig.clients.requests.take_waited();
    let started = std::time::Instant::now();
    for batch in messages.chunks(10) {
        let response = app.batch(batch.to_vec(), None).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let elapsed = started.elapsed();
    let requests = rig.clients.requests.take();
    let waited = rig.clients.requests.take_waited();
    let total: u64 = requests.values().sum();
    let waiting: std::time::Duration = waited.values().sum();
    eprintln!(
        "throughput: {} events in {elapsed:.2?} = {:.0} events/s; {:.2} AWS requests per event {requests:?}; waiting on AWS {waiting:.2?} ({:.0} %) {waited:?}",
        messages.len(),
        messages.len() as f64 / elapsed.as_secs_f64(),
        total as f64 / messages.len() as f64,
        100.0 * waiting.as_secs_f64() / elapsed.as_secs_f64(),
    );
}
