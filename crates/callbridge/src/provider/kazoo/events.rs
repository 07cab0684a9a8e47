//! Kazoo channel events, from both places they arrive (webhooks, https://github.com/2600hz/kazoo/blob/master/applications/crossbar/doc/webhooks.md; the blackhole websocket, https://github.com/2600hz/kazoo/blob/master/applications/blackhole/doc/README.md), and what they
//! mean for CallBridge's calls.
//!
//! * The blackhole websocket wraps the AMQP event, whose keys are Hyphen-Case (`Call-ID`,
//!   `Call-Direction`, `Custom-Channel-Vars.Authorizing-Type`), as
//!   `{"action":"event","name":"CHANNEL_CREATE","data":{…}}` in 4.x or `{"name":…,"args":{…}}` in 3.x.
//! * Webhooks post the same facts in snake_case (`call_id`, `call_direction`, `hook_event`), as JSON or
//!   as form data, with `timestamp` in Gregorian seconds (often a string).
//!
//! Both become one [`ChannelEvent`]. A Kazoo call is several legs (channels), each with its own
//! Call-ID; [`Legs`] ties a leg to the first leg of its call through `Other-Leg-Call-ID`, so all legs of
//! one call reach the tracker under one provider call id: the first leg's, which for a click-to-call
//! is the `outbound_call_id` the connect request returned.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::call::{Direction, Disposition};
use crate::provider::{ProviderEvent, ProviderEventKind};

use super::config::NAME;

/// Seconds from 0000-01-01 (Kazoo's Gregorian seconds) to the Unix epoch.
pub const GREGORIAN_OFFSET: i64 = 62_167_219_200;

/// Legs remembered for linking; the oldest are forgotten first.
const MAX_LEGS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelEventName {
    Create,
    Answer,
    Bridge,
    Destroy,
}

impl ChannelEventName {
    /// `CHANNEL_CREATE` (AMQP) or `channel_create` (webhook `hook_event`).
    pub fn parse(s: &str) -> Option<ChannelEventName> {
        match s.to_ascii_uppercase().as_str() {
            "CHANNEL_CREATE" => Some(ChannelEventName::Create),
            "CHANNEL_ANSWER" => Some(ChannelEventName::Answer),
            "CHANNEL_BRIDGE" => Some(ChannelEventName::Bridge),
            "CHANNEL_DESTROY" => Some(ChannelEventName::Destroy),
            _ => None,
        }
    }
}

/// One channel event, whichever way it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    pub name: ChannelEventName,
    pub call_id: String,
    pub other_leg_call_id: Option<String>,
    /// `inbound` or `outbound`, relative to Kazoo.
    pub call_direction: Option<String>,
    pub caller_id_number: Option<String>,
    pub caller_id_name: Option<String>,
    pub callee_id_number: Option<String>,
    pub callee_id_name: Option<String>,
    pub to: Option<String>,
    pub request: Option<String>,
    pub account_id: Option<String>,
    pub authorizing_type: Option<String>,
    /// `custom_application_vars.contact`: the number a click-to-call dials.
    pub contact: Option<String>,
    pub hangup_cause: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

/// Why a payload is not a channel event we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KazooEventError {
    #[error("the payload is not JSON: {0}")]
    NotJson(String),
    #[error("the payload is not a JSON object")]
    NotAnObject,
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{field} is {value:?}; expected one of {expected}")]
    Unexpected { field: &'static str, value: String, expected: &'static str },
}

/// A string or number field, as text; empty strings count as absent.
fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn nested(obj: &Map<String, Value>, outer: &str, inner: &str) -> Option<String> {
    obj.get(outer).and_then(Value::as_object).and_then(|o| text(o, inner))
}

/// Gregorian seconds (Kazoo's clock) as a time; plain Unix seconds are accepted too.
pub fn gregorian(seconds: &str) -> Option<DateTime<Utc>> {
    let n: i64 = seconds.trim().split('.').next()?.parse().ok()?;
    let unix = if n >= GREGORIAN_OFFSET { n - GREGORIAN_OFFSET } else { n };
    Utc.timestamp_opt(unix, 0).single()
}

/// Which key names a payload uses.
#[derive(Debug, Clone, Copy)]
enum Keys {
    /// AMQP, through the blackhole websocket.
    Hyphen,
    /// Webhooks.
    Snake,
}

impl Keys {
    fn get(self, obj: &Map<String, Value>, snake: &'static str, hyphen: &'static str) -> Option<String> {
        match self {
            Keys::Hyphen => text(obj, hyphen),
            Keys::Snake => text(obj, snake),
        }
    }
}

