//! Every shop's API tokens, kept alive: read for a call, refreshed ahead of expiry on a schedule
//! (not only when some refund happens to be due), `TokenExpiring` days before the refresh
//! token runs out, `TokenRefreshFailed` when a refresh fails.
//!
//! Where tokens live: in their own SecureString parameter per shop,
//! `/orderhub/<stage>/tokens/<source>/<shop>` ([`token_parameter`]), apart from the webhook
//! secrets (`/orderhub/<stage>/sources/…`, which no function writes). Beside it, the token
//! ledger ([`TokenLedger`]) keeps per shop the tokens' version and expiries and a refresh
//! lease, so two runs never refresh one shop at once (a refresh token is spent by its use) and
//! a stale run can never overwrite newer tokens: a refresh takes the lease at the version it
//! read, writes the parameter with the next version, and commits the ledger only while it still
//! holds the lease. Only order-sync, refund-dual-check and status-normalize (its order detail
//! calls) may write token parameters (the template's policies).
//!
//! Shops whose tokens still sit in their webhook secret parameter (the old layout) are read
//! from there until their first refresh (or an ops `import`) moves them to their own parameter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::domain_event::DomainEvent;
use crate::model::ids::{ShopId, Source};
use crate::model::secret::ApiAccess;
use crate::model::sync::{Lease, ShopTokens, TokenRecord};
use crate::model::time::business_day;
use crate::ports::Secrets;
use crate::ports::StoreError;
use crate::ports::clock::Clock;
use crate::ports::platform::Credentials;
use crate::ports::pull::TokenRefresh;
use crate::ports::secrets::SecretCache;
use crate::ports::sync::TokenLedger;
use crate::sources;

/// The parameter a shop's tokens live in: `/orderhub/<stage>/tokens/<source>/<shop>`.
pub fn token_parameter(stage: &str, source: Source, shop: &ShopId) -> String {
    format!("/orderhub/{stage}/tokens/{source}/{shop}")
}

/// When tokens are refreshed and expiries raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// Refresh an access token that expires within this.
    pub refresh_before: Duration,
    /// Raise `TokenExpiring` when the refresh token expires within this.
    pub warn_before: Duration,
    /// How long a refresh lease holds (far longer than one refresh call).
    pub lease: Duration,
    /// A cached token is read again after this when no ledger version says it is current.
    pub cache_ttl: Duration,
}

impl Default for TokenRules {
    fn default() -> Self {
        Self {
            refresh_before: Duration::hours(2),
            warn_before: Duration::days(7),
            lease: Duration::minutes(2),
            cache_ttl: Duration::minutes(1),
        }
    }
}

/// Why a shop's tokens could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The shop's secret (app key and secret) could not be read.
    #[error("shop secret: {0}")]
    Secret(String),
    /// No access token is stored for the shop: it must authorise the app.
    #[error("no access token stored for this shop")]
    NoToken,
    /// orderhub cannot refresh this platform's tokens.
    #[error("no token refresh for {0}")]
    Unsupported(Source),
    /// Another run is refreshing this shop's token right now: try again shortly.
    #[error("another run is refreshing this shop's token")]
    Busy,
    /// The platform refused the refresh (expired, used or revoked refresh token): the shop must
    /// authorise again.
    #[error("token refresh failed: {0}")]
    RefreshFailed(String),
    /// The token store failed.
    #[error("token store: {0}")]
    Store(String),
}

impl TokenError {
    /// Whether the same call may succeed later without anyone's help.
    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Busy | TokenError::Store(_))
    }
}

impl From<StoreError> for TokenError {
    fn from(err: StoreError) -> Self {
        TokenError::Store(err.to_string())
    }
}

/// What a token sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenReport {
    /// Shops looked at.
    pub checked: u32,
    /// Tokens refreshed.
    pub refreshed: u32,
    /// Shops whose refresh failed (`source/shop`).
    pub failed: Vec<String>,
    /// Shops whose refresh token expires soon (`source/shop`).
    pub expiring: Vec<String>,
    /// Shops another run was refreshing.
    pub busy: u32,
}

/// The ports the keeper needs.
#[derive(Clone, Copy)]
pub struct TokenPorts<'a> {
    /// The ledger.
    pub ledger: &'a dyn TokenLedger,
    /// The parameter store the token parameters live in.
    pub params: &'a dyn Secrets,
    /// Shop secrets (app key and secret), cached.
    pub secrets: &'a SecretCache<'a>,
    /// One refresher per platform that has one.
    pub refreshers: &'a [&'a dyn TokenRefresh],
    /// Now.
    pub clock: &'a dyn Clock,
}

