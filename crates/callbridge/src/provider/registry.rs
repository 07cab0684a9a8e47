//! The phone systems CallBridge knows, in one list: [`PROVIDERS`].
//!
//! Each provider module says everything about itself in one [`Registration`]: its name, how its
//! `[provider.<name>]` section is validated, its settings form, the keyring entries it reads, how it is
//! started and the webhook routes it takes. The configuration, the engine, the settings page, the
//! `callbridge secret` command and the listener read this list instead of naming providers, so adding a
//! provider is a module plus one line here (see docs/development.md, "Adding a provider"). The config
//! file's `kind` and sections need a variant and a field for serde; they live here too, and
//! [`ProviderKind::registration`] is an exhaustive match, so the compiler catches a variant without a
//! registration, and a test catches a registration missing from [`PROVIDERS`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use super::baresip::config::BaresipConfig;
use super::forms::ProviderForm;
use super::kazoo::config::KazooConfig;
use super::simulator::{Simulator, SimulatorConfig};
use super::telecmi::TelecmiConfig;
use super::{baresip, kazoo, simulator, telecmi, Provider, ProviderContext};
use crate::config::Invalid;
use crate::engine::Engine;

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
    /// Its webhook routes, served under `/webhooks/`, if it takes webhooks.
    pub webhooks: Option<fn() -> OpenApiRouter<Engine>>,
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

/// Every provider's webhook routes.
pub fn webhook_routes() -> OpenApiRouter<Engine> {
    PROVIDERS
        .iter()
        .filter_map(|r| r.webhooks)
        .fold(OpenApiRouter::new(), |routes, provider_routes| routes.merge(provider_routes()))
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
