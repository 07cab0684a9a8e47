//! Figures 3 and 4 for the desktop app: start-up, idle memory and wake-ups of all its processes
//! together (the Tauri shell, its window host and WebKit's processes), memory after the settings window
//! was opened and closed, and how soon an incoming-call popup is painted after the call rings.
//!
//! The app is measured as "a process tree started by a command": it is started in a private home with a
//! config whose listener port is known, start-up is timed to its listener's first `/health` answer, and
//! memory is summed over the tree. Without a display, a private Xvfb server is started for it. The
//! settings window is opened and closed by shell commands, which run with the app's environment
//! (DISPLAY, HOME, …) and `CALLBRIDGE_DESKTOP` set to the app's binary. By default they are what a
//! user does: launching the app again with `--open settings` (the running instance opens the window),
//! and the window's close button (`close-window.py` sends WM_DELETE_WINDOW to the window titled
//! "CallBridge Settings"); `--desktop-open-settings` and `--desktop-close-settings` replace them.
//! The popup is rung through the simulator (`/api/v1/simulate/incoming`) and timed by the app itself:
//! it logs each page's first paint and the time since the window was asked for.

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

/// Any of WebKitGTK's processes (`WebKitWebProcess`, `WebKitNetworkProcess`).
const WEBKIT: &str = "WebKit";

/// The desktop app's window host (`callbridge-desktop --window-host`), as `/proc/PID/comm` shows it.
const WINDOW_HOST: &str = "callbridge-desk";

/// How long the incoming popup gets to be painted.
const POPUP_WAIT: Duration = Duration::from_secs(20);

/// The popup's target: painted within this many ms of the incoming event.
const POPUP_TARGET_MS: u64 = 500;

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
            Row::absent("3", "desktop incoming popup first paint after the event", why, "≤ 500 ms (median)"),
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

/// Whether a window host or any WebKit process runs below the app.
fn windowing(pid: u32) -> bool {
    children(pid).iter().any(|n| n.starts_with(WEBKIT) || n.starts_with(WINDOW_HOST))
}

/// The incoming popup's first paint after the engine's incoming event, in ms, as the app logs it
/// (`window first paint N ms after it was asked for window="incoming-…"`), rung `rings` times: each
/// time first with no window host running (one is started for the popup: cold), then for a second
/// call while the first popup is open (warm). Both calls are ended afterwards, and the next ring waits
/// until the host has ended. Returns the cold and the warm times.
fn popup_first_paints(app: &Running, rings: usize) -> Result<(Vec<u64>, Vec<u64>)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = reqwest::Client::new();
    // `Launch` sends the program's stdout and stderr to `program.log` in its home.
    let log = app.home.join("program.log");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for ring in 0..rings.max(1) {
        wait_until(|| !windowing(app.pid()));
        anyhow::ensure!(!windowing(app.pid()), "a window host still runs: {:?}", children(app.pid()));
        let mut calls = Vec::new();
        for (n, paints) in [&mut cold, &mut warm].into_iter().enumerate() {
            let number = format!("+44207946{:04}", 2 * ring + n + 1);
            let rang = rt.block_on(post(&client, format!("{}/api/v1/simulate/incoming", app.url()), serde_json::json!({ "number": number })))?;
            let id = rang["call_id"].as_str().context("no call_id from /simulate/incoming")?.to_owned();
            paints.push(wait_for_paint(&log, &id)?);
            calls.push(id);
        }
        for id in calls {
            rt.block_on(post(&client, format!("{}/api/v1/hangup", app.url()), serde_json::json!({ "call_id": id })))?;
        }
    }
    Ok((cold, warm))
}

/// `median 413 ms (338–556 ms, 5 of 7 within 500 ms)`, and the median, of first-paint times.
fn describe_paints(paints: &[u64], within: u64) -> (String, u64) {
    let mut sorted = paints.to_vec();
    sorted.sort_unstable();
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return ("no paint".to_owned(), u64::MAX);
    };
    // The lower median for an even count: the figure is one of the measured times.
    let median = sorted[(sorted.len() - 1) / 2];
    let met = sorted.iter().filter(|ms| **ms <= within).count();
    (format!("median {median} ms ({first}–{last} ms, {met} of {} within {within} ms)", sorted.len()), median)
}

async fn post(client: &reqwest::Client, url: String, body: serde_json::Value) -> Result<serde_json::Value> {
    let response = client.post(&url).json(&body).send().await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let json: serde_json::Value = response.json().await.with_context(|| format!("POST {url}: not JSON"))?;
    anyhow::ensure!(status.is_success(), "POST {url}: {status} {json}");
    Ok(json)
}

/// Waits for the app's log line on call `id`'s popup first paint and returns its ms.
fn wait_for_paint(log: &Path, id: &str) -> Result<u64> {
    let window = format!("window=\"incoming-{id}\"");
    let deadline = std::time::Instant::now() + POPUP_WAIT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text.lines().filter(|l| l.contains(&window)).find_map(|l| {
            let after = l.split_once("window first paint ")?.1;
            after.split_whitespace().next()?.parse::<u64>().ok()
        });
        if let Some(ms) = found {
            return Ok(ms);
        }
        if std::time::Instant::now() > deadline {
            bail!("no first paint of the popup of call {id} logged within {POPUP_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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
    // The window host outlives its last window by a grace period; WebKit's processes end with it.
    wait_until(|| !windowing(app.pid()));
    std::thread::sleep(WINDOW_SETTLE);
    let (after, procs) = procfs::tree_memory(app.pid())?;
    let left = children(app.pid());
    let webview_left = left.iter().any(|n| n.starts_with(WEBKIT));
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
    rows.push(match popup_first_paints(&app, plan.popup_rings) {
        Ok((cold, warm)) => {
            let (cold_text, cold_median) = describe_paints(&cold, POPUP_TARGET_MS);
            let (warm_text, warm_median) = describe_paints(&warm, POPUP_TARGET_MS);
            Row::new(
                "3",
                format!("desktop incoming popup first paint after the event, {} rings", cold.len()),
                format!("no window host running (started for it): {cold_text}; one running: {warm_text}"),
            )
            .compared("as the app logs it: from the engine's incoming event to two animation frames after the page's load")
            .target(format!("≤ {POPUP_TARGET_MS} ms (median)"), cold_median <= POPUP_TARGET_MS && warm_median <= POPUP_TARGET_MS)
        }
        Err(e) => Row::failed("3", "desktop incoming popup first paint after the event", &e),
    });
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

#[cfg(test)]
mod tests {
    use super::describe_paints;

    #[test]
    fn paints_are_described_by_their_median_range_and_how_many_met_the_target() {
        let (text, median) = describe_paints(&[556, 338, 413, 490, 501], 500);
        assert_eq!(median, 490);
        assert_eq!(text, "median 490 ms (338–556 ms, 3 of 5 within 500 ms)");
        // An even count takes the lower middle: a time that was measured.
        assert_eq!(describe_paints(&[40, 30, 20, 10], 500).1, 20);
        assert_eq!(describe_paints(&[], 500).1, u64::MAX, "no paint never meets a target");
    }
}
