//! Every sample event in `events/<function>/` decodes into its function's typed trigger or ops
//! event, every ops event each function accepts has a sample, and every sample the README's ops
//! table names exists and decodes: the README, the samples and the types cannot drift apart.

use std::collections::BTreeSet;

use aws_lambda_events::sqs::SqsEvent;
use chrono::Utc;
use serde_json::Value;
use tests::stack;

fn samples(function: &str) -> Vec<(String, Value)> {
    let dir = stack::root().join("events").join(function);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (name, value)
        })
        .collect()
}

/// The trigger or the ops variant an invocation decoded to.
fn kind<T, O: serde::Serialize>(
    invocation: Result<adapters::trigger::Invocation<T, O>, adapters::trigger::DecodeError>,
) -> Result<String, String> {
    match invocation {
        Ok(adapters::trigger::Invocation::Trigger(_)) => Ok("trigger".to_owned()),
        Ok(adapters::trigger::Invocation::Ops(ops)) => Ok(variant_name(&ops)),
        Err(err) => Err(err.to_string()),
    }
}

/// Decodes a sample as its function does; `Ok(kind)` names the trigger or ops variant.
fn decode(function: &str, event: Value) -> Result<String, String> {
    use adapters::trigger::decode;
    match function {
        "webhook-verify" => kind(webhook_verify::decode(event)),
        "status-normalize" => kind(decode::<SqsEvent, status_normalize::Ops>(event, status_normalize::SHAPE)),
        "refund-dual-check" => kind(decode::<Value, refund_dual_check::Ops>(event, refund_dual_check::SHAPE)),
        "signin-trust-check" => kind(decode::<SqsEvent, signin_trust_check::Ops>(event, signin_trust_check::SHAPE)),
        "health-report" => match health_report::request::decide(&event, Utc::now()) {
            Ok(request) => Ok(format!("{request:?}").split(['(', ' ']).next().unwrap_or_default().to_lowercase()),
            Err(err) => Err(err.to_string()),
        },
        other => panic!("no decoder for {other}"),
    }
}

/// The externally tagged name of an ops variant, as its JSON says it.
fn variant_name<T: serde::Serialize>(ops: &T) -> String {
    match serde_json::to_value(ops).unwrap() {
        Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
        Value::String(name) => name,
        other => other.to_string(),
    }
}

const FUNCTIONS: [(&str, &[&str]); 5] = [
    ("webhook-verify", &["trigger", "replay"]),
    ("status-normalize", &["trigger", "sweep"]),
    ("refund-dual-check", &["sweep", "release", "recheck"]),
    ("signin-trust-check", &["trigger", "sweep", "evidence", "recheck"]),
    ("health-report", &["report", "silence"]),
];

#[test]
fn every_sample_decodes_and_every_event_kind_has_a_sample() {
    for (function, kinds) in FUNCTIONS {
        let mut seen = BTreeSet::new();
        for (file, event) in samples(function) {
            // Samples of refused callbacks are HTTP requests too: they decode as the trigger.
            let kind = decode(function, event).unwrap_or_else(|e| panic!("events/{function}/{file}: {e}"));
            seen.insert(kind);
        }
        for kind in kinds {
            assert!(seen.contains(*kind), "events/{function}/ has no sample of `{kind}` (has {seen:?})");
        }
    }
}

#[test]
fn a_malformed_ops_event_is_named_by_its_field() {
    let err = decode("refund-dual-check", serde_json::json!({"release": {"order": []}})).unwrap_err();
    assert!(err.contains("orders"), "{err}");
    let err = decode("refund-dual-check", serde_json::json!({"release": {"orders": ["douyin/only-two"]}})).unwrap_err();
    assert!(err.contains("channel/shop/order_id"), "{err}");
    let err = decode("webhook-verify", serde_json::json!({"replay": {"source": "douyin", "shop": "s"}})).unwrap_err();
    assert!(err.contains("from"), "{err}");
    let err = decode("signin-trust-check", serde_json::json!({"evidence": {}})).unwrap_err();
    assert!(err.contains("order"), "{err}");
}

#[test]
fn every_sample_the_readme_names_exists_and_decodes() {
    let readme = std::fs::read_to_string(stack::root().join("README.md")).unwrap();
    let mut named = 0;
    for (function, _) in FUNCTIONS {
        let prefix = format!("events/{function}/");
        for (at, _) in readme.match_indices(&prefix) {
            let rest = &readme[at + prefix.len()..];
            let file: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
            if !file.ends_with(".json") {
                continue;
            }
            let path = stack::root().join(&prefix).join(&file);
            let event: Value = serde_json::from_str(
                &std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("README names {prefix}{file}: missing")),
            )
            .unwrap();
            decode(function, event).unwrap_or_else(|e| panic!("README names {prefix}{file}: {e}"));
            named += 1;
        }
    }
    assert!(named >= 10, "the README's ops table names its samples ({named} found)");
}
