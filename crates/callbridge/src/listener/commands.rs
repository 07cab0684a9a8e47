//! Seed 000's URL commands: `GET|POST /{make}/{number}`, `/{answer}`, `/{end}`.
//!
//! The segments come from the configuration, so a CRM built for Enreach's client works unchanged. A
//! number may be written as people paste it (`/make/+44%2020%207946%200000`, `/make/tel:+4420…`).

use axum::extract::{Path, State};
use axum::Extension;
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::ApiError;
use crate::call::Call;
use crate::config::ListenerConfig;
use crate::engine::Engine;
use crate::security::Caller;

pub fn routes(listener: &ListenerConfig) -> Router<Engine> {
    let get_or_post = MethodFilter::GET.or(MethodFilter::POST);
    Router::new()
        .route(&format!("/{}/{{number}}", listener.make), on(get_or_post, make))
        .route(&format!("/{}", listener.make), on(get_or_post, make_without_number))
        .route(&format!("/{}/", listener.make), on(get_or_post, make_without_number))
        .route(&format!("/{}", listener.answer), on(get_or_post, answer))
        .route(&format!("/{}", listener.end), on(get_or_post, end))
}

/// `{"ok":true,"action":…,"call_id":…,"call":{…}}`.
pub fn done(action: &str, call: &Call) -> Json<Value> {
    Json(json!({ "ok": true, "action": action, "call_id": call.id, "call": call }))
}

async fn make(State(engine): State<Engine>, Extension(caller): Extension<Caller>, Path(number): Path<String>) -> Result<Json<Value>, ApiError> {
    let call = engine.dial_from(&number, &caller).await?;
    Ok(done("dial", &call))
}

async fn make_without_number(State(engine): State<Engine>) -> ApiError {
    ApiError::bad_request(format!("the number is missing: use /{}/NUMBER", engine.config().listener.make))
}

async fn answer(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    let call = engine.answer(None).await?;
    Ok(done("answer", &call))
}

async fn end(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    let call = engine.hangup(None).await?;
    Ok(done("hangup", &call))
}
