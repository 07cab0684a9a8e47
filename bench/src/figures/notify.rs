//! Figure 2: a call event happens → the CRM's server receives the notification.
//!
//! Events are injected into the running headless binary the way a phone system reports them: through
//! its generic PBX webhook (`POST /webhooks/generic`, ELMA365-style JSON), a `NotifyStart` of an
//! incoming call (an `incoming` event) and then its `NotifyEnd` (an `ended` event), so every call makes
//! two events. They go through the webhook parser, the tracker, the notifier and the outbox like any
//! provider's. Each call has a number of its own; the config has a GET rule for each event whose URL
//! carries `$event` and `$callerid`, the [`TimingCrm`] in this process notes when each arrives, and each
//! arrival is matched to the moment its webhook request left here. The latency therefore includes the
//! HTTP request into CallBridge: an upper bound of the engine's own part.
//!
//! Which outbox did the work (in-memory, or the durable SQLite one once the engine has it) is read from
//! what the engine left in its home, and named in the table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

use super::{Plan, Programs};
use crate::bridge::{self, Setup};
use crate::crm::{Arrival, TimingCrm};
use crate::load;
use crate::procfs;
use crate::stats::{mib, ms, Latencies};
use crate::table::Row;

/// How long notifications may keep arriving after the last event was injected.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// One call: its number and when its two events were sent.
#[derive(Debug, Clone)]
struct Injected {
    number: String,
    incoming_sent: Instant,
    hangup_sent: Instant,
}

/// What one run at a fixed rate came to.
#[derive(Debug)]
struct Run {
    latencies: Latencies,
    events: usize,
    /// Notifications that arrived within [`DRAIN_TIMEOUT`] of the last injection.
    delivered: usize,
    /// Events per second injected (below the rate asked for when CallBridge could not keep up).
    injected_rate: f64,
    /// Events per second the CRM received while events were being injected.
    received_rate: f64,
    /// From the last injection to the last notification.
    drained_in: Duration,
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Result<Value, String> {
    let response = client.post(url).json(&body).send().await.map_err(|e| load::describe(&e))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| load::describe(&e))?;
    if !status.is_success() {
        return Err(format!("HTTP {} {}", status.as_u16(), body["error"].as_str().unwrap_or("")));
    }
    Ok(body)
}

/// A phone system reports an incoming call to CallBridge, then its end: two events.
async fn one_call(client: reqwest::Client, base: String, i: usize) -> Result<Injected, String> {
    let number = format!("+44207{i:06}");
    let event = |kind: &str| json!({ "event": kind, "direction": "in", "srcPhone": number, "dstPhone": "0003", "callId": format!("bench-{i}") });
    let url = format!("{base}/webhooks/generic");
    let incoming_sent = Instant::now();
    post(&client, url.clone(), event("NotifyStart")).await?;
    let hangup_sent = Instant::now();
    post(&client, url, event("NotifyEnd")).await?;
    Ok(Injected { number, incoming_sent, hangup_sent })
}

/// Injects `rate` events per second for `duration` and waits for every notification. Calls are
/// numbered from `first`: each run's calls must be new to CallBridge (its tracker rightly ignores
/// events of a call it saw end).
async fn run(crm: &TimingCrm, base: &str, rate: f64, duration: Duration, first: usize) -> Result<Run> {
    crm.take();
    let client = load::client();
    let started = Instant::now();
    let base = base.to_owned();
    let batch = load::fixed_rate(rate / 2.0, duration, move |i| one_call(client.clone(), base.clone(), first + i)).await;
    let injected_until = Instant::now();
    if !batch.errors.is_empty() {
        let list: Vec<String> = batch.errors.iter().map(|(why, n)| format!("{n} × {why}")).collect();
        bail!("injecting events failed: {}", list.join(", "));
    }
    let expected = batch.done.len() * 2;
    while crm.count() < expected && injected_until.elapsed() < DRAIN_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let arrivals = crm.take();
    let latencies = match_arrivals(&batch.done, &arrivals)?;
    let window_end = started + duration;
    let in_window = arrivals.iter().filter(|a| a.at <= window_end).count();
    let last = arrivals.iter().map(|a| a.at).max().unwrap_or(injected_until);
    Ok(Run {
        latencies,
        events: expected,
        delivered: arrivals.len(),
        injected_rate: batch.started_rate() * 2.0,
        received_rate: in_window as f64 / duration.as_secs_f64(),
        drained_in: last.saturating_duration_since(injected_until),
    })
}

