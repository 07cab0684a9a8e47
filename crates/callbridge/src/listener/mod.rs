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
pub mod commands;
pub mod events;
pub mod lookup_api;
pub mod openapi;
pub mod settings_api;
pub mod ui;
pub mod guard;
pub mod serve;
pub mod webhooks;

use std::net::SocketAddr;

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::engine::{CommandError, Engine};

/// An error answered as JSON with a fitting status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = match e {
            CommandError::Throttled { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        ApiError { status, code: e.code(), message: e.to_string(), retry_after }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = self.code, message = %self.message, "request failed");
        } else {
            tracing::info!(status = %self.status, code = self.code, message = %self.message, "request refused");
        }
        let mut response = (self.status, Json(json!({ "ok": false, "error": self.code, "message": self.message }))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

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

/// A listener serving in the background.
#[derive(Debug)]
pub struct RunningListener {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningListener {
    /// Serves `app` on an already bound socket (so a caller can find out that a port is taken before
    /// changing anything else).
    pub fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<RunningListener> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve::serve(listener, app, stopped));
        tracing::info!(%addr, "listening");
        Ok(RunningListener { addr, stop: Some(stop), task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish, and waits until the port is free. A request
    /// that does not finish within [`Self::DRAIN`] (a stream nobody closed) is cut off.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Self::DRAIN, &mut self.task).await.is_err() {
            tracing::warn!(addr = %self.addr, "requests still open after {:?}; closing the listener anyway", Self::DRAIN);
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }

    /// How long [`Self::stop`] waits for requests in flight.
    pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
}
