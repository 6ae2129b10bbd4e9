//! Fitting a report into one stats item. A DynamoDB item is at most 400 KB, key and attribute
//! names included; the report's JSON and its page get [`MAX_STORED_BYTES`] together.
//!
//! The JSON is the record other tools read, so it is kept whole and plain. When both do not
//! fit (a long range of many channels: the page's charts grow with days × channels), the page
//! is cut at the last line that fits outside any SVG chart, and a note says so. The summary
//! table and the breaches come first on the page, so the cut only ever removes charts. Should
//! the JSON alone not fit (impossible within `crate::app::health_report::MAX_RANGE_DAYS` for every source; kept as a
//! safety net), its daily series are dropped and the note says that too.

use super::{HealthReport, render_markdown};
use crate::model::counters::StoredReport;
use serde::Serialize;

/// Bytes that `json` and `rendered` may take together.
pub const MAX_STORED_BYTES: usize = 350 * 1024;

/// Room kept for the truncation note.
const NOTE_BYTES: usize = 1024;

/// How the report went into the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// JSON and page whole.
    Whole,
    /// JSON whole, page cut (charts left out).
    PageTruncated,
    /// JSON without its daily series, page cut.
    SeriesDropped,
}

/// The item for a report stored under `period`, and how it was fitted.
pub fn stored_report(report: &HealthReport, period: &str) -> (StoredReport, Fit) {
    fitted(report, period, MAX_STORED_BYTES)
}

/// The item, with JSON and page together at most `max_bytes` (whenever the JSON without its
/// series fits).
fn fitted(report: &HealthReport, period: &str, max_bytes: usize) -> (StoredReport, Fit) {
    let mut json = serde_json::to_string(report).unwrap_or_default();
    let mut page = render_markdown(report);
    let mut fit = Fit::Whole;
    if json.len() + page.len() > max_bytes {
        fit = Fit::PageTruncated;
        // Keep at least the summary table and the breaches on the page (a few KB).
        if json.len() + NOTE_BYTES * 8 > max_bytes {
            let mut lite = report.clone();
            for row in std::iter::once(&mut lite.overall).chain(lite.channels.iter_mut()) {
                row.series.clear();
            }
            json = serde_json::to_string(&lite).unwrap_or_default();
            fit = Fit::SeriesDropped;
        }
        let full = page.len();
        let budget = max_bytes.saturating_sub(json.len() + NOTE_BYTES);
        page.truncate(safe_cut(&page, budget));
        page.push_str(&note(fit, full, page.len()));
    }
    let stored =
        StoredReport { kind: report.kind.as_str().to_owned(), period: period.to_owned(), json, rendered: page };
    (stored, fit)
}

/// The longest prefix of `page`, at most `budget` bytes, that ends at a line end outside any
/// `<svg>…</svg>` block.
fn safe_cut(page: &str, budget: usize) -> usize {
    let mut cut = 0;
    let mut in_svg = false;
    let mut at = 0;
    for line in page.split_inclusive('\n') {
        let end = at + line.len();
        if end > budget {
            break;
        }
        if line.contains("<svg") {
            in_svg = true;
        }
        if line.contains("</svg>") {
            in_svg = false;
        }
        if !in_svg {
            cut = end;
        }
        at = end;
    }
    cut
}

