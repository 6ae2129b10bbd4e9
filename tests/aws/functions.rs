//! Each function binary starts as Lambda starts it (against a mock Runtime API), reads its
//! configuration, and answers every sample event in `events/<function>/` without panicking.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tests::runtime_api::{Answer, RuntimeApi, lambda_env};
use tests::stack;

const FUNCTIONS: [&str; 7] = [
    "webhook-verify",
    "status-normalize",
    "refund-dual-check",
    "signin-trust-check",
    "health-report",
    "notify",
    "order-sync",
];

fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| stack::root().join("target"), PathBuf::from);
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn sample_events(function: &str) -> Vec<(String, String)> {
    let dir = stack::root().join("events").join(function);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

#[tokio::test]
async fn every_function_answers_every_sample_event() {
    let env = stack::env();
    for function in FUNCTIONS {
        let events = sample_events(function);
        assert!(!events.is_empty(), "events/{function}/ has sample events");
        let api = RuntimeApi::start().await;
        let mut child = tokio::process::Command::new(binary(function))
            .envs(env.iter())
            .envs(lambda_env(&api, function))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for (file, event) in events {
            let id = api.push(event);
            let answer = api.answer(&id, Duration::from_secs(30)).await;
            match answer {
                Some(Answer::Response(body)) => {
                    assert!(
                        serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                        "{function} {file}: answer is JSON: {body}"
                    );
                }
                other => panic!("{function} {file}: expected a response, got {other:?}"),
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "{function} is still running after its events");
        child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn a_function_without_its_configuration_exits_at_init_naming_the_variable() {
    let env = stack::env();
    for function in FUNCTIONS {
        for missing in ["ORDERHUB_STAGE", "STATS_TABLE"] {
            let api = RuntimeApi::start().await;
            let output = tokio::process::Command::new(binary(function))
                .env_clear()
                .envs(env.iter().filter(|(k, _)| k.as_str() != missing))
                .envs(lambda_env(&api, function))
                .output()
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{function} without {missing}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{function}: one line: {stderr}");
            assert!(stderr.contains(missing), "{function}: names {missing}: {stderr}");
            assert!(!stderr.contains("panicked"), "{function}: {stderr}");
            assert!(
                api.nth_next(1, Duration::from_millis(10)).await.is_none(),
                "{function} asked for an event without config"
            );
        }
    }
}