fn channel_event(obj: &Map<String, Value>, name: ChannelEventName, keys: Keys) -> Result<ChannelEvent, KazooEventError> {
    let call_id = keys.get(obj, "call_id", "Call-ID").ok_or(KazooEventError::Missing(match keys {
        Keys::Hyphen => "Call-ID",
        Keys::Snake => "call_id",
    }))?;
    let (account_id, authorizing_type, contact) = match keys {
        Keys::Hyphen => (
            nested(obj, "Custom-Channel-Vars", "Account-ID"),
            nested(obj, "Custom-Channel-Vars", "Authorizing-Type"),
            nested(obj, "Custom-Application-Vars", "contact"),
        ),
        Keys::Snake => (
            text(obj, "account_id"),
            text(obj, "authorizing_type").or_else(|| nested(obj, "custom_channel_vars", "authorizing_type")),
            nested(obj, "custom_application_vars", "contact"),
        ),
    };
    Ok(ChannelEvent {
        name,
        call_id,
        other_leg_call_id: keys.get(obj, "other_leg_call_id", "Other-Leg-Call-ID"),
        call_direction: keys.get(obj, "call_direction", "Call-Direction").map(|d| d.to_ascii_lowercase()),
        caller_id_number: keys.get(obj, "caller_id_number", "Caller-ID-Number"),
        caller_id_name: keys.get(obj, "caller_id_name", "Caller-ID-Name"),
        callee_id_number: keys.get(obj, "callee_id_number", "Callee-ID-Number"),
        callee_id_name: keys.get(obj, "callee_id_name", "Callee-ID-Name"),
        to: keys.get(obj, "to", "To"),
        request: keys.get(obj, "request", "Request"),
        account_id,
        authorizing_type,
        contact,
        hangup_cause: keys.get(obj, "hangup_cause", "Hangup-Cause"),
        timestamp: keys.get(obj, "timestamp", "Timestamp").as_deref().and_then(gregorian),
    })
}

/// A webhook payload (JSON object, or form fields collected into one), e.g.
/// `{"hook_event":"channel_create","call_id":"…","call_direction":"inbound",…}`.
pub fn parse_webhook(fields: &Value) -> Result<ChannelEvent, KazooEventError> {
    let obj = fields.as_object().ok_or(KazooEventError::NotAnObject)?;
    let hook = text(obj, "hook_event").ok_or(KazooEventError::Missing("hook_event"))?;
    let name = ChannelEventName::parse(&hook).ok_or_else(|| KazooEventError::Unexpected {
        field: "hook_event",
        value: hook.clone(),
        expected: "channel_create, channel_answer, channel_bridge, channel_destroy",
    })?;
    channel_event(obj, name, Keys::Snake)
}

/// What the blackhole websocket sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlackholeMessage {
    /// The answer to a subscribe: `status` is `success` or `error`.
    Reply { request_id: Option<String>, status: String, message: Option<String> },
    Event(Box<ChannelEvent>),
    /// Something else (another event name, a greeting): nothing to do.
    Ignored,
}

/// Parses one websocket text message, in the 4.x or the 3.x shape.
pub fn parse_blackhole(text_msg: &str) -> Result<BlackholeMessage, KazooEventError> {
    let v: Value = serde_json::from_str(text_msg).map_err(|e| KazooEventError::NotJson(e.to_string()))?;
    let obj = v.as_object().ok_or(KazooEventError::NotAnObject)?;
    let action = text(obj, "action");
    if action.as_deref() == Some("reply") {
        let message = obj.get("data").and_then(|d| {
            d.as_object()
                .and_then(|d| text(d, "message").or_else(|| text(d, "error")))
                .or_else(|| d.as_str().map(str::to_owned))
        });
        return Ok(BlackholeMessage::Reply {
            request_id: text(obj, "request_id"),
            status: text(obj, "status").unwrap_or_default(),
            message,
        });
    }
    // 4.x: {"action":"event","name":…,"data":{…}}; 3.x: {"name":…,"args":{…}}.
    let body = match action.as_deref() {
        Some("event") => obj.get("data"),
        None => obj.get("args"),
        Some(_) => return Ok(BlackholeMessage::Ignored),
    };
    let Some(body) = body.and_then(Value::as_object) else { return Ok(BlackholeMessage::Ignored) };
    let name = text(obj, "name").or_else(|| text(body, "Event-Name"));
    let Some(name) = name.as_deref().and_then(ChannelEventName::parse) else { return Ok(BlackholeMessage::Ignored) };
    channel_event(body, name, Keys::Hyphen).map(|e| BlackholeMessage::Event(Box::new(e)))
}

