//! The pages people read: Markdown tables with inline SVG charts (stored with the report), and
//! the same content as one self-contained HTML page (the link the report's robots get). Both
//! hand-written, no crate.

use std::fmt::Write;

use super::indicator::{HealthVerdict, Indicator, IndicatorValue};
use super::monthly::MonthlyExtras;
use super::report::{HealthReport, Scope, ScopeHealth};

const WIDTH: f64 = 720.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const PLOT_HEIGHT: f64 = 170.0;
const LEGEND_TOP: f64 = TOP + PLOT_HEIGHT + 34.0;
const LEGEND_PER_ROW: usize = 5;
const PALETTE: [&str; 10] =
    ["#222222", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const THRESHOLD_COLOR: &str = "#d62728";

/// Renders the report as Markdown: a summary table per channel with ✅/❌/— verdicts, the
/// breaches, one inline SVG chart per indicator (a line per channel over the period, or bars
/// per channel for a single day), and for monthly reports the extras tables. All text that
/// reaches the page is escaped for Markdown or XML.
pub fn render_markdown(report: &HealthReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# 订单健康度{} · {}\n", md(report.kind.label()), md(&report.period_label()));
    let _ = writeln!(out, "统计区间(北京时间):{} 至 {}\n", report.period.from, report.period.to);
    summary(&mut out, report);
    breaches(&mut out, report);
    let _ = writeln!(out, "## 每日趋势\n");
    for indicator in Indicator::ALL {
        let threshold = indicator.format_threshold(report.thresholds.get(indicator).limit);
        let _ = writeln!(out, "### {}({})\n", md(indicator.label()), md(&threshold));
        out.push_str(&chart(report, indicator));
        out.push_str("\n\n");
    }
    if let Some(extras) = &report.monthly {
        monthly(&mut out, extras);
    }
    out
}

/// The note under the summary table (both pages).
const SUMMARY_NOTE: &str = "✅ 达标 · ❌ 未达标 · — 样本不足(括号内为样本数/最低样本数)或无数据。\
     状态同步延迟中位数由延迟直方图估算:精确到分箱,箱内按线性插值;超过 24 小时的一箱取其下界。\
     退款库存释放及时率按库存行计:按时释放行数 ÷ 应释放行数(退款成功时占用库存的行)。\
     客户自助查询解决率 = 1 − 咨询量 ÷ 物流页查看量。";

/// The page's style: system CJK fonts first (Noto Sans CJK, WenQuanYi, PingFang, YaHei).
const STYLE: &str = "body{font-family:'Noto Sans CJK SC','WenQuanYi Zen Hei','PingFang SC','Microsoft YaHei',sans-serif;\
     margin:24px auto;max-width:960px;color:#222;line-height:1.5}\
     table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px}\
     th{background:#f4f4f4}td.num{text-align:right}.ok{color:#1a7f37}.bad{color:#d62728;font-weight:bold}\
     .na{color:#888}.note{font-size:12px;color:#555}figure{margin:8px 0 24px}footer{font-size:12px;color:#888}";

/// Renders the report as one self-contained HTML page (UTF-8, inline style, the same inline SVG
/// charts as the Markdown page, no script, nothing loaded from elsewhere): the summary table per
/// channel, the breaches, one chart per indicator, and for monthly reports the extras. All text
/// is escaped for HTML.
pub fn render_html(report: &HealthReport) -> String {
    let title = format!("订单健康度{} · {}", report.kind.label(), report.period_label());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        xml(&title),
        xml(&title)
    );
    let _ = writeln!(out, "<p>统计区间(北京时间):{} 至 {}</p>", report.period.from, report.period.to);
    let _ = writeln!(out, "<h2>指标总览</h2>\n<table>\n<tr><th>渠道</th><th>回调量</th>");
    for indicator in Indicator::ALL {
        let threshold = indicator.format_threshold(report.thresholds.get(indicator).limit);
        let _ = write!(out, "<th>{}<br>{}</th>", xml(indicator.label()), xml(&threshold));
    }
    out.push_str("</tr>\n");
    for row in rows(report) {
        let name = xml(&row.scope.label());
        let name = if row.scope == Scope::Overall { format!("<b>{name}</b>") } else { name };
        let received = if row.has_data { row.received.to_string() } else { "—".to_owned() };
        let _ = write!(out, "<tr><td>{name}</td><td class=\"num\">{received}</td>");
        for value in &row.indicators {
            let class = match value.verdict {
                HealthVerdict::Healthy => "ok",
                HealthVerdict::Breached => "bad",
                _ => "na",
            };
            let _ = write!(out, "<td class=\"{class}\">{}</td>", xml(&marks(&verdict_cell(value))));
        }
        out.push_str("</tr>\n");
    }
    let _ = writeln!(out, "</table>\n<p class=\"note\">{}</p>", xml(&marks(SUMMARY_NOTE)));
    let _ = writeln!(out, "<h2>未达标项</h2>");
    let found = report.breaches();
    if found.is_empty() {
        out.push_str("<p>无。</p>\n");
    } else {
        out.push_str("<table>\n<tr><th>指标</th><th>渠道</th><th>数值</th><th>阈值</th><th>样本</th></tr>\n");
        for breach in found {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"num bad\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                xml(breach.indicator.label()),
                xml(&breach.scope.label()),
                xml(&shown(breach.indicator, breach.value, breach.threshold)),
                xml(&breach.indicator.format_threshold(breach.threshold)),
                breach.sample,
            );
        }
        out.push_str("</table>\n");
    }
    let _ = writeln!(out, "<h2>每日趋势</h2>");
    for indicator in Indicator::ALL {
        let threshold = indicator.format_threshold(report.thresholds.get(indicator).limit);
        let _ = writeln!(out, "<h3>{}({})</h3>\n<figure>", xml(indicator.label()), xml(&threshold));
        out.push_str(&chart(report, indicator));
        out.push_str("\n</figure>\n");
    }
    if let Some(extras) = &report.monthly {
        monthly_html(&mut out, extras);
    }
    out.push_str("<footer>orderhub · 由日计数器生成,时间为北京时间。</footer>\n</body>\n</html>\n");
    out
}

