//! `/webhooks/telecmi`: TeleCMI's live events and CDRs, by POST (JSON, or a form) or GET (query).
//!
//! The payload is read by [`crate::provider::telecmi::webhook`]; what it says about the user's call leg
//! goes to the TeleCMI provider (for `/end`), and the event to the engine's tracker at once, so the
//! answer can say which call events it produced. A payload that cannot be understood gets a 400 that
//! says why; TeleCMI's dashboard shows it.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::listener::ApiError;
use crate::provider::telecmi::webhook::{form_payload, parse_all};
use crate::provider::telecmi::TeleCmi;

pub async fn post(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let payload = read_body(&headers, &body)?;
    accept(&engine, &payload)
}

pub async fn get(State(engine): State<Engine>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return Err(bad("the request has no query parameters; TeleCMI sends the event's fields there (or POSTs JSON)"));
    }
    accept(&engine, &form_payload(form_urlencoded::parse(query.as_bytes()).into_owned()))
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

fn accept(engine: &Engine, payload: &Value) -> Result<Json<Value>, ApiError> {
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
        for event in now.into_iter().flat_map(|e| engine.observe(e)) {
            produced.push(json!({ "event": event.kind, "call_id": event.call.id }));
        }
    }
    Ok(Json(json!({ "ok": true, "understood": understood, "call_events": produced })))
}
