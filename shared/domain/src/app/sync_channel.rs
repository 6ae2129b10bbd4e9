//! order-sync's use case: bring every channel's changes in by pulling them, shop by shop, from
//! a checkpoint — the only way in for Pinduoduo, Taobao/Tmall and JD, and the backstop that
//! finds what Douyin's, Kuaishou's and Youzan's callbacks never delivered.
//!
//! Per shop and feed (orders, refunds):
//! - **Windows from the checkpoint**: each starts an overlap margin before the checkpoint and
//!   spans at most what the platform allows (PDD: 30 minutes), and no window ends later than the
//!   platform's settling time before now (PDD: 3 minutes). A shop that was down for a day catches
//!   up window by window while the run's time budget (the Lambda's remaining time) lasts.
//! - **Every page of a window**, numbered pages from the last one backwards (a row that changes
//!   while we page only makes later rows appear twice, never vanish), re-reading the first page
//!   when the total moved; a window too full to page is halved; a list that never ends is an
//!   error.
//! - **The same road as callbacks**: each row goes into the inbox under the dedupe key (order,
//!   platform update time) and onto the `inbound` queue as an [`InboundMessage`] with origin
//!   `pull` ([`crate::app::inbound::admit`]); status-normalize parses and applies it.
//! - **The checkpoint moves only after every row of a window is enqueued** (a conditional write
//!   on its version): a failed run leaves it where the last good window ended, and the next run
//!   resumes there. Two overlapping runs cannot both move it; the first window a run completes
//!   also leases the shop to it for the rest of its budget, so an overlapping run leaves the shop
//!   alone instead of paging it twice.
//! - **Back-off per shop**: a broken shop (error code, garbage, a rate limit, a page that never
//!   ends, a token that cannot be refreshed) keeps what it enqueued, records why, is left alone
//!   until its back-off ends, and gets one log line and one `SyncFailed` event. Other shops go on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::app::inbound::{Admitted, admit};
use crate::app::tokens::{TokenError, TokenKeeper};
use crate::model::callback::{Accepted, INLINE_PAYLOAD_LIMIT, InboundMessage, ORIGIN_PULL, RawCallback};
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{ShopId, Source};
use crate::model::sync::{ChangedRow, Checkpoint, Feed, Lease, PullOrigin, PulledPayload, Window};
use crate::model::time::{business_day, day_start};
use crate::ports::clock::Clock;
use crate::ports::platform::{Credentials, QueryError};
use crate::ports::pull::{ChangeFeed, ListPage, PageRequest, Paging};
use crate::ports::sync::{CheckpointStore, SummaryMarks};
use crate::ports::{Inbox, Queue, Stats, StoreError};
use crate::sources::{self, Delivery};

/// How pulls behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRules {
    /// Each window starts this long before the checkpoint (late-arriving updates, clock skew).
    pub overlap: Duration,
    /// Where a feed never pulled starts: this long before now.
    pub cold_lookback: Duration,
    /// Pages one window may take before it is halved.
    pub max_pages: u32,
    /// Windows are not halved below this: a window this short that still does not end is an
    /// error.
    pub min_window: Duration,
    /// Back-off after a shop's first failed run, doubled per further failure.
    pub backoff: Duration,
    /// The longest back-off.
    pub max_backoff: Duration,
    /// Shops pulled at the same time.
    pub concurrency: usize,
    /// Inbox writes at the same time, per shop.
    pub enqueue_concurrency: usize,
    /// How long a window's dedupe claims keep other deliveries off while it enqueues (as the
    /// front door's lease: a run killed mid-way leaves them to a later run once it ends).
    pub claim_lease: Duration,
    /// Attempts of one list call on a transient error or a short rate limit.
    pub attempts: u32,
    /// The longest wait inside a run before retrying a call (longer: back off the shop).
    pub max_wait: StdDuration,
    /// No window is started with less than this of the budget left.
    pub reserve: StdDuration,
    /// Windows no longer than this (shorter than the platform's maximum), if set.
    pub window: Option<Duration>,
}

impl Default for SyncRules {
    fn default() -> Self {
        Self {
            overlap: Duration::minutes(2),
            cold_lookback: Duration::days(1),
            max_pages: 50,
            min_window: Duration::minutes(1),
            backoff: Duration::minutes(5),
            max_backoff: Duration::hours(1),
            concurrency: 4,
            enqueue_concurrency: 16,
            claim_lease: Duration::seconds(60),
            attempts: 3,
            max_wait: StdDuration::from_secs(2),
            reserve: StdDuration::from_secs(10),
            window: None,
        }
    }
}

/// The ports a pull needs.
#[derive(Clone, Copy)]
pub struct SyncPorts<'a> {
    /// One change feed per platform that has one.
    pub feeds: &'a [&'a dyn ChangeFeed],
    /// Checkpoints and the shop roster.
    pub checkpoints: &'a dyn CheckpointStore,
    /// Shops' tokens.
    pub tokens: &'a TokenKeeper<'a>,
    /// Dedupe and archive.
    pub inbox: &'a dyn Inbox,
    /// The `inbound` queue.
    pub queue: &'a dyn Queue,
    /// Now.
    pub clock: &'a dyn Clock,
}

/// What one run pulls.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The platforms.
    pub sources: Vec<Source>,
    /// The feeds.
    pub feeds: Vec<Feed>,
    /// One shop only (ops), else every registered shop.
    pub shop: Option<ShopId>,
    /// Ops: restart the shop's feeds from here (the checkpoint is set back or forward first).
    pub from: Option<DateTime<Utc>>,
    /// Windows end at least this long before now besides the platform's own settling time (a
    /// backstop for channels that push leaves their callbacks time to arrive first).
    pub settle: Duration,
    /// This run's name (leases).
    pub run: String,
    /// When the run must be done (the Lambda's deadline less a margin).
    pub deadline: Instant,
}

/// What became of one shop's feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedOutcome {
    /// Pulled up to the settling horizon.
    CaughtUp,
    /// Pulled as far as the time budget allowed; the next run goes on.
    Partial,
    /// Left alone: backing off after failures.
    BackingOff,
    /// Left alone: another run holds it, or moved its checkpoint meanwhile.
    Busy,
    /// Failed this run; the checkpoint stays at the last good window.
    Failed,
}

