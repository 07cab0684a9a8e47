//! Which baresip call is which CallBridge call.
//!
//! baresip names a call by its SIP Call-ID (the event `id`), but 1.0.0's `dial` response does not
//! say which Call-ID the new call got. So a dial is registered here *before* the command is sent,
//! and the first outgoing event with a Call-ID not seen before claims it — the one whose peer URI is
//! the dialed URI, else the oldest waiting dial. From then on every event of that call carries
//! CallBridge's call id, and the tracker needs no guessing. Calls started on the softphone itself
//! (no dial from here) are reported by their Call-ID alone and become new calls.

use std::collections::{HashMap, VecDeque};

use super::message::{user_of, Event, Signal};
use super::config::NAME;
use crate::call::{Call, CallId, Direction, Disposition};
use crate::provider::{ProviderEvent, ProviderEventKind};

/// Bounds on what is remembered, should baresip never report the end of some calls.
const MAX_PENDING: usize = 64;
const MAX_LIVE: usize = 256;

#[derive(Debug)]
struct PendingDial {
    call_id: CallId,
    uri: String,
}

#[derive(Debug, Clone)]
struct Live {
    call_id: Option<CallId>,
    direction: Direction,
    remote: Option<String>,
    answered: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Calls {
    pending: VecDeque<PendingDial>,
    /// Calls baresip has reported and not yet closed, by SIP Call-ID.
    live: HashMap<String, Live>,
}

impl Calls {
    /// A dial of `uri` for `call_id` is about to be sent.
    pub fn expect_dial(&mut self, call_id: CallId, uri: String) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(PendingDial { call_id, uri });
    }

    /// The dial was refused or never answered: nothing will claim it.
    pub fn forget_dial(&mut self, call_id: &CallId) {
        self.pending.retain(|p| p.call_id != *call_id);
    }

    /// Newer baresip versions name the Call-ID in the `dial` response: bind it at once.
    pub fn dialed(&mut self, call_id: &CallId, sip_id: &str) {
        if let Some(live) = self.live.get(sip_id) {
            if live.call_id.as_ref() == Some(call_id) {
                return;
            }
        }
        self.forget_dial(call_id);
        self.live.insert(
            sip_id.to_owned(),
            Live { call_id: Some(call_id.clone()), direction: Direction::Out, remote: None, answered: false },
        );
    }

    /// The SIP Call-ID of `call`, when baresip has reported it.
    pub fn sip_id_of(&self, call: &Call) -> Option<String> {
        if let Some(id) = call.provider_call_id.as_ref().filter(|id| self.live.contains_key(*id)) {
            return Some(id.clone());
        }
        self.live.iter().find(|(_, l)| l.call_id.as_ref() == Some(&call.id)).map(|(id, _)| id.clone())
    }

    /// Whether `sip_id` is an incoming call that has not been answered.
    pub fn is_ringing_incoming(&self, sip_id: &str) -> bool {
        self.live.get(sip_id).is_some_and(|l| l.direction == Direction::In && !l.answered)
    }

    /// Turns one baresip call event into what CallBridge's tracker takes.
    pub fn observe(&mut self, event: &Event, signal: Signal) -> ProviderEvent {
        let direction = event.direction().or(match signal {
            Signal::Incoming => Some(Direction::In),
            Signal::Outgoing | Signal::Ringing => Some(Direction::Out),
            Signal::Answered | Signal::Closed => None,
        });
        let remote = event.peer_uri.as_deref().and_then(user_of);
        let known = event.id.as_ref().and_then(|id| self.live.get(id)).cloned();
        let call_id = match &known {
            Some(live) => live.call_id.clone(),
            None if direction == Some(Direction::Out) => self.claim_dial(event),
            None => None,
        };
        if let Some(id) = &event.id {
            if signal == Signal::Closed {
                self.live.remove(id);
            } else {
                if !self.live.contains_key(id) && self.live.len() >= MAX_LIVE {
                    tracing::warn!("baresip reported more than {MAX_LIVE} live calls; forgetting the oldest guesses");
                    self.live.clear();
                }
                let live = self.live.entry(id.clone()).or_insert_with(|| Live {
                    call_id: call_id.clone(),
                    direction: direction.unwrap_or(Direction::In),
                    remote: remote.clone(),
                    answered: false,
                });
                live.answered |= signal == Signal::Answered;
            }
        }

        let kind = match signal {
            Signal::Incoming => ProviderEventKind::Incoming,
            Signal::Outgoing => ProviderEventKind::Outgoing,
            Signal::Ringing => ProviderEventKind::Ringing,
            Signal::Answered => ProviderEventKind::Answered,
            Signal::Closed => ProviderEventKind::Ended,
        };
        let mut out = ProviderEvent::new(NAME, kind);
        out.direction = direction.or(known.as_ref().map(|l| l.direction));
        out.call_id = call_id;
        out.provider_call_id = event.id.clone();
        out.remote_number = remote.or_else(|| known.and_then(|l| l.remote));
        out.remote_name = event.peer_name.clone();
        out.local_extension = event.account_aor.as_deref().and_then(user_of);
        if signal == Signal::Closed {
            out.disposition = event.closed_disposition();
        }
        out
    }

