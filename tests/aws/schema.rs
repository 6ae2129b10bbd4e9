//! The code, the template and the live tables agree on keys, indexes, TTL and queues.

use adapters::schema::{EVENT_BUS, GSI1, GSI1_PK, GSI1_SK, PK, QUEUES, TABLES, TTL};
use serde_yaml::Value;
use tests::stack::{self, clients};

fn template() -> Value {
    let text = std::fs::read_to_string(stack::root().join("infra/template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn tagged(value: &Value) -> (String, String) {
    match value {
        Value::Tagged(t) => (t.tag.to_string(), t.value.as_str().unwrap_or_default().to_owned()),
        other => (String::new(), format!("{other:?}")),
    }
}

fn keys(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap().to_owned(), k["KeyType"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn the_template_defines_every_table_as_the_code_uses_it() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    for table in TABLES {
        let props = &t["Resources"][table.logical_id]["Properties"];
        assert_eq!(
            t["Resources"][table.logical_id]["Type"].as_str(),
            Some("AWS::DynamoDB::Table"),
            "{}",
            table.logical_id
        );
        let mut want = vec![(PK.to_owned(), "HASH".to_owned())];
        if let Some(sk) = table.sort_key {
            want.push((sk.to_owned(), "RANGE".to_owned()));
        }
        assert_eq!(keys(&props["KeySchema"]), want, "{} keys", table.logical_id);
        let gsis = props["GlobalSecondaryIndexes"].as_sequence().cloned().unwrap_or_default();
        let gsi1 = gsis.iter().find(|g| g["IndexName"].as_str() == Some(GSI1));
        assert_eq!(gsi1.is_some(), table.gsi1, "{} gsi1", table.logical_id);
        if let Some(gsi1) = gsi1 {
            assert_eq!(
                keys(&gsi1["KeySchema"]),
                [(GSI1_PK.to_owned(), "HASH".to_owned()), (GSI1_SK.to_owned(), "RANGE".to_owned())]
            );
        }
        assert_eq!(props["TimeToLiveSpecification"]["AttributeName"].as_str(), Some(TTL));
        assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
        assert_eq!(tagged(&globals[table.env]), ("!Ref".to_owned(), table.logical_id.to_owned()), "{}", table.env);
    }
}

#[test]
fn the_template_defines_every_queue_with_its_dead_letter_queue() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    for queue in QUEUES {
        let resource = &t["Resources"][queue.logical_id];
        assert_eq!(resource["Type"].as_str(), Some("AWS::SQS::Queue"), "{}", queue.logical_id);
        let redrive = &resource["Properties"]["RedrivePolicy"];
        assert_eq!(tagged(&redrive["deadLetterTargetArn"]), ("!GetAtt".to_owned(), format!("{}.Arn", queue.dlq)));
        assert!(redrive["maxReceiveCount"].as_u64().is_some_and(|n| (1..=10).contains(&n)));
        assert_eq!(t["Resources"][queue.dlq]["Type"].as_str(), Some("AWS::SQS::Queue"));
        assert_eq!(tagged(&globals[queue.env]), ("!Ref".to_owned(), queue.logical_id.to_owned()));
    }
    assert_eq!(t["Resources"][EVENT_BUS]["Type"].as_str(), Some("AWS::Events::EventBus"));
    assert_eq!(tagged(&globals["EVENT_BUS_NAME"]), ("!GetAtt".to_owned(), format!("{EVENT_BUS}.Name")));
}

#[test]
fn every_function_crate_is_a_function_of_the_template_built_by_cargo_lambda() {
    let t = template();
    let mut binaries: Vec<String> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| {
            assert_eq!(r["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"));
            for (_, event) in r["Properties"]["Events"].as_mapping().cloned().unwrap_or_default() {
                if event["Type"].as_str() == Some("SQS") {
                    assert_eq!(
                        event["Properties"]["FunctionResponseTypes"][0].as_str(),
                        Some("ReportBatchItemFailures")
                    );
                }
                if event["Type"].as_str() == Some("ScheduleV2") {
                    assert_eq!(event["Properties"]["ScheduleExpressionTimezone"].as_str(), Some("Asia/Shanghai"));
                }
            }
            assert!(
                r["Properties"]["Policies"][0]["Statement"].as_sequence().is_some_and(|s| !s.is_empty()),
                "one inline policy"
            );
            r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned()
        })
        .collect();
    binaries.sort();
    let mut crates: Vec<String> = std::fs::read_dir(stack::root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    crates.sort();
    assert_eq!(binaries, crates);
    assert_eq!(t["Globals"]["Function"]["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(t["Globals"]["Function"]["Architectures"][0].as_str(), Some("arm64"));
}

#[test]
fn every_sweep_the_functions_answer_is_on_a_schedule() {
    // Found by the soak (tests/soak): status-normalize answers `{"sweep": "outbox"}` — the
    // publish of events a failed publish or a killed function left in the outbox — but nothing
    // sent it, so such events (an SLA breach whose publish failed, an assessment whose
    // function died after its commit) were never published.
    let t = template();
    let want: [(&str, serde_json::Value); 4] = [
        (
            "StatusNormalizeFunction",
            serde_json::to_value(status_normalize::Ops::Sweep(status_normalize::Sweep::Sla)).unwrap(),
        ),
        (
            "StatusNormalizeFunction",
            serde_json::to_value(status_normalize::Ops::Sweep(status_normalize::Sweep::Outbox)).unwrap(),
        ),
        (
            "SigninTrustCheckFunction",
            serde_json::to_value(signin_trust_check::Ops::Sweep(signin_trust_check::Sweep::Rechecks)).unwrap(),
        ),
        (
            "RefundDualCheckFunction",
            serde_json::to_value(refund_dual_check::Ops::Sweep(refund_dual_check::Sweep::Refunds)).unwrap(),
        ),
    ];
    for (function, input) in want {
        let scheduled: Vec<serde_json::Value> = t["Resources"][function]["Properties"]["Events"]
            .as_mapping()
            .cloned()
            .unwrap_or_default()
            .values()
            .filter(|e| e["Type"].as_str() == Some("ScheduleV2"))
            .filter_map(|e| e["Properties"]["Input"].as_str().and_then(|i| serde_json::from_str(i).ok()))
            .collect();
        assert!(scheduled.contains(&input), "{function}: {input} is on no schedule ({scheduled:?})");
    }
}

#[tokio::test]
async fn the_live_tables_and_queues_are_what_the_code_expects() {
    let clients = clients().await;
    for table in TABLES {
        let name = stack::var(table.env);
        let described = clients.dynamodb.describe_table().table_name(&name).send().await.unwrap().table.unwrap();
        let live: Vec<(String, String)> = described
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned()))
            .collect();
        let mut want = vec![(PK.to_owned(), "HASH".to_owned())];
        if let Some(sk) = table.sort_key {
            want.push((sk.to_owned(), "RANGE".to_owned()));
        }
        assert_eq!(live, want, "{name}");
        let has_gsi1 = described.global_secondary_indexes().iter().any(|g| g.index_name() == Some(GSI1));
        assert_eq!(has_gsi1, table.gsi1, "{name} gsi1");
        let ttl = clients.dynamodb.describe_time_to_live().table_name(&name).send().await.unwrap();
        assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some(TTL), "{name} ttl");
    }
    for queue in QUEUES {
        let url = stack::var(queue.env);
        let attrs = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap();
        let redrive = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
            .cloned()
            .unwrap_or_default();
        assert!(redrive.contains("DeadLetterQueue"), "{url} has a dead-letter queue: {redrive}");
    }
}

/// The load limits the reliability promise relies on are in the template.
#[test]
fn the_template_limits_load_at_the_door_and_on_every_queue_consumer() {
    let t = template();
    let api = &t["Resources"]["WebhookApi"]["Properties"]["DefaultRouteSettings"];
    for limit in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
        assert!(!api[limit].is_null(), "the HTTP API has no {limit}: a flood reaches the functions");
    }
    for (name, function) in t["Resources"].as_mapping().unwrap() {
        if function["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        for (_, event) in function["Properties"]["Events"].as_mapping().cloned().unwrap_or_default() {
            if event["Type"].as_str() == Some("SQS") {
                let max = &event["Properties"]["ScalingConfig"]["MaximumConcurrency"];
                assert!(!max.is_null(), "{name:?}: an SQS event source without a maximum concurrency");
            }
        }
    }
    for function in ["RefundDualCheckFunction", "HealthReportFunction"] {
        let reserved = t["Resources"][function]["Properties"]["ReservedConcurrentExecutions"].as_u64();
        assert_eq!(reserved, Some(1), "{function}: one run at a time protects the platforms' APIs and the report");
    }
}