/// One shop's feed in a run's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRun {
    /// The platform.
    pub source: Source,
    /// The shop.
    pub shop: String,
    /// The feed.
    pub feed: Feed,
    /// What became of it.
    pub outcome: FeedOutcome,
    /// Where its checkpoint stands now.
    pub through: Option<DateTime<Utc>>,
    /// Windows completed.
    pub windows: u32,
    /// List calls made.
    pub list_calls: u32,
    /// Distinct changed rows seen.
    pub rows: u32,
    /// Rows enqueued now.
    pub enqueued: u32,
    /// Rows taken in before (dedupe).
    pub duplicates: u32,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// Per shop and feed.
    pub feeds: Vec<FeedRun>,
    /// Platforms that could not be pulled at all (no client, roster unreadable), with why.
    pub skipped: BTreeMap<String, String>,
}

impl SyncReport {
    /// List calls of the whole run.
    pub fn list_calls(&self) -> u32 {
        self.feeds.iter().map(|f| f.list_calls).sum()
    }

    /// Rows enqueued by the whole run.
    pub fn enqueued(&self) -> u32 {
        self.feeds.iter().map(|f| f.enqueued).sum()
    }

    /// Shops whose pull failed (`source/shop`).
    pub fn failed(&self) -> Vec<String> {
        let failed: BTreeSet<String> = self
            .feeds
            .iter()
            .filter(|f| f.outcome == FeedOutcome::Failed)
            .map(|f| format!("{}/{}", f.source, f.shop))
            .collect();
        failed.into_iter().collect()
    }
}

/// Why one shop's pull stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Why (no token or secret).
    pub reason: String,
    /// The platform asked us to wait this long.
    pub retry_after: Option<Duration>,
    /// Refreshing will not help: the shop must authorise again.
    pub needs_authorisation: bool,
}

impl Broken {
    fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), retry_after: None, needs_authorisation: false }
    }
}

impl From<QueryError> for Broken {
    fn from(err: QueryError) -> Self {
        let retry_after = match &err {
            QueryError::RateLimited { retry_after_s } => {
                Some(Duration::seconds(i64::try_from(retry_after_s.unwrap_or(60)).unwrap_or(60).max(1)))
            }
            _ => None,
        };
        let needs_authorisation = matches!(err, QueryError::Revoked { .. });
        let reason = match &err {
            QueryError::Revoked { .. } => format!("{err}: the shop must authorise the app again"),
            _ => err.to_string(),
        };
        Self { reason, retry_after, needs_authorisation }
    }
}

impl From<TokenError> for Broken {
    fn from(err: TokenError) -> Self {
        let needs_authorisation = !err.is_transient();
        Self { reason: err.to_string(), retry_after: None, needs_authorisation }
    }
}

/// A shop's pull at work: its client, its credentials (refreshed at most once per run) and
/// what it counts.
struct ShopPull<'s> {
    source: Source,
    shop: &'s ShopId,
    client: &'s dyn ChangeFeed,
    credentials: Option<Credentials>,
    generation: Option<u64>,
    refreshed: bool,
    list_calls: u32,
}

/// Pulls channels' changes.
pub struct SyncChannel<'a> {
    /// The ports.
    pub ports: SyncPorts<'a>,
    /// The rules.
    pub rules: &'a SyncRules,
}

