//! A platform's change feed in memory, for the pull use case's tests: rows with update times,
//! numbered pages (ascending by update time) with a total, a fault script, a hook that changes
//! rows between two page calls, and a count of calls.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::model::ids::{OrderId, ShopId, Source};
use crate::model::secret::Secret;
use crate::model::sync::{ChangedRow, Feed, Window};
use crate::ports::platform::{Credentials, QueryError, RefreshedToken};
use crate::ports::pull::{ChangeFeed, FeedLimits, ListPage, PageRequest, Paging, TokenRefresh};

/// One order as the memory platform holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedOrder {
    /// The shop (the access token `token-<shop>` is this shop's).
    pub shop: String,
    /// The order id.
    pub id: String,
    /// The raw order status (`order_status` of a PDD-shaped row).
    pub status: String,
    /// The update time.
    pub updated_at: DateTime<Utc>,
}

/// A change applied between two page calls.
pub type FeedHook = Box<dyn FnOnce(&mut Vec<FeedOrder>, DateTime<Utc>) + Send>;

#[derive(Default)]
struct State {
    orders: Vec<FeedOrder>,
    faults: VecDeque<(String, QueryError)>,
    hooks: Vec<(u32, FeedHook)>,
    calls: u32,
    refreshes: u32,
    expired: Vec<String>,
    endless: bool,
}

/// A PDD-shaped platform in memory.
pub struct MemoryFeed {
    source: Source,
    limits: FeedLimits,
    state: Mutex<State>,
}

impl MemoryFeed {
    /// A feed of `source` with PDD's limits (30-minute windows, pages of `page_size` from 1,
    /// settled 3 minutes after now).
    pub fn new(source: Source, page_size: u32) -> Self {
        let limits = FeedLimits {
            max_window: Duration::minutes(30),
            window: Duration::minutes(30),
            page_size,
            paging: Paging::Numbered { first: 1 },
            settle: Duration::minutes(3),
        };
        Self { source, limits, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an order.
    pub fn put(&self, shop: &str, id: &str, status: &str, updated_at: DateTime<Utc>) {
        self.lock().orders.push(FeedOrder { shop: shop.into(), id: id.into(), status: status.into(), updated_at });
    }

    /// The next list call of `shop` fails with `error`.
    pub fn fail_next(&self, shop: &str, error: QueryError) {
        self.lock().faults.push_back((shop.into(), error));
    }

    /// Runs `hook` right after the `n`-th list call from now.
    pub fn after_call(&self, n: u32, hook: FeedHook) {
        let mut state = self.lock();
        let at = state.calls + n;
        state.hooks.push((at, hook));
    }

    /// The shop's current token is expired (until a refresh).
    pub fn expire_token(&self, shop: &str) {
        self.lock().expired.push(shop.into());
    }

    /// Every page says there are a billion rows.
    pub fn endless(&self) {
        self.lock().endless = true;
    }

    /// List calls so far.
    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// Refreshes so far.
    pub fn refreshes(&self) -> u32 {
        self.lock().refreshes
    }
}

fn shop_of(credentials: &Credentials) -> String {
    credentials.access_token.expose().trim_start_matches("token-").trim_end_matches("-fresh").to_owned()
}

#[async_trait]
impl TokenRefresh for MemoryFeed {
    fn source(&self) -> Source {
        self.source
    }

    async fn refresh_token(&self, shop: &ShopId, _credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        let mut state = self.lock();
        state.refreshes += 1;
        state.expired.retain(|s| s != shop.as_str());
        Ok(RefreshedToken {
            access_token: Secret::new(format!("token-{shop}-fresh")),
            expires_at: Utc::now() + Duration::days(1),
            refresh_token: Some(Secret::new(format!("refresh-{shop}-2"))),
            refresh_expires_at: None,
        })
    }
}

#[async_trait]
impl ChangeFeed for MemoryFeed {
    fn limits(&self) -> FeedLimits {
        self.limits
    }

    fn api(&self, feed: Feed) -> &'static str {
        match feed {
            Feed::Orders => "pdd.order.number.list.increment.get",
            Feed::Refunds => "pdd.refund.list.increment.get",
        }
    }

    async fn list_orders(
        &self,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let shop = shop_of(credentials);
        // A network call yields: overlapping runs interleave as they would.
        tokio::task::yield_now().await;
        let mut state = self.lock();
        state.calls += 1;
        let now = Utc::now();
        let call = state.calls;
        let (due, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.hooks).into_iter().partition(|(at, _)| *at == call);
        state.hooks = keep;
        if let Some(index) = state.faults.iter().position(|(s, _)| *s == shop)
            && let Some((_, error)) = state.faults.remove(index)
        {
            return Err(error);
        }
        if state.expired.contains(&shop) {
            return Err(QueryError::TokenExpired);
        }
        if window.span() > self.limits.max_window {
            return Err(QueryError::Platform { code: "10000".into(), message: "window too long".into() });
        }
        let mut found: Vec<FeedOrder> = state
            .orders
            .iter()
            .filter(|o| o.shop == shop && o.updated_at >= window.start && o.updated_at < window.end)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        let size = self.limits.page_size as usize;
        let number = match page {
            PageRequest::Number(n) => *n as usize,
            PageRequest::Cursor(_) => 1,
        };
        let total = if state.endless { 1_000_000_000 } else { found.len() as u64 };
        let rows = found
            .iter()
            .skip(number.saturating_sub(1) * size)
            .take(size)
            .filter_map(|o| {
                Some(ChangedRow {
                    order_id: OrderId::parse(&o.id).ok()?,
                    refund_id: None,
                    updated_at: o.updated_at,
                    row: json!({"order_sn": o.id, "order_status": o.status,
                        "updated_at": o.updated_at.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()}),
                })
            })
            .collect();
        for (_, hook) in due {
            hook(&mut state.orders, now);
        }
        Ok(ListPage { rows, total: Some(total), next: None })
    }

    async fn list_refunds(
        &self,
        _window: &Window,
        _page: &PageRequest,
        _credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        self.lock().calls += 1;
        Ok(ListPage { rows: Vec::new(), total: Some(0), next: None })
    }
}
