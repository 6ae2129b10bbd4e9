//! health-report's use case: the order-health report of a Beijing day, month or ops range, per
//! channel and overall, from the pre-aggregated daily counters (one `Stats::month` query per
//! channel and month touched, whatever the order volume), stored with its page and published as
//! `HealthThresholdBreached` events. Its HTML page goes to the page store ([`ReportPages`]) with
//! an expiring link, and a daily or monthly report is announced with `HealthReportReady` (the
//! verdicts, the breaches and the link; notify posts it to the report robots). And the
//! channel-silence watch, which raises `ChannelSilent`
//! once per quiet spell and `ChannelRecovered` when callbacks return.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{Datelike, Days, Months, NaiveDate};
use futures::StreamExt;
use serde::Serialize;

use crate::model::counters::DayCounters;
use crate::model::domain_event::DomainEvent;
use crate::model::health::{Indicator, ReportBreach, ReportKind, Scope};
use crate::model::ids::Source;
use crate::model::time::business_day;
use crate::ports::clock::Clock;
use crate::ports::{EventPublisher, PageLink, PublishError, ReportPages, Stats, StoreError};
use crate::rules::health::fit::{Fit, stored_report};
use crate::rules::health::silence::{SILENCE_STATE_KIND, SilenceState, step as silence_step};
use crate::rules::health::{
    HealthReport, HealthThresholds, HealthVerdict, Period, ScopeHealth, SilenceRules, build_report, render_html,
    silent_channels,
};

/// Month queries in flight at once (a year of 9 sources would otherwise open ~100 at once).
const MAX_CONCURRENT_QUERIES: usize = 16;

/// The longest range an ops request may ask for, days: a quarter keeps the stored JSON with its
/// daily series under the item size limit and the reads at most channels × 4 months.
pub const MAX_RANGE_DAYS: u64 = 92;

/// A report to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// Daily, monthly or range.
    pub kind: ReportKind,
    /// The Beijing days covered.
    pub period: Period,
    /// The channels read, in [`Source`] order, without repeats.
    pub channels: Vec<Source>,
    /// Whether `channels` is a subset chosen by the caller (the report then shows only those
    /// and is stored under a key that names them, so it never replaces the full report).
    pub subset: bool,
}

impl ReportRequest {
    /// A report of every sales channel.
    pub fn all_channels(kind: ReportKind, period: Period) -> Self {
        Self { kind, period, channels: Source::CHANNELS.to_vec(), subset: false }
    }

    /// The sort key the report is stored under: the period label (`2026-11-11`, `2026-11`,
    /// `2026-11-01..2026-11-15`), followed by `#douyin+pdd` for a subset of channels.
    pub fn stored_period(&self) -> String {
        let label = self.period.label(self.kind);
        if self.subset {
            let names: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
            format!("{label}#{}", names.join("+"))
        } else {
            label
        }
    }
}

/// Why an invocation failed after its event was understood. The text is safe to answer (no
/// internal detail); the detail is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportFailure {
    /// Reading counters or storing the report failed.
    #[error("the stats table could not be read or written; the invocation can be retried")]
    Store(StoreError),
    /// The event bus refused some or all events (the report itself is stored).
    #[error("{failed} of {total} events could not be published; the invocation can be retried")]
    Publish {
        /// Events that did not go out.
        failed: usize,
        /// Events there were.
        total: usize,
    },
}

impl From<StoreError> for ReportFailure {
    fn from(err: StoreError) -> Self {
        ReportFailure::Store(err)
    }
}

/// The table key a report was stored under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredKey {
    /// `R#{kind}`.
    pub pk: String,
    /// The period label (plus `#channels` for a subset).
    pub sk: String,
}

/// The answer to a report invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    /// Daily, monthly or range.
    pub kind: ReportKind,
    /// The stored period (`2026-11-11`, `2026-11`, `2026-11-01..2026-11-15#douyin+pdd`).
    pub period: String,
    /// Breached indicators (overall and channels), each published as an event.
    pub breaches: usize,
    /// Per scope (`overall`, then each channel), the worst verdict of its five indicators.
    pub verdicts: BTreeMap<String, HealthVerdict>,
    /// Where the report is.
    pub stored: Vec<StoredKey>,
    /// Whether the page (or the JSON's daily series) had to be cut to fit the item.
    pub fit: Fit,
    /// Bytes stored (JSON + page).
    pub stored_bytes: usize,
    /// `Stats::month` queries made: channels × months touched.
    pub counter_queries: usize,
    /// Time to read the counters, milliseconds.
    pub read_ms: u64,
    /// Time to read the counters and build, render and store the report, milliseconds.
    pub build_ms: u64,
    /// Per scope (`overall`, then each channel), each indicator's value where there is one.
    pub indicators: BTreeMap<String, BTreeMap<Indicator, f64>>,
    /// The HTML page and its expiring link (none without a page store).
    pub page: Option<PageLink>,
}

