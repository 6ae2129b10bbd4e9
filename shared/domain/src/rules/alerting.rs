//! Alerting policy, pure: which findings go to which robots, how severe each is, how bursts fold
//! into one message, when quiet hours hold a message until morning, when an unacknowledged
//! critical is escalated, how many messages a robot may take per minute, and how a message reads
//! (markdown, Chinese, no personal data). No I/O and no clock: callers pass `now`.
//!
//! The routing table is JSON configuration (kept in SSM by the notify function):
//!
//! ```json
//! {
//!   "routes": [
//!     {"events": ["SlaBreached", "OrdersMissing"], "robots": ["warehouse"]},
//!     {"events": ["CallbackMissing", "HealthThresholdBreached"], "channels": ["douyin"], "robots": ["finance"]},
//!     {"severities": ["critical"], "robots": ["tech"]},
//!     {"events": ["HealthReportReady"], "robots": ["reports"]}
//!   ],
//!   "escalation": {"warehouse": "ops-lead", "finance": "ops-lead", "tech": "ops-lead"},
//!   "severities": {"WebhookRejected": "info"},
//!   "fold_minutes": 10,
//!   "fold_show": 5,
//!   "quiet_hours": {"start": "22:00", "end": "08:00"},
//!   "escalate_after_minutes": 120,
//!   "robot_per_minute": 20
//! }
//! ```
//!
//! A route with no `events` matches every finding kind, with no `channels` every channel (and
//! findings without one), with no `severities` every severity. A finding goes to the union of the
//! robots of every route it matches. `"quiet_hours": null` turns quiet hours off.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::model::alert::{AlertMessage, Severity};
use crate::model::domain_event::DomainEvent;
use crate::model::health::Scope;
use crate::model::ids::Source;

/// Every finding kind notify routes, with the label people read. `routes[].events` and
/// `severities` may name only these.
pub const FINDING_KINDS: [(&str, &str); 13] = [
    ("SlaBreached", "履约超时"),
    ("ChannelSilent", "渠道静默"),
    ("ChannelRecovered", "渠道恢复"),
    ("CallbackMissing", "回调缺失"),
    ("TokenRefreshFailed", "令牌刷新失败"),
    ("HealthThresholdBreached", "健康指标越线"),
    ("UnmappedStatus", "未映射状态码"),
    ("WebhookRejected", "回调被拒"),
    ("OrdersMissing", "订单缺失"),
    ("TokenExpiring", "令牌即将过期"),
    ("AlarmStateChanged", "监控告警"),
    ("NotifyFailed", "通知失败"),
    ("HealthReportReady", "健康报告"),
];

/// The label people read for a finding kind (the kind itself when unknown).
pub fn kind_label(kind: &str) -> &str {
    FINDING_KINDS.iter().find(|(k, _)| *k == kind).map_or(kind, |(_, label)| label)
}

/// Messages a DingTalk or WeCom robot takes per minute (both document 20; sources in
/// `docs/notify-channels.md`).
pub const ROBOT_PER_MINUTE: u32 = 20;

/// Why a routing configuration was refused. The text names the field, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// Not the expected JSON.
    #[error("routing configuration is not valid JSON: {0}")]
    Json(String),
    /// A value is out of range or names something unknown.
    #[error("routing configuration is invalid: {0}")]
    Invalid(String),
}

/// Quiet hours, Beijing time: non-critical messages wait until `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuietHours {
    /// When quiet starts (`22:00`).
    #[serde(serialize_with = "hhmm")]
    pub start: NaiveTime,
    /// When the morning starts (`08:00`).
    #[serde(serialize_with = "hhmm")]
    pub end: NaiveTime,
}

fn hhmm<S: serde::Serializer>(time: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time.format("%H:%M").to_string())
}

impl<'de> Deserialize<'de> for QuietHours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            start: String,
            end: String,
        }
        let raw = Raw::deserialize(deserializer)?;
        let parse = |text: &str| {
            NaiveTime::parse_from_str(text.trim(), "%H:%M")
                .map_err(|_| serde::de::Error::custom("quiet_hours times are HH:MM, Beijing time"))
        };
        Ok(QuietHours { start: parse(&raw.start)?, end: parse(&raw.end)? })
    }
}

impl Default for QuietHours {
    fn default() -> Self {
        let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default();
        Self { start: at(22), end: at(8) }
    }
}

impl QuietHours {
    /// The quiet spell `now` falls in, as `[start, end)` in UTC, or `None` outside quiet hours.
    pub fn spell(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let local = now.with_timezone(&Shanghai);
        let today = local.date_naive();
        let time = local.time();
        let at = |day: chrono::NaiveDate, t: NaiveTime| {
            Shanghai.from_local_datetime(&day.and_time(t)).earliest().map(|l| l.with_timezone(&Utc))
        };
        let (start_day, end_day) = if self.start < self.end {
            if time < self.start || time >= self.end {
                return None;
            }
            (today, today)
        } else if self.start > self.end {
            if time >= self.start {
                (today, today.succ_opt()?)
            } else if time < self.end {
                (today.pred_opt()?, today)
            } else {
                return None;
            }
        } else {
            return None;
        };
        Some((at(start_day, self.start)?, at(end_day, self.end)?))
    }
}

