//! Provider webhooks: phone systems that push call events to CallBridge over HTTP.
//!
//! Each route parses one provider's wire format (see `shared/reference/wire-formats.md`) into
//! [`crate::provider::ProviderEvent`]s and feeds them to the engine's tracker, answering `200` with
//! what it understood, or `400` with what was wrong with the payload.

mod telecmi;

use axum::routing::get;
use axum::Router;

use crate::engine::Engine;

pub fn routes() -> Router<Engine> {
    Router::new().route("/telecmi", get(telecmi::get).post(telecmi::post))
}
