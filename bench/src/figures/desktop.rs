//! Figures 3 and 4 for the desktop app: start-up, idle memory and wake-ups of all its processes
//! together (the Tauri shell and any WebKit children), and memory after the settings window was opened
//! and closed.
//!
//! The app is measured as "a process tree started by a command": it is started in a private home with a
//! config whose listener port is known, start-up is timed to its listener's first `/health` answer, and
//! memory is summed over the tree. Without a display, a private Xvfb server is started for it. The
//! settings window is opened and closed by shell commands, which run with the app's environment
//! (DISPLAY, HOME, …) and `CALLBRIDGE_DESKTOP` set to the app's binary. By default they are what a
//! user does: launching the app again with `--open settings` (the running instance opens the window),
//! and the window's close button (`close-window.py` sends WM_DELETE_WINDOW to the window titled
//! "CallBridge Settings"); `--desktop-open-settings` and `--desktop-close-settings` replace them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::footprint::{idle, Idle};
use super::{Plan, Programs};
use crate::process::{free_port, Launch, Running};
use crate::procfs;
use crate::stats::{mib, ms};
use crate::table::Row;

/// Sends WM_DELETE_WINDOW to a window by title (see the script).
const CLOSE_WINDOW_PY: &str = include_str!("../../close-window.py");

/// The settings window's title, as `src-tauri/src/windows.rs` sets it.
const SETTINGS_TITLE: &str = "CallBridge Settings";

/// How long a window gets to open, or its processes to go, before memory is read.
const WINDOW_SETTLE: Duration = Duration::from_secs(3);

/// How long a window's webview process gets to start after the window is opened, or to exit after
/// it is closed.
const WINDOW_WAIT: Duration = Duration::from_secs(20);

/// WebKitGTK's web content process, as `/proc/PID/comm` shows it (15 bytes of `WebKitWebProcess`).
const WEBVIEW_PROCESS: &str = "WebKitWebProces";

pub fn rows(plan: &Plan, programs: &Programs) -> Vec<Row> {
    let Some(desktop) = programs.desktop.as_deref() else {
        let why = if plan.quick {
            "not measured in quick mode unless --desktop is given"
        } else {
            "desktop app not built (no callbridge-desktop beside callbridge)"
        };
        return vec![
            Row::absent("3", "desktop idle RSS, all processes", why, "≤ 130 MiB"),
            Row::absent("3", "desktop idle private dirty, all processes", why, "≤ 35 MiB"),
            Row::absent("3", "desktop after opening and closing settings", why, "RSS within 10 MiB of idle, no webview process left"),
            Row::absent("3", "desktop wake-ups at idle", why, "≤ 1/s"),
            Row::absent("4", "desktop start-up: exec → listener answers", why, "≤ 1 s"),
        ];
    };
    measure(plan, programs, desktop).unwrap_or_else(|e| vec![Row::failed("3", "desktop app footprint", &e)])
}

