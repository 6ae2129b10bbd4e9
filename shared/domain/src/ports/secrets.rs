//! Per-source, per-shop secrets: where they live, what they hold, and a cache in front of the
//! parameter store so a rotation takes effect within the TTL without a read per callback.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::RwLock;

use crate::model::ids::{ShopId, Source};
use crate::model::secret::ApiTokens;
pub use crate::model::secret::Secret;
use crate::ports::clock::Clock;
use crate::ports::{Secrets, SecretsError};
use crate::sources::{self, ShopSecret};

/// The parameter name of a shop's secret: `/orderhub/<stage>/sources/<source>/<shop>`.
pub fn parameter_name(stage: &str, source: Source, shop: &ShopId) -> String {
    format!("/orderhub/{stage}/sources/{source}/{shop}")
}

/// A shop's secret parameter (JSON) with its API tokens replaced: every other field, whatever
/// its source's type, is kept as stored.
pub fn with_tokens(json: &str, tokens: &ApiTokens) -> Result<String, String> {
    let mut value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("stored secret is malformed: line {} column {}", e.line(), e.column()))?;
    let serde_json::Value::Object(map) = &mut value else { return Err("stored secret is not a JSON object".into()) };
    let serde_json::Value::Object(fresh) = serde_json::to_value(tokens).map_err(|e| e.to_string())? else {
        return Err("tokens are not an object".into());
    };
    for (name, field) in fresh {
        if field.is_null() {
            map.remove(&name);
        } else {
            map.insert(name, field);
        }
    }
    Ok(value.to_string())
}

/// Why a shop's secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretLookupError {
    /// No parameter for this source and shop: an unknown shop.
    #[error("no secret configured for this shop")]
    UnknownShop,
    /// The parameter is not the expected JSON.
    #[error("secret parameter is malformed: {0}")]
    Malformed(String),
    /// The parameter store failed.
    #[error(transparent)]
    Unavailable(#[from] SecretsError),
}

#[derive(Clone)]
struct Cached {
    value: Option<ShopSecret>,
    fetched_at: DateTime<Utc>,
}

/// A TTL cache of shop secrets in front of any [`Secrets`] port. Lives for the life of the
/// Lambda instance, so warm invocations read no parameter.
pub struct SecretCache<'a> {
    store: &'a dyn Secrets,
    clock: &'a dyn Clock,
    stage: String,
    ttl: Duration,
    entries: RwLock<HashMap<(Source, ShopId), Cached>>,
    reads: std::sync::Mutex<ReadBudget>,
}

/// Shops remembered as "not configured" per instance: beyond it the oldest are forgotten, so
/// shop names made up in URLs cannot grow the cache without bound.
pub const MAX_UNKNOWN_SHOPS: usize = 1024;

/// Parameter reads an instance may make for shops it has not cached: a burst of
/// [`READ_BURST`], then one per second. A flood of made-up shop names then costs at most one
/// parameter read per second per instance (SSM's standard throughput is 40 per second per
/// account), and the callbacks over budget are answered 503 so their senders retry.
pub const READ_BURST: f64 = 100.0;

/// A token bucket over the clock.
struct ReadBudget {
    tokens: f64,
    at: Option<DateTime<Utc>>,
}