impl SyncChannel<'_> {
    fn feed(&self, source: Source) -> Option<&dyn ChangeFeed> {
        self.ports.feeds.iter().copied().find(|f| f.source() == source)
    }

    fn budget_left(&self, plan: &Plan) -> StdDuration {
        plan.deadline.saturating_duration_since(Instant::now())
    }

    /// The scheduled (or ops) run: every registered shop of the plan's platforms, feed by feed.
    pub async fn run(&self, plan: &Plan) -> (Vec<DomainEvent>, SyncReport) {
        let mut report = SyncReport::default();
        let mut jobs = Vec::new();
        for &source in &plan.sources {
            let Some(client) = self.feed(source) else {
                report.skipped.insert(source.to_string(), "no change feed client".into());
                continue;
            };
            let roster = match self.ports.checkpoints.roster(source).await {
                Ok(roster) => roster,
                Err(err) => {
                    tracing::error!(%source, error = %err, "shop roster unreadable: platform not pulled this run");
                    report.skipped.insert(source.to_string(), format!("roster: {err}"));
                    continue;
                }
            };
            let shops: Vec<(ShopId, Option<u64>)> = match &plan.shop {
                Some(shop) => {
                    vec![(shop.clone(), roster.tokens.iter().find(|t| &t.shop == shop).map(|t| t.version))]
                }
                None => roster.tokens.iter().map(|t| (t.shop.clone(), Some(t.version))).collect(),
            };
            for (shop, generation) in shops {
                let checkpoints: Vec<Checkpoint> =
                    plan.feeds.iter().map(|feed| roster.checkpoint(&shop, *feed, source)).collect();
                jobs.push((source, client, shop, generation, checkpoints));
            }
        }
        let results: Vec<(Vec<FeedRun>, Option<DomainEvent>)> = futures::stream::iter(jobs)
            .map(|(source, client, shop, generation, checkpoints)| async move {
                self.shop(source, client, shop, generation, checkpoints, plan).await
            })
            .buffer_unordered(self.rules.concurrency.max(1))
            .collect()
            .await;
        let mut events = Vec::new();
        for (runs, event) in results {
            report.feeds.extend(runs);
            events.extend(event);
        }
        report.feeds.sort_by(|a, b| (a.source, &a.shop, a.feed).cmp(&(b.source, &b.shop, b.feed)));
        tracing::info!(
            feeds = report.feeds.len(),
            list_calls = report.list_calls(),
            enqueued = report.enqueued(),
            failed = report.failed().len(),
            "pull run done"
        );
        (events, report)
    }

    /// One shop, its feeds in turn; at most one event (and one log line) when it is broken.
    async fn shop(
        &self,
        source: Source,
        client: &dyn ChangeFeed,
        shop: ShopId,
        generation: Option<u64>,
        checkpoints: Vec<Checkpoint>,
        plan: &Plan,
    ) -> (Vec<FeedRun>, Option<DomainEvent>) {
        let mut pull =
            ShopPull { source, shop: &shop, client, credentials: None, generation, refreshed: false, list_calls: 0 };
        let mut runs = Vec::new();
        let mut broken: Vec<(Feed, Broken, u32, DateTime<Utc>)> = Vec::new();
        for checkpoint in checkpoints {
            let feed = checkpoint.feed;
            let (run, failure) = self.feed_run(&mut pull, checkpoint, plan).await;
            runs.push(run);
            if let Some((why, failures, retry_at)) = failure {
                let stop = why.needs_authorisation;
                broken.push((feed, why, failures, retry_at));
                if stop {
                    // The other feed would fail the same way: leave it for after the fix.
                    break;
                }
            }
        }
        let Some((_, first, failures, retry_at)) = broken.first() else { return (runs, None) };
        let feeds: Vec<&str> = broken.iter().map(|(feed, ..)| feed.as_str()).collect();
        let feeds = feeds.join(",");
        tracing::error!(
            %source, %shop, feeds = %feeds, reason = %first.reason, failures, retry_at = %retry_at,
            "pull failed: checkpoint kept, shop backed off"
        );
        let event = DomainEvent::SyncFailed {
            source,
            shop: shop.to_string(),
            feed: feeds,
            reason: first.reason.clone(),
            failures: *failures,
            retry_at: *retry_at,
        };
        (runs, Some(event))
    }

    /// One shop's feed: windows from the checkpoint until caught up or out of budget.
    async fn feed_run(
        &self,
        pull: &mut ShopPull<'_>,
        mut checkpoint: Checkpoint,
        plan: &Plan,
    ) -> (FeedRun, Option<(Broken, u32, DateTime<Utc>)>) {
        let feed = checkpoint.feed;
        let calls_before = pull.list_calls;
        let mut run = FeedRun {
            source: pull.source,
            shop: pull.shop.to_string(),
            feed,
            outcome: FeedOutcome::CaughtUp,
            through: checkpoint.through,
            windows: 0,
            list_calls: 0,
            rows: 0,
            enqueued: 0,
            duplicates: 0,
            error: None,
        };
        let now = self.ports.clock.now();
        if let Some(from) = plan.from {
            // Ops: restart from a given time (a conditional write like any other).
            let reset = Checkpoint {
                through: Some(from),
                version: checkpoint.version + 1,
                failures: 0,
                backoff_until: None,
                last_error: None,
                lease: None,
                ..checkpoint.clone()
            };
            match self.ports.checkpoints.save_checkpoint(&reset, checkpoint.version).await {
                Ok(()) => checkpoint = reset,
                Err(err) => {
                    run.outcome = FeedOutcome::Busy;
                    run.error = Some(format!("checkpoint reset: {err}"));
                    return (run, None);
                }
            }
        } else if checkpoint.backoff_until.is_some_and(|until| until > now) {
            run.outcome = FeedOutcome::BackingOff;
            run.error = checkpoint.last_error.clone();
            return (run, None);
        }
        if checkpoint.leased_by_other(&plan.run, now) {
            run.outcome = FeedOutcome::Busy;
            return (run, None);
        }
        let limits = pull.client.limits();
        let span = self.rules.window.unwrap_or(limits.window).min(limits.max_window);
        let horizon = now - limits.settle - plan.settle;
        loop {
            if checkpoint.through.is_some_and(|t| t >= horizon) {
                break;
            }
            let start = checkpoint.through.map_or(now - self.rules.cold_lookback, |t| t - self.rules.overlap);
            let end = (start + span).min(horizon);
            if end <= start {
                break;
            }
            if self.budget_left(plan) < self.rules.reserve {
                run.outcome = FeedOutcome::Partial;
                break;
            }
            let window = Window { start, end };
            let pulled = self.pull_window(pull, feed, &window).await;
            run.list_calls = pull.list_calls - calls_before;
            let rows = match pulled {
                Ok(rows) => rows,
                Err(why) => return self.failed(run, &checkpoint, why).await,
            };
            run.rows += u32::try_from(rows.len()).unwrap_or(u32::MAX);
            match self.enqueue(pull, feed, rows).await {
                Ok(admitted) => {
                    run.enqueued += admitted.enqueued;
                    run.duplicates += admitted.duplicates;
                }
                Err(err) => {
                    run.enqueued += err.admitted.enqueued;
                    run.duplicates += err.admitted.duplicates;
                    return self.failed(run, &checkpoint, Broken::new(format!("enqueue: {err}"))).await;
                }
            }
            let last = end >= horizon;
            let lease = (!last).then(|| Lease {
                owner: plan.run.clone(),
                until: self.ports.clock.now()
                    + Duration::from_std(self.budget_left(plan)).unwrap_or_else(|_| Duration::minutes(15)),
            });
            let next = Checkpoint {
                through: Some(end),
                version: checkpoint.version + 1,
                lease,
                failures: 0,
                backoff_until: None,
                last_error: None,
                ..checkpoint.clone()
            };
            match self.ports.checkpoints.save_checkpoint(&next, checkpoint.version).await {
                Ok(()) => {
                    checkpoint = next;
                    run.windows += 1;
                    run.through = checkpoint.through;
                }
                Err(StoreError::Conflict) => {
                    // Another run moved it: what we enqueued is deduped, the shop is theirs.
                    run.outcome = FeedOutcome::Busy;
                    break;
                }
                Err(err) => {
                    return self.failed(run, &checkpoint, Broken::new(format!("checkpoint: {err}"))).await;
                }
            }
        }
        run.list_calls = pull.list_calls - calls_before;
        (run, None)
    }

    /// Records a failed run on the checkpoint (its `through` unchanged) with the back-off.
    async fn failed(
        &self,
        mut run: FeedRun,
        checkpoint: &Checkpoint,
        why: Broken,
    ) -> (FeedRun, Option<(Broken, u32, DateTime<Utc>)>) {
        let now = self.ports.clock.now();
        let failures = checkpoint.failures.saturating_add(1);
        let doubled = self.rules.backoff * 2_i32.saturating_pow(failures.saturating_sub(1).min(16));
        let wait = if why.needs_authorisation {
            self.rules.max_backoff
        } else {
            why.retry_after.unwrap_or(doubled).min(self.rules.max_backoff)
        };
        let retry_at = now + wait;
        let reason: String = why.reason.chars().take(300).collect();
        let next = Checkpoint {
            version: checkpoint.version + 1,
            lease: None,
            failures,
            backoff_until: Some(retry_at),
            last_error: Some(reason.clone()),
            ..checkpoint.clone()
        };
        if let Err(err) = self.ports.checkpoints.save_checkpoint(&next, checkpoint.version).await {
            tracing::warn!(source = %checkpoint.source, shop = %checkpoint.shop, error = %err, "could not record the failed pull");
        }
        run.outcome = FeedOutcome::Failed;
        run.error = Some(reason.clone());
        (run, Some((Broken { reason, ..why }, failures, retry_at)))
    }

    /// Every row of a window, all pages read.
    async fn pull_window(
        &self,
        pull: &mut ShopPull<'_>,
        feed: Feed,
        window: &Window,
    ) -> Result<Vec<ChangedRow>, Broken> {
        let mut pending = vec![*window];
        let mut rows: Vec<ChangedRow> = Vec::new();
        while let Some(window) = pending.pop() {
            match self.pages(pull, feed, &window).await? {
                Paged::Rows(found) => rows.extend(found),
                Paged::TooMany if window.span() / 2 >= self.rules.min_window => {
                    let (early, late) = window.halves();
                    pending.push(late);
                    pending.push(early);
                }
                Paged::TooMany => {
                    return Err(Broken::new(format!(
                        "the list never ends: more than {} pages in a {}-second window",
                        self.rules.max_pages,
                        window.span().num_seconds()
                    )));
                }
            }
        }
        // Backward paging repeats rows by design: one copy per dedupe key is enough.
        let mut seen = BTreeSet::new();
        rows.retain(|row| seen.insert(row.message_id(feed)));
        Ok(rows)
    }

    async fn pages(&self, pull: &mut ShopPull<'_>, feed: Feed, window: &Window) -> Result<Paged, Broken> {
        let limits = pull.client.limits();
        let size = u64::from(limits.page_size.max(1));
        let max_pages = u64::from(self.rules.max_pages.max(1));
        match limits.paging {
            Paging::Numbered { first } => {
                let head = self.list(pull, feed, window, PageRequest::Number(first)).await?;
                let total = match head.total {
                    Some(total) => total,
                    None if (head.rows.len() as u64) < size => head.rows.len() as u64,
                    None => return Err(Broken::new("the platform's answer has no total for a full page")),
                };
                let count = total.div_ceil(size).max(1);
                if count > max_pages {
                    return Ok(Paged::TooMany);
                }
                let mut rows = head.rows;
                let mut moved = false;
                // From the last page back to the second, then the first again if anything moved.
                for index in (1..count).rev() {
                    let number = first + u32::try_from(index).unwrap_or(u32::MAX - first);
                    let page = self.list(pull, feed, window, PageRequest::Number(number)).await?;
                    moved |= page.total != Some(total);
                    rows.extend(page.rows);
                }
                if moved {
                    rows.extend(self.list(pull, feed, window, PageRequest::Number(first)).await?.rows);
                }
                Ok(Paged::Rows(rows))
            }
            Paging::Cursor => {
                let mut rows = Vec::new();
                let mut cursor: Option<String> = None;
                for _ in 0..max_pages {
                    let page = self.list(pull, feed, window, PageRequest::Cursor(cursor.clone())).await?;
                    rows.extend(page.rows);
                    match page.next {
                        None => return Ok(Paged::Rows(rows)),
                        Some(next) if Some(&next) == cursor.as_ref() => {
                            return Err(Broken::new("the platform handed back the same cursor twice"));
                        }
                        Some(next) => cursor = Some(next),
                    }
                }
                Ok(Paged::TooMany)
            }
        }
    }

    /// One list call, with the shop's credentials (a token expiry refreshes them once per run),
    /// short waits on rate limits and retries of what the platform calls transient.
    async fn list(
        &self,
        pull: &mut ShopPull<'_>,
        feed: Feed,
        window: &Window,
        page: PageRequest,
    ) -> Result<ListPage, Broken> {
        let mut attempt = 0;
        loop {
            let credentials = match pull.credentials.take() {
                Some(credentials) => credentials,
                None => self.ports.tokens.fresh_credentials(pull.source, pull.shop, pull.generation).await?,
            };
            let credentials = &*pull.credentials.insert(credentials);
            pull.list_calls += 1;
            let answer = match feed {
                Feed::Orders => pull.client.list_orders(window, &page, credentials).await,
                Feed::Refunds => pull.client.list_refunds(window, &page, credentials).await,
            };
            attempt += 1;
            let err = match answer {
                Ok(page) => return Ok(page),
                Err(err) => err,
            };
            match &err {
                QueryError::TokenExpired if !pull.refreshed => {
                    pull.refreshed = true;
                    pull.credentials = Some(self.ports.tokens.refresh(pull.source, pull.shop).await?);
                    continue;
                }
                QueryError::RateLimited { retry_after_s } if attempt < self.rules.attempts => {
                    let wait = retry_after_s.map_or(StdDuration::from_millis(250 << attempt), StdDuration::from_secs);
                    if wait > self.rules.max_wait {
                        return Err(err.into());
                    }
                    tokio::time::sleep(wait).await;
                }
                err if err.is_transient() && attempt < self.rules.attempts => {
                    tokio::time::sleep(StdDuration::from_millis(100 << attempt).min(self.rules.max_wait)).await;
                }
                _ => return Err(err.into()),
            }
        }
    }

    /// The rows of a window onto the road callbacks take.
    async fn enqueue(
        &self,
        pull: &ShopPull<'_>,
        feed: Feed,
        rows: Vec<ChangedRow>,
    ) -> Result<Admitted, crate::app::inbound::AdmitError> {
        let now = self.ports.clock.now();
        let api = pull.client.api(feed);
        let batch: Vec<(Accepted, InboundMessage)> = rows
            .into_iter()
            .filter_map(|row| {
                let message_id = row.message_id(feed);
                let payload = PulledPayload { pull: PullOrigin { feed, api: api.to_owned() }, row: row.row };
                let body = serde_json::to_vec(&payload).ok()?;
                let callback = RawCallback {
                    source: pull.source,
                    shop: pull.shop.clone(),
                    received_at: now,
                    query: Vec::new(),
                    headers: vec![("x-orderhub-origin".into(), ORIGIN_PULL.into())],
                    body: body.clone(),
                };
                let inline = (body.len() <= INLINE_PAYLOAD_LIMIT).then(|| String::from_utf8(body).ok()).flatten();
                let message = InboundMessage {
                    source: pull.source,
                    shop: pull.shop.clone(),
                    message_id: message_id.clone(),
                    received_at: now,
                    query: Vec::new(),
                    payload: inline,
                    origin: ORIGIN_PULL.into(),
                };
                Some((Accepted { message_id, callback, key_slot: None, opened: None }, message))
            })
            .collect();
        let attempt = crate::app::intake::attempt_id(now);
        let claiming = crate::app::inbound::Claiming { attempt: &attempt, now, lease: self.rules.claim_lease };
        admit(self.ports.inbox, self.ports.queue, batch, claiming, self.rules.enqueue_concurrency).await
    }

    /// The daily count reconciliation (全量比对) of one Beijing day: for each registered shop,
    /// every order the platform lists as changed that day is checked against what the hub took
    /// in (the inbox's dedupe record of (order, update time)); the missing ones are pulled in
    /// on the way, counted, and reported with `OrdersMissing`.
    pub async fn reconcile(
        &self,
        plan: &Plan,
        day: NaiveDate,
        stats: &dyn Stats,
    ) -> (Vec<DomainEvent>, ReconcileReport) {
        let mut events = Vec::new();
        let mut report = ReconcileReport { day, ..ReconcileReport::default() };
        let (from, to) = (day_start(day), day_start(day + chrono::Days::new(1)));
        for &source in &plan.sources {
            let Some(client) = self.feed(source) else { continue };
            let shops: Vec<(ShopId, Option<u64>)> = match (&plan.shop, self.ports.checkpoints.roster(source).await) {
                (Some(shop), roster) => vec![(
                    shop.clone(),
                    roster.ok().and_then(|r| r.tokens.into_iter().find(|t| &t.shop == shop)).map(|t| t.version),
                )],
                (None, Ok(roster)) => roster.tokens.into_iter().map(|t| (t.shop, Some(t.version))).collect(),
                (None, Err(err)) => {
                    report.errors.insert(source.to_string(), err.to_string());
                    continue;
                }
            };
            for (shop, generation) in shops {
                let mut pull = ShopPull {
                    source,
                    shop: &shop,
                    client,
                    credentials: None,
                    generation,
                    refreshed: false,
                    list_calls: 0,
                };
                let span = client.limits().max_window;
                let outcome = self.reconcile_shop(&mut pull, from, to, span, plan).await;
                let name = format!("{source}/{shop}");
                report.list_calls += pull.list_calls;
                match outcome {
                    Ok((platform, missing)) => {
                        report
                            .shops
                            .insert(name, ShopCount { platform, hub: platform.saturating_sub(missing), missing });
                        if missing > 0 {
                            let channel = match sources::module(source).delivery() {
                                Delivery::Pulled => "pull",
                                Delivery::Callbacks => "callback",
                            };
                            tracing::warn!(%source, %shop, %day, platform, missing, channel, "orders missing: pulled in now");
                            events.push(DomainEvent::OrdersMissing {
                                source,
                                shop: shop.to_string(),
                                day,
                                missing,
                                platform_count: platform,
                                hub_count: platform.saturating_sub(missing),
                                channel: channel.into(),
                            });
                            let add = CounterAdd {
                                channel: source,
                                day,
                                shard: 0,
                                name: names::ORDERS_MISSING.into(),
                                by: i64::from(missing),
                            };
                            if let Err(err) = stats.add(&[add]).await {
                                tracing::warn!(error = %err, "could not count missing orders");
                            }
                        }
                    }
                    Err(why) => {
                        tracing::error!(%source, %shop, %day, reason = %why.reason, "reconciliation failed for this shop");
                        report.errors.insert(name, why.reason);
                    }
                }
            }
        }
        (events, report)
    }

    async fn reconcile_shop(
        &self,
        pull: &mut ShopPull<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        span: Duration,
        plan: &Plan,
    ) -> Result<(u32, u32), Broken> {
        let mut orders: BTreeMap<String, ChangedRow> = BTreeMap::new();
        let mut start = from;
        while start < to {
            if self.budget_left(plan) < self.rules.reserve {
                return Err(Broken::new("out of time before the day was listed"));
            }
            let end = (start + span).min(to);
            for row in self.pull_window(pull, Feed::Orders, &Window { start, end }).await? {
                // The platform's count of orders changed that day: each order once, at its
                // newest update time within the day.
                if row.updated_at >= from && row.updated_at < to {
                    let newer = orders.get(row.order_id.as_str()).is_none_or(|seen| seen.updated_at < row.updated_at);
                    if newer {
                        orders.insert(row.order_id.to_string(), row);
                    }
                }
            }
            start = end;
        }
        let platform = u32::try_from(orders.len()).unwrap_or(u32::MAX);
        let admitted = self
            .enqueue(pull, Feed::Orders, orders.into_values().collect())
            .await
            .map_err(|e| Broken::new(format!("enqueue: {e}")))?;
        Ok((platform, admitted.enqueued))
    }
}

