//! The call model: what a phone call looks like to the user, and what can happen to it.
//!
//! Every provider (the simulator, TeleCMI, Kazoo, baresip, generic PBX webhooks) reports in its own
//! vocabulary; the [`crate::tracker::CallTracker`] turns those reports into [`Call`]s and the four
//! [`CallEventKind`]s defined here, which are all that notifications, the UI and the API ever see.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// CallBridge's own id for a call, stable for the call's whole life and across providers.
///
/// A call's id is copied into every event, history row and notification of the call, so it is a shared
/// string: cloning it counts a reference instead of copying the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(Arc<str>);

impl CallId {
    /// A fresh id: a UUID version 7 (RFC 9562), a millisecond timestamp then 74 random bits. Ids made
    /// later sort later, so the call history's unique index on the id takes each new call at its end,
    /// where SQLite already has the page, rather than on a random page of the whole index (a version 4
    /// UUID), which made every commit of many calls rewrite as many index pages.
    /// <https://www.rfc-editor.org/rfc/rfc9562#name-uuid-version-7>
    pub fn new() -> Self {
        let mut text = uuid::Uuid::encode_buffer();
        CallId(Arc::from(&*uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CallId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CallId {
    fn from(s: String) -> Self {
        CallId(Arc::from(s))
    }
}

impl From<&str> for CallId {
    fn from(s: &str) -> Self {
        CallId(Arc::from(s))
    }
}

impl Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CallId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(CallId::from)
    }
}

/// A map keyed by call id, hashed with foldhash, seeded at random in each process
/// (<https://docs.rs/foldhash>): a call id is looked up a few times for each call event, and std's
/// SipHash made that a few percent of a dialed call's CPU.
pub type CallMap<V> = std::collections::HashMap<CallId, V, foldhash::fast::RandomState>;

/// Which way a call goes, seen from the user's desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Someone calls the user.
    #[serde(alias = "inbound", alias = "incoming")]
    In,
    /// The user calls someone.
    #[serde(alias = "outbound", alias = "outgoing")]
    Out,
    /// Extension to extension inside the phone system.
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Internal => "internal",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a call is in its life. States only move forward: dialing → ringing → active → ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// Placed from here, the far end not yet ringing.
    Dialing,
    /// Ringing (here for an incoming call, at the far end for an outgoing one).
    Ringing,
    /// Answered and connected.
    Active,
    /// Over.
    Ended,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Dialing => "dialing",
            CallState::Ringing => "ringing",
            CallState::Active => "active",
            CallState::Ended => "ended",
        }
    }

    pub fn is_live(self) -> bool {
        self != CallState::Ended
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// It was answered (and then hung up by someone).
    Answered,
    /// It rang and nobody answered.
    Missed,
    /// The far end was busy or rejected it.
    Busy,
    /// The phone system could not place it.
    Failed,
    /// The caller gave up before it was answered.
    Cancelled,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Missed => "missed",
            Disposition::Busy => "busy",
            Disposition::Failed => "failed",
            Disposition::Cancelled => "cancelled",
        }
    }
}

/// One phone call as the user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub direction: Direction,
    /// The other party's number: E.164 when it could be normalized, else as the provider gave it.
    pub remote_number: String,
    /// The other party's name: from the phone system, else from the CRM's caller lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
    /// The other party's company, from the CRM's caller lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// The other party's record in the CRM, from the caller lookup: what "Open in CRM" opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_url: Option<String>,
    /// The user's own extension or line, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_extension: Option<String>,
    pub state: CallState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Which provider carries the call (`simulator`, `telecmi`, …).
    pub provider: String,
    /// The provider's own id for the call, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_call_id: Option<String>,
    /// The click-to-call request id the provider gave when the call was placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
}

impl Call {
    /// A new call in its first state for the given direction.
    pub fn new(direction: Direction, remote_number: impl Into<String>, provider: impl Into<String>) -> Self {
        Call {
            id: CallId::new(),
            direction,
            remote_number: remote_number.into(),
            remote_name: None,
            company: None,
            record_url: None,
            local_extension: None,
            state: match direction {
                Direction::Out => CallState::Dialing,
                Direction::In | Direction::Internal => CallState::Ringing,
            },
            disposition: None,
            provider: provider.into(),
            provider_call_id: None,
            request_id: None,
            started_at: Utc::now(),
            answered_at: None,
            ended_at: None,
        }
    }

