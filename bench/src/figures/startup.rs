//! Figure 4, headless: from `exec` to the listener answering `GET /health` with 200, over several fresh
//! starts (each in a new home, so no run profits from another's files; the binary itself is in the page
//! cache after the first, as it is on a machine that started it before).

use std::time::Duration;

use anyhow::Result;

use super::{Plan, Programs};
use crate::bridge::{self, Setup};
use crate::stats::ms;
use crate::table::Row;

pub fn rows(plan: &Plan, programs: &Programs) -> Vec<Row> {
    measure(plan, programs).unwrap_or_else(|e| vec![Row::failed("4", "headless start-up", &e)])
}

fn measure(plan: &Plan, programs: &Programs) -> Result<Vec<Row>> {
    let mut times = Vec::with_capacity(plan.startups);
    for _ in 0..plan.startups.max(1) {
        let bridge = bridge::start(&programs.headless, &Setup::default())?;
        times.push(bridge.started_in);
    }
    times.sort_unstable();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    Ok(vec![Row::new("4", format!("headless start-up: exec → `GET /health` answers (median of {})", times.len()), format!("{} (max {})", ms(median), ms(max)))
        .target("≤ 100 ms", median <= Duration::from_millis(100))])
}
