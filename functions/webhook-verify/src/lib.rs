//! webhook-verify: the front door for callbacks (`POST /webhooks/{source}/{shop}`).

use adapters::config::{self, ConfigError, Env};

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ORDERHUB_STAGE`.
    pub stage: String,
    /// `INBOX_TABLE`.
    pub inbox_table: String,
    /// `STATS_TABLE`.
    pub stats_table: String,
    /// `INBOUND_QUEUE_URL`.
    pub inbound_queue_url: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stage: config::required(env, "ORDERHUB_STAGE")?,
            inbox_table: config::required(env, "INBOX_TABLE")?,
            stats_table: config::required(env, "STATS_TABLE")?,
            inbound_queue_url: config::queue_url(env, "INBOUND_QUEUE_URL")?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
        })
    }
}
