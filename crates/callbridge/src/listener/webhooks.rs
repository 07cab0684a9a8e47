//! Provider webhooks: phone systems that push call events to CallBridge over HTTP.
//!
//! Each route parses one provider's wire format (as the provider documents it) into
//! [`crate::provider::ProviderEvent`]s and feeds them to the engine's tracker. Every route reads the
//! request with [`payload::read`] and answers alike: `200` with `understood` (what it read) and
//! `events` (the call events it produced), or `400` `bad_webhook` with what was wrong
//! ([`payload::refused`]). Bodies are limited as for every request to the listener.
//!
//! The generic PBX route is always served; a provider's routes ([`telecmi()`], [`kazoo()`]) are mounted
//! because its registration in [`crate::provider::registry`] names them.

mod generic;
mod kazoo;
mod payload;
mod telecmi;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::Engine;

pub fn routes() -> OpenApiRouter<Engine> {
    OpenApiRouter::new()
        .routes(routes!(generic::receive_get, generic::receive_post))
        .merge(crate::provider::registry::webhook_routes())
}

/// `/kazoo`: Kazoo's channel webhooks.
pub fn kazoo() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(kazoo::receive))
}

/// `/telecmi`: TeleCMI's live events and CDRs.
pub fn telecmi() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(telecmi::get, telecmi::post))
}
