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

fn resources_of(t: &Value, kind: &str) -> Vec<(String, Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// The alarms whose metric is `namespace`/`metric` with a dimension `name` set to `value`
/// (as the template writes it: a tag and its text).
fn alarms_on(t: &Value, namespace: &str, metric: &str, name: &str, value: (&str, &str)) -> Vec<String> {
    resources_of(t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, alarm)| {
            let props = &alarm["Properties"];
            props["Namespace"].as_str() == Some(namespace)
                && props["MetricName"].as_str() == Some(metric)
                && props["Dimensions"].as_sequence().into_iter().flatten().any(|d| {
                    d["Name"].as_str() == Some(name) && tagged(&d["Value"]) == (value.0.to_owned(), value.1.to_owned())
                })
        })
        .map(|(logical, _)| logical)
        .collect()
}

/// Every dead-letter queue has an alarm on its depth and one on its oldest message's age, and
/// every alarm reaches notify: its name carries the stage's prefix that notify's rule on the
/// default bus (where CloudWatch puts alarm state changes) selects.
#[test]
fn every_dead_letter_queue_has_depth_and_age_alarms_and_every_alarm_reaches_notify() {
    let t = template();
    for queue in QUEUES {
        let attribute = format!("{}.QueueName", queue.dlq);
        for metric in ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"] {
            let found = alarms_on(&t, "AWS/SQS", metric, "QueueName", ("!GetAtt", &attribute));
            assert_eq!(found.len(), 1, "{}: one {metric} alarm, found {found:?}", queue.dlq);
        }
    }
    let rule = &t["Resources"]["NotifyFunction"]["Properties"]["Events"]["Alarms"]["Properties"];
    assert!(rule["EventBusName"].is_null(), "alarm state changes are on the default bus");
    assert_eq!(rule["Pattern"]["source"][0].as_str(), Some("aws.cloudwatch"));
    assert_eq!(rule["Pattern"]["detail-type"][0].as_str(), Some("CloudWatch Alarm State Change"));
    let prefix = tagged(&rule["Pattern"]["detail"]["alarmName"][0]["prefix"]);
    assert_eq!(prefix, ("!Sub".to_owned(), "orderhub-${Stage}-".to_owned()));
    for (logical, alarm) in resources_of(&t, "AWS::CloudWatch::Alarm") {
        let (tag, name) = tagged(&alarm["Properties"]["AlarmName"]);
        assert!(tag == "!Sub" && name.starts_with(&prefix.1), "{logical}: {name} does not reach notify");
        assert!(alarm["Properties"]["AlarmActions"].is_null(), "{logical}: the bus carries it, no action needed");
    }
    for finding in ["HealthReportReady", "HealthThresholdBreached"] {
        let findings = &t["Resources"]["NotifyFunction"]["Properties"]["Events"]["Findings"]["Properties"];
        let kinds: Vec<&str> =
            findings["Pattern"]["detail-type"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(kinds.contains(&finding), "{finding} goes to notify");
    }
}

/// Every function writes to its own log group, named as Lambda names it and kept for a set
/// time, and has an errors and a throttles alarm.
#[test]
fn every_function_has_a_log_group_with_retention_and_errors_and_throttles_alarms() {
    let t = template();
    let functions = resources_of(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 7);
    for (logical, function) in functions {
        let props = &function["Properties"];
        let binary = function["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert_eq!(tagged(&props["FunctionName"]), ("!Sub".to_owned(), format!("orderhub-${{Stage}}-{binary}")));
        let (tag, group) = tagged(&props["LoggingConfig"]["LogGroup"]);
        assert_eq!(tag, "!Ref", "{logical} writes to its log group");
        let group = &t["Resources"][group.as_str()];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{logical}");
        assert_eq!(
            tagged(&group["Properties"]["LogGroupName"]),
            ("!Sub".to_owned(), format!("/aws/lambda/orderhub-${{Stage}}-{binary}")),
            "{logical}: the group Lambda would use"
        );
        assert_eq!(tagged(&group["Properties"]["RetentionInDays"]), ("!Ref".to_owned(), "LogRetentionDays".to_owned()));
        for metric in ["Errors", "Throttles"] {
            let found = alarms_on(&t, "AWS/Lambda", metric, "FunctionName", ("!Ref", &logical));
            assert_eq!(found.len(), 1, "{logical}: one {metric} alarm, found {found:?}");
        }
    }
    assert!(t["Parameters"]["LogRetentionDays"]["Default"].as_u64().is_some());
}

/// The metric names the dashboard body uses: rows `["orderhub", name, …]` (and the `"..."`
/// rows that repeat them) and `MetricName="…"` in SEARCH expressions over `{orderhub,…}`.
fn dashboard_metrics(body: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    let mut ours = Vec::new();
    let mut others = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        for row in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let row = row.as_array().unwrap();
            match row.first() {
                Some(serde_json::Value::String(namespace)) if namespace == "orderhub" => {
                    ours.push(row[1].as_str().unwrap().to_owned());
                }
                Some(serde_json::Value::String(namespace)) if namespace != "..." => {
                    others.push(format!("{namespace}/{}", row[1].as_str().unwrap()));
                }
                Some(serde_json::Value::Object(expression)) => {
                    let text = expression["expression"].as_str().unwrap();
                    assert!(text.starts_with("SEARCH('{orderhub,"), "{text}");
                    let name = text.split("MetricName=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
                    ours.push(name.to_owned());
                }
                _ => {}
            }
        }
    }
    (ours, others)
}

