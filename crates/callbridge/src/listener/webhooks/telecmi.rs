//! `/webhooks/telecmi`: TeleCMI's live events and CDRs, by POST (JSON, or a form) or GET (query).
//!
//! The payload is read by [`crate::provider::telecmi::webhook`]; what it says about the user's call leg
//! goes to the TeleCMI provider (for `/end`), and the event to the engine's tracker at once, so the
//! answer can say which call events it produced. A payload that cannot be understood gets a 400
//! `bad_webhook` that says why; TeleCMI's dashboard shows it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::Json;
use serde_json::{json, Value};

use super::payload;
use crate::engine::Engine;
use crate::listener::openapi::model;
use crate::listener::error::ApiError;
use crate::provider::telecmi::webhook::parse_all;
use crate::provider::telecmi::TeleCmi;

/// The webhook's name in refusals.
const WEBHOOK: &str = "telecmi";

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
        (status = 400, description = "Not a TeleCMI event; the message says why (`bad_webhook`)"),
        (status = 500, description = "The events could not be saved (`store_failed`: disk full, …); send them again"),
    )
)]
pub async fn post(State(engine): State<Engine>, uri: Uri, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let payload = payload::read(WEBHOOK, &headers, uri.query(), body)?;
    accept(&engine, &payload.into_value()).await
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
        (status = 400, description = "Not a TeleCMI event, or no query; the message says why (`bad_webhook`)"),
        (status = 500, description = "The events could not be saved (`store_failed`: disk full, …); send them again"),
    )
)]
pub async fn get(State(engine): State<Engine>, uri: Uri, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let payload = payload::read(WEBHOOK, &headers, uri.query(), body)?;
    accept(&engine, &payload.into_value()).await
}

async fn accept(engine: &Engine, fields: &Value) -> Result<Json<Value>, ApiError> {
    let parsed = parse_all(fields).map_err(|why| payload::refused(WEBHOOK, why))?;
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
    Ok(Json(json!({ "ok": true, "understood": understood, "events": produced })))
}
