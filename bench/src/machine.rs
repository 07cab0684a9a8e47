//! The machine the figures were measured on, for the line under the table: a latency means little
//! without the CPU, the cores and how busy the machine already was.

use std::process::Command;

/// What the table says about the machine.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
    pub rustc: String,
    /// The 1-minute load average when the run started (other work on the machine skews figures).
    pub load: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned())))
            .unwrap_or_else(|| std::env::consts::OS.to_owned());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            memory_gib: mem_kib / 1024.0 / 1024.0,
            os,
            kernel: first_line(std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()).unwrap_or_else(|| "unknown".into()),
            rustc: first_line(Command::new("rustc").arg("-V").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()))
                .unwrap_or_else(|| "unknown".into()),
            load: load_average(),
        }
    }

    /// One line for under the table.
    pub fn line(&self) -> String {
        format!(
            "{} ({} cores), {:.1} GiB RAM, {}, kernel {}, {}; load average at start {}",
            self.cpu, self.cores, self.memory_gib, self.os, self.kernel, self.rustc, self.load
        )
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn first_line(text: Option<String>) -> Option<String> {
    text.and_then(|t| t.lines().next().map(|l| l.trim().to_owned())).filter(|l| !l.is_empty())
}