/// The page's verdict marks: ✓ and ✗ (in the common text fonts) rather than the ✅ and ❌
/// emoji, which a machine without an emoji font draws as empty boxes.
fn marks(text: &str) -> String {
    text.replace('✅', "✓").replace('❌', "✗")
}

fn monthly_html(out: &mut String, extras: &MonthlyExtras) {
    let minutes = |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |m| format!("{m:.1} 分钟"));
    let _ = writeln!(out, "<h2>月度附加</h2>\n<h3>各平台状态同步延迟</h3>");
    out.push_str("<table>\n<tr><th>平台</th><th>中位数</th><th>平均</th><th>样本</th></tr>\n");
    for row in &extras.sync_delay {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            xml(&row.scope.label()),
            minutes(row.median_minutes),
            minutes(row.mean_minutes),
            row.sample
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(out, "<h3>人工干预原因 TOP {}</h3>", super::monthly::TOP_CAUSES);
    if extras.top_causes.is_empty() {
        out.push_str("<p>无。</p>\n");
    } else {
        out.push_str("<table>\n<tr><th>排名</th><th>原因</th><th>次数</th></tr>\n");
        for (rank, cause) in extras.top_causes.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                rank + 1,
                xml(cause.cause.label()),
                cause.count
            );
        }
        out.push_str("</table>\n");
    }
    let _ = writeln!(out, "<p>人工操作(ops)调用次数:{}</p>", extras.ops_calls);
    let _ = writeln!(out, "<h3>状态流转瓶颈 TOP {}(按平均耗时)</h3>", super::monthly::TOP_BOTTLENECKS);
    if extras.bottlenecks.is_empty() {
        out.push_str("<p>无。</p>\n");
    } else {
        out.push_str("<table>\n<tr><th>排名</th><th>流转</th><th>平均耗时</th><th>次数</th></tr>\n");
        for (rank, row) in extras.bottlenecks.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{:.0} 分钟</td><td class=\"num\">{}</td></tr>",
                rank + 1,
                xml(&format!("{} → {}", row.from, row.to)),
                row.mean_minutes,
                row.count
            );
        }
        out.push_str("</table>\n");
    }
}

