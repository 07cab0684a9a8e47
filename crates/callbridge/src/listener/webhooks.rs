//! Provider webhooks: phone systems that push call events to CallBridge over HTTP.
//!
//! Each route parses one provider's wire format (as the provider documents it) into
//! [`crate::provider::ProviderEvent`]s and feeds them to the engine's tracker, answering `200` with
//! what it understood, or `400` with what was wrong with the payload.

mod generic;
mod kazoo;
mod payload;
mod telecmi;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::Engine;

pub fn routes() -> OpenApiRouter<Engine> {
    OpenApiRouter::new()
        .routes(routes!(generic::receive_get, generic::receive_post))
        .routes(routes!(kazoo::receive))
        // Applies to the routes above only.
        .layer(DefaultBodyLimit::max(payload::MAX_BODY))
        .routes(routes!(telecmi::get, telecmi::post))
}