/// One routing rule: findings matching every given filter go to `robots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Robot names (their webhooks and keys are secrets, one parameter each).
    pub robots: Vec<String>,
    /// Finding kinds (detail-types); empty = all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Channels; empty = any, and findings without a channel.
    #[serde(default)]
    pub channels: Vec<Source>,
    /// Severities; empty = all.
    #[serde(default)]
    pub severities: Vec<Severity>,
}

fn default_fold_minutes() -> i64 {
    10
}
fn default_fold_show() -> usize {
    5
}
fn default_quiet() -> Option<QuietHours> {
    Some(QuietHours::default())
}
fn default_escalate() -> i64 {
    120
}
fn default_per_minute() -> u32 {
    ROBOT_PER_MINUTE
}

/// The routing table and the alerting policy's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The rules, in order.
    pub routes: Vec<Route>,
    /// Severity overrides per finding kind.
    #[serde(default)]
    pub severities: BTreeMap<String, Severity>,
    /// The next group per robot: an unacknowledged critical moves there after
    /// `escalate_after_minutes`.
    #[serde(default)]
    pub escalation: BTreeMap<String, String>,
    /// The fold window, minutes (1–60; default 10).
    #[serde(default = "default_fold_minutes")]
    pub fold_minutes: i64,
    /// How many findings a folded message lists (1–20; default 5).
    #[serde(default = "default_fold_show")]
    pub fold_show: usize,
    /// Quiet hours (default 22:00–08:00 Beijing; `null` for none).
    #[serde(default = "default_quiet")]
    pub quiet_hours: Option<QuietHours>,
    /// Minutes before an unacknowledged critical is escalated (default 120, the articles' rule).
    #[serde(default = "default_escalate")]
    pub escalate_after_minutes: i64,
    /// Messages per robot per minute (1–20; default 20).
    #[serde(default = "default_per_minute")]
    pub robot_per_minute: u32,
}

/// Whether a robot name is safe in parameter names and keys: `[a-z0-9_-]{1,32}`.
pub fn valid_robot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl RoutingConfig {
    /// Parses and checks a routing configuration.
    pub fn from_json(text: &str) -> Result<Self, RoutingError> {
        let config: RoutingConfig = serde_json::from_str(text)
            .map_err(|e| RoutingError::Json(format!("{} (line {} column {})", classify(&e), e.line(), e.column())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), RoutingError> {
        let invalid = |what: String| Err(RoutingError::Invalid(what));
        let known = |kind: &str| FINDING_KINDS.iter().any(|(k, _)| *k == kind);
        for (i, route) in self.routes.iter().enumerate() {
            if route.robots.is_empty() {
                return invalid(format!("routes[{i}] names no robot"));
            }
            if let Some(bad) = route.robots.iter().find(|r| !valid_robot_name(r)) {
                return invalid(format!("routes[{i}] robot name `{}` is not [a-z0-9_-]{{1,32}}", cut(bad, 40)));
            }
            if let Some(bad) = route.events.iter().find(|e| !known(e)) {
                return invalid(format!("routes[{i}] event `{}` is not a finding kind", cut(bad, 40)));
            }
        }
        if let Some(bad) = self.severities.keys().find(|e| !known(e)) {
            return invalid(format!("severities: `{}` is not a finding kind", cut(bad, 40)));
        }
        for (from, to) in &self.escalation {
            if !valid_robot_name(from) || !valid_robot_name(to) {
                return invalid("escalation names a robot that is not [a-z0-9_-]{1,32}".into());
            }
        }
        if !(1..=60).contains(&self.fold_minutes) {
            return invalid("fold_minutes must be 1–60".into());
        }
        if !(1..=20).contains(&self.fold_show) {
            return invalid("fold_show must be 1–20".into());
        }
        if !(1..=ROBOT_PER_MINUTE).contains(&self.robot_per_minute) {
            return invalid(format!("robot_per_minute must be 1–{ROBOT_PER_MINUTE}"));
        }
        if !(1..=7 * 24 * 60).contains(&self.escalate_after_minutes) {
            return invalid("escalate_after_minutes must be 1–10080".into());
        }
        Ok(())
    }

    /// The finding's severity: the configured override for its kind, else its own.
    pub fn severity(&self, finding: &Finding) -> Severity {
        self.severities.get(finding.kind).copied().unwrap_or(finding.severity)
    }

    /// The robots a finding of `severity` goes to, each once, in route order.
    pub fn robots_for(&self, finding: &Finding, severity: Severity) -> Vec<String> {
        let mut robots: Vec<String> = Vec::new();
        for route in &self.routes {
            let kind_ok = route.events.is_empty() || route.events.iter().any(|e| e == finding.kind);
            let channel_ok = route.channels.is_empty() || finding.channel.is_some_and(|c| route.channels.contains(&c));
            let severity_ok = route.severities.is_empty() || route.severities.contains(&severity);
            if kind_ok && channel_ok && severity_ok {
                for robot in &route.robots {
                    if !robots.contains(robot) {
                        robots.push(robot.clone());
                    }
                }
            }
        }
        robots
    }

    /// The group an unacknowledged critical at `robot` moves to.
    pub fn next_group(&self, robot: &str) -> Option<&str> {
        self.escalation.get(robot).map(String::as_str).filter(|next| *next != robot)
    }

    /// How long a critical waits for an acknowledgement.
    pub fn escalate_after(&self) -> Duration {
        Duration::minutes(self.escalate_after_minutes)
    }

    /// The robots' rate budget.
    pub fn budget(&self) -> RateBudget {
        RateBudget { per_window: self.robot_per_minute, window: RateBudget::WINDOW }
    }

    /// Where a finding of `severity` at `now` is collected: the fold window it opens or joins,
    /// or, outside criticals, the quiet spell (released when the morning starts).
    pub fn window(&self, severity: Severity, now: DateTime<Utc>) -> Window {
        if severity != Severity::Critical
            && let Some((start, end)) = self.quiet_hours.and_then(|q| q.spell(now))
        {
            return Window { start, end, held: true };
        }
        let (start, end) = fold_window(now, self.fold_minutes);
        Window { start, end, held: false }
    }

    /// When a non-critical message produced at `now` may go out: `None` now, else the morning.
    pub fn hold_until(&self, severity: Severity, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if severity == Severity::Critical {
            return None;
        }
        self.quiet_hours.and_then(|q| q.spell(now)).map(|(_, end)| end)
    }
}

/// serde's error category, without quoting the input (it may hold a secret).
fn classify(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "syntax error",
        serde_json::error::Category::Data => "unexpected field or value",
        serde_json::error::Category::Io => "unreadable",
    }
}

/// A fold window (or a quiet spell): findings of one kind for one robot in it become one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive): the folded message goes out after it.
    pub end: DateTime<Utc>,
    /// A quiet spell: nothing of it is sent before the end.
    pub held: bool,
}

