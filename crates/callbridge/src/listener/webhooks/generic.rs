//! `/webhooks/generic`: call events from any PBX that can call a URL, in one of two shapes.
//!
//! * **ELMA365-style JSON** (the ELMA365 telephony module's `VoipWebhookRequest`, https://tssdk.elma365.com/en/modules/_201_integration_voip_.html): `{"event":"NotifyStart","direction":"in",
//!   "srcPhone":…,"dstPhone":…,"srcPhoneExt":…,"dstPhoneExt":…,"callId":…,"disposition":…}`.
//!   `event` is `NotifyStart` (the call starts), `NotifyAnswer` (answered) or `NotifyEnd` (over); a
//!   `NotifyStart` whose `disposition` is `Answered` counts as answered.
//! * **VoipNow Call Events** (https://wiki.4psa.com/VoipNow/Developer-Guide/Call-Events.html): `CallID`, `CallerIDNum`, `CallerIDName`
//!   (also spelled `CallerIDNam`), `CalledDID`, `CalledExtension`, `CallStatus`, `CallFlow`,
//!   `CallerExtension`, `CalledNumber`, in the query string (GET) or a form body (POST). VoipNow sends
//!   no event type, so each event's URL names it: `?ev=dialin`, `dialout`, `answer` or `hangup`.
//!
//! Both become [`ProviderEvent`]s of provider `generic`. With a call id, events of one call are tied by
//! it; without one, the tracker matches them by numbers, extension and direction, as ELMA365 does.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::Json;
use serde_json::{json, Map, Value};

use super::payload::{self, Payload};
use crate::call::{Direction, Disposition};
use crate::engine::Engine;
use crate::listener::openapi::model;
use crate::listener::error::ApiError;
use crate::provider::{ProviderEvent, ProviderEventKind};

pub const PROVIDER: &str = "generic";

/// Accepted `ev` values for VoipNow-style events.
pub const VOIPNOW_EVENTS: &str = "dialin, dialout, answer, hangup";
/// Accepted `event` values for ELMA365-style events.
pub const ELMA_EVENTS: &str = "NotifyStart, NotifyAnswer, NotifyEnd";

/// A VoipNow-style event in the query string (`?ev=dialin&CallID=…&CallerIDNum=…`).
#[utoipa::path(
    get,
    path = "/generic",
    operation_id = "generic_webhook_query",
    tag = "webhooks",
    params(
        ("ev" = Option<String>, Query, description = "The event: dialin, dialout, answer or hangup (required by VoipNow-style events)"),
        ("CallID" = Option<String>, Query, description = "The PBX's call id"),
        ("CallerIDNum" = Option<String>, Query, description = "The calling number"),
        ("CallerIDName" = Option<String>, Query, description = "The caller's name"),
        ("CalledDID" = Option<String>, Query, description = "The called line"),
        ("CalledExtension" = Option<String>, Query, description = "The called extension"),
        ("CalledNumber" = Option<String>, Query, description = "The called number (outgoing calls)"),
        ("CallerExtension" = Option<String>, Query, description = "The calling extension (outgoing calls)"),
        ("CallStatus" = Option<String>, Query, description = "With hangup: ANSWER, BUSY, NOANSWER…"),
        ("CallFlow" = Option<String>, Query, description = "IN or OUT"),
    ),
    responses(
        (status = 200, description = "What was understood and the call events it produced", body = model::GenericAnswer),
        (status = 400, description = "Not an event this route understands; the message says why (`bad_webhook`)"),
        (status = 500, description = "The events could not be saved (`store_failed`: disk full, …); send them again"),
    )
)]
pub async fn receive_get(
    State(engine): State<Engine>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    receive(engine, uri, headers, body).await
}

