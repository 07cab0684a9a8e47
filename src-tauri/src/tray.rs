//! The tray icon and its menu. Linux trays report no clicks (only the menu works), so every action is
//! a menu item: the status line, Answer/Hang up while a call needs it, "Missed calls: N" while there
//! are missed calls the user has not looked at (it opens the dial popup, which lists them), Dial…, the
//! recent numbers (the missed ones marked), Do not disturb, Settings…, Start at login and Quit. The icon follows the state: idle, ringing, in
//! call, or a problem (the port is taken, the provider is not set up).
//!
//! Answer, Decline and Hang up act on the call the menu shows: their item ids carry its call id
//! (`answer:<id>`, `hangup:<id>`), so with a call waiting, Decline ends the waiting call and not the
//! conversation in progress. [`MenuCommand::parse`] turns an item id into what to do.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt;

use callbridge::CallId;

use crate::desktop::{Condition, Desktop};
use crate::missed::{self, MissedCalls};
use crate::windows;

const TRAY: &str = "callbridge";

const IDLE: &[u8] = include_bytes!("../../icons/tray-idle.png");
const RINGING: &[u8] = include_bytes!("../../icons/tray-ringing.png");
const IN_CALL: &[u8] = include_bytes!("../../icons/tray-in-call.png");
const PROBLEM: &[u8] = include_bytes!("../../icons/tray-problem.png");

/// Creates the tray icon with the current state.
pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let menu = menu(app)?;
    TrayIconBuilder::with_id(TRAY)
        .icon(Image::from_bytes(IDLE)?)
        .tooltip("CallBridge")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu)
        .build(app)?;
    refresh(app);
    Ok(())
}

/// Brings the icon, tooltip and menu up to date with the engine.
pub fn refresh(app: &AppHandle) {
    let Some(tray) = app.tray_by_id(TRAY) else { return };
    let condition = app.state::<Desktop>().condition();
    let icon = match condition {
        Condition::Problem(_) => PROBLEM,
        Condition::Ringing(_) => RINGING,
        Condition::InCall(_) => IN_CALL,
        Condition::Idle { .. } => IDLE,
    };
    if let Ok(image) = Image::from_bytes(icon) {
        let _ = tray.set_icon(Some(image));
    }
    let missed = app.try_state::<MissedCalls>().map(|m| m.count()).unwrap_or(0);
    let _ = tray.set_tooltip(Some(tooltip(&condition, missed)));
    match menu(app) {
        Ok(menu) => {
            let _ = tray.set_menu(Some(menu));
        }
        Err(e) => tracing::warn!(error = %e, "cannot rebuild the tray menu"),
    }
}

/// The first line of the menu and the tooltip.
pub fn status_line(condition: &Condition) -> String {
    match condition {
        Condition::Problem(problem) => format!("Problem: {problem}"),
        Condition::Ringing(call) => format!("Ringing: {}{}", call.remote_number, name_suffix(call)),
        Condition::InCall(call) => format!("In call: {}{}", call.remote_number, name_suffix(call)),
        Condition::Idle { listening: Some(url), provider } => format!("Ready on {url} ({provider})"),
        Condition::Idle { listening: None, provider } => format!("Ready ({provider})"),
    }
}

/// The status line, and the missed calls not yet looked at.
pub fn tooltip(condition: &Condition, missed: usize) -> String {
    match missed_line(missed) {
        Some(line) => format!("{}\n{line}", status_line(condition)),
        None => status_line(condition),
    }
}

/// "Missed calls: 2", or nothing when the user has seen them all.
pub fn missed_line(missed: usize) -> Option<String> {
    (missed > 0).then(|| format!("Missed calls: {missed}"))
}

/// A recent call in the menu: the number, the name when known, and "missed" when it was.
pub fn recent_label(call: &callbridge::Call) -> String {
    let missed = if missed::is_missed(call) { " (missed)" } else { "" };
    format!("{}{}{missed}", call.remote_number, name_suffix(call))
}

fn name_suffix(call: &callbridge::Call) -> String {
    call.remote_name.as_ref().map(|n| format!(" — {n}")).unwrap_or_default()
}

