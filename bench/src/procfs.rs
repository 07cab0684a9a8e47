//! What the kernel says about a running process: its memory, how often its threads wake up, and its
//! children. Read from `/proc`, so these figures exist on Linux only; elsewhere every function returns
//! an error that says so, and the table shows "not measured on this OS".
//!
//! A desktop app is several processes (the Tauri shell and its WebKit children), so memory and
//! wake-ups are also summed over a whole process tree.

use std::io;

/// Memory of one process or a tree of them, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size (`VmRSS`): everything in RAM, shared libraries included.
    pub rss_kib: u64,
    /// Private dirty pages (`Private_Dirty` of `smaps_rollup`): what this process alone costs.
    pub private_dirty_kib: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;
    fn add(self, other: Memory) -> Memory {
        Memory { rss_kib: self.rss_kib + other.rss_kib, private_dirty_kib: self.private_dirty_kib + other.private_dirty_kib }
    }
}

#[cfg(target_os = "linux")]
fn read(path: String) -> io::Result<String> {
    std::fs::read_to_string(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// The number on a `Key:   123 kB` (or `Key: 123`) line.
#[cfg(target_os = "linux")]
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(not(target_os = "linux"))]
fn unsupported<T>() -> io::Result<T> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "not measured on this OS (/proc is Linux's)"))
}

/// One process's memory.
#[cfg(target_os = "linux")]
pub fn memory(pid: u32) -> io::Result<Memory> {
    let status = read(format!("/proc/{pid}/status"))?;
    let rss_kib = field(&status, "VmRSS")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no VmRSS for process {pid} (a zombie?)")))?;
    let rollup = read(format!("/proc/{pid}/smaps_rollup"))?;
    let private_dirty_kib = field(&rollup, "Private_Dirty").unwrap_or(0);
    Ok(Memory { rss_kib, private_dirty_kib })
}

#[cfg(not(target_os = "linux"))]
pub fn memory(_pid: u32) -> io::Result<Memory> {
    unsupported()
}

/// Voluntary context switches of all of a process's threads: each time a thread goes back to sleep
/// after waking up counts one, so the difference over an interval is the wake-ups in it.
#[cfg(target_os = "linux")]
pub fn wakeups(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("status");
        // A thread that exits between listing and reading simply no longer counts.
        if let Ok(status) = std::fs::read_to_string(path) {
            total += field(&status, "voluntary_ctxt_switches").unwrap_or(0);
        }
    }
    Ok(total)
}

#[cfg(not(target_os = "linux"))]
pub fn wakeups(_pid: u32) -> io::Result<u64> {
    unsupported()
}

/// Clock ticks a second in `/proc`'s CPU times (`USER_HZ`): 100 on every Linux architecture this runs on
/// (https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html).
pub const TICKS_PER_SECOND: u64 = 100;

/// CPU time a process has used so far, user and system, in clock ticks (fields 14 and 15 of
/// `/proc/PID/stat`, counted after the command name, which may itself hold spaces and parentheses).
#[cfg(target_os = "linux")]
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = read(format!("/proc/{pid}/stat"))?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/stat: no CPU times in {stat:?}"));
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(bad)?;
    // After the name come the state (field 3) and fields 4 to 13; utime and stime are fields 14 and 15.
    let mut fields = after_name.split_whitespace().skip(11);
    let mut next = || fields.next().and_then(|f| f.parse::<u64>().ok()).ok_or_else(bad);
    Ok(next()? + next()?)
}

#[cfg(not(target_os = "linux"))]
pub fn cpu_ticks(_pid: u32) -> io::Result<u64> {
    unsupported()
}

/// Time the hypervisor gave this machine's virtual CPUs to something else while they had work, summed
/// over CPUs, in clock ticks: the `steal` column of `/proc/stat`'s `cpu` line (0 on bare metal).
#[cfg(target_os = "linux")]
pub fn steal_ticks() -> io::Result<u64> {
    let stat = read("/proc/stat".to_owned())?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "/proc/stat: no steal time on its cpu line");
    let line = stat.lines().find(|l| l.starts_with("cpu ")).ok_or_else(bad)?;
    // cpu user nice system idle iowait irq softirq steal
    line.split_whitespace().nth(8).and_then(|f| f.parse().ok()).ok_or_else(bad)
}

