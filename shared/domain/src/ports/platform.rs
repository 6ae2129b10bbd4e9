//! The platform query port: what refund-dual-check asks a sales platform's own API about an
//! order, and how a token is refreshed. Adapters implement it per platform (douyin, pdd,
//! taobao), signing each request exactly as the platform requires.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::ids::{OrderKey, ShopId, Source};
use crate::model::lifecycle::RefundKind;
use crate::model::status::RawStatus;
use crate::model::stock::OrderLine;
use crate::ports::secrets::Secret;

/// What a request needs to be signed and authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The app key (douyin app_key, pdd client_id, taobao app_key).
    pub app_key: String,
    /// The app secret used to sign requests.
    pub app_secret: Secret,
    /// The shop's access token.
    pub access_token: Secret,
    /// The refresh token, where the platform has one.
    pub refresh_token: Option<Secret>,
}

/// The platform's answer about an order's refund: codes about one refund case (`refund_id`,
/// `lines`; neither: the whole order), and the order's other after-sales each as a case of its
/// own in `cases`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RefundAnswer {
    /// Raw codes the platform returned (field and code exactly as sent, e.g. douyin
    /// `main_status=22`, pdd `after_sales_status=10`, taobao `trade_status=TRADE_CLOSED`),
    /// with the platform's own time of that state when it gives one. The caller maps them with
    /// the source's `map_status`, as if they had arrived by callback.
    pub statuses: Vec<(RawStatus, Option<DateTime<Utc>>)>,
    /// Refund only or return and refund, when the answer says.
    pub refund_kind: Option<RefundKind>,
    /// The platform's after-sale / refund id: the case these codes are about, named as the
    /// platform's callbacks name it (Taobao `refund_id`).
    pub refund_id: Option<String>,
    /// The order lines (sub-order ids) the case covers, as callbacks name them (Douyin sku order
    /// `order_id` = a push's `s_id`, Taobao `oid`); empty: the whole order.
    #[serde(default)]
    pub lines: Vec<String>,
    /// The order's after-sales, each answered as its own case (Douyin: one per sku order with an
    /// after-sale; Taobao: one per sub-order with a refund).
    #[serde(default)]
    pub cases: Vec<RefundAnswer>,
}

impl RefundAnswer {
    /// Every code of the answer and its cases, in order.
    pub fn all_statuses(&self) -> Vec<&(RawStatus, Option<DateTime<Utc>>)> {
        self.statuses.iter().chain(self.cases.iter().flat_map(|c| c.all_statuses())).collect()
    }

    /// The first refund kind the answer or a case names.
    pub fn any_kind(&self) -> Option<RefundKind> {
        self.refund_kind.or_else(|| self.cases.iter().find_map(RefundAnswer::any_kind))
    }
}

/// A refreshed access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshedToken {
    /// The new access token.
    pub access_token: Secret,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The new refresh token, when the platform rotates it.
    pub refresh_token: Option<Secret>,
    /// When the refresh token expires, where the answer says.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// Why a query failed. Texts never carry tokens, secrets or personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The access token expired (or was replaced by a newer one): refresh it, then try again
    /// (and alert if the refresh fails).
    #[error("access token expired or invalid")]
    TokenExpired,
    /// The shop withdrew the authorisation, or the token is not this app's: refreshing will
    /// not help, the shop must authorise the app again (PDD 10014, 20032; Douyin
    /// `dop.authorization-closed`, `isv.access-token-invalid`).
    #[error("authorisation revoked or not this app's ({code})")]
    Revoked {
        /// The platform's code.
        code: String,
    },
    /// The platform says it cannot serve now and documents the call as retryable (PDD 52102,
    /// 52103; TOP `isp.*`; Douyin 20000/20001): retry with back-off.
    #[error("platform temporarily unavailable ({code})")]
    Unavailable {
        /// The platform's code.
        code: String,
    },
    /// The platform's rate limit: back off (for `retry_after_s` when given).
    #[error("rate limited")]
    RateLimited {
        /// Seconds the platform asked us to wait.
        retry_after_s: Option<u64>,
    },
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The platform does not know this order or refund.
    #[error("not found")]
    NotFound,
    /// Any other error code from the platform.
    #[error("platform error {code}: {message}")]
    Platform {
        /// The platform's error code.
        code: String,
        /// Its message (trimmed).
        message: String,
    },
    /// Network or HTTP failure.
    #[error("transport: {0}")]
    Transport(String),
    /// The answer is not what the platform documents.
    #[error("unexpected answer: {0}")]
    Malformed(String),
    /// This client has no such query.
    #[error("not supported by this platform's client")]
    Unsupported,
}

impl QueryError {
    /// Whether the same query may succeed later without anyone's help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            QueryError::RateLimited { .. }
                | QueryError::Timeout
                | QueryError::Transport(_)
                | QueryError::Unavailable { .. }
        )
    }
}

/// One platform's query API.
#[async_trait]
pub trait PlatformQuery: Send + Sync {
    /// The platform this client talks to.
    fn source(&self) -> Source;

    /// The current refund / after-sale state of an order (douyin `/afterSale/Detail` or
    /// `/order/orderDetail`, pdd `pdd.refund.information.get`, taobao `taobao.refund.get`).
    async fn refund_status(&self, key: &OrderKey, credentials: &Credentials) -> Result<RefundAnswer, QueryError>;

    /// Refreshes the shop's access token.
    async fn refresh_token(&self, shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError>;

    /// The order's lines: each line (sub-order) id with the SKU an ERP acts on and its quantity
    /// (douyin `/order/orderDetail` `sku_order_list`). One call.
    async fn order_lines(&self, key: &OrderKey, credentials: &Credentials) -> Result<Vec<OrderLine>, QueryError> {
        let _ = (key, credentials);
        Err(QueryError::Unsupported)
    }
}

/// The write path's view of the platforms: an order's lines, fetched with the shop's stored
/// credentials (status-normalize, before it reserves stock for a paid order that named only its
/// line ids).
#[async_trait]
pub trait OrderLines: Send + Sync {
    /// The lines of `key`, from its platform.
    async fn order_lines(&self, key: &OrderKey) -> Result<Vec<OrderLine>, QueryError>;
}
