//! Adapters for orderhub's ports: AWS (DynamoDB, SQS, EventBridge, SSM Parameter Store), the
//! sales platforms' query APIs over HTTPS, the configuration read at init, and JSON logging.
//! The domain never sees an SDK or HTTP type.

pub mod aws;
pub mod bus;
pub mod config;
pub mod dynamo;
#[cfg(feature = "faults")]
pub mod faults;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pages;
pub mod platform;
pub mod schema;
pub mod sqs;
pub mod ssm;
pub mod trigger;

pub use aws::{Clients, RequestCounter};
pub use bus::BusPublisher;
pub use config::{ConfigError, Env, ProcessEnv};
pub use dynamo::{
    DynamoContacts, DynamoInbox, DynamoInventory, DynamoNotify, DynamoOrders, DynamoSignals, DynamoStats, DynamoSync,
    DynamoTables,
};
pub use sqs::{SqsDeadLetters, SqsQueue};
pub use ssm::SsmSecrets;
