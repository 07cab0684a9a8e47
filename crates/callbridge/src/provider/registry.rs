//! The phone systems CallBridge knows, in one list: the [`providers!`] call below, one line per
//! provider.
//!
//! Each provider module owns its section of the config file and implements [`ProviderSection`] for it
//! (how the section is checked, its settings form, the keyring entries it reads, how the provider
//! starts). A line of the list names the provider's `kind` (the value of `[provider] kind` in the config
//! file), the field of its section (`[provider.<field>]`) and the section's type; from that line come
//! the [`ProviderKind`] variant, the [`ProviderConfig`] field and the entry of [`ProviderKind::ALL`].
//! The configuration, the engine, the settings page, the `callbridge secret` command and the listener
//! read those instead of naming providers, so adding a provider is a module plus one line here (see
//! docs/development.md, "Adding a provider").
//!
//! A provider that takes webhooks (phone systems that push call events over HTTP) reads their payloads
//! in its module; the HTTP handlers that feed what it read to the engine sit above the engine, with the
//! listener (`listener::webhooks::of_provider` names them).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::forms::{Input, ProviderForm};
use super::{Provider, ProviderSection, Start};
use crate::config::invalid::Invalid;
use crate::config::limits::{Limit, LIMITS};

/// Defines, from one line per provider (`Variant => field: SectionType`, in the order the settings page
/// lists them): the [`ProviderKind`] variant (its name in the config file is the field's name), the
/// [`ProviderConfig`] field and the entry of [`ProviderKind::ALL`].
macro_rules! providers {
    ($( $(#[$doc:meta])* $variant:ident => $field:ident: $section:ty, )+) => {
        /// The `kind` value in `[provider]`: which provider places the calls.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum ProviderKind {
            $( $(#[$doc])* $variant, )+
        }

        impl ProviderKind {
            /// Every provider, in the order the settings page lists them.
            pub const ALL: &[ProviderKind] = &[ $( ProviderKind::$variant, )+ ];

            /// The provider's name: its `kind` in the config file and the name of its section.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ProviderKind::$variant => stringify!($field), )+
                }
            }

            /// The provider's section of `config`.
            pub fn section(self, config: &ProviderConfig) -> &dyn ProviderSection {
                match self {
                    $( ProviderKind::$variant => &config.$field, )+
                }
            }
        }

        /// Which phone system places the calls, and each one's settings. A section whose
        /// [`ProviderSection::is_untouched`] says so is left out of a saved file.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct ProviderConfig {
            pub kind: ProviderKind,
            $(
                #[doc = concat!("`[provider.", stringify!($field), "]`")]
                #[serde(skip_serializing_if = "untouched")]
                pub $field: $section,
            )+
        }
    };
}

providers! {
    /// The built-in simulator: no phone account needed.
    Simulator => simulator: super::simulator::SimulatorConfig,
    /// TeleCMI click2call (https://doc.telecmi.com/chub/docs/click-to-call-admin).
    Telecmi => telecmi: super::telecmi::TelecmiConfig,
    /// Kazoo (2600Hz) click-to-call (https://github.com/2600hz/kazoo/blob/master/applications/crossbar/doc/clicktocall.md).
    Kazoo => kazoo: super::kazoo::config::KazooConfig,
    /// A local baresip softphone, driven over its ctrl_tcp socket.
    Baresip => baresip: super::baresip::config::BaresipConfig,
}

impl Default for ProviderKind {
    /// The simulator: it needs no phone account.
    fn default() -> Self {
        ProviderKind::Simulator
    }
}

/// Every provider, in the order the settings page lists them.
pub static PROVIDERS: &[ProviderKind] = ProviderKind::ALL;

fn untouched(section: &impl ProviderSection) -> bool {
    section.is_untouched()
}

/// Starts the provider `config` selects.
pub fn start(config: &ProviderConfig, start: Start<'_>) -> Arc<dyn Provider> {
    config.kind.section(config).start(start)
}

