//! The pages as windows, from the tray process's side: open, close, and events for the open pages.
//!
//! The tray process never creates a webview. Its windows live in a window host: the same executable
//! started with `--window-host` ([`crate::window_host`]), spoken to over a private pipe
//! ([`crate::host_protocol`]). The host is started for the first window and ends when its last window
//! has been closed for [`GRACE`] (popups in quick succession reuse it), and WebKit — its web and
//! network processes — ends with it: on Linux WebKitGTK keeps a network process for as long as the
//! process that made a webview lives, so only a process of its own gives that memory back. The next
//! window starts a new host. A host that dies is logged and replaced at the next window; the windows
//! it had are treated as closed (an approval waiting in one is refused).
//!
//! Opening a window that is already open brings it to the front instead.
//!
//! | window | label | page |
//! |---|---|---|
//! | settings | `settings` | `ui/settings.html` |
//! | dial popup | `dial` | `ui/dial.html?number=…` |
//! | incoming call | `incoming-{call id}` | `ui/incoming.html?call=…` (one per ringing call) |
//! | approval | `approve-{n}` | `ui/approve.html?id=…` (see [`crate::approval`]) |

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use callbridge::Call;
use serde::Serialize;
use tauri::{AppHandle, Manager};

use crate::host_protocol::{self, FromHost, ToHost, WindowSpec};
use crate::missed::MissedCalls;

pub const SETTINGS: &str = "settings";
pub const DIAL: &str = "dial";
const INCOMING_PREFIX: &str = "incoming-";

/// The event a dial popup that is already open receives when a link asks to dial another number.
pub const PREFILL_EVENT: &str = "callbridge://prefill";

/// How long the window host outlives its last window.
pub const GRACE: Duration = Duration::from_secs(5);

/// The hidden argument that makes `callbridge-desktop` a window host.
pub const HOST_ARG: &str = "--window-host";

/// WebKitGTK's switch for its accelerated compositing mode, set for the window host (see [`start`]).
#[cfg(target_os = "linux")]
const NO_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

pub fn open_settings(app: &AppHandle) {
    let spec = WindowSpec {
        label: SETTINGS.into(),
        page: "settings.html".into(),
        title: "CallBridge Settings".into(),
        width: 960.0,
        height: 780.0,
        min_size: Some((640.0, 420.0)),
        resizable: true,
        always_on_top: false,
        hidden: false,
    };
    report(open(app, spec, None), SETTINGS);
}

/// Opens the dial popup, with `number` in the field when given (never dialed without a click). Its
/// list of recent calls marks the missed ones, so opening it counts as having seen them.
pub fn open_dial(app: &AppHandle, number: Option<&str>) {
    if let Some(missed) = app.try_state::<MissedCalls>() {
        missed.seen();
    }
    let page = match number {
        Some(n) => format!("dial.html?number={}", encode(n)),
        None => "dial.html".to_owned(),
    };
    let spec = WindowSpec {
        label: DIAL.into(),
        page,
        title: "Dial — CallBridge".into(),
        width: 380.0,
        height: 440.0,
        min_size: None,
        resizable: false,
        always_on_top: true,
        hidden: false,
    };
    report(open(app, spec, number.map(str::to_owned)), DIAL);
}

/// Opens the popup for a ringing incoming call, on top of other windows.
pub fn open_incoming(app: &AppHandle, call: &Call) {
    let label = incoming_label(call.id.as_str());
    let spec = WindowSpec {
        label: label.clone(),
        page: format!("incoming.html?call={}", encode(call.id.as_str())),
        title: format!("Incoming call — {}", call.remote_number),
        width: 400.0,
        height: 250.0,
        min_size: None,
        resizable: false,
        always_on_top: true,
        hidden: false,
    };
    report(open(app, spec, None), &label);
}

/// Opens an approval dialog (hidden and unfocused until its page shows it; see [`crate::approval`]).
pub fn open_approval(app: &AppHandle, label: &str, page: String, title: String) -> Result<(), String> {
    let spec = WindowSpec {
        label: label.to_owned(),
        page,
        title,
        width: 440.0,
        height: 300.0,
        min_size: None,
        resizable: false,
        always_on_top: true,
        hidden: true,
    };
    open(app, spec, None)
}

/// Closes the popup of a call that ended (the page also closes itself; this covers a missed event).
pub fn close_incoming(app: &AppHandle, call_id: &str) {
    close(app, &incoming_label(call_id));
}

