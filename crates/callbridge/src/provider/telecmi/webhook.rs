//! TeleCMI's webhooks — live events and CDRs (https://doc.telecmi.com/chub/docs/live-incoming-waiting and the pages beside it) — read into [`ProviderEvent`]s.
//!
//! The parser is tolerant where TeleCMI's documents disagree: the call id is `cmiuuid` or the legacy
//! `cmiuid`; numbers come as strings or numbers; `custom` and `extra_params` are JSON-encoded strings
//! (objects are taken too); `time` is epoch milliseconds; the CDR says `appid` where live events say
//! `app_id` (neither matters here). It is strict where a payload cannot be understood: no status, an
//! unknown live status, or nothing that identifies the call is an error that says so.
//!
//! How payloads become events:
//! * The call is tied together by `conversation_uuid` (the legacy `parent_uid`), else the leg's own
//!   `cmiuuid`: that is the event's `provider_call_id`, so leg A and leg B are one call.
//! * A click2call CallBridge placed carries our call id in `extra_params` (see [`CALL_ID_PARAM`]) and
//!   TeleCMI's `request_id`; either matches the event to the call that `/make` created.
//! * Direction: a click2call, or an `outbound` leg with a `to`, is an outgoing call; `inbound` is an
//!   incoming call, and so is the agent's `outbound` leg B of an inbound call (it has a `from` and no
//!   `to`).
//! * On an outgoing call leg A is the user's own device, rung first: its `started`/`answered` only
//!   mean the call is under way; the far end's leg B `started` is ringing and its `answered` is the
//!   answer. Any `hangup` and any CDR ends the call; a CDR's `status` gives the disposition.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::config::NAME;
use crate::call::{CallId, Direction, Disposition};
use crate::provider::{ProviderEvent, ProviderEventKind};

/// The `extra_params` key that carries CallBridge's call id through a click2call.
pub const CALL_ID_PARAM: &str = "callbridge_call_id";

/// One webhook payload, understood.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub event: ProviderEvent,
    /// The `cmiuuid` of the user's own leg (leg A of an outgoing call, the agent's leg B of an incoming
    /// one), which is what TeleCMI's user hangup takes.
    pub user_leg: Option<String>,
}

/// Why a payload could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebhookError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, WebhookError> {
    Err(WebhookError(message.into()))
}

/// Reads one payload: a JSON object, or an array of them.
pub fn parse_all(payload: &Value) -> Result<Vec<Parsed>, WebhookError> {
    match payload {
        Value::Array(items) if items.is_empty() => err("the payload is an empty list"),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse(item).map_err(|e| WebhookError(format!("item {i}: {}", e.0))))
            .collect(),
        other => parse(other).map(|p| vec![p]),
    }
}

