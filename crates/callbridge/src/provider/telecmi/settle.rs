//! Holding back a TeleCMI hangup that may have overtaken its call's `answered`.
//!
//! TeleCMI posts every live event and CDR as a request of its own, so they can arrive out of order: a
//! live `hangup` can come before the `answered` that preceded it. Applied at once, such a hangup would
//! end the call as missed (or cancelled), and the late `answered` could change nothing. So a hangup
//! of a call not yet seen answered — a live `hangup`, or a CDR that says nothing of the answer — is
//! held for `hangup_settle_ms` ([`HangupSettler`]):
//!
//! * an `answered` for the call within that time is applied, then the held hangup: the CRM hears
//!   `answered`, then `ended` with the disposition `answered`;
//! * a CDR that says how the call ended (answered, missed, busy, …) is applied and the held hangup is
//!   dropped: the CDR's disposition stands;
//! * when the time is up, the held hangup is applied through the provider's event sink and the call
//!   ends unanswered.
//!
//! Hangups of calls already seen answered, and every other event, pass at once. A call is recognised
//! by any of its ids (CallBridge's call id, TeleCMI's request id, the conversation id).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::provider::{EventSink, ProviderEvent, ProviderEventKind};

/// Calls remembered as answered; the oldest are forgotten first (they ended long ago).
const ANSWERED_CAPACITY: usize = 2_000;

/// See the module documentation.
#[derive(Debug)]
pub struct HangupSettler {
    hold: Duration,
    sink: EventSink,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    answered: HashSet<String>,
    answered_order: VecDeque<String>,
    held: HashMap<u64, Held>,
    next_hold: u64,
}

#[derive(Debug)]
struct Held {
    keys: Vec<String>,
    event: ProviderEvent,
    timer: Option<JoinHandle<()>>,
}

impl Held {
    fn matches(&self, keys: &[String]) -> bool {
        self.keys.iter().any(|k| keys.contains(k))
    }
}