/// An ELMA365-style JSON event, or a VoipNow-style event as a form (its `ev` may be in the query).
#[utoipa::path(
    post,
    path = "/generic",
    operation_id = "generic_webhook_body",
    tag = "webhooks",
    params(("ev" = Option<String>, Query, description = "VoipNow-style events: dialin, dialout, answer or hangup")),
    request_body(content(
        (model::ElmaEvent = "application/json"),
        (model::VoipNowEvent = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "What was understood and the call events it produced", body = model::GenericAnswer),
        (status = 400, description = "Not an event this route understands; the message says why (`bad_webhook`)"),
        (status = 500, description = "The events could not be saved (`store_failed`: disk full, …); send them again"),
    )
)]
pub async fn receive_post(
    State(engine): State<Engine>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    receive(engine, uri, headers, body).await
}

async fn receive(engine: Engine, uri: Uri, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let payload = payload::read(PROVIDER, &headers, uri.query(), body)?;
    let event = match &payload {
        Payload::Json(v) => parse_elma(v),
        Payload::Fields(fields) => parse_voipnow(fields),
    }
    .map_err(|why| payload::refused(PROVIDER, why))?;
    let understood = json!({
        "event": event.kind,
        "direction": event.direction,
        "number": event.remote_number,
        "extension": event.local_extension,
        "call_id": event.provider_call_id,
    });
    let events: Vec<_> = engine.observe_durably(event).await?.into_iter().map(|e| json!({"event": e.kind, "call_id": e.call.id})).collect();
    Ok(Json(json!({ "ok": true, "understood": understood, "events": events })))
}

/// A string (or number) field; blank counts as absent.
fn field(obj: &Map<String, Value>, name: &str) -> Option<String> {
    match obj.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Like [`field`], ignoring the case of the name (`callid`, `CallID`).
fn field_ci(obj: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        field(obj, name).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(k, _)| field(obj, k)))
    })
}

fn elma_disposition(value: &str) -> Result<Option<Disposition>, String> {
    let v: String = value.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    Ok(match v.as_str() {
        "unknown" | "" => None,
        "answered" | "answer" => Some(Disposition::Answered),
        "noanswer" | "missed" | "notanswered" => Some(Disposition::Missed),
        "busy" | "rejected" | "declined" => Some(Disposition::Busy),
        "failed" | "error" | "congestion" => Some(Disposition::Failed),
        "cancelled" | "canceled" | "cancel" => Some(Disposition::Cancelled),
        _ => {
            return Err(format!(
                "disposition {value:?} is not one of Answered, NoAnswer, Busy, Failed, Cancelled, Unknown"
            ))
        }
    })
}

/// An ELMA365-style JSON event. `Err` says what was wrong with it.
pub fn parse_elma(v: &Value) -> Result<ProviderEvent, String> {
    let obj = v.as_object().ok_or("the JSON body must be an object with event, direction, srcPhone and dstPhone")?;
    let name = field(obj, "event").ok_or(format!("event is missing; expected one of {ELMA_EVENTS}"))?;
    let direction = match field(obj, "direction").as_deref() {
        Some("in") => Direction::In,
        Some("out") => Direction::Out,
        Some("internal") => Direction::Internal,
        Some(other) => return Err(format!("direction {other:?} is not one of in, out, internal")),
        None => return Err("direction is missing; expected in, out or internal".into()),
    };
    let disposition = match field(obj, "disposition") {
        Some(d) => elma_disposition(&d)?,
        None => None,
    };
    let kind = match name.to_ascii_lowercase().trim_start_matches("notify") {
        "start" if disposition == Some(Disposition::Answered) => ProviderEventKind::Answered,
        "start" => match direction {
            Direction::In => ProviderEventKind::Incoming,
            Direction::Out | Direction::Internal => ProviderEventKind::Outgoing,
        },
        "answer" | "answered" => ProviderEventKind::Answered,
        "end" | "hangup" => ProviderEventKind::Ended,
        _ => return Err(format!("event {name:?} is not one of {ELMA_EVENTS}")),
    };
    let src = field(obj, "srcPhone").ok_or("srcPhone is missing (the calling number)")?;
    let dst = field(obj, "dstPhone").ok_or("dstPhone is missing (the called number)")?;
    let mut event = ProviderEvent::new(PROVIDER, kind);
    event.direction = Some(direction);
    event.provider_call_id = field(obj, "callId");
    // ELMA365: for incoming calls srcPhone is the client and dstPhone the operator's line; for
    // outgoing and internal ones srcPhone is the operator and dstPhone the other party.
    match direction {
        Direction::In => {
            event.remote_number = Some(src);
            event.local_extension = field(obj, "srcPhoneExt").or(Some(dst));
        }
        Direction::Out | Direction::Internal => {
            event.remote_number = Some(dst);
            event.local_extension = field(obj, "dstPhoneExt").or(Some(src));
        }
    }
    if kind == ProviderEventKind::Ended {
        event.disposition = disposition;
    }
    Ok(event)
}

