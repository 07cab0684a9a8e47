//! The global shortcut that opens the dial popup (`[desktop] dial_shortcut`).
//!
//! Its syntax is Tauri's accelerator syntax (`CommandOrControl+Alt+C`). [`check`] runs as part of
//! settings validation, so a shortcut that cannot be parsed is reported on its field and never saved;
//! [`apply`] registers the saved one, and a shortcut another program already holds is logged.
//!
//! On Linux the grab is CallBridge's own ([`x11`]): a thread that sleeps until the shortcut is pressed,
//! where the plugin's would wake twenty times a second. Elsewhere tauri-plugin-global-shortcut does
//! it, with the operating system's own hot-key API (`RegisterHotKey`, Carbon), which does not poll.

#[cfg(target_os = "linux")]
pub mod x11;

use std::str::FromStr;

use callbridge::config::Config;
use callbridge::settings::FieldError;
use tauri::AppHandle;
use tauri_plugin_global_shortcut::Shortcut;

const FIELD: &str = "desktop.dial_shortcut";

/// Settings validation: the shortcut is empty or parses.
pub fn check(config: &Config) -> Result<(), FieldError> {
    let text = config.desktop.dial_shortcut.trim();
    if text.is_empty() {
        return Ok(());
    }
    Shortcut::from_str(text).map(|_| ()).map_err(|e| {
        FieldError::new(FIELD, format!("{text:?} is not a shortcut ({e}); write it like CommandOrControl+Alt+C"))
    })
}

/// The configured shortcut: none when the field is empty or does not parse (which is logged).
fn configured(config: &Config) -> Option<(String, Shortcut)> {
    let text = config.desktop.dial_shortcut.trim();
    if text.is_empty() {
        return None;
    }
    match Shortcut::from_str(text) {
        Ok(shortcut) => Some((text.to_owned(), shortcut)),
        Err(e) => {
            tracing::warn!(shortcut = text, error = %e, "the dial shortcut does not parse");
            None
        }
    }
}

fn report(text: Option<&str>, result: Result<(), String>) {
    match (text, result) {
        (Some(text), Ok(())) => tracing::info!(shortcut = text, "dial shortcut registered"),
        (None, Ok(())) => {}
        (Some(text), Err(e)) => tracing::warn!(shortcut = text, error = %e, "cannot register the dial shortcut"),
        (None, Err(e)) => tracing::warn!(error = %e, "cannot release the previous shortcut"),
    }
}

/// Registers the configured shortcut, replacing the previous one.
#[cfg(target_os = "linux")]
pub fn apply(app: &AppHandle, config: &Config) {
    use std::sync::{Mutex, PoisonError};
    use tauri::Manager;

    /// The grab thread, started with the first shortcut (none is started while no shortcut is set).
    #[derive(Debug, Default)]
    struct Held(Mutex<Option<x11::Grabber>>);

    let wanted = configured(config);
    if app.try_state::<Held>().is_none() {
        app.manage(Held::default());
    }
    let held = app.state::<Held>();
    let mut grabber = held.0.lock().unwrap_or_else(PoisonError::into_inner);
    if grabber.is_none() {
        if wanted.is_none() {
            return;
        }
        let handle = app.clone();
        match x11::Grabber::start(move || crate::windows::open_dial(&handle, None)) {
            Ok(started) => *grabber = Some(started),
            Err(e) => return report(wanted.as_ref().map(|(t, _)| t.as_str()), Err(e)),
        }
    }
    if let Some(grabber) = grabber.as_ref() {
        let text = wanted.as_ref().map(|(t, _)| t.clone());
        report(text.as_deref(), grabber.grab(wanted.map(|(_, s)| s)));
    }
}

/// Registers the configured shortcut, replacing the previous one.
#[cfg(not(target_os = "linux"))]
pub fn apply(app: &AppHandle, config: &Config) {
    use tauri_plugin_global_shortcut::GlobalShortcutExt;

    let shortcuts = app.global_shortcut();
    if let Err(e) = shortcuts.unregister_all() {
        report(None, Err(e.to_string()));
    }
    if let Some((text, shortcut)) = configured(config) {
        report(Some(&text), shortcuts.register(shortcut).map_err(|e| format!("{e} (is another program using it?)")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_are_checked_before_they_are_saved() {
        let mut config = Config::default();
        assert_eq!(check(&config), Ok(()));
        config.desktop.dial_shortcut = String::new();
        assert_eq!(check(&config), Ok(()));
        config.desktop.dial_shortcut = "Ctrl+Nope+Q".into();
        let err = check(&config).expect_err("bad shortcut");
        assert_eq!(err.field.as_deref(), Some(FIELD));
    }
}
