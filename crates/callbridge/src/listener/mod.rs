//! The local HTTP listener (axum): URL commands from the CRM, the JSON API, provider webhooks.
//!
//! One port (5678 by default) serves:
//! * the URL commands of Enreach Contact's desktop client — `/{make}/{number}`, `/{answer}`, `/{end}`, segments from the config, on
//!   GET and POST (see [`commands`]);
//! * the versioned JSON API under `/api/v1/` that the UI and the CLI use (see [`api`]);
//! * provider webhooks under `/webhooks/` (see [`webhooks`]);
//! * `/health`.
//!
//! Every request passes the security [`guard`] first (see [`crate::security`]), and connections are
//! served with read timeouts ([`serve`]).
//!
//! Every answer is JSON: `{"ok":true,…}` with what was done, or `{"ok":false,"error":code,"message":…}`
//! with an HTTP status that fits ([`ApiError`]). A [`RunningListener`] can be stopped and started again
//! on another port without stopping the engine, which is how the settings page applies a new port.

pub mod api;
mod error;
pub mod commands;
pub mod events;
pub mod lookup_api;
pub mod openapi;
pub mod settings_api;
pub mod ui;
pub mod guard;
pub mod serve;
pub mod webhooks;

pub use error::ApiError;
pub use serve::RunningListener;

use axum::http::{StatusCode, Uri};
use axum::Router;

use crate::engine::Engine;

/// The whole application router for `engine`'s current configuration.
pub fn router(engine: Engine) -> Router {
    openapi::routes(&engine.config().listener)
        // A route that panics, for the tests of the catch-panic layer: debug builds only, and only when asked.
        .merge(crate::panics::test_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(guard::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(engine.clone(), guard::guard))
        // Outermost: a panic anywhere below, the guard included, is a 500 and a log line.
        .layer(crate::panics::catch_layer())
        .with_state(engine)
}

async fn not_found(axum::extract::State(engine): axum::extract::State<Engine>, uri: Uri) -> ApiError {
    let l = &engine.config().listener;
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_path",
        format!(
            "there is nothing at {}; the commands are /{}/NUMBER, /{} and /{}, the API is under /api/v1/",
            uri.path(),
            l.make,
            l.answer,
            l.end
        ),
    )
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{} does not take this method", uri.path()))
}

