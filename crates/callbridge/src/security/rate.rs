//! The dial rate limit: a token bucket over dial commands from the listener.
//!
//! `[security] dials_per_minute` (default 10) both sets the refill rate and the bucket's size, so a CRM
//! user can place that many calls in quick succession and then one every `60 / n` seconds. A dial past
//! the limit is answered 429 with `Retry-After`. It bounds what a runaway script or a page hammering the
//! listener can cost, and how often the desktop can be asked to approve a call.

use std::time::Duration;

use tokio::time::Instant;

/// See the module documentation. Kept as the generic cell rate algorithm (a token bucket expressed
/// as the time the bucket would next be full), which needs only exact integer durations.
#[derive(Debug)]
pub struct DialRate {
    per_minute: u32,
    /// When the bucket would be empty again if nothing more were taken: the "theoretical arrival time".
    /// `None` until the first dial: the bucket starts full.
    full_at: Option<Instant>,
}

impl DialRate {
    /// `per_minute` dials a minute, that many at once; 0 means no limit.
    pub fn new(per_minute: u32) -> Self {
        DialRate { per_minute, full_at: None }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes one dial at `now`, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        // One dial "costs" `interval`; the bucket holds `per_minute` of them.
        let interval = Duration::from_secs(60) / self.per_minute;
        let tolerance = interval * (self.per_minute - 1);
        let tat = self.full_at.map_or(now, |at| at.max(now));
        let ahead = tat - now;
        if ahead > tolerance {
            return Err(ahead - tolerance);
        }
        self.full_at = Some(tat + interval);
        Ok(())
    }
}

/// A wait as whole seconds for `Retry-After`, never 0.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_dials_come_at_the_refill_rate() {
        let start = Instant::now();
        let mut rate = DialRate::new(6);
        for _ in 0..6 {
            rate.take(start).expect("within the burst");
        }
        let wait = rate.take(start).expect_err("past the burst");
        assert_eq!(retry_after_secs(wait), 10);
        assert!(rate.take(start + Duration::from_secs(9)).is_err());
        rate.take(start + Duration::from_secs(10)).expect("one refilled");
        assert!(rate.take(start + Duration::from_secs(10)).is_err());
        // Idle time refills up to the bucket's size, no further.
        for _ in 0..6 {
            rate.take(start + Duration::from_secs(3_600)).expect("refilled");
        }
        assert!(rate.take(start + Duration::from_secs(3_600)).is_err());
    }

    #[test]
    fn zero_means_no_limit_and_retry_after_rounds_up() {
        let mut rate = DialRate::new(0);
        let now = Instant::now();
        for _ in 0..1_000 {
            rate.take(now).expect("unlimited");
        }
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(3_001)), 4);
    }
}
