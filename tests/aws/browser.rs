//! The report page in a real browser: Debian's Chromium, headless, opens the HTML page
//! health-report stores (`render_html`, the same page that goes to S3), takes a screenshot
//! (`target/report-page/health-report.png`) and dumps the DOM it rendered.
//!
//! Skipped, with a notice, only where no Chromium is installed: `scripts/lib.sh`'s
//! `ensure_chromium` installs `chromium` and a Chinese font (`fonts-wqy-zenhei`) from Debian's
//! packages before the suite runs, and says so when it cannot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use domain::Source;
use domain::model::counters::DayCounters;
use domain::rules::health::{HealthThresholds, Indicator, Period, ReportKind, build_report, render_html};
use tests::stack;

/// The browser: `CHROMIUM` if set, else `chromium` (Debian) or `chromium-browser` on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| stack::root().join("target"), PathBuf::from)
}

/// A month with two channels, a breach (late shipments on pdd) and every chart drawn.
fn month_report() -> String {
    let day = |d: u32, pairs: &[(&str, i64)]| DayCounters {
        day: NaiveDate::from_ymd_opt(2026, 11, d),
        counters: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    };
    let mut channels: BTreeMap<Source, Vec<DayCounters>> = BTreeMap::new();
    for d in 1..=30 {
        let wobble = i64::from(d % 4);
        channels.entry(Source::Douyin).or_default().push(day(
            d,
            &[
                ("received", 800 + 10 * wobble),
                ("sync_delay_le_300", 60),
                ("sync_delay_le_1800", 20 + wobble),
                ("shipped_on_time", 300),
                ("shipped_late", wobble),
                ("trust_assessed", 40),
                ("trust_score_sum", 40 * (93 + wobble)),
                ("stock_release_due", 4),
                ("stock_released_on_time", 4),
                ("app_logistics_views", 200),
                ("app_consultations", 10 + wobble),
            ],
        ));
        channels.entry(Source::Pdd).or_default().push(day(
            d,
            &[
                ("received", 400),
                ("sync_delay_le_300", 30),
                ("shipped_on_time", 150),
                ("shipped_late", 20 + wobble),
                ("trust_assessed", 25),
                ("trust_score_sum", 25 * 90),
            ],
        ));
    }
    let month = Period::month_of(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    render_html(&build_report(ReportKind::Monthly, month, &channels, &HealthThresholds::default()))
}

async fn run(browser: &Path, args: &[String]) -> std::process::Output {
    let child = tokio::process::Command::new(browser)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", browser.display()));
    tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within 90 s", browser.display()))
        .unwrap()
}

#[tokio::test]
async fn the_report_page_renders_in_headless_chromium_with_its_chinese_text_and_charts() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED browser::the_report_page_renders…: no chromium on PATH (scripts/lib.sh ensure_chromium installs Debian's chromium and fonts-wqy-zenhei)"
        );
        return;
    };
    // Chinese text needs a font that has it, or Chromium draws empty boxes.
    let fonts = std::process::Command::new("fc-list").args([":lang=zh", "family"]).output().unwrap();
    let fonts = String::from_utf8_lossy(&fonts.stdout).into_owned();
    assert!(
        !fonts.trim().is_empty(),
        "no font with Chinese glyphs (fc-list :lang=zh): install fonts-wqy-zenhei or fonts-noto-cjk"
    );

    let dir = target_dir().join("report-page");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("health-report.html");
    let png = dir.join("health-report.png");
    let _ = std::fs::remove_file(&png);
    std::fs::write(&html, month_report()).unwrap();
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let profile = tempdir(&dir);
    let common = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--headless",
            // Root in a container: Chromium's sandbox needs user namespaces it may not have.
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--window-size=1000,2400",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(url.clone());
        args
    };

    let shot = run(&browser, &common(&[&format!("--screenshot={}", png.display())])).await;
    assert!(shot.status.success(), "screenshot failed: {}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1000, 2400), "the window size");
    // A blank 1000×2400 page compresses to a few KB; text, tables and five charts do not.
    assert!(bytes.len() > 60_000, "the screenshot looks blank: {} bytes", bytes.len());

    let dom = run(&browser, &common(&["--dump-dom"])).await;
    assert!(dom.status.success(), "dump-dom failed: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8(dom.stdout).unwrap();
    for text in [
        "订单健康度月报 · 2026-11",
        "指标总览",
        "未达标项",
        "抖店 douyin",
        "拼多多 pdd",
        "✗ 87.",
        "✓ 99.50%",
        "月度附加",
    ] {
        assert!(dom.contains(text), "{text} is not in the rendered DOM");
    }
    for indicator in Indicator::ALL {
        assert!(dom.contains(indicator.label()), "{}", indicator.label());
    }
    assert_eq!(dom.matches("<svg").count(), Indicator::ALL.len(), "every chart is in the DOM");
    assert!(dom.contains("<polyline"), "the month's lines are drawn");
    eprintln!("screenshot: {} ({} bytes); fonts: {}", png.display(), bytes.len(), fonts.lines().next().unwrap_or(""));
    let _ = std::fs::remove_dir_all(&profile);
}

/// A fresh browser profile directory under `dir`.
fn tempdir(dir: &Path) -> PathBuf {
    let profile = dir.join(format!("profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    profile
}
