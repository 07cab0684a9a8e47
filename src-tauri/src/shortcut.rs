//! The global shortcut that opens the dial popup (`[desktop] dial_shortcut`).
//!
//! Its syntax is Tauri's accelerator syntax (`CommandOrControl+Alt+C`). [`check`] runs as part of
//! settings validation, so a shortcut that cannot be parsed is reported on its field and never saved;
//! [`apply`] registers the saved one, and a shortcut another program already holds is logged.

use std::str::FromStr;

use callbridge::config::Config;
use callbridge::settings::FieldError;
use tauri::AppHandle;
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut};

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

/// Registers the configured shortcut, replacing the previous one.
pub fn apply(app: &AppHandle, config: &Config) {
    let shortcuts = app.global_shortcut();
    if let Err(e) = shortcuts.unregister_all() {
        tracing::warn!(error = %e, "cannot release the previous shortcut");
    }
    let text = config.desktop.dial_shortcut.trim();
    if text.is_empty() {
        return;
    }
    match Shortcut::from_str(text) {
        Ok(shortcut) => match shortcuts.register(shortcut) {
            Ok(()) => tracing::info!(shortcut = text, "dial shortcut registered"),
            Err(e) => tracing::warn!(shortcut = text, error = %e, "cannot register the dial shortcut (is another program using it?)"),
        },
        Err(e) => tracing::warn!(shortcut = text, error = %e, "the dial shortcut does not parse"),
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