fn menu(app: &AppHandle) -> tauri::Result<Menu<tauri::Wry>> {
    let desktop = app.state::<Desktop>();
    let condition = desktop.condition();
    let config = desktop.engine().config();
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(app, "status", status_line(&condition), false, None::<&str>)?)?;
    match &condition {
        Condition::Ringing(call) => {
            menu.append(&MenuItem::with_id(app, format!("answer:{}", call.id), format!("Answer {}", call.remote_number), true, None::<&str>)?)?;
            menu.append(&MenuItem::with_id(app, format!("hangup:{}", call.id), "Decline", true, None::<&str>)?)?;
        }
        Condition::InCall(call) => menu.append(&MenuItem::with_id(app, format!("hangup:{}", call.id), "Hang up", true, None::<&str>)?)?,
        _ => {}
    }
    if let Some(line) = missed_line(app.try_state::<MissedCalls>().map(|m| m.count()).unwrap_or(0)) {
        menu.append(&MenuItem::with_id(app, "missed", line, true, None::<&str>)?)?;
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(app, "dial", "Dial…", true, None::<&str>)?)?;
    let recent = desktop.recent_calls(5);
    let recent_menu = Submenu::with_id(app, "recent", "Recent calls", !recent.is_empty())?;
    for call in &recent {
        recent_menu.append(&MenuItem::with_id(app, format!("recent:{}", call.remote_number), recent_label(call), true, None::<&str>)?)?;
    }
    menu.append(&recent_menu)?;
    menu.append(&CheckMenuItem::with_id(app, "dnd", "Do not disturb", true, config.desktop.do_not_disturb, None::<&str>)?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(app, "settings", "Settings…", true, None::<&str>)?)?;
    let autostart = app.autolaunch().is_enabled().unwrap_or(false);
    menu.append(&CheckMenuItem::with_id(app, "autostart", "Start at login", true, autostart, None::<&str>)?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(app, "quit", "Quit CallBridge", true, None::<&str>)?)?;
    Ok(menu)
}

/// What a menu item asks for, from its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuCommand {
    Dial,
    /// Look at the missed calls: the dial popup, which lists them.
    Missed,
    Settings,
    Quit,
    DoNotDisturb,
    Autostart,
    /// Open the dial popup with a recent number.
    Recent(String),
    /// Answer this call.
    Answer(CallId),
    /// End (or decline) this call.
    Hangup(CallId),
}

impl MenuCommand {
    /// The command for menu item `id`; `None` for items that do nothing (the status line) and ids
    /// this menu never makes — a call command without a call id among them.
    pub fn parse(id: &str) -> Option<MenuCommand> {
        let call = |rest: &str| Some(rest).filter(|r| !r.is_empty()).map(|r| CallId::from(r.to_owned()));
        match id {
            "dial" => Some(MenuCommand::Dial),
            "missed" => Some(MenuCommand::Missed),
            "settings" => Some(MenuCommand::Settings),
            "quit" => Some(MenuCommand::Quit),
            "dnd" => Some(MenuCommand::DoNotDisturb),
            "autostart" => Some(MenuCommand::Autostart),
            _ => match id.split_once(':') {
                Some(("recent", number)) if !number.is_empty() => Some(MenuCommand::Recent(number.to_owned())),
                Some(("answer", rest)) => call(rest).map(MenuCommand::Answer),
                Some(("hangup", rest)) => call(rest).map(MenuCommand::Hangup),
                _ => None,
            },
        }
    }
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    let Some(command) = MenuCommand::parse(event.id().as_ref()) else { return };
    match command {
        MenuCommand::Dial | MenuCommand::Missed => windows::open_dial(app, None),
        MenuCommand::Settings => windows::open_settings(app),
        MenuCommand::Quit => app.exit(0),
        MenuCommand::DoNotDisturb => toggle_dnd(app),
        MenuCommand::Autostart => {
            let manager = app.autolaunch();
            let result = if manager.is_enabled().unwrap_or(false) { manager.disable() } else { manager.enable() };
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot change Start at login");
            }
            refresh(app);
        }
        MenuCommand::Recent(number) => windows::open_dial(app, Some(&number)),
        command @ (MenuCommand::Answer(_) | MenuCommand::Hangup(_)) => call_command(app, command),
    }
}