fn rows(report: &HealthReport) -> impl Iterator<Item = &ScopeHealth> {
    std::iter::once(&report.overall).chain(&report.channels)
}

fn summary(out: &mut String, report: &HealthReport) {
    let _ = writeln!(out, "## 指标总览\n");
    out.push_str("| 渠道 | 回调量 |");
    for indicator in Indicator::ALL {
        let threshold = indicator.format_threshold(report.thresholds.get(indicator).limit);
        let _ = write!(out, " {}<br>{} |", md(indicator.label()), md(&threshold));
    }
    out.push_str("\n|---|---:|");
    out.push_str(&"---|".repeat(Indicator::ALL.len()));
    out.push('\n');
    for row in rows(report) {
        let name = if row.scope == Scope::Overall {
            format!("**{}**", md(&row.scope.label()))
        } else {
            md(&row.scope.label())
        };
        let received = if row.has_data { row.received.to_string() } else { "—".to_owned() };
        let _ = write!(out, "| {name} | {received} |");
        for value in &row.indicators {
            let _ = write!(out, " {} |", md(&verdict_cell(value)));
        }
        out.push('\n');
    }
    let _ = write!(out, "\n{SUMMARY_NOTE}\n\n");
}

/// A value as people read it, with more digits when the usual rounding would make a breach
/// look equal to its threshold (99.996 % is not "100.00 %").
fn shown(indicator: Indicator, value: f64, threshold: f64) -> String {
    let plain = indicator.format_value(value);
    if value == threshold || plain != indicator.format_value(threshold) {
        return plain;
    }
    match indicator {
        Indicator::SyncDelayMedian => format!("{value:.4} 分钟"),
        Indicator::TrustScore => format!("{value:.4} 分"),
        _ => format!("{:.6}%", value * 100.0),
    }
}

fn verdict_cell(value: &IndicatorValue) -> String {
    match (value.verdict, value.value) {
        (HealthVerdict::Healthy, Some(found)) => format!("✅ {}", shown(value.indicator, found, value.threshold)),
        (HealthVerdict::Breached, Some(found)) => format!("❌ {}", shown(value.indicator, found, value.threshold)),
        (HealthVerdict::NoData, _) => "— 无数据".to_owned(),
        _ => format!("— 样本不足 ({}/{})", value.sample, value.min_sample),
    }
}

fn breaches(out: &mut String, report: &HealthReport) {
    let _ = writeln!(out, "## 未达标项\n");
    let found = report.breaches();
    if found.is_empty() {
        out.push_str("无。\n\n");
        return;
    }
    out.push_str("| 指标 | 渠道 | 数值 | 阈值 | 样本 |\n|---|---|---:|---:|---:|\n");
    for breach in found {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            md(breach.indicator.label()),
            md(&breach.scope.label()),
            md(&shown(breach.indicator, breach.value, breach.threshold)),
            md(&breach.indicator.format_threshold(breach.threshold)),
            breach.sample,
        );
    }
    out.push('\n');
}

fn monthly(out: &mut String, extras: &MonthlyExtras) {
    let _ = writeln!(out, "## 月度附加\n\n### 各平台状态同步延迟\n");
    out.push_str("| 平台 | 中位数 | 平均 | 样本 |\n|---|---:|---:|---:|\n");
    for row in &extras.sync_delay {
        let minutes = |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |m| format!("{m:.1} 分钟"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md(&row.scope.label()),
            minutes(row.median_minutes),
            minutes(row.mean_minutes),
            row.sample
        );
    }
    let _ = writeln!(out, "\n### 人工干预原因 TOP {}\n", super::monthly::TOP_CAUSES);
    if extras.top_causes.is_empty() {
        out.push_str("无。\n");
    } else {
        out.push_str("| 排名 | 原因 | 次数 |\n|---:|---|---:|\n");
        for (rank, cause) in extras.top_causes.iter().enumerate() {
            let _ = writeln!(out, "| {} | {} | {} |", rank + 1, md(cause.cause.label()), cause.count);
        }
    }
    let _ = writeln!(out, "\n人工操作(ops)调用次数:{}\n", extras.ops_calls);
    let _ = writeln!(out, "### 状态流转瓶颈 TOP {}(按平均耗时)\n", super::monthly::TOP_BOTTLENECKS);
    if extras.bottlenecks.is_empty() {
        out.push_str("无。\n");
    } else {
        out.push_str("| 排名 | 流转 | 平均耗时 | 次数 |\n|---:|---|---:|---:|\n");
        for (rank, row) in extras.bottlenecks.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} 分钟 | {} |",
                rank + 1,
                md(&format!("{} → {}", row.from, row.to)),
                row.mean_minutes,
                row.count
            );
        }
    }
    out.push('\n');
}