/// A delivery's dedupe lease must outlive any attempt that can still act (the function's
/// timeout), and the door's budget must end before the function is killed.
#[test]
fn the_inbox_lease_outlives_the_webhook_function_and_its_budget_ends_before_it() {
    let t = template();
    let function = &t["Resources"]["WebhookVerifyFunction"]["Properties"];
    let timeout_s = function["Timeout"].as_u64().unwrap();
    let variables = &function["Environment"]["Variables"];
    let lease_s = variables["INBOX_LEASE_SECONDS"].as_u64().expect("INBOX_LEASE_SECONDS is set");
    let budget_ms = variables["DOOR_BUDGET_MS"].as_u64().expect("DOOR_BUDGET_MS is set");
    assert!(lease_s > timeout_s, "lease {lease_s} s must outlive the timeout {timeout_s} s");
    assert!(budget_ms < timeout_s * 1000, "budget {budget_ms} ms must end before the timeout {timeout_s} s");
    // After the budget, one more SDK call (giving the lease back) still ends before the kill.
    let operation_ms = u64::try_from(adapters::aws::SdkLimits::default().operation_timeout.as_millis()).unwrap();
    assert!(
        budget_ms + operation_ms < timeout_s * 1000,
        "budget {budget_ms} ms + one SDK call {operation_ms} ms must end before the timeout {timeout_s} s"
    );
}

