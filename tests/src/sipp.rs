//! Runs sipp (Debian's `sip-tester`) as the far end of real SIP calls, with the scenarios in
//! `tests/sipp/`. Each run gets its own ports and a message log the test can read while it runs;
//! the process is killed if the test ends first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A scenario file in `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sipp").join(name)
}

/// A loopback port free for both UDP and TCP right now (SIP listens on both), never handed out twice
/// by this process.
///
/// Ports come from below Linux's ephemeral range (32768–60999), stepping by 4 from an offset taken
/// from the process id: a port from `bind(0)` could be taken again before the program it was meant
/// for binds it — by a test running in parallel, by the source port of any outgoing connection, or
/// by a client connecting to itself while it retries a port nobody listens on yet. sipp also uses
/// the ports just above its media port, hence the step.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SLOTS: u32 = 3_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, std::process::id() % SLOTS, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SLOTS {
        let slot = NEXT.fetch_add(1, Ordering::SeqCst) % SLOTS;
        let port = u16::try_from(FIRST + slot * 4).expect("below 32768");
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SLOTS * 4);
}

/// A running sipp.
#[derive(Debug)]
pub struct Sipp {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// How a sipp run ended.
#[derive(Debug)]
pub struct Outcome {
    /// sipp's exit status: 0 when every call of the scenario completed.
    pub code: Option<i32>,
    /// Every SIP message sent and received.
    pub messages: String,
    /// sipp's screen and error log, for failure messages.
    pub report: String,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }
}

impl Sipp {
    /// The far end of an outgoing call: waits for one INVITE on a free port, rings, answers, and
    /// expects a BYE (`far_end_answers.xml`).
    pub fn far_end() -> Sipp {
        Sipp::run("far_end_answers.xml", &[])
    }

    /// A caller: sends one INVITE for `service` to `target` from `caller`, expects to be answered, then
    /// a BYE (`caller.xml`).
    pub fn caller(target: SocketAddr, service: &str, caller: &str) -> Sipp {
        Sipp::run("caller.xml", &[&target.to_string(), "-s", service, "-key", "caller", caller])
    }

    fn run(scenario_name: &str, extra: &[&str]) -> Sipp {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let media = free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(scenario(scenario_name))
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &media.to_string()])
            .args(["-m", "1", "-nostdin", "-recv_timeout", "60000", "-timeout", "120s", "-timeout_error"])
            .args(["-trace_msg", "-message_file", &path("messages.log")])
            .args(["-trace_err", "-error_file", &path("errors.log")])
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("screen.log")).map(Stdio::from).unwrap_or(Stdio::null()))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).map(Stdio::from).unwrap_or(Stdio::null()));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run sipp ({e}); install it with scripts/deps.sh test (Debian package sip-tester)"));
        Sipp { child: Some(child), port, dir }
    }

    /// The port sipp listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SIP messages logged so far.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }

    /// Waits for sipp to finish its scenario (up to `timeout`; then it is killed and counts as failed).
    pub async fn finish(mut self, timeout: Duration) -> Outcome {
        let mut child = self.child.take().expect("sipp runs");
        let deadline = tokio::time::Instant::now() + timeout;
        let code = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status.code();
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let report = format!(
            "--- sipp stderr\n{}\n--- errors.log\n{}\n--- screen\n{}",
            read("stderr.log"),
            read("errors.log"),
            read("screen.log")
        );
        Outcome { code, messages: self.messages(), report }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
