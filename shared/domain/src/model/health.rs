//! The vocabulary of the order-health report — which indicator, which kind of report, which
//! channel — shared by the report (`rules::health`) and the events that announce its breaches.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::ids::Source;

/// The five order-health indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// 状态同步延迟中位数: median of source event time → applied, in minutes, estimated from the
    /// `sync_delay_le_*` / `sync_delay_gt_86400` histogram (see [`median_sync_delay_s`]).
    SyncDelayMedian,
    /// 发货准时率: `shipped_on_time / (shipped_on_time + shipped_late)`; shipments without a
    /// promised time are not counted. A fraction in 0..=1.
    OnTimeShipping,
    /// 物流信息可信度分: mean sign trust score, `trust_score_sum / trust_assessed`, 0..=100.
    TrustScore,
    /// 退款库存释放及时率: `stock_released_on_time / max(stock_release_due, stock_released)`,
    /// counted in reserved stock lines. A fraction in 0..=1.
    RefundStockRelease,
    /// 客户自助查询解决率: `1 − app_consultations / app_logistics_views`, clamped to 0..=1.
    SelfService,
}

/// Which side of its threshold an indicator is healthy on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Healthy when the value is at most the threshold (delays).
    AtMost,
    /// Healthy when the value is at least the threshold (rates, scores).
    AtLeast,
}

impl Indicator {
    /// Every indicator, in the order reports show them.
    pub const ALL: [Indicator; 5] = [
        Indicator::SyncDelayMedian,
        Indicator::OnTimeShipping,
        Indicator::TrustScore,
        Indicator::RefundStockRelease,
        Indicator::SelfService,
    ];

    /// The identifier used in JSON and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::SyncDelayMedian => "sync_delay_median",
            Indicator::OnTimeShipping => "on_time_shipping",
            Indicator::TrustScore => "trust_score",
            Indicator::RefundStockRelease => "refund_stock_release",
            Indicator::SelfService => "self_service",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            Indicator::SyncDelayMedian => "状态同步延迟中位数",
            Indicator::OnTimeShipping => "发货准时率",
            Indicator::TrustScore => "物流信息可信度分",
            Indicator::RefundStockRelease => "退款库存释放及时率",
            Indicator::SelfService => "客户自助查询解决率",
        }
    }

    /// Which side of the threshold is healthy.
    pub fn direction(self) -> Direction {
        match self {
            Indicator::SyncDelayMedian => Direction::AtMost,
            _ => Direction::AtLeast,
        }
    }

    /// Whether the value is a fraction (shown as a percentage).
    pub fn is_rate(self) -> bool {
        matches!(self, Indicator::OnTimeShipping | Indicator::RefundStockRelease | Indicator::SelfService)
    }

    /// A value as people read it: `11.5 分钟`, `98.47%`, `93.2 分`.
    pub fn format_value(self, value: f64) -> String {
        match self {
            Indicator::SyncDelayMedian => format!("{value:.1} 分钟"),
            Indicator::TrustScore => format!("{value:.1} 分"),
            _ => format!("{:.2}%", value * 100.0),
        }
    }

    /// A threshold as people read it: `≤ 15.0 分钟`, `≥ 98.50%`.
    pub fn format_threshold(self, threshold: f64) -> String {
        let sign = match self.direction() {
            Direction::AtMost => "≤",
            Direction::AtLeast => "≥",
        };
        format!("{sign} {}", self.format_value(threshold))
    }
}

/// One breach as a report's announcement lists it (`HealthReportReady`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportBreach {
    /// Which indicator.
    pub indicator: Indicator,
    /// Which channel, or `overall`.
    pub channel: Scope,
    /// The value found, in the indicator's unit.
    pub value: f64,
    /// The threshold it breached.
    pub threshold: f64,
}

/// Which schedule (or request) a report answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// One Beijing day.
    Daily,
    /// One Beijing month, with the monthly extras.
    Monthly,
    /// Any range of days (ops request).
    Range,
}

impl ReportKind {
    /// The kind as stored (`R#{kind}`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Daily => "daily",
            ReportKind::Monthly => "monthly",
            ReportKind::Range => "range",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            ReportKind::Daily => "日报",
            ReportKind::Monthly => "月报",
            ReportKind::Range => "区间报告",
        }
    }
}

/// Whom a row of the report is about: one channel, or all of them summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// All channels' counters summed.
    Overall,
    /// One channel (or another source that has counters).
    Channel(Source),
}

impl Scope {
    /// The identifier used in JSON: `overall` or the source.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Overall => "overall",
            Scope::Channel(source) => source.as_str(),
        }
    }

    /// The label people read: `全部渠道`, `抖店 douyin`, ….
    pub fn label(self) -> String {
        let name = match self {
            Scope::Overall => return "全部渠道".to_owned(),
            Scope::Channel(source) => source.label(),
        };
        format!("{name} {}", self.as_str())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = crate::model::ids::IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "overall" { Ok(Scope::Overall) } else { s.parse().map(Scope::Channel) }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}