/// The dashboard body is valid JSON once CloudFormation substitutes it, shows the pipeline (API,
/// queues, dead-letter queues, functions) and names only metrics the code emits, the five
/// health indicators among them; the alarms on orderhub metrics name emitted metrics too.
#[test]
fn the_dashboard_is_json_naming_metrics_the_code_emits_and_every_health_indicator() {
    use adapters::metrics::{NAMESPACE, indicator_metric, names};
    use domain::rules::health::Indicator;
    let t = template();
    let (tag, body) = tagged(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    assert_eq!(tag, "!Sub");
    // What !Sub replaces: ${Param}, ${Resource}, ${Resource.Attr}, ${AWS::Region}.
    let mut substituted = String::new();
    let mut rest = body.as_str();
    while let Some(start) = rest.find("${") {
        substituted.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap();
        let reference = &rest[start + 2..start + end];
        let known = reference.starts_with("AWS::")
            || !t["Parameters"][reference].is_null()
            || !t["Resources"][reference.split('.').next().unwrap()].is_null();
        assert!(known, "${{{reference}}} names nothing in the template");
        substituted.push_str("substituted");
        rest = &rest[start + end + 1..];
    }
    substituted.push_str(rest);
    let body: serde_json::Value = serde_json::from_str(&substituted).unwrap_or_else(|e| panic!("{e}: {substituted}"));
    let (ours, others) = dashboard_metrics(&body);
    let emitted: Vec<&str> = names::ALL.iter().map(|(name, _)| *name).collect();
    for name in &ours {
        assert!(emitted.contains(&name.as_str()), "the dashboard shows {name}, which the code never emits");
    }
    for indicator in Indicator::ALL {
        let (metric, _) = indicator_metric(indicator);
        assert!(ours.iter().any(|m| m == metric), "the dashboard lacks {metric}");
    }
    for pipeline in [
        names::CALLBACKS_ACCEPTED,
        names::EVENTS_APPLIED,
        names::INGEST_LAG_SECONDS,
        names::ALERTS_SENT,
        names::STOCK_RELEASES,
        names::DOWNGRADES,
        names::PULL_LAG_SECONDS,
    ] {
        assert!(ours.iter().any(|m| m == pipeline), "the dashboard lacks {pipeline}");
    }
    for aws in ["AWS/ApiGateway/Count", "AWS/SQS/ApproximateNumberOfMessagesVisible", "AWS/Lambda/Errors"] {
        assert!(others.iter().any(|m| m == aws), "the dashboard lacks {aws}");
    }
    for queue in QUEUES.iter().flat_map(|q| [q.logical_id, q.dlq]) {
        assert!(body_mentions(&t, queue), "the dashboard shows no depth of {queue}");
    }
    for (logical, alarm) in resources_of(&t, "AWS::CloudWatch::Alarm") {
        if alarm["Properties"]["Namespace"].as_str() == Some(NAMESPACE) {
            let metric = alarm["Properties"]["MetricName"].as_str().unwrap();
            assert!(emitted.contains(&metric), "{logical} watches {metric}, which the code never emits");
        }
    }
}

fn body_mentions(t: &Value, logical: &str) -> bool {
    let (_, body) = tagged(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    body.contains(&format!("${{{logical}.QueueName}}"))
}

/// The report bucket is private, encrypted and expiring, and health-report may only put and
/// read its pages there.
#[test]
fn the_report_bucket_is_private_encrypted_expiring_and_health_report_only_writes_pages() {
    let t = template();
    let bucket = &t["Resources"]["ReportBucket"]["Properties"];
    let block = &bucket["PublicAccessBlockConfiguration"];
    for flag in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[flag].as_bool(), Some(true), "{flag}");
    }
    let encryption =
        &bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
    assert!(encryption["SSEAlgorithm"].as_str().is_some());
    let rules = bucket["LifecycleConfiguration"]["Rules"].as_sequence().unwrap();
    assert!(rules.iter().any(|r| r["Prefix"].as_str() == Some("reports/") && !r["ExpirationInDays"].is_null()));
    let function = &t["Resources"]["HealthReportFunction"]["Properties"];
    assert_eq!(
        tagged(&function["Environment"]["Variables"]["REPORT_BUCKET"]),
        ("!Ref".to_owned(), "ReportBucket".to_owned())
    );
    let s3: Vec<&Value> = function["Policies"][0]["Statement"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| format!("{:?}", s["Action"]).contains("s3:"))
        .collect();
    assert_eq!(s3.len(), 1);
    assert_eq!(tagged(&s3[0]["Resource"]), ("!Sub".to_owned(), "${ReportBucket.Arn}/reports/*".to_owned()));
    let granted = tests::policy::granted("HealthReportFunction");
    assert!(granted.contains("s3:PutObject") && granted.contains("s3:GetObject"));
    assert!(!granted.iter().any(|a| a.starts_with("s3:") && a != "s3:PutObject" && a != "s3:GetObject"), "{granted:?}");
}