/// How a window's pages went.
enum Paged {
    Rows(Vec<ChangedRow>),
    TooMany,
}

/// One shop's counts in a reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShopCount {
    /// Orders the platform lists as changed that day.
    pub platform: u32,
    /// Of those, the ones the hub had taken in.
    pub hub: u32,
    /// The ones it had not (pulled in now).
    pub missing: u32,
}

/// What a reconciliation did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// The Beijing day.
    pub day: NaiveDate,
    /// Per shop (`source/shop`).
    pub shops: BTreeMap<String, ShopCount>,
    /// List calls made.
    pub list_calls: u32,
    /// Shops (or platforms) that could not be reconciled, with why.
    pub errors: BTreeMap<String, String>,
}

/// The callback-outage summary of channels that push: the changes pulls applied that their
/// callbacks had not delivered (the `applied_by_pull` and `refund_found_by_pull` day counters the
/// write path keeps), since the last summary of the Beijing day `now` is in. One
/// `CallbackMissingSummary` per channel that has new ones.
pub async fn callback_summary(
    channels: &[Source],
    stats: &dyn Stats,
    marks: &dyn SummaryMarks,
    now: DateTime<Utc>,
) -> Vec<DomainEvent> {
    let day = business_day(now);
    let mut events = Vec::new();
    for &channel in channels.iter().filter(|c| sources::module(**c).delivery() == Delivery::Callbacks) {
        let Ok(month) = stats.month(channel, day).await else { continue };
        let today = month.iter().find(|d| d.day == Some(day));
        let found = today.map_or((0, 0), |d| (d.get(names::APPLIED_BY_PULL), d.get(names::REFUND_FOUND_BY_PULL)));
        let Ok(((missing, refunds), version)) = marks.mark(channel, day).await else { continue };
        if found.0 <= missing {
            continue;
        }
        if marks.set_mark(channel, day, found, version).await.is_err() {
            // An overlapping run reported it.
            continue;
        }
        let (new_missing, new_refunds) = (found.0 - missing, found.1 - refunds);
        tracing::warn!(%channel, %day, missing = new_missing, refunds = new_refunds, "pulls found changes the callbacks never delivered");
        events.push(DomainEvent::CallbackMissingSummary {
            channel,
            day,
            missing: new_missing,
            refunds: new_refunds,
            hint: format!(
                "{new_missing} changes of {channel} ({new_refunds} refunds) reached orderhub only by the backstop pull: check webhook-verify's rejections and quarantine for {channel} (a changed key or token) and the channel's push settings"
            ),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::apply::ApplyChange;
    use crate::app::apply_message::ApplyMessage;
    use crate::app::tokens::{TokenPorts, TokenRules};
    use crate::model::callback::InboundMessage;
    use crate::model::ids::OrderKey;
    use crate::model::lifecycle::Lifecycle;
    use crate::model::order::{Provenance, Verdict};
    use crate::model::secret::Secret;
    use crate::model::sync::{PullOrigin, ShopTokens};
    use crate::ports::pull::TokenRefresh;
    use crate::ports::secrets::{SecretCache, parameter_name};
    use crate::ports::sync::TokenLedger;
    use crate::ports::{OrderStore, Secrets};
    use crate::rules::timing::Rules;
    use crate::testing::clock::FixedClock;
    use crate::testing::feed::MemoryFeed;
    use crate::testing::memory::{MemoryInbox, MemoryQueue, MemorySecrets, MemoryStore, MemorySync};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 4, 0, 0).single().unwrap_or_default()
    }

    fn shop(name: &str) -> ShopId {
        ShopId::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    struct World {
        feed: MemoryFeed,
        sync: MemorySync,
        secrets: MemorySecrets,
        inbox: MemoryInbox,
        queue: MemoryQueue,
        clock: FixedClock,
        rules: SyncRules,
    }

    impl World {
        async fn new(shops: &[&str]) -> World {
            let world = World {
                feed: MemoryFeed::new(Source::Pdd, 10),
                sync: MemorySync::default(),
                secrets: MemorySecrets::default(),
                inbox: MemoryInbox::default(),
                queue: MemoryQueue::default(),
                clock: FixedClock::new(now()),
                rules: SyncRules { max_wait: StdDuration::from_millis(5), ..SyncRules::default() },
            };
            for name in shops {
                let secret = r#"{"app_key":"pdd-app","secret":"pdd-secret"}"#;
                world.secrets.put(&parameter_name("test", Source::Pdd, &shop(name)), secret).await.unwrap_or_default();
                let tokens = ShopTokens {
                    access_token: Secret::new(format!("token-{name}")),
                    access_token_expires_at: Some(now() + Duration::days(1)),
                    refresh_token: Some(Secret::new("r")),
                    refresh_token_expires_at: Some(now() + Duration::days(30)),
                    generation: 0,
                };
                world
                    .run_with(async |s| s.ports.tokens.install(Source::Pdd, &shop(name), tokens).await)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            world
        }

        async fn run_with<R>(&self, f: impl AsyncFnOnce(&SyncChannel<'_>) -> R) -> R {
            let cache = SecretCache::new(&self.secrets, &self.clock, "test", Duration::minutes(2));
            let refreshers: [&dyn TokenRefresh; 1] = [&self.feed];
            let keeper = TokenKeeper::new(
                TokenPorts {
                    ledger: &self.sync,
                    params: &self.secrets,
                    secrets: &cache,
                    refreshers: &refreshers,
                    clock: &self.clock,
                },
                "test",
                TokenRules::default(),
                "test",
            );
            let feeds: [&dyn ChangeFeed; 1] = [&self.feed];
            let sync = SyncChannel {
                ports: SyncPorts {
                    feeds: &feeds,
                    checkpoints: &self.sync,
                    tokens: &keeper,
                    inbox: &self.inbox,
                    queue: &self.queue,
                    clock: &self.clock,
                },
                rules: &self.rules,
            };
            f(&sync).await
        }

        async fn pull(&self, run: &str) -> (Vec<DomainEvent>, SyncReport) {
            let plan = plan(run, StdDuration::from_secs(60));
            self.run_with(async |s| s.run(&plan).await).await
        }

        fn enqueued(&self) -> Vec<InboundMessage> {
            self.queue.drain().iter().map(|m| serde_json::from_str(&m.body).unwrap_or_else(|e| panic!("{e}"))).collect()
        }

        async fn through(&self, name: &str) -> Option<DateTime<Utc>> {
            self.sync.checkpoint(Source::Pdd, &shop(name), Feed::Orders).await.ok().and_then(|c| c.through)
        }
    }

    fn plan(run: &str, budget: StdDuration) -> Plan {
        Plan {
            sources: vec![Source::Pdd],
            feeds: vec![Feed::Orders],
            shop: None,
            from: None,
            settle: Duration::zero(),
            run: run.into(),
            deadline: Instant::now() + budget,
        }
    }

    fn order_ids(messages: &[InboundMessage]) -> BTreeSet<String> {
        messages
            .iter()
            .filter_map(|m| PulledPayload::read(m.payload.as_deref().unwrap_or_default().as_bytes()))
            .filter_map(|p| crate::sources::json::text(&p.row, "order_sn"))
            .collect()
    }

    #[tokio::test]
    async fn a_cold_shop_catches_up_a_day_window_by_window_and_the_checkpoint_follows() {
        let world = World::new(&["shop-a"]).await;
        for n in 0..200 {
            world.feed.put("shop-a", &format!("261111-{n:04}"), "1", now() - Duration::minutes(7 * n + 5));
        }
        let (events, report) = world.pull("run-1").await;
        assert!(events.is_empty(), "{events:?}");
        let [run] = &report.feeds[..] else { panic!("{report:?}") };
        assert_eq!(run.outcome, FeedOutcome::CaughtUp);
        // A day in 30-minute windows overlapping by 2 minutes.
        assert_eq!(run.windows, 52, "{run:?}");
        let messages = world.enqueued();
        let expected: usize = (0..200).filter(|n| 7 * n + 5 <= 24 * 60).count();
        assert_eq!(order_ids(&messages).len(), expected, "every order of the last day, once");
        assert_eq!(messages.len(), expected, "no duplicates on the queue");
        assert!(messages.iter().all(|m| m.origin == "pull" && m.provenance() == Provenance::Pull));
        assert_eq!(world.through("shop-a").await, Some(now() - Duration::minutes(3)));
        // Five minutes later, a quiet window: one list call, nothing enqueued.
        world.clock.advance(Duration::minutes(5));
        let calls = world.feed.calls();
        let (_, report) = world.pull("run-2").await;
        assert_eq!(world.feed.calls() - calls, 1, "{report:?}");
        assert_eq!((report.feeds[0].windows, report.feeds[0].enqueued), (1, 0));
    }

    #[tokio::test]
    async fn paging_backwards_misses_no_order_that_changes_while_we_page() {
        let world = World::new(&["shop-a"]).await;
        let t0 = now() - Duration::minutes(20);
        for n in 0..35 {
            world.feed.put("shop-a", &format!("o{n:03}"), "1", t0 + Duration::seconds(n));
        }
        world.clock.set(t0 + Duration::minutes(10));
        world
            .sync
            .save_checkpoint(
                &Checkpoint {
                    through: Some(t0 - Duration::minutes(1)),
                    version: 1,
                    ..Checkpoint::new(Source::Pdd, shop("shop-a"), Feed::Orders)
                },
                0,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // After the first page call (page 1, for the total), o005 changes: it leaves the window
        // and every later row moves one place towards page 1.
        world.feed.after_call(
            2,
            Box::new(|orders, _| {
                for o in orders.iter_mut().filter(|o| o.id == "o005") {
                    o.updated_at += Duration::hours(1);
                    o.status = "2".into();
                }
            }),
        );
        let (_, report) = world.pull("run-1").await;
        assert_eq!(report.feeds[0].outcome, FeedOutcome::CaughtUp, "{report:?}");
        let seen = order_ids(&world.enqueued());
        let missing: Vec<String> = (0..35).map(|n| format!("o{n:03}")).filter(|id| !seen.contains(id)).collect();
        assert!(missing.is_empty(), "missed {missing:?}");
    }

    #[tokio::test]
    async fn a_failed_window_keeps_the_checkpoint_and_the_next_run_resumes_there() {
        let world = World::new(&["shop-a", "shop-b"]).await;
        for n in 0..60 {
            world.feed.put("shop-a", &format!("a{n:03}"), "1", now() - Duration::minutes(20 * n + 5));
            world.feed.put("shop-b", &format!("b{n:03}"), "1", now() - Duration::minutes(20 * n + 5));
        }
        // shop-a's platform answers garbage.
        world.feed.fail_next("shop-a", QueryError::Malformed("body is not JSON".into()));
        let broken_at = now();
        let (events, report) = world.pull("run-1").await;
        let failed: Vec<&FeedRun> = report.feeds.iter().filter(|f| f.outcome == FeedOutcome::Failed).collect();
        assert_eq!(failed.len(), 1, "{report:?}");
        assert_eq!(failed[0].shop, "shop-a");
        assert!(
            matches!(&events[..], [DomainEvent::SyncFailed { shop, reason, failures: 1, .. }] if shop == "shop-a" && reason.contains("not JSON")),
            "{events:?}"
        );
        assert_eq!(world.through("shop-a").await, None, "nothing advanced past what was not enqueued");
        assert_eq!(world.through("shop-b").await, Some(broken_at - Duration::minutes(3)), "the other shop went on");
        // Backed off: the next run leaves shop-a alone…
        let calls = world.feed.calls();
        let (_, report) = world.pull("run-2").await;
        assert_eq!(report.feeds.iter().find(|f| f.shop == "shop-a").map(|f| f.outcome), Some(FeedOutcome::BackingOff));
        assert_eq!(world.feed.calls(), calls, "shop-b is caught up and shop-a backs off: no call");
        // …until its back-off ends; then it resumes from its checkpoint and catches up.
        world.clock.advance(Duration::minutes(6));
        world.enqueued();
        let (events, report) = world.pull("run-3").await;
        assert!(events.is_empty());
        assert_eq!(report.feeds.iter().find(|f| f.shop == "shop-a").map(|f| f.outcome), Some(FeedOutcome::CaughtUp));
        let seen = order_ids(&world.enqueued());
        assert!((0..60).filter(|n| 20 * n + 5 <= 24 * 60).all(|n| seen.contains(&format!("a{n:03}"))));
    }

    #[tokio::test]
    async fn an_enqueue_failure_advances_nothing_and_loses_nothing() {
        let world = World::new(&["shop-a"]).await;
        for n in 0..3 {
            world.feed.put("shop-a", &format!("a{n}"), "1", now() - Duration::minutes(10 + n));
        }
        world
            .sync
            .save_checkpoint(
                &Checkpoint {
                    through: Some(now() - Duration::minutes(30)),
                    version: 1,
                    ..Checkpoint::new(Source::Pdd, shop("shop-a"), Feed::Orders)
                },
                0,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // One failed send is retried on the spot…
        world.queue.fail_next_calls(1);
        let (events, report) = world.pull("run-0").await;
        assert!(events.is_empty() && report.feeds[0].enqueued == 3, "{events:?} {report:?}");
        assert_eq!(order_ids(&world.enqueued()).len(), 3);
        world.clock.advance(Duration::minutes(10));
        for n in 3..6 {
            world.feed.put("shop-a", &format!("a{n}"), "1", world.clock.now() - Duration::minutes(5 + n));
        }
        let kept = world.through("shop-a").await;
        // …a queue down for longer fails the window.
        world.queue.fail_next_calls(3);
        let (events, _) = world.pull("run-1").await;
        assert!(
            matches!(&events[..], [DomainEvent::SyncFailed { reason, .. }] if reason.contains("enqueue")),
            "{events:?}"
        );
        assert_eq!(world.through("shop-a").await, kept);
        assert!(world.enqueued().is_empty());
        world.clock.advance(Duration::minutes(6));
        world.pull("run-2").await;
        assert_eq!(order_ids(&world.enqueued()).len(), 3, "the dedupe records were undone, so the next run passes");
    }

    #[tokio::test]
    async fn two_overlapping_runs_never_both_move_a_checkpoint() {
        let world = World::new(&["shop-a"]).await;
        for n in 0..30 {
            world.feed.put("shop-a", &format!("a{n:03}"), "1", now() - Duration::minutes(40 * n + 5));
        }
        let one = plan("run-1", StdDuration::from_secs(60));
        let two = plan("run-2", StdDuration::from_secs(60));
        let (a, b) = world.run_with(async |s| futures::join!(s.run(&one), s.run(&two))).await;
        let outcomes = [a.1.feeds[0].outcome, b.1.feeds[0].outcome];
        assert!(outcomes.contains(&FeedOutcome::CaughtUp), "{outcomes:?}");
        assert!(outcomes.contains(&FeedOutcome::Busy), "the second leaves the shop alone: {outcomes:?}");
        assert_eq!(world.through("shop-a").await, Some(now() - Duration::minutes(3)));
        let messages = world.enqueued();
        assert_eq!(order_ids(&messages).len(), messages.len(), "each order enqueued once (inbox dedupe)");
    }

    #[tokio::test]
    async fn an_expired_token_is_refreshed_once_and_the_pull_goes_on() {
        let world = World::new(&["shop-a"]).await;
        world.feed.put("shop-a", "a1", "1", now() - Duration::minutes(10));
        world.feed.expire_token("shop-a");
        let (events, report) = world.pull("run-1").await;
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(report.feeds[0].outcome, FeedOutcome::CaughtUp);
        assert_eq!(world.feed.refreshes(), 1);
        let stored = world.sync.token(Source::Pdd, &shop("shop-a")).await.ok().flatten().map(|t| t.version);
        assert_eq!(stored, Some(2), "the ledger moved to the refreshed tokens");
    }

    #[tokio::test]
    async fn a_list_that_never_ends_is_halved_then_refused_and_backed_off() {
        let world = World::new(&["shop-a"]).await;
        world.feed.endless();
        world
            .sync
            .save_checkpoint(
                &Checkpoint {
                    through: Some(now() - Duration::minutes(20)),
                    version: 1,
                    ..Checkpoint::new(Source::Pdd, shop("shop-a"), Feed::Orders)
                },
                0,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (events, report) = world.pull("run-1").await;
        assert!(
            matches!(&events[..], [DomainEvent::SyncFailed { reason, .. }] if reason.contains("never ends")),
            "{events:?}"
        );
        assert!(report.feeds[0].list_calls < 40, "halving stops at the shortest window: {:?}", report.feeds[0]);
        assert_eq!(world.through("shop-a").await, Some(now() - Duration::minutes(20)));
    }

    #[tokio::test]
    async fn a_rate_limit_backs_off_that_shop_only_for_the_time_the_platform_asks() {
        let world = World::new(&["shop-a", "shop-b"]).await;
        world.feed.fail_next("shop-a", QueryError::RateLimited { retry_after_s: Some(600) });
        let (events, report) = world.pull("run-1").await;
        let DomainEvent::SyncFailed { shop, retry_at, .. } = &events[0] else { panic!("{events:?}") };
        assert_eq!((shop.as_str(), *retry_at), ("shop-a", now() + Duration::minutes(10)));
        assert_eq!(report.failed(), ["pdd/shop-a"]);
    }

    #[tokio::test]
    async fn the_time_budget_ends_a_catch_up_with_a_partial_run_that_the_next_run_continues() {
        let world = World::new(&["shop-a"]).await;
        let short = plan("run-1", StdDuration::from_secs(5));
        let (_, report) = world.run_with(async |s| s.run(&short).await).await;
        assert_eq!(report.feeds[0].outcome, FeedOutcome::Partial, "less than the reserve: no window started");
        assert_eq!(world.through("shop-a").await, None);
    }

    #[tokio::test]
    async fn pulled_rows_are_applied_with_provenance_pull_and_a_change_seen_twice_once() {
        let world = World::new(&["shop-a"]).await;
        world.feed.put("shop-a", "261111-0001", "1", now() - Duration::minutes(10));
        world.pull("run-1").await;
        let messages = world.enqueued();
        let store = MemoryStore::default();
        let rules = Rules::default();
        let apply = ApplyMessage::new(ApplyChange::new(store.write_ports(&world.inbox, &world.clock), &rules));
        let first = apply.handle(&messages[0]).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(
                &first[..],
                [DomainEvent::OrderStatusChanged { to: Lifecycle::Paid, provenance: Provenance::Pull, .. }]
            ),
            "{first:?}"
        );
        // The next run's overlap pulls the same row again: deduped at the inbox…
        world.clock.advance(Duration::minutes(5));
        world.pull("run-2").await;
        assert!(world.enqueued().is_empty());
        // …and even when delivered twice, the history keeps one entry and nothing moves twice.
        let again = apply.handle(&messages[0]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, first, "the same events re-derived, same ids");
        let key = OrderKey::parse(Source::Pdd, "shop-a", "261111-0001").unwrap_or_else(|e| panic!("{e}"));
        let history = store.history(&key, None, 10).await.map(|p| p.items).unwrap_or_default();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].provenance, history[0].verdict), (Provenance::Pull, Verdict::Applied));
    }

    /// A Douyin order paid: by callback (the push's pay time) and by the backstop pull (the
    /// platform's update time), in either order.
    async fn seen_twice(callback_first: bool) -> (Vec<DomainEvent>, Vec<crate::model::record::HistoryEntry>) {
        let clock = FixedClock::new(now());
        let (store, inbox, rules) = (MemoryStore::default(), MemoryInbox::default(), Rules::default());
        let apply = ApplyMessage::new(ApplyChange::new(store.write_ports(&inbox, &clock), &rules));
        let paid_at = now() - Duration::minutes(30);
        let callback = crate::testing::fixtures::DayCallback {
            source: Source::Douyin,
            shop: "shop-a".into(),
            payload: crate::testing::fixtures::douyin_push(
                "101",
                "m-101",
                serde_json::json!({"p_id": "6921001", "pay_time": paid_at.timestamp(), "s_ids": ["69210011"]}),
            ),
            query: vec![],
            message_id: "m-101".into(),
            sent_at: paid_at,
        }
        .inbound();
        let row = serde_json::json!({"order_id": "6921001", "order_status": 105, "update_time": (paid_at + Duration::seconds(20)).timestamp(),
            "sku_order_list": [{"order_id": "69210011", "sku_id": 1, "item_num": 1}]});
        let payload = PulledPayload { pull: PullOrigin { feed: Feed::Orders, api: "/order/searchList".into() }, row };
        let pulled = InboundMessage {
            source: Source::Douyin,
            shop: shop("shop-a"),
            message_id: crate::model::ids::MessageId::parse("pull-o-6921001-1").unwrap_or_else(|e| panic!("{e}")),
            received_at: now(),
            query: vec![],
            payload: serde_json::to_string(&payload).ok(),
            origin: ORIGIN_PULL.into(),
        };
        let order = if callback_first { [&callback, &pulled] } else { [&pulled, &callback] };
        let mut events = Vec::new();
        for message in order {
            events.extend(apply.handle(message).await.unwrap_or_else(|e| panic!("{e}")));
        }
        let key = OrderKey::parse(Source::Douyin, "shop-a", "6921001").unwrap_or_else(|e| panic!("{e}"));
        (events, store.history(&key, None, 10).await.map(|p| p.items).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_change_seen_by_a_callback_and_by_a_pull_is_applied_once_whichever_comes_first() {
        for callback_first in [true, false] {
            let (events, history) = seen_twice(callback_first).await;
            let kinds: Vec<&str> = events.iter().map(DomainEvent::detail_type).collect();
            assert_eq!(kinds, ["OrderStatusChanged", "StockReserved"], "one move, one reservation ({callback_first})");
            assert_eq!(history.len(), 2, "both sightings are in the history");
            let applied: Vec<Provenance> =
                history.iter().filter(|h| h.verdict == Verdict::Applied).map(|h| h.provenance).collect();
            assert_eq!(applied.len(), 1, "{history:?}");
            let other = history.iter().find(|h| h.verdict != Verdict::Applied).map(|h| h.verdict);
            assert!(matches!(other, Some(Verdict::Refreshed | Verdict::Stale | Verdict::Duplicate)), "{other:?}");
        }
    }
}
