//! The carrier tracking port: subscribe a waybill to Kuaidi100's pushes
//! (`POST https://poll.kuaidi100.com/poll`, docs/platform-apis.md "Kuaidi100 subscription").

use async_trait::async_trait;

use crate::model::secret::Secret;

/// One subscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// Kuaidi100's carrier code (lower case), as the order's waybill names it.
    pub company: String,
    /// The tracking number (at most 32 characters).
    pub number: String,
    /// Where pushes go: the webhook URL of the shop, with the order in the query
    /// (`…/webhooks/kuaidi100/<shop>?order=<channel>/<shop>/<order_id>`).
    pub callback_url: String,
    /// The salt Kuaidi100 signs its pushes with: the shop's Kuaidi100 secret.
    pub salt: Secret,
    /// Ask Kuaidi100 to identify the carrier from the number (the waybill's carrier is not one
    /// of its codes).
    pub auto_company: bool,
}

/// Why a subscription failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// Try again later (network, HTTP 5xx, Kuaidi100's server error).
    #[error("kuaidi100 unavailable: {0}")]
    Unavailable(String),
    /// Kuaidi100 refused it for good (its return code and message): retrying will not help.
    #[error("kuaidi100 refused the subscription: {code} {message}")]
    Refused {
        /// `returnCode`.
        code: String,
        /// `message`, trimmed.
        message: String,
    },
}

/// Subscribes waybills to carrier tracking pushes.
#[async_trait]
pub trait TrackingSubscriptions: Send + Sync {
    /// Subscribes one waybill; `Ok(())` also when Kuaidi100 says it is subscribed already.
    async fn subscribe(&self, request: &SubscribeRequest, key: &Secret) -> Result<(), SubscribeError>;
}