/// Closes window `label` if it is open; never starts a host to do so.
pub fn close(app: &AppHandle, label: &str) {
    if let Some(host) = app.try_state::<WindowHost>() {
        host.send_if_running(&ToHost::Close { label: label.to_owned() });
    }
}

/// Sends `event` to the open pages (none open: nothing to do, and no host is started for it).
pub fn emit<T: Serialize>(app: &AppHandle, event: &str, payload: &T) {
    let Some(host) = app.try_state::<WindowHost>() else { return };
    match serde_json::to_value(payload) {
        Ok(payload) => host.send_if_running(&ToHost::Emit { event: event.to_owned(), payload }),
        Err(e) => tracing::warn!(event, error = %e, "cannot send an event to the pages"),
    }
}

fn incoming_label(call_id: &str) -> String {
    // Labels allow letters, digits, '-', '/', ':' and '_'; call ids are UUIDs or provider ids.
    let safe: String = call_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{INCOMING_PREFIX}{safe}")
}

fn report(opened: Result<(), String>, label: &str) {
    match opened {
        Ok(()) => tracing::debug!(window = label, "window asked for"),
        Err(e) => tracing::error!(window = label, error = %e, "cannot open the window"),
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Asks the host for window `spec` (starting a host if none runs).
fn open(app: &AppHandle, spec: WindowSpec, prefill: Option<String>) -> Result<(), String> {
    let host = app.try_state::<WindowHost>().ok_or("the window host is not set up")?;
    host.open(app, spec, prefill)
}

/// The window host as the tray process knows it (managed by Tauri).
#[derive(Debug, Default)]
pub struct WindowHost {
    state: Mutex<HostState>,
}

#[derive(Debug, Default)]
struct HostState {
    /// The running host's stdin, if a host runs.
    stdin: Option<ChildStdin>,
    book: Book,
}

/// What the tray process knows of its window hosts: which one runs and which windows it has.
#[derive(Debug, Default)]
struct Book {
    /// The running host, by its serial number (how many hosts were started when it was).
    running: Option<u64>,
    started: u64,
    /// How many windows were asked for: a quit planned before the latest request is called off.
    requests: u64,
    /// The windows asked for and not reported closed, in the running host.
    open: HashSet<String>,
    /// When each window was asked for, and whether a host had to be started for it (first paint).
    asked: HashMap<String, (Instant, bool)>,
}

/// What a window closing leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterClose {
    /// The message came from a host that no longer runs.
    Stale,
    /// Other windows are open or asked for.
    Busy,
    /// No window is left: the host may end after the grace period if no window is asked for by then
    /// (`requests` is the count of requests now).
    Idle { requests: u64 },
}

impl Book {
    /// Window `label` is asked for; true when no host runs (one is started for it).
    fn ask(&mut self, label: &str) -> bool {
        self.requests += 1;
        self.open.insert(label.to_owned());
        let cold = self.running.is_none();
        self.asked.entry(label.to_owned()).or_insert((Instant::now(), cold));
        cold
    }

    /// A new host runs; returns its serial number.
    fn start(&mut self) -> u64 {
        self.started += 1;
        self.running = Some(self.started);
        self.started
    }

    fn runs(&self, serial: u64) -> bool {
        self.running == Some(serial)
    }

    fn closed(&mut self, serial: u64, label: &str) -> AfterClose {
        if !self.runs(serial) {
            return AfterClose::Stale;
        }
        self.open.remove(label);
        self.asked.remove(label);
        if self.open.is_empty() {
            AfterClose::Idle { requests: self.requests }
        } else {
            AfterClose::Busy
        }
    }

    /// Whether host `serial` is to end: still running, idle since `requests`, nothing asked for since.
    fn quit_due(&self, serial: u64, requests: u64) -> bool {
        self.runs(serial) && self.requests == requests && self.open.is_empty()
    }

    /// The running host is gone (ended, or its pipe broke): returns the windows it had.
    fn lose(&mut self) -> Vec<String> {
        self.running = None;
        self.asked.clear();
        self.open.drain().collect()
    }

    /// Host `serial` painted window `label`: how long since it was asked for, and whether a host was
    /// started for it. Only the first paint after asking counts.
    fn painted(&mut self, serial: u64, label: &str) -> Option<(Duration, bool)> {
        if !self.runs(serial) {
            return None;
        }
        self.asked.remove(label).map(|(asked, cold)| (asked.elapsed(), cold))
    }
}

impl WindowHost {
    fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self, app: &AppHandle, spec: WindowSpec, prefill: Option<String>) -> Result<(), String> {
        let label = spec.label.clone();
        let message = ToHost::Open { window: spec, prefill };
        let mut state = self.lock();
        state.book.ask(&label);
        if let Some(stdin) = &mut state.stdin {
            if write(stdin, &message).is_ok() {
                return Ok(());
            }
            tracing::warn!("the window host's pipe broke; starting a new one");
            state.stdin = None;
            let lost = state.book.lose();
            drop(state);
            closed_all(app, lost.into_iter().filter(|l| *l != label));
            state = self.lock();
            state.book.ask(&label);
        }
        let stdin = match start(app, &mut state) {
            Ok(stdin) => stdin,
            Err(e) => {
                // Not open anywhere: forgotten, or it would keep the next host from ever ending.
                state.book.lose();
                return Err(e);
            }
        };
        write(stdin, &message).map_err(|e| format!("cannot talk to the window host: {e}"))
    }

    fn send_if_running(&self, message: &ToHost) {
        let mut state = self.lock();
        if let Some(stdin) = &mut state.stdin {
            if let Err(e) = write(stdin, message) {
                tracing::warn!(error = %e, "the window host's pipe broke");
            }
        }
    }

    /// Sends `message` to host `serial` if it is still the running one.
    fn send_to(&self, serial: u64, message: &ToHost) {
        let mut state = self.lock();
        if !state.book.runs(serial) {
            tracing::debug!("an answer for a window host that has ended; dropped");
            return;
        }
        if let Some(stdin) = &mut state.stdin {
            if let Err(e) = write(stdin, message) {
                tracing::warn!(error = %e, "the window host's pipe broke");
            }
        }
    }

    /// Host `serial` reported window `label` gone; with no window left, its end is planned.
    fn closed(&self, app: &AppHandle, serial: u64, label: &str) {
        let after = self.lock().book.closed(serial, label);
        if after == AfterClose::Stale {
            return;
        }
        crate::approval::window_closed(app, label);
        if let AfterClose::Idle { requests } = after {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                tokio::time::sleep(GRACE).await;
                if let Some(host) = app.try_state::<WindowHost>() {
                    host.quit_if_idle(serial, requests);
                }
            });
        }
    }

    /// Ends host `serial` if no window was asked for since it went idle.
    fn quit_if_idle(&self, serial: u64, requests: u64) {
        let mut state = self.lock();
        if !state.book.quit_due(serial, requests) {
            return;
        }
        tracing::info!("no window left: ending the window host");
        state.book.lose();
        if let Some(mut stdin) = state.stdin.take() {
            // A broken pipe here means the host is already gone, which is what was wanted.
            let _ = write(&mut stdin, &ToHost::Quit);
        }
    }

    /// Host `serial` painted window `label`: logs how long that took since the window was asked for.
    fn painted(&self, serial: u64, label: &str) {
        if let Some((took, cold)) = self.lock().book.painted(serial, label) {
            let ms = took.as_millis();
            let host = if cold { "started for it" } else { "already running" };
            tracing::info!(window = label, ms, host, "window first paint {ms} ms after it was asked for");
        }
    }

    /// Host `serial`'s pipe closed: it has ended. Its windows are gone.
    fn ended(&self, app: &AppHandle, serial: u64) {
        let mut state = self.lock();
        if !state.book.runs(serial) {
            return;
        }
        tracing::warn!("the window host ended unexpectedly; a new one starts with the next window");
        state.stdin = None;
        let lost = state.book.lose();
        drop(state);
        closed_all(app, lost);
    }
}