/// The value as drawn: percentages for rates.
fn display(indicator: Indicator, value: f64) -> f64 {
    if indicator.is_rate() { value * 100.0 } else { value }
}

/// The y range of a chart: the values and the threshold, padded, kept inside the unit's range.
fn y_range(indicator: Indicator, values: impl Iterator<Item = f64>, threshold: f64) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((threshold, threshold), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.1).max(0.5);
    lo = (lo - pad).max(0.0);
    hi += pad;
    if indicator != Indicator::SyncDelayMedian {
        hi = hi.min(100.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    (lo, hi)
}

fn chart(report: &HealthReport, indicator: Indicator) -> String {
    let limit = report.thresholds.get(indicator).limit;
    let title = format!("{} · {}", indicator.label(), report.period_label());
    // Only rows with data get a colour, so the legend stays short.
    let drawn: Vec<(usize, &ScopeHealth)> = rows(report).filter(|row| row.has_data).enumerate().collect();
    let legend_rows = drawn.len().div_ceil(LEGEND_PER_ROW).max(1);
    let height = LEGEND_TOP + 18.0 * legend_rows as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
        xml(&title)
    );
    let _ = writeln!(svg, "<title>{}</title>", xml(&title));
    let plot_width = WIDTH - LEFT - RIGHT;
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{PLOT_HEIGHT}" fill="none" stroke="#cccccc"/>"##
    );
    if report.period.len_days() > 1 {
        line_plot(&mut svg, report, indicator, &drawn, limit);
    } else {
        bar_plot(&mut svg, indicator, &drawn, limit);
    }
    for (i, row) in &drawn {
        let x = LEFT + 136.0 * (i % LEGEND_PER_ROW) as f64;
        let y = LEGEND_TOP + 18.0 * (i / LEGEND_PER_ROW) as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
            y - 9.0,
            color(*i),
            x + 14.0,
            xml(&row.scope.label())
        );
    }
    if drawn.is_empty() {
        let _ =
            writeln!(svg, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">无数据</text>"#, WIDTH / 2.0, TOP + 80.0);
    }
    svg.push_str("</svg>");
    svg
}

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Axis labels, unit, and the threshold line (`limit` in the indicator's unit) with its key.
fn y_axis(svg: &mut String, indicator: Indicator, lo: f64, hi: f64, limit: f64) {
    let y = |v: f64| TOP + PLOT_HEIGHT * (hi - v) / (hi - lo);
    let unit = match indicator {
        Indicator::SyncDelayMedian => "分钟",
        Indicator::TrustScore => "分",
        _ => "%",
    };
    for v in [lo, hi] {
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"#, LEFT - 4.0, y(v) + 4.0);
    }
    let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}" text-anchor="start">{}</text>"#, 4.0, TOP - 10.0, xml(unit));
    let ty = y(display(indicator, limit));
    let _ = writeln!(
        svg,
        r#"<line x1="{LEFT}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="{THRESHOLD_COLOR}" stroke-dasharray="4 3"/>"#,
        WIDTH - RIGHT
    );
    // The threshold's key sits above the plot, where no bar or value label can cover it.
    let key_x = WIDTH - RIGHT - 150.0;
    let _ = writeln!(
        svg,
        r#"<line x1="{key_x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{THRESHOLD_COLOR}" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" fill="{THRESHOLD_COLOR}">阈值 {}</text>"#,
        TOP - 14.0,
        key_x + 20.0,
        TOP - 14.0,
        key_x + 24.0,
        TOP - 10.0,
        xml(&indicator.format_threshold(limit))
    );
}

