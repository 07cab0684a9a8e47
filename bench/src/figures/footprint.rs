//! Figure 3, headless: memory and wake-ups of `callbridge serve` doing nothing — freshly started, and
//! again after it has placed and notified some calls (an all-day bridge has: number metadata loaded,
//! the HTTP client's connection pool used, ended calls in the tracker).
//!
//! RSS is `VmRSS` (shared library pages included), private dirty is what the process alone costs
//! (`smaps_rollup`). Wake-ups are voluntary context switches of all its threads over a window: a thread
//! that wakes up on a timer and goes back to sleep counts one.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use tokio::runtime::Runtime;

use super::{Plan, Programs};
use crate::bridge::{self, Setup};
use crate::crm::TimingCrm;
use crate::load;
use crate::procfs::{self, Memory};
use crate::stats::mib;
use crate::table::Row;

/// Memory, processes and wake-ups per second of a process tree at idle.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    pub memory: Memory,
    pub processes: usize,
    pub wakeups_per_sec: f64,
}

/// Waits `settle`, then measures the tree under `pid` while nothing is asked of it for `window`.
pub fn idle(pid: u32, settle: Duration, window: Duration) -> Result<Idle> {
    std::thread::sleep(settle);
    let (memory, processes) = procfs::tree_memory(pid)?;
    let started = Instant::now();
    let before = procfs::tree_wakeups(pid)?;
    std::thread::sleep(window);
    let after = procfs::tree_wakeups(pid)?;
    // Reading /proc wakes none of the measured threads.
    let wakeups_per_sec = after.saturating_sub(before) as f64 / started.elapsed().as_secs_f64();
    Ok(Idle { memory, processes, wakeups_per_sec })
}

/// Some of everything: outgoing calls that end by themselves, incoming calls rung and ended, and
/// their notifications to the CRM.
async fn use_it(base: &str, crm: &TimingCrm) -> Result<()> {
    let client = load::client();
    for i in 0..20 {
        load::timed_get(&client, &format!("{base}/make/+44207946{i:04}")).await.map_err(anyhow::Error::msg)?;
    }
    for i in 0..5 {
        let rung: serde_json::Value =
            client.post(format!("{base}/api/v1/simulate/incoming")).json(&json!({ "number": format!("+3312345678{i}") })).send().await?.json().await?;
        let id = rung["call_id"].as_str().context("no call id")?;
        client.post(format!("{base}/api/v1/hangup")).json(&json!({ "call_id": id })).send().await?.error_for_status()?;
    }
    // 20 ended outgoing calls and 5 incoming ones that each notify twice.
    let deadline = Instant::now() + Duration::from_secs(10);
    while crm.count() < 30 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::ensure!(crm.count() >= 30, "the CRM received {} of 30 notifications", crm.count());
    Ok(())
}

pub fn rows(rt: &Runtime, plan: &Plan, programs: &Programs) -> Vec<Row> {
    measure(rt, plan, programs).unwrap_or_else(|e| vec![Row::failed("3", "headless idle footprint", &e)])
}

fn idle_rows(when: &str, threads: usize, idle: &Idle, window: Duration) -> [Row; 3] {
    [
        Row::new("3", format!("headless idle RSS, {when} ({threads} threads)"), mib(idle.memory.rss_kib))
            .target("≤ 15 MiB", idle.memory.rss_kib <= 15 * 1024),
        Row::new("3", format!("headless idle private dirty memory, {when}"), mib(idle.memory.private_dirty_kib)),
        Row::new("3", format!("headless wake-ups at idle, {when} (over {} s)", window.as_secs_f64()), format!("{:.2}/s", idle.wakeups_per_sec))
            .target("≤ 1/s", idle.wakeups_per_sec <= 1.0),
    ]
}

fn measure(rt: &Runtime, plan: &Plan, programs: &Programs) -> Result<Vec<Row>> {
    let crm = rt.block_on(TimingCrm::start())?;
    let setup = Setup { far_end: Some((1, 2, 1)), no_rate_limit: true, notify_url: Some(crm.url_template()), data_under: None };
    let mut bridge = bridge::start(&programs.headless, &setup)?;
    let fresh = idle(bridge.pid(), plan.idle_settle, plan.idle_window)?;
    let fresh_threads = procfs::threads(bridge.pid())?;
    rt.block_on(use_it(&bridge.url(), &crm))?;
    let used = idle(bridge.pid(), plan.idle_settle, plan.idle_window)?;
    let used_threads = procfs::threads(bridge.pid())?;
    bridge.ensure_alive("the headless callbridge")?;
    let mut rows = Vec::from(idle_rows("fresh", fresh_threads, &fresh, plan.idle_window));
    rows.extend(idle_rows("after 25 calls and 30 notifications", used_threads, &used, plan.idle_window));
    Ok(rows)
}
