//! Native desktop notifications: one when a call rings, one for a missed call. A click on the missed
//! call's notification (its `default` action, which notification servers invoke when the notification
//! itself is clicked) opens the dial popup with the number in it, to call back — never dialed without
//! a click on Call.
//!
//! tauri-plugin-notification (2.6 and later) reports a click on a desktop notification to the handlers
//! of `Notification::on_action`, as far as the notification server reports it: on Linux over the
//! org.freedesktop.Notifications D-Bus API (`ActionInvoked`), on Windows while the toast is on screen,
//! on macOS through the notification centre (see <https://tauri.app/release/notification/v2.6.0/>).

use callbridge::Call;
use tauri::AppHandle;
use tauri_plugin_notification::{Action, ActionType, NotificationExt};

use crate::windows;

/// The action type of missed-call notifications: a click calls back.
const MISSED_CALL: &str = "missed-call";
/// The action the Desktop Notifications Specification invokes for a click on the notification.
const DEFAULT_ACTION: &str = "default";
/// How the plugin reports a click on the notification itself.
const TAP: &str = "tap";
/// The `extra` field of a missed-call notification that carries the number to call back.
const NUMBER: &str = "number";

/// Registers the missed-call action and what a click on it does.
pub fn register(app: &AppHandle) {
    let notifications = app.notification();
    let call_back = Action::builder(DEFAULT_ACTION, "Call back").foreground(true).build();
    if let Err(e) = notifications.register_action_types(vec![ActionType::builder(MISSED_CALL).actions(vec![call_back]).build()]) {
        tracing::warn!(error = %e, "cannot register the missed-call notification action");
    }
    let handle = app.clone();
    let registered = notifications.on_action(move |performed| {
        if !matches!(performed.action_id(), TAP | DEFAULT_ACTION) {
            return;
        }
        let number = performed.notification().and_then(|n| n.extra().get(NUMBER)).and_then(|v| v.as_str());
        match number {
            Some(number) => {
                tracing::info!(%number, "missed-call notification clicked: opening the dial popup to call back");
                windows::open_dial(&handle, Some(number));
            }
            None => tracing::debug!(action = performed.action_id(), "a notification action without a number; ignored"),
        }
    });
    if let Err(e) = registered {
        tracing::warn!(error = %e, "missed-call notifications cannot call back");
    }
}

/// "Incoming call": the number, and the name when the phone system gave one.
pub fn incoming(app: &AppHandle, call: &Call) {
    let body = match &call.remote_name {
        Some(name) => format!("{} — {name}", call.remote_number),
        None => call.remote_number.clone(),
    };
    show(app.notification().builder().title("Incoming call").body(body));
}

/// "Missed call from Ada Lovelace": the looked-up name when known, else the number; a click calls back.
pub fn missed(app: &AppHandle, call: &Call) {
    let (title, body) = missed_text(call);
    let builder = app
        .notification()
        .builder()
        .title(title)
        .body(body)
        .action_type_id(MISSED_CALL)
        .extra(NUMBER, call.remote_number.clone());
    show(builder);
}

/// The title and body of a missed call's notification.
pub fn missed_text(call: &Call) -> (String, String) {
    let who = call.remote_name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(&call.remote_number);
    let mut body = call.remote_number.clone();
    if let Some(company) = call.company.as_deref().filter(|c| !c.trim().is_empty()) {
        body.push_str(" — ");
        body.push_str(company);
    }
    body.push_str(". Click to call back.");
    (format!("Missed call from {who}"), body)
}

fn show(builder: tauri_plugin_notification::NotificationBuilder<tauri::Wry>) {
    // No notification server (a bare X session, CI) is not an error worth more than a debug line.
    if let Err(e) = builder.show() {
        tracing::debug!(error = %e, "no desktop notification");
    }
}

#[cfg(test)]
mod tests {
    use callbridge::{CallState, Direction, Disposition};

    use super::*;

    fn missed_call(name: Option<&str>, company: Option<&str>) -> Call {
        let mut call = Call::new(Direction::In, "+442079460789", "simulator");
        call.state = CallState::Ended;
        call.disposition = Some(Disposition::Missed);
        call.remote_name = name.map(str::to_owned);
        call.company = company.map(str::to_owned);
        call
    }

    #[test]
    fn a_missed_call_names_the_caller_when_known_else_the_number() {
        let (title, body) = missed_text(&missed_call(Some("Ada Lovelace"), Some("Acme Corp")));
        assert_eq!(title, "Missed call from Ada Lovelace");
        assert_eq!(body, "+442079460789 — Acme Corp. Click to call back.");
        let (title, body) = missed_text(&missed_call(None, None));
        assert_eq!(title, "Missed call from +442079460789");
        assert_eq!(body, "+442079460789. Click to call back.");
        assert_eq!(missed_text(&missed_call(Some("  "), None)).0, "Missed call from +442079460789");
    }
}
