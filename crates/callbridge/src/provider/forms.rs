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
    [ProviderKind::Simulator].into_iter().map(form).collect()
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
    }
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
}