/// (days after the period's start, drawn value) of one line.
type DayValues = Vec<(i64, f64)>;

fn line_plot(
    svg: &mut String,
    report: &HealthReport,
    indicator: Indicator,
    drawn: &[(usize, &ScopeHealth)],
    limit: f64,
) {
    let series: Vec<(usize, Scope, DayValues)> = drawn
        .iter()
        .map(|(i, row)| {
            let points = row
                .series(indicator)
                .map(|series| {
                    series
                        .points
                        .iter()
                        .filter_map(|point| {
                            let value = display(indicator, point.value?);
                            value.is_finite().then(|| ((point.day - report.period.from).num_days(), value))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (*i, row.scope, points)
        })
        .collect();
    let threshold = display(indicator, limit);
    let (lo, hi) =
        y_range(indicator, series.iter().flat_map(|(_, _, points)| points.iter().map(|(_, v)| *v)), threshold);
    y_axis(svg, indicator, lo, hi, limit);
    let days = report.period.len_days().max(1) as f64;
    let plot_width = WIDTH - LEFT - RIGHT;
    let x = |offset: i64| LEFT + plot_width * (offset as f64 + 0.5) / days;
    let y = |v: f64| TOP + PLOT_HEIGHT * (hi - v) / (hi - lo);
    let last = report.period.nth_day(report.period.len_days().saturating_sub(1)).unwrap_or(report.period.to);
    for (anchor, px, day) in [("start", LEFT, report.period.from), ("end", WIDTH - RIGHT, last)] {
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="{anchor}">{day}</text>"#,
            TOP + PLOT_HEIGHT + 14.0
        );
    }
    for (i, scope, points) in &series {
        let width = if *scope == Scope::Overall { 2.5 } else { 1.5 };
        // A missing day breaks the line: no value is invented between two days apart.
        let mut runs: Vec<Vec<(i64, f64)>> = Vec::new();
        for point in points {
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|(day, _)| day + 1 == point.0) => run.push(*point),
                _ => runs.push(vec![*point]),
            }
        }
        for run in runs.iter().filter(|run| run.len() > 1) {
            let coords: Vec<String> = run.iter().map(|(d, v)| format!("{:.1},{:.1}", x(*d), y(*v))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="{width}" points="{}"/>"#,
                color(*i),
                coords.join(" ")
            );
        }
        // Lines carry the runs; a dot only marks a day that has no neighbour to draw a line to.
        for (d, v) in runs.iter().filter(|run| run.len() == 1).flatten() {
            let day = report.period.from + chrono::Days::new(u64::try_from(*d).unwrap_or(0));
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"><title>{}</title></circle>"#,
                x(*d),
                y(*v),
                color(*i),
                xml(&format!("{} {day} {v:.2}", scope.label()))
            );
        }
    }
}