fn closed_all(app: &AppHandle, labels: impl IntoIterator<Item = String>) {
    for label in labels {
        crate::approval::window_closed(app, &label);
    }
}

/// Starts a window host and the thread that reads what it says; returns its stdin.
fn start<'s>(app: &AppHandle, state: &'s mut HostState) -> Result<&'s mut ChildStdin, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find CallBridge's own executable: {e}"))?;
    let mut command = Command::new(exe);
    command.arg(HOST_ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    // WebKitGTK's accelerated compositing sets up OpenGL for a page's first frame: without it the
    // popup's first paint comes 100-400 ms sooner (docs/performance.md, figure 3), and these small
    // pages need none of it. Left as it is when set already (`0` keeps compositing).
    #[cfg(target_os = "linux")]
    if std::env::var_os(NO_COMPOSITING).is_none() {
        command.env(NO_COMPOSITING, "1");
    }
    // The libraries most symbols bind to go first in the host's and WebKit's processes' lookup order:
    // 40% of their CPU on a cold popup was the dynamic linker looking symbols up (see `link_order`).
    #[cfg(target_os = "linux")]
    if let Some(order) = crate::link_order::for_window_host() {
        command.env(crate::link_order::VARIABLE, order);
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start the window host: {e}"))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the window host has no pipe".to_owned());
    };
    let serial = state.book.start();
    tracing::info!(pid = child.id(), "window host started");
    let app = app.clone();
    let reader = std::thread::Builder::new().name("window-host".into()).spawn(move || listen(app, serial, stdout, child));
    if let Err(e) = reader {
        // Without its reader the host could not be answered; its stdin closes here and it ends.
        state.book.lose();
        return Err(format!("cannot follow the window host: {e}"));
    }
    Ok(state.stdin.insert(stdin))
}