/// Every id `event` names its call by, as one key space.
fn keys_of(event: &ProviderEvent) -> Vec<String> {
    [
        event.call_id.as_ref().map(|id| format!("call:{id}")),
        event.request_id.as_ref().map(|r| format!("request:{r}")),
        event.provider_call_id.as_ref().map(|p| format!("conversation:{p}")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl HangupSettler {
    /// Holds unanswered hangups for `hold` (zero: never), releasing them late through `sink`.
    pub fn new(hold: Duration, sink: EventSink) -> HangupSettler {
        HangupSettler { hold, sink, state: Arc::default() }
    }

    /// The events to apply now, in order, for one event from a webhook. A hangup that is held is not
    /// among them: it is applied later, here or through the sink.
    pub fn settle(&self, event: ProviderEvent) -> Vec<ProviderEvent> {
        let keys = keys_of(&event);
        if keys.is_empty() {
            return vec![event];
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match event.kind {
            ProviderEventKind::Answered => {
                state.remember_answered(&keys);
                let mut now = vec![event];
                now.extend(state.take_held(&keys));
                now
            }
            ProviderEventKind::Ended if event.disposition.is_some() => {
                // A CDR that says how the call ended: it settles the call, and the held hangup is moot.
                let dropped = state.take_held(&keys).count();
                if dropped > 0 {
                    tracing::debug!(?keys, "a CDR settled a held TeleCMI hangup");
                }
                vec![event]
            }
            ProviderEventKind::Ended => {
                if self.hold.is_zero() || keys.iter().any(|k| state.answered.contains(k)) {
                    return vec![event];
                }
                if let Some(held) = state.held.values_mut().find(|h| h.matches(&keys)) {
                    // Another leg's hangup of a call already held: one hangup is enough, but learn its ids.
                    for key in keys {
                        if !held.keys.contains(&key) {
                            held.keys.push(key);
                        }
                    }
                    return Vec::new();
                }
                let Ok(runtime) = tokio::runtime::Handle::try_current() else { return vec![event] };
                let id = state.next_hold;
                state.next_hold += 1;
                let timer = runtime.spawn(release_later(Arc::clone(&self.state), self.sink.clone(), id, self.hold));
                tracing::debug!(?keys, hold_ms = self.hold.as_millis(), "holding a TeleCMI hangup of a call not seen answered");
                state.held.insert(id, Held { keys, event, timer: Some(timer) });
                Vec::new()
            }
            ProviderEventKind::Incoming | ProviderEventKind::Outgoing | ProviderEventKind::Ringing => vec![event],
        }
    }

    /// Applies every held hangup now, through the sink (when the provider is replaced or stops).
    pub fn flush(&self) {
        let held: Vec<Held> = self.state.lock().unwrap_or_else(PoisonError::into_inner).held.drain().map(|(_, h)| h).collect();
        for mut h in held {
            if let Some(timer) = h.timer.take() {
                timer.abort();
            }
            // A closed sink means the engine is gone; there is nobody left to tell.
            let _ = self.sink.send(h.event);
        }
    }

    /// How many hangups are held now.
    pub fn held(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).held.len()
    }
}

impl State {
    fn remember_answered(&mut self, keys: &[String]) {
        for key in keys {
            if self.answered.insert(key.clone()) {
                self.answered_order.push_back(key.clone());
            }
        }
        while self.answered_order.len() > ANSWERED_CAPACITY {
            if let Some(old) = self.answered_order.pop_front() {
                self.answered.remove(&old);
            }
        }
    }

    /// Removes the held hangups of the call `keys` names (their timers stopped), oldest first.
    fn take_held(&mut self, keys: &[String]) -> impl Iterator<Item = ProviderEvent> {
        let mut ids: Vec<u64> = self.held.iter().filter(|(_, h)| h.matches(keys)).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        let mut out = Vec::new();
        for id in ids {
            if let Some(mut held) = self.held.remove(&id) {
                if let Some(timer) = held.timer.take() {
                    timer.abort();
                }
                out.push(held.event);
            }
        }
        out.into_iter()
    }
}

/// Waits out the hold, then applies the hangup if nothing settled it meanwhile.
async fn release_later(state: Arc<Mutex<State>>, sink: EventSink, id: u64, hold: Duration) {
    tokio::time::sleep(hold).await;
    let held = state.lock().unwrap_or_else(PoisonError::into_inner).held.remove(&id);
    if let Some(held) = held {
        tracing::debug!(keys = ?held.keys, "nothing settled a held TeleCMI hangup: the call ends unanswered");
        // A closed sink means the engine is gone; there is nobody left to tell.
        let _ = sink.send(held.event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Direction, Disposition};
    use tokio::sync::mpsc;

    fn event(kind: ProviderEventKind, conversation: &str) -> ProviderEvent {
        let mut e = ProviderEvent::new("telecmi", kind);
        e.direction = Some(Direction::In);
        e.provider_call_id = Some(conversation.into());
        e.remote_number = Some("440000000000".into());
        e
    }

    fn kinds(events: &[ProviderEvent]) -> Vec<ProviderEventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    use ProviderEventKind::*;

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_the_hangup_comes_first_and_releases_it() {
        let (sink, mut late) = mpsc::unbounded_channel();
        let s = HangupSettler::new(Duration::from_secs(2), sink);
        assert_eq!(kinds(&s.settle(event(Incoming, "c1"))), [Incoming]);
        assert!(s.settle(event(Ended, "c1")).is_empty(), "the unanswered hangup is held");
        assert!(s.settle(event(Ended, "c1")).is_empty(), "the other leg's hangup joins it");
        assert_eq!(s.held(), 1);
        assert_eq!(kinds(&s.settle(event(Answered, "c1"))), [Answered, Ended]);
        assert_eq!(s.held(), 0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(late.try_recv().is_err(), "the released hangup is not sent again");
        // The call is known answered now: a late duplicate hangup passes at once.
        assert_eq!(kinds(&s.settle(event(Ended, "c1"))), [Ended]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cdr_settles_a_held_hangup_with_its_disposition() {
        let (sink, mut late) = mpsc::unbounded_channel();
        let s = HangupSettler::new(Duration::from_secs(2), sink);
        assert!(s.settle(event(Ended, "c2")).is_empty());
        let mut cdr = event(Ended, "c2");
        cdr.disposition = Some(Disposition::Answered);
        let now = s.settle(cdr);
        assert_eq!((kinds(&now), now[0].disposition), (vec![Ended], Some(Disposition::Answered)));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(late.try_recv().is_err(), "the held hangup was dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unsettled_hangup_goes_through_the_sink_when_the_time_is_up() {
        let (sink, mut late) = mpsc::unbounded_channel();
        let s = HangupSettler::new(Duration::from_secs(2), sink);
        assert!(s.settle(event(Ended, "c3")).is_empty());
        tokio::time::sleep(Duration::from_millis(1_900)).await;
        assert!(late.try_recv().is_err(), "still held");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let released = late.recv().await.expect("released");
        assert_eq!((released.kind, released.disposition), (Ended, None));
        assert_eq!(s.held(), 0);
        // Too late for the answer to change the story: it passes alone.
        assert_eq!(kinds(&s.settle(event(Answered, "c3"))), [Answered]);
    }

    #[tokio::test(start_paused = true)]
    async fn answered_calls_other_calls_and_a_zero_hold_pass_at_once() {
        let (sink, mut late) = mpsc::unbounded_channel();
        let s = HangupSettler::new(Duration::from_secs(2), sink.clone());
        assert_eq!(kinds(&s.settle(event(Answered, "c4"))), [Answered]);
        assert_eq!(kinds(&s.settle(event(Ended, "c4"))), [Ended]);
        assert!(s.settle(event(Ended, "c5")).is_empty());
        assert_eq!(kinds(&s.settle(event(Answered, "c6"))), [Answered], "another call's answer releases nothing");
        assert_eq!(s.held(), 1);
        s.flush();
        assert_eq!(late.recv().await.map(|e| e.provider_call_id), Some(Some("c5".into())));

        let never = HangupSettler::new(Duration::ZERO, sink);
        assert_eq!(kinds(&never.settle(event(Ended, "c7"))), [Ended]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_is_matched_by_any_of_its_ids() {
        let (sink, _late) = mpsc::unbounded_channel();
        let s = HangupSettler::new(Duration::from_secs(2), sink);
        let mut hangup = ProviderEvent::new("telecmi", Ended);
        hangup.request_id = Some("req-1".into());
        hangup.provider_call_id = Some("conv-1".into());
        assert!(s.settle(hangup).is_empty());
        let mut answered = ProviderEvent::new("telecmi", Answered);
        answered.request_id = Some("req-1".into());
        assert_eq!(kinds(&s.settle(answered)), [Answered, Ended]);
    }
}
