//! Configuration from the environment, read once at init. A missing or malformed variable is
//! one clear line naming it, and the function exits before serving any event.

use std::str::FromStr;

/// Why the configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("configuration error: environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable is set but its value is not usable.
    #[error("configuration error: environment variable {var} is malformed: {reason}")]
    Malformed {
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A source of variables (the process environment, or a map in tests).
pub trait Env {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Ends the process at init with one clear line naming the variable (no panic, no backtrace).
pub fn exit(error: &ConfigError) -> ! {
    eprintln!("{error}");
    std::process::exit(2)
}

/// A required, non-empty variable.
pub fn required(env: &dyn Env, var: &'static str) -> Result<String, ConfigError> {
    match env.var(var) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(var)),
    }
}

/// An optional variable parsed as `T`, with a default when unset.
pub fn parsed<T>(env: &dyn Env, var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match env.var(var) {
        None => Ok(default),
        Some(value) if value.trim().is_empty() => Ok(default),
        Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError::Malformed { var, reason: e.to_string() }),
    }
}

/// A required SQS queue URL.
pub fn queue_url(env: &dyn Env, var: &'static str) -> Result<String, ConfigError> {
    let url = required(env, var)?;
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url)
    } else {
        Err(ConfigError::Malformed { var, reason: "expected a queue URL (http:// or https://)".into() })
    }
}

/// A name for this process in leases: the Lambda log stream (one per instance) where there is
/// one, else the host's process id.
pub fn instance_name() -> String {
    std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|stream| stream.rsplit(']').next().unwrap_or(&stream).to_owned())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// The names every function may need: tables, queues, bus, stage, shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `ORDERHUB_STAGE`: the stage in parameter names (`/orderhub/<stage>/…`).
    pub stage: String,
    /// `ORDERS_TABLE`.
    pub orders_table: String,
    /// `STATS_TABLE`.
    pub stats_table: String,
    /// `INBOX_TABLE`.
    pub inbox_table: String,
    /// `COUNTER_SHARDS` (default 16): shards of day counters and due markers.
    pub shards: u16,
}

impl Resources {
    /// Reads the common variables.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let shards = parsed(env, "COUNTER_SHARDS", domain::model::counters::DEFAULT_SHARDS)?;
        if shards == 0 {
            return Err(ConfigError::Malformed { var: "COUNTER_SHARDS", reason: "must be at least 1".into() });
        }
        Ok(Self {
            stage: required(env, "ORDERHUB_STAGE")?,
            orders_table: required(env, "ORDERS_TABLE")?,
            stats_table: required(env, "STATS_TABLE")?,
            inbox_table: required(env, "INBOX_TABLE")?,
            shards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = env(&[("ORDERHUB_STAGE", "dev"), ("STATS_TABLE", "s")]);
        let err = Resources::from_env(&e).unwrap_err();
        assert_eq!(err.to_string(), "configuration error: environment variable ORDERS_TABLE is not set");
    }

    #[test]
    fn a_malformed_variable_is_named_with_the_reason() {
        let e = env(&[
            ("ORDERHUB_STAGE", "dev"),
            ("ORDERS_TABLE", "o"),
            ("STATS_TABLE", "s"),
            ("INBOX_TABLE", "i"),
            ("COUNTER_SHARDS", "eight"),
        ]);
        let err = Resources::from_env(&e).unwrap_err();
        assert!(err.to_string().contains("COUNTER_SHARDS is malformed"), "{err}");
        let e = env(&[("Q", "sqs-queue")]);
        assert!(matches!(queue_url(&e, "Q"), Err(ConfigError::Malformed { var: "Q", .. })));
    }

    #[test]
    fn defaults_apply_when_unset() {
        let e = env(&[("ORDERHUB_STAGE", "dev"), ("ORDERS_TABLE", "o"), ("STATS_TABLE", "s"), ("INBOX_TABLE", "i")]);
        assert_eq!(Resources::from_env(&e).map(|r| r.shards), Ok(16));
    }
}
