//! Provider webhooks: phone systems that push call events to CallBridge over HTTP.
//!
//! Each route parses one provider's wire format (as the provider documents it) into
//! [`crate::provider::ProviderEvent`]s and feeds them to the engine's tracker. Every route reads the
//! request with [`payload::read`] and answers alike: `200` with `understood` (what it read) and
//! `events` (the call events it produced), or `400` `bad_webhook` with what was wrong
//! ([`payload::refused`]). Bodies are limited as for every request to the listener.
//!
//! The generic PBX route is always served; a provider's routes ([`telecmi()`], [`kazoo()`]) are named
//! by [`of_provider`] and mounted for every provider in [`crate::provider::registry::PROVIDERS`] (a
//! provider that takes no webhooks needs nothing here). What a payload says is read by the provider's
//! own module (`provider::telecmi::webhook`, `provider::kazoo::events`); the HTTP handlers live here,
//! above the engine they feed, so that the providers below know nothing of HTTP routing or the engine.

mod generic;
mod kazoo;
mod payload;
mod telecmi;

use super::openapi::table::{route, Routes};

use crate::provider::registry::{ProviderKind, PROVIDERS};

pub fn routes() -> Routes {
    PROVIDERS
        .iter()
        .filter_map(|&kind| of_provider(kind))
        .fold(Routes::new().route(route!(generic::receive_get, generic::receive_post)), |all, routes| all.merge(routes))
}

/// The webhook routes of a provider, served under `/webhooks/`, if it takes webhooks.
pub fn of_provider(kind: ProviderKind) -> Option<Routes> {
    match kind {
        ProviderKind::Telecmi => Some(telecmi()),
        ProviderKind::Kazoo => Some(kazoo()),
        _ => None,
    }
}

/// `/kazoo`: Kazoo's channel webhooks.
pub fn kazoo() -> Routes {
    Routes::new().route(route!(kazoo::receive))
}

/// `/telecmi`: TeleCMI's live events and CDRs.
pub fn telecmi() -> Routes {
    Routes::new().route(route!(telecmi::get, telecmi::post))
}
