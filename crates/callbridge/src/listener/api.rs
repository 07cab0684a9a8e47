//! The JSON API under `/api/v1/`, used by the settings page in a browser, the CLI and scripts.
//!
//! | route | what |
//! |---|---|
//! | `GET status` | provider, its health and capabilities, live calls |
//! | `GET calls?before=SEQ&limit=N` | the call history, newest first, paged (`next_before` in the answer) |
//! | `GET calls/{id}` | one call |
//! | `POST dial` `{"number":…}` | place a call |
//! | `POST answer` `{"call_id"?:…}` | answer (the ringing call by default) |
//! | `POST hangup` `{"call_id"?:…}` | end (the current call by default) |
//! | `POST simulate/incoming` `{"number":…,"name"?:…}` | ring a simulated incoming call |
//! | `GET deliveries?before=ID&limit=N&status=S` | the delivery log, newest first, paged (`next_before`) |
//! | `GET deliveries/{id}` | one delivery with every attempt |
//! | `POST deliveries/{id}/retry` | send a pending or failed delivery again now |
//! | `GET security` | the listener's security policy as the settings page shows it |
//! | `GET config` | the effective configuration |
//! | `PUT config`, `GET listener`, `POST notifications/test`, `GET providers`, `…/secrets…`, `GET calls/{id}/crm-url` | see [`super::settings_api`] |
//! | `POST lookup/test` `{"number":…}` | run the CRM's caller lookup once, see [`super::lookup_api`] |
//! | `GET events` | call events and settings changes as Server-Sent Events, see [`super::events`] |

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::commands::done;
use super::ApiError;
use crate::call::CallId;
use crate::engine::Engine;
use crate::security::Caller;
use crate::store::deliveries::{DeliveryStatus, RetryError};
use crate::store::StoreError;

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
        .route("/deliveries/{id}", get(delivery))
        .route("/deliveries/{id}/retry", post(retry_delivery))
        .route("/security", get(security))
        .route("/config", get(config))
        .merge(super::settings_api::routes())
        .merge(super::lookup_api::routes())
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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "the store failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_failed", e.to_string())
    }
}

/// `?before=…&limit=…` (and `status=…` for deliveries).
#[derive(Debug, Deserialize)]
struct Page {
    before: Option<i64>,
    limit: Option<usize>,
    status: Option<String>,
}

impl Page {
    const DEFAULT: usize = 50;
    const MAX: usize = 500;

    fn limit(&self) -> usize {
        self.limit.unwrap_or(Self::DEFAULT).clamp(1, Self::MAX)
    }
}

/// A query string, or a 400 that says what was wrong with it.
fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(format!("the query string is not what this route takes: {}", e.body_text())))
}

async fn calls(
    State(engine): State<Engine>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(q)?;
    let calls = engine.store().calls_page(page.before, page.limit())?;
    Ok(Json(json!({ "ok": true, "calls": calls.calls, "next_before": calls.next_before })))
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

async fn dial(
    State(engine): State<Engine>,
    Extension(caller): Extension<Caller>,
    payload: Result<Json<DialRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let request = body(payload)?;
    let call = engine.dial_from(&request.number, &caller).await?;
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

async fn deliveries(
    State(engine): State<Engine>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = query(q)?;
    let status = match page.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(DeliveryStatus::from_query(s).ok_or_else(|| {
            ApiError::bad_request(format!("status={s:?} is not a delivery status; use pending, delivered or failed"))
        })?),
    };
    let limit = page.limit();
    let mut entries = engine.store().deliveries(page.before, status, limit.saturating_add(1))?;
    let next_before = (entries.len() > limit).then(|| {
        entries.truncate(limit);
        entries.last().map(|e| e.id)
    });
    Ok(Json(json!({ "ok": true, "deliveries": entries, "next_before": next_before.flatten() })))
}

async fn delivery(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = delivery_id(&id)?;
    let entry = engine.store().delivery(id)?.ok_or_else(|| unknown_delivery(id))?;
    let attempts = engine.store().attempts(id)?;
    Ok(Json(json!({ "ok": true, "delivery": entry, "attempt_log": attempts })))
}

async fn retry_delivery(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = delivery_id(&id)?;
    match engine.retry_delivery(id) {
        Ok(entry) => Ok(Json(json!({ "ok": true, "action": "retry", "delivery": entry }))),
        Err(RetryError::Unknown(id)) => Err(unknown_delivery(id)),
        Err(e @ RetryError::AlreadyDelivered(_)) => Err(ApiError::new(StatusCode::CONFLICT, "already_delivered", e.to_string())),
        Err(RetryError::Store(e)) => Err(e.into()),
    }
}

fn delivery_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::bad_request(format!("{id:?} is not a delivery id (a number from GET /api/v1/deliveries)")))
}

fn unknown_delivery(id: i64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_delivery", format!("no delivery with id {id}"))
}

async fn security(State(engine): State<Engine>) -> Json<Value> {
    Json(json!({ "ok": true, "security": engine.security_summary() }))
}

async fn config(State(engine): State<Engine>) -> Json<Value> {
    Json(json!({ "ok": true, "config": *engine.config() }))
}