impl ReadBudget {
    fn take(&mut self, now: DateTime<Utc>) -> bool {
        let elapsed = self.at.map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
        self.tokens = (self.tokens + elapsed).min(READ_BURST);
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl<'a> SecretCache<'a> {
    /// A cache over `store` for `stage`, keeping entries for `ttl`.
    pub fn new(store: &'a dyn Secrets, clock: &'a dyn Clock, stage: impl Into<String>, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            stage: stage.into(),
            ttl,
            entries: RwLock::new(HashMap::new()),
            reads: std::sync::Mutex::new(ReadBudget { tokens: READ_BURST, at: None }),
        }
    }

    /// The shop's secret, parsed by its source's module into its own type, from the cache while
    /// fresh.
    pub async fn get(&self, source: Source, shop: &ShopId) -> Result<ShopSecret, SecretLookupError> {
        let now = self.clock.now();
        let key = (source, shop.clone());
        if let Some(cached) = self.entries.read().await.get(&key)
            && now - cached.fetched_at < self.ttl
        {
            return cached.value.clone().ok_or(SecretLookupError::UnknownShop);
        }
        let allowed = self.reads.lock().map(|mut budget| budget.take(now)).unwrap_or(true);
        if !allowed {
            return Err(SecretLookupError::Unavailable(SecretsError::Unavailable(
                "secret reads over this instance's budget".into(),
            )));
        }
        let raw = self.store.get(&parameter_name(&self.stage, source, shop)).await?;
        let value = match raw {
            Some(raw) => Some(sources::module(source).load_secret(&raw).map_err(SecretLookupError::Malformed)?),
            None => None,
        };
        let mut entries = self.entries.write().await;
        if value.is_none() {
            forget_unknown_beyond(&mut entries, MAX_UNKNOWN_SHOPS - 1);
        }
        entries.insert(key, Cached { value: value.clone(), fetched_at: now });
        value.ok_or(SecretLookupError::UnknownShop)
    }

    /// Drops a cached entry (after storing a refreshed token).
    pub async fn invalidate(&self, source: Source, shop: &ShopId) {
        self.entries.write().await.remove(&(source, shop.clone()));
    }
}

/// Forgets the oldest "not configured" entries until at most `keep` remain.
fn forget_unknown_beyond(entries: &mut HashMap<(Source, ShopId), Cached>, keep: usize) {
    let mut unknown: Vec<(DateTime<Utc>, (Source, ShopId))> =
        entries.iter().filter(|(_, c)| c.value.is_none()).map(|(k, c)| (c.fetched_at, k.clone())).collect();
    if unknown.len() <= keep {
        return;
    }
    unknown.sort_by_key(|(at, _)| *at);
    let excess = unknown.len() - keep;
    for (_, key) in unknown.into_iter().take(excess) {
        entries.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::secret::RotatedSecret;
    use crate::sources::youzan::YouzanSecret;
    use crate::testing::clock::FixedClock;

    fn current(secret: ShopSecret) -> String {
        secret.typed::<YouzanSecret>().map(|s| s.keys.secret.expose().to_owned()).unwrap_or_default()
    }
    use crate::testing::memory::MemorySecrets;

    #[test]
    fn secrets_never_print() {
        let secret = YouzanSecret {
            app_key: None,
            keys: RotatedSecret { secret: Secret::new("s3cr3t"), previous_secret: None },
        };
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", ShopSecret::new(secret)).contains("s3cr3t"));
    }

    #[tokio::test]
    async fn a_rotation_is_seen_once_the_ttl_passes_and_not_before() {
        let store = MemorySecrets::default();
        let clock = FixedClock::new(Utc::now());
        let shop = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
        let name = parameter_name("test", Source::Youzan, &shop);
        store.put(&name, r#"{"app_key":"k","secret":"old"}"#).await.unwrap_or_else(|e| panic!("{e}"));
        let cache = SecretCache::new(&store, &clock, "test", Duration::minutes(2));
        assert_eq!(cache.get(Source::Youzan, &shop).await.map(current), Ok("old".into()));
        store
            .put(&name, r#"{"app_key":"k","secret":"new","previous_secret":"old"}"#)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        clock.advance(Duration::seconds(60));
        assert_eq!(cache.get(Source::Youzan, &shop).await.map(current), Ok("old".into()));
        assert_eq!(store.reads(), 1, "a warm read costs no parameter request");
        clock.advance(Duration::seconds(61));
        assert_eq!(cache.get(Source::Youzan, &shop).await.map(current), Ok("new".into()));
    }

    #[tokio::test]
    async fn unknown_shops_and_malformed_parameters_are_told_apart() {
        let store = MemorySecrets::default();
        let clock = FixedClock::new(Utc::now());
        let shop = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
        let cache = SecretCache::new(&store, &clock, "test", Duration::minutes(2));
        assert_eq!(cache.get(Source::Douyin, &shop).await.err(), Some(SecretLookupError::UnknownShop));
        store.put(&parameter_name("test", Source::Pdd, &shop), "{not json").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cache.get(Source::Pdd, &shop).await, Err(SecretLookupError::Malformed(_))));
    }

    #[tokio::test]
    async fn made_up_shops_cost_bounded_reads_and_bounded_memory() {
        let store = MemorySecrets::default();
        let clock = FixedClock::new(Utc::now());
        let cache = SecretCache::new(&store, &clock, "test", Duration::minutes(2));
        let shop = |n: usize| ShopId::parse(&format!("made-up-{n}")).unwrap_or_else(|e| panic!("{e}"));
        let mut over_budget = 0;
        for n in 0..3000 {
            if n % 10 == 0 {
                clock.advance(Duration::seconds(1));
            }
            match cache.get(Source::Youzan, &shop(n)).await {
                Err(SecretLookupError::UnknownShop) => {}
                Err(SecretLookupError::Unavailable(_)) => over_budget += 1,
                other => panic!("{other:?}"),
            }
        }
        // 300 s of flood: the burst of 100, then one read a second.
        assert_eq!(store.reads(), 100 + 300 - 1, "reads bounded by the budget, not by the flood");
        assert!(over_budget > 2500, "the rest answered 'retry later': {over_budget}");
        assert!(cache.entries.read().await.len() <= MAX_UNKNOWN_SHOPS, "memory bounded");
        // A configured shop is still read once the budget refills, and then cached.
        let real = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
        store
            .put(&parameter_name("test", Source::Youzan, &real), r#"{"app_key":"k","secret":"s"}"#)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        clock.advance(Duration::seconds(5));
        assert!(cache.get(Source::Youzan, &real).await.is_ok());
        assert!(cache.get(Source::Youzan, &real).await.is_ok(), "then from the cache, whatever the budget");
    }

    #[test]
    fn the_oldest_unknown_shops_are_forgotten_and_configured_ones_kept() {
        let at = Utc::now();
        let mut entries = HashMap::new();
        let shop = |n: i64| ShopId::parse(&format!("s-{n}")).unwrap_or_else(|e| panic!("{e}"));
        for n in 0..2000 {
            entries.insert((Source::Youzan, shop(n)), Cached { value: None, fetched_at: at + Duration::seconds(n) });
        }
        let known = ShopSecret::new(YouzanSecret {
            app_key: None,
            keys: RotatedSecret { secret: Secret::new("s"), previous_secret: None },
        });
        entries.insert((Source::Youzan, shop(-1)), Cached { value: Some(known), fetched_at: at });
        forget_unknown_beyond(&mut entries, MAX_UNKNOWN_SHOPS - 1);
        assert_eq!(entries.len(), MAX_UNKNOWN_SHOPS);
        assert!(entries.contains_key(&(Source::Youzan, shop(-1))), "a configured shop is never forgotten");
        assert!(
            entries.contains_key(&(Source::Youzan, shop(1999))) && !entries.contains_key(&(Source::Youzan, shop(0)))
        );
    }
}
