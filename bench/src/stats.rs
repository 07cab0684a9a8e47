//! Latency samples and the few numbers the table shows of them.

use std::time::Duration;

/// Latencies of one run, in arrival order until [`Latencies::summary`] sorts them.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
}

/// p50, p99 and max of a run.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.samples.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// `None` when there are no samples.
    pub fn summary(&mut self) -> Option<Summary> {
        if self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        Some(Summary { count: self.samples.len(), p50: self.percentile(50.0), p99: self.percentile(99.0), max: self.samples[self.samples.len() - 1] })
    }

    /// Nearest-rank percentile of the sorted samples.
    fn percentile(&self, p: f64) -> Duration {
        let n = self.samples.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.samples[rank.clamp(1, n) - 1]
    }
}

/// `0.213 ms`, `12.4 ms`, `1.20 s`.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.3} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// `14.2 MiB` from KiB. The targets' "MB" are read as MiB, the unit `/proc` reports in (the stricter
/// reading, 10^6 bytes, would be 5% tighter; the README says which).
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l = Latencies::default();
        for i in (1..=200).rev() {
            l.push(Duration::from_micros(i));
        }
        let s = l.summary().expect("samples");
        assert_eq!((s.count, s.p50, s.p99, s.max), (200, Duration::from_micros(100), Duration::from_micros(198), Duration::from_micros(200)));
        assert!(Latencies::default().summary().is_none());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(ms(Duration::from_micros(213)), "0.213 ms");
        assert_eq!(ms(Duration::from_micros(12_400)), "12.4 ms");
        assert_eq!(ms(Duration::from_millis(1_200)), "1.20 s");
        assert_eq!(mib(15 * 1024), "15.0 MiB");
    }
}
