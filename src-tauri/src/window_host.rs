//! The window host: `callbridge-desktop --window-host`, the process that holds the app's windows.
//!
//! The tray process starts it for its first window and talks to it over its stdin and stdout
//! ([`crate::host_protocol`]); see [`crate::windows`] for why the windows live in a process of their
//! own. The host opens, focuses and closes windows as told, hands the tray's events to the open pages,
//! and does for the pages only what is a window matter (close the window, show the approval dialog);
//! every other command the pages call (`api`, `open_crm`, Start at login, the approval's request and
//! answer) is handed up the pipe and the tray process's answer handed back, so the pages see the same
//! commands as ever. It holds no engine, tray, shortcut, link handler or single-instance lock.
//!
//! On Linux a window opened while another is open shares that window's WebKit web process (a related
//! view): starting a web process is most of what a new window costs, so a second popup is on screen in
//! about a tenth of a second instead of half of one (docs/performance.md, figure 3).
//!
//! It reports each window that goes away, and each page's first paint (for the popup timing the
//! tray process logs). It ends when the tray process says so ([`ToHost::Quit`]) or goes away (its
//! stdin closes).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use serde_json::Value;
use tauri::{AppHandle, Emitter, Manager, RunEvent, State, WebviewUrl, WebviewWindow, WebviewWindowBuilder, WindowEvent, Wry};
use tauri::webview::PageLoadEvent;
use tokio::sync::oneshot;

use crate::host_protocol::{self, Command, FromHost, ToHost, WindowSpec};
use crate::windows::{DIAL, PREFILL_EVENT};

/// Reports the page's first paint: two animation frames after `load`, the page is on screen. The page's
/// own timings (ms since its navigation began) are logged at debug level, for a breakdown.
const FIRST_PAINT_SCRIPT: &str = r#"if (window.top === window) {
  window.addEventListener("load", () => requestAnimationFrame(() => requestAnimationFrame(() => {
    const nav = performance.getEntriesByType("navigation")[0] || {};
    const timing = { origin: performance.timeOrigin, response: nav.responseEnd, interactive: nav.domInteractive, loaded: nav.loadEventEnd, painted: performance.now() };
    window.__TAURI_INTERNALS__.invoke("painted", { timing }).catch(() => {});
  })), { once: true });
}"#;

/// Runs the window host until the tray process ends it.
pub fn run() -> anyhow::Result<()> {
    tracing::debug!("window host starting");
    let app = tauri::Builder::default()
        .manage(Host::default())
        .invoke_handler(tauri::generate_handler![
            api,
            close_window,
            open_crm,
            autostart_enabled,
            set_autostart,
            approval_request,
            approval_shown,
            approval_answer,
            painted
        ])
        .on_window_event(|window, event| {
            if matches!(event, WindowEvent::Destroyed) {
                tell(&FromHost::Closed { label: window.label().to_owned() });
            }
        })
        .setup(|app| {
            let handle = app.handle().clone();
            std::thread::Builder::new().name("tray-pipe".into()).spawn(move || listen(handle))?;
            Ok(())
        })
        .build(crate::app::context())
        .context("cannot start the window host")?;
    tracing::debug!("window host built");
    app.run(|_, event| {
        // The last window closed: the tray process decides when the host ends (after a grace period).
        if let RunEvent::ExitRequested { api, code: None, .. } = event {
            api.prevent_exit();
        }
    });
    Ok(())
}

/// The requests sent up the pipe and waiting for their answer (managed by Tauri).
#[derive(Debug, Default)]
struct Host {
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>,
    next: AtomicU64,
}

impl Host {
    /// Asks the tray process for `command` on behalf of window `label` and waits for its answer.
    async fn ask(&self, label: &str, command: Command) -> Result<Value, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (answer, receiver) = oneshot::channel();
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(id, answer);
        if !tell(&FromHost::Request { id, label: label.to_owned(), command }) {
            self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
            return Err("CallBridge is not answering".to_owned());
        }
        let asked = std::time::Instant::now();
        let answer = receiver.await.map_err(|_| "CallBridge did not answer".to_owned())?;
        tracing::debug!(id, window = label, ms = asked.elapsed().as_millis(), "answered by the tray process");
        answer
    }

    fn answered(&self, id: u64, result: Result<Value, String>) {
        match self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id) {
            // The page may have gone meanwhile: nobody waits for the answer any more.
            Some(waiting) => drop(waiting.send(result)),
            None => tracing::warn!(id, "an answer to no request; ignored"),
        }
    }
}

/// Writes one message up the pipe; false when the tray process can no longer hear it.
fn tell(message: &FromHost) -> bool {
    let mut line = host_protocol::encode(message);
    line.push('\n');
    let mut out = std::io::stdout().lock();
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot write to the tray process");
            false
        }
    }
}

/// Reads the tray process's messages until it says to quit or goes away, then ends the host.
fn listen(app: AppHandle) {
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read from the tray process");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match host_protocol::decode::<ToHost>(&line) {
            Ok(ToHost::Quit) => break,
            Ok(message) => act(&app, message),
            Err(e) => tracing::warn!("ignored from the tray process: {e}"),
        }
    }
    tracing::debug!("window host ending");
    app.exit(0);
}

