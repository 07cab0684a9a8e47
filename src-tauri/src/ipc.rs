//! What the pages ask of CallBridge, answered in the tray process.
//!
//! The pages run in the window host ([`crate::window_host`]), which hands every command that is not a
//! window matter up the pipe ([`Command`]); this answers them. `api` carries every API call of the
//! pages (see `ui/api.js`), handed to the same router in process; the others are what only a desktop
//! can do: open the CRM page in the default browser, Start at login, and the approval dialog's request
//! and answer. The window that asks is named by the host, never by the page.

use serde_json::Value;
use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_opener::OpenerExt;

use crate::approval::{self, Approvals};
use crate::desktop::Desktop;
use crate::host_protocol::Command;

/// Answers `command` from the page in window `label`.
pub async fn answer(app: &AppHandle, label: &str, command: Command) -> Result<Value, String> {
    match command {
        Command::Api { method, path, body } => {
            let desktop = app.try_state::<Desktop>().ok_or("CallBridge is not running")?;
            to_value(desktop.request(&method, &path, body).await?)
        }
        Command::OpenCrm { call_id } => open_crm(app, &call_id).await.map(Value::String),
        Command::AutostartEnabled => app.autolaunch().is_enabled().map(Value::Bool).map_err(|e| e.to_string()),
        Command::SetAutostart { enabled } => set_autostart(app, enabled).map(Value::Bool),
        Command::ApprovalRequest => {
            let approvals = app.try_state::<Approvals>().ok_or("no approvals here")?;
            to_value(approval::request(&approvals, label)?)
        }
        Command::ApprovalAnswer { answer } => {
            let approvals = app.try_state::<Approvals>().ok_or("no approvals here")?;
            approval::answer(&approvals, label, &answer).map(|()| Value::Null)
        }
    }
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// Opens the `[desktop] crm_url` page for a call in the default browser; returns the URL opened.
/// The URL is made here from the configured template, so a page can only open the CRM, not any URL.
pub async fn open_crm(app: &AppHandle, call_id: &str) -> Result<String, String> {
    let desktop = app.try_state::<Desktop>().ok_or("CallBridge is not running")?;
    let path = format!("/calls/{}/crm-url", url::form_urlencoded::byte_serialize(call_id.as_bytes()).collect::<String>());
    let reply = desktop.request("GET", &path, None).await?;
    let url = match reply.body["url"].as_str() {
        Some(url) if reply.status == 200 => url.to_owned(),
        _ => return Err(reply.body["message"].as_str().unwrap_or("cannot make the CRM link").to_owned()),
    };
    tracing::info!(%url, "opening the CRM");
    app.opener().open_url(&url, None::<&str>).map_err(|e| format!("cannot open {url}: {e}"))?;
    Ok(url)
}

/// Switches Start at login and returns the new state.
fn set_autostart(app: &AppHandle, enabled: bool) -> Result<bool, String> {
    let manager = app.autolaunch();
    let result = if enabled { manager.enable() } else { manager.disable() };
    result.map_err(|e| format!("cannot change Start at login: {e}"))?;
    crate::tray::refresh(app);
    manager.is_enabled().map_err(|e| e.to_string())
}