/// Reads host `serial`'s messages until its pipe closes (blocked in `read` in between: no polling),
/// then reaps it.
fn listen(app: AppHandle, serial: u64, stdout: ChildStdout, mut child: Child) {
    for line in BufReader::new(stdout).lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read from the window host");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match host_protocol::decode::<FromHost>(&line) {
            Ok(message) => dispatch(&app, serial, message),
            Err(e) => tracing::warn!("ignored from the window host: {e}"),
        }
    }
    match child.wait() {
        Ok(status) => tracing::info!(%status, "window host exited"),
        Err(e) => tracing::warn!(error = %e, "cannot reap the window host"),
    }
    if let Some(host) = app.try_state::<WindowHost>() {
        host.ended(&app, serial);
    }
}

fn dispatch(app: &AppHandle, serial: u64, message: FromHost) {
    let Some(host) = app.try_state::<WindowHost>() else { return };
    match message {
        FromHost::Request { id, label, command } => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let result = crate::ipc::answer(&app, &label, command).await;
                if let Some(host) = app.try_state::<WindowHost>() {
                    host.send_to(serial, &ToHost::Reply { id, result });
                }
            });
        }
        FromHost::Closed { label } => host.closed(app, serial, &label),
        FromHost::Painted { label } => host.painted(serial, &label),
    }
}

fn write(stdin: &mut ChildStdin, message: &ToHost) -> std::io::Result<()> {
    let mut line = host_protocol::encode(message);
    line.push('\n');
    stdin.write_all(line.as_bytes())?;
    stdin.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_ends_only_when_no_window_was_asked_for_in_the_grace_period() {
        let mut book = Book::default();
        assert!(book.ask(SETTINGS), "no host runs: one is started for the first window");
        let host = book.start();
        assert!(!book.ask(DIAL), "the host runs");
        assert_eq!(book.closed(host, DIAL), AfterClose::Busy);
        let AfterClose::Idle { requests } = book.closed(host, SETTINGS) else { panic!("idle") };
        assert!(book.quit_due(host, requests), "nothing asked for since");
        book.ask(SETTINGS);
        assert!(!book.quit_due(host, requests), "a window asked for in the grace period keeps the host");
    }

    #[test]
    fn a_window_asked_for_while_the_host_reported_its_last_close_keeps_it() {
        let mut book = Book::default();
        book.ask(SETTINGS);
        let host = book.start();
        // The dial popup is asked for; the host, not having read that yet, reports settings closed.
        book.ask(DIAL);
        assert_eq!(book.closed(host, SETTINGS), AfterClose::Busy);
        assert!(!book.quit_due(host, book.requests));
    }

    #[test]
    fn an_ended_host_loses_its_windows_and_its_late_messages_are_ignored() {
        let mut book = Book::default();
        book.ask("approve-1");
        let old = book.start();
        book.ask("incoming-a");
        let mut lost = book.lose();
        lost.sort();
        assert_eq!(lost, ["approve-1", "incoming-a"], "its windows count as closed");
        assert!(book.ask(SETTINGS), "the next window starts a new host");
        let new = book.start();
        assert_ne!(old, new);
        assert_eq!(book.closed(old, SETTINGS), AfterClose::Stale);
        assert_eq!(book.painted(old, SETTINGS), None);
        assert!(!book.quit_due(old, book.requests));
        assert!(book.painted(new, SETTINGS).is_some_and(|(_, cold)| cold), "timed once, as started for it");
        assert_eq!(book.painted(new, SETTINGS), None, "only the first paint counts");
    }
}