/// Reads one payload object.
pub fn parse(payload: &Value) -> Result<Parsed, WebhookError> {
    let Some(p) = payload.as_object() else {
        return err(format!("the payload is not a JSON object but {}", kind_of(payload)));
    };
    let is_cdr = match text(p, "type").map(|t| t.to_ascii_lowercase()).as_deref() {
        Some("cdr") => true,
        // The 2019 payloads have no `type`: they are live events.
        Some("event") | None => false,
        Some(other) => return err(format!("unknown type {other:?}: TeleCMI sends \"event\" or \"cdr\"")),
    };
    let Some(status) = text(p, "status").map(|s| s.to_ascii_lowercase()) else {
        return err("the payload has no status");
    };
    let leg_id = text(p, "cmiuuid").or_else(|| text(p, "cmiuid"));
    let conversation = text(p, "conversation_uuid").or_else(|| text(p, "parent_uid"));
    let request_id = text(p, "request_id");
    let extra = json_object(p, "extra_params");
    let custom = json_object(p, "custom");
    let call_id = [&extra, &custom].into_iter().flatten().find_map(|m| text(m, CALL_ID_PARAM)).map(CallId::from);
    if leg_id.is_none() && conversation.is_none() && request_id.is_none() && call_id.is_none() {
        return err("the payload names no call: expected cmiuuid (or cmiuid), conversation_uuid or request_id");
    }
    let leg = text(p, "leg").map(|l| l.to_ascii_lowercase());
    let (from, to) = (text(p, "from"), text(p, "to"));
    let click2call = request_id.is_some() || call_id.is_some() || extra.is_some();
    let direction = match text(p, "direction").map(|d| d.to_ascii_lowercase()).as_deref() {
        _ if click2call => Direction::Out,
        Some("inbound" | "incoming" | "in") => Direction::In,
        // The agent's leg of an inbound call is "outbound" from TeleCMI's side; it has a caller, no `to`.
        Some("outbound" | "outgoing" | "out") if to.is_none() && from.is_some() => Direction::In,
        Some("outbound" | "outgoing" | "out") => Direction::Out,
        Some(other) => return err(format!("unknown direction {other:?}: expected \"inbound\" or \"outbound\"")),
        None => return err("the payload has no direction"),
    };
    let leg_b = leg.as_deref() == Some("b");
    let kind = if is_cdr { ProviderEventKind::Ended } else { live_kind(&status, direction, leg_b)? };
    let disposition = if is_cdr { cdr_disposition(&status, direction, leg.as_deref(), text(p, "hangup_reason").as_deref()) } else { None };

    let mut event = ProviderEvent::new(NAME, kind);
    event.direction = Some(direction);
    event.call_id = call_id;
    event.provider_call_id = conversation.clone().or_else(|| leg_id.clone());
    event.request_id = request_id;
    event.remote_number = match direction {
        Direction::In => from,
        Direction::Out | Direction::Internal => to,
    };
    event.local_extension = text(p, "user").or_else(|| (direction == Direction::In).then(|| text(p, "to")).flatten());
    event.disposition = disposition;
    event.at = time(p);
    let user_leg = match direction {
        Direction::In if leg_b => leg_id,
        Direction::In => None,
        Direction::Out | Direction::Internal if leg_b => None,
        Direction::Out | Direction::Internal => leg_id,
    };
    Ok(Parsed { event, user_leg })
}

/// The event a live status means.
fn live_kind(status: &str, direction: Direction, leg_b: bool) -> Result<ProviderEventKind, WebhookError> {
    use ProviderEventKind::*;
    Ok(match (status, direction) {
        ("waiting" | "ringing" | "started", Direction::In) => Incoming,
        // Leg B is the far end: it rings. Leg A is the user's device: the call is under way.
        ("waiting" | "ringing" | "started", _) if leg_b => Ringing,
        ("waiting" | "ringing" | "started", _) => Outgoing,
        // The user picked up their own device; TeleCMI now calls the far end.
        ("answered", Direction::Out) if !leg_b => Outgoing,
        ("answered", _) => Answered,
        ("hangup" | "ended" | "completed", _) => Ended,
        (other, _) => {
            return err(format!(
                "unknown live status {other:?}: TeleCMI sends \"waiting\", \"started\", \"answered\" or \"hangup\""
            ))
        }
    })
}

/// How a call ended, from a CDR. Leg A of an outgoing call is the user's own device: its being
/// answered says nothing about the far end.
fn cdr_disposition(status: &str, direction: Direction, leg: Option<&str>, reason: Option<&str>) -> Option<Disposition> {
    let user_leg_of_outgoing = direction == Direction::Out && leg == Some("a");
    match status {
        "answered" if user_leg_of_outgoing => None,
        "answered" => Some(Disposition::Answered),
        "missed" if user_leg_of_outgoing => Some(Disposition::Cancelled),
        "missed" if direction == Direction::Out && reason == Some("sent_reject") => Some(Disposition::Busy),
        "missed" | "noanswer" | "no_answer" => Some(Disposition::Missed),
        "busy" => Some(Disposition::Busy),
        "failed" => Some(Disposition::Failed),
        _ => None,
    }
}

