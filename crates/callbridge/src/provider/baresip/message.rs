//! The JSON messages inside `ctrl_tcp`'s netstrings (baresip's `modules/ctrl_tcp/ctrl_tcp.c`, https://github.com/baresip/baresip), and what they mean for
//! a call.
//!
//! Three kinds arrive: responses to our commands (`"response":true`, matched by `token`), events
//! (`"event":true`, keyed on `type`, never on `class`, which changed between versions), and things
//! newer versions add that we do not need (`"message":true`). baresip 1.0.0's source comment shows
//! `"event":"true"` as a string while the code sends a boolean, so both are accepted.

use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::Value;

use crate::call::{Direction, Disposition};

/// A command to baresip: it runs `"<command> <params>"` as a long menu command.
#[derive(Debug, Serialize)]
pub struct Command<'a> {
    pub command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<&'a str>,
    pub token: &'a str,
}

/// baresip's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub ok: bool,
    /// The command's text output, or the errno text when it failed without output.
    pub data: String,
    pub token: Option<String>,
}

/// Something baresip reports on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `CALL_INCOMING`, `CALL_CLOSED`, `REGISTER_OK`, …
    pub kind: String,
    /// `incoming` or `outgoing`, for call events.
    pub direction: Option<String>,
    pub peer_uri: Option<String>,
    pub peer_name: Option<String>,
    pub account_aor: Option<String>,
    /// The SIP Call-ID, when the call has one yet.
    pub id: Option<String>,
    /// The peer URI for most call events; the reason text for `CALL_CLOSED`.
    pub param: Option<String>,
}

/// One message from baresip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Response(Response),
    Event(Event),
    /// A kind of message we do not use (e.g. `"message":true` for SIP MESSAGE in newer versions).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("baresip sent something that is not JSON: {0}")]
    NotJson(String),
    #[error("baresip sent JSON that is not an object")]
    NotAnObject,
}

/// `true`, or the string `"true"` as 1.0.0's source comment has it.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses one netstring payload.
pub fn parse(payload: &[u8]) -> Result<Message, MessageError> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| MessageError::NotJson(e.to_string()))?;
    if !v.is_object() {
        return Err(MessageError::NotAnObject);
    }
    if flag(v.get("response")) {
        return Ok(Message::Response(Response {
            ok: flag(v.get("ok")),
            data: text(&v, "data").unwrap_or_default(),
            token: text(&v, "token"),
        }));
    }
    if flag(v.get("event")) {
        return Ok(Message::Event(Event {
            kind: text(&v, "type").unwrap_or_default(),
            direction: text(&v, "direction"),
            peer_uri: text(&v, "peeruri"),
            peer_name: text(&v, "peerdisplayname"),
            account_aor: text(&v, "accountaor"),
            id: text(&v, "id"),
            param: text(&v, "param"),
        }));
    }
    Ok(Message::Other)
}

/// What a call event means, in CallBridge's terms: `CALL_INCOMING` is incoming; `CALL_OUTGOING`, or the
/// first `CALL_RINGING`/`CALL_PROGRESS` of an outgoing call, outgoing; `CALL_ESTABLISHED` answered; `CALL_CLOSED` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Incoming,
    Outgoing,
    Ringing,
    Answered,
    Closed,
}

impl Event {
    /// The call signal this event carries, if it is one we act on. 1.0.0 has no `CALL_OUTGOING` or
    /// `CALL_ANSWERED`: there, the first `CALL_RINGING`/`CALL_PROGRESS` of an outgoing call starts it.
    pub fn signal(&self) -> Option<Signal> {
        match self.kind.as_str() {
            "CALL_INCOMING" => Some(Signal::Incoming),
            "CALL_OUTGOING" => Some(Signal::Outgoing),
            "CALL_RINGING" | "CALL_PROGRESS" => match self.direction() {
                Some(Direction::In) => Some(Signal::Incoming),
                _ => Some(Signal::Ringing),
            },
            "CALL_ESTABLISHED" | "CALL_ANSWERED" => Some(Signal::Answered),
            "CALL_CLOSED" => Some(Signal::Closed),
            _ => None,
        }
    }

    pub fn direction(&self) -> Option<Direction> {
        match self.direction.as_deref()? {
            "incoming" => Some(Direction::In),
            "outgoing" => Some(Direction::Out),
            _ => None,
        }
    }