    /// Whole seconds the call was connected: from answer to end, or to `now` while it is active.
    pub fn talk_seconds(&self, now: DateTime<Utc>) -> i64 {
        match self.answered_at {
            Some(answered) => (self.ended_at.unwrap_or(now) - answered).num_seconds().max(0),
            None => 0,
        }
    }

    /// The calling party's number or extension.
    pub fn from_party(&self) -> Option<&str> {
        match self.direction {
            Direction::In => Some(&self.remote_number),
            Direction::Out | Direction::Internal => self.local_extension.as_deref(),
        }
    }

    /// The called party's number or extension.
    pub fn to_party(&self) -> Option<&str> {
        match self.direction {
            Direction::In => self.local_extension.as_deref(),
            Direction::Out | Direction::Internal => Some(&self.remote_number),
        }
    }
}

/// The four things that can happen to a call that the outside world is told about, and `updated`,
/// which only the event stream carries: what is known of the call changed (the CRM's caller lookup
/// found a name) without anything happening to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallEventKind {
    /// A call rings here.
    Incoming,
    /// A call was placed from here.
    Outgoing,
    /// A call was answered (either direction). Enreach calls this "Active Call".
    #[serde(alias = "active")]
    Answered,
    /// A call is over. Enreach calls this "End Call".
    #[serde(alias = "end")]
    Ended,
    /// What is known of a call changed (its name, company or CRM record). Sent to the event stream
    /// only, never as a notification, so a notification rule cannot name it.
    #[serde(skip_deserializing)]
    Updated,
}

impl CallEventKind {
    /// The kinds a notification rule can name.
    pub const ALL: [CallEventKind; 4] =
        [CallEventKind::Incoming, CallEventKind::Outgoing, CallEventKind::Answered, CallEventKind::Ended];

    pub fn as_str(self) -> &'static str {
        match self {
            CallEventKind::Incoming => "incoming",
            CallEventKind::Outgoing => "outgoing",
            CallEventKind::Answered => "answered",
            CallEventKind::Ended => "ended",
            CallEventKind::Updated => "updated",
        }
    }

    /// The event that starts a call of this direction.
    pub fn start_for(direction: Direction) -> CallEventKind {
        match direction {
            Direction::In => CallEventKind::Incoming,
            Direction::Out | Direction::Internal => CallEventKind::Outgoing,
        }
    }
}

impl fmt::Display for CallEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a call, with the call as it was right after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub kind: CallEventKind,
    pub at: DateTime<Utc>,
    pub call: Call,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_made_later_sort_later_even_within_a_millisecond() {
        let ids: Vec<CallId> = (0..10_000).map(|_| CallId::new()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} came before {}", pair[0].as_str(), pair[1].as_str());
        }
        let parsed = uuid::Uuid::parse_str(ids[0].as_str()).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
    }

    #[test]
    fn talk_seconds_counts_from_answer_to_end() {
        let mut call = Call::new(Direction::Out, "+441234567890", "simulator");
        assert_eq!(call.talk_seconds(Utc::now()), 0);
        let t0 = Utc::now();
        call.answered_at = Some(t0);
        call.ended_at = Some(t0 + chrono::Duration::seconds(42));
        assert_eq!(call.talk_seconds(t0 + chrono::Duration::seconds(100)), 42);
    }

    #[test]
    fn parties_follow_direction() {
        let mut call = Call::new(Direction::In, "+441234567890", "simulator");
        call.local_extension = Some("101".into());
        assert_eq!(call.from_party(), Some("+441234567890"));
        assert_eq!(call.to_party(), Some("101"));
        call.direction = Direction::Out;
        assert_eq!(call.from_party(), Some("101"));
        assert_eq!(call.to_party(), Some("+441234567890"));
    }

    #[test]
    fn enums_serialize_to_the_documented_words() {
        assert_eq!(serde_json::to_string(&Direction::Internal).ok().as_deref(), Some("\"internal\""));
        assert_eq!(serde_json::to_string(&CallState::Active).ok().as_deref(), Some("\"active\""));
        assert_eq!(serde_json::to_string(&Disposition::Cancelled).ok().as_deref(), Some("\"cancelled\""));
        assert_eq!(serde_json::to_string(&CallEventKind::Ended).ok().as_deref(), Some("\"ended\""));
    }
}