/// How a call ended, per Kazoo's (FreeSWITCH's) hangup cause; `None` leaves it to the tracker.
pub fn disposition(hangup_cause: &str) -> Option<Disposition> {
    match hangup_cause.to_ascii_uppercase().as_str() {
        "USER_BUSY" | "CALL_REJECTED" => Some(Disposition::Busy),
        "NO_ANSWER" | "NO_USER_RESPONSE" | "PROGRESS_TIMEOUT" => Some(Disposition::Missed),
        "NORMAL_CLEARING" | "ORIGINATOR_CANCEL" | "LOSE_RACE" | "PICKED_OFF" | "ATTENDED_TRANSFER" | "BLIND_TRANSFER" => None,
        "UNALLOCATED_NUMBER" | "NO_ROUTE_DESTINATION" | "NO_ROUTE_TRANSIT_NET" | "INVALID_NUMBER_FORMAT"
        | "NORMAL_TEMPORARY_FAILURE" | "DESTINATION_OUT_OF_ORDER" | "NETWORK_OUT_OF_ORDER" | "SERVICE_UNAVAILABLE"
        | "INCOMPATIBLE_DESTINATION" | "RECOVERY_ON_TIMER_EXPIRE" | "MANDATORY_IE_MISSING" | "BEARERCAPABILITY_NOTAVAIL"
        | "SWITCH_CONGESTION" | "OUTGOING_CALL_BARRED" | "INCOMING_CALL_BARRED" => Some(Disposition::Failed),
        _ => None,
    }
}

/// The user part of a SIP URI (`+4420…@realm` → `+4420…`).
fn user_part(uri: &str) -> Option<String> {
    let uri = uri.trim();
    let uri = uri.strip_prefix("sip:").unwrap_or(uri);
    let user = uri.split('@').next().unwrap_or_default();
    (!user.is_empty()).then(|| user.to_owned())
}

#[derive(Debug, Clone)]
struct Leg {
    root: String,
    direction: Direction,
    clicktocall: bool,
}

/// Legs of calls, tied to the first leg of each call. See the module documentation.
#[derive(Debug, Default)]
pub struct Legs {
    legs: HashMap<String, Leg>,
    order: VecDeque<String>,
}

impl Legs {
    /// Turns a channel event into what the tracker takes. Direction:
    /// a call that enters the account (`inbound`) is incoming, one that leaves it (`outbound`, or any
    /// click-to-call) is outgoing.
    pub fn observe(&mut self, event: &ChannelEvent) -> ProviderEvent {
        let leg = self.leg_for(event);
        let kind = match event.name {
            ChannelEventName::Create => match leg.direction {
                Direction::In => ProviderEventKind::Incoming,
                Direction::Out | Direction::Internal => ProviderEventKind::Outgoing,
            },
            // A click-to-call first rings the user's own phone; its answer only means the contact is
            // being called now. The contact's leg answering is the call being answered.
            ChannelEventName::Answer if leg.clicktocall && event.call_id == leg.root => ProviderEventKind::Ringing,
            ChannelEventName::Answer => ProviderEventKind::Answered,
            ChannelEventName::Bridge => ProviderEventKind::Ringing,
            ChannelEventName::Destroy => ProviderEventKind::Ended,
        };
        let mut out = ProviderEvent::new(NAME, kind);
        out.direction = Some(leg.direction);
        out.provider_call_id = Some(leg.root.clone());
        out.at = event.timestamp;
        let dialed = event.callee_id_number.clone().or_else(|| event.to.as_deref().and_then(user_part)).or_else(|| event.request.as_deref().and_then(user_part));
        match (leg.clicktocall, leg.direction) {
            (true, _) => {
                out.remote_number = event.contact.clone().or_else(|| event.caller_id_number.clone());
            }
            (false, Direction::In) => {
                out.remote_number = event.caller_id_number.clone();
                out.remote_name = event.caller_id_name.clone();
                out.local_extension = event.callee_id_number.clone();
            }
            (false, _) => {
                out.remote_number = dialed;
                out.remote_name = event.callee_id_name.clone();
                out.local_extension = event.caller_id_number.clone();
            }
        }
        if event.name == ChannelEventName::Destroy {
            out.disposition = event.hangup_cause.as_deref().and_then(disposition);
        }
        out
    }

    /// Whether `call_id` is a leg of a click-to-call.
    pub fn is_clicktocall(&self, call_id: &str) -> bool {
        self.legs.get(call_id).is_some_and(|l| l.clicktocall)
    }