/// The fold window of `minutes` containing `now`, aligned to the epoch (so every instance of the
/// function agrees on it without talking).
pub fn fold_window(now: DateTime<Utc>, minutes: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let size = minutes.max(1) * 60;
    let start = now.timestamp().div_euclid(size) * size;
    let start = Utc.timestamp_opt(start, 0).single().unwrap_or(now);
    (start, start + Duration::seconds(size))
}

/// A robot's rate budget: at most `per_window` messages in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    /// Messages allowed in a window.
    pub per_window: u32,
    /// The sliding window.
    pub window: Duration,
}

impl RateBudget {
    /// A minute plus two seconds: our clock and the robot's are not the same clock, and a message
    /// takes time to arrive.
    pub const WINDOW: Duration = Duration::seconds(62);
}

/// When a robot's last messages went out: enough to keep every sliding window within budget.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendLog {
    /// Send times, oldest first; only those that can still count are kept.
    pub sent: Vec<DateTime<Utc>>,
}

impl SendLog {
    /// `None` when a message may go at `now`; else the earliest time one may.
    pub fn next_free(&self, budget: RateBudget, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let recent: Vec<&DateTime<Utc>> = self.sent.iter().filter(|t| **t > now - budget.window).collect();
        let limit = budget.per_window.max(1) as usize;
        if recent.len() < limit {
            return None;
        }
        // The one whose expiry makes room for one more.
        recent.get(recent.len() - limit).map(|t| **t + budget.window)
    }

    /// Records a send at `now`, forgetting what no window can count any more.
    pub fn record(&mut self, budget: RateBudget, now: DateTime<Utc>) {
        self.sent.retain(|t| *t > now - budget.window);
        self.sent.push(now);
        self.sent.sort();
        let limit = budget.per_window.max(1) as usize;
        if self.sent.len() > limit {
            let drop = self.sent.len() - limit;
            self.sent.drain(..drop);
        }
    }
}

/// How long before trying a robot message again after `attempts` failed attempts: at least what
/// the robot asked for, doubling from one minute, at most 30 minutes.
pub fn retry_delay(attempts: u32, asked: Option<Duration>) -> Duration {
    let doubling = Duration::minutes(1 << attempts.saturating_sub(1).min(5)).min(Duration::minutes(30));
    asked.map_or(doubling, |asked| asked.max(doubling))
}

/// What a finding says, ready to route and render: no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The kind (detail-type).
    pub kind: &'static str,
    /// Its own severity (before configuration overrides).
    pub severity: Severity,
    /// The channel it is about, if one.
    pub channel: Option<Source>,
    /// What it is about, for lists: an order (`douyin/shop-1/6921`), a shop, a channel, an alarm.
    pub subject: String,
    /// One line of detail, Chinese.
    pub line: String,
}

impl Finding {
    /// Findings of one kind and severity fold together.
    pub fn fold_key(&self, severity: Severity) -> String {
        format!("{}.{}", self.kind, severity.as_str())
    }
}

/// The default severity of a finding kind.
pub fn default_severity(kind: &str) -> Severity {
    match kind {
        "ChannelSilent" | "TokenRefreshFailed" | "OrdersMissing" => Severity::Critical,
        "ChannelRecovered" | "HealthReportReady" => Severity::Info,
        _ => Severity::Warning,
    }
}

fn channel_label(source: Source) -> String {
    Scope::Channel(source).label()
}

