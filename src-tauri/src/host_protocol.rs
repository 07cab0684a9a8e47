//! The private pipe between the tray process and its window host: one JSON object per line.
//!
//! The tray process starts the window host (the same executable with `--window-host`, see
//! [`crate::window_host`]) with its stdin and stdout as pipes: [`ToHost`] messages go down the host's
//! stdin, [`FromHost`] messages come up its stdout. Nothing else can reach them: no socket, no port.
//!
//! The host only shows pages. Whatever a page asks that is not a window matter ([`Command`]: an API
//! call, opening the CRM, Start at login, an approval's request and answer) is sent up as a
//! [`FromHost::Request`] and answered by the tray process with a [`ToHost::Reply`] of the same id.
//!
//! Either side ignores (and logs) a line it cannot read: a line is never trusted to be well formed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the tray process tells the window host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToHost {
    /// Open this window, or bring it to the front when a window with its label is open (giving an
    /// open dial popup `prefill`, a number from a link, as the `callbridge://prefill` event).
    Open { window: WindowSpec, prefill: Option<String> },
    /// Close the window with this label, if it is open.
    Close { label: String },
    /// Emit `event` with `payload` to every open page.
    Emit { event: String, payload: Value },
    /// The answer to the [`FromHost::Request`] with this id.
    Reply { id: u64, result: Result<Value, String> },
    /// No window is left and none was asked for in the grace period: end the process.
    Quit,
}

/// What the window host tells the tray process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromHost {
    /// The page in window `label` asks for `command`; answered by a [`ToHost::Reply`] with `id`.
    Request { id: u64, label: String, command: Command },
    /// Window `label` is gone (closed by the user or the page, or it could not be opened).
    Closed { label: String },
    /// The page in window `label` has been painted for the first time since it was opened.
    Painted { label: String },
}

/// What a page asks of CallBridge beyond its window, with the arguments the page gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// One call of the JSON API (`path` under `/api/v1`); answered with `{status, body}`.
    Api { method: String, path: String, body: Option<Value> },
    /// Open the CRM page of a call in the default browser; answered with the URL opened.
    OpenCrm { call_id: String },
    /// Whether Start at login is on.
    AutostartEnabled,
    /// Switch Start at login; answered with the new state.
    SetAutostart { enabled: bool },
    /// What the approval window asks about.
    ApprovalRequest,
    /// The user's answer in the approval window: `allow`, `allow_always` or `deny`.
    ApprovalAnswer { answer: String },
}

/// A window as the tray process wants it: the host builds exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    pub label: String,
    /// The page and its query, under the app's pages (`dial.html?number=…`).
    pub page: String,
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub min_size: Option<(f64, f64)>,
    pub resizable: bool,
    pub always_on_top: bool,
    /// Created hidden and without focus; the page shows it when its content is in place.
    pub hidden: bool,
}

/// One message as a line of the pipe (without the newline).
pub fn encode<T: Serialize>(message: &T) -> String {
    // These types hold only strings, numbers, booleans and JSON values: serializing cannot fail.
    serde_json::to_string(message).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a window host message");
        String::new()
    })
}

/// A line of the pipe read as a message; what is wrong with it otherwise.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    serde_json::from_str(line).map_err(|e| format!("not a window host message ({e}): {:?}", clip(line)))
}

fn clip(line: &str) -> &str {
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// Whether `label` is one Tauri accepts (letters, digits, `-`, `/`, `:`, `_`), so a bad label from
/// the pipe is refused instead of reaching the window builder.
pub fn valid_label(label: &str) -> bool {
    !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | ':' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_single_lines() {
        let open = ToHost::Open {
            window: WindowSpec {
                label: "dial".into(),
                page: "dial.html?number=%2B44".into(),
                title: "Dial — CallBridge".into(),
                width: 380.0,
                height: 440.0,
                min_size: None,
                resizable: false,
                always_on_top: true,
                hidden: false,
            },
            prefill: Some("+44\n20".into()),
        };
        let reply = ToHost::Reply { id: 7, result: Err("no".into()) };
        let request = FromHost::Request {
            id: 3,
            label: "settings".into(),
            command: Command::Api { method: "GET".into(), path: "/status".into(), body: None },
        };
        for line in [encode(&open), encode(&reply), encode(&ToHost::Quit)] {
            assert!(!line.contains('\n'), "{line}");
            let back: ToHost = decode(&line).expect("decodes");
            assert_eq!(encode(&back), line);
        }
        let line = encode(&request);
        assert_eq!(decode::<FromHost>(&line), Ok(request));
        assert_eq!(decode::<FromHost>(r#"{"type":"closed","label":"approve-1"}"#), Ok(FromHost::Closed { label: "approve-1".into() }));
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for line in ["", "{", "null", "[1,2]", r#"{"type":"open"}"#, r#"{"type":"reply","id":-1,"result":{}}"#, r#"{"type":"nope"}"#] {
            assert!(decode::<ToHost>(line).is_err(), "{line}");
            assert!(decode::<FromHost>(line).is_err(), "{line}");
        }
        let long = "x".repeat(10_000);
        assert!(decode::<ToHost>(&long).err().is_some_and(|e| e.len() < 400));
    }

    #[test]
    fn labels_are_checked() {
        assert!(valid_label("incoming-abc_1") && valid_label("approve-3"));
        assert!(!valid_label("") && !valid_label("a b") && !valid_label("x\u{e9}"));
    }
}