fn toggle_dnd(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let settings = app.state::<Desktop>().settings.clone();
        // Read and changed under the writers' lock: a settings page saving meanwhile is not undone.
        if let Err(e) = settings.update(|config| config.desktop.do_not_disturb = !config.desktop.do_not_disturb).await {
            tracing::warn!(error = %e, "cannot switch Do not disturb");
        }
        refresh(&app);
    });
}

fn call_command(app: &AppHandle, command: MenuCommand) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let engine = app.state::<Desktop>().engine().clone();
        if let Err(e) = run_call_command(&engine, &command).await {
            tracing::warn!(?command, error = %e, "tray command failed");
        }
    });
}

/// Answers or ends the call `command` names — never "the current call", which with a call waiting
/// would be the conversation in progress.
pub async fn run_call_command(engine: &callbridge::Engine, command: &MenuCommand) -> Result<Option<callbridge::Call>, callbridge::CommandError> {
    match command {
        MenuCommand::Answer(id) => engine.answer(Some(id)).await.map(Some),
        MenuCommand::Hangup(id) => engine.hangup(Some(id)).await.map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use callbridge::engine::Services;
    use callbridge::secrets::MemorySecrets;
    use callbridge::{CallState, Config, Engine};

    use super::*;

    #[test]
    fn menu_ids_name_their_call() {
        assert_eq!(MenuCommand::parse("hangup:abc-1"), Some(MenuCommand::Hangup(CallId::from("abc-1".to_owned()))));
        assert_eq!(MenuCommand::parse("answer:x:y"), Some(MenuCommand::Answer(CallId::from("x:y".to_owned()))));
        assert_eq!(MenuCommand::parse("recent:+4420"), Some(MenuCommand::Recent("+4420".into())));
        assert_eq!(MenuCommand::parse("dial"), Some(MenuCommand::Dial));
        assert_eq!(MenuCommand::parse("missed"), Some(MenuCommand::Missed));
        // A call command without its call never falls back to "the current call".
        for id in ["hangup", "answer", "hangup:", "answer:", "status", "recent:", "nonsense"] {
            assert_eq!(MenuCommand::parse(id), None, "{id}");
        }
    }

    #[test]
    fn the_missed_count_shows_until_seen_and_missed_calls_are_marked() {
        let idle = Condition::Idle { listening: None, provider: "simulator".into() };
        assert_eq!(missed_line(0), None);
        assert_eq!(tooltip(&idle, 0), "Ready (simulator)");
        assert_eq!(tooltip(&idle, 2), "Ready (simulator)\nMissed calls: 2");
        let mut call = callbridge::Call::new(callbridge::Direction::In, "+442079460789", "simulator");
        call.remote_name = Some("Ada Lovelace".into());
        call.state = CallState::Ended;
        call.disposition = Some(callbridge::Disposition::Missed);
        assert_eq!(recent_label(&call), "+442079460789 — Ada Lovelace (missed)");
        call.disposition = Some(callbridge::Disposition::Answered);
        assert_eq!(recent_label(&call), "+442079460789 — Ada Lovelace");
    }

    #[tokio::test]
    async fn decline_in_the_menu_ends_the_waiting_call_not_the_conversation() {
        let config = Config::default();
        let engine = Engine::start_with(config.clone(), Services::with_secrets(&config, Arc::new(MemorySecrets::default())));
        let first = engine.simulate_incoming("+442079460001", None).await.expect("rings");
        engine.answer(Some(&first.id)).await.expect("answered");
        let waiting = engine.simulate_incoming("+442079460002", None).await.expect("rings");
        // What the menu offers for the waiting call, and what clicking Decline does.
        let decline = MenuCommand::parse(&format!("hangup:{}", waiting.id)).expect("a command");
        let declined = run_call_command(&engine, &decline).await.expect("declined").expect("a call");
        assert_eq!((declined.id, declined.state), (waiting.id, CallState::Ended));
        assert_eq!(engine.call(&first.id).await.map(|c| c.state), Some(CallState::Active));
    }
}
