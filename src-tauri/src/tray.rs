//! The tray icon and its menu. Linux trays report no clicks (only the menu works), so every action is
//! a menu item: the status line, Dial…, the recent numbers, Answer/Hang up while a call needs it,
//! Do not disturb, Settings…, Start at login and Quit. The icon follows the state: idle, ringing, in
//! call, or a problem (the port is taken, the provider is not set up).

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt;

use crate::desktop::{Condition, Desktop};
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
    let _ = tray.set_tooltip(Some(status_line(&condition)));
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
            menu.append(&MenuItem::with_id(app, "answer", format!("Answer {}", call.remote_number), true, None::<&str>)?)?;
            menu.append(&MenuItem::with_id(app, "hangup", "Decline", true, None::<&str>)?)?;
        }
        Condition::InCall(_) => menu.append(&MenuItem::with_id(app, "hangup", "Hang up", true, None::<&str>)?)?,
        _ => {}
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(app, "dial", "Dial…", true, None::<&str>)?)?;
    let recent = desktop.recent_numbers(5);
    let recent_menu = Submenu::with_id(app, "recent", "Recent calls", !recent.is_empty())?;
    for number in &recent {
        recent_menu.append(&MenuItem::with_id(app, format!("recent:{number}"), number, true, None::<&str>)?)?;
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

fn on_menu(app: &AppHandle, event: MenuEvent) {
    let id = event.id().as_ref().to_owned();
    match id.as_str() {
        "dial" => windows::open_dial(app, None),
        "settings" => windows::open_settings(app),
        "quit" => app.exit(0),
        "dnd" => toggle_dnd(app),
        "autostart" => {
            let manager = app.autolaunch();
            let result = if manager.is_enabled().unwrap_or(false) { manager.disable() } else { manager.enable() };
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot change Start at login");
            }
            refresh(app);
        }
        "answer" | "hangup" => call_command(app, id),
        other => {
            if let Some(number) = other.strip_prefix("recent:") {
                windows::open_dial(app, Some(number));
            }
        }
    }
}

fn toggle_dnd(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let settings = app.state::<Desktop>().settings.clone();
        let mut config = (*settings.engine().config()).clone();
        config.desktop.do_not_disturb = !config.desktop.do_not_disturb;
        if let Err(e) = settings.save(config).await {
            tracing::warn!(error = %e, "cannot switch Do not disturb");
        }
        refresh(&app);
    });
}

fn call_command(app: &AppHandle, which: String) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let engine = app.state::<Desktop>().engine().clone();
        let result = if which == "answer" { engine.answer(None).await } else { engine.hangup(None).await };
        if let Err(e) = result {
            tracing::warn!(command = %which, error = %e, "tray command failed");
        }
    });
}
