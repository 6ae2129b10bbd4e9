//! signin-trust-check end to end on the local stack: an app order shipped and then "signed" at
//! a parcel station, the bus rule's message for it through the function's SQS path, and what
//! one check costs in AWS requests; the evidence page carries no personal data.

use adapters::SqsDeadLetters;
use adapters::{BusPublisher, Clients, DynamoTables, SqsQueue};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::app::apply::ApplyChange;
use domain::app::apply_message::ApplyMessage;
use domain::app::dead_letters::DeadLetterOps;
use domain::app::sign_check::SignCheck;
use domain::model::domain_event::DomainEvent;
use domain::ports::OrderStore;
use domain::ports::clock::Clock as _;
use domain::ports::{OutboundMessage, Queue};
use domain::rules::sign_trust::TrustRules;
use domain::testing::clock::FixedClock;
use domain::testing::fixtures::{self, DayCallback};
use domain::{Lifecycle, OrderKey, Source};
use serde_json::{Value, json};
use signin_trust_check::Handler;
use tests::stack::{self, clients, namespace, tables};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap()
}

struct Rig {
    clients: Clients,
    tables: DynamoTables,
    bus: BusPublisher,
    notify: SqsQueue,
    notify_url: String,
    clock: FixedClock,
    rules: domain::rules::timing::Rules,
    trust: TrustRules,
    shop: String,
    dead_letters: SqsDeadLetters,
    dlq: SqsQueue,
    trust_queue: SqsQueue,
    trust_url: String,
}

impl Rig {
    async fn new() -> Rig {
        let clients = clients().await;
        let shop = namespace("trust");
        let notify_url = stack::scratch_queue(&clients, &shop).await;
        let dlq_url = stack::scratch_queue(&clients, &format!("{shop}-dlq")).await;
        let trust_url = stack::scratch_queue(&clients, &format!("{shop}-q")).await;
        Rig {
            dead_letters: SqsDeadLetters::new(clients.sqs.clone(), dlq_url.clone()),
            dlq: SqsQueue::new(clients.sqs.clone(), dlq_url),
            trust_queue: SqsQueue::new(clients.sqs.clone(), trust_url.clone()),
            trust_url,
            tables: tables(&clients),
            bus: BusPublisher::new(clients.eventbridge.clone(), stack::var("EVENT_BUS_NAME")),
            notify: SqsQueue::new(clients.sqs.clone(), notify_url.clone()),
            notify_url,
            clock: FixedClock::new(at()),
            rules: domain::rules::timing::Rules::default(),
            trust: TrustRules::default(),
            shop,
            clients,
        }
    }

    fn letters(&self) -> DeadLetterOps<'_> {
        DeadLetterOps { dead_letters: &self.dead_letters, source: &self.trust_queue }
    }

    fn normalizer(&self) -> ApplyChange<'_> {
        ApplyChange::new(self.tables.write_ports(&self.clock), &self.rules)
    }

    /// Feeds one callback through status-normalize's path; returns what it published.
    async fn feed(&self, source: Source, payload: Vec<u8>, query: &[(&str, &str)], id: &str) -> Vec<DomainEvent> {
        let callback = DayCallback {
            source,
            shop: self.shop.clone(),
            payload,
            query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            message_id: format!("{}-{id}", self.shop),
            sent_at: self.clock.now(),
        };
        ApplyMessage::new(self.normalizer()).handle(&callback.inbound()).await.unwrap()
    }
}