fn note(fit: Fit, full: usize, kept: usize) -> String {
    let series = if fit == Fit::SeriesDropped { "JSON 中的每日序列也已省略;" } else { "" };
    format!(
        "\n\n> ⚠️ 页面共 {full} 字节,超过单条存储上限,已截断为前 {kept} 字节(图表未全部保留)。\
         {series}完整指标见同一条目的 JSON;缩短区间或减少渠道后重新生成可得到完整页面。\n"
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::model::counters::{DayCounters, names};
    use crate::model::ids::Source;
    use crate::rules::health::{HealthThresholds, Indicator, Period, ReportKind, build_report};
    use chrono::{Days, NaiveDate};

    use super::*;

    /// A report of `days` days of every sales channel, every indicator measured every day.
    fn long_report(days: u64) -> HealthReport {
        let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let channels: BTreeMap<Source, Vec<DayCounters>> = Source::CHANNELS
            .into_iter()
            .map(|source| {
                let days = (0..days)
                    .map(|d| {
                        let pairs = [
                            (names::SHIPPED_ON_TIME.to_owned(), 990 + d as i64 % 7),
                            (names::SHIPPED_LATE.to_owned(), 10),
                            (names::TRUST_ASSESSED.to_owned(), 300),
                            (names::TRUST_SCORE_SUM.to_owned(), 28_000 + d as i64),
                            (names::STOCK_RELEASE_DUE.to_owned(), 20),
                            (names::STOCK_RELEASED_ON_TIME.to_owned(), 20),
                            (names::APP_LOGISTICS_VIEWS.to_owned(), 900),
                            (names::APP_CONSULTATIONS.to_owned(), 90 + d as i64 % 11),
                            (names::sync_delay_bin(200), 800),
                        ];
                        DayCounters { day: first.checked_add_days(Days::new(d)), counters: pairs.into_iter().collect() }
                    })
                    .collect();
                (source, days)
            })
            .collect();
        let period = Period::new(first, first.checked_add_days(Days::new(days - 1)).unwrap());
        build_report(ReportKind::Range, period, &channels, &HealthThresholds::default())
    }

    #[test]
    fn a_report_that_fits_is_stored_whole() {
        let report = long_report(31);
        let (stored, fit) = stored_report(&report, "p");
        assert_eq!(fit, Fit::Whole);
        assert_eq!(stored.json, serde_json::to_string(&report).unwrap());
        assert_eq!(stored.rendered, render_markdown(&report));
        assert_eq!((stored.kind.as_str(), stored.period.as_str()), ("range", "p"));
    }

    #[test]
    fn a_page_too_long_is_cut_before_a_chart_with_a_note_and_the_json_stays_whole() {
        let report = long_report(31);
        let json = serde_json::to_string(&report).unwrap();
        let page = render_markdown(&report);
        let max = json.len() + page.len() / 2;
        let (stored, fit) = fitted(&report, "p", max);
        assert_eq!(fit, Fit::PageTruncated);
        assert_eq!(stored.json, json, "the JSON is whole");
        assert!(stored.json.len() + stored.rendered.len() <= max);
        assert!(stored.rendered.contains("已截断"), "{}", stored.rendered);
        assert!(stored.rendered.contains("## 指标总览"), "the summary is kept");
        assert_eq!(stored.rendered.matches("<svg").count(), stored.rendered.matches("</svg>").count());
        assert!(stored.rendered.matches("<svg").count() < Indicator::ALL.len());
    }

    #[test]
    fn a_json_too_long_loses_its_daily_series_not_its_verdicts() {
        let report = long_report(400);
        let (stored, fit) = stored_report(&report, "p");
        assert_eq!(fit, Fit::SeriesDropped);
        assert!(stored.json.len() + stored.rendered.len() <= MAX_STORED_BYTES);
        let back: HealthReport = serde_json::from_str(&stored.json).unwrap();
        assert!(back.overall.series.is_empty());
        // (Values compare to the last bit only without serde_json's float_roundtrip.)
        let verdicts = |r: &HealthReport| -> Vec<_> {
            std::iter::once(&r.overall)
                .chain(&r.channels)
                .flat_map(|row| row.indicators.iter().map(|v| (v.verdict, v.sample)))
                .collect()
        };
        assert_eq!(verdicts(&back), verdicts(&report));
        assert!(stored.rendered.contains("每日序列也已省略"), "{}", stored.rendered);
    }

    #[test]
    fn the_cut_never_splits_a_chart() {
        let page = "# t\n\n| a |\n\n<svg x>\n<path/>\n</svg>\n\nafter\n";
        assert_eq!(safe_cut(page, page.len()), page.len());
        // A budget ending inside the chart cuts before it.
        let before_chart = page.find("<svg").unwrap();
        assert_eq!(safe_cut(page, page.find("</svg>").unwrap()), before_chart);
        assert_eq!(safe_cut(page, 0), 0);
    }
}