/// What a run that did not deliver everything in time says.
fn late(run: &Run) -> String {
    format!("only {} of {} notifications arrived within {} s of the last event", run.delivered, run.events, DRAIN_TIMEOUT.as_secs())
}

/// Each arrival's latency from the request that caused it; every event must arrive exactly once.
fn match_arrivals(injected: &[Injected], arrivals: &[Arrival]) -> Result<Latencies> {
    let sent: HashMap<&str, &Injected> = injected.iter().map(|i| (i.number.as_str(), i)).collect();
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut latencies = Latencies::default();
    for a in arrivals {
        let call = sent.get(a.number.as_str()).with_context(|| format!("a notification for an unknown call {:?}", a.number))?;
        let from = match a.event.as_str() {
            "incoming" => call.incoming_sent,
            "ended" => call.hangup_sent,
            other => bail!("a notification for an unexpected event {other:?}"),
        };
        *seen.entry((a.number.as_str(), a.event.as_str())).or_default() += 1;
        latencies.push(a.at.saturating_duration_since(from));
    }
    if let Some(((call, event), n)) = seen.iter().find(|(_, n)| **n > 1) {
        bail!("the {event} notification of call {call} arrived {n} times");
    }
    Ok(latencies)
}

/// Samples a process's RSS (and notes the most file descriptors it had open) until stopped.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<(Duration, u64)>, usize)>,
}