/// The keyring entries the configured providers read, without repeats, in the order of [`PROVIDERS`].
pub fn secret_entries(config: &ProviderConfig) -> Vec<String> {
    let mut entries = Vec::new();
    for &kind in PROVIDERS {
        for entry in kind.section(config).secret_entries(config.kind == kind) {
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
    }
    entries
}

/// The bounds of every numeric setting: those outside `[provider]` and each provider's.
pub fn limits(config: &ProviderConfig) -> Vec<Limit> {
    let mut all = LIMITS.to_vec();
    all.extend(PROVIDERS.iter().flat_map(|kind| kind.section(config).limits()));
    all
}

/// Every provider's settings form for `config`, in the order the page lists them.
pub fn forms(config: &ProviderConfig) -> Vec<ProviderForm> {
    PROVIDERS.iter().map(|kind| kind.section(config).form()).collect()
}

/// The keyring entries the settings page may write: those named by a secret field of a form.
pub fn writable_secret_entries(config: &ProviderConfig) -> Vec<String> {
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

impl ProviderConfig {
    /// Each provider checks its own section.
    pub fn validate(&self) -> Result<(), Invalid> {
        PROVIDERS.iter().try_for_each(|&kind| kind.section(self).validate(self.kind == kind))
    }
}

/// Every provider the config file's `kind` accepts is wired in everywhere. The list of kinds comes from
/// serde (what `kind` parses), not from [`PROVIDERS`], so a provider left out of the list — or a list
/// entry without a `kind` — fails here.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use axum::Router;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;
    use crate::engine::Services;
    use crate::secrets::MemorySecrets;

    /// The names `kind` accepts, as serde lists them when refusing an unknown one.
    fn kinds_the_config_accepts() -> Vec<String> {
        let refusal = toml::from_str::<ProviderConfig>("kind = \"no-such-provider\"").expect_err("an unknown kind").to_string();
        let expected = refusal.split_once("expected").map(|(_, list)| list).unwrap_or_else(|| panic!("{refusal}"));
        let names: Vec<String> = expected.split('`').skip(1).step_by(2).map(str::to_owned).collect();
        assert!(!names.is_empty(), "no kinds in {refusal:?}");
        names
    }

    fn kind_named(name: &str) -> ProviderKind {
        let parsed: ProviderConfig = toml::from_str(&format!("kind = \"{name}\"")).unwrap_or_else(|e| panic!("kind = {name:?}: {e}"));
        parsed.kind
    }

    #[test]
    fn the_list_holds_each_kind_once() {
        let mut accepted = kinds_the_config_accepts();
        let mut listed: Vec<String> = PROVIDERS.iter().map(|kind| kind.as_str().to_owned()).collect();
        accepted.sort();
        listed.sort();
        assert_eq!(listed, accepted, "PROVIDERS and the kinds [provider] kind accepts differ");
        for name in &accepted {
            let kind = kind_named(name);
            assert_eq!(kind.as_str(), name);
            assert!(PROVIDERS.contains(&kind));
        }
    }

    async fn send(router: &Router, method: Method, path: &str) -> (StatusCode, Value) {
        let request = Request::builder().method(method).uri(path).header("host", "localhost:5678");
        let response = router.clone().oneshot(request.body(Body::empty()).expect("request")).await.unwrap_or_else(|e| match e {});
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn every_kind_is_started_served_and_known() {
        for name in kinds_the_config_accepts() {
            let kind = kind_named(&name);
            let mut config = Config::default();
            config.provider.kind = kind;
            config.security.dials_per_minute = 0;

            // It starts on its default settings, as the provider of that name.
            let services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
            let engine = crate::engine::Engine::start_with(config.clone(), services);
            assert_eq!(engine.provider().name(), name, "kind = {name:?} started another provider");
            let router = crate::listener::router(engine.clone());

            // The settings page gets its form.
            let (status, schema) = send(&router, Method::GET, "/api/v1/settings/schema").await;
            assert_eq!(status, StatusCode::OK, "{schema}");
            let forms = schema["providers"].as_array().cloned().unwrap_or_default();
            assert!(forms.iter().any(|f| f["kind"] == name.as_str()), "{name} has no form in the settings schema");
            assert_eq!(schema["current"], name.as_str());

            // The OpenAPI document's `kind` values list it.
            let (_, doc) = send(&router, Method::GET, "/api/v1/openapi.json").await;
            let documented = doc["components"]["schemas"]["ProviderKind"]["enum"].as_array().cloned().unwrap_or_default();
            assert!(documented.iter().any(|k| k == name.as_str()), "{name} is not a ProviderKind in the OpenAPI document: {documented:?}");

            // The keyring entries it reads are listed by `callbridge secret status` and writable from the
            // settings page; every secret its form requires is among them.
            let reads = kind.section(&config.provider).secret_entries(true);
            let cli = secret_entries(&config.provider);
            let writable = writable_secret_entries(&config.provider);
            for entry in &reads {
                assert!(cli.contains(entry), "{name} reads {entry:?}, which `callbridge secret status` does not list");
                assert!(writable.contains(entry), "{name} reads {entry:?}, which the settings page cannot write");
            }
            let form = forms.iter().find(|f| f["kind"] == name.as_str()).cloned().unwrap_or_default();
            for field in form["fields"].as_array().cloned().unwrap_or_default() {
                if field["type"] == "secret" && field["required"] == true {
                    let entry = field["entry"].as_str().unwrap_or_default().to_owned();
                    assert!(cli.contains(&entry), "{name}'s form requires {entry:?}, which `callbridge secret status` does not list");
                }
            }

            // Its webhook routes are mounted: each answers, if only to refuse the empty request.
            if let Some(routes) = crate::listener::webhooks::of_provider(kind) {
                let (_, documentation) = routes.split();
                let (_, doc) = documentation.replay(utoipa_axum::router::OpenApiRouter::new()).split_for_parts();
                assert!(!doc.paths.paths.is_empty(), "{name} registers webhook routes but none are documented");
                for (path, item) in &doc.paths.paths {
                    let methods = [(Method::GET, item.get.is_some()), (Method::POST, item.post.is_some())];
                    for (method, _) in methods.into_iter().filter(|(_, has)| *has) {
                        let url = format!("/webhooks{path}");
                        let (status, body) = send(&router, method.clone(), &url).await;
                        assert!(
                            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                            "{method} {url} of {name} is not mounted: {status} {body}"
                        );
                    }
                }
            }
            engine.shutdown().await;
        }
    }
}