#[cfg(not(target_os = "linux"))]
pub fn steal_ticks() -> io::Result<u64> {
    unsupported()
}

/// A process's command name (`/proc/PID/comm`, at most 15 bytes: `WebKitWebProces`).
#[cfg(target_os = "linux")]
pub fn name(pid: u32) -> io::Result<String> {
    Ok(read(format!("/proc/{pid}/comm"))?.trim_end().to_owned())
}

#[cfg(not(target_os = "linux"))]
pub fn name(_pid: u32) -> io::Result<String> {
    unsupported()
}

/// Number of threads of a process.
#[cfg(target_os = "linux")]
pub fn threads(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/task"))?.count())
}

#[cfg(not(target_os = "linux"))]
pub fn threads(_pid: u32) -> io::Result<usize> {
    unsupported()
}

/// Open file descriptors of a process (its sockets among them).
#[cfg(target_os = "linux")]
pub fn open_files(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[cfg(not(target_os = "linux"))]
pub fn open_files(_pid: u32) -> io::Result<usize> {
    unsupported()
}

/// `root` and all its descendants, root first.
#[cfg(target_os = "linux")]
pub fn tree(root: u32) -> io::Result<Vec<u32>> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // The command name may hold spaces and parentheses: the fields start after the last ')'.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    Ok(found)
}

#[cfg(not(target_os = "linux"))]
pub fn tree(_root: u32) -> io::Result<Vec<u32>> {
    unsupported()
}

/// Memory of `root` and its descendants together, and how many processes that is.
pub fn tree_memory(root: u32) -> io::Result<(Memory, usize)> {
    let pids = tree(root)?;
    let mut total = memory(root)?;
    for pid in &pids[1..] {
        // A child that exits while we read does not count.
        if let Ok(m) = memory(*pid) {
            total = total + m;
        }
    }
    Ok((total, pids.len()))
}

/// Wake-ups of `root` and its descendants together.
pub fn tree_wakeups(root: u32) -> io::Result<u64> {
    let pids = tree(root)?;
    let mut total = wakeups(root)?;
    for pid in &pids[1..] {
        total += wakeups(*pid).unwrap_or(0);
    }
    Ok(total)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_threads_and_is_its_own_tree_root() {
        let me = std::process::id();
        let m = memory(me).expect("memory");
        assert!(m.rss_kib > 0 && m.private_dirty_kib > 0, "{m:?}");
        assert!(threads(me).expect("threads") >= 1);
        assert_eq!(tree(me).expect("tree").first(), Some(&me));
    }

    #[test]
    fn a_child_process_is_in_the_tree() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep");
        let tree = tree(std::process::id()).expect("tree");
        let _ = child.kill();
        let _ = child.wait();
        assert!(tree.contains(&child.id()), "{tree:?} lacks {}", child.id());
    }

    #[test]
    fn a_sleeping_process_wakes_up_and_is_counted() {
        // A child of its own, not this test process: other tests' threads end while this one runs,
        // and their switches leave the sum with them. The shell waits for a line, then sleeps five
        // times (each wait for `sleep` is at least one voluntary switch), says so and waits again.
        use std::io::{BufRead, Write};
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read go; for i in 1 2 3 4 5; do sleep 0.01; done; echo slept; read end"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let before = wakeups(child.id()).expect("wakeups before");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "go").expect("go");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("slept");
        let after = wakeups(child.id()).expect("wakeups after");
        drop(stdin);
        let _ = child.wait();
        assert_eq!(line.trim(), "slept");
        assert!(after >= before + 5, "voluntary switches went from {before} to {after} over five sleeps");
    }

    #[test]
    fn cpu_spent_by_this_process_is_counted() {
        let me = std::process::id();
        let before = cpu_ticks(me).expect("cpu ticks");
        // Spin until the count has risen by 3 ticks (30 ms of CPU), however busy the machine is; a
        // count that never moves (a wrong field, say) fails once the generous deadline has passed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut x = 0u64;
        let mut now = before;
        while now < before + 3 && std::time::Instant::now() < deadline {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            now = cpu_ticks(me).expect("cpu ticks");
        }
        assert!(now >= before + 3, "CPU ticks went from {before} to {now} while spinning");
        steal_ticks().expect("steal ticks");
    }
}
