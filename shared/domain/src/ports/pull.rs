//! The pull port: what order-sync asks a platform's list APIs (orders and refunds changed in a
//! time window, one page at a time) and how a shop's token is refreshed. Adapters implement it
//! per platform (`adapters::platform::<platform>`), each signing as its platform requires and
//! mapping every documented error code to a [`QueryError`] on purpose.

use async_trait::async_trait;
use chrono::Duration;

use crate::model::ids::{ShopId, Source};
use crate::model::sync::{ChangedRow, Window};
use crate::ports::platform::{Credentials, QueryError, RefreshedToken};

/// How a platform numbers the pages of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// Numbered pages from `first` (PDD, Taobao, JD, Youzan from 1; Douyin from 0) with a total:
    /// read from the last page backwards, so a row that changes while we page pushes later rows
    /// towards pages already read only as duplicates, never as misses (PDD: "必须采用倒序的分页
    /// 方式（从最后一页往回取）才能避免漏单问题", docs/platform-apis.md).
    Numbered {
        /// The first page's number.
        first: u32,
    },
    /// A cursor the platform hands back (Kuaishou); pages are read in order to the end.
    Cursor,
}

/// What a feed allows and needs, from the platform's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    /// The longest window one list call may ask for (PDD: 30 minutes; Taobao: 1 day).
    pub max_window: Duration,
    /// The window routine pulls use (at most `max_window`; Taobao advises 30 minutes for speed).
    pub window: Duration,
    /// Rows per page asked for (at most the platform's maximum).
    pub page_size: u32,
    /// How pages are numbered.
    pub paging: Paging,
    /// How long after "now" a window must end for the platform to have settled it (PDD: end
    /// at least 3 minutes before the platform's time).
    pub settle: Duration,
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// A numbered page (in the platform's own numbering).
    Number(u32),
    /// The page after this cursor (`None`: the first).
    Cursor(Option<String>),
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    /// The rows, with the platform's update time of each.
    pub rows: Vec<ChangedRow>,
    /// Rows in the whole window, where the platform says.
    pub total: Option<u64>,
    /// The cursor of the next page (cursor paging); `None` at the end.
    pub next: Option<String>,
}

/// Refreshes a shop's access token with its refresh token.
#[async_trait]
pub trait TokenRefresh: Send + Sync {
    /// The platform.
    fn source(&self) -> Source;

    /// Exchanges the refresh token for new tokens. A token error here (the refresh token is
    /// expired, used or revoked) is [`QueryError::Platform`] or [`QueryError::Revoked`]: the
    /// shop must authorise again.
    async fn refresh_token(&self, shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError>;
}

/// A platform's incremental lists of changed orders and refunds.
#[async_trait]
pub trait ChangeFeed: TokenRefresh {
    /// What the platform allows.
    fn limits(&self) -> FeedLimits;

    /// Orders whose update time is in `window`, one page.
    async fn list_orders(
        &self,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError>;

    /// Refunds / after-sales whose update time is in `window`, one page.
    async fn list_refunds(
        &self,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError>;

    /// The list API's name for a feed (in pulled payloads and logs).
    fn api(&self, feed: crate::model::sync::Feed) -> &'static str;
}
