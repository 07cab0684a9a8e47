//! Follows the engine and the settings and shows what happens: the tray, the incoming-call popup, a
//! native notification (and one for a missed call), the CRM page opened by itself (`[desktop]
//! open_crm_on`), and the same events for the open pages (`callbridge://call`,
//! `callbridge://settings`), which in a browser come from `/api/v1/events` instead.

use callbridge::call::{Call, CallEvent, CallEventKind, CallId, Direction, Disposition};
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::broadcast::error::RecvError;

use crate::desktop::Desktop;
use crate::{shortcut, tray, windows};

pub const CALL_EVENT: &str = "callbridge://call";
pub const SETTINGS_EVENT: &str = "callbridge://settings";

/// Runs for the life of the app.
pub fn spawn(app: AppHandle) {
    let desktop = app.state::<Desktop>();
    let mut calls = desktop.engine().subscribe();
    let mut settings = desktop.settings.watch();
    tauri::async_runtime::spawn(async move {
        let mut shortcut_now = app.state::<Desktop>().engine().config().desktop.dial_shortcut.clone();
        loop {
            tokio::select! {
                event = calls.recv() => match event {
                    Ok(event) => on_call(&app, &event),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the tray fell behind the call events");
                        tray::refresh(&app);
                    }
                    Err(RecvError::Closed) => break,
                },
                changed = settings.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let state = settings.borrow_and_update().clone();
                    let _ = app.emit(SETTINGS_EVENT, &state);
                    let config = app.state::<Desktop>().engine().config();
                    if config.desktop.dial_shortcut != shortcut_now {
                        shortcut_now = config.desktop.dial_shortcut.clone();
                        shortcut::apply(&app, &config);
                    }
                    tray::refresh(&app);
                }
            }
        }
    });
}

fn on_call(app: &AppHandle, event: &CallEvent) {
    let _ = app.emit(CALL_EVENT, event);
    let config = app.state::<Desktop>().engine().config();
    let quiet = config.desktop.do_not_disturb;
    match event.kind {
        CallEventKind::Incoming if event.call.direction == Direction::In => {
            if config.desktop.popups && !quiet {
                windows::open_incoming(app, &event.call);
            }
            if config.desktop.notifications && !quiet {
                notify(app, event);
            }
        }
        CallEventKind::Ended => {
            windows::close_incoming(app, event.call.id.as_str());
            if event.call.disposition == Some(Disposition::Missed) && event.call.direction == Direction::In && config.desktop.notifications && !quiet {
                notify_missed(app, &event.call);
            }
        }
        _ => {}
    }
    if config.desktop.opens_crm_on(event.kind, event.call.direction) {
        open_crm(app, event.call.id.clone());
    }
    tray::refresh(app);
}

/// Opens the call's CRM page (its own record once the caller lookup is done, else `[desktop] crm_url`).
fn open_crm(app: &AppHandle, id: CallId) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        app.state::<Desktop>().engine().lookup_done(&id).await;
        if let Err(e) = crate::ipc::open_crm(app.clone(), app.state::<Desktop>(), id.to_string()).await {
            tracing::warn!(call = %id, error = %e, "cannot open the CRM page of the call");
        }
    });
}

fn notify_missed(app: &AppHandle, call: &Call) {
    let body = match &call.remote_name {
        Some(name) => format!("{name} ({})", call.remote_number),
        None => call.remote_number.clone(),
    };
    if let Err(e) = app.notification().builder().title("Missed call").body(body).show() {
        tracing::debug!(error = %e, "no desktop notification");
    }
}

fn notify(app: &AppHandle, event: &CallEvent) {
    let call = &event.call;
    let body = match &call.remote_name {
        Some(name) => format!("{} — {name}", call.remote_number),
        None => call.remote_number.clone(),
    };
    // No notification server (a bare X session, CI) is not an error worth more than a debug line.
    if let Err(e) = app.notification().builder().title("Incoming call").body(body).show() {
        tracing::debug!(error = %e, "no desktop notification");
    }
}
