//! Follows the engine and the settings and shows what happens: the tray, the incoming-call popup, a
//! native notification (and one for a missed call, counted in the tray until the user looks), the CRM
//! page opened by itself (`[desktop] open_crm_on`, once per call), and the same events for the open
//! pages (`callbridge://call`, `callbridge://settings`), which in a browser come from
//! `/api/v1/events` instead. Whether a call rang, was answered or missed is the engine's word (its call
//! events and their disposition); nothing here decides it.

use std::collections::HashSet;

use callbridge::call::{CallEvent, CallEventKind, CallId, Direction};
use tauri::{AppHandle, Manager};
use tokio::sync::broadcast::error::RecvError;

use crate::desktop::Desktop;
use crate::missed::{self, MissedCalls};
use crate::{alerts, shortcut, tray, windows};

pub const CALL_EVENT: &str = "callbridge://call";
pub const SETTINGS_EVENT: &str = "callbridge://settings";

/// Runs for the life of the app.
pub fn spawn(app: AppHandle) {
    let desktop = app.state::<Desktop>();
    let mut calls = desktop.engine().subscribe();
    let mut settings = desktop.settings.watch();
    let mut missed_count = app.state::<MissedCalls>().watch();
    tauri::async_runtime::spawn(async move {
        let mut shortcut_now = app.state::<Desktop>().engine().config().desktop.dial_shortcut.clone();
        let mut popped = ScreenPops::default();
        loop {
            tokio::select! {
                event = calls.recv() => match event {
                    Ok(event) => on_call(&app, &event, &mut popped),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the tray fell behind the call events");
                        tray::refresh(&app);
                    }
                    Err(RecvError::Closed) => break,
                },
                changed = missed_count.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    missed_count.borrow_and_update();
                    tray::refresh(&app);
                }
                changed = settings.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let state = settings.borrow_and_update().clone();
                    windows::emit(&app, SETTINGS_EVENT, &state);
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

/// The calls whose CRM page was already opened by itself: at most once per call, whatever events
/// (an `updated` from the caller lookup among them) follow.
#[derive(Debug, Default)]
struct ScreenPops {
    opened: HashSet<CallId>,
}

impl ScreenPops {
    /// True the first time for a call; the call is forgotten when it ends.
    fn first(&mut self, id: &CallId) -> bool {
        self.opened.insert(id.clone())
    }

    fn ended(&mut self, id: &CallId) {
        self.opened.remove(id);
    }
}

fn on_call(app: &AppHandle, event: &CallEvent, popped: &mut ScreenPops) {
    windows::emit(app, CALL_EVENT, event);
    let config = app.state::<Desktop>().engine().config();
    let quiet = config.desktop.do_not_disturb;
    let call = &event.call;
    match event.kind {
        CallEventKind::Incoming if call.direction == Direction::In => {
            if config.desktop.popups && !quiet {
                windows::open_incoming(app, call);
            }
            if config.desktop.notifications && !quiet {
                alerts::incoming(app, call);
            }
        }
        CallEventKind::Ended => {
            windows::close_incoming(app, call.id.as_str());
            if missed::is_missed(call) {
                // Counted even in Do not disturb, which keeps quiet but still keeps track.
                app.state::<MissedCalls>().record(call);
                if config.desktop.notifications && !quiet {
                    alerts::missed(app, call);
                }
            }
        }
        _ => {}
    }
    if config.desktop.opens_crm_on(event.kind, call.direction) && popped.first(&call.id) {
        open_crm(app, call.id.clone());
    }
    if event.kind == CallEventKind::Ended {
        popped.ended(&call.id);
    }
    tray::refresh(app);
}

/// Opens the call's CRM page (its own record once the caller lookup is done, else `[desktop] crm_url`).
fn open_crm(app: &AppHandle, id: CallId) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        app.state::<Desktop>().engine().lookup_done(&id).await;
        if let Err(e) = crate::ipc::open_crm(&app, id.as_str()).await {
            tracing::warn!(call = %id, error = %e, "cannot open the CRM page of the call");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_pops_the_crm_once_until_it_ends() {
        let mut popped = ScreenPops::default();
        let id = CallId::from("call-1".to_owned());
        assert!(popped.first(&id));
        assert!(!popped.first(&id), "an updated or repeated event does not open it again");
        assert!(popped.first(&CallId::from("call-2".to_owned())));
        popped.ended(&id);
        assert!(!popped.opened.contains(&id), "an ended call is forgotten");
    }
}
