//! What the settings page shows for each phone system: its fields, described as data.
//!
//! The "Phone system" section of the settings page is drawn from [`forms`]: one [`ProviderForm`] per
//! [`ProviderKind`], each field naming its key under `[provider.<kind>]` in the config file and how to
//! edit it. Secret fields name a keyring entry instead of a key: their value goes to the OS keyring
//! through `PUT /api/v1/secrets/{entry}` and is never part of the config. Adding a provider means adding
//! its arm to [`form`]; the page needs no change.

use serde::Serialize;

use crate::config::ProviderKind;

/// How a field is edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Input {
    Text,
    /// A whole number between `min` and `max`.
    Number { min: u64, max: u64 },
    /// An `http://` or `https://` URL.
    Url,
    Bool,
    /// Kept in the OS keyring under `entry`; shown masked, never sent back.
    Secret { entry: &'static str },
    /// One of fixed values.
    Choice { options: &'static [&'static str] },
}

/// One field of a provider's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// The key under `[provider.<kind>]` (for secrets: a name for the form only).
    pub key: &'static str,
    pub label: &'static str,
    #[serde(flatten)]
    pub input: Input,
    pub required: bool,
    /// A sentence shown under the field.
    pub help: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub placeholder: &'static str,
}

/// A phone system as the settings page presents it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderForm {
    /// The `kind` value in `[provider]`.
    pub kind: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub fields: Vec<Field>,
}

/// Every provider's form, in the order the page lists them.
pub fn forms() -> Vec<ProviderForm> {
    [ProviderKind::Simulator, ProviderKind::Telecmi, ProviderKind::Kazoo, ProviderKind::Baresip]
        .into_iter()
        .map(form)
        .collect()
}

/// The keyring entries the settings page may write: those named by a secret field.
pub fn secret_entries() -> Vec<&'static str> {
    forms()
        .into_iter()
        .flat_map(|f| f.fields)
        .filter_map(|field| match field.input {
            Input::Secret { entry } => Some(entry),
            _ => None,
        })
        .collect()
}

fn form(kind: ProviderKind) -> ProviderForm {
    match kind {
        ProviderKind::Simulator => ProviderForm {
            kind: kind.as_str(),
            label: "Simulator (no phone account)",
            description: "A pretend phone system built in: dialed calls ring, are answered and end on a timer, \
                          and incoming calls can be simulated. Use it to wire up the CRM before connecting a real one.",
            fields: vec![
                number("ring_after_ms", "Far end rings after (ms)", 0, 60_000, "Time from dialing until the far end rings."),
                number("answer_after_ms", "Far end answers after (ms)", 0, 600_000, "Time from dialing until the far end answers; 0 = never."),
                number("hangup_after_ms", "Far end hangs up after (ms)", 0, 3_600_000, "Time from answering until the far end hangs up; 0 = never."),
            ],
        },
        ProviderKind::Telecmi => ProviderForm {
            kind: kind.as_str(),
            label: "TeleCMI click-to-call",
            description: "TeleCMI rings your softphone or mobile first, then the number. You answer and hang up on that device; \
                          with your TeleCMI login, /end hangs up too.",
            fields: vec![
                text("user_id", "User id", true, "Your TeleCMI user id, written extension_appid.", "101_1111112"),
                secret("app_secret", "App secret", crate::provider::telecmi::config::DEFAULT_SECRET_ENTRY, true, "From the TeleCMI dashboard; kept in the OS keyring."),
                choice("ring", "Ring first", &["softphone", "mobile"], "Your WebRTC softphone, or your mobile (follow-me)."),
                text("callerid", "Caller id", false, "Digits with country code the far end sees; TeleCMI's default when empty.", "919800000000"),
                text("login_id", "Login id (for hang-up)", false, "With your login and password, /end hangs up through TeleCMI.", ""),
                secret("password", "Login password", crate::provider::telecmi::config::DEFAULT_PASSWORD_ENTRY, false, "Kept in the OS keyring."),
                Field { key: "base_url", label: "API address", input: Input::Url, required: true, help: "TeleCMI's REST API.", placeholder: "" },
                choice("method", "Request form", &["post", "get"], "The documented JSON POST, or the GET form."),
                number("connect_timeout_secs", "Connect timeout (s)", 1, 60, "How long to wait for a connection to TeleCMI."),
                number("timeout_secs", "Request timeout (s)", 1, 120, "How long one request to TeleCMI may take."),
            ],
        },
        ProviderKind::Kazoo => ProviderForm {
            kind: kind.as_str(),
            label: "Kazoo click-to-call",
            description: "A Kazoo (2600Hz) click-to-call rings your extension, then the number; call events come from the \
                          blackhole websocket or the /webhooks/kazoo URL.",
            fields: vec![
                Field { key: "api_url", label: "Crossbar API address", input: Input::Url, required: true, help: "Usually port 8000.", placeholder: "http://kazoo.example.com:8000" },
                text("account_id", "Account id", true, "The 32-character account id.", ""),
                text("clicktocall_id", "Click-to-call id", true, "The click-to-call to connect through.", ""),
                choice("auth", "Sign in with", &["api_key", "user", "none"], "An API key, a user and password, or nothing (auth_required false)."),
                secret("secret", "API key or password", crate::provider::kazoo::config::KazooConfig::DEFAULT_SECRET_ENTRY, false, "Kept in the OS keyring."),
                text("username", "User name", false, "For signing in with a user.", ""),
                text("account_name", "Account name", false, "For signing in with a user.", ""),
                text("websocket_url", "Blackhole websocket", false, "Where call events come from, e.g. ws://kazoo.example.com:5555.", ""),
            ],
        },
        ProviderKind::Baresip => ProviderForm {
            kind: kind.as_str(),
            label: "baresip softphone",
            description: "A SIP softphone on this computer, controlled over its ctrl_tcp socket on loopback. CallBridge can run it for you.",
            fields: vec![
                text("control", "Control socket", true, "baresip's ctrl_tcp_listen address, on loopback.", "127.0.0.1:4444"),
                text("dial_uri", "Dial URI", true, "How a number becomes a SIP URI; $number is replaced.", "sip:$number@sip.example.com"),
                Field { key: "supervise", label: "Run baresip for me", input: Input::Bool, required: false, help: "CallBridge starts baresip with a generated configuration and restarts it.", placeholder: "" },
                text("account", "SIP account", false, "When CallBridge runs baresip: sip:alice@sip.example.com.", ""),
                text("password_entry", "Password keyring entry", false, "The keyring entry holding the SIP password.", "baresip"),
            ],
        },
    }
}

