//! `/webhooks/telecmi`: TeleCMI's live events and CDRs, by POST (JSON, or a form) or GET (query).
//!
//! The payload is read by [`crate::provider::telecmi::webhook`]; what it says about the user's call leg
//! goes to the TeleCMI provider (for `/end`), and the event to the engine's tracker at once, so the
//! answer can say which call events it produced. A payload that cannot be understood gets a 400 that
//! says why; TeleCMI's dashboard shows it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::payload;
use crate::engine::Engine;
use crate::listener::openapi::model;
use crate::listener::ApiError;
use crate::provider::telecmi::webhook::{form_payload, parse_all};
use crate::provider::telecmi::TeleCmi;

/// A TeleCMI live event or CDR as JSON (or a form).
#[utoipa::path(
    post,
    path = "/telecmi",
    operation_id = "telecmi_webhook_body",
    tag = "webhooks",
    request_body(content(
        (model::TelecmiEvent = "application/json"),
        (model::TelecmiEvent = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "What was understood and the call events it produced", body = model::TelecmiAnswer),
        (status = 400, description = "Not a TeleCMI event; the message says why (`bad_webhook`, `bad_request`)"),
    )
)]
pub async fn post(State(engine): State<Engine>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let body = payload::body(body)?;
    let payload = read_body(&headers, &body)?;
    accept(&engine, &payload).await
}

/// A TeleCMI event in the query string.
#[utoipa::path(
    get,
    path = "/telecmi",
    operation_id = "telecmi_webhook_query",
    tag = "webhooks",
    params(
        ("type" = Option<String>, Query, description = "`event` or `cdr`"),
        ("direction" = Option<String>, Query, description = "inbound or outbound"),
        ("status" = Option<String>, Query, description = "The call leg's status"),
        ("from" = Option<String>, Query, description = "The calling number"),
        ("to" = Option<String>, Query, description = "The called number"),
        ("cmiuuid" = Option<String>, Query, description = "TeleCMI's call id"),
        ("request_id" = Option<String>, Query, description = "The click-to-call request id"),
    ),
    responses(
        (status = 200, description = "What was understood and the call events it produced", body = model::TelecmiAnswer),
        (status = 400, description = "Not a TeleCMI event, or no query (`bad_webhook`)"),
    )
)]
pub async fn get(State(engine): State<Engine>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return Err(bad("the request has no query parameters; TeleCMI sends the event's fields there (or POSTs JSON)"));
    }
    accept(&engine, &form_payload(form_urlencoded::parse(query.as_bytes()).into_owned())).await
}

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_webhook", format!("telecmi webhook: {message}"))
}

/// JSON as documented; a form-encoded body is read too.
fn read_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the body is empty; TeleCMI sends the event as JSON"));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return Ok(form_payload(form_urlencoded::parse(body).into_owned()));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

async fn accept(engine: &Engine, payload: &Value) -> Result<Json<Value>, ApiError> {
    let parsed = parse_all(payload).map_err(bad)?;
    let provider = engine.provider();
    let telecmi = provider.as_any().and_then(|p| p.downcast_ref::<TeleCmi>());
    let mut understood = Vec::new();
    let mut produced = Vec::new();
    for item in parsed {
        if let Some(telecmi) = telecmi {
            telecmi.remember_legs(&item);
        }
        tracing::debug!(event = ?item.event, "telecmi webhook");
        understood.push(json!({ "kind": item.event.kind, "direction": item.event.direction }));
        // A hangup that may have overtaken its call's answer is held back a while (see `settle`).
        let now = match telecmi {
            Some(telecmi) => telecmi.settle(item.event),
            None => vec![item.event],
        };
        for event in now {
            for event in engine.observe_durably(event).await? {
                produced.push(json!({ "event": event.kind, "call_id": event.call.id }));
            }
        }
    }
    Ok(Json(json!({ "ok": true, "understood": understood, "call_events": produced })))
}