/// A VoipNow Call Events request (its parameters, plus `ev` from the configured URL).
pub fn parse_voipnow(fields: &Value) -> Result<ProviderEvent, String> {
    let obj = fields.as_object().ok_or("the request has no parameters")?;
    let ev = field_ci(obj, &["ev"]).ok_or(format!(
        "no event type: VoipNow sends none, so add ?ev=EVENT to each URL you configure in VoipNow ({VOIPNOW_EVENTS})"
    ))?;
    let kind = match ev.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "dialin" => ProviderEventKind::Incoming,
        "dialout" => ProviderEventKind::Outgoing,
        "answer" | "answerin" | "answerout" => ProviderEventKind::Answered,
        "hangup" => ProviderEventKind::Ended,
        _ => return Err(format!("ev={ev:?} is not one of {VOIPNOW_EVENTS}")),
    };
    let flow = match field_ci(obj, &["CallFlow"]).map(|f| f.to_ascii_uppercase()).as_deref() {
        Some("IN") => Some(Direction::In),
        Some("OUT") => Some(Direction::Out),
        Some(other) => return Err(format!("CallFlow={other:?} is not IN or OUT")),
        None => None,
    };
    let direction = flow.or(match kind {
        ProviderEventKind::Incoming => Some(Direction::In),
        ProviderEventKind::Outgoing => Some(Direction::Out),
        _ => None,
    });
    let mut event = ProviderEvent::new(PROVIDER, kind);
    event.direction = direction;
    event.provider_call_id = field_ci(obj, &["CallID"]);
    match direction {
        Some(Direction::In) | None => {
            event.remote_number = field_ci(obj, &["CallerIDNum"]);
            event.remote_name = field_ci(obj, &["CallerIDName", "CallerIDNam"]);
            event.local_extension = field_ci(obj, &["CalledExtension", "CalledDID"]);
        }
        Some(Direction::Out | Direction::Internal) => {
            event.remote_number = field_ci(obj, &["CalledNumber", "CalledDID"]);
            event.local_extension = field_ci(obj, &["CallerExtension", "CallerIDNum"]);
        }
    }
    if event.provider_call_id.is_none() && event.remote_number.is_none() {
        return Err("neither CallID nor the other party's number (CallerIDNum for IN, CalledNumber for OUT) was sent; the event cannot be tied to a call".into());
    }
    if kind == ProviderEventKind::Ended {
        event.disposition = match field_ci(obj, &["CallStatus"]).map(|s| s.to_ascii_uppercase()).as_deref() {
            Some("ANSWER" | "ANSWERED") => Some(Disposition::Answered),
            Some("BUSY") => Some(Disposition::Busy),
            Some("NOANSWER" | "NO ANSWER") => Some(Disposition::Missed),
            _ => None,
        };
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elma_incoming_start_answer_end() {
        let start = parse_elma(&json!({
            "event": "NotifyStart", "direction": "in", "srcPhone": "+442079460000", "dstPhone": "101",
            "callId": "c-1", "disposition": "Unknown"
        }))
        .expect("valid");
        assert_eq!((start.kind, start.direction), (ProviderEventKind::Incoming, Some(Direction::In)));
        assert_eq!((start.remote_number.as_deref(), start.local_extension.as_deref()), (Some("+442079460000"), Some("101")));
        assert_eq!(start.provider_call_id.as_deref(), Some("c-1"));
        let answered = parse_elma(&json!({"event": "NotifyStart", "direction": "in", "srcPhone": "1", "dstPhone": "2", "disposition": "Answered"}))
            .expect("valid");
        assert_eq!(answered.kind, ProviderEventKind::Answered);
        let end = parse_elma(&json!({"event": "NotifyEnd", "direction": "in", "srcPhone": "1", "dstPhone": "2", "disposition": "NoAnswer"}))
            .expect("valid");
        assert_eq!((end.kind, end.disposition), (ProviderEventKind::Ended, Some(Disposition::Missed)));
    }

    #[test]
    fn elma_outgoing_takes_the_destination_as_the_other_party() {
        let e = parse_elma(&json!({"event": "NotifyStart", "direction": "out", "srcPhone": "101", "dstPhone": "+15550100", "dstPhoneExt": "101"}))
            .expect("valid");
        assert_eq!((e.kind, e.remote_number.as_deref(), e.local_extension.as_deref()), (ProviderEventKind::Outgoing, Some("+15550100"), Some("101")));
    }

    #[test]
    fn elma_errors_say_what_is_wrong() {
        let err = |v: Value| parse_elma(&v).expect_err("invalid");
        assert!(err(json!([])).contains("object"));
        assert!(err(json!({"direction": "in"})).contains("event is missing"));
        assert!(err(json!({"event": "NotifyStart"})).contains("direction is missing"));
        assert!(err(json!({"event": "NotifyStart", "direction": "sideways"})).contains("\"sideways\""));
        assert!(err(json!({"event": "Bogus", "direction": "in", "srcPhone": "1", "dstPhone": "2"})).contains("\"Bogus\""));
        assert!(err(json!({"event": "NotifyStart", "direction": "in", "dstPhone": "2"})).contains("srcPhone is missing"));
        assert!(err(json!({"event": "NotifyEnd", "direction": "in", "srcPhone": "1", "dstPhone": "2", "disposition": "Weird"})).contains("disposition"));
    }

    #[test]
    fn voipnow_dial_in_answer_hangup() {
        let dialin = parse_voipnow(&json!({
            "ev": "dialin", "CallID": "v-1", "CallerIDNum": "+442079460000", "CallerIDNam": "Alice",
            "CalledExtension": "0003*210", "CallStatus": "CALLING", "CallFlow": "IN"
        }))
        .expect("valid");
        assert_eq!((dialin.kind, dialin.direction), (ProviderEventKind::Incoming, Some(Direction::In)));
        assert_eq!(
            (dialin.remote_number.as_deref(), dialin.remote_name.as_deref(), dialin.local_extension.as_deref()),
            (Some("+442079460000"), Some("Alice"), Some("0003*210"))
        );
        let answer = parse_voipnow(&json!({"ev": "answer", "CallID": "v-1", "CallFlow": "IN", "CallerIDNum": "+442079460000"})).expect("valid");
        assert_eq!(answer.kind, ProviderEventKind::Answered);
        let hangup = parse_voipnow(&json!({"ev": "hangup", "CallID": "v-1", "CallStatus": "ANSWER"})).expect("valid");
        assert_eq!((hangup.kind, hangup.disposition, hangup.direction), (ProviderEventKind::Ended, Some(Disposition::Answered), None));
    }

    #[test]
    fn voipnow_dial_out_takes_the_called_number() {
        let e = parse_voipnow(&json!({"ev": "dialout", "CallID": "v-2", "CallerExtension": "0003*210", "CalledNumber": "+15550100", "CallFlow": "OUT"}))
            .expect("valid");
        assert_eq!((e.kind, e.remote_number.as_deref(), e.local_extension.as_deref()), (ProviderEventKind::Outgoing, Some("+15550100"), Some("0003*210")));
    }

    #[test]
    fn voipnow_errors_say_what_is_wrong() {
        let err = |v: Value| parse_voipnow(&v).expect_err("invalid");
        assert!(err(json!({"CallID": "1"})).contains("?ev="));
        assert!(err(json!({"ev": "ring", "CallID": "1"})).contains("\"ring\""));
        assert!(err(json!({"ev": "dialin", "CallID": "1", "CallFlow": "UP"})).contains("CallFlow"));
        assert!(err(json!({"ev": "hangup"})).contains("neither CallID"));
    }
}