fn text(key: &'static str, label: &'static str, required: bool, help: &'static str, placeholder: &'static str) -> Field {
    Field { key, label, input: Input::Text, required, help, placeholder }
}

fn secret(key: &'static str, label: &'static str, entry: &'static str, required: bool, help: &'static str) -> Field {
    Field { key, label, input: Input::Secret { entry }, required, help, placeholder: "" }
}

fn choice(key: &'static str, label: &'static str, options: &'static [&'static str], help: &'static str) -> Field {
    Field { key, label, input: Input::Choice { options }, required: true, help, placeholder: "" }
}

fn number(key: &'static str, label: &'static str, min: u64, max: u64, help: &'static str) -> Field {
    Field { key, label, input: Input::Number { min, max }, required: true, help, placeholder: "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulator_field_is_a_key_of_its_config_section() {
        let section = serde_json::to_value(crate::config::SimulatorConfig::default()).expect("json");
        let form = form(ProviderKind::Simulator);
        for field in &form.fields {
            assert!(section.get(field.key).is_some(), "{} is not a simulator setting", field.key);
        }
        let json = serde_json::to_value(&form).expect("json");
        assert_eq!(json["fields"][0]["type"], "number");
        assert_eq!(json["fields"][0]["max"], 60_000);
    }

    #[test]
    fn every_provider_field_is_a_key_of_its_config_section() {
        for form in forms().into_iter().filter(|f| f.kind != "simulator") {
            for field in form.fields.iter().filter(|f| !matches!(f.input, Input::Secret { .. })) {
                let known = crate::config::Config::from_toml(
                    &format!("[provider.{}]\n{} = {}\n", form.kind, field.key, sample(field)),
                    std::path::Path::new("form.toml"),
                );
                if let Err(e) = known {
                    assert!(!e.to_string().contains("unknown field"), "{}.{}: {e}", form.kind, field.key);
                }
            }
        }
        assert!(secret_entries().contains(&"telecmi"));
    }

    fn sample(field: &Field) -> String {
        match &field.input {
            Input::Number { min, .. } => min.to_string(),
            Input::Bool => "false".into(),
            Input::Choice { options } => format!("{:?}", options[0]),
            _ => "\"x\"".into(),
        }
    }
}