/// A private X server, killed when dropped.
struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The display to use: `$DISPLAY`, else a private Xvfb on the first free display number.
fn display() -> Result<(String, Option<Xvfb>)> {
    if let Some(d) = std::env::var_os("DISPLAY").filter(|d| !d.is_empty()) {
        return Ok((d.to_string_lossy().into_owned(), None));
    }
    let n = (90..200).find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()).context("no free X display number")?;
    let display = format!(":{n}");
    let child = Command::new("Xvfb")
        .args([display.as_str(), "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("no DISPLAY, and Xvfb cannot be started (apt-get install xvfb)")?;
    let xvfb = Xvfb(child);
    for _ in 0..100 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            return Ok((display, Some(xvfb)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("Xvfb did not start on {display}")
}

/// Runs a settings-window command with the app's environment.
fn run_hook(command: &str, app: &Running, desktop: &Path, display: &str) -> Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("DISPLAY", display)
        .env("HOME", &app.home)
        .env("XDG_CONFIG_HOME", app.home.join("config"))
        .env("XDG_DATA_HOME", app.home.join("data"))
        .env("CALLBRIDGE_CONFIG", app.home.join("config/callbridge/callbridge.toml"))
        .env("CALLBRIDGE_DESKTOP", desktop)
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    anyhow::ensure!(status.success(), "{command:?} failed ({status})");
    Ok(())
}

/// Polls `done` every 100 ms for up to [`WINDOW_WAIT`]; the measurement after it says what it finds.
fn wait_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WINDOW_WAIT;
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The command names of a process's descendants (the WebKit helpers of a desktop app).
fn children(pid: u32) -> Vec<String> {
    let pids = procfs::tree(pid).unwrap_or_default();
    pids.iter().skip(1).filter_map(|p| procfs::name(*p).ok()).collect()
}

fn measure(plan: &Plan, programs: &Programs, desktop: &Path) -> Result<Vec<Row>> {
    let (display, _xvfb) = display()?;
    let port = free_port()?;
    let mut launch = Launch::new(desktop, &[], port)?;
    let config = launch.write("config/callbridge/callbridge.toml", &format!("version = 1\n\n[listener]\nport = {port}\n"))?;
    launch.env("CALLBRIDGE_CONFIG", config).env("DISPLAY", &display);
    let mut app = launch.start("the desktop app")?;
    let settle = plan.idle_settle.max(if plan.quick { Duration::from_secs(2) } else { Duration::from_secs(10) });
    let at_idle: Idle = idle(app.pid(), settle, plan.idle_window)?;
    app.ensure_alive("the desktop app")?;

    let mut rows = vec![
        Row::new("3", format!("desktop idle RSS, all {} processes", at_idle.processes), mib(at_idle.memory.rss_kib))
            .compared("a bare Tauri 2 tray app: about 121 MiB")
            .target("≤ 130 MiB", at_idle.memory.rss_kib <= 130 * 1024),
        Row::new("3", "desktop idle private dirty, all processes", mib(at_idle.memory.private_dirty_kib))
            .compared("a bare Tauri 2 tray app: about 26 MiB")
            .target("≤ 35 MiB", at_idle.memory.private_dirty_kib <= 35 * 1024),
    ];
    let script = app.home.join("close-window.py");
    std::fs::write(&script, CLOSE_WINDOW_PY)?;
    let open = programs.open_settings.clone().unwrap_or_else(|| "\"$CALLBRIDGE_DESKTOP\" --open settings".into());
    let close = programs.close_settings.clone().unwrap_or_else(|| format!("python3 '{}' '{SETTINGS_TITLE}'", script.display()));
    run_hook(&open, &app, desktop, &display)?;
    // A loaded machine may take seconds to start the webview: wait for it, then let the page settle.
    let webview = |pid: u32| children(pid).iter().any(|n| n.starts_with(WEBVIEW_PROCESS));
    wait_until(|| webview(app.pid()));
    std::thread::sleep(WINDOW_SETTLE);
    let (open_mem, open_procs) = procfs::tree_memory(app.pid())?;
    run_hook(&close, &app, desktop, &display)?;
    wait_until(|| !webview(app.pid()));
    std::thread::sleep(WINDOW_SETTLE);
    let (after, procs) = procfs::tree_memory(app.pid())?;
    let left = children(app.pid());
    let webview_left = left.iter().any(|n| n.starts_with(WEBVIEW_PROCESS));
    let grew = after.rss_kib.saturating_sub(at_idle.memory.rss_kib);
    let dirty_grew = after.private_dirty_kib.saturating_sub(at_idle.memory.private_dirty_kib);
    let left = if left.is_empty() { "none".to_owned() } else { left.join(", ") };
    rows.push(
        Row::new(
            "3",
            "desktop after opening and closing settings, all processes",
            format!("{} RSS (+{}), {} private dirty (+{}) in {procs} processes; children left: {left}", mib(after.rss_kib), mib(grew), mib(after.private_dirty_kib), mib(dirty_grew)),
        )
        .compared(format!(
            "idle {} RSS, {} private dirty; window open {} in {open_procs} processes",
            mib(at_idle.memory.rss_kib),
            mib(at_idle.memory.private_dirty_kib),
            mib(open_mem.rss_kib)
        ))
        .target("RSS within 10 MiB of idle, no webview process left", grew <= 10 * 1024 && !webview_left),
    );
    rows.push(
        Row::new("3", format!("desktop wake-ups at idle, all processes (over {} s)", plan.idle_window.as_secs_f64()), format!("{:.2}/s", at_idle.wakeups_per_sec))
            .target("≤ 1/s", at_idle.wakeups_per_sec <= 1.0),
    );
    drop(app);

    let mut times = Vec::new();
    for _ in 0..plan.startups.clamp(1, 5) {
        let port = free_port()?;
        let mut launch = Launch::new(desktop, &[], port)?;
        let config = launch.write("config/callbridge/callbridge.toml", &format!("version = 1\n\n[listener]\nport = {port}\n"))?;
        launch.env("CALLBRIDGE_CONFIG", config).env("DISPLAY", &display);
        times.push(launch.start("the desktop app")?.started_in);
    }
    times.sort_unstable();
    let median = times[times.len() / 2];
    rows.push(
        Row::new("4", format!("desktop start-up: exec → listener answers (median of {})", times.len()), format!("{} (max {})", ms(median), ms(times[times.len() - 1])))
            .target("≤ 1 s", median <= Duration::from_secs(1)),
    );
    Ok(rows)
}