    fn leg_for(&mut self, event: &ChannelEvent) -> Leg {
        if let Some(leg) = self.legs.get(&event.call_id) {
            return leg.clone();
        }
        let linked = event.other_leg_call_id.as_ref().and_then(|other| self.legs.get(other)).cloned();
        let leg = linked.unwrap_or_else(|| {
            let clicktocall = event.authorizing_type.as_deref() == Some("clicktocall") || event.call_id.starts_with("c2c-");
            let direction = match (clicktocall, event.call_direction.as_deref()) {
                (true, _) => Direction::Out,
                (false, Some("outbound")) => Direction::Out,
                _ => Direction::In,
            };
            Leg { root: event.call_id.clone(), direction, clicktocall }
        });
        if self.order.len() >= MAX_LEGS {
            if let Some(old) = self.order.pop_front() {
                self.legs.remove(&old);
            }
        }
        self.order.push_back(event.call_id.clone());
        self.legs.insert(event.call_id.clone(), leg.clone());
        leg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> ChannelEvent {
        match parse_blackhole(&v.to_string()) {
            Ok(BlackholeMessage::Event(e)) => *e,
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn parses_the_4x_blackhole_shape() {
        let e = event(json!({
            "action": "event", "subscribed_key": "call.CHANNEL_CREATE.*", "subscription_key": "call.CHANNEL_CREATE.*",
            "name": "CHANNEL_CREATE", "routing_key": "call.CHANNEL_CREATE.abc",
            "data": {
                "Call-ID": "abc", "Call-Direction": "inbound", "Caller-ID-Number": "+442079460000",
                "Caller-ID-Name": "Alice", "Callee-ID-Number": "101", "Event-Name": "CHANNEL_CREATE",
                "Custom-Channel-Vars": {"Account-ID": "acc", "Authorizing-Type": "device"},
                "Timestamp": 63724349409u64, "To": "101@acme.example.com"
            }
        }));
        assert_eq!(e.name, ChannelEventName::Create);
        assert_eq!(e.call_id, "abc");
        assert_eq!(e.call_direction.as_deref(), Some("inbound"));
        assert_eq!(e.account_id.as_deref(), Some("acc"));
        assert_eq!(e.timestamp.map(|t| t.timestamp()), Some(63_724_349_409 - GREGORIAN_OFFSET));
    }

    #[test]
    fn parses_the_3x_shape_and_takes_the_name_from_event_name() {
        let e = event(json!({"name": "CHANNEL_DESTROY", "args": {"Call-ID": "x", "Hangup-Cause": "USER_BUSY"}}));
        assert_eq!((e.name, e.hangup_cause.as_deref()), (ChannelEventName::Destroy, Some("USER_BUSY")));
        let e = event(json!({"action": "event", "data": {"Event-Name": "CHANNEL_ANSWER", "Call-ID": "y"}}));
        assert_eq!(e.name, ChannelEventName::Answer);
    }

    #[test]
    fn replies_and_other_messages() {
        let r = parse_blackhole(r#"{"action":"reply","request_id":"r1","status":"error","data":{"message":"invalid auth_token"}}"#);
        assert_eq!(
            r,
            Ok(BlackholeMessage::Reply { request_id: Some("r1".into()), status: "error".into(), message: Some("invalid auth_token".into()) })
        );
        assert_eq!(parse_blackhole(r#"{"action":"event","name":"RECORD_STOP","data":{}}"#), Ok(BlackholeMessage::Ignored));
        assert_eq!(parse_blackhole(r#"{"action":"pong"}"#), Ok(BlackholeMessage::Ignored));
        assert_eq!(
            parse_blackhole(r#"{"action":"event","name":"CHANNEL_CREATE","data":{}}"#),
            Err(KazooEventError::Missing("Call-ID"))
        );
        assert!(matches!(parse_blackhole("nope"), Err(KazooEventError::NotJson(_))));
    }

    #[test]
    fn parses_webhooks_with_string_timestamps() {
        let e = parse_webhook(&json!({
            "hook_event": "channel_destroy", "call_id": "w1", "call_direction": "outbound",
            "callee_id_number": "+15550100", "hangup_cause": "NORMAL_CLEARING", "hangup_code": "sip:200",
            "timestamp": "63724349409", "account_id": "acc"
        }))
        .expect("valid");
        assert_eq!(e.name, ChannelEventName::Destroy);
        assert_eq!(e.timestamp.map(|t| t.timestamp()), Some(63_724_349_409 - GREGORIAN_OFFSET));
        assert_eq!(parse_webhook(&json!({"call_id": "x"})), Err(KazooEventError::Missing("hook_event")));
        assert_eq!(parse_webhook(&json!({"hook_event": "channel_create"})), Err(KazooEventError::Missing("call_id")));
        assert!(matches!(
            parse_webhook(&json!({"hook_event": "parking", "call_id": "x"})),
            Err(KazooEventError::Unexpected { field: "hook_event", .. })
        ));
        assert_eq!(parse_webhook(&json!([1])), Err(KazooEventError::NotAnObject));
    }

    #[test]
    fn gregorian_seconds_and_unix_seconds() {
        assert_eq!(gregorian("63724349409").map(|t| t.to_rfc3339()), Some("2019-05-06T08:10:09+00:00".into()));
        assert_eq!(gregorian("1557307809").map(|t| t.timestamp()), Some(1_557_307_809));
        assert_eq!(gregorian("soon"), None);
    }

    fn leg(name: ChannelEventName, id: &str) -> ChannelEvent {
        ChannelEvent {
            name,
            call_id: id.into(),
            other_leg_call_id: None,
            call_direction: None,
            caller_id_number: None,
            caller_id_name: None,
            callee_id_number: None,
            callee_id_name: None,
            to: None,
            request: None,
            account_id: None,
            authorizing_type: None,
            contact: None,
            hangup_cause: None,
            timestamp: None,
        }
    }

    #[test]
    fn click_to_call_legs_become_one_outgoing_call_answered_by_the_contact() {
        use ChannelEventName::*;
        let mut legs = Legs::default();
        let root = "c2c-c2cid-1234";
        let a = |name| ChannelEvent {
            authorizing_type: Some("clicktocall".into()),
            call_direction: Some("outbound".into()),
            caller_id_number: Some("+15550100".into()),
            callee_id_number: Some("101".into()),
            ..leg(name, root)
        };
        let b = |name| ChannelEvent { other_leg_call_id: Some(root.into()), callee_id_number: Some("+15550100".into()), ..leg(name, "b-leg") };
        let seen: Vec<_> = [a(Create), a(Answer), b(Create), b(Answer), b(Destroy), a(Destroy)]
            .iter()
            .map(|e| legs.observe(e))
            .map(|p| (p.kind, p.provider_call_id, p.direction))
            .collect();
        let r = Some(root.to_owned());
        let out = Some(Direction::Out);
        assert_eq!(
            seen,
            [
                (ProviderEventKind::Outgoing, r.clone(), out),
                (ProviderEventKind::Ringing, r.clone(), out),
                (ProviderEventKind::Outgoing, r.clone(), out),
                (ProviderEventKind::Answered, r.clone(), out),
                (ProviderEventKind::Ended, r.clone(), out),
                (ProviderEventKind::Ended, r, out),
            ]
        );
        assert_eq!(legs.observe(&a(Create)).remote_number.as_deref(), Some("+15550100"));
    }

    #[test]
    fn inbound_calls_are_incoming_with_the_caller_as_remote() {
        let mut legs = Legs::default();
        let e = ChannelEvent {
            call_direction: Some("inbound".into()),
            caller_id_number: Some("+442079460000".into()),
            caller_id_name: Some("Alice".into()),
            callee_id_number: Some("101".into()),
            ..leg(ChannelEventName::Create, "in-1")
        };
        let p = legs.observe(&e);
        assert_eq!((p.kind, p.direction), (ProviderEventKind::Incoming, Some(Direction::In)));
        assert_eq!((p.remote_number.as_deref(), p.remote_name.as_deref(), p.local_extension.as_deref()), (Some("+442079460000"), Some("Alice"), Some("101")));
        let busy = ChannelEvent { hangup_cause: Some("USER_BUSY".into()), ..leg(ChannelEventName::Destroy, "in-1") };
        assert_eq!(legs.observe(&busy).disposition, Some(Disposition::Busy));
    }

    #[test]
    fn hangup_causes() {
        assert_eq!(disposition("NORMAL_CLEARING"), None);
        assert_eq!(disposition("ORIGINATOR_CANCEL"), None);
        assert_eq!(disposition("CALL_REJECTED"), Some(Disposition::Busy));
        assert_eq!(disposition("NO_ANSWER"), Some(Disposition::Missed));
        assert_eq!(disposition("UNALLOCATED_NUMBER"), Some(Disposition::Failed));
        assert_eq!(disposition("SOMETHING_NEW"), None);
    }
}
