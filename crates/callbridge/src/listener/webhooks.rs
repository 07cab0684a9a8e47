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
use axum::routing::{get, on, MethodFilter};
use axum::Router;

use crate::engine::Engine;

pub fn routes() -> Router<Engine> {
    let get_or_post = MethodFilter::GET.or(MethodFilter::POST);
    Router::new()
        .route("/generic", on(get_or_post, generic::receive))
        .route("/kazoo", on(get_or_post, kazoo::receive))
        // Applies to the routes above only.
        .layer(DefaultBodyLimit::max(payload::MAX_BODY))
        .route("/telecmi", get(telecmi::get).post(telecmi::post))
}