    /// How a closed call ended, as far as the reason text says. `None` leaves it to the tracker
    /// (answered, missed or cancelled by who hung up when).
    pub fn closed_disposition(&self) -> Option<Disposition> {
        let reason = self.param.as_deref()?.trim();
        if let Some(code) = sip_status(reason) {
            return match code {
                486 | 600 | 603 => Some(Disposition::Busy),
                // 487: the INVITE was cancelled, by whoever hung up first.
                487 => None,
                408 | 480 => Some(Disposition::Missed),
                400..=699 => Some(Disposition::Failed),
                _ => None,
            };
        }
        let lower = reason.to_ascii_lowercase();
        if lower.contains("busy") || lower.contains("decline") {
            return Some(Disposition::Busy);
        }
        None
    }
}

/// The SIP status code a reason text starts with (`"486 Busy Here"`).
fn sip_status(reason: &str) -> Option<u16> {
    let digits: String = reason.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() != 3 || reason[3..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    digits.parse().ok()
}

/// The user part of a SIP or tel URI: `"Bob" <sip:+4420794@host;user=phone>` → `+4420794`.
pub fn user_of(uri: &str) -> Option<String> {
    let uri = uri.trim();
    let uri = match (uri.find('<'), uri.rfind('>')) {
        (Some(a), Some(b)) if a < b => &uri[a + 1..b],
        _ => uri,
    };
    let rest = ["sips:", "sip:", "tel:"]
        .iter()
        .find_map(|scheme| uri.get(..scheme.len()).filter(|p| p.eq_ignore_ascii_case(scheme)).map(|_| &uri[scheme.len()..]))
        .unwrap_or(uri);
    let user = match rest.find('@') {
        Some(at) => &rest[..at],
        None => rest,
    };
    let user = user.split([';', '?']).next().unwrap_or_default();
    let user = percent_decode_str(user).decode_utf8_lossy().trim().to_owned();
    (!user.is_empty()).then_some(user)
}

/// The call id newer versions print in the `dial` response (`call id: 5e0d…`); 1.0.0 prints none.
pub fn dialed_call_id(data: &str) -> Option<String> {
    let lower = data.to_ascii_lowercase();
    let at = lower.find("call id:")? + "call id:".len();
    data[at..].split_whitespace().next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        match parse(json.as_bytes()) {
            Ok(Message::Event(e)) => e,
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn parses_responses_with_and_without_token() {
        let r = parse(br#"{"response":true,"ok":true,"data":"","token":"cb-1"}"#);
        assert_eq!(r, Ok(Message::Response(Response { ok: true, data: String::new(), token: Some("cb-1".into()) })));
        let r = parse(br#"{"response":true,"ok":false,"data":"command not found (foo)\n"}"#);
        assert_eq!(
            r,
            Ok(Message::Response(Response { ok: false, data: "command not found (foo)\n".into(), token: None }))
        );
    }

    #[test]
    fn parses_a_1_0_0_event_and_keys_on_type() {
        let e = event(
            r#"{"event":true,"type":"CALL_INCOMING","class":"call","accountaor":"sip:callbridge@127.0.0.1","direction":"incoming","peeruri":"sip:02079460000@127.0.0.1:15071","peerdisplayname":"Test Caller","id":"1-22692@127.0.0.1","param":"sip:02079460000@127.0.0.1:15071"}"#,
        );
        assert_eq!(e.kind, "CALL_INCOMING");
        assert_eq!(e.signal(), Some(Signal::Incoming));
        assert_eq!(e.direction(), Some(Direction::In));
        assert_eq!(e.id.as_deref(), Some("1-22692@127.0.0.1"));
        assert_eq!(e.peer_name.as_deref(), Some("Test Caller"));
        // HEAD's bevent classes ("ua", "sip") change nothing: the type decides.
        let e = event(r#"{"event":true,"class":"ua","type":"CALL_ESTABLISHED","direction":"outgoing","id":"x"}"#);
        assert_eq!(e.signal(), Some(Signal::Answered));
    }

    #[test]
    fn event_flag_may_be_a_string() {
        let e = event(r#"{"event":"true","type":"CALL_CLOSED","direction":"outgoing","param":"486 Busy Here"}"#);
        assert_eq!(e.signal(), Some(Signal::Closed));
        assert_eq!(e.closed_disposition(), Some(Disposition::Busy));
    }

    #[test]
    fn other_messages_and_garbage() {
        assert_eq!(parse(br#"{"message":true,"param":"hi"}"#), Ok(Message::Other));
        assert_eq!(parse(br#"{"event":false,"type":"CALL_CLOSED"}"#), Ok(Message::Other));
        assert!(matches!(parse(b"not json"), Err(MessageError::NotJson(_))));
        assert_eq!(parse(b"[1,2]"), Err(MessageError::NotAnObject));
    }

    #[test]
    fn maps_every_call_event_of_old_and_new_versions() {
        let sig = |kind: &str, dir: &str| Event { kind: kind.into(), direction: Some(dir.into()), ..Event::default() }.signal();
        assert_eq!(sig("CALL_INCOMING", "incoming"), Some(Signal::Incoming));
        assert_eq!(sig("CALL_OUTGOING", "outgoing"), Some(Signal::Outgoing));
        assert_eq!(sig("CALL_RINGING", "outgoing"), Some(Signal::Ringing));
        assert_eq!(sig("CALL_PROGRESS", "outgoing"), Some(Signal::Ringing));
        assert_eq!(sig("CALL_ESTABLISHED", "incoming"), Some(Signal::Answered));
        assert_eq!(sig("CALL_ANSWERED", "incoming"), Some(Signal::Answered));
        assert_eq!(sig("CALL_CLOSED", "incoming"), Some(Signal::Closed));
        for ignored in ["CALL_LOCAL_SDP", "CALL_REMOTE_SDP", "CALL_RTCP", "REGISTER_OK", "VU_TX_REPORT", ""] {
            assert_eq!(sig(ignored, "outgoing"), None, "{ignored}");
        }
    }

    #[test]
    fn close_reasons_map_to_dispositions_where_they_say_something() {
        let closed = |reason: &str| Event { kind: "CALL_CLOSED".into(), param: Some(reason.into()), ..Event::default() }.closed_disposition();
        assert_eq!(closed("486 Busy Here"), Some(Disposition::Busy));
        assert_eq!(closed("603 Decline"), Some(Disposition::Busy));
        assert_eq!(closed("480 Temporarily Unavailable"), Some(Disposition::Missed));
        assert_eq!(closed("404 Not Found"), Some(Disposition::Failed));
        assert_eq!(closed("503 Service Unavailable"), Some(Disposition::Failed));
        assert_eq!(closed("487 Request Terminated"), None);
        assert_eq!(closed("Connection reset by user"), None);
        assert_eq!(closed("Connection reset by peer"), None);
        assert_eq!(closed("4860 not a code"), None);
        assert_eq!(closed(""), None);
    }

    #[test]
    fn user_part_of_uris() {
        assert_eq!(user_of("sip:020123456@127.0.0.1:15070").as_deref(), Some("020123456"));
        assert_eq!(user_of("\"Bob\" <sips:+442079460000@sip.example.com;user=phone>").as_deref(), Some("+442079460000"));
        assert_eq!(user_of("tel:+1-201-555-0123").as_deref(), Some("+1-201-555-0123"));
        assert_eq!(user_of("sip:%2B4930123@x").as_deref(), Some("+4930123"));
        assert_eq!(user_of("SIP:101;transport=udp@pbx").as_deref(), Some("101"));
        assert_eq!(user_of("sip:@host"), None);
        assert_eq!(user_of(""), None);
    }

    #[test]
    fn dial_response_call_id_of_newer_versions() {
        assert_eq!(dialed_call_id("call id: 5e0d2b1c6a1d09f8\n").as_deref(), Some("5e0d2b1c6a1d09f8"));
        assert_eq!(dialed_call_id(""), None);
    }

    #[test]
    fn commands_serialize_as_ctrl_tcp_expects() {
        let c = Command { command: "dial", params: Some("sip:alice@atlanta.com"), token: "qwerasdf" };
        assert_eq!(
            serde_json::to_string(&c).ok().as_deref(),
            Some(r#"{"command":"dial","params":"sip:alice@atlanta.com","token":"qwerasdf"}"#)
        );
        let c = Command { command: "hangup", params: None, token: "t" };
        assert_eq!(serde_json::to_string(&c).ok().as_deref(), Some(r#"{"command":"hangup","token":"t"}"#));
    }
}
