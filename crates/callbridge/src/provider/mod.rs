//! Providers: the phone systems that place and control calls.
//!
//! A [`Provider`] does three things — `dial`, `answer`, `hangup` — and says up front which of them it
//! can do ([`Capabilities`]), so a command it cannot carry out is refused with the provider's name and
//! the reason (HTTP 501) instead of succeeding silently. What a provider learns about calls (its
//! webhooks, its control socket, its timers) it reports as [`ProviderEvent`]s through the
//! [`EventSink`] it was built with; the [`crate::tracker::CallTracker`] turns those into calls and call
//! events. Providers never emit notifications or touch the UI themselves.
//!
//! Each provider module owns its section of the config file, `[provider.<name>]`, and implements
//! [`ProviderSection`] for it: how the section is checked, the provider's settings form, the keyring
//! entries it reads and how the provider starts. [`registry`] lists the providers, one line each; the
//! rest of CallBridge reads that list rather than naming providers.

pub mod baresip;
pub mod forms;
pub mod kazoo;
pub mod registry;
pub mod simulator;
pub mod telecmi;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::call::{Call, CallId, Direction, Disposition};
use crate::config::invalid::Invalid;
use crate::config::limits::Limit;
use crate::secrets::SecretStore;
use forms::ProviderForm;

/// What a provider is built from.
#[derive(Debug, Clone)]
pub struct ProviderContext {
    /// Where the provider reports what it observes.
    pub sink: EventSink,
    pub secrets: Arc<dyn SecretStore>,
}

/// A provider's section of the config file, `[provider.<name>]`, and what the rest of CallBridge asks
/// of a provider through it. The section type is the provider's own; [`registry`] names it once.
pub trait ProviderSection: Send + Sync + std::fmt::Debug + SectionJson {
    /// Checks the section; `selected` says whether it is the configured provider (some settings are
    /// required only to use it).
    fn validate(&self, selected: bool) -> Result<(), Invalid>;
    /// The provider's settings form, its secret fields naming the keyring entries the section names.
    fn form(&self) -> ProviderForm;
    /// The keyring entries the provider reads with these settings (`callbridge secret status` lists
    /// them).
    fn secret_entries(&self, selected: bool) -> Vec<String>;
    /// Builds the running provider. Called inside the engine's Tokio runtime; must not fail: a
    /// provider that lacks something says so in its `health` and refuses commands with
    /// [`ProviderError::NotConfigured`].
    fn start(&self, start: Start<'_>) -> Arc<dyn Provider>;
    /// The bounds of the section's numeric settings (the settings page checks against them too).
    fn limits(&self) -> &'static [Limit] {
        &[]
    }
    /// Whether a saved config file leaves the section out (a section left at its defaults need not
    /// be written).
    fn is_untouched(&self) -> bool;
}

/// A section as JSON, as `GET /api/v1/config` would show it, whether or not a saved file would leave
/// it out. Every serializable section has it.
pub trait SectionJson {
    fn to_json(&self) -> serde_json::Value;
}

impl<T: Serialize> SectionJson for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::Value::String(format!("cannot be shown as JSON: {e}")))
    }
}

/// What a provider is started with.
#[derive(Debug)]
pub struct Start<'a> {
    pub context: ProviderContext,
    /// The engine's simulator, always running (simulated incoming calls need it whatever is
    /// configured); the simulator provider is this one.
    pub simulator: &'a Arc<dyn Provider>,
}

/// Whether a provider can carry out a command, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    pub supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Support {
    pub fn yes() -> Support {
        Support { supported: true, reason: None }
    }

    pub fn no(reason: impl Into<String>) -> Support {
        Support { supported: false, reason: Some(reason.into()) }
    }
}

/// What a provider can do right now (it may depend on its configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub dial: Support,
    pub answer: Support,
    pub hangup: Support,
}

/// Whether a provider is ready to use; shown by `status` and the tray.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderHealth {
    pub ready: bool,
    /// What is wrong or missing when not ready ("no app secret in the keyring", "baresip not reachable").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl ProviderHealth {
    pub fn ready() -> Self {
        ProviderHealth { ready: true, problem: None }
    }

    pub fn problem(problem: impl Into<String>) -> Self {
        ProviderHealth { ready: false, problem: Some(problem.into()) }
    }
}

