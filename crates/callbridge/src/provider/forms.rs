//! What the settings page shows for each phone system: its fields, described as data.
//!
//! The "Phone system" section of the settings page is drawn from [`forms`]: one [`ProviderForm`] per
//! [`ProviderKind`], each field naming its key under `[provider.<kind>]` in the config file and how to
//! edit it. Secret fields name the keyring entry the configuration says (`secret_entry`,
//! `password_entry`) instead of a key: their value goes to the OS keyring through
//! `PUT /api/v1/secrets/{entry}` and is never part of the config. Number fields take their range from
//! [`crate::config::limits`], as validation does. Adding a provider means adding its arm to [`form`];
//! the page needs no change.

use serde::Serialize;

use crate::config::limits::{self, Limit};
use crate::config::{Config, ProviderKind};
use crate::provider::baresip::config::DEFAULT_PASSWORD_ENTRY as BARESIP_PASSWORD_ENTRY;

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
    /// Kept in the OS keyring under `entry`, the entry the configuration names in `entry_key` (or
    /// its default); shown masked, never sent back.
    Secret { entry: String, entry_key: &'static str },
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

/// Every provider's form for `config`, in the order the page lists them.
pub fn forms(config: &Config) -> Vec<ProviderForm> {
    [ProviderKind::Simulator, ProviderKind::Telecmi, ProviderKind::Kazoo, ProviderKind::Baresip]
        .into_iter()
        .map(|kind| form(kind, config))
        .collect()
}

/// The keyring entries the settings page may write: those named by a secret field under `config`.
pub fn secret_entries(config: &Config) -> Vec<String> {
    let mut entries = Vec::new();
    for field in forms(config).into_iter().flat_map(|f| f.fields) {
        if let Input::Secret { entry, .. } = field.input {
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
    }
    entries
}

fn form(kind: ProviderKind, config: &Config) -> ProviderForm {
    let telecmi = &config.provider.telecmi;
    let kazoo = &config.provider.kazoo;
    let baresip = &config.provider.baresip;
    match kind {
        ProviderKind::Simulator => ProviderForm {
            kind: kind.as_str(),
            label: "Simulator (no phone account)",
            description: "A pretend phone system built in: dialed calls ring, are answered and end on a timer, \
                          and incoming calls can be simulated. Use it to wire up the CRM before connecting a real one.",
            fields: vec![
                number(limits::SIMULATOR_RING, "Far end rings after (ms)", "Time from dialing until the far end rings."),
                number(limits::SIMULATOR_ANSWER, "Far end answers after (ms)", "Time from dialing until the far end answers; 0 = never."),
                number(limits::SIMULATOR_HANGUP, "Far end hangs up after (ms)", "Time from answering until the far end hangs up; 0 = never."),
            ],
        },
        ProviderKind::Telecmi => ProviderForm {
            kind: kind.as_str(),
            label: "TeleCMI click-to-call",
            description: "TeleCMI rings your softphone or mobile first, then the number. You answer and hang up on that device; \
                          with your TeleCMI login, /end hangs up too.",
            fields: vec![
                text("user_id", "User id", true, "Your TeleCMI user id, written extension_appid.", "101_1111112"),
                secret("app_secret", "App secret", &telecmi.secret_entry, "secret_entry", true, "From the TeleCMI dashboard; kept in the OS keyring."),
                choice("ring", "Ring first", &["softphone", "mobile"], "Your WebRTC softphone, or your mobile (follow-me)."),
                text("callerid", "Caller id", false, "Digits with country code the far end sees; TeleCMI's default when empty.", "919800000000"),
                text("login_id", "Login id (for hang-up)", false, "With your login and password, /end hangs up through TeleCMI.", ""),
                secret("password", "Login password", &telecmi.password_entry, "password_entry", false, "Kept in the OS keyring."),
                Field { key: "base_url", label: "API address", input: Input::Url, required: true, help: "TeleCMI's REST API.", placeholder: "" },
                choice("method", "Request form", &["post", "get"], "The documented JSON POST, or the GET form."),
                number(limits::TELECMI_CONNECT, "Connect timeout (s)", "How long to wait for a connection to TeleCMI; at most the request timeout."),
                number(limits::TELECMI_TIMEOUT, "Request timeout (s)", "How long one request to TeleCMI may take."),
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
                secret("secret", "API key or password", kazoo.secret_entry(), "secret_entry", false, "Kept in the OS keyring."),
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
                text("password_entry", "Password keyring entry", false, "The keyring entry holding the SIP password.", BARESIP_PASSWORD_ENTRY),
                secret(
                    "sip_password",
                    "SIP password",
                    baresip.password_entry.as_deref().map(str::trim).filter(|e| !e.is_empty()).unwrap_or(BARESIP_PASSWORD_ENTRY),
                    "password_entry",
                    false,
                    "The SIP account's password, kept in the OS keyring under the password keyring entry.",
                ),
            ],
        },
    }
}

fn text(key: &'static str, label: &'static str, required: bool, help: &'static str, placeholder: &'static str) -> Field {
    Field { key, label, input: Input::Text, required, help, placeholder }
}

fn secret(key: &'static str, label: &'static str, entry: &str, entry_key: &'static str, required: bool, help: &'static str) -> Field {
    Field { key, label, input: Input::Secret { entry: entry.trim().to_owned(), entry_key }, required, help, placeholder: "" }
}

fn choice(key: &'static str, label: &'static str, options: &'static [&'static str], help: &'static str) -> Field {
    Field { key, label, input: Input::Choice { options }, required: true, help, placeholder: "" }
}

/// A number field for the setting `limit` bounds (its key is the last part of the limit's path).
fn number(limit: Limit, label: &'static str, help: &'static str) -> Field {
    let key = limit.field.rsplit('.').next().unwrap_or(limit.field);
    Field { key, label, input: Input::Number { min: limit.min, max: limit.max }, required: true, help, placeholder: "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulator_field_is_a_key_of_its_config_section() {
        let section = serde_json::to_value(crate::config::SimulatorConfig::default()).expect("json");
        let form = form(ProviderKind::Simulator, &Config::default());
        for field in &form.fields {
            assert!(section.get(field.key).is_some(), "{} is not a simulator setting", field.key);
        }
        let json = serde_json::to_value(&form).expect("json");
        assert_eq!(json["fields"][0]["type"], "number");
        assert_eq!(json["fields"][0]["max"], limits::SIMULATOR_RING.max);
    }

    #[test]
    fn every_provider_field_is_a_key_of_its_config_section() {
        for form in forms(&Config::default()).into_iter().filter(|f| f.kind != "simulator") {
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
        assert!(secret_entries(&Config::default()).contains(&"telecmi".to_owned()));
    }

    /// Each number field's range is its setting's limit, so the form and validation agree.
    #[test]
    fn number_fields_take_their_range_from_the_limits() {
        for form in forms(&Config::default()) {
            for field in form.fields {
                if let Input::Number { min, max } = field.input {
                    let path = format!("provider.{}.{}", form.kind, field.key);
                    let limit = limits::of(&path).unwrap_or_else(|| panic!("{path} has no limit"));
                    assert_eq!((min, max), (limit.min, limit.max), "{path}");
                }
            }
        }
    }

    /// Secret fields write to the entries the configuration names, not to the defaults.
    #[test]
    fn secret_fields_name_the_configured_entries() {
        let mut config = Config::default();
        config.provider.telecmi.secret_entry = "acme-telecmi-app".into();
        config.provider.telecmi.password_entry = "acme-telecmi-login".into();
        config.provider.kazoo.secret_entry = "acme-kazoo".into();
        config.provider.baresip.password_entry = Some("acme-sip".into());
        let entries: Vec<(String, String, &str)> = forms(&config)
            .into_iter()
            .flat_map(|f| f.fields.into_iter().map(move |field| (f.kind, field)))
            .filter_map(|(kind, field)| match field.input {
                Input::Secret { entry, entry_key } => Some((format!("{kind}.{}", field.key), entry, entry_key)),
                _ => None,
            })
            .collect();
        let expected = [
            ("telecmi.app_secret", "acme-telecmi-app", "secret_entry"),
            ("telecmi.password", "acme-telecmi-login", "password_entry"),
            ("kazoo.secret", "acme-kazoo", "secret_entry"),
            ("baresip.sip_password", "acme-sip", "password_entry"),
        ];
        let got: Vec<(&str, &str, &str)> = entries.iter().map(|(f, e, k)| (f.as_str(), e.as_str(), *k)).collect();
        assert_eq!(got, expected);
        for (_, entry, _) in &expected {
            assert!(secret_entries(&config).contains(&(*entry).to_owned()), "{entry}");
        }
        assert!(!secret_entries(&config).contains(&"telecmi".to_owned()), "the default entry is not writable once another is configured");
        // Without a configured entry, the SIP password goes to the default one.
        assert!(secret_entries(&Config::default()).contains(&BARESIP_PASSWORD_ENTRY.to_owned()));
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
