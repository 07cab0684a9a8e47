//! The commands the pages call over Tauri IPC.
//!
//! `api` carries every API call of the pages (see `ui/api.js`); the others are what only a desktop
//! can do: close the calling window, open the CRM page in the default browser, Start at login.

use tauri::{AppHandle, State, WebviewWindow};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_opener::OpenerExt;

use crate::desktop::{Desktop, Reply};

/// One call of the JSON API, answered by the router in process.
#[tauri::command]
pub async fn api(desktop: State<'_, Desktop>, method: String, path: String, body: Option<serde_json::Value>) -> Result<Reply, String> {
    desktop.request(&method, &path, body).await
}

/// Closes (and so destroys) the window the page is in.
#[tauri::command]
pub fn close_window(window: WebviewWindow) -> Result<(), String> {
    window.close().map_err(|e| e.to_string())
}

/// Opens the `[desktop] crm_url` page for a call in the default browser; returns the URL opened.
/// The URL is made here from the configured template, so a page can only open the CRM, not any URL.
#[tauri::command]
pub async fn open_crm(app: AppHandle, desktop: State<'_, Desktop>, call_id: String) -> Result<String, String> {
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

#[tauri::command]
pub fn autostart_enabled(app: AppHandle) -> Result<bool, String> {
    app.autolaunch().is_enabled().map_err(|e| e.to_string())
}

/// Switches Start at login and returns the new state.
#[tauri::command]
pub fn set_autostart(app: AppHandle, enabled: bool) -> Result<bool, String> {
    let manager = app.autolaunch();
    let result = if enabled { manager.enable() } else { manager.disable() };
    result.map_err(|e| format!("cannot change Start at login: {e}"))?;
    crate::tray::refresh(&app);
    manager.is_enabled().map_err(|e| e.to_string())
}
