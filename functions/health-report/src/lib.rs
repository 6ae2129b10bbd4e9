//! health-report.

use adapters::config::{ConfigError, Env, Resources};

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tables, stage and shards.
    pub resources: Resources,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self { resources: Resources::from_env(env)? })
    }
}