fn act(app: &AppHandle, message: ToHost) {
    match message {
        ToHost::Open { window, prefill } => open(app, window, prefill.as_deref()),
        ToHost::Close { label } => {
            if let Some(window) = app.get_webview_window(&label) {
                let _ = window.close();
            }
        }
        ToHost::Emit { event, payload } => {
            if let Err(e) = app.emit(&event, payload) {
                tracing::warn!(%event, error = %e, "cannot emit to the pages");
            }
        }
        ToHost::Reply { id, result } => {
            if let Some(host) = app.try_state::<Host>() {
                host.answered(id, result);
            }
        }
        ToHost::Quit => {}
    }
}

/// Opens `spec`, or brings the window with its label to the front (an open dial popup gets
/// `prefill`). A window that cannot be opened is reported closed.
fn open(app: &AppHandle, spec: WindowSpec, prefill: Option<&str>) {
    if !host_protocol::valid_label(&spec.label) {
        tracing::warn!(label = %spec.label, "not a window label; ignored");
        tell(&FromHost::Closed { label: spec.label });
        return;
    }
    if let Some(window) = app.get_webview_window(&spec.label) {
        if let (Some(number), true) = (prefill, spec.label == DIAL) {
            let _ = window.emit_to(DIAL, PREFILL_EVENT, number);
        }
        let _ = window.unminimize();
        let _ = window.set_focus();
        return;
    }
    #[cfg(target_os = "linux")]
    if let Some(open) = app.webview_windows().into_values().next() {
        build_sharing(app, spec, &open);
        return;
    }
    build(app, spec, SHOWN_WHEN_LOADED, |builder| builder);
}

/// Builds window `spec`; `adjust` may add to the builder. A window that cannot be built is reported
/// closed. With `shown_when_loaded` (and unless `spec` is hidden), the window is created hidden and
/// shown once its page has loaded (see [`build_sharing`]).
fn build<'a>(
    app: &'a AppHandle,
    spec: WindowSpec,
    shown_when_loaded: bool,
    adjust: impl FnOnce(WebviewWindowBuilder<'a, Wry, AppHandle>) -> WebviewWindowBuilder<'a, Wry, AppHandle>,
) {
    let show_on_load = shown_when_loaded && !spec.hidden;
    let mut builder = WebviewWindowBuilder::new(app, &spec.label, WebviewUrl::App(spec.page.into()))
        .title(spec.title)
        .inner_size(spec.width, spec.height)
        .resizable(spec.resizable)
        .always_on_top(spec.always_on_top)
        .initialization_script(FIRST_PAINT_SCRIPT)
        .on_page_load(move |window, payload| {
            tracing::debug!(window = window.label(), event = ?payload.event(), "page load");
            if show_on_load && payload.event() == PageLoadEvent::Finished {
                show(&window);
            }
        })
        .center();
    if let Some((width, height)) = spec.min_size {
        builder = builder.min_inner_size(width, height);
    }
    if spec.hidden {
        builder = builder.visible(false).focused(false);
    } else if show_on_load {
        builder = builder.visible(false);
    }
    tracing::debug!(window = %spec.label, "building the window");
    match adjust(builder).build() {
        Ok(_) => tracing::debug!(window = %spec.label, "window opened"),
        Err(e) => {
            tracing::error!(window = %spec.label, error = %e, "cannot open the window");
            tell(&FromHost::Closed { label: spec.label });
            return;
        }
    }
    if show_on_load {
        // Should the page never finish loading, the window is shown all the same (one timer per window).
        let (app, label) = (app.clone(), spec.label);
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(SHOW_ANYWAY).await;
            if let Some(window) = app.get_webview_window(&label) {
                show(&window);
            }
        });
    }
}

/// Whether a window with a web process of its own (the host's first window) is also created hidden
/// and shown once its page has loaded, as a window sharing a process always is (see
/// [`build_sharing`]). On Linux, without compositing, GTK drawing a view whose web process has
/// launched but not yet sent a frame makes WebKitGTK ask that process for one and block the main
/// thread until it comes, for up to 500 ms (`DrawingAreaProxyCoordinatedGraphics::forceUpdateIfNeeded`,
/// <https://github.com/WebKit/WebKit/blob/main/Source/WebKit/UIProcess/CoordinatedGraphics/DrawingAreaProxyCoordinatedGraphics.cpp>).
/// In an strace of such a ring the new web process, still starting, sat idle for the whole wait while
/// the main thread was blocked, and the wait ran its full 500 ms. Shown at once, a fifth to a quarter
/// of the popups whose host was started for them were painted 0.5–0.6 s late that way (8 of 40 in
/// alternating runs, against 1 of 40 over 0.85 s shown once loaded; docs/performance.md, figure 3).
const SHOWN_WHEN_LOADED: bool = cfg!(target_os = "linux");

/// How long a window created hidden until its page loads may stay hidden.
const SHOW_ANYWAY: std::time::Duration = std::time::Duration::from_secs(2);