    /// The waiting dial an outgoing event with a new Call-ID belongs to.
    fn claim_dial(&mut self, event: &Event) -> Option<CallId> {
        let peer = event.peer_uri.as_deref().unwrap_or_default();
        let peer_user = user_of(peer);
        let at = self
            .pending
            .iter()
            .position(|p| p.uri == peer)
            .or_else(|| self.pending.iter().position(|p| peer_user.is_some() && user_of(&p.uri) == peer_user))
            .or_else(|| (!self.pending.is_empty()).then_some(0))?;
        self.pending.remove(at).map(|p| p.call_id)
    }

    /// The connection to baresip is gone, and with it any way to follow or end its calls: each
    /// call still live is reported ended (failed, unless it was talked on).
    pub fn drain(&mut self) -> Vec<ProviderEvent> {
        self.pending.clear();
        self.live
            .drain()
            .map(|(sip_id, live)| {
                let mut out = ProviderEvent::new(NAME, ProviderEventKind::Ended);
                out.direction = Some(live.direction);
                out.call_id = live.call_id;
                out.provider_call_id = Some(sip_id);
                out.remote_number = live.remote;
                out.disposition = Some(if live.answered { Disposition::Answered } else { Disposition::Failed });
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, direction: &str, id: Option<&str>, peer: &str) -> Event {
        Event {
            kind: kind.into(),
            direction: Some(direction.into()),
            peer_uri: Some(peer.into()),
            account_aor: Some("sip:callbridge@127.0.0.1".into()),
            id: id.map(str::to_owned),
            param: Some(peer.into()),
            ..Event::default()
        }
    }

    fn observe(calls: &mut Calls, e: Event) -> ProviderEvent {
        let signal = e.signal().expect("a call event");
        calls.observe(&e, signal)
    }

    #[test]
    fn the_first_outgoing_event_claims_the_dial() {
        let mut calls = Calls::default();
        let ours = CallId::new();
        calls.expect_dial(ours.clone(), "sip:020123456@127.0.0.1:15070".into());
        let ringing = observe(&mut calls, ev("CALL_RINGING", "outgoing", Some("abc"), "sip:020123456@127.0.0.1:15070"));
        assert_eq!(ringing.kind, ProviderEventKind::Ringing);
        assert_eq!(ringing.call_id.as_ref(), Some(&ours));
        assert_eq!(ringing.provider_call_id.as_deref(), Some("abc"));
        assert_eq!(ringing.remote_number.as_deref(), Some("020123456"));
        assert_eq!(ringing.local_extension.as_deref(), Some("callbridge"));
        let answered = observe(&mut calls, ev("CALL_ESTABLISHED", "outgoing", Some("abc"), "sip:020123456@127.0.0.1:15070"));
        assert_eq!((answered.kind, answered.call_id.as_ref()), (ProviderEventKind::Answered, Some(&ours)));
        let mut closed = ev("CALL_CLOSED", "outgoing", Some("abc"), "sip:020123456@127.0.0.1:15070");
        closed.param = Some("Connection reset by user".into());
        let ended = observe(&mut calls, closed);
        assert_eq!((ended.kind, ended.call_id.as_ref(), ended.disposition), (ProviderEventKind::Ended, Some(&ours), None));
        assert!(calls.live.is_empty() && calls.pending.is_empty());
    }

    #[test]
    fn dials_are_claimed_by_uri_then_by_number_then_oldest_first() {
        let mut calls = Calls::default();
        let (a, b, c) = (CallId::new(), CallId::new(), CallId::new());
        calls.expect_dial(a.clone(), "sip:111@pbx".into());
        calls.expect_dial(b.clone(), "222".into()); // baresip completes it to sip:222@<domain>
        calls.expect_dial(c.clone(), "sip:333@pbx".into());
        let got = |calls: &mut Calls, id: &str, peer: &str| observe(calls, ev("CALL_PROGRESS", "outgoing", Some(id), peer)).call_id;
        assert_eq!(got(&mut calls, "x", "sip:333@pbx"), Some(c));
        assert_eq!(got(&mut calls, "y", "sip:222@sip.example.com"), Some(b));
        assert_eq!(got(&mut calls, "z", "sip:999@elsewhere"), Some(a), "no match: the oldest dial");
        assert_eq!(got(&mut calls, "w", "sip:444@pbx"), None, "nothing left to claim: a call placed on the phone");
    }

    #[test]
    fn incoming_calls_are_known_by_their_call_id() {
        let mut calls = Calls::default();
        let mut e = ev("CALL_INCOMING", "incoming", Some("1-2@h"), "sip:02079460000@127.0.0.1:15071");
        e.peer_name = Some("Test Caller".into());
        let incoming = observe(&mut calls, e);
        assert_eq!(incoming.kind, ProviderEventKind::Incoming);
        assert_eq!(incoming.direction, Some(Direction::In));
        assert_eq!(incoming.call_id, None);
        assert_eq!(incoming.remote_name.as_deref(), Some("Test Caller"));
        assert!(calls.is_ringing_incoming("1-2@h"));
        let mut call = Call::new(Direction::In, "02079460000", NAME);
        call.provider_call_id = Some("1-2@h".into());
        assert_eq!(calls.sip_id_of(&call).as_deref(), Some("1-2@h"));
        observe(&mut calls, ev("CALL_ESTABLISHED", "incoming", Some("1-2@h"), "sip:02079460000@127.0.0.1:15071"));
        assert!(!calls.is_ringing_incoming("1-2@h"));
    }

    #[test]
    fn a_lost_connection_ends_live_calls() {
        let mut calls = Calls::default();
        observe(&mut calls, ev("CALL_INCOMING", "incoming", Some("ring"), "sip:1@h"));
        observe(&mut calls, ev("CALL_INCOMING", "incoming", Some("talk"), "sip:2@h"));
        observe(&mut calls, ev("CALL_ESTABLISHED", "incoming", Some("talk"), "sip:2@h"));
        let mut ended: Vec<_> = calls.drain().into_iter().map(|e| (e.provider_call_id, e.disposition, e.kind)).collect();
        ended.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            ended,
            [
                (Some("ring".into()), Some(Disposition::Failed), ProviderEventKind::Ended),
                (Some("talk".into()), Some(Disposition::Answered), ProviderEventKind::Ended),
            ]
        );
        assert!(calls.drain().is_empty());
    }

    #[test]
    fn a_dial_response_with_a_call_id_binds_at_once() {
        let mut calls = Calls::default();
        let ours = CallId::new();
        calls.expect_dial(ours.clone(), "sip:5@h".into());
        calls.dialed(&ours, "sip-id");
        assert!(calls.pending.is_empty());
        let call = Call { id: ours.clone(), ..Call::new(Direction::Out, "5", NAME) };
        assert_eq!(calls.sip_id_of(&call).as_deref(), Some("sip-id"));
        let e = observe(&mut calls, ev("CALL_OUTGOING", "outgoing", Some("sip-id"), "sip:5@h"));
        assert_eq!((e.kind, e.call_id), (ProviderEventKind::Outgoing, Some(ours)));
    }
}