fn bar_plot(svg: &mut String, indicator: Indicator, drawn: &[(usize, &ScopeHealth)], limit: f64) {
    let values: Vec<(usize, Scope, Option<f64>)> = drawn
        .iter()
        .map(|(i, row)| {
            let value = row.indicator(indicator).and_then(|v| v.value).map(|v| display(indicator, v));
            (*i, row.scope, value.filter(|v| v.is_finite()))
        })
        .collect();
    // Bars start at the bottom of the range, not at zero: 98.4 % and 98.6 % must look different.
    let threshold = display(indicator, limit);
    let (lo, hi) = y_range(indicator, values.iter().filter_map(|(_, _, v)| *v), threshold);
    y_axis(svg, indicator, lo, hi, limit);
    let slots = values.len().max(1) as f64;
    let slot = (WIDTH - LEFT - RIGHT) / slots;
    let y = |v: f64| TOP + PLOT_HEIGHT * (hi - v) / (hi - lo);
    for (n, (i, scope, value)) in values.iter().enumerate() {
        let centre = LEFT + slot * (n as f64 + 0.5);
        let _ = writeln!(
            svg,
            r#"<text x="{centre:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + PLOT_HEIGHT + 14.0,
            xml(scope.as_str())
        );
        match value {
            Some(v) => {
                let top = y(*v);
                let _ = writeln!(
                    svg,
                    r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                    centre - slot * 0.3,
                    slot * 0.6,
                    (TOP + PLOT_HEIGHT - top).max(0.0),
                    color(*i),
                    xml(&format!("{} {v:.2}", scope.label()))
                );
                let digits = if indicator.is_rate() { 2 } else { 1 };
                let _ = writeln!(
                    svg,
                    r#"<text x="{centre:.1}" y="{:.1}" text-anchor="middle">{v:.digits$}</text>"#,
                    top - 3.0
                );
            }
            None => {
                let _ = writeln!(
                    svg,
                    r#"<text x="{centre:.1}" y="{:.1}" text-anchor="middle">—</text>"#,
                    TOP + PLOT_HEIGHT - 4.0
                );
            }
        }
    }
}