/// The bus rule sends a carrier's Signed to the trust check, and never a Signed orderhub's own
/// rule made (a promoted sign would be judged again, and the customer told again).
#[tokio::test]
async fn the_live_bus_rule_sends_carrier_signs_to_the_trust_queue_and_not_rule_made_ones() {
    use domain::model::domain_event::DomainEvent;
    use domain::model::lifecycle::{Lifecycle, Stage};
    use domain::model::order::Provenance;
    use domain::ports::EventPublisher;
    use domain::{OrderKey, Source};

    let clients = clients().await;
    let bus = adapters::BusPublisher::new(clients.eventbridge.clone(), stack::var("EVENT_BUS_NAME"));
    let shop = stack::namespace("rule").replace('-', "");
    let at = chrono::Utc::now();
    let signed = |order: &str, provenance| DomainEvent::OrderStatusChanged {
        key: OrderKey::parse(Source::App, &shop, order).unwrap(),
        from: Some(Lifecycle::SignPendingConfirmation),
        to: Lifecycle::Signed,
        stage: Stage::Signed,
        event_time: at,
        applied_at: at,
        provenance,
    };
    let events = [signed("by-carrier", Provenance::Callback), signed("by-rule", Provenance::Rule)];
    assert!(bus.publish(&events).await.unwrap().is_empty());
    let url = stack::var("TRUST_QUEUE_URL");
    let mut ours = Vec::new();
    // The trust queue is the stack's: keep only this test's messages, poll with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ours.is_empty() && std::time::Instant::now() < deadline {
        ours.extend(stack::drain(&clients, &url).await.into_iter().filter(|body| body.contains(&shop)));
    }
    ours.extend(stack::drain(&clients, &url).await.into_iter().filter(|body| body.contains(&shop)));
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0].contains("by-carrier"), "{ours:?}");
}