#[tokio::test]
async fn a_station_sign_is_downgraded_the_customer_told_and_one_check_costs_few_requests() {
    let rig = Rig::new().await;
    let order = format!("app/{}/o1", rig.shop);
    let paid_at = (at() - Duration::hours(30)).to_rfc3339();
    rig.feed(
        Source::App,
        fixtures::app_event("order.status", at(), json!({"order_id": "o1", "status": "Paid", "at": paid_at})),
        &[],
        "paid",
    )
    .await;
    rig.feed(
        Source::App,
        fixtures::app_event(
            "order.address",
            at(),
            json!({"order": order, "addr_key": format!("addr-{}", rig.shop), "district": "西湖区",
                "customer": format!("cust-{}", rig.shop), "lat": 30.2741, "lng": 120.1551}),
        ),
        &[],
        "address",
    )
    .await;
    let shipped = fixtures::kuaidi100_param("shunfeng", "SF1", "1", "101", "已收取快件", "2026-11-10 08:00:00", "");
    rig.feed(Source::Kuaidi100, shipped, &[("order", &order)], "shipped").await;
    let signed = fixtures::kuaidi100_param(
        "shunfeng",
        "SF1",
        "3",
        "304",
        "快件已存放至【菜鸟驿站(幸福里店)】，请凭取货码取件",
        "2026-11-11 09:30:00",
        "120.1552,30.2742",
    );
    let events = rig.feed(Source::Kuaidi100, signed, &[("order", &order)], "signed").await;
    let to_signed = events
        .iter()
        .find(|e| matches!(e, DomainEvent::OrderStatusChanged { to: Lifecycle::Signed, .. }))
        .expect("the carrier's sign moved the order to Signed");
    // What the bus rule delivers to the trust queue: the EventBridge envelope as the body.
    let envelope = json!({"version": "0", "id": "e-1", "source": "orderhub", "account": "000000000000",
        "time": at().to_rfc3339(), "region": "us-east-1", "resources": [],
        "detail-type": to_signed.detail_type(), "detail": to_signed.detail()});
    let sqs = json!({"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": envelope.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs"}]});

    let normalizer = rig.normalizer();
    let app = Handler {
        checker: SignCheck { write: normalizer, signals: &rig.tables.signals, notify: &rig.notify, rules: &rig.trust },
        events: &rig.bus,
        letters: rig.letters(),
    };
    rig.clients.requests.take();
    let answer = serde_json::to_value(app.handle(sqs).await).unwrap();
    let requests = rig.clients.requests.take();
    tests::policy::assert_granted("SigninTrustCheckFunction", &requests);
    let total: u64 = requests.values().sum();
    eprintln!("AWS requests per sign-in check: {total} {requests:?}");

    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let key = OrderKey::parse(Source::App, &rig.shop, "o1").unwrap();
    let stored = rig.tables.orders.get(&key).await.unwrap().unwrap();
    assert_eq!(stored.lifecycle, Some(Lifecycle::SignPendingConfirmation), "a station sign without app evidence");
    let notices = stack::drain(&rig.clients, &rig.notify_url).await;
    assert_eq!(notices.len(), 1, "the customer is told where the parcel is: {notices:?}");
    assert!(notices[0].contains("菜鸟驿站(幸福里店)"), "{}", notices[0]);
    // Measured: 4 GetItem (the order, read again by the versioned write; the address's proxy
    // count, read again after recording this sign), 1 Query (the customer's signals), 2 TransactWriteItems (the address
    // sign, the order's downgrade), 1 SendMessageBatch (the notice), 1 PutEvents.
    assert!(total <= 9, "one check stays a handful of requests: {requests:?}");
    assert_eq!(requests.get("SQS.SendMessageBatch").copied(), Some(1), "{requests:?}");
    assert_eq!(requests.get("EventBridge.PutEvents").copied(), Some(1), "{requests:?}");

    // The same message again (SQS redelivery): no second notice.
    let again = serde_json::to_value(
        app.handle(json!({"Records": [{"messageId": "m-1", "receiptHandle": "r-2", "body": envelope.to_string(),
        "attributes": {"ApproximateReceiveCount": "2"}, "messageAttributes": {}, "eventSource": "aws:sqs"}]}))
            .await,
    )
    .unwrap();
    assert_eq!(again["batchItemFailures"], json!([]), "{again}");
    // A redelivery may be the retry of a check whose notice was never queued (the process died
    // after the commit), so it queues the notice again with the same notice id: notify sends
    // one SMS per notice id, so the customer is told once.
    let notice_id = |body: &str| serde_json::from_str::<Value>(body).unwrap()["notice_id"].clone();
    let again_notices = stack::drain(&rig.clients, &rig.notify_url).await;
    assert!(again_notices.len() <= 1, "{again_notices:?}");
    for resent in &again_notices {
        assert_eq!(notice_id(resent), notice_id(&notices[0]), "the same notice, not a second one");
    }

    // The ops evidence page: the score and the reasons, no customer id, name or phone.
    let evidence: Value = serde_json::to_value(app.handle(json!({"evidence": {"order": order}})).await).unwrap();
    assert_eq!(evidence["signer_kind"], "ParcelStation", "{evidence}");
    assert!(evidence["score"].as_u64().is_some_and(|s| s < 92), "{evidence}");
    assert!(!evidence.to_string().contains("cust-"), "no customer id on the evidence page: {evidence}");
}

/// A sign that failed every check (SQS moved it to the dead-letter queue after its receives):
/// ops see which order it is and how often it was tried, and send it back once fixed.
#[tokio::test]
async fn signs_that_failed_every_check_are_shown_and_redriven() {
    let rig = Rig::new().await;
    let key = OrderKey::parse(Source::App, &rig.shop, "dl1").unwrap();
    let envelope = json!({"version": "0", "id": "e-9", "source": "orderhub", "detail-type": "OrderStatusChanged",
        "detail": {"key": key, "to": "Signed", "provenance": "Callback"}});
    rig.dlq.send(&[OutboundMessage { id: "0".into(), body: envelope.to_string(), attributes: vec![] }]).await.unwrap();
    let app = Handler {
        checker: SignCheck {
            write: rig.normalizer(),
            signals: &rig.tables.signals,
            notify: &rig.notify,
            rules: &rig.trust,
        },
        events: &rig.bus,
        letters: rig.letters(),
    };
    rig.clients.requests.take();
    let seen = serde_json::to_value(app.handle(json!({"dead_letters": {"inspect": {}}})).await).unwrap();
    assert_eq!(seen["letters"].as_array().map(Vec::len), Some(1), "{seen}");
    assert!(seen["letters"][0]["reason"].as_str().is_some_and(|r| r.contains("ran out of receives")), "{seen}");
    assert_eq!(seen["letters"][0]["about"]["detail-type"], "OrderStatusChanged", "{seen}");
    assert!(seen["letters"][0]["about"]["order"].to_string().contains("dl1"), "{seen}");
    let redriven = serde_json::to_value(app.handle(json!({"dead_letters": {"redrive": {}}})).await).unwrap();
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    assert_eq!(stack::drain(&rig.clients, &rig.trust_url).await, vec![envelope.to_string()]);
    tests::policy::assert_granted("SigninTrustCheckFunction", &rig.clients.requests.take());
}
