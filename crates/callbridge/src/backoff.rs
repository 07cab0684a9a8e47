//! Exponential backoff with a cap: how long to wait before trying again after failures in a row.
//!
//! The wait after the first failure is `initial`; it doubles after each further one, up to `max`.
//! [`Backoff::delay_with_jitter`] spreads it ("equal jitter": a uniformly random wait between half of
//! it and all of it), so that many clients that failed together do not all come back at once.
//! [`Retries`] counts the failures of a reconnect loop: [`Retries::next_delay`] before each new try,
//! [`Retries::reset`] once a try went well.

use std::time::Duration;

/// The shape of the waits: the first one, and the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The wait after `failures` failures in a row: `initial × 2^(failures-1)`, at most `max` (no
    /// failure yet counts as one). Never overflows, however many failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// [`Self::delay`] with equal jitter: between half of it and all of it, chosen by `random` (any
    /// number; the same number gives the same wait).
    pub fn delay_with_jitter(&self, failures: u32, random: u64) -> Duration {
        let full = self.delay(failures);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(if spread == 0 { 0 } else { random % spread.saturating_add(1) })
    }

    /// A failure counter for a loop that keeps trying, starting with none.
    pub const fn retries(self) -> Retries {
        Retries { backoff: self, failures: 0 }
    }
}

/// The failures in a row of a loop that keeps trying (a reconnect, a restart), and the wait they call
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    backoff: Backoff,
    failures: u32,
}

impl Retries {
    /// Counts one more failure and returns the wait before the next try: `initial` the first time,
    /// then twice as long each time, up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.backoff.delay(self.failures)
    }

    /// A try went well: the next wait is `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The failures counted since the last [`Self::reset`].
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_wait_doubles_from_initial_up_to_the_cap() {
        let b = Backoff::new(SECOND, Duration::from_secs(60));
        let waits: Vec<u64> = (1..=9).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(0), SECOND, "no failure yet waits like the first");
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60), "no overflow at any count");
        let huge = Backoff::new(Duration::MAX / 2, Duration::MAX);
        assert_eq!(huge.delay(40), Duration::MAX, "the product saturates instead of overflowing");
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait_and_depends_on_the_random_number() {
        let b = Backoff::new(SECOND, Duration::from_secs(60));
        for n in 1..=10 {
            for random in [0, 1, 499, 500, 501, 12_345, u64::MAX] {
                let full = b.delay(n);
                let jittered = b.delay_with_jitter(n, random);
                assert!(jittered >= full / 2 && jittered <= full, "{n} {random}: {jittered:?} vs {full:?}");
            }
        }
        assert_ne!(b.delay_with_jitter(3, 0), b.delay_with_jitter(3, 1_000));
        assert_eq!(b.delay_with_jitter(3, 7), b.delay_with_jitter(3, 7));
        let zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.delay_with_jitter(5, u64::MAX), Duration::ZERO);
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert!(huge.delay_with_jitter(1, u64::MAX) >= Duration::MAX / 2, "no overflow in the spread");
    }

    #[test]
    fn retries_double_after_each_failure_and_start_over_after_a_success() {
        let mut r = Backoff::new(Duration::from_millis(100), Duration::from_millis(500)).retries();
        let waits: Vec<u128> = (0..5).map(|_| r.next_delay().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(r.failures(), 5);
        r.reset();
        assert_eq!(r.failures(), 0);
        assert_eq!(r.next_delay(), Duration::from_millis(100));
        assert_eq!(r.next_delay(), Duration::from_millis(200));
    }

    /// The durable outbox's retry waits are these: `RetryPolicy::backoff(failures)` is
    /// `Backoff::new(initial, max_delay).delay(failures)`, and `backoff_with_jitter` is `delay_with_jitter`.
    #[test]
    fn the_outbox_retry_waits_are_the_same_backoff() {
        use crate::notify::durable::RetryPolicy;
        let policy = RetryPolicy { initial: Duration::from_millis(1_500), max_delay: Duration::from_secs(90), max_age: Duration::from_secs(3_600) };
        let b = Backoff::new(policy.initial, policy.max_delay);
        for failures in [0, 1, 2, 3, 7, 8, 30, 31, 32, u32::MAX] {
            assert_eq!(policy.backoff(failures), b.delay(failures), "{failures}");
            for random in [0, 1, 777, 1 << 40, u64::MAX] {
                assert_eq!(policy.backoff_with_jitter(failures, random), b.delay_with_jitter(failures, random), "{failures} {random}");
            }
        }
    }
}
