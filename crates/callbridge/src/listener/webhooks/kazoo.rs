//! `/webhooks/kazoo`: Kazoo's `channel_create`, `channel_answer` and `channel_destroy` webhooks
//! (Kazoo's webhooks documentation), as JSON or as form data (Kazoo's default format), by POST or GET.
//!
//! Events of another account than the configured one are acknowledged and ignored. Legs are tied
//! into calls as for the websocket (see [`crate::provider::kazoo::events`]), by the Kazoo provider,
//! which keeps them: a listener moved to another port (a new router) still ties the legs of a call
//! that began before the move. With another phone system configured, the webhook is refused (409):
//! nothing would keep its legs or end its calls.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use serde_json::{json, Value};

use super::payload;
use crate::engine::Engine;
use crate::listener::openapi::model;
use crate::listener::error::ApiError;
use crate::provider::kazoo::events::parse_webhook;
use crate::provider::kazoo::Kazoo;

/// The webhook's name in refusals.
const WEBHOOK: &str = "kazoo";

/// A Kazoo channel webhook (`hook_event` = channel_create, channel_answer, channel_bridge or
/// channel_destroy), as JSON or form data, or (GET) in the query string.
#[utoipa::path(
    method(get, post),
    path = "/kazoo",
    operation_id = "kazoo_webhook",
    tag = "webhooks",
    params(("hook_event" = Option<String>, Query, description = "With GET: the event, with the channel's other fields beside it")),
    request_body(description = "With POST: the channel event's fields", content(
        (model::KazooEvent = "application/json"),
        (model::KazooEvent = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "What was understood and the call events it produced, or why it was ignored", body = model::KazooAnswer),
        (status = 400, description = "Not a Kazoo channel webhook; the message says why (`bad_webhook`)"),
        (status = 500, description = "The events could not be saved (`store_failed`: disk full, …); send them again"),
        (status = 409, description = "Another phone system is configured: nothing would keep the call's legs (`not_kazoo`)"),
    )
)]
pub async fn receive(
    State(engine): State<Engine>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let fields = payload::read(WEBHOOK, &headers, uri.query(), body)?.into_value();
    let event = parse_webhook(&fields).map_err(|e| payload::refused(WEBHOOK, format!("not a Kazoo channel webhook: {e}")))?;
    let account = engine.config().provider.kazoo.account_id.clone();
    if let (Some(ours), Some(theirs)) = (&account, &event.account_id) {
        if ours.as_str() != theirs {
            return Ok(Json(json!({ "ok": true, "ignored": format!("account {theirs} is not the configured account") })));
        }
    }
    let provider = engine.provider();
    let Some(kazoo) = provider.as_any().and_then(|p| p.downcast_ref::<Kazoo>()) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_kazoo",
            format!("this CallBridge uses {} as its phone system; Kazoo webhooks are taken with [provider] kind = \"kazoo\"", provider.name()),
        ));
    };
    let provider_event = kazoo.observe_webhook(&event);
    let understood = json!({
        "event": provider_event.kind,
        "direction": provider_event.direction,
        "number": provider_event.remote_number,
        "call_id": provider_event.provider_call_id,
    });
    let events: Vec<_> = engine.observe_durably(provider_event).await?.into_iter().map(|e| json!({"event": e.kind, "call_id": e.call.id})).collect();
    Ok(Json(json!({ "ok": true, "understood": understood, "events": events })))
}
