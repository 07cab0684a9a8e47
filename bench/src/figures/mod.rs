//! The five figures of the benchmark (docs/performance.md), one module each, and the [`Plan`] that says how long each runs.
//!
//! Every figure returns table rows; a measurement that goes wrong becomes a `FAILED` row with the
//! error rather than stopping the run, so one broken part does not hide the others' figures.

pub mod desktop;
pub mod footprint;
pub mod make;
pub mod notify;
pub mod size;
pub mod startup;

use std::path::PathBuf;
use std::time::Duration;

/// How long and how hard each figure runs. [`Plan::full`] is the real benchmark; [`Plan::quick`] runs
/// every measurement briefly, to check that the harness still works (CI), and its figures mean nothing.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    /// Requests before the measured ones, to open connections and warm caches (discarded).
    pub warmup: Duration,
    /// `/make` at a fixed rate: requests per second, and for how long (per server, split in rounds).
    pub make_rate: f64,
    pub make_duration: Duration,
    /// `/make` closed loop: connections, and for how long (per server, split in rounds).
    pub make_connections: usize,
    pub make_closed_duration: Duration,
    /// Rounds the `/make` runs are split into. Each round runs both servers, one after the other, in an
    /// order drawn at random, so that whatever else slows the machine down hits both alike. Short rounds
    /// matter: a virtual machine's host can slow every process on it for tens of milliseconds at a time
    /// (on the machine these figures come from, about every 1.5 s under load), and a latency's p99 is
    /// made of exactly such moments; in long turns, one server can draw more of them than the other.
    /// The fixed-rate runs are split into `rounds`, the closed-loop runs into `closed_rounds`.
    pub rounds: u32,
    pub closed_rounds: u32,
    /// Event → CRM latency: events per second and for how long.
    pub notify_rate: f64,
    pub notify_duration: Duration,
    /// Event → CRM sustained: events per second, for how long, and how often RSS is sampled.
    pub sustain_rate: f64,
    pub sustain_duration: Duration,
    pub rss_every: Duration,
    /// Idle: time to settle after start, then the window wake-ups are counted over.
    pub idle_settle: Duration,
    pub idle_window: Duration,
    /// Start-up: how many fresh starts.
    pub startups: usize,
    /// Incoming popups rung with no window host running (and as many with one running).
    pub popup_rings: usize,
    /// Figures 1 and 2 keep the engine's store under this directory (a tmpfs, `--store-on-tmpfs`)
    /// instead of its home on disk, to show what the disk's `fsync` costs.
    pub data_under: Option<PathBuf>,
}

impl Plan {
    /// Said after the figures 1 and 2 measured with the store off the disk.
    pub fn store_note(&self) -> &'static str {
        if self.data_under.is_some() {
            " [store on tmpfs: no fsync cost]"
        } else {
            ""
        }
    }
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            quick: false,
            warmup: Duration::from_secs(2),
            make_rate: 1_000.0,
            make_duration: Duration::from_secs(60),
            make_connections: 8,
            make_closed_duration: Duration::from_secs(10),
            rounds: 120,
            closed_rounds: 40,
            notify_rate: 100.0,
            notify_duration: Duration::from_secs(30),
            sustain_rate: 2_000.0,
            sustain_duration: Duration::from_secs(60),
            rss_every: Duration::from_secs(1),
            idle_settle: Duration::from_secs(5),
            idle_window: Duration::from_secs(30),
            startups: 20,
            popup_rings: 7,
            data_under: None,
        }
    }

    pub fn quick() -> Plan {
        Plan {
            quick: true,
            warmup: Duration::from_millis(100),
            make_rate: 1_000.0,
            make_duration: Duration::from_millis(500),
            make_connections: 4,
            make_closed_duration: Duration::from_millis(500),
            rounds: 1,
            closed_rounds: 1,
            notify_rate: 100.0,
            notify_duration: Duration::from_secs(1),
            sustain_rate: 400.0,
            sustain_duration: Duration::from_secs(2),
            rss_every: Duration::from_millis(250),
            idle_settle: Duration::from_millis(500),
            idle_window: Duration::from_secs(2),
            startups: 3,
            popup_rings: 1,
            data_under: None,
        }
    }
}

/// The programs to measure.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The headless `callbridge`.
    pub headless: PathBuf,
    /// This benchmark binary (it serves the floor).
    pub bench: PathBuf,
    /// The desktop app, if built.
    pub desktop: Option<PathBuf>,
    /// How to open and close the desktop app's settings window (shell commands), if known.
    pub open_settings: Option<String>,
    pub close_settings: Option<String>,
    /// The Linux package, if built.
    pub deb: Option<PathBuf>,
    /// Whether these are release builds (sizes of debug builds are not compared with targets).
    pub release: bool,
}
