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
    /// The running host, if any.
    running: Option<Running>,
    /// How many hosts were started: tells a host's messages from a previous host's.
    started: u64,
    /// How many windows were asked for: a quit planned before the latest request is called off.
    requests: u64,
    /// The windows asked for and not reported closed, in the running host.
    open: HashSet<String>,
    /// When each window was asked for, and whether a host had to be started for it (first paint).
    asked: HashMap<String, (Instant, bool)>,
}

#[derive(Debug)]
struct Running {
    serial: u64,
    stdin: ChildStdin,
}

impl WindowHost {
    fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self, app: &AppHandle, spec: WindowSpec, prefill: Option<String>) -> Result<(), String> {
        let label = spec.label.clone();
        let message = ToHost::Open { window: spec, prefill };
        let mut state = self.lock();
        state.requests += 1;
        state.open.insert(label.clone());
        let cold = state.running.is_none();
        state.asked.entry(label).or_insert((Instant::now(), cold));
        if let Some(running) = &mut state.running {
            if write(&mut running.stdin, &message).is_ok() {
                return Ok(());
            }
            tracing::warn!("the window host's pipe broke; starting a new one");
            let lost = lose(&mut state);
            drop(state);
            closed_all(app, lost);
            state = self.lock();
        }
        let running = start(app, &mut state)?;
        write(&mut running.stdin, &message).map_err(|e| format!("cannot talk to the window host: {e}"))
    }

    fn send_if_running(&self, message: &ToHost) {
        let mut state = self.lock();
        if let Some(running) = &mut state.running {
            if let Err(e) = write(&mut running.stdin, message) {
                tracing::warn!(error = %e, "the window host's pipe broke");
            }
        }
    }

    /// Sends `message` to host `serial` if it is still the running one.
    fn send_to(&self, serial: u64, message: &ToHost) {
        let mut state = self.lock();
        match &mut state.running {
            Some(running) if running.serial == serial => {
                if let Err(e) = write(&mut running.stdin, message) {
                    tracing::warn!(error = %e, "the window host's pipe broke");
                }
            }
            _ => tracing::debug!("an answer for a window host that has ended; dropped"),
        }
    }

    /// Host `serial` reported window `label` gone; with no window left, its end is planned.
    fn closed(&self, app: &AppHandle, serial: u64, label: &str) {
        let mut state = self.lock();
        if state.running.as_ref().is_none_or(|r| r.serial != serial) {
            return;
        }
        state.open.remove(label);
        state.asked.remove(label);
        let idle = state.open.is_empty();
        let requests = state.requests;
        drop(state);
        crate::approval::window_closed(app, label);
        if idle {
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
        let same = state.running.as_ref().is_some_and(|r| r.serial == serial);
        if !same || state.requests != requests || !state.open.is_empty() {
            return;
        }
        if let Some(mut running) = state.running.take() {
            tracing::info!("no window left: ending the window host");
            // A broken pipe here means the host is already gone, which is what was wanted.
            let _ = write(&mut running.stdin, &ToHost::Quit);
        }
        state.asked.clear();
    }

    /// Host `serial` painted window `label` for the first time: log how long it took since asked.
    fn painted(&self, serial: u64, label: &str) {
        let mut state = self.lock();
        if state.running.as_ref().is_none_or(|r| r.serial != serial) {
            return;
        }
        if let Some((asked, cold)) = state.asked.remove(label) {
            let ms = asked.elapsed().as_millis();
            let host = if cold { "started for it" } else { "already running" };
            tracing::info!(window = label, ms, host, "window first paint {ms} ms after it was asked for");
        }
    }

    /// Host `serial`'s pipe closed: it has ended. Its windows are gone.
    fn ended(&self, app: &AppHandle, serial: u64) {
        let mut state = self.lock();
        if state.running.as_ref().is_none_or(|r| r.serial != serial) {
            return;
        }
        tracing::warn!("the window host ended unexpectedly; a new one starts with the next window");
        let lost = lose(&mut state);
        drop(state);
        closed_all(app, lost);
    }
}

/// Forgets the running host and returns the windows it had.
fn lose(state: &mut HostState) -> Vec<String> {
    state.running = None;
    state.asked.clear();
    state.open.drain().collect()
}

fn closed_all(app: &AppHandle, labels: Vec<String>) {
    for label in labels {
        crate::approval::window_closed(app, &label);
    }
}

/// Starts a window host and the thread that reads what it says.
fn start<'s>(app: &AppHandle, state: &'s mut HostState) -> Result<&'s mut Running, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find CallBridge's own executable: {e}"))?;
    let mut child = Command::new(exe)
        .arg(HOST_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the window host: {e}"))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the window host has no pipe".to_owned());
    };
    state.started += 1;
    let serial = state.started;
    tracing::info!(pid = child.id(), "window host started");
    let app = app.clone();
    let reader = std::thread::Builder::new().name("window-host".into()).spawn(move || listen(app, serial, stdout, child));
    if let Err(e) = reader {
        // Without its reader the host could not be answered; its stdin closes below and it ends.
        return Err(format!("cannot follow the window host: {e}"));
    }
    Ok(state.running.insert(Running { serial, stdin }))
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
