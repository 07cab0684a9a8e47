//! The Kazoo (2600Hz) provider: click-to-call through Crossbar, hangup through the channels API, and
//! call events from the blackhole websocket and/or the `/webhooks/kazoo` URL.
//!
//! * [`config`] — `[provider.kazoo]`;
//! * [`api`] — Crossbar: auth token, click-to-call connect, channel hangup;
//! * [`events`] — channel events in both wire shapes, legs tied into calls;
//! * [`dials`] — click-to-calls in flight, so their first events find the call being dialed;
//! * [`blackhole`] — the websocket subscription.
//!
//! Kazoo's click-to-call rings the user's own phone first and then the contact, so CallBridge cannot
//! answer a call for the user: `answer` is refused with that reason.
//!
//! The provider keeps the [`Legs`] of its calls, for the websocket and the `/webhooks/kazoo` route
//! alike ([`Kazoo::observe_webhook`]): they live as long as the provider (until its settings change),
//! not as long as a router, so a listener moved to another port mid-call still ties the call's legs.

pub mod api;
pub mod blackhole;
pub mod config;
pub mod dials;
pub mod events;

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::task::JoinHandle;

use self::api::Crossbar;
use self::config::{KazooAuth, KazooConfig};
use self::dials::Dials;
use self::events::{ChannelEvent, Legs};
use super::forms::ProviderForm;
use super::{Capabilities, Placed, Provider, ProviderError, ProviderEvent, ProviderHealth, ProviderSection, Start, Support};
use crate::call::Call;
use crate::config::invalid::Invalid;
use super::ProviderContext;

pub use self::config::NAME;

/// Kazoo in the provider list: its section is checked when it is selected; its webhooks are served
/// under `/webhooks/kazoo`.
impl ProviderSection for KazooConfig {
    fn validate(&self, selected: bool) -> Result<(), Invalid> {
        if selected {
            self.check()
        } else {
            Ok(())
        }
    }

    fn form(&self) -> ProviderForm {
        config::form(self)
    }

    fn secret_entries(&self, selected: bool) -> Vec<String> {
        match selected && self.auth != KazooAuth::None {
            true => vec![self.secret_entry().to_owned()],
            false => Vec::new(),
        }
    }

    fn start(&self, start: Start<'_>) -> Arc<dyn Provider> {
        Arc::new(Kazoo::start(self.clone(), start.context))
    }

    fn is_untouched(&self) -> bool {
        self.is_default()
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Kazoo {
    config: KazooConfig,
    /// `Err` when the configuration lacks what every request needs.
    api: Result<Arc<Crossbar>, ProviderError>,
    dials: Arc<Dials>,
    /// The legs of calls seen, from the websocket and from webhooks.
    legs: Arc<Mutex<Legs>>,
    websocket: Option<(Arc<blackhole::Status>, JoinHandle<()>)>,
}

impl Kazoo {
    /// Builds the client and, when a websocket URL is set, starts the subscription. Must be called
    /// inside a Tokio runtime.
    pub fn start(config: KazooConfig, context: ProviderContext) -> Kazoo {
        let api = Crossbar::new(&config, context.secrets).map(Arc::new);
        let dials = Arc::new(Dials::default());
        let legs = Arc::new(Mutex::new(Legs::default()));
        let websocket = match (&api, &config.websocket_url) {
            (Ok(api), Some(url)) => {
                let status = Arc::new(blackhole::Status::default());
                let task = tokio::spawn(blackhole::run(
                    url.clone(),
                    Arc::clone(api),
                    Arc::clone(&legs),
                    Arc::clone(&dials),
                    context.sink,
                    Arc::clone(&status),
                ));
                Some((status, task))
            }
            _ => None,
        };
        Kazoo { config, api, dials, legs, websocket }
    }

    /// What a channel event from a webhook means, with its leg tied to the call it belongs to.
    pub fn observe_webhook(&self, event: &ChannelEvent) -> ProviderEvent {
        self.legs.lock().unwrap_or_else(PoisonError::into_inner).observe(event)
    }

    fn api(&self) -> Result<&Crossbar, ProviderError> {
        self.api.as_deref().map_err(Clone::clone)
    }
}

#[async_trait]
impl Provider for Kazoo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dial: Support::yes(),
            answer: Support::no("Kazoo click-to-call rings your own phone; answer the call there"),
            hangup: if self.config.auth == KazooAuth::None {
                Support::no("hanging up through Kazoo's channels API needs an auth token; set provider.kazoo.auth")
            } else {
                Support::yes()
            },
        }
    }

    fn health(&self) -> ProviderHealth {
        let api = match &self.api {
            Ok(api) => api,
            Err(e) => return ProviderHealth::problem(e.to_string()),
        };
        if let Some(p) = api.problem() {
            return ProviderHealth::problem(p);
        }
        if let Some(p) = self.websocket.as_ref().and_then(|(status, _)| status.problem()) {
            return ProviderHealth::problem(p);
        }
        ProviderHealth::ready()
    }

    async fn dial(&self, call: &Call) -> Result<Placed, ProviderError> {
        let api = self.api()?;
        self.dials.begin();
        let connected = api.connect(&call.remote_number).await;
        self.dials.end(
            connected.as_ref().ok().and_then(|c| c.outbound_call_id.clone()).map(|leg| (leg, call.id.clone())),
        );
        let connected = connected?;
        tracing::info!(call = %call.id, outbound_call_id = ?connected.outbound_call_id, "Kazoo click-to-call executed");
        Ok(Placed { provider_call_id: connected.outbound_call_id, request_id: None })
    }

    async fn answer(&self, call: &Call) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported {
            provider: NAME.into(),
            action: "answer",
            reason: format!("Kazoo click-to-call rings your own phone; answer call {} there", call.id),
        })
    }

    async fn hangup(&self, call: &Call) -> Result<(), ProviderError> {
        let Some(uuid) = call.provider_call_id.as_deref() else {
            return Err(ProviderError::NoSuchCall {
                provider: NAME.into(),
                message: format!("Kazoo has not named a channel for call {} yet", call.id),
            });
        };
        if !self.api()?.hangup(uuid).await? {
            tracing::info!(call = %call.id, channel = uuid, "Kazoo has no such channel any more; the call is over");
        }
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some((_, task)) = &self.websocket {
            task.abort();
        }
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.websocket {
            task.abort();
        }
    }
}
