//! The load generator: HTTP requests from this process to a server in another, over loopback with
//! keep-alive connections.
//!
//! Two shapes of load:
//! * [`fixed_rate`] (open loop): requests start on a schedule, whether or not earlier ones have
//!   answered, as a CRM's users would send them; gives latency at a given rate.
//! * [`closed_loop`]: a few connections each send the next request as soon as the last one answered;
//!   gives the maximum throughput.
//!
//! A latency is measured from just before the request is handed to the client to the end of the answer's
//! body. It is not measured from the scheduled start: Tokio's timer ticks every millisecond, and its
//! jitter would swamp sub-millisecond figures. The achieved rate is reported beside it instead, so a
//! generator that fell behind shows.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::stats::Latencies;

/// A client that keeps connections open and reuses them, HTTP/1.1 as a CRM's browser would use. Idle
/// connections are let go after 5 s, before CallBridge's listener closes them (it allows 10 s for the
/// next request's headers): reusing one it is closing just then fails the request.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("cannot build the load generator's HTTP client: {e}"))
}

/// What a run of requests came to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub latencies: Latencies,
    /// Failed requests by reason (`HTTP 429`, `connect error`, …).
    pub errors: BTreeMap<String, usize>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn requests(&self) -> usize {
        self.latencies.len() + self.errors.values().sum::<usize>()
    }

    /// Answered requests per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn record(&mut self, result: Result<Duration, String>) {
        match result {
            Ok(latency) => self.latencies.push(latency),
            Err(reason) => *self.errors.entry(reason).or_default() += 1,
        }
    }

    /// An error naming the failures, if there were any.
    pub fn ensure_no_errors(&self, what: &str) -> anyhow::Result<()> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = self.errors.iter().map(|(why, n)| format!("{n} × {why}")).collect();
        anyhow::bail!("{what}: {} of {} requests failed: {}", self.errors.values().sum::<usize>(), self.requests(), list.join(", "))
    }
}

/// One request: its latency, or why it failed. The body is read to the end.
pub async fn timed_get(client: &reqwest::Client, url: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let response = client.get(url).send().await.map_err(|e| describe(&e))?;
    let status = response.status();
    response.bytes().await.map_err(|e| describe(&e))?;
    let latency = started.elapsed();
    if status.is_success() {
        Ok(latency)
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect error".into()
    } else {
        format!("request error: {e}")
    }
}

/// The results of jobs started on a schedule: what each returned, and the failures by reason.
#[derive(Debug)]
pub struct Batch<T> {
    pub done: Vec<T>,
    pub errors: BTreeMap<String, usize>,
    /// From the first start to the last.
    pub sending: Duration,
    /// From the first start to the last result.
    pub elapsed: Duration,
}

impl<T> Batch<T> {
    fn record(&mut self, result: Result<Result<T, String>, tokio::task::JoinError>) {
        match result.unwrap_or_else(|e| Err(format!("task failed: {e}"))) {
            Ok(t) => self.done.push(t),
            Err(why) => *self.errors.entry(why).or_default() += 1,
        }
    }

    /// Jobs started per second.
    pub fn started_rate(&self) -> f64 {
        (self.done.len() + self.errors.values().sum::<usize>()) as f64 / self.sending.as_secs_f64().max(1e-9)
    }
}

impl Batch<Duration> {
    /// Latencies of requests made by [`fixed_rate`].
    pub fn into_outcome(self) -> Outcome {
        let mut latencies = Latencies::default();
        for d in self.done {
            latencies.push(d);
        }
        Outcome { latencies, errors: self.errors, elapsed: self.elapsed }
    }
}

/// At most this many jobs of [`fixed_rate`] run at once. A server that falls behind would otherwise be
/// sent thousands of new connections; this way the generator falls behind instead, and the achieved
/// rate shows it.
pub const MAX_IN_FLIGHT: usize = 256;

/// Starts `job(i)` for i = 0, 1, 2, … at `rate` per second for `duration`, without waiting for
/// earlier ones (up to [`MAX_IN_FLIGHT`] at once), and collects their results. When the server cannot
/// keep up, fewer jobs start within `duration` ([`Batch::started_rate`] shows it); none start after.
pub async fn fixed_rate<T, F, Fut>(rate: f64, duration: Duration, job: F) -> Batch<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let total = (rate * duration.as_secs_f64()).round() as usize;
    let mut batch = Batch { done: Vec::with_capacity(total), errors: BTreeMap::new(), sending: Duration::ZERO, elapsed: Duration::ZERO };
    let mut sent = 0;
    while sent < total && started.elapsed() < duration {
        ticker.tick().await;
        let due = ((rate * started.elapsed().as_secs_f64()) as usize).min(total);
        while sent < due && started.elapsed() < duration {
            while tasks.len() >= MAX_IN_FLIGHT {
                if let Some(result) = tasks.join_next().await {
                    batch.record(result);
                }
            }
            tasks.spawn(job(sent));
            sent += 1;
        }
    }
    batch.sending = started.elapsed();
    while let Some(result) = tasks.join_next().await {
        batch.record(result);
    }
    batch.elapsed = started.elapsed();
    batch
}

/// `connections` loops, each sending `GET url_for(i)` as soon as the previous answer arrived, for
/// `duration`.
pub async fn closed_loop(client: &reqwest::Client, connections: usize, duration: Duration, url_for: Arc<dyn Fn(usize) -> String + Send + Sync>) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let mut loops = JoinSet::new();
    for c in 0..connections {
        let (client, url_for) = (client.clone(), Arc::clone(&url_for));
        loops.spawn(async move {
            let mut outcome = Outcome::default();
            let mut i = c;
            while Instant::now() < deadline {
                outcome.record(timed_get(&client, &url_for(i)).await);
                i += connections;
            }
            outcome
        });
    }
    let mut total = Outcome::default();
    while let Some(result) = loops.join_next().await {
        match result {
            Ok(outcome) => {
                total.latencies.extend(outcome.latencies);
                for (why, n) in outcome.errors {
                    *total.errors.entry(why).or_default() += n;
                }
            }
            Err(e) => *total.errors.entry(format!("task failed: {e}")).or_default() += 1,
        }
    }
    total.elapsed = started.elapsed();
    total
}
