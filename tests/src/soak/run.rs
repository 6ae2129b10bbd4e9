//! Runs a day through the functions: the platforms' senders (three deliveries per callback, one
//! overlapping the first in flight, retried on every non-2xx on the sender's schedule, at most
//! `concurrency` requests in flight), the SQS event sources of status-normalize and
//! signin-trust-check, and the functions' schedules as `infra/template.yaml` declares them.
//! Every invocation runs under its function's timeout (the future dropped at the deadline is the
//! process killed). After the senders are done and the queues drained, injection stops, the
//! schedules run on for a while, both dead-letter queues are redriven once, and everything
//! drains again.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;
use chrono::Utc;
use serde_json::{Value, json};

use domain::app::intake::Incoming;
use domain::ports::clock::Clock;
use domain::testing::faults::SeededRng;

use super::day::Day;
use super::sim::{EventSource, SoakClock};

/// The functions under test, as their triggers call them.
#[async_trait(?Send)]
pub trait Functions {
    /// webhook-verify with one HTTP request: the HTTP status production answers.
    async fn webhook(&self, incoming: Incoming) -> u16;
    /// status-normalize with an SQS batch or an ops event, allowed to work for `time_left`;
    /// its answer as JSON, or why the invocation failed.
    async fn normalize(&self, event: Value, time_left: Duration) -> Result<Value, String>;
    /// signin-trust-check, likewise.
    async fn trust(&self, event: Value, time_left: Duration) -> Result<Value, String>;
    /// refund-dual-check with an ops event.
    async fn refunds(&self, event: Value) -> Value;
}

/// Which function a schedule invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// status-normalize.
    Normalize,
    /// signin-trust-check.
    Trust,
    /// refund-dual-check.
    Refunds,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Normalize => "status-normalize",
            Target::Trust => "signin-trust-check",
            Target::Refunds => "refund-dual-check",
        }
    }
}

/// One schedule of the template.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The function.
    pub target: Target,
    /// Its rate.
    pub every: Duration,
    /// The event it sends.
    pub input: Value,
}

/// What the template says about the simulated functions and queues.
#[derive(Debug, Clone)]
pub struct Template {
    /// `rate(…)` schedules of status-normalize, signin-trust-check and refund-dual-check.
    pub schedules: Vec<Schedule>,
    /// Function timeouts.
    pub timeouts: BTreeMap<Target, Duration>,
    /// webhook-verify's timeout.
    pub webhook_timeout: Duration,
    /// The inbound and trust queues' visibility timeout.
    pub visibility: Duration,
    /// Their `maxReceiveCount`.
    pub max_receives: u32,
}

fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u64 = n.trim().parse().ok()?;
    let seconds = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * seconds))
}

/// Reads `infra/template.yaml`.
pub fn template() -> Template {
    let path = crate::stack::root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("template: {e}"));
    let global_timeout = t["Globals"]["Function"]["Timeout"].as_u64().unwrap_or(3);
    let timeout =
        |id: &str| Duration::from_secs(t["Resources"][id]["Properties"]["Timeout"].as_u64().unwrap_or(global_timeout));
    let functions = [
        ("StatusNormalizeFunction", Target::Normalize),
        ("SigninTrustCheckFunction", Target::Trust),
        ("RefundDualCheckFunction", Target::Refunds),
    ];
    let mut schedules = Vec::new();
    let mut timeouts = BTreeMap::new();
    for (id, target) in functions {
        timeouts.insert(target, timeout(id));
        let Some(events) = t["Resources"][id]["Properties"]["Events"].as_mapping() else { continue };
        for event in events.values() {
            if event["Type"].as_str() != Some("ScheduleV2") {
                continue;
            }
            let props = &event["Properties"];
            let (Some(every), Some(input)) = (
                props["ScheduleExpression"].as_str().and_then(rate),
                props["Input"].as_str().and_then(|i| serde_json::from_str(i).ok()),
            ) else {
                continue;
            };
            schedules.push(Schedule { target, every, input });
        }
    }
    let queue = &t["Resources"]["InboundQueue"]["Properties"];
    Template {
        schedules,
        timeouts,
        webhook_timeout: timeout("WebhookVerifyFunction"),
        visibility: Duration::from_secs(queue["VisibilityTimeout"].as_u64().unwrap_or(30)),
        max_receives: u32::try_from(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap_or(5)).unwrap_or(5),
    }
}

/// How the run is timed and sized.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The sender's waits between attempts after a non-2xx; it gives up after the last.
    pub retry_schedule: Vec<Duration>,
    /// The overlapping copy starts within this of the first.
    pub overlap: Duration,
    /// The third copy comes within this of the first.
    pub third_within: Duration,
    /// Requests in flight at once, at most.
    pub concurrency: usize,
    /// Pollers per SQS event source (the event source mapping's concurrency).
    pub pollers: usize,
    /// Long-poll wait of a receive.
    pub poll_wait: Duration,
    /// Time kept back from a function's deadline to publish and answer (the `MARGIN` of the
    /// SQS functions' `main.rs`).
    pub margin: Duration,
    /// Schedules of the template, their rates divided by this (1 in process).
    pub schedule_scale: u32,
    /// How long the schedules run on once the queues are drained.
    pub settle: Duration,
}

