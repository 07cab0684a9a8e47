//! Figure 1: `GET /make/NUMBER` on the simulator, beside a bare axum handler (the floor).
//!
//! Both servers run as processes of their own; this process is the CRM sending the commands. The
//! simulated far end rings after 1 ms, answers after 2 ms and hangs up 1 ms later, so every call ends
//! within milliseconds: the tracker then holds only its 500 most recent ended calls, however many are
//! placed, instead of tens of thousands of live ones. The dial rate limit is switched off
//! ([`bridge::DIAL_RATE_LIMIT_OFF`]). Numbers are E.164 (`+44207946xxxx`), so each one is parsed and
//! validated as a CRM's would be.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::runtime::Runtime;

use super::{Plan, Programs};
use crate::bridge::{self, Setup};
use crate::load::{self, Outcome};
use crate::process::{free_port, Launch, Running};
use crate::procfs;
use crate::stats::{mib, ms};
use crate::table::Row;

/// The `/make` URL of the i-th request.
fn make_url(base: &str, i: usize) -> String {
    format!("{base}/make/+44207946{:04}", i % 10_000)
}

/// One server under load: its process and its own keep-alive client.
struct Target {
    name: &'static str,
    running: Running,
    client: reqwest::Client,
}

impl Target {
    async fn fixed_rate(&self, rate: f64, duration: Duration) -> Outcome {
        let (client, base) = (self.client.clone(), self.running.url());
        load::fixed_rate(rate, duration, move |i| {
            let (client, url) = (client.clone(), make_url(&base, i));
            async move { load::timed_get(&client, &url).await }
        })
        .await
        .into_outcome()
    }

    async fn closed_loop(&self, connections: usize, duration: Duration) -> Outcome {
        let base = self.running.url();
        load::closed_loop(&self.client, connections, duration, Arc::new(move |i| make_url(&base, i))).await
    }
}

/// The order in which the two targets run in a round: drawn at random for each round (from the standard
/// library's per-process random hash keys), so that nothing periodic on the machine can fall in step
/// with one of them.
fn turns(round: u32) -> [usize; 2] {
    use std::hash::{BuildHasher, RandomState};
    if RandomState::new().hash_one(round) & 1 == 0 {
        [0, 1]
    } else {
        [1, 0]
    }
}

fn merge(into: &mut Outcome, other: Outcome) {
    into.latencies.extend(other.latencies);
    for (why, n) in other.errors {
        *into.errors.entry(why).or_default() += n;
    }
    into.elapsed += other.elapsed;
}

pub fn rows(rt: &Runtime, plan: &Plan, programs: &Programs) -> Vec<Row> {
    measure(rt, plan, programs).unwrap_or_else(|e| vec![Row::failed("1", "`GET /make/NUMBER` on the simulator", &e)])
}

