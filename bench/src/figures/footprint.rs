//! Figure 3, headless: memory and wake-ups of a freshly started `callbridge serve` doing nothing.
//!
//! RSS is `VmRSS` (shared library pages included), private dirty is what the process alone costs
//! (`smaps_rollup`). Wake-ups are voluntary context switches of all its threads over a window: a thread
//! that wakes up on a timer and goes back to sleep counts one.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Plan, Programs};
use crate::bridge::{self, Setup};
use crate::procfs::{self, Memory};
use crate::stats::mib;
use crate::table::Row;

/// Memory, threads and wake-ups per second of a process tree at idle.
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

pub fn rows(plan: &Plan, programs: &Programs) -> Vec<Row> {
    measure(plan, programs).unwrap_or_else(|e| vec![Row::failed("3", "headless idle footprint", &e)])
}

fn measure(plan: &Plan, programs: &Programs) -> Result<Vec<Row>> {
    let mut bridge = bridge::start(&programs.headless, &Setup::default())?;
    let threads = procfs::threads(bridge.pid())?;
    let idle = idle(bridge.pid(), plan.idle_settle, plan.idle_window)?;
    bridge.ensure_alive("the headless callbridge")?;
    Ok(vec![
        Row::new("3", format!("headless idle RSS ({threads} threads)"), mib(idle.memory.rss_kib)).target("≤ 15 MiB", idle.memory.rss_kib <= 15 * 1024),
        Row::new("3", "headless idle private dirty memory", mib(idle.memory.private_dirty_kib)),
        Row::new("3", format!("headless wake-ups at idle (over {} s)", plan.idle_window.as_secs_f64()), format!("{:.2}/s", idle.wakeups_per_sec))
            .target("≤ 1/s", idle.wakeups_per_sec <= 1.0),
    ])
}
