//! Provider webhooks: phone systems that push call events to CallBridge over HTTP.
//!
//! Each route parses one provider's wire format into [`crate::provider::ProviderEvent`]s and feeds
//! them to the engine's tracker, answering `200` with what it understood, or `400` with what was wrong
//! with the payload.

mod generic;
mod kazoo;
mod payload;
mod telecmi;

use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::Extension;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::engine::Engine;
use crate::provider::kazoo::events::Legs;

pub fn routes() -> OpenApiRouter<Engine> {
    // Kazoo's legs are tied into calls for as long as this listener runs.
    let kazoo_legs = Arc::new(Mutex::new(Legs::default()));
    OpenApiRouter::new()
        .routes(routes!(generic::receive_get, generic::receive_post))
        .routes(routes!(kazoo::receive).layer(Extension(kazoo_legs)))
        // Applies to the routes above only.
        .layer(DefaultBodyLimit::max(payload::MAX_BODY))
        .routes(routes!(telecmi::get, telecmi::post))
}