impl RssSampler {
    fn start(pid: u32, every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let (mut samples, mut fds) = (Vec::new(), 0);
            while !flag.load(Ordering::Relaxed) {
                if let Ok(m) = procfs::memory(pid) {
                    samples.push((started.elapsed(), m.rss_kib));
                }
                fds = fds.max(procfs::open_files(pid).unwrap_or(0));
                std::thread::sleep(every);
            }
            (samples, fds)
        });
        RssSampler { stop, thread }
    }

    fn finish(self) -> (Vec<(Duration, u64)>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Whether memory stayed flat: RSS at the end is at most 5% (and at least 1 MiB) above RSS half-way.
fn flat(samples: &[(Duration, u64)]) -> Option<(u64, u64, u64, bool)> {
    let (half, end) = (samples.get(samples.len() / 2)?.1, samples.last()?.1);
    let max = samples.iter().map(|s| s.1).max()?;
    let allowance = (half / 20).max(1024);
    Some((half, end, max, end <= half + allowance))
}

pub fn rows(rt: &Runtime, plan: &Plan, programs: &Programs) -> Vec<Row> {
    measure(rt, plan, programs).unwrap_or_else(|e| vec![Row::failed("2", "event → CRM receives the notification", &e)])
}

fn measure(rt: &Runtime, plan: &Plan, programs: &Programs) -> Result<Vec<Row>> {
    let crm = rt.block_on(TimingCrm::start())?;
    let setup = Setup { far_end: None, no_rate_limit: false, notify_url: Some(crm.url_template()), data_under: plan.data_under.clone() };
    let mut bridge = bridge::start(&programs.headless, &setup)?;
    let base = bridge.url();
    rt.block_on(run(&crm, &base, plan.notify_rate, plan.warmup.max(Duration::from_millis(200)), 0))?;
    let slow = rt.block_on(run(&crm, &base, plan.notify_rate, plan.notify_duration, 100_000));
    let sampler = RssSampler::start(bridge.pid(), plan.rss_every);
    let fast = rt.block_on(run(&crm, &base, plan.sustain_rate, plan.sustain_duration, 200_000));
    let (samples, max_fds) = sampler.finish();
    bridge.ensure_alive("the headless callbridge")?;
    let outbox = bridge::outbox_kind(&bridge);

    let mut rows = Vec::new();
    let rate = format!("{:.0} events/s", plan.notify_rate);
    let store = plan.store_note();
    match slow {
        Ok(slow) if slow.delivered < slow.events => rows.push(
            Row::new("2", format!("PBX webhook event → CRM at {rate} ({outbox}){store}"), late(&slow)).target("p50 ≤ 2 ms, p99 ≤ 10 ms", false),
        ),
        Ok(mut slow) => {
            let s = slow.latencies.summary().context("no latencies")?;
            rows.push(
                Row::new("2", format!("PBX webhook event → CRM receives the notification, p50 at {rate} ({} events, {outbox}){store}", s.count), ms(s.p50))
                    .target("≤ 2 ms", s.p50 <= Duration::from_millis(2)),
            );
            rows.push(
                Row::new("2", format!("PBX webhook event → CRM, p99 at {rate}"), format!("{} (max {})", ms(s.p99), ms(s.max)))
                    .target("≤ 10 ms", s.p99 <= Duration::from_millis(10)),
            );
        }
        Err(e) => rows.push(Row::failed("2", format!("event → CRM at {rate}"), &e)),
    }
    let sustain = format!("sustained {:.0} events/s for {:.0} s", plan.sustain_rate, plan.sustain_duration.as_secs_f64());
    match fast {
        Ok(fast) if fast.delivered < fast.events => rows.push(
            Row::new("2", format!("{sustain} ({outbox}){store}"), format!("{:.0}/s injected; {}", fast.injected_rate, late(&fast)))
                .target(format!("≥ {:.0} events/s, no backlog", plan.sustain_rate), false),
        ),
        Ok(mut fast) => {
            let f = fast.latencies.summary().context("no latencies")?;
            let kept_up = fast.injected_rate >= plan.sustain_rate * 0.99 && fast.received_rate >= plan.sustain_rate * 0.99;
            let sustained = kept_up && fast.drained_in < Duration::from_secs(1);
            rows.push(
                Row::new("2", format!("{sustain} ({} events, {outbox}){store}", fast.events), format!(
                    "{:.0}/s injected, {:.0}/s received; the last arrived {} after injection stopped; p50 {}, p99 {}",
                    fast.injected_rate,
                    fast.received_rate,
                    ms(fast.drained_in),
                    ms(f.p50),
                    ms(f.p99)
                ))
                .target(format!("≥ {:.0} events/s, no backlog", plan.sustain_rate), sustained),
            );
        }
        Err(e) => rows.push(Row::failed("2", sustain, &e)),
    }
    let (half, end, max, is_flat) = flat(&samples).context("no RSS samples")?;
    rows.push(
        Row::new("2", format!("RSS during the sustained run, sampled every {}", ms(plan.rss_every)), format!("half-way {}, end {}, max {}; at most {max_fds} open files", mib(half), mib(end), mib(max)))
            .target("flat: end ≤ half-way + 5% (min 1 MiB)", is_flat),
    );
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_arrival_is_timed_from_the_request_that_caused_it() {
        let t0 = Instant::now();
        let injected = [Injected { number: "+1".into(), incoming_sent: t0, hangup_sent: t0 + Duration::from_millis(10) }];
        let arrivals = [
            Arrival { event: "incoming".into(), number: "+1".into(), at: t0 + Duration::from_millis(1) },
            Arrival { event: "ended".into(), number: "+1".into(), at: t0 + Duration::from_millis(13) },
        ];
        let mut l = match_arrivals(&injected, &arrivals).expect("matched");
        let s = l.summary().expect("samples");
        assert_eq!((s.p50, s.max), (Duration::from_millis(1), Duration::from_millis(3)));
        let twice = [arrivals[0].clone(), arrivals[0].clone()];
        assert!(match_arrivals(&injected, &twice).is_err());
        let stranger = [Arrival { event: "incoming".into(), number: "+2".into(), at: t0 }];
        assert!(match_arrivals(&injected, &stranger).is_err());
    }

    #[test]
    fn memory_is_flat_when_the_second_half_does_not_grow() {
        let s = |v: &[u64]| v.iter().enumerate().map(|(i, k)| (Duration::from_secs(i as u64), *k)).collect::<Vec<_>>();
        assert!(flat(&s(&[10_000, 20_000, 20_000, 20_500])).is_some_and(|f| f.3));
        assert!(flat(&s(&[10_000, 20_000, 20_000, 30_000])).is_some_and(|f| !f.3));
    }
}