/// What the platforms' senders saw of one callback.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Some delivery got a 2xx.
    pub acked: bool,
    /// HTTP attempts over its three deliveries.
    pub attempts: u32,
    /// Deliveries that gave up without a 2xx.
    pub gave_up: u32,
}

/// What happened during a run.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    /// Per callback (by index in the day).
    pub outcomes: Vec<Outcome>,
    /// HTTP status → count over every attempt (0: killed at webhook-verify's timeout).
    pub statuses: BTreeMap<u16, u64>,
    /// Most requests in flight at once.
    pub peak_in_flight: usize,
    /// Invocations per function.
    pub invocations: BTreeMap<&'static str, u64>,
    /// Invocations killed at their timeout, per function.
    pub killed: BTreeMap<&'static str, u64>,
    /// Invocations that returned an error, per function.
    pub errors: BTreeMap<&'static str, u64>,
    /// Dead letters before the redrive (inbound, trust).
    pub dlq_before_redrive: (usize, usize),
    /// Dead letters after it and the final drain.
    pub dlq_left: (usize, usize),
    /// Messages still in the queues at the end.
    pub queue_left: (usize, usize),
    /// Virtual time from the day's start to the end of the run.
    pub virtual_span: chrono::Duration,
}

struct Run<'a> {
    f: &'a dyn Functions,
    clock: &'a SoakClock,
    timing: &'a Timing,
    template: &'a Template,
    semaphore: tokio::sync::Semaphore,
    in_flight: Cell<usize>,
    record: RefCell<RunRecord>,
    stop: Cell<bool>,
}