#[derive(Clone)]
struct Cached {
    tokens: Option<ShopTokens>,
    fetched_at: DateTime<Utc>,
}

/// Reads, refreshes and watches shops' tokens.
pub struct TokenKeeper<'a> {
    ports: TokenPorts<'a>,
    stage: String,
    rules: TokenRules,
    instance: String,
    /// Random per keeper: lease owners stay unique even when two keepers share an instance
    /// name (a lease is taken again only by its own owner, the retry of a lost answer).
    nonce: u64,
    serial: AtomicU64,
    cache: Mutex<HashMap<(Source, ShopId), Cached>>,
}

impl<'a> TokenKeeper<'a> {
    /// A keeper over `ports` for `stage`; `instance` names this process in leases (unique per
    /// Lambda instance, e.g. its log stream).
    pub fn new(
        ports: TokenPorts<'a>,
        stage: impl Into<String>,
        rules: TokenRules,
        instance: impl Into<String>,
    ) -> Self {
        Self {
            ports,
            stage: stage.into(),
            rules,
            instance: instance.into(),
            nonce: {
                use std::hash::{BuildHasher, Hasher};
                std::collections::hash_map::RandomState::new().build_hasher().finish()
            },
            serial: AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &TokenRules {
        &self.rules
    }

    fn owner(&self) -> String {
        format!("{}-{:x}-{}", self.instance, self.nonce, self.serial.fetch_add(1, Ordering::Relaxed))
    }

    fn refresher(&self, source: Source) -> Option<&dyn TokenRefresh> {
        self.ports.refreshers.iter().copied().find(|r| r.source() == source)
    }

    async fn api_access(&self, source: Source, shop: &ShopId) -> Result<ApiAccess, TokenError> {
        let secret = self.ports.secrets.get(source, shop).await.map_err(|e| TokenError::Secret(e.to_string()))?;
        sources::module(source)
            .api_access(&secret)
            .ok_or_else(|| TokenError::Secret("the shop secret has no app key and secret".into()))
    }

    /// The stored tokens of a shop (its own parameter), from the cache when it holds
    /// `generation` (or is fresh, when no generation is known).
    async fn stored(
        &self,
        source: Source,
        shop: &ShopId,
        generation: Option<u64>,
    ) -> Result<Option<ShopTokens>, TokenError> {
        let now = self.ports.clock.now();
        let slot = (source, shop.clone());
        if let Some(cached) = self.lock().get(&slot).cloned() {
            let current = match generation {
                Some(g) => cached.tokens.as_ref().is_some_and(|t| t.generation == g),
                None => now - cached.fetched_at < self.rules.cache_ttl,
            };
            if current {
                return Ok(cached.tokens);
            }
        }
        let raw = self
            .ports
            .params
            .get(&token_parameter(&self.stage, source, shop))
            .await
            .map_err(|e| TokenError::Store(e.to_string()))?;
        let tokens = match raw {
            Some(raw) => Some(
                serde_json::from_str::<ShopTokens>(&raw)
                    .map_err(|e| TokenError::Store(format!("token parameter is malformed: line {}", e.line())))?,
            ),
            None => None,
        };
        self.lock().insert(slot, Cached { tokens: tokens.clone(), fetched_at: now });
        Ok(tokens)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Source, ShopId), Cached>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The shop's tokens as [`ShopTokens`]: its own parameter, else the old layout's fields of
    /// its webhook secret.
    async fn tokens(
        &self,
        source: Source,
        shop: &ShopId,
        access: &ApiAccess,
        generation: Option<u64>,
    ) -> Result<ShopTokens, TokenError> {
        if let Some(tokens) = self.stored(source, shop, generation).await? {
            return Ok(tokens);
        }
        let legacy = &access.tokens;
        Ok(ShopTokens {
            access_token: legacy.access_token.clone().ok_or(TokenError::NoToken)?,
            access_token_expires_at: legacy.access_token_expires_at,
            refresh_token: legacy.refresh_token.clone(),
            refresh_token_expires_at: None,
            generation: 0,
        })
    }

    /// What a call needs: the app's key and secret and the shop's current tokens.
    /// `generation`: the ledger version the caller read (skips a parameter read when cached).
    pub async fn credentials(
        &self,
        source: Source,
        shop: &ShopId,
        generation: Option<u64>,
    ) -> Result<(Credentials, Option<DateTime<Utc>>), TokenError> {
        let access = self.api_access(source, shop).await?;
        let tokens = self.tokens(source, shop, &access, generation).await?;
        Ok((credentials(&access, &tokens), tokens.access_token_expires_at))
    }

    /// The shop's credentials, refreshed first when the access token expires within the rules'
    /// margin.
    pub async fn fresh_credentials(
        &self,
        source: Source,
        shop: &ShopId,
        generation: Option<u64>,
    ) -> Result<Credentials, TokenError> {
        let (credentials, expires_at) = self.credentials(source, shop, generation).await?;
        let now = self.ports.clock.now();
        match expires_at {
            Some(at) if at - now < self.rules.refresh_before && self.refresher(source).is_some() => {
                match self.refresh(source, shop).await {
                    Ok(fresh) => Ok(fresh),
                    // Still valid for a while: use it; the refresh is someone else's now.
                    Err(TokenError::Busy) if at > now => Ok(credentials),
                    Err(err) => Err(err),
                }
            }
            _ => Ok(credentials),
        }
    }

    /// Refreshes a shop's tokens now, under the ledger's lease: [`TokenError::Busy`] when
    /// another run holds it. The new tokens go to the shop's own parameter, never to its webhook
    /// secret.
    pub async fn refresh(&self, source: Source, shop: &ShopId) -> Result<Credentials, TokenError> {
        let refresher = self.refresher(source).ok_or(TokenError::Unsupported(source))?;
        let access = self.api_access(source, shop).await?;
        let now = self.ports.clock.now();
        let record = match self.ports.ledger.token(source, shop).await? {
            Some(record) => record,
            None => {
                // A shop of the old layout: registered now, at version 0 (no own parameter yet).
                let legacy = &access.tokens;
                let record = TokenRecord {
                    source,
                    shop: shop.clone(),
                    version: 0,
                    access_expires_at: legacy.access_token_expires_at,
                    refresh_expires_at: None,
                    lease: None,
                    last_error: None,
                    warned_on: None,
                };
                self.ports.ledger.register(&record).await?;
                self.ports.ledger.token(source, shop).await?.unwrap_or(record)
            }
        };
        let owner = self.owner();
        let lease = Lease { owner: owner.clone(), until: now + self.rules.lease };
        if !self.ports.ledger.lease(source, shop, record.version, &lease, now).await? {
            return Err(TokenError::Busy);
        }
        // Read what the lease protects, bypassing the cache.
        self.lock().remove(&(source, shop.clone()));
        let current = match self.tokens(source, shop, &access, None).await {
            Ok(tokens) if tokens.generation <= record.version => tokens,
            Ok(_) => {
                let _ = self.ports.ledger.release(source, shop, &owner, "a newer refresh was stored meanwhile").await;
                return Err(TokenError::Busy);
            }
            Err(err) => {
                let _ = self.ports.ledger.release(source, shop, &owner, &err.to_string()).await;
                return Err(err);
            }
        };
        let refreshed = match refresher.refresh_token(shop, &credentials(&access, &current)).await {
            Ok(refreshed) => refreshed,
            Err(err) => {
                let reason = err.to_string();
                if let Err(store) = self.ports.ledger.release(source, shop, &owner, &reason).await {
                    tracing::warn!(%source, %shop, error = %store, "could not release the refresh lease");
                }
                tracing::error!(%source, %shop, %reason, "token refresh failed");
                return Err(TokenError::RefreshFailed(reason));
            }
        };
        let fresh = ShopTokens {
            access_token: refreshed.access_token,
            access_token_expires_at: Some(refreshed.expires_at),
            refresh_token: refreshed.refresh_token.or(current.refresh_token),
            refresh_token_expires_at: refreshed.refresh_expires_at.or(current.refresh_token_expires_at),
            generation: record.version + 1,
        };
        self.store(source, shop, &fresh).await.inspect_err(|err| {
            // The platform has rotated the tokens and we could not keep them: people must know.
            tracing::error!(%source, %shop, error = %err, "refreshed tokens could not be stored");
        })?;
        let committed = TokenRecord {
            version: record.version + 1,
            access_expires_at: fresh.access_token_expires_at,
            refresh_expires_at: fresh.refresh_token_expires_at,
            lease: None,
            last_error: None,
            ..record
        };
        if let Err(err) = self.ports.ledger.commit(&committed, &owner).await {
            // The parameter holds the new tokens with their generation; a reader goes by that.
            tracing::warn!(%source, %shop, error = %err, "token ledger not updated after a refresh");
        }
        self.lock().insert((source, shop.clone()), Cached { tokens: Some(fresh.clone()), fetched_at: now });
        tracing::info!(%source, %shop, expires_at = ?fresh.access_token_expires_at, version = committed.version, "access token refreshed");
        Ok(credentials(&access, &fresh))
    }

    /// Writes a shop's tokens parameter, retrying a failed write twice.
    async fn store(&self, source: Source, shop: &ShopId, tokens: &ShopTokens) -> Result<(), TokenError> {
        let json = serde_json::to_string(tokens).map_err(|e| TokenError::Store(e.to_string()))?;
        let name = token_parameter(&self.stage, source, shop);
        let mut last = String::new();
        for _ in 0..3 {
            match self.ports.params.put(&name, &json).await {
                Ok(()) => return Ok(()),
                Err(err) => last = err.to_string(),
            }
        }
        Err(TokenError::Store(last))
    }

    /// Stores tokens a shop's authorisation produced (ops, onboarding) and registers the shop
    /// for order-sync; replaces the stored tokens under the lease when the shop has some.
    pub async fn install(&self, source: Source, shop: &ShopId, tokens: ShopTokens) -> Result<TokenRecord, TokenError> {
        let now = self.ports.clock.now();
        let record = self.ports.ledger.token(source, shop).await?;
        let version = record.as_ref().map_or(0, |r| r.version);
        let owner = self.owner();
        let lease = Lease { owner: owner.clone(), until: now + self.rules.lease };
        if record.is_some() && !self.ports.ledger.lease(source, shop, version, &lease, now).await? {
            return Err(TokenError::Busy);
        }
        let tokens = ShopTokens { generation: version + 1, ..tokens };
        self.store(source, shop, &tokens).await?;
        let next = TokenRecord {
            source,
            shop: shop.clone(),
            version: version + 1,
            access_expires_at: tokens.access_token_expires_at,
            refresh_expires_at: tokens.refresh_token_expires_at,
            lease: None,
            last_error: None,
            warned_on: record.as_ref().and_then(|r| r.warned_on),
        };
        if record.is_some() {
            self.ports.ledger.commit(&next, &owner).await?;
        } else if !self.ports.ledger.register(&next).await? {
            return Err(TokenError::Busy);
        }
        self.lock().insert((source, shop.clone()), Cached { tokens: Some(tokens), fetched_at: now });
        Ok(next)
    }

    /// Moves a shop of the old layout (tokens inside its webhook secret) to its own token
    /// parameter and registers it; a registered shop is left as it is.
    pub async fn import(&self, source: Source, shop: &ShopId) -> Result<TokenRecord, TokenError> {
        if let Some(record) = self.ports.ledger.token(source, shop).await?.filter(|r| r.version > 0) {
            return Ok(record);
        }
        let access = self.api_access(source, shop).await?;
        let legacy = &access.tokens;
        let tokens = ShopTokens {
            access_token: legacy.access_token.clone().ok_or(TokenError::NoToken)?,
            access_token_expires_at: legacy.access_token_expires_at,
            refresh_token: legacy.refresh_token.clone(),
            refresh_token_expires_at: None,
            generation: 0,
        };
        self.install(source, shop, tokens).await
    }

    /// The schedule's sweep: every registered shop of `sources` whose access token expires
    /// within the margin is refreshed; a refresh token expiring within the warning margin
    /// raises `TokenExpiring` (once a Beijing day); a failed refresh raises
    /// `TokenRefreshFailed`. One shop's failure never stops the others.
    pub async fn sweep(&self, sources: &[Source]) -> (Vec<DomainEvent>, TokenReport) {
        let mut events = Vec::new();
        let mut report = TokenReport::default();
        for &source in sources {
            if self.refresher(source).is_none() {
                continue;
            }
            let records = match self.ports.ledger.all(source).await {
                Ok(records) => records,
                Err(err) => {
                    tracing::warn!(%source, error = %err, "token ledger unavailable");
                    continue;
                }
            };
            for record in records {
                report.checked += 1;
                let shop = record.shop.clone();
                let name = format!("{source}/{shop}");
                let now = self.ports.clock.now();
                let mut refresh_expires_at = record.refresh_expires_at;
                if record.access_expires_at.is_some_and(|at| at - now < self.rules.refresh_before) {
                    match self.refresh(source, &shop).await {
                        Ok(_) => {
                            report.refreshed += 1;
                            if let Ok(Some(after)) = self.ports.ledger.token(source, &shop).await {
                                refresh_expires_at = after.refresh_expires_at;
                            }
                        }
                        Err(TokenError::Busy) => report.busy += 1,
                        Err(err) => {
                            report.failed.push(name.clone());
                            events.push(DomainEvent::TokenRefreshFailed {
                                source,
                                shop: shop.to_string(),
                                reason: err.to_string(),
                            });
                        }
                    }
                }
                if let Some(at) = refresh_expires_at.filter(|at| *at - now < self.rules.warn_before) {
                    report.expiring.push(name);
                    match self.ports.ledger.warned(source, &shop, business_day(now)).await {
                        Ok(true) => {
                            tracing::warn!(%source, %shop, expires_at = %at, "refresh token expires soon: the shop must authorise again");
                            events.push(DomainEvent::TokenExpiring {
                                source,
                                shop: shop.to_string(),
                                token: "refresh_token".into(),
                                expires_at: at,
                            });
                        }
                        Ok(false) => {}
                        Err(err) => tracing::warn!(%source, %shop, error = %err, "could not note the expiry warning"),
                    }
                }
            }
        }
        (events, report)
    }
}

fn credentials(access: &ApiAccess, tokens: &ShopTokens) -> Credentials {
    Credentials {
        app_key: access.app_key.clone(),
        app_secret: access.app_secret.clone(),
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::secret::Secret;
    use crate::ports::platform::{QueryError, RefreshedToken};
    use crate::ports::secrets::parameter_name;
    use crate::testing::clock::FixedClock;
    use crate::testing::memory::{MemorySecrets, MemorySync};
    use async_trait::async_trait;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 4, 0, 0).single().unwrap_or_default()
    }

    fn shop(name: &str) -> ShopId {
        ShopId::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[derive(Default)]
    struct Platform {
        calls: AtomicU64,
        fail: bool,
    }

    #[async_trait]
    impl TokenRefresh for Platform {
        fn source(&self) -> Source {
            Source::Pdd
        }
        async fn refresh_token(&self, shop: &ShopId, _: &Credentials) -> Result<RefreshedToken, QueryError> {
            // The platform takes a while: an overlapping refresh would start meanwhile.
            tokio::task::yield_now().await;
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            if self.fail {
                return Err(QueryError::Platform { code: "10000".into(), message: "refresh_token已过期".into() });
            }
            Ok(RefreshedToken {
                access_token: Secret::new(format!("{shop}-at-{n}")),
                expires_at: now() + Duration::days(1),
                refresh_token: Some(Secret::new(format!("{shop}-rt-{n}"))),
                refresh_expires_at: Some(now() + Duration::days(30)),
            })
        }
    }

    struct World {
        sync: MemorySync,
        secrets: MemorySecrets,
        clock: FixedClock,
    }

    impl World {
        async fn new(shops: &[(&str, Duration, Duration)]) -> World {
            let world =
                World { sync: MemorySync::default(), secrets: MemorySecrets::default(), clock: FixedClock::new(now()) };
            for (name, access, refresh) in shops {
                let secret = r#"{"app_key":"k","secret":"s"}"#;
                world.secrets.put(&parameter_name("test", Source::Pdd, &shop(name)), secret).await.unwrap_or_default();
                let tokens = ShopTokens {
                    access_token: Secret::new("at-0"),
                    access_token_expires_at: Some(now() + *access),
                    refresh_token: Some(Secret::new("rt-0")),
                    refresh_token_expires_at: Some(now() + *refresh),
                    generation: 0,
                };
                let platform = Platform::default();
                world
                    .keeper(&platform, async |k| k.install(Source::Pdd, &shop(name), tokens).await)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            world
        }

        async fn keeper<R>(&self, platform: &Platform, f: impl AsyncFnOnce(&TokenKeeper<'_>) -> R) -> R {
            let cache = SecretCache::new(&self.secrets, &self.clock, "test", Duration::minutes(2));
            let refreshers: [&dyn TokenRefresh; 1] = [platform];
            let ports = TokenPorts {
                ledger: &self.sync,
                params: &self.secrets,
                secrets: &cache,
                refreshers: &refreshers,
                clock: &self.clock,
            };
            let keeper = TokenKeeper::new(ports, "test", TokenRules::default(), "test");
            f(&keeper).await
        }
    }

    #[tokio::test]
    async fn two_refreshes_at_once_call_the_platform_once() {
        let world = World::new(&[("s1", Duration::minutes(30), Duration::days(30))]).await;
        let platform = Platform::default();
        let s1 = shop("s1");
        let (a, b) = world
            .keeper(&platform, async |k| futures::join!(k.refresh(Source::Pdd, &s1), k.refresh(Source::Pdd, &s1)))
            .await;
        assert_eq!(platform.calls.load(Ordering::Relaxed), 1, "the refresh token is spent by one refresh only");
        assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
        assert!(matches!(a.err().or(b.err()), Some(TokenError::Busy)));
        let stored = world
            .secrets
            .get(&token_parameter("test", Source::Pdd, &shop("s1")))
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let stored: ShopTokens = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((stored.access_token.expose(), stored.generation), ("s1-at-0", 2));
    }

    #[tokio::test]
    async fn the_sweep_refreshes_what_expires_soon_and_warns_once_a_day_about_dying_refresh_tokens() {
        let world = World::new(&[
            ("soon", Duration::minutes(30), Duration::days(30)),
            ("fine", Duration::days(5), Duration::days(30)),
            ("dying", Duration::days(5), Duration::days(3)),
        ])
        .await;
        let platform = Platform::default();
        let (events, report) = world.keeper(&platform, async |k| k.sweep(&[Source::Pdd]).await).await;
        assert_eq!((report.checked, report.refreshed), (3, 1), "{report:?}");
        assert_eq!(report.expiring, ["pdd/dying"]);
        assert!(
            matches!(&events[..], [DomainEvent::TokenExpiring { shop, expires_at, .. }] if shop == "dying" && *expires_at == now() + Duration::days(3)),
            "{events:?}"
        );
        let (events, _) = world.keeper(&platform, async |k| k.sweep(&[Source::Pdd]).await).await;
        assert!(events.is_empty(), "once a Beijing day: {events:?}");
        world.clock.advance(Duration::days(1));
        let (events, _) = world.keeper(&platform, async |k| k.sweep(&[Source::Pdd]).await).await;
        assert_eq!(events.iter().filter(|e| matches!(e, DomainEvent::TokenExpiring { .. })).count(), 1);
    }

    #[tokio::test]
    async fn a_failed_refresh_raises_token_refresh_failed_and_frees_the_lease() {
        let world = World::new(&[("s1", Duration::minutes(30), Duration::days(30))]).await;
        let platform = Platform { fail: true, ..Platform::default() };
        let (events, report) = world.keeper(&platform, async |k| k.sweep(&[Source::Pdd]).await).await;
        assert_eq!(report.failed, ["pdd/s1"]);
        assert!(
            matches!(&events[..], [DomainEvent::TokenRefreshFailed { reason, .. }] if reason.contains("10000")),
            "{events:?}"
        );
        let record =
            world.sync.token(Source::Pdd, &shop("s1")).await.ok().flatten().unwrap_or_else(|| panic!("record"));
        assert_eq!(record.lease, None);
        assert!(record.last_error.is_some_and(|e| e.contains("10000")));
        let (_, report) = world.keeper(&platform, async |k| k.sweep(&[Source::Pdd]).await).await;
        assert_eq!(report.failed.len(), 1, "tried again, not stuck behind a lease");
    }

    #[tokio::test]
    async fn a_shop_of_the_old_layout_is_imported_into_its_own_parameter() {
        let world = World::new(&[]).await;
        let old = r#"{"app_key":"k","secret":"s","access_token":"legacy-at","refresh_token":"legacy-rt","access_token_expires_at":"2026-11-12T00:00:00Z"}"#;
        world.secrets.put(&parameter_name("test", Source::Pdd, &shop("old")), old).await.unwrap_or_default();
        let platform = Platform::default();
        let (credentials, _) = world
            .keeper(&platform, async |k| k.credentials(Source::Pdd, &shop("old"), None).await)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(credentials.access_token.expose(), "legacy-at", "read from the old layout until moved");
        let record = world
            .keeper(&platform, async |k| k.import(Source::Pdd, &shop("old")).await)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(record.version, 1);
        let stored = world.secrets.get(&token_parameter("test", Source::Pdd, &shop("old"))).await.ok().flatten();
        assert!(stored.is_some_and(|s| s.contains("legacy-at")));
        assert_eq!(
            world.secrets.get(&parameter_name("test", Source::Pdd, &shop("old"))).await.ok().flatten().as_deref(),
            Some(old)
        );
    }
}
