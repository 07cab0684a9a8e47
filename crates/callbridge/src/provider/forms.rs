//! What the settings page shows for each phone system: its fields, described as data.
//!
//! The "Phone system" section of the settings page is drawn from [`crate::provider::registry::forms`]: one [`ProviderForm`] per
//! provider in [`crate::provider::registry::PROVIDERS`], built by the provider's own module, each field naming its key under `[provider.<kind>]` in the config file and how to
//! edit it. Secret fields name the keyring entry the configuration says (`secret_entry`,
//! `password_entry`) instead of a key: their value goes to the OS keyring through
//! `PUT /api/v1/secrets/{entry}` and is never part of the config. Number fields take their range from
//! [`crate::config::limits`], as validation does. The helpers here ([`text`], [`secret`], [`choice`],
//! [`number`]) build the fields; the page needs no change for a new provider.

use serde::Serialize;

use crate::config::limits::Limit;

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

pub fn text(key: &'static str, label: &'static str, required: bool, help: &'static str, placeholder: &'static str) -> Field {
    Field { key, label, input: Input::Text, required, help, placeholder }
}

pub fn secret(key: &'static str, label: &'static str, entry: &str, entry_key: &'static str, required: bool, help: &'static str) -> Field {
    Field { key, label, input: Input::Secret { entry: entry.trim().to_owned(), entry_key }, required, help, placeholder: "" }
}

pub fn choice(key: &'static str, label: &'static str, options: &'static [&'static str], help: &'static str) -> Field {
    Field { key, label, input: Input::Choice { options }, required: true, help, placeholder: "" }
}

/// A number field for the setting `limit` bounds (its key is the last part of the limit's path).
pub fn number(limit: Limit, label: &'static str, help: &'static str) -> Field {
    let key = limit.field.rsplit('.').next().unwrap_or(limit.field);
    Field { key, label, input: Input::Number { min: limit.min, max: limit.max }, required: true, help, placeholder: "" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::registry::{forms, writable_secret_entries as secret_entries};
    use crate::config::Config;
    use crate::provider::baresip::config::DEFAULT_PASSWORD_ENTRY as BARESIP_PASSWORD_ENTRY;

    #[test]
    fn every_simulator_field_is_a_key_of_its_config_section() {
        let section = serde_json::to_value(crate::config::SimulatorConfig::default()).expect("json");
        let form = crate::provider::ProviderSection::form(&Config::default().provider.simulator);
        for field in &form.fields {
            assert!(section.get(field.key).is_some(), "{} is not a simulator setting", field.key);
        }
        let json = serde_json::to_value(&form).expect("json");
        assert_eq!(json["fields"][0]["type"], "number");
        assert_eq!(json["fields"][0]["max"], crate::provider::simulator::RING_AFTER.max);
    }

    #[test]
    fn every_provider_field_is_a_key_of_its_config_section() {
        for form in forms(&Config::default().provider).into_iter().filter(|f| f.kind != "simulator") {
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
        assert!(secret_entries(&Config::default().provider).contains(&"telecmi".to_owned()));
    }

    /// Each number field's range is its setting's limit, so the form and validation agree.
    #[test]
    fn number_fields_take_their_range_from_the_limits() {
        for form in forms(&Config::default().provider) {
            for field in form.fields {
                if let Input::Number { min, max } = field.input {
                    let path = format!("provider.{}.{}", form.kind, field.key);
                    let limit = crate::provider::registry::limits(&Config::default().provider).into_iter().find(|l| l.field == path).unwrap_or_else(|| panic!("{path} has no limit"));
                    assert_eq!((min, max), (limit.min, limit.max), "{path}");
                }
            }
        }
    }

    /// Secret fields write to the entries the configuration names, not to the defaults: for every
    /// provider's every secret field, a configuration naming another entry (in the setting the field
    /// names) gets a form whose field writes there, and the page may write that entry.
    #[test]
    fn secret_fields_name_the_configured_entries() {
        let defaults = Config::default().provider;
        let mut json = serde_json::to_value(&defaults).expect("json");
        let mut expected = Vec::new();
        for form in forms(&defaults) {
            for field in form.fields {
                if let Input::Secret { entry_key, .. } = field.input {
                    let entry = format!("custom-{}-{}", form.kind, field.key);
                    json[form.kind][entry_key] = serde_json::Value::String(entry.clone());
                    expected.push((format!("{}.{}", form.kind, field.key), entry, entry_key));
                }
            }
        }
        assert!(expected.len() >= 4, "the providers' secret fields: {expected:?}");
        let config: crate::provider::registry::ProviderConfig = serde_json::from_value(json).expect("the entries are settings");
        let got: Vec<(String, String, &str)> = forms(&config)
            .into_iter()
            .flat_map(|f| f.fields.into_iter().map(move |field| (f.kind, field)))
            .filter_map(|(kind, field)| match field.input {
                Input::Secret { entry, entry_key } => Some((format!("{kind}.{}", field.key), entry, entry_key)),
                _ => None,
            })
            .collect();
        assert_eq!(got, expected);
        for (_, entry, _) in &expected {
            assert!(secret_entries(&config).contains(entry), "{entry}");
        }
        assert!(!secret_entries(&config).contains(&"telecmi".to_owned()), "the default entry is not writable once another is configured");
        // Without a configured entry, the SIP password goes to the default one.
        assert!(secret_entries(&defaults).contains(&BARESIP_PASSWORD_ENTRY.to_owned()));
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