impl Run<'_> {
    fn count(&self, map: fn(&mut RunRecord) -> &mut BTreeMap<&'static str, u64>, target: Target) {
        *map(&mut self.record.borrow_mut()).entry(target.name()).or_default() += 1;
    }

    /// One delivery of a callback: attempts until a 2xx or the schedule runs out.
    async fn deliver(&self, day: &Day, n: usize, start: chrono::DateTime<Utc>) -> (bool, u32) {
        self.clock.sleep_until(start).await;
        let callback = &day.callbacks[n];
        let mut attempts = 0;
        for wait in std::iter::once(Duration::ZERO).chain(self.timing.retry_schedule.iter().copied()) {
            tokio::time::sleep(wait).await;
            let Ok(_permit) = self.semaphore.acquire().await else { return (false, attempts) };
            attempts += 1;
            self.in_flight.set(self.in_flight.get() + 1);
            {
                let mut record = self.record.borrow_mut();
                record.peak_in_flight = record.peak_in_flight.max(self.in_flight.get());
            }
            let incoming = callback.request(self.clock.now());
            let status =
                tokio::time::timeout(self.template.webhook_timeout, self.f.webhook(incoming)).await.unwrap_or(0);
            self.in_flight.set(self.in_flight.get() - 1);
            *self.record.borrow_mut().statuses.entry(status).or_default() += 1;
            if (200..300).contains(&status) {
                return (true, attempts);
            }
        }
        (false, attempts)
    }

    /// The three deliveries of one callback.
    async fn callback(&self, day: &Day, n: usize, offsets: (Duration, Duration)) {
        let first = day.callbacks[n].send_at;
        let at = |d: Duration| first + chrono::Duration::from_std(d).unwrap_or_default();
        let (a, b, c) = futures::join!(
            self.deliver(day, n, first),
            self.deliver(day, n, at(offsets.0)),
            self.deliver(day, n, at(offsets.1)),
        );
        let mut record = self.record.borrow_mut();
        let outcome = &mut record.outcomes[n];
        outcome.acked = a.0 || b.0 || c.0;
        outcome.attempts = a.1 + b.1 + c.1;
        outcome.gave_up = u32::from(!a.0) + u32::from(!b.0) + u32::from(!c.0);
    }

    /// An SQS event source mapping: batches of up to 10 into the function, deleting what it
    /// did not report failed; nothing is deleted when the invocation fails or is killed.
    async fn poll(&self, source: &dyn EventSource, target: Target) {
        let timeout = self.template.timeouts.get(&target).copied().unwrap_or(Duration::from_secs(30));
        let time_left = timeout.saturating_sub(self.timing.margin);
        while !self.stop.get() {
            let batch: Vec<SqsMessage> = source.receive(10, self.timing.poll_wait).await;
            if batch.is_empty() {
                continue;
            }
            let event = json!({ "Records": batch });
            self.count(|r| &mut r.invocations, target);
            let call = async {
                match target {
                    Target::Normalize => self.f.normalize(event, time_left).await,
                    _ => self.f.trust(event, time_left).await,
                }
            };
            let failed: Vec<String> = match tokio::time::timeout(timeout, call).await {
                Ok(Ok(answer)) => answer["batchItemFailures"]
                    .as_array()
                    .map(|f| f.iter().filter_map(|i| i["itemIdentifier"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
                Ok(Err(_)) => {
                    self.count(|r| &mut r.errors, target);
                    continue;
                }
                Err(_) => {
                    self.count(|r| &mut r.killed, target);
                    continue;
                }
            };
            for record in &batch {
                if !failed.iter().any(|id| Some(id) == record.message_id.as_ref())
                    && let Some(receipt) = &record.receipt_handle
                {
                    source.delete(receipt).await;
                }
            }
        }
    }

    /// One schedule: its event every `every`, under the function's timeout.
    async fn schedule(&self, schedule: &Schedule) {
        let timeout = self.template.timeouts.get(&schedule.target).copied().unwrap_or(Duration::from_secs(30));
        let every = schedule.every / self.timing.schedule_scale.max(1);
        let mut next = tokio::time::Instant::now() + every;
        while !self.stop.get() {
            let now = tokio::time::Instant::now();
            if now < next {
                // Wake at least every poll wait to notice the end of the run.
                tokio::time::sleep((next - now).min(self.timing.poll_wait)).await;
                continue;
            }
            next += every;
            self.count(|r| &mut r.invocations, schedule.target);
            let input = schedule.input.clone();
            let time_left = timeout.saturating_sub(self.timing.margin);
            let call = async {
                match schedule.target {
                    Target::Normalize => self.f.normalize(input, time_left).await.map(|_| ()),
                    Target::Trust => self.f.trust(input, time_left).await.map(|_| ()),
                    Target::Refunds => {
                        self.f.refunds(input).await;
                        Ok(())
                    }
                }
            };
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => self.count(|r| &mut r.errors, schedule.target),
                Err(_) => self.count(|r| &mut r.killed, schedule.target),
            }
        }
    }

    /// Waits until both queues are empty (or `limit` passes).
    async fn drained(&self, inbound: &dyn EventSource, trust: &dyn EventSource, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < until && (inbound.depth().await > 0 || trust.depth().await > 0) {
            tokio::time::sleep(self.timing.poll_wait).await;
        }
    }
}

/// Runs `day` through `functions`; `faults(false)` is called once the senders are done and the
/// queues drained.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    day: &Day,
    functions: &dyn Functions,
    inbound: &dyn EventSource,
    trust: &dyn EventSource,
    clock: &SoakClock,
    timing: &Timing,
    template: &Template,
    faults: &dyn Fn(bool),
    seed: u64,
) -> RunRecord {
    let run = Run {
        f: functions,
        clock,
        timing,
        template,
        semaphore: tokio::sync::Semaphore::new(timing.concurrency.max(1)),
        in_flight: Cell::new(0),
        record: RefCell::new(RunRecord {
            outcomes: vec![Outcome::default(); day.callbacks.len()],
            ..RunRecord::default()
        }),
        stop: Cell::new(false),
    };
    let mut rng = SeededRng::new(seed ^ 0x5eed);
    let offsets: Vec<(Duration, Duration)> = (0..day.callbacks.len())
        .map(|_| {
            let overlap =
                Duration::from_micros(rng.below(u64::try_from(timing.overlap.as_micros()).unwrap_or(0).max(1)));
            let third =
                Duration::from_millis(rng.below(u64::try_from(timing.third_within.as_millis()).unwrap_or(0).max(1)));
            (overlap, third)
        })
        .collect();
    let max_wait: Duration = timing.retry_schedule.iter().sum();
    let run = &run;
    let controller = async {
        futures::future::join_all((0..day.callbacks.len()).map(|n| run.callback(day, n, offsets[n]))).await;
        run.drained(inbound, trust, max_wait).await;
        faults(false);
        tokio::time::sleep(timing.settle).await;
        run.drained(inbound, trust, timing.settle).await;
        let before = (inbound.dead_letters().await, trust.dead_letters().await);
        run.record.borrow_mut().dlq_before_redrive = before;
        inbound.redrive().await;
        trust.redrive().await;
        run.drained(inbound, trust, timing.settle).await;
        tokio::time::sleep(timing.settle).await;
        run.drained(inbound, trust, timing.settle).await;
        let left = (inbound.dead_letters().await, trust.dead_letters().await);
        let queued = (inbound.depth().await, trust.depth().await);
        let mut record = run.record.borrow_mut();
        record.dlq_left = left;
        record.queue_left = queued;
        drop(record);
        run.stop.set(true);
    };
    let pollers = futures::future::join_all(
        (0..timing.pollers.max(1))
            .map(|_| run.poll(inbound, Target::Normalize))
            .chain((0..timing.pollers.max(1).div_ceil(2)).map(|_| run.poll(trust, Target::Trust))),
    );
    let schedules = futures::future::join_all(template.schedules.iter().map(|s| run.schedule(s)));
    let start = clock.now();
    futures::join!(controller, pollers, schedules);
    let mut record = run.record.borrow().clone();
    record.virtual_span = clock.now() - start;
    record
}