/// What a successful dial tells about the new call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed {
    /// The provider's id for the call, when it gives one at once.
    pub provider_call_id: Option<String>,
    /// The click-to-call request id (TeleCMI's `request_id`), when there is one.
    pub request_id: Option<String>,
}

/// Why a provider could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider cannot do this at all (HTTP 501).
    #[error("{provider} cannot {action}: {reason}")]
    Unsupported { provider: String, action: &'static str, reason: String },
    /// The provider refused the request; `message` is its own words (HTTP 502, or `status` when it maps).
    #[error("{provider} refused the request: {message}")]
    Rejected { provider: String, message: String, status: Option<u16> },
    /// The provider could not be reached or answered nonsense (HTTP 502).
    #[error("{provider} could not be reached: {message}")]
    Unreachable { provider: String, message: String },
    /// The provider did not answer in time (HTTP 504).
    #[error("{provider} did not answer within {seconds} s")]
    Timeout { provider: String, seconds: u64 },
    /// The provider is not set up (missing secret, missing field) (HTTP 503).
    #[error("{provider} is not configured: {problem}")]
    NotConfigured { provider: String, problem: String },
    /// The provider knows no such call (HTTP 409).
    #[error("{provider} has no such call: {message}")]
    NoSuchCall { provider: String, message: String },
}

/// A phone system behind CallBridge.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Short lowercase name used in calls, logs and errors (`simulator`, `telecmi`, …).
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    fn health(&self) -> ProviderHealth {
        ProviderHealth::ready()
    }

    /// Places `call` (direction `out`, `remote_number` is what to dial).
    async fn dial(&self, call: &Call) -> Result<Placed, ProviderError>;

    /// Answers the ringing incoming `call`.
    async fn answer(&self, call: &Call) -> Result<(), ProviderError>;

    /// Ends `call`, whatever its state (cancel, reject or hang up).
    async fn hangup(&self, call: &Call) -> Result<(), ProviderError>;

    /// Stops background work (sockets, timers). Called when the provider is replaced or the engine stops.
    async fn shutdown(&self) {}

    /// The concrete provider, for the webhook route that feeds it what only its webhooks say (e.g. which
    /// TeleCMI leg to hang up). `None` for providers that need nothing of the kind.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// What a provider saw happen. `Ringing` is progress of a call already started (the far end rings for an
/// outgoing call); it also counts as the start when the start itself was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderEventKind {
    /// A call rings here.
    Incoming,
    /// A call was placed from here.
    Outgoing,
    /// The call is ringing (for an outgoing call: at the far end).
    Ringing,
    Answered,
    Ended,
}

/// Something a provider observed about a call, in CallBridge's words but with the provider's ids.
///
/// Providers fill in what they know; the tracker matches the event to a call by `call_id` (CallBridge's
/// own id, when the provider carries it through), then `provider_call_id`, then `request_id`, and
/// otherwise by numbers, extension and direction within a short window.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    pub provider: String,
    pub kind: ProviderEventKind,
    pub direction: Option<Direction>,
    pub call_id: Option<CallId>,
    pub provider_call_id: Option<String>,
    pub request_id: Option<String>,
    /// The other party's number.
    pub remote_number: Option<String>,
    pub remote_name: Option<String>,
    pub local_extension: Option<String>,
    /// For `ended`: how it ended, when the provider says.
    pub disposition: Option<Disposition>,
    /// When it happened, per the provider; now when absent.
    pub at: Option<DateTime<Utc>>,
}

impl ProviderEvent {
    pub fn new(provider: impl Into<String>, kind: ProviderEventKind) -> Self {
        ProviderEvent {
            provider: provider.into(),
            kind,
            direction: None,
            call_id: None,
            provider_call_id: None,
            request_id: None,
            remote_number: None,
            remote_name: None,
            local_extension: None,
            disposition: None,
            at: None,
        }
    }

    /// An event about a call CallBridge already knows by its own id.
    pub fn for_call(call: &Call, kind: ProviderEventKind) -> Self {
        ProviderEvent {
            call_id: Some(call.id.clone()),
            direction: Some(call.direction),
            remote_number: Some(call.remote_number.clone()),
            ..ProviderEvent::new(call.provider.clone(), kind)
        }
    }
}

/// Where providers send what they observe. Unbounded on purpose: provider events are rare and must
/// never be dropped or block a webhook handler.
pub type EventSink = mpsc::UnboundedSender<ProviderEvent>;
