//! The phone systems CallBridge knows, in one list: [`PROVIDERS`].
//!
//! Each provider module says everything about itself in one [`Registration`]: its name, how its
//! `[provider.<name>]` section is validated, its settings form, the keyring entries it reads and how it
//! is started. The configuration, the engine, the settings page, the
//! `callbridge secret` command and the listener read this list instead of naming providers, so adding a
//! provider is a module plus one line here (see docs/development.md, "Adding a provider"). The config
//! file's `kind` and sections need a variant and a field for serde; they live here too, and
//! [`ProviderKind::registration`] is an exhaustive match, so the compiler catches a variant without a
//! registration, and a test catches a registration missing from [`PROVIDERS`].
//!
//! A provider that takes webhooks (phone systems that push call events over HTTP) also names its
//! routes in `listener::webhooks::of_provider`, an exhaustive match over [`ProviderKind`]: the handlers
//! feed the engine, which sits above the providers, so they live with the listener.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::baresip::config::BaresipConfig;
use super::forms::{Input, ProviderForm};
use super::kazoo::config::KazooConfig;
use super::simulator::{Simulator, SimulatorConfig};
use super::telecmi::TelecmiConfig;
use super::{baresip, kazoo, simulator, telecmi, Provider, ProviderContext};
use crate::config::invalid::Invalid;

/// Every provider, in the order the settings page lists them.
pub static PROVIDERS: &[&Registration] = &[
    &simulator::REGISTRATION,
    &telecmi::REGISTRATION,
    &kazoo::REGISTRATION,
    &baresip::REGISTRATION,
];

/// What a provider module tells the rest of CallBridge about itself. Each function gets the whole
/// `[provider]` configuration and reads its own section.
#[derive(Debug)]
pub struct Registration {
    /// The `kind` that selects it; its `as_str` is the provider's name.
    pub kind: ProviderKind,
    /// Checks its section; `selected` says whether it is the configured provider (some sections are
    /// only checked then: their required settings are required only to use it).
    pub validate: fn(config: &ProviderConfig, selected: bool) -> Result<(), Invalid>,
    /// Its settings form, secret fields naming the keyring entries `config` names.
    pub form: fn(config: &ProviderConfig) -> ProviderForm,
    /// The keyring entries it reads under `config` (`callbridge secret status` lists them).
    pub secrets: fn(config: &ProviderConfig, selected: bool) -> Vec<String>,
    /// Builds the running provider (inside a Tokio runtime).
    pub start: fn(config: &ProviderConfig, start: Start<'_>) -> Arc<dyn Provider>,
}

impl Registration {
    pub fn name(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// What a provider is started with.
#[derive(Debug)]
pub struct Start<'a> {
    pub context: ProviderContext,
    /// The engine's simulator, always running (simulated incoming calls need it whatever is configured).
    pub simulator: &'a Arc<Simulator>,
}

/// Starts the provider `config` selects.
pub fn start(config: &ProviderConfig, start: Start<'_>) -> Arc<dyn Provider> {
    (config.kind.registration().start)(config, start)
}

/// The keyring entries the configured providers read, without repeats, in the order of [`PROVIDERS`].
pub fn secret_entries(config: &ProviderConfig) -> Vec<String> {
    let mut entries = Vec::new();
    for registration in PROVIDERS {
        for entry in (registration.secrets)(config, config.kind == registration.kind) {
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
    }
    entries
}

/// Every provider's settings form for `config`, in the order the page lists them.
pub fn forms(config: &ProviderConfig) -> Vec<ProviderForm> {
    PROVIDERS.iter().map(|provider| (provider.form)(config)).collect()
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

/// Which phone system places the calls, and each one's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub simulator: SimulatorConfig,
    /// `[provider.telecmi]`: used when `kind = "telecmi"`.
    #[serde(skip_serializing_if = "TelecmiConfig::is_default")]
    pub telecmi: TelecmiConfig,
    /// `[provider.baresip]`: a local SIP softphone (see `provider::baresip::config`).
    #[serde(skip_serializing_if = "BaresipConfig::is_default")]
    pub baresip: BaresipConfig,
    /// `[provider.kazoo]`: Kazoo click-to-call (see `provider::kazoo::config`).
    #[serde(skip_serializing_if = "KazooConfig::is_default")]
    pub kazoo: KazooConfig,
}

/// The `kind` value in `[provider]`: one variant per entry of [`PROVIDERS`], named as the provider's
/// [`Provider::name`] (a test checks the two agree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The built-in simulator: no phone account needed.
    #[default]
    Simulator,
    /// TeleCMI click2call (https://doc.telecmi.com/chub/docs/click-to-call-admin).
    Telecmi,
    /// A local baresip softphone, driven over its ctrl_tcp socket.
    Baresip,
    /// Kazoo (2600Hz) click-to-call.
    Kazoo,
}

impl ProviderKind {
    /// The provider's registration.
    pub fn registration(self) -> &'static Registration {
        match self {
            ProviderKind::Simulator => &simulator::REGISTRATION,
            ProviderKind::Telecmi => &telecmi::REGISTRATION,
            ProviderKind::Baresip => &baresip::REGISTRATION,
            ProviderKind::Kazoo => &kazoo::REGISTRATION,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Simulator => "simulator",
            ProviderKind::Telecmi => "telecmi",
            ProviderKind::Baresip => "baresip",
            ProviderKind::Kazoo => "kazoo",
        }
    }
}

impl ProviderConfig {
    /// Each provider checks its own section.
    pub fn validate(&self) -> Result<(), Invalid> {
        PROVIDERS.iter().try_for_each(|r| (r.validate)(self, self.kind == r.kind))
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
        let mut listed: Vec<String> = PROVIDERS.iter().map(|r| r.name().to_owned()).collect();
        accepted.sort();
        listed.sort();
        assert_eq!(listed, accepted, "PROVIDERS and the kinds [provider] kind accepts differ");
        for name in &accepted {
            let kind = kind_named(name);
            assert_eq!(kind.as_str(), name);
            assert!(std::ptr::eq(kind.registration(), *PROVIDERS.iter().find(|r| r.kind == kind).expect("listed")));
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
            let registration = kind.registration();
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
            let reads = (registration.secrets)(&config.provider, true);
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
            if let Some(routes) = crate::listener::webhooks::of_provider(registration.kind) {
                let (_, doc) = routes.split_for_parts();
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
