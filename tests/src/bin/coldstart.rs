//! Cold-start meter: starts each release function binary as Lambda would (against a mock
//! Runtime API), and measures process start → first `GET /runtime/invocation/next` (init:
//! config read, AWS config loaded, clients built), the first event's round trip, and the
//! process's peak RSS after that event. Runs a Python boto3 handler doing the same init beside
//! them. Prints a Markdown table.
//!
//! `cargo run --release -p tests --bin coldstart -- [--runs 10] [--bin-dir target/release]`
//! (scripts/coldstart.sh builds, starts the local stack and runs this).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tests::runtime_api::{RuntimeApi, lambda_env};
use tests::stack;

struct Sample {
    init_ms: f64,
    first_event_ms: f64,
    peak_rss_kib: u64,
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn first_event(function: &str) -> String {
    let dir = stack::root().join("events").join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files.first().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_else(|| "{}".to_owned())
}

async fn measure(program: &[String], function: &str, event: &str) -> anyhow::Result<Sample> {
    let api = RuntimeApi::start().await;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&program[0])
        .args(&program[1..])
        .envs(lambda_env(&api, function))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let first_next =
        api.nth_next(1, Duration::from_secs(30)).await.ok_or_else(|| anyhow::anyhow!("{function}: no /next"))?;
    let pushed = Instant::now();
    let id = api.push(event);
    api.answer(&id, Duration::from_secs(30)).await.ok_or_else(|| anyhow::anyhow!("{function}: no answer"))?;
    let answered = Instant::now();
    api.nth_next(2, Duration::from_secs(30)).await.ok_or_else(|| anyhow::anyhow!("{function}: no second /next"))?;
    let rss = child.id().map_or(0, peak_rss_kib);
    child.kill().await?;
    Ok(Sample {
        init_ms: (first_next - started).as_secs_f64() * 1000.0,
        first_event_ms: (answered - pushed).as_secs_f64() * 1000.0,
        peak_rss_kib: rss,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let runs: usize = arg("--runs").map_or(Ok(10), |r| r.parse())?;
    let bin_dir = arg("--bin-dir").map_or_else(|| stack::root().join("target/release"), PathBuf::from);
    let python =
        arg("--python").unwrap_or_else(|| stack::root().join(".venv/bin/python").to_string_lossy().into_owned());
    let _ = stack::env();

    let mut programs: Vec<(String, Vec<String>, String)> = [
        "webhook-verify",
        "status-normalize",
        "refund-dual-check",
        "signin-trust-check",
        "health-report",
        "notify",
        "order-sync",
    ]
    .into_iter()
    .map(|f| (f.to_owned(), vec![bin_dir.join(f).to_string_lossy().into_owned()], first_event(f)))
    .collect();
    programs.push((
        "python boto3 (same init)".to_owned(),
        vec![python, stack::root().join("scripts/boto3_handler.py").to_string_lossy().into_owned()],
        "{}".to_owned(),
    ));

    println!(
        "| function | init to first /next, median of {runs} (ms) | first event (ms) | peak RSS (MB) | binary (MB) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, program, event) in &programs {
        let mut init = Vec::new();
        let mut first = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..runs {
            let sample = measure(program, name, event).await?;
            init.push(sample.init_ms);
            first.push(sample.first_event_ms);
            rss.push(sample.peak_rss_kib as f64 / 1024.0);
        }
        let size = std::fs::metadata(&program[0]).map(|m| m.len() as f64 / 1_048_576.0).unwrap_or(f64::NAN);
        let size = if name.starts_with("python") { "-".to_owned() } else { format!("{size:.1}") };
        let max_rss = rss.iter().copied().fold(0.0, f64::max);
        println!("| {name} | {:.1} | {:.1} | {max_rss:.1} | {size} |", median(&mut init), median(&mut first));
    }
    Ok(())
}
