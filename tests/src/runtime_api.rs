//! A mock of the Lambda Runtime API (the HTTP interface a Lambda bootstrap polls), so a
//! release binary can be started as Lambda would start it, handed events, and timed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::Notify;

/// What the function answered to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `POST …/response` with this body.
    Response(String),
    /// `POST …/error` with this body.
    Error(String),
}

#[derive(Default)]
struct Inner {
    events: VecDeque<(String, String)>,
    answers: Vec<(String, Answer)>,
    init_error: Option<String>,
    next_calls: Vec<Instant>,
}

/// A running mock Runtime API.
#[derive(Clone)]
pub struct RuntimeApi {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    /// Its address, for `AWS_LAMBDA_RUNTIME_API`.
    pub addr: SocketAddr,
}

async fn next(State(api): State<RuntimeApi>) -> impl IntoResponse {
    api.inner.lock().unwrap().next_calls.push(Instant::now());
    api.changed.notify_waiters();
    loop {
        let notified = api.changed.notified();
        if let Some((id, event)) = api.inner.lock().unwrap().events.pop_front() {
            let mut headers = HeaderMap::new();
            headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).unwrap());
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            headers.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).unwrap());
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:cn-north-1:123456789012:function:local"),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
            );
            return (StatusCode::OK, headers, event);
        }
        notified.await;
    }
}

async fn respond(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    api.record(id, Answer::Response(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    api.record(id, Answer::Error(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.inner.lock().unwrap().init_error = Some(String::from_utf8_lossy(&body).into_owned());
    api.changed.notify_waiters();
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts a mock on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = RuntimeApi { inner: Arc::default(), changed: Arc::new(Notify::new()), addr };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        api
    }

    fn record(&self, id: String, answer: Answer) {
        self.inner.lock().unwrap().answers.push((id, answer));
        self.changed.notify_waiters();
    }

    /// Queues an event; returns its request id.
    pub fn push(&self, event: impl Into<String>) -> String {
        let mut inner = self.inner.lock().unwrap();
        let id = format!("req-{}", inner.events.len() + inner.answers.len() + 1);
        inner.events.push_back((id.clone(), event.into()));
        drop(inner);
        self.changed.notify_waiters();
        id
    }

    /// Waits for the answer to request `id`.
    pub async fn answer(&self, id: &str, limit: std::time::Duration) -> Option<Answer> {
        tokio::time::timeout(limit, async {
            loop {
                let notified = self.changed.notified();
                if let Some((_, answer)) = self.inner.lock().unwrap().answers.iter().find(|(i, _)| i == id) {
                    return answer.clone();
                }
                notified.await;
            }
        })
        .await
        .ok()
    }

    /// Waits until the function has asked for its `n`-th event; returns when it did.
    pub async fn nth_next(&self, n: usize, limit: std::time::Duration) -> Option<Instant> {
        tokio::time::timeout(limit, async {
            loop {
                let notified = self.changed.notified();
                if let Some(at) = self.inner.lock().unwrap().next_calls.get(n - 1) {
                    return *at;
                }
                notified.await;
            }
        })
        .await
        .ok()
    }

    /// The body the function posted to `/runtime/init/error`, if any.
    pub fn init_error(&self) -> Option<String> {
        self.inner.lock().unwrap().init_error.clone()
    }
}

/// The environment Lambda gives a function process (region from `AWS_REGION`).
pub fn lambda_env(api: &RuntimeApi, function: &str) -> Vec<(String, String)> {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "cn-north-1".to_owned());
    [
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