/// The answer to a silence-watch run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilenceSummary {
    /// Channels silent now (listed by the watch this run).
    pub silent: Vec<Source>,
    /// Channels that raised `ChannelSilent` this run.
    pub raised: Vec<Source>,
    /// Channels that raised `ChannelRecovered` this run.
    pub recovered: Vec<Source>,
    /// `Stats::month` queries made.
    pub counter_queries: usize,
}

/// health-report's use case: build, store and publish reports; watch channels for silence.
pub struct HealthReporting<'a> {
    /// Daily counters, stored reports, silence state.
    pub stats: &'a dyn Stats,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
    /// Now.
    pub clock: &'a dyn Clock,
    /// Indicator thresholds.
    pub thresholds: &'a HealthThresholds,
    /// When a channel counts as silent.
    pub silence: &'a SilenceRules,
    /// Where the HTML page goes (none: only the stats item is stored, nothing is announced).
    pub pages: Option<&'a dyn ReportPages>,
}

impl HealthReporting<'_> {
    /// Reads the counters of the request's channels for every month its period touches, builds
    /// the report, stores it, and publishes one `HealthThresholdBreached` per breach.
    #[tracing::instrument(name = "health_report", skip_all, fields(kind = request.kind.as_str()))]
    pub async fn report(&self, request: &ReportRequest) -> Result<ReportSummary, ReportFailure> {
        let started = Instant::now();
        let (channels, queries) = self.counters(&request.channels, request.period).await.map_err(|err| {
            tracing::error!(error = %err, kind = request.kind.as_str(), "could not read the counters");
            ReportFailure::Store(err)
        })?;
        let read_ms = millis(started);
        let mut report = build_report(request.kind, request.period, &channels, self.thresholds);
        if request.subset {
            report.channels.retain(|row| matches!(row.scope, Scope::Channel(c) if request.channels.contains(&c)));
        }
        let period = request.stored_period();
        let (stored, fit) = stored_report(&report, &period);
        let stored_bytes = stored.json.len() + stored.rendered.len();
        self.stats.put_report(&stored).await.map_err(|err| {
            tracing::error!(error = %err, kind = request.kind.as_str(), %period, "could not store the report");
            ReportFailure::Store(err)
        })?;
        let (page, page_failed) = self.page(request, &report, &period).await;
        let build_ms = millis(started);

        let mut events = breach_events(&report, &period);
        let breaches = events.len();
        if let Some(link) = &page
            && announced(request)
        {
            events.push(ready_event(&report, &period, link));
        }
        let summary = ReportSummary {
            kind: request.kind,
            period: period.clone(),
            breaches,
            verdicts: verdicts(&report),
            stored: vec![StoredKey { pk: format!("R#{}", request.kind.as_str()), sk: period.clone() }],
            fit,
            stored_bytes,
            counter_queries: queries,
            read_ms,
            build_ms,
            indicators: indicator_values(&report),
            page,
        };
        tracing::info!(
            kind = request.kind.as_str(),
            %period,
            breaches,
            counter_queries = queries,
            read_ms,
            build_ms,
            stored_bytes,
            fit = ?fit,
            "report stored"
        );
        let failed = self.publish(&events).await;
        if failed > 0 {
            return Err(ReportFailure::Publish { failed, total: events.len() });
        }
        // The breaches went out; the page did not: the invocation fails so it is retried (the
        // breach events keep their ids, and notify has seen them).
        if let Some(err) = page_failed {
            return Err(ReportFailure::Store(err));
        }
        Ok(summary)
    }

    /// Stores the report's HTML page, when there is a page store.
    async fn page(
        &self,
        request: &ReportRequest,
        report: &HealthReport,
        period: &str,
    ) -> (Option<PageLink>, Option<StoreError>) {
        let Some(pages) = self.pages else { return (None, None) };
        let key = page_key(request.kind, period);
        match pages.put_page(&key, &render_html(report)).await {
            Ok(link) => (Some(link), None),
            Err(err) => {
                tracing::error!(error = %err, kind = request.kind.as_str(), %period, "could not store the report's page");
                (None, Some(err))
            }
        }
    }

    /// One run of the channel-silence watch: reads the sales channels' counters for today and
    /// the look-back days, finds silent channels, and moves each channel's stored state,
    /// publishing `ChannelSilent` once per quiet spell and `ChannelRecovered` when a callback
    /// arrives. A state is stored only after its events went out, so a bus failure repeats the
    /// alert on the next run rather than losing it.
    #[tracing::instrument(name = "silence_watch", skip_all)]
    pub async fn silence_watch(&self) -> Result<SilenceSummary, ReportFailure> {
        let now = self.clock.now();
        let today = business_day(now);
        // The look-back days before today, and one more: the watched window can start yesterday.
        let back = u64::from(self.silence.lookback_days.min(crate::rules::health::MAX_LOOKBACK_DAYS)) + 1;
        let first = today.checked_sub_days(Days::new(back)).unwrap_or(today);
        let sources = Source::CHANNELS;
        let (counters, queries) = self.counters(&sources, Period::new(first, today)).await?;
        let today_counters: BTreeMap<Source, DayCounters> = counters
            .iter()
            .filter_map(|(source, days)| days.iter().find(|d| d.day == Some(today)).map(|d| (*source, d.clone())))
            .collect();
        let silent = silent_channels(now, &today_counters, &counters, self.silence);

        let states =
            futures::future::join_all(sources.iter().map(|c| self.stats.report(SILENCE_STATE_KIND, c.as_str()))).await;
        let mut steps = Vec::new();
        for (channel, state) in sources.iter().zip(states) {
            let state = state?.as_ref().and_then(SilenceState::from_stored);
            let days: BTreeMap<NaiveDate, &DayCounters> =
                counters.get(channel).into_iter().flatten().filter_map(|d| d.day.map(|day| (day, d))).collect();
            let found = silent.iter().find(|s| s.channel == *channel);
            let step = silence_step(*channel, state.as_ref(), found, &days, now);
            if step.state.is_some() {
                steps.push((*channel, step));
            }
        }

        let mut summary = SilenceSummary {
            silent: silent.iter().map(|s| s.channel).collect(),
            raised: Vec::new(),
            recovered: Vec::new(),
            counter_queries: queries,
        };
        let events: Vec<DomainEvent> = steps.iter().flat_map(|(_, step)| step.events.clone()).collect();
        let failed_positions = self.publish_positions(&events).await;
        let mut position = 0;
        for (channel, step) in &steps {
            let range = position..position + step.events.len();
            position = range.end;
            // Not stored: the next run finds the same change and publishes it again.
            if failed_positions.iter().any(|p| range.contains(p)) {
                continue;
            }
            for event in &step.events {
                match event {
                    DomainEvent::ChannelSilent { silent_since, .. } => {
                        tracing::warn!(channel = channel.as_str(), %silent_since, "channel silent");
                        summary.raised.push(*channel);
                    }
                    DomainEvent::ChannelRecovered { silent_for_minutes, .. } => {
                        tracing::info!(channel = channel.as_str(), silent_for_minutes, "channel recovered");
                        summary.recovered.push(*channel);
                    }
                    _ => {}
                }
            }
            if let Some(state) = &step.state {
                self.stats.put_report(&state.to_stored(*channel)).await?;
            }
        }
        tracing::info!(
            silent = summary.silent.len(),
            raised = summary.raised.len(),
            recovered = summary.recovered.len(),
            counter_queries = queries,
            "silence watch done"
        );
        if !failed_positions.is_empty() {
            return Err(ReportFailure::Publish { failed: failed_positions.len(), total: events.len() });
        }
        Ok(summary)
    }

    /// Each source's day counters for every month `period` touches: one `Stats::month` per
    /// source and month, a few at a time. Returns them with the number of queries made.
    async fn counters(
        &self,
        sources: &[Source],
        period: Period,
    ) -> Result<(BTreeMap<Source, Vec<DayCounters>>, usize), StoreError> {
        let calls: Vec<(Source, NaiveDate)> =
            sources.iter().flat_map(|source| months_touched(period).into_iter().map(move |m| (*source, m))).collect();
        let results: Vec<(Source, Result<Vec<DayCounters>, StoreError>)> = futures::stream::iter(calls.iter())
            .map(|(source, month)| async move { (*source, self.stats.month(*source, *month).await) })
            .buffer_unordered(MAX_CONCURRENT_QUERIES)
            .collect()
            .await;
        let mut channels: BTreeMap<Source, Vec<DayCounters>> = BTreeMap::new();
        for (source, days) in results {
            channels.entry(source).or_default().extend(days?);
        }
        Ok((channels, calls.len()))
    }

    /// Publishes; returns how many events did not go out.
    async fn publish(&self, events: &[DomainEvent]) -> usize {
        self.publish_positions(events).await.len()
    }

    /// Publishes; returns the positions of the events that did not go out.
    async fn publish_positions(&self, events: &[DomainEvent]) -> Vec<usize> {
        if events.is_empty() {
            return Vec::new();
        }
        match self.events.publish(events).await {
            Ok(failed) => {
                if !failed.is_empty() {
                    tracing::warn!(failed = failed.len(), total = events.len(), "some events were not published");
                }
                failed
            }
            Err(PublishError::Unavailable(reason)) => {
                tracing::warn!(error = %reason, total = events.len(), "event bus unavailable");
                (0..events.len()).collect()
            }
        }
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The first day of every month `period` touches, in order.
pub fn months_touched(period: Period) -> Vec<NaiveDate> {
    let period = Period::new(period.from, period.to);
    let mut months = Vec::new();
    let mut month = period.from.with_day(1).unwrap_or(period.from);
    while month <= period.to {
        months.push(month);
        match month.checked_add_months(Months::new(1)) {
            Some(next) => month = next,
            None => break,
        }
    }
    months
}

/// Where a report's page is kept: `reports/<kind>/<period>.html`, the period's characters other
/// than `[A-Za-z0-9._-]` (a subset's `#` and `+`) written as `_`.
pub fn page_key(kind: ReportKind, period: &str) -> String {
    let period: String = period
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    format!("reports/{}/{period}.html", kind.as_str())
}

/// Whether a report is announced to its robots: the scheduled kinds (daily, monthly) over every
/// channel; a range or a chosen subset is an ops request, answered to its caller only.
pub fn announced(request: &ReportRequest) -> bool {
    matches!(request.kind, ReportKind::Daily | ReportKind::Monthly) && !request.subset
}

/// The announcement of a stored report: its verdicts, its breaches and its page's link.
pub fn ready_event(report: &HealthReport, period: &str, link: &PageLink) -> DomainEvent {
    DomainEvent::HealthReportReady {
        kind: report.kind,
        period: period.to_owned(),
        verdicts: verdicts(report)
            .into_iter()
            .map(|(scope, verdict)| {
                let name = serde_json::to_value(verdict).ok().and_then(|v| v.as_str().map(str::to_owned));
                (scope, name.unwrap_or_default())
            })
            .collect(),
        breaches: report
            .breaches()
            .into_iter()
            .map(|b| ReportBreach { indicator: b.indicator, channel: b.scope, value: b.value, threshold: b.threshold })
            .collect(),
        url: link.url.clone(),
        expires_at: link.expires_at,
    }
}

/// Each scope's indicator values (the ones with a value).
pub fn indicator_values(report: &HealthReport) -> BTreeMap<String, BTreeMap<Indicator, f64>> {
    std::iter::once(&report.overall)
        .chain(&report.channels)
        .map(|row| {
            let values = row.indicators.iter().filter_map(|v| v.value.map(|value| (v.indicator, value))).collect();
            (row.scope.as_str().to_owned(), values)
        })
        .collect()
}

/// One `HealthThresholdBreached` per breach, overall first.
pub fn breach_events(report: &HealthReport, period: &str) -> Vec<DomainEvent> {
    report
        .breaches()
        .into_iter()
        .map(|breach| DomainEvent::HealthThresholdBreached {
            indicator: breach.indicator,
            channel: breach.scope,
            value: breach.value,
            threshold: breach.threshold,
            period: period.to_owned(),
            kind: report.kind,
        })
        .collect()
}

/// The worst verdict of each scope's indicators: breached, else healthy, else insufficient
/// data, else no data.
pub fn verdicts(report: &HealthReport) -> BTreeMap<String, HealthVerdict> {
    std::iter::once(&report.overall)
        .chain(&report.channels)
        .map(|row| (row.scope.as_str().to_owned(), worst(row)))
        .collect()
}

fn worst(row: &ScopeHealth) -> HealthVerdict {
    let has = |verdict: HealthVerdict| row.indicators.iter().any(|value| value.verdict == verdict);
    [HealthVerdict::Breached, HealthVerdict::Healthy, HealthVerdict::InsufficientData]
        .into_iter()
        .find(|verdict| has(*verdict))
        .unwrap_or(HealthVerdict::NoData)
}
