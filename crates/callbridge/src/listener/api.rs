//! The JSON API under `/api/v1/`, used by the settings page in a browser, the CLI and scripts.
//!
//! | route | what |
//! |---|---|
//! | `GET status` | provider, its health and capabilities, live calls |
//! | `GET calls`, `GET calls/{id}` | calls, newest first |
//! | `POST dial` `{"number":…}` | place a call |
//! | `POST answer` `{"call_id"?:…}` | answer (the ringing call by default) |
//! | `POST hangup` `{"call_id"?:…}` | end (the current call by default) |
//! | `POST simulate/incoming` `{"number":…,"name"?:…}` | ring a simulated incoming call |
//! | `GET deliveries?limit=N` | the notification delivery log, newest first |
//! | `GET config` | the effective configuration |
//! | `PUT config`, `GET listener`, `POST notifications/test`, `GET providers`, `…/secrets…`, `GET calls/{id}/crm-url` | see [`super::settings_api`] |
//! | `GET events` | call events and settings changes as Server-Sent Events, see [`super::events`] |

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::commands::done;
use super::ApiError;
use crate::call::CallId;
use crate::engine::Engine;

pub fn routes() -> Router<Engine> {
    Router::new()
        .route("/status", get(status))
        .route("/calls", get(calls))
        .route("/calls/{id}", get(call))
        .route("/dial", post(dial))
        .route("/answer", post(answer))
        .route("/hangup", post(hangup))
        .route("/simulate/incoming", post(simulate_incoming))
        .route("/deliveries", get(deliveries))
        .route("/config", get(config))
        .merge(super::settings_api::routes())
        .merge(super::events::routes())
}

/// A JSON body, or a 400 that says what was wrong with it.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(v)| v).map_err(|e| ApiError::bad_request(format!("the request body is not what this route takes: {}", e.body_text())))
}

/// Like [`body`], but an empty body means the defaults.
fn optional_body<T: Default>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match payload {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        other => body(other),
    }
}

async fn status(State(engine): State<Engine>) -> Json<Value> {
    Json(json!({ "ok": true, "status": engine.status() }))
}

async fn calls(State(engine): State<Engine>) -> Json<Value> {
    Json(json!({ "ok": true, "calls": engine.calls() }))
}

async fn call(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = CallId::from(id);
    let call = engine
        .call(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_call", format!("no call with id {id}")))?;
    Ok(Json(json!({ "ok": true, "call": call })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialRequest {
    number: String,
}

async fn dial(State(engine): State<Engine>, payload: Result<Json<DialRequest>, JsonRejection>) -> Result<Json<Value>, ApiError> {
    let request = body(payload)?;
    let call = engine.dial(&request.number).await?;
    Ok(done("dial", &call))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    call_id: Option<CallId>,
}

async fn answer(State(engine): State<Engine>, payload: Result<Json<CallRequest>, JsonRejection>) -> Result<Json<Value>, ApiError> {
    let request = optional_body(payload)?;
    let call = engine.answer(request.call_id.as_ref()).await?;
    Ok(done("answer", &call))
}

async fn hangup(State(engine): State<Engine>, payload: Result<Json<CallRequest>, JsonRejection>) -> Result<Json<Value>, ApiError> {
    let request = optional_body(payload)?;
    let call = engine.hangup(request.call_id.as_ref()).await?;
    Ok(done("hangup", &call))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateRequest {
    number: String,
    name: Option<String>,
}

async fn simulate_incoming(
    State(engine): State<Engine>,
    payload: Result<Json<SimulateRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let request = body(payload)?;
    let call = engine.simulate_incoming(&request.number, request.name.as_deref())?;
    Ok(done("simulate_incoming", &call))
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn deliveries(State(engine): State<Engine>, Query(q): Query<Limit>) -> Json<Value> {
    let limit = q.limit.unwrap_or(100).min(1_000);
    Json(json!({ "ok": true, "deliveries": engine.deliveries().recent(limit) }))
}

async fn config(State(engine): State<Engine>) -> Json<Value> {
    Json(json!({ "ok": true, "config": *engine.config() }))
}