/// A field as text, whether TeleCMI wrote it as a string or a number. Empty strings count as absent.
fn text(p: &Map<String, Value>, key: &str) -> Option<String> {
    match p.get(key)? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `custom` / `extra_params`: a JSON-encoded string (as documented) or an object. Anything else —
/// including a string that is not JSON — carries nothing we use.
fn json_object(p: &Map<String, Value>, key: &str) -> Option<Map<String, Value>> {
    match p.get(key)? {
        Value::Object(m) => Some(m.clone()),
        Value::String(s) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        },
        _ => None,
    }
}

/// `time`: epoch milliseconds, as a number or a string. A value too small to be milliseconds since
/// 1973 is taken as seconds.
fn time(p: &Map<String, Value>) -> Option<DateTime<Utc>> {
    let raw: f64 = match p.get("time")? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let millis = if raw < 100_000_000_000.0 { raw * 1000.0 } else { raw };
    // Saturating float-to-int conversion; out-of-range times give None below.
    Utc.timestamp_millis_opt(millis as i64).single()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A flat form (a GET query string, or a form-encoded POST) as a payload object: every value a string.
pub fn form_payload(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ProviderEventKind::*;

    fn parsed(v: Value) -> Parsed {
        parse(&v).unwrap_or_else(|e| panic!("{e}: {v}"))
    }

    /// /chub/docs/live-incoming-waiting, numbers as strings (global docs).
    fn incoming_waiting() -> Value {
        json!({"type":"event","direction":"inbound","conversation_uuid":"c1e5-aa","cmiuuid":"c1e5-aa",
               "from":"440000000000","app_id":1111112,"time":1585804590000_u64,"to":"441100000000",
               "custom":"{\"crm\":\"true\"}","status":"waiting"})
    }

    #[test]
    fn incoming_leg_a_waiting_answered_hangup() {
        let p = parsed(incoming_waiting());
        let e = &p.event;
        assert_eq!((e.kind, e.direction), (Incoming, Some(Direction::In)));
        assert_eq!(e.provider_call_id.as_deref(), Some("c1e5-aa"));
        assert_eq!(e.remote_number.as_deref(), Some("440000000000"));
        assert_eq!(e.local_extension.as_deref(), Some("441100000000"));
        assert_eq!(e.at.map(|t| t.timestamp_millis()), Some(1585804590000));
        assert_eq!(p.user_leg, None, "leg A of an inbound call is the caller's");

        let mut answered = incoming_waiting();
        answered["status"] = json!("answered");
        assert_eq!(parsed(answered).event.kind, Answered);

        // /live-incoming-hangup has no `custom`; numbers as numbers (older/India pages).
        let hangup = json!({"type":"event","direction":"inbound","conversation_uuid":"c1e5-aa","cmiuuid":"c1e5-aa",
                            "from":440000000000_u64,"app_id":"1111112","time":"1585804599000","to":441100000000_u64,"status":"hangup"});
        let e = parsed(hangup).event;
        assert_eq!((e.kind, e.remote_number.as_deref()), (Ended, Some("440000000000")));
        assert_eq!(e.at.map(|t| t.timestamp_millis()), Some(1585804599000));
    }

    #[test]
    fn incoming_leg_b_is_the_agent_leg_of_the_same_call() {
        for (status, kind) in [("started", Incoming), ("answered", Answered), ("hangup", Ended)] {
            let v = json!({"leg":"b","type":"event","team":"sales","user":"101_1111112","conversation_uuid":"c1e5-aa",
                           "cmiuuid":"b2-leg","direction":"outbound","from":"440000000000","app_id":1111112,
                           "time":1585804591000_u64,"custom":"{}","status":status});
            let p = parsed(v);
            assert_eq!((p.event.kind, p.event.direction), (kind, Some(Direction::In)), "{status}");
            assert_eq!(p.event.provider_call_id.as_deref(), Some("c1e5-aa"), "tied to leg A by conversation_uuid");
            assert_eq!(p.event.local_extension.as_deref(), Some("101_1111112"));
            assert_eq!(p.user_leg.as_deref(), Some("b2-leg"));
        }
    }

    fn outgoing(leg: &str, status: &str) -> Value {
        json!({"call_id":"9f","leg":leg,"type":"event","user":"101_1111112","cmiuuid":format!("{leg}-leg"),
               "direction":"outbound","callerid":"919800000000","app_id":1111112,"time":1585804590000_u64,
               "custom":"{}","extra_params":"{\"callbridge_call_id\":\"our-1\"}","request_id":"s96C6XK1",
               "status":status,"to":"919200000000","conversation_uuid":"conv-2"})
    }

    #[test]
    fn outgoing_click2call_legs() {
        let cases = [
            ("a", "started", Outgoing),
            ("a", "answered", Outgoing),
            ("b", "started", Ringing),
            ("b", "answered", Answered),
            ("b", "hangup", Ended),
            ("a", "hangup", Ended),
        ];
        for (leg, status, kind) in cases {
            let p = parsed(outgoing(leg, status));
            let e = &p.event;
            assert_eq!((e.kind, e.direction), (kind, Some(Direction::Out)), "leg {leg} {status}");
            assert_eq!(e.call_id.as_ref().map(CallId::as_str), Some("our-1"));
            assert_eq!(e.request_id.as_deref(), Some("s96C6XK1"));
            assert_eq!(e.provider_call_id.as_deref(), Some("conv-2"));
            assert_eq!(e.remote_number.as_deref(), Some("919200000000"));
            assert_eq!(p.user_leg.as_deref(), (leg == "a").then_some("a-leg"));
        }
        // Numbers as numbers, extra_params as an object.
        let mut v = outgoing("b", "answered");
        v["to"] = json!(919200000000_u64);
        v["callerid"] = json!(919800000000_u64);
        v["extra_params"] = json!({"callbridge_call_id":"our-1"});
        let e = parsed(v).event;
        assert_eq!((e.remote_number.as_deref(), e.call_id.map(|c| c.to_string())), (Some("919200000000"), Some("our-1".into())));
    }

    #[test]
    fn an_outgoing_call_from_the_softphone_has_no_request_id() {
        let mut v = outgoing("a", "started");
        let m = v.as_object_mut().expect("object");
        m.remove("request_id");
        m.remove("extra_params");
        let e = parsed(v).event;
        assert_eq!((e.kind, e.direction, e.call_id, e.request_id), (Outgoing, Some(Direction::Out), None, None));
    }

    #[test]
    fn cdrs_end_the_call_with_a_disposition() {
        // https://doc.telecmi.com/chub/docs/incoming-answered
        let incoming = json!({"virtual_number":441100000000_u64,"custom":"{}","appid":1111112,"type":"cdr","direction":"inbound",
            "cmiuuid":"c1e5-aa","user":"101_1111112","status":"answered","to":441100000000_u64,"from":440000000000_u64,
            "time":1585804600000_u64,"answeredsec":12,"team":"sales","hangup_reason":"sent_bye","record":true,
            "filename":"x.mp3","conversation_uuid":"c1e5-aa","ivr_name":"main"});
        let e = parsed(incoming).event;
        assert_eq!((e.kind, e.direction, e.disposition), (Ended, Some(Direction::In), Some(Disposition::Answered)));
        assert_eq!(e.remote_number.as_deref(), Some("440000000000"));

        // Outgoing answered CDR (no conversation_uuid): leg B decides, leg A does not.
        let leg = |leg: &str, status: &str| {
            json!({"virtual_number":"919800000000","call_id":"9f","custom":"{}","leg":leg,"type":"cdr","appid":1111112,
                   "to":"919200000000","cmiuuid":format!("{leg}-leg"),"status":status,"user":"101_1111112",
                   "time":1585804600000_u64,"direction":"outbound","answeredsec":30,"hangup_reason":"recv_bye",
                   "request_id":"s96C6XK1","extra_params":"{\"callbridge_call_id\":\"our-1\"}"})
        };
        let b = parsed(leg("b", "answered")).event;
        assert_eq!((b.kind, b.disposition, b.provider_call_id.as_deref()), (Ended, Some(Disposition::Answered), Some("b-leg")));
        assert_eq!(parsed(leg("a", "answered")).event.disposition, None);
        assert_eq!(parsed(leg("a", "missed")).event.disposition, Some(Disposition::Cancelled));
        assert_eq!(parsed(leg("b", "missed")).event.disposition, Some(Disposition::Missed));

        // chub-india incoming missed.
        let missed = json!({"type":"cdr","direction":"inbound","cmiuuid":"m1","status":"missed","from":"9100000000",
                            "to":"9111111111","time":1585804600000_u64,"waitedsec":20,"team":"t","voicemail":false,"voicename":""});
        assert_eq!(parsed(missed).event.disposition, Some(Disposition::Missed));
    }

    #[test]
    fn the_2019_shape_with_cmiuid_is_read() {
        // murugancmi/telecmi-webhooks: no `type`, `cmiuid`, `parent_uid`, status "ringing".
        let v = json!({"cmiuid":"old-1","status":"ringing","from":9100000000_u64,"time":1565000000000_u64,
                       "direction":"inbound","to":9111111111_u64,"app_id":1111112,"parent_uid":"old-1","user":"101"});
        let e = parsed(v).event;
        assert_eq!((e.kind, e.provider_call_id.as_deref()), (Incoming, Some("old-1")));
        assert_eq!(e.remote_number.as_deref(), Some("9100000000"));
        let v = json!({"cmiuid":"old-2","status":"answered","from":"9100000000","direction":"inbound","to":"9111111111"});
        assert_eq!(parsed(v).event.provider_call_id.as_deref(), Some("old-2"));
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let cases = [
            (json!("hello"), "not a JSON object"),
            (json!({"type":"event","direction":"inbound","cmiuuid":"x"}), "no status"),
            (json!({"type":"event","direction":"inbound","status":"waiting","from":"1"}), "names no call"),
            (json!({"type":"event","direction":"inbound","cmiuuid":"x","status":"dancing"}), "unknown live status \"dancing\""),
            (json!({"type":"party","direction":"inbound","cmiuuid":"x","status":"waiting"}), "unknown type"),
            (json!({"type":"event","cmiuuid":"x","status":"waiting"}), "no direction"),
            (json!([]), "empty list"),
        ];
        for (payload, words) in cases {
            let e = parse_all(&payload).expect_err(words);
            assert!(e.0.contains(words), "{payload}: {e}");
        }
    }

    #[test]
    fn a_list_of_payloads_and_a_form_are_read() {
        let all = parse_all(&json!([incoming_waiting(), outgoing("a", "hangup")])).expect("list");
        assert_eq!(all.iter().map(|p| p.event.kind).collect::<Vec<_>>(), [Incoming, Ended]);
        let form = form_payload([
            ("type".to_owned(), "event".to_owned()),
            ("direction".to_owned(), "inbound".to_owned()),
            ("cmiuuid".to_owned(), "q1".to_owned()),
            ("from".to_owned(), "440000000000".to_owned()),
            ("status".to_owned(), "waiting".to_owned()),
            ("time".to_owned(), "1585804590000".to_owned()),
        ]);
        let e = parsed(form).event;
        assert_eq!((e.kind, e.remote_number.as_deref()), (Incoming, Some("440000000000")));
    }
}
