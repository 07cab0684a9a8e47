//! The pages as windows: created when opened, destroyed when closed, so an idle tray app holds no
//! webview. Opening a window that is already open brings it to the front instead.
//!
//! | window | label | page |
//! |---|---|---|
//! | settings | `settings` | `ui/settings.html` |
//! | dial popup | `dial` | `ui/dial.html?number=…` |
//! | incoming call | `incoming-{call id}` | `ui/incoming.html?call=…` (one per ringing call) |

use callbridge::Call;
use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

use crate::missed::MissedCalls;

pub const SETTINGS: &str = "settings";
pub const DIAL: &str = "dial";
const INCOMING_PREFIX: &str = "incoming-";

/// The event a dial popup that is already open receives when a link asks to dial another number.
pub const PREFILL_EVENT: &str = "callbridge://prefill";

pub fn open_settings(app: &AppHandle) {
    if focus(app, SETTINGS) {
        return;
    }
    let built = WebviewWindowBuilder::new(app, SETTINGS, WebviewUrl::App("settings.html".into()))
        .title("CallBridge Settings")
        .inner_size(960.0, 780.0)
        .min_inner_size(640.0, 420.0)
        .center()
        .build();
    report(built, SETTINGS);
}

/// Opens the dial popup, with `number` in the field when given (never dialed without a click). Its
/// list of recent calls marks the missed ones, so opening it counts as having seen them.
pub fn open_dial(app: &AppHandle, number: Option<&str>) {
    if let Some(missed) = app.try_state::<MissedCalls>() {
        missed.seen();
    }
    if let Some(window) = app.get_webview_window(DIAL) {
        if let Some(number) = number {
            let _ = window.emit_to(DIAL, PREFILL_EVENT, number);
        }
        let _ = window.set_focus();
        return;
    }
    let page = match number {
        Some(n) => format!("dial.html?number={}", encode(n)),
        None => "dial.html".to_owned(),
    };
    let built = WebviewWindowBuilder::new(app, DIAL, WebviewUrl::App(page.into()))
        .title("Dial — CallBridge")
        .inner_size(380.0, 440.0)
        .resizable(false)
        .always_on_top(true)
        .center()
        .build();
    report(built, DIAL);
}

/// Opens the popup for a ringing incoming call, on top of other windows.
pub fn open_incoming(app: &AppHandle, call: &Call) {
    let label = incoming_label(call.id.as_str());
    if focus(app, &label) {
        return;
    }
    let page = format!("incoming.html?call={}", encode(call.id.as_str()));
    let built = WebviewWindowBuilder::new(app, &label, WebviewUrl::App(page.into()))
        .title(format!("Incoming call — {}", call.remote_number))
        .inner_size(400.0, 250.0)
        .resizable(false)
        .always_on_top(true)
        .center()
        .build();
    report(built, &label);
}

/// Closes the popup of a call that ended (the page also closes itself; this covers a missed event).
pub fn close_incoming(app: &AppHandle, call_id: &str) {
    if let Some(window) = app.get_webview_window(&incoming_label(call_id)) {
        let _ = window.close();
    }
}

fn incoming_label(call_id: &str) -> String {
    // Labels allow letters, digits, '-', '/', ':' and '_'; call ids are UUIDs or provider ids.
    let safe: String = call_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{INCOMING_PREFIX}{safe}")
}

fn focus(app: &AppHandle, label: &str) -> bool {
    match app.get_webview_window(label) {
        Some(window) => {
            let _ = window.unminimize();
            let _ = window.set_focus();
            true
        }
        None => false,
    }
}

fn report<T>(built: tauri::Result<T>, label: &str) {
    match built {
        Ok(_) => tracing::debug!(window = label, "window opened"),
        Err(e) => tracing::error!(window = label, error = %e, "cannot open the window"),
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
