//! Secret values: keys, salts and tokens that must never be printed or logged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret value: never printed, never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the code that signs or verifies with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A signing secret and the one before its last rotation: both verify, the current first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RotatedSecret {
    /// The current secret.
    pub secret: Secret,
    /// The secret before the last rotation, still accepted.
    #[serde(default)]
    pub previous_secret: Option<Secret>,
}

impl RotatedSecret {
    /// The current secret, then the previous one; `true` marks the previous.
    pub fn in_order(&self) -> impl Iterator<Item = (&Secret, bool)> {
        std::iter::once((&self.secret, false)).chain(self.previous_secret.iter().map(|s| (s, true)))
    }
}

/// A shop's tokens for its platform's open API.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiTokens {
    /// The access token.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// When `access_token` expires.
    #[serde(default)]
    pub access_token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The token that refreshes `access_token`.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
}

/// What a shop's secret gives its platform's open API: the app's key and secret, and the
/// shop's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAccess {
    /// The app key (douyin app_key, pdd client_id, taobao app_key).
    pub app_key: String,
    /// The app secret that signs requests.
    pub app_secret: Secret,
    /// The shop's tokens.
    pub tokens: ApiTokens,
}