/// `03-02 10:20`, Beijing time.
pub fn beijing(at: DateTime<Utc>) -> String {
    at.with_timezone(&Shanghai).format("%m-%d %H:%M").to_string()
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Free text from outside (a reason, an alarm's text) made safe for a markdown line: no line
/// breaks or markup characters, any run of 7 or more digits masked (a phone number can hide in
/// a provider's or a platform's message), at most 120 characters.
pub fn scrub(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 7 {
            out.push_str(&run[..3]);
            out.push_str("****");
            out.push_str(&run[run.len() - 4..]);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        flush(&mut run, &mut out);
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '#' | '`' | '*' | '<' | '>' | '[' | ']' | '|' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    flush(&mut run, &mut out);
    cut(out.trim(), 120)
}

/// The finding an event is, or `None` for events that are not findings (order state changes,
/// stock, trust assessments: other consumers' business).
pub fn describe(event: &DomainEvent) -> Option<Finding> {
    let kind = event.detail_type();
    let finding = |channel: Option<Source>, subject: String, line: String| Finding {
        kind: FINDING_KINDS.iter().find(|(k, _)| *k == kind).map_or("NotifyFailed", |(k, _)| k),
        severity: default_severity(kind),
        channel,
        subject,
        line,
    };
    let found = match event {
        DomainEvent::SlaBreached { key, state, since, limit_minutes } => finding(
            Some(key.source),
            key.to_string(),
            format!("{key} 停留在 {state} 超过 {limit_minutes} 分钟（自 {}）", beijing(*since)),
        ),
        DomainEvent::ChannelSilent { channel, silent_since, expected_per_slot } => finding(
            Some(*channel),
            channel_label(*channel),
            format!(
                "{} 自 {} 起未收到回调（该时段通常每 10 分钟约 {expected_per_slot:.1} 条）",
                channel_label(*channel),
                beijing(*silent_since)
            ),
        ),
        DomainEvent::ChannelRecovered { channel, silent_for_minutes } => finding(
            Some(*channel),
            channel_label(*channel),
            format!("{} 恢复接收回调，此前静默约 {silent_for_minutes} 分钟", channel_label(*channel)),
        ),
        DomainEvent::CallbackMissing { key, hint } => {
            finding(Some(key.source), key.to_string(), format!("{key} 平台已确认退款但未收到回调：{}", scrub(hint)))
        }
        DomainEvent::TokenRefreshFailed { source, shop, reason } => finding(
            Some(*source),
            format!("{source}/{}", scrub(shop)),
            format!("{} 店铺 {} 访问令牌刷新失败：{}", channel_label(*source), scrub(shop), scrub(reason)),
        ),
        DomainEvent::HealthThresholdBreached { indicator, channel, value, threshold, period, kind: report } => {
            let source = match channel {
                Scope::Channel(source) => Some(*source),
                Scope::Overall => None,
            };
            finding(
                source,
                channel.label(),
                format!(
                    "{} {} {}，未达标（阈值 {}），{} {}",
                    channel.label(),
                    indicator.label(),
                    indicator.format_value(*value),
                    indicator.format_threshold(*threshold),
                    scrub(period),
                    report.label()
                ),
            )
        }
        DomainEvent::UnmappedStatus { key, raw, .. } => finding(
            Some(key.source),
            key.to_string(),
            format!("{key} 状态码 {} 无映射，请补充映射行", scrub(&raw.to_string())),
        ),
        DomainEvent::WebhookRejected { source, shop, rejection, reason, at } => {
            let shop = shop.as_deref().map_or_else(|| "未知店铺".to_owned(), scrub);
            finding(
                Some(*source),
                format!("{source}/{shop}"),
                format!(
                    "{} 店铺 {shop} 回调被拒（{}）：{}，{}",
                    channel_label(*source),
                    rejection.as_str(),
                    scrub(reason),
                    beijing(*at)
                ),
            )
        }
        DomainEvent::OrdersMissing { source, shop, day, missing, platform_count, hub_count, .. } => finding(
            Some(*source),
            format!("{source}/{}", scrub(shop)),
            format!(
                "{} 店铺 {} {day} 缺 {missing} 单（平台 {platform_count} 单 / 系统 {hub_count} 单），已补拉",
                channel_label(*source),
                scrub(shop)
            ),
        ),
        DomainEvent::TokenExpiring { source, shop, token, expires_at } => finding(
            Some(*source),
            format!("{source}/{}", scrub(shop)),
            format!(
                "{} 店铺 {} 的 {} 将于 {} 过期，请及时重新授权",
                channel_label(*source),
                scrub(shop),
                scrub(token),
                beijing(*expires_at)
            ),
        ),
        DomainEvent::AlarmStateChanged { alarm, state, previous, reason, .. } => {
            let mut found = finding(
                None,
                scrub(alarm),
                format!(
                    "{} {} → {}：{}",
                    scrub(alarm),
                    previous.as_deref().map_or_else(|| "-".to_owned(), scrub),
                    scrub(state),
                    scrub(reason)
                ),
            );
            found.severity = match state.as_str() {
                "ALARM" => Severity::Critical,
                "OK" => Severity::Info,
                _ => Severity::Warning,
            };
            found
        }
        DomainEvent::HealthReportReady { kind: report, period, verdicts, breaches, url, expires_at } => finding(
            None,
            format!("{} {}", report.label(), scrub(period)),
            report_summary(*report, period, verdicts, breaches, url, *expires_at),
        ),
        DomainEvent::NotifyFailed { stage, target, code, reason, .. } => finding(
            None,
            format!("{}/{}", scrub(stage), scrub(target)),
            format!("{} {} 发送失败（{}）：{}", scrub(stage), scrub(target), scrub(code), scrub(reason)),
        ),
        _ => return None,
    };
    Some(found)
}

/// Breaches a report's summary lists; the page has them all.
pub const REPORT_BREACHES_SHOWN: usize = 5;

/// The short summary a report's robots get: the verdict per scope, the breaches (the first
/// few), and the link to the full page with when it stops working.
fn report_summary(
    kind: crate::model::health::ReportKind,
    period: &str,
    verdicts: &BTreeMap<String, String>,
    breaches: &[crate::model::health::ReportBreach],
    url: &str,
    expires_at: DateTime<Utc>,
) -> String {
    let mark = |verdict: &str| match verdict {
        "healthy" => "✅",
        "breached" => "❌",
        "insufficient_data" => "样本不足",
        _ => "无数据",
    };
    let label = |scope: &str| scope.parse::<Scope>().map_or_else(|_| scrub(scope), Scope::label);
    // Overall first, then the channels.
    let scopes: Vec<String> = verdicts
        .get("overall")
        .map(|verdict| format!("{} {}", label("overall"), mark(verdict)))
        .into_iter()
        .chain(
            verdicts
                .iter()
                .filter(|(scope, _)| *scope != "overall")
                .map(|(scope, verdict)| format!("{} {}", label(scope), mark(verdict))),
        )
        .collect();
    let mut text = format!("订单健康度{} {}：{}", kind.label(), scrub(period), scopes.join(" · "));
    if breaches.is_empty() {
        text.push_str("\n\n未达标：无");
    } else {
        text.push_str(&format!("\n\n未达标 {} 项：", breaches.len()));
        let shown: Vec<String> = breaches
            .iter()
            .take(REPORT_BREACHES_SHOWN)
            .map(|b| {
                format!(
                    "{} {} {}（阈值 {}）",
                    b.channel.label(),
                    b.indicator.label(),
                    b.indicator.format_value(b.value),
                    b.indicator.format_threshold(b.threshold)
                )
            })
            .collect();
        text.push_str(&shown.join("；"));
        if breaches.len() > REPORT_BREACHES_SHOWN {
            text.push_str(&format!("；…另有 {} 项见完整报告", breaches.len() - REPORT_BREACHES_SHOWN));
        }
    }
    match safe_link(url) {
        Some(url) => text.push_str(&format!("\n\n[查看完整报告]({url})（链接 {} 前有效）", beijing(expires_at))),
        None => text.push_str("\n\n完整报告链接不可用，请用 health-report 的 ops 事件重新生成"),
    }
    text
}

/// A link safe inside a markdown `(…)`: http(s), no whitespace, quote, bracket or parenthesis
/// (a presigned S3 URL percent-encodes all of them).
fn safe_link(url: &str) -> Option<&str> {
    let scheme = url.starts_with("https://") || url.starts_with("http://");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control() || "()[]<>\"'`".contains(c));
    (scheme && clean && url.len() <= 4096).then_some(url)
}

/// A short stable id: `prefix-` and 16 hex of SHA-256 over the parts.
pub fn short_id(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

fn heading(severity: Severity, kind: &str) -> String {
    format!("【{}】{}", severity.label(), kind_label(kind))
}

fn ack_line(ack_id: Option<&str>) -> String {
    ack_id.map_or_else(String::new, |id| format!("\n\n> 处理后请确认：`{{\"ack\":{{\"id\":\"{id}\"}}}}`（{id}）"))
}

/// The message for one finding sent as it arrives.
pub fn render_one(finding: &Finding, severity: Severity, ack_id: Option<&str>, now: DateTime<Utc>) -> AlertMessage {
    let title = heading(severity, finding.kind);
    let markdown =
        format!("#### {title}\n\n{}\n\n- 时间：{}（北京时间）{}", finding.line, beijing(now), ack_line(ack_id));
    AlertMessage { title, markdown, severity, ack_id: ack_id.map(str::to_owned), kind: finding.kind.to_owned() }
}

/// A closed fold, as the message renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldSummary<'a> {
    /// The finding kind.
    pub kind: &'a str,
    /// Its severity.
    pub severity: Severity,
    /// The window it covered.
    pub window: Window,
    /// Findings in it not sent on their own.
    pub count: u64,
    /// Whether the first finding of the window was sent on its own.
    pub first_sent: bool,
    /// The first few findings' lines.
    pub lines: &'a [String],
}

/// The message for a fold: the count and the first few findings.
pub fn render_fold(fold: &FoldSummary<'_>, ack_id: Option<&str>) -> AlertMessage {
    let title = format!("{} ×{}", heading(fold.severity, fold.kind), fold.count);
    let span = format!("{}–{}", beijing(fold.window.start), beijing(fold.window.end));
    let lead = match (fold.window.held, fold.first_sent) {
        (true, _) => format!("夜间免打扰时段（{span}）共 {} 条，现汇总发送：", fold.count),
        (false, true) => format!("{span} 又有 {} 条（首条已单独发送）：", fold.count),
        (false, false) => format!("{span} 共 {} 条：", fold.count),
    };
    let mut markdown = format!("#### {title}\n\n{lead}\n");
    for line in fold.lines {
        markdown.push_str(&format!("\n- {line}"));
    }
    let listed = fold.lines.len() as u64;
    if fold.count > listed {
        markdown.push_str(&format!("\n- …另有 {} 条未列出", fold.count - listed));
    }
    markdown.push_str(&ack_line(ack_id));
    AlertMessage {
        title,
        markdown,
        severity: fold.severity,
        ack_id: ack_id.map(str::to_owned),
        kind: fold.kind.to_owned(),
    }
}

/// One critical nobody acknowledged, as the escalation message lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unacknowledged {
    /// The id to acknowledge it with.
    pub ack_id: String,
    /// Its title as first sent.
    pub title: String,
    /// The group that got it first.
    pub robot: String,
    /// When it was first sent.
    pub since: DateTime<Utc>,
}

/// The escalation message to the next group: what nobody acknowledged, with the ids to do so.
pub fn render_escalation(items: &[Unacknowledged], waited: Duration, show: usize) -> AlertMessage {
    let hours = waited.num_minutes() as f64 / 60.0;
    let title = format!("【升级】{} 条严重告警 {hours:.0} 小时无人确认", items.len());
    let mut markdown = format!("#### {title}\n");
    for item in items.iter().take(show) {
        markdown.push_str(&format!(
            "\n- {}（{} 发往 {}）确认：`{{\"ack\":{{\"id\":\"{}\"}}}}`",
            item.title,
            beijing(item.since),
            item.robot,
            item.ack_id
        ));
    }
    if items.len() > show {
        markdown.push_str(&format!("\n- …另有 {} 条未列出", items.len() - show));
    }
    AlertMessage {
        title,
        markdown,
        severity: Severity::Critical,
        ack_id: items.first().filter(|_| items.len() == 1).map(|i| i.ack_id.clone()),
        kind: "Escalation".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::health::{Indicator, ReportKind};
    use crate::model::ids::OrderKey;
    use crate::model::lifecycle::Lifecycle;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap_or_default()
    }

    fn config(json: &str) -> RoutingConfig {
        RoutingConfig::from_json(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sla(order: &str) -> DomainEvent {
        let key = OrderKey::parse(Source::Douyin, "shop-1", order).unwrap_or_else(|e| panic!("{e}"));
        DomainEvent::SlaBreached { key, state: Lifecycle::Paid, since: utc(2026, 3, 2, 1, 0), limit_minutes: 30 }
    }

    const TABLE: &str = r#"{
        "routes": [
            {"events": ["SlaBreached", "OrdersMissing"], "robots": ["warehouse"]},
            {"events": ["HealthThresholdBreached"], "channels": ["douyin"], "robots": ["finance"]},
            {"severities": ["critical"], "robots": ["tech", "warehouse"]}
        ],
        "escalation": {"warehouse": "ops-lead"},
        "severities": {"UnmappedStatus": "info"}
    }"#;

    #[test]
    fn routes_match_kind_channel_and_severity_and_defaults_apply() {
        let table = config(TABLE);
        assert_eq!(table.fold_minutes, 10);
        assert_eq!(table.quiet_hours, Some(QuietHours::default()));
        let breach = describe(&sla("6921")).unwrap_or_else(|| panic!("a finding"));
        assert_eq!(table.robots_for(&breach, table.severity(&breach)), ["warehouse"]);
        let silent = describe(&DomainEvent::ChannelSilent {
            channel: Source::Pdd,
            silent_since: utc(2026, 3, 2, 1, 0),
            expected_per_slot: 12.0,
        })
        .unwrap_or_else(|| panic!("a finding"));
        assert_eq!(table.severity(&silent), Severity::Critical);
        assert_eq!(table.robots_for(&silent, Severity::Critical), ["tech", "warehouse"], "each robot once");
        let health = |channel| {
            describe(&DomainEvent::HealthThresholdBreached {
                indicator: Indicator::OnTimeShipping,
                channel,
                value: 0.9,
                threshold: 0.985,
                period: "2026-03-01".into(),
                kind: ReportKind::Daily,
            })
            .unwrap_or_else(|| panic!("a finding"))
        };
        assert_eq!(table.robots_for(&health(Scope::Channel(Source::Douyin)), Severity::Warning), ["finance"]);
        assert!(table.robots_for(&health(Scope::Channel(Source::Jd)), Severity::Warning).is_empty());
        assert!(table.robots_for(&health(Scope::Overall), Severity::Warning).is_empty(), "no channel, no match");
        assert_eq!(table.next_group("warehouse"), Some("ops-lead"));
        assert_eq!(table.next_group("tech"), None);
    }

    #[test]
    fn bad_configurations_say_what_is_wrong_without_quoting_secrets() {
        for (json, says) in [
            (r#"{"routes": [{"robots": []}]}"#, "names no robot"),
            (r#"{"routes": [{"robots": ["Bad Name"]}]}"#, "robot name"),
            (r#"{"routes": [{"robots": ["a"], "events": ["OrderStatusChanged"]}]}"#, "not a finding kind"),
            (r#"{"routes": [], "fold_minutes": 0}"#, "fold_minutes"),
            (r#"{"routes": [], "robot_per_minute": 21}"#, "robot_per_minute"),
            (r#"{"routes": [], "webhook": "https://oapi.dingtalk.com/robot/send?access_token=SECRET"}"#, "unexpected"),
            (r#"{"routes": [], "quiet_hours": {"start": "25:00", "end": "08:00"}}"#, "unexpected"),
            ("{not json", "syntax"),
        ] {
            let error = RoutingConfig::from_json(json).err().unwrap_or_else(|| panic!("{json} must be refused"));
            let text = error.to_string();
            assert!(text.contains(says), "{json}: {text}");
            assert!(!text.contains("SECRET"), "{text}");
        }
        assert_eq!(config(r#"{"routes": [], "quiet_hours": null}"#).quiet_hours, None);
    }

    #[test]
    fn quiet_hours_hold_non_criticals_until_the_beijing_morning() {
        let table = config(r#"{"routes": []}"#);
        // 23:30 Beijing = 15:30 UTC; the morning is 08:00 Beijing = 00:00 UTC next day.
        let night = utc(2026, 3, 2, 15, 30);
        assert_eq!(table.hold_until(Severity::Warning, night), Some(utc(2026, 3, 3, 0, 0)));
        assert_eq!(table.hold_until(Severity::Critical, night), None, "criticals are never held");
        // 07:59 Beijing the next day is still the same spell.
        let window = table.window(Severity::Info, utc(2026, 3, 2, 23, 59));
        assert!(window.held);
        assert_eq!((window.start, window.end), (utc(2026, 3, 2, 14, 0), utc(2026, 3, 3, 0, 0)));
        // 08:00 Beijing: day time.
        assert_eq!(table.hold_until(Severity::Warning, utc(2026, 3, 3, 0, 0)), None);
        assert!(!table.window(Severity::Warning, utc(2026, 3, 3, 0, 0)).held);
        // Same-day quiet (a lunch break) works too.
        let lunch = QuietHours {
            start: NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(13, 0, 0).unwrap_or_default(),
        };
        assert_eq!(lunch.spell(utc(2026, 3, 2, 4, 30)), Some((utc(2026, 3, 2, 4, 0), utc(2026, 3, 2, 5, 0))));
        assert_eq!(lunch.spell(utc(2026, 3, 2, 5, 0)), None);
    }

    #[test]
    fn fold_windows_are_aligned_so_every_instance_agrees() {
        let (start, end) = fold_window(utc(2026, 3, 2, 2, 7), 10);
        assert_eq!((start, end), (utc(2026, 3, 2, 2, 0), utc(2026, 3, 2, 2, 10)));
        let (again, _) = fold_window(utc(2026, 3, 2, 2, 9) + Duration::seconds(59), 10);
        assert_eq!(again, start);
    }

    #[test]
    fn the_send_log_keeps_every_sliding_window_within_budget() {
        let budget = RateBudget { per_window: 20, window: RateBudget::WINDOW };
        let mut log = SendLog::default();
        let start = utc(2026, 3, 2, 2, 0);
        let mut sent = Vec::new();
        let mut now = start;
        // Try to send every 500 ms for five minutes; send only when the log says so.
        while now < start + Duration::minutes(5) {
            if log.next_free(budget, now).is_none() {
                log.record(budget, now);
                sent.push(now);
            }
            now += Duration::milliseconds(500);
        }
        for (i, at) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().filter(|t| **t < *at + Duration::seconds(60)).count();
            assert!(in_window <= 20, "{in_window} messages in the minute from {at}");
        }
        assert_eq!(sent.iter().filter(|t| **t < start + Duration::seconds(1)).count(), 2, "a burst goes at once");
        assert!(sent.len() >= 20 * 4, "and the budget is used: {}", sent.len());
        assert!(log.sent.len() <= 20, "the log stays small");
        let full = SendLog { sent: vec![start; 20] };
        assert_eq!(full.next_free(budget, start), Some(start + RateBudget::WINDOW));
    }

    #[test]
    fn retries_back_off_and_respect_what_the_robot_asked() {
        assert_eq!(retry_delay(1, None), Duration::minutes(1));
        assert_eq!(retry_delay(3, None), Duration::minutes(4));
        assert_eq!(retry_delay(30, None), Duration::minutes(30));
        assert_eq!(retry_delay(1, Some(Duration::minutes(10))), Duration::minutes(10));
    }

    #[test]
    fn messages_read_in_chinese_and_carry_no_personal_data() {
        let breach = describe(&sla("6921000000000000001")).unwrap_or_else(|| panic!("a finding"));
        let one = render_one(&breach, Severity::Critical, Some("ev-1"), utc(2026, 3, 2, 2, 0));
        assert_eq!(one.title, "【严重】履约超时");
        assert!(
            one.markdown.contains("douyin/shop-1/6921000000000000001 停留在 Paid 超过 30 分钟"),
            "{}",
            one.markdown
        );
        assert!(one.markdown.contains("03-02 10:00（北京时间）"), "{}", one.markdown);
        assert!(one.markdown.contains(r#"{"ack":{"id":"ev-1"}}"#));
        let rejected = describe(&DomainEvent::WebhookRejected {
            source: Source::Youzan,
            shop: Some("shop-1".into()),
            rejection: crate::model::callback::Rejection::Unverified,
            reason: "sign mismatch for buyer 13812345678\n# injected".into(),
            at: utc(2026, 3, 2, 2, 0),
        })
        .unwrap_or_else(|| panic!("a finding"));
        assert!(!rejected.line.contains("13812345678") && rejected.line.contains("138****5678"), "{}", rejected.line);
        assert!(!rejected.line.contains('\n') && !rejected.line.contains('#'));
        let lines = vec!["a".to_owned(), "b".to_owned()];
        let window = Window { start: utc(2026, 3, 2, 2, 0), end: utc(2026, 3, 2, 2, 10), held: false };
        let fold = render_fold(
            &FoldSummary {
                kind: "SlaBreached",
                severity: Severity::Warning,
                window,
                count: 36,
                first_sent: true,
                lines: &lines,
            },
            None,
        );
        assert_eq!(fold.title, "【警告】履约超时 ×36");
        assert!(fold.markdown.contains("又有 36 条（首条已单独发送）"), "{}", fold.markdown);
        assert!(fold.markdown.contains("另有 34 条未列出"), "{}", fold.markdown);
        assert!(
            describe(&DomainEvent::RefundConfirmed {
                key: OrderKey::parse(Source::Douyin, "s", "o").unwrap_or_else(|e| panic!("{e}")),
                provenance: crate::model::order::Provenance::Callback,
                event_time: utc(2026, 3, 2, 2, 0),
            })
            .is_none()
        );
    }

    #[test]
    fn alarms_are_critical_when_firing_and_info_when_clear() {
        let alarm = |state: &str| {
            describe(&DomainEvent::AlarmStateChanged {
                alarm: "orderhub-InboundDLQ-depth".into(),
                state: state.into(),
                previous: Some("OK".into()),
                reason: "Threshold Crossed".into(),
                at: "2026-03-02T02:00:00.000+0000".into(),
            })
            .map(|f| f.severity)
        };
        assert_eq!(alarm("ALARM"), Some(Severity::Critical));
        assert_eq!(alarm("OK"), Some(Severity::Info));
        assert_eq!(alarm("INSUFFICIENT_DATA"), Some(Severity::Warning));
    }

    #[test]
    fn a_report_reads_as_verdicts_breaches_and_a_link_and_routes_like_any_finding() {
        use crate::model::health::ReportBreach;
        let ready = |url: &str, breaches: usize| DomainEvent::HealthReportReady {
            kind: ReportKind::Daily,
            period: "2026-11-11".into(),
            verdicts: BTreeMap::from([
                ("overall".to_owned(), "breached".to_owned()),
                ("douyin".to_owned(), "healthy".to_owned()),
                ("pdd".to_owned(), "no_data".to_owned()),
            ]),
            breaches: (0..breaches)
                .map(|_| ReportBreach {
                    indicator: Indicator::TrustScore,
                    channel: Scope::Overall,
                    value: 80.0,
                    threshold: 92.0,
                })
                .collect(),
            url: url.into(),
            expires_at: utc(2026, 11, 18, 18, 0),
        };
        let url = "https://orderhub-reports.s3.cn-north-1.amazonaws.com.cn/reports/daily/2026-11-11.html?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261111T180000Z&X-Amz-Signature=abc123";
        let finding = describe(&ready(url, 7)).unwrap_or_else(|| panic!("a finding"));
        assert_eq!((finding.kind, finding.severity, finding.channel), ("HealthReportReady", Severity::Info, None));
        let line = &finding.line;
        assert!(
            line.starts_with("订单健康度日报 2026-11-11：全部渠道 ❌ · 抖店 douyin ✅ · 拼多多 pdd 无数据"),
            "{line}"
        );
        assert!(line.contains("未达标 7 项：全部渠道 物流信息可信度分 80.0 分（阈值 ≥ 92.0 分）"), "{line}");
        assert!(line.contains("…另有 2 项见完整报告"), "{line}");
        // The link whole (digits not masked), and when it stops working, Beijing time.
        assert!(line.contains(&format!("[查看完整报告]({url})（链接 11-19 02:00 前有效）")), "{line}");
        let message = render_one(&finding, Severity::Info, None, utc(2026, 11, 12, 0, 0));
        assert!(
            message.markdown.contains("【提示】健康报告") || message.title.contains("健康报告"),
            "{}",
            message.title
        );
        // A link that could break out of the markdown is not shown.
        let odd = describe(&ready("https://x.example/a) [click](https://evil.example", 0)).map(|f| f.line);
        let odd = odd.unwrap_or_default();
        assert!(!odd.contains("evil") && odd.contains("未达标：无") && odd.contains("链接不可用"), "{odd}");
        // Routed by configuration like every finding kind.
        let routing = config(r#"{"routes": [{"events": ["HealthReportReady"], "robots": ["reports"]}]}"#);
        assert_eq!(routing.robots_for(&finding, routing.severity(&finding)), ["reports"]);
    }
}
