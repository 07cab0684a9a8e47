//! Provider webhooks: phone systems that push call events to CallBridge over HTTP.
//!
//! Each route parses one provider's wire format (as the provider documents it) into
//! [`crate::provider::ProviderEvent`]s and feeds them to the engine's tracker. Every route reads the
//! request with [`payload::read`] and answers alike: `200` with `understood` (what it read) and
//! `events` (the call events it produced), or `400` `bad_webhook` with what was wrong
//! ([`payload::refused`]). Bodies are limited as for every request to the listener.

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
        .routes(routes!(kazoo::receive))
        .routes(routes!(telecmi::get, telecmi::post))
}