/// Escapes text for XML (SVG) content and attribute values.
pub(crate) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // A blank line would end the HTML block that holds the SVG.
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for a Markdown paragraph or table cell: HTML is neutralised, Markdown
/// punctuation and the cell separator are backslash-escaped, line breaks become spaces.
pub(crate) fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::NaiveDate;

    use super::super::indicator::HealthThresholds;
    use super::super::indicator::tests::counters;
    use super::super::report::{Period, ReportKind, build_report};
    use super::*;
    use crate::model::counters::DayCounters;
    use crate::model::ids::Source;

    fn sample_channels(days: u32) -> BTreeMap<Source, Vec<DayCounters>> {
        let on = |d: u32, pairs: &[(&str, i64)]| DayCounters {
            day: NaiveDate::from_ymd_opt(2026, 11, d),
            ..counters(pairs)
        };
        let mut douyin = Vec::new();
        let mut pdd = Vec::new();
        for d in 1..=days {
            let late = i64::from(d % 3);
            douyin.push(on(
                d,
                &[
                    ("received", 400),
                    ("sync_delay_le_300", 30),
                    ("sync_delay_le_1800", 10),
                    ("shipped_on_time", 100),
                    ("shipped_late", late),
                    ("trust_assessed", 20),
                    ("trust_score_sum", 1880),
                    ("stock_release_due", 3),
                    ("stock_released_on_time", 3),
                    ("tr_risk_paid_n", 6),
                    ("tr_risk_paid_s", 6 * 113 * 60),
                    ("quarantined", 2),
                ],
            ));
            if d != 4 {
                pdd.push(on(d, &[("received", 100), ("app_logistics_views", 60), ("app_consultations", 5)]));
            }
        }
        BTreeMap::from([(Source::Douyin, douyin), (Source::Pdd, pdd)])
    }

    fn render(kind: ReportKind, period: Period) -> String {
        let report = build_report(kind, period, &sample_channels(30), &HealthThresholds::default());
        render_markdown(&report)
    }

    fn month() -> Period {
        Period::month_of(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
    }

    #[test]
    fn the_page_names_every_indicator_and_every_channel() {
        let page = render(ReportKind::Monthly, month());
        for indicator in Indicator::ALL {
            assert!(page.contains(indicator.label()), "{}", indicator.label());
        }
        for channel in Source::CHANNELS {
            assert!(page.contains(channel.as_str()), "{channel}");
        }
        assert!(page.contains("✅"));
        assert!(page.contains("❌"));
        assert!(page.contains("— 无数据"));
        assert!(page.contains("状态流转瓶颈"));
        assert!(page.contains("RiskHold → Paid | 113 分钟 | 180 |"), "{page}");
        assert!(page.contains("验签失败被隔离的回调 | 60 |"), "{page}");
        assert!(page.contains("人工操作(ops)调用次数:0"));
    }

    #[test]
    fn daily_and_range_pages_have_no_monthly_tables() {
        let day = Period::day(NaiveDate::from_ymd_opt(2026, 11, 3).unwrap());
        for page in [render(ReportKind::Daily, day), render(ReportKind::Range, month())] {
            assert!(!page.contains("月度附加"));
            assert!(page.contains("发货准时率"));
        }
    }

    #[test]
    fn svg_is_balanced_and_has_no_blank_line() {
        let day = Period::day(NaiveDate::from_ymd_opt(2026, 11, 3).unwrap());
        let empty = build_report(ReportKind::Daily, day, &BTreeMap::new(), &HealthThresholds::default());
        for page in [render(ReportKind::Monthly, month()), render(ReportKind::Daily, day), render_markdown(&empty)] {
            let opens = page.matches("<svg").count();
            assert_eq!(opens, Indicator::ALL.len());
            assert_eq!(page.matches("</svg>").count(), opens);
            for chunk in page.split("<svg").skip(1) {
                let body = chunk.split("</svg>").next().unwrap();
                assert!(!body.contains("\n\n"), "a blank line ends the HTML block");
                assert_eq!(body.matches("<title>").count(), body.matches("</title>").count());
                assert_eq!(body.matches("<circle").count(), body.matches("</circle>").count());
                assert!(!body.contains("NaN") && !body.contains("inf"), "{body}");
            }
        }
    }

    #[test]
    fn a_gap_day_breaks_the_line() {
        let page = render(ReportKind::Range, month());
        // Pdd has no counters on the 4th: its self-service line is two polylines, not one.
        let chart = page.split("### 客户自助查询解决率").nth(1).unwrap().split("</svg>").next().unwrap();
        let pdd_color = color(2);
        let lines = chart.lines().filter(|line| line.starts_with("<polyline") && line.contains(pdd_color)).count();
        assert_eq!(lines, 2, "{chart}");
    }

    #[test]
    fn a_breach_never_reads_as_its_threshold() {
        assert_eq!(shown(Indicator::RefundStockRelease, 0.99996, 1.0), "99.996000%");
        assert_eq!(shown(Indicator::RefundStockRelease, 0.75, 1.0), "75.00%");
        assert_eq!(shown(Indicator::OnTimeShipping, 0.985, 0.985), "98.50%");
        assert_eq!(shown(Indicator::SyncDelayMedian, 15.01, 15.0), "15.0100 分钟");
    }

    #[test]
    fn the_html_page_is_self_contained_with_every_chart_and_the_chinese_text() {
        let mut thresholds = HealthThresholds::default();
        thresholds.on_time_shipping.limit = 0.995;
        let report = build_report(ReportKind::Monthly, month(), &sample_channels(30), &thresholds);
        let page = render_html(&report);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains(r#"<meta charset="utf-8">"#));
        assert!(
            page.contains("<title>订单健康度月报 · 2026-11</title>") || page.contains("<title>订单健康度"),
            "{page}"
        );
        for indicator in Indicator::ALL {
            assert!(page.contains(&format!("<h3>{}", indicator.label())), "{}", indicator.label());
        }
        assert_eq!(page.matches("<svg").count(), Indicator::ALL.len());
        assert_eq!(page.matches("</svg>").count(), Indicator::ALL.len());
        for part in ["状态流转瓶颈", r#"<td class="bad">✗ 99.01%"#, r#"<td class="ok">✓"#, "<td>发货准时率</td>"]
        {
            assert!(page.contains(part), "{part} in {page}");
        }
        for external in ["<script", "src=", "href=", "@import", "url("] {
            assert!(!page.contains(external), "{external}: the page loads nothing from elsewhere");
        }
        assert_eq!(page.matches("<table>").count(), page.matches("</table>").count());
        assert_eq!(page.matches("<tr>").count(), page.matches("</tr>").count());
    }

    #[test]
    fn text_is_escaped_for_markdown_and_svg() {
        assert_eq!(xml(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(md("<b>a|b</b> & *c*"), r"&lt;b&gt;a\|b&lt;/b&gt; &amp; \*c\*");
        assert_eq!(md("line\nbreak"), "line break");
        assert_eq!(xml("a\n\nb"), "a  b");
    }
}
