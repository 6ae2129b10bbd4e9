//! Per-source, per-shop secrets: where they live, what they hold, and a cache in front of the
//! parameter store so a rotation takes effect within the TTL without a read per callback.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::model::ids::{ShopId, Source};
pub use crate::model::secret::Secret;
use crate::ports::clock::Clock;
use crate::ports::{Secrets, SecretsError};

/// The parameter name of a shop's secret: `/orderhub/<stage>/sources/<source>/<shop>`.
pub fn parameter_name(stage: &str, source: Source, shop: &ShopId) -> String {
    format!("/orderhub/{stage}/sources/{source}/{shop}")
}

/// What a shop's parameter holds (JSON). Fields a scheme does not use are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceSecret {
    /// The app key / client id the sender identifies itself with (douyin `app-id`, youzan
    /// `Client-Id`, kuaishou `appKey`).
    #[serde(default)]
    pub app_key: Option<String>,
    /// The current signing secret (douyin app_secret, youzan client_secret, kuaidi100 salt,
    /// app `whsec_…`).
    pub secret: Secret,
    /// The secret before the last rotation, still accepted.
    #[serde(default)]
    pub previous_secret: Option<Secret>,
    /// kuaishou: base64 AES-128 message key.
    #[serde(default)]
    pub message_key: Option<Secret>,
    /// kuaishou: the message key before the last rotation, still accepted.
    #[serde(default)]
    pub previous_message_key: Option<Secret>,
    /// wechatpay: the APIv3 key (32 bytes) for resource decryption.
    #[serde(default)]
    pub api_v3_key: Option<Secret>,
    /// wechatpay: platform public keys (PEM) by serial number.
    #[serde(default)]
    pub platform_keys: BTreeMap<String, String>,
    /// Query API access token (refund dual-check, pulls).
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// When `access_token` expires.
    #[serde(default)]
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// Token used to refresh `access_token`.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
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
    value: Option<Arc<SourceSecret>>,
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
}

impl<'a> SecretCache<'a> {
    /// A cache over `store` for `stage`, keeping entries for `ttl`.
    pub fn new(store: &'a dyn Secrets, clock: &'a dyn Clock, stage: impl Into<String>, ttl: Duration) -> Self {
        Self { store, clock, stage: stage.into(), ttl, entries: RwLock::new(HashMap::new()) }
    }

    /// The shop's secret, from the cache while fresh.
    pub async fn get(&self, source: Source, shop: &ShopId) -> Result<Arc<SourceSecret>, SecretLookupError> {
        let now = self.clock.now();
        let key = (source, shop.clone());
        if let Some(cached) = self.entries.read().await.get(&key)
            && now - cached.fetched_at < self.ttl
        {
            return cached.value.clone().ok_or(SecretLookupError::UnknownShop);
        }
        let raw = self.store.get(&parameter_name(&self.stage, source, shop)).await?;
        let value = match raw {
            Some(raw) => Some(Arc::new(
                serde_json::from_str::<SourceSecret>(&raw)
                    .map_err(|e| SecretLookupError::Malformed(format!("line {} column {}", e.line(), e.column())))?,
            )),
            None => None,
        };
        self.entries.write().await.insert(key, Cached { value: value.clone(), fetched_at: now });
        value.ok_or(SecretLookupError::UnknownShop)
    }

    /// Drops a cached entry (after storing a refreshed token).
    pub async fn invalidate(&self, source: Source, shop: &ShopId) {
        self.entries.write().await.remove(&(source, shop.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::clock::FixedClock;
    use crate::testing::memory::MemorySecrets;

    #[test]
    fn secrets_never_print() {
        let secret = SourceSecret { secret: Secret::new("s3cr3t"), ..Default::default() };
        assert!(!format!("{secret:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn a_rotation_is_seen_once_the_ttl_passes_and_not_before() {
        let store = MemorySecrets::default();
        let clock = FixedClock::new(Utc::now());
        let shop = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
        let name = parameter_name("test", Source::Youzan, &shop);
        store.put(&name, r#"{"app_key":"k","secret":"old"}"#).await.unwrap_or_else(|e| panic!("{e}"));
        let cache = SecretCache::new(&store, &clock, "test", Duration::minutes(2));
        assert_eq!(cache.get(Source::Youzan, &shop).await.map(|s| s.secret.expose().to_owned()), Ok("old".into()));
        store
            .put(&name, r#"{"app_key":"k","secret":"new","previous_secret":"old"}"#)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        clock.advance(Duration::seconds(60));
        assert_eq!(cache.get(Source::Youzan, &shop).await.map(|s| s.secret.expose().to_owned()), Ok("old".into()));
        assert_eq!(store.reads(), 1, "a warm read costs no parameter request");
        clock.advance(Duration::seconds(61));
        assert_eq!(cache.get(Source::Youzan, &shop).await.map(|s| s.secret.expose().to_owned()), Ok("new".into()));
    }

    #[tokio::test]
    async fn unknown_shops_and_malformed_parameters_are_told_apart() {
        let store = MemorySecrets::default();
        let clock = FixedClock::new(Utc::now());
        let shop = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
        let cache = SecretCache::new(&store, &clock, "test", Duration::minutes(2));
        assert_eq!(cache.get(Source::Douyin, &shop).await, Err(SecretLookupError::UnknownShop));
        store.put(&parameter_name("test", Source::Pdd, &shop), "{not json").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cache.get(Source::Pdd, &shop).await, Err(SecretLookupError::Malformed(_))));
    }
}