fn measure(rt: &Runtime, plan: &Plan, programs: &Programs) -> Result<Vec<Row>> {
    let port = free_port()?;
    let floor = Launch::new(&programs.bench, &["floor", "--port", &port.to_string()], port)?.start("the bare axum floor")?;
    let setup = Setup { far_end: Some((1, 2, 1)), no_rate_limit: true, notify_url: None, data_under: plan.data_under.clone() };
    let bridge = bridge::start(&programs.headless, &setup)?;
    let mut targets = [
        Target { name: "the floor", running: floor, client: load::client() },
        Target { name: "CallBridge", running: bridge, client: load::client() },
    ];

    let rounds = plan.rounds.max(1);
    let mut fixed = [Outcome::default(), Outcome::default()];
    let mut closed = [Outcome::default(), Outcome::default()];
    let mut spent = [Spent::default(), Spent::default()];
    rt.block_on(async {
        for t in &targets {
            t.fixed_rate(plan.make_rate, plan.warmup).await;
        }
        for round in 0..rounds {
            for i in turns(round) {
                let before = Ticks::now(targets[i].running.pid());
                merge(&mut fixed[i], targets[i].fixed_rate(plan.make_rate, plan.make_duration / rounds).await);
                spent[i].add(before, Ticks::now(targets[i].running.pid()));
            }
        }
        let closed_rounds = plan.closed_rounds.max(1);
        for round in 0..closed_rounds {
            for i in turns(round) {
                merge(&mut closed[i], targets[i].closed_loop(plan.make_connections, plan.make_closed_duration / closed_rounds).await);
            }
        }
    });
    for (t, (f, c)) in targets.iter_mut().zip(fixed.iter().zip(&closed)) {
        t.running.ensure_alive(t.name)?;
        f.ensure_no_errors(&format!("{} at a fixed rate", t.name))?;
        c.ensure_no_errors(&format!("{} in a closed loop", t.name))?;
    }
    let [floor_fixed, bridge_fixed] = &mut fixed;
    let (Some(floor_lat), Some(bridge_lat)) = (floor_fixed.latencies.summary(), bridge_fixed.latencies.summary()) else {
        anyhow::bail!("no request was answered");
    };
    let bridge_rate = bridge_fixed.throughput();
    let bridge_pid = targets[1].running.pid();
    let after = procfs::memory(bridge_pid).map(|m| mib(m.rss_kib)).unwrap_or_else(|e| e.to_string());
    let calls = bridge_lat.count + closed[1].latencies.len();

    let ratio = bridge_lat.p99.as_secs_f64() / floor_lat.p99.as_secs_f64().max(1e-9);
    let p99_met = ratio <= 1.5 && bridge_lat.p99 <= Duration::from_millis(1);
    let share = closed[1].throughput() / closed[0].throughput().max(1e-9);
    let rate = format!("{:.0} req/s", plan.make_rate);
    Ok(vec![
        Row::new("1", format!("`GET /make` p50 at {rate} ({} requests, {bridge_rate:.0} req/s achieved){}", bridge_lat.count, plan.store_note()), ms(bridge_lat.p50))
            .compared(format!("floor {}", ms(floor_lat.p50))),
        Row::new("1", format!("`GET /make` p99 at {rate}"), format!("{} (max {})", ms(bridge_lat.p99), ms(bridge_lat.max)))
            .compared(format!("floor {} (max {}); CallBridge = {ratio:.2} × floor", ms(floor_lat.p99), ms(floor_lat.max)))
            .target("≤ 1.5 × floor p99 and ≤ 1 ms", p99_met),
        Row::new("1", format!("`GET /make` max throughput, closed loop, {} connections{}", plan.make_connections, plan.store_note()), format!("{:.0} req/s", closed[1].throughput()))
            .compared(format!("floor {:.0} req/s; CallBridge = {:.1}% of floor", closed[0].throughput(), share * 100.0))
            .target("≥ 50% of the floor", share >= 0.5),
        Row::new("1", "CPU per request, and CPU time taken by the host, during the fixed-rate rounds", spent[1].describe(bridge_lat.count))
            .compared(format!("floor {}", spent[0].describe(floor_lat.count))),
        Row::new("1", format!("headless RSS after {calls} `/make` calls"), after),
    ])
}

/// A server's CPU time and the machine's stolen time so far, in clock ticks ([`procfs::TICKS_PER_SECOND`]);
/// `None` where `/proc` cannot say.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    cpu: Option<u64>,
    steal: Option<u64>,
}

impl Ticks {
    fn now(pid: u32) -> Ticks {
        Ticks { cpu: procfs::cpu_ticks(pid).ok(), steal: procfs::steal_ticks().ok() }
    }
}

/// What a server's rounds cost: the CPU time its process used (its work on the requests and whatever
/// they set off, such as simulated call events and history writes), and the time the host took the
/// machine's virtual CPUs away meanwhile. The host taking the CPUs away is one reason a p99 on a
/// shared virtual machine moves from run to run; shown beside each server, it says whether both were
/// measured under like conditions.
#[derive(Debug, Clone, Copy)]
struct Spent {
    cpu: Option<u64>,
    steal: Option<u64>,
}

impl Default for Spent {
    fn default() -> Self {
        Spent { cpu: Some(0), steal: Some(0) }
    }
}

impl Spent {
    /// Adds one round; a round that `/proc` could not measure makes the total unknown.
    fn add(&mut self, before: Ticks, after: Ticks) {
        let sum = |total: Option<u64>, before: Option<u64>, after: Option<u64>| Some(total? + after?.saturating_sub(before?));
        self.cpu = sum(self.cpu, before.cpu, after.cpu);
        self.steal = sum(self.steal, before.steal, after.steal);
    }

    fn describe(&self, requests: usize) -> String {
        let ms_per_tick = 1000 / procfs::TICKS_PER_SECOND;
        let cpu = match self.cpu {
            Some(ticks) => format!("{:.0} µs CPU per request", (ticks * ms_per_tick) as f64 * 1000.0 / requests.max(1) as f64),
            None => "CPU not measured".to_owned(),
        };
        let steal = match self.steal {
            Some(ticks) => format!("{} ms stolen", ticks * ms_per_tick),
            None => "steal not measured".to_owned(),
        };
        format!("{cpu}, {steal}")
    }
}
