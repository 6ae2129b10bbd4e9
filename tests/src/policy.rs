//! What the template lets each function do, checked against what the code did.
//!
//! The SDK clients count every request by operation (`adapters::aws::RequestCounter`); a test
//! that ran a function's handler passes those counts to [`assert_granted`], which fails when the
//! function's policy in `infra/template.yaml` does not grant one of them. moto does not enforce
//! IAM, so without this a missing action only shows up as `AccessDenied` after a deploy.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use crate::stack;

/// The template as YAML (CloudFormation tags kept as tagged values).
pub fn template() -> Value {
    let path = stack::root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The IAM actions the template grants the function `logical_id` in its inline policies.
pub fn granted(logical_id: &str) -> BTreeSet<String> {
    let template = template();
    let function = &template["Resources"][logical_id];
    assert!(function.is_mapping(), "{logical_id} is not a resource of the template");
    let mut actions = BTreeSet::new();
    for policy in function["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            if statement["Effect"].as_str() != Some("Allow") {
                continue;
            }
            match &statement["Action"] {
                Value::String(one) => {
                    actions.insert(one.clone());
                }
                Value::Sequence(many) => actions.extend(many.iter().filter_map(Value::as_str).map(str::to_owned)),
                _ => {}
            }
        }
    }
    actions
}

/// The IAM action an SDK operation needs, from the counter's `Service.Operation` name.
pub fn action_of(operation: &str) -> String {
    let (service, name) = operation.split_once('.').unwrap_or(("", operation));
    let prefix = match service {
        "DynamoDB" => "dynamodb",
        "SQS" => "sqs",
        "EventBridge" => "events",
        "SSM" => "ssm",
        "S3" => "s3",
        "CloudWatch" => "cloudwatch",
        other => panic!("no IAM prefix known for the service {other}"),
    };
    // The batch calls of SQS are authorised by the single-message action.
    let name = match (prefix, name) {
        ("sqs", "SendMessageBatch") => "SendMessage",
        ("sqs", "DeleteMessageBatch") => "DeleteMessage",
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        (_, name) => name,
    };
    format!("{prefix}:{name}")
}

/// The item actions a DynamoDB transaction is authorised by: "Permissions for Put, Update,
/// Delete, and Get actions are governed by the permissions used for the underlying PutItem,
/// UpdateItem, DeleteItem, and GetItem operations" (docs.aws.amazon.com/amazondynamodb/latest/
/// developerguide/transaction-apis-iam.html); there is no `dynamodb:TransactWriteItems` action.
const TRANSACTION_ITEM_ACTIONS: [&str; 4] =
    ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"];

/// Fails when the function's policy does not grant an operation the code made. A transaction
/// passes when the policy grants item actions (which of them its items use is not visible in
/// the request counts).
pub fn assert_granted(logical_id: &str, requests: &BTreeMap<String, u64>) {
    let granted = granted(logical_id);
    let missing: Vec<String> = requests
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(operation, _)| action_of(operation))
        .filter(|action| match action.as_str() {
            "dynamodb:TransactWriteItems" => !TRANSACTION_ITEM_ACTIONS.iter().any(|a| granted.contains(*a)),
            action => !granted.contains(action),
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{logical_id} called {missing:?}, which infra/template.yaml does not grant it (granted: {granted:?})"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_the_policy_does_not_grant_is_named() {
        let requests = BTreeMap::from([("DynamoDB.Scan".to_owned(), 1)]);
        let failed = std::panic::catch_unwind(|| assert_granted("HealthReportFunction", &requests));
        assert!(failed.is_err(), "a Scan is not granted to the health report");
        let ok = BTreeMap::from([("EventBridge.PutEvents".to_owned(), 2), ("DynamoDB.Query".to_owned(), 3)]);
        assert_granted("HealthReportFunction", &ok);
    }

    #[test]
    fn batch_calls_need_the_single_message_action() {
        assert_eq!(action_of("SQS.SendMessageBatch"), "sqs:SendMessage");
        assert_eq!(action_of("DynamoDB.BatchWriteItem"), "dynamodb:BatchWriteItem");
        assert_eq!(action_of("EventBridge.PutEvents"), "events:PutEvents");
    }
}