/// Shows and focuses a window created hidden, once.
fn show(window: &WebviewWindow) {
    if window.is_visible().unwrap_or(true) {
        return;
    }
    if let Err(e) = window.show().and_then(|()| window.set_focus()) {
        tracing::warn!(window = window.label(), error = %e, "cannot show the window");
    }
}

/// Linux: builds window `spec` as a view related to `open`'s, so that its page runs in the WebKit web
/// process that is already running instead of a new one (WebKitGTK starts a web process per view
/// otherwise, which is most of a new window's time). Returns once the window is built, as [`build`]
/// does.
///
/// The window is shown when its page has loaded. Shown at once, about half the windows sharing a
/// process (without WebKit's compositing) stalled for 0.5 s: the page's navigation began at once, but
/// the request for its HTML reached the app's handler, which runs from the main thread, only 0.5 s
/// later: WebKitGTK's wait, on the main thread and bounded by 500 ms, for the web process to paint a
/// view GTK is drawing (see [`SHOWN_WHEN_LOADED`]), while that page is itself waiting for its HTML.
/// Created hidden and shown once loaded, no window stalled in the same runs.
#[cfg(target_os = "linux")]
fn build_sharing(app: &AppHandle, spec: WindowSpec, open: &WebviewWindow) {
    let (built, wait) = std::sync::mpsc::channel();
    let mut pending = Pending { app: app.clone(), spec: Some(spec), built };
    // Runs on the main thread, where the view is. Should it never run (the window went meanwhile, or
    // the event loop is ending), `pending` is dropped with its window not built, and builds it alone.
    let asked = open.with_webview(move |view| {
        if let Some(spec) = pending.spec.take() {
            build(&pending.app, spec, true, |builder| builder.with_related_view(view.inner()));
        }
    });
    if let Err(e) = asked {
        tracing::debug!(error = %e, "cannot share a web process; the window gets its own");
    }
    if wait.recv_timeout(std::time::Duration::from_secs(10)).is_err() {
        tracing::warn!("a window took more than 10 s to be built");
    }
}

/// A window to build, built alone when dropped before it was built sharing a web process.
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct Pending {
    app: AppHandle,
    spec: Option<WindowSpec>,
    built: std::sync::mpsc::Sender<()>,
}

#[cfg(target_os = "linux")]
impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(spec) = self.spec.take() {
            build(&self.app, spec, SHOWN_WHEN_LOADED, |builder| builder);
        }
        let _ = self.built.send(());
    }
}

/// One call of the JSON API, answered by the tray process's router.
#[tauri::command]
async fn api(window: WebviewWindow, host: State<'_, Host>, method: String, path: String, body: Option<Value>) -> Result<Value, String> {
    host.ask(window.label(), Command::Api { method, path, body }).await
}

/// Closes (and so destroys) the window the page is in.
#[tauri::command]
fn close_window(window: WebviewWindow) -> Result<(), String> {
    window.close().map_err(|e| e.to_string())
}

/// Opens the CRM page for a call in the default browser (done by the tray process); returns the URL.
#[tauri::command]
async fn open_crm(window: WebviewWindow, host: State<'_, Host>, call_id: String) -> Result<Value, String> {
    host.ask(window.label(), Command::OpenCrm { call_id }).await
}

#[tauri::command]
async fn autostart_enabled(window: WebviewWindow, host: State<'_, Host>) -> Result<Value, String> {
    host.ask(window.label(), Command::AutostartEnabled).await
}

/// Switches Start at login and returns the new state.
#[tauri::command]
async fn set_autostart(window: WebviewWindow, host: State<'_, Host>, enabled: bool) -> Result<Value, String> {
    host.ask(window.label(), Command::SetAutostart { enabled }).await
}

/// What the approval window asks about.
#[tauri::command]
async fn approval_request(window: WebviewWindow, host: State<'_, Host>) -> Result<Value, String> {
    host.ask(window.label(), Command::ApprovalRequest).await
}

/// Shows and focuses the approval window the page is in, once the page has put its content in place.
#[tauri::command]
fn approval_shown(window: WebviewWindow) -> Result<(), String> {
    if !crate::approval::is_approval_window(window.label()) {
        return Err("only an approval window can be shown this way".to_owned());
    }
    window.show().map_err(|e| format!("cannot show the approval window: {e}"))?;
    window.set_focus().map_err(|e| format!("cannot focus the approval window: {e}"))
}

/// The user's answer from the approval window: `allow`, `allow_always` or `deny`.
#[tauri::command]
async fn approval_answer(window: WebviewWindow, host: State<'_, Host>, answer: String) -> Result<Value, String> {
    host.ask(window.label(), Command::ApprovalAnswer { answer }).await
}

/// The page has been painted (see [`FIRST_PAINT_SCRIPT`]).
#[tauri::command]
fn painted(window: WebviewWindow, timing: Option<Value>) {
    tracing::debug!(window = window.label(), ?timing, "page painted");
    tell(&FromHost::Painted { label: window.label().to_owned() });
}
