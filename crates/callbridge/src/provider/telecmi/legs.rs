//! Which TeleCMI call leg is the user's, per call: what `/end` hangs up.
//!
//! TeleCMI's user hangup takes one leg's `cmiuuid`, and only its webhooks say what that is. The two
//! pages that document the endpoint disagree on the leg ("Leg A" for click-to-call, "Leg B" for user
//! hangup); both read right as "the user's own leg", which is leg A of a click2call (the user's device
//! is rung first) and the agent's leg B of an incoming call. The webhook route records that leg here
//! under every id the call is known by (our call id, TeleCMI's request id, the conversation id), and
//! the provider looks it up by the ids of the [`Call`] being ended.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use super::webhook::Parsed;
use crate::call::Call;

/// Calls remembered; older ones are forgotten first (they ended long ago).
const CAPACITY: usize = 2_000;

#[derive(Debug, Default)]
pub struct LegBook {
    inner: Mutex<Legs>,
}

#[derive(Debug, Default)]
struct Legs {
    user_leg: HashMap<String, String>,
    order: VecDeque<String>,
}

impl LegBook {
    /// Remembers the user's leg from a webhook, if it names one.
    pub fn remember(&self, parsed: &Parsed) {
        let Some(leg) = &parsed.user_leg else { return };
        let e = &parsed.event;
        let keys = [
            e.call_id.as_ref().map(|id| format!("call:{id}")),
            e.request_id.as_ref().map(|r| format!("request:{r}")),
            e.provider_call_id.as_ref().map(|p| format!("conversation:{p}")),
        ];
        let mut legs = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys.into_iter().flatten() {
            if legs.user_leg.insert(key.clone(), leg.clone()).is_none() {
                legs.order.push_back(key);
            }
        }
        while legs.order.len() > CAPACITY {
            if let Some(old) = legs.order.pop_front() {
                legs.user_leg.remove(&old);
            }
        }
    }

    /// The `cmiuuid` of the user's leg of `call`, if a webhook has named it.
    pub fn user_leg(&self, call: &Call) -> Option<String> {
        let legs = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = [
            Some(format!("call:{}", call.id)),
            call.request_id.as_ref().map(|r| format!("request:{r}")),
            call.provider_call_id.as_ref().map(|p| format!("conversation:{p}")),
        ];
        keys.into_iter().flatten().find_map(|k| legs.user_leg.get(&k).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallId, Direction};
    use crate::provider::{ProviderEvent, ProviderEventKind};

    #[test]
    fn a_leg_is_found_by_any_id_of_the_call() {
        let book = LegBook::default();
        let mut event = ProviderEvent::new("telecmi", ProviderEventKind::Outgoing);
        event.call_id = Some(CallId::from("our-1"));
        event.request_id = Some("req-1".into());
        book.remember(&Parsed { event, user_leg: Some("leg-a".into()) });

        let mut call = Call::new(Direction::Out, "+919200000000", "telecmi");
        assert_eq!(book.user_leg(&call), None);
        call.request_id = Some("req-1".into());
        assert_eq!(book.user_leg(&call).as_deref(), Some("leg-a"));
        call.request_id = None;
        call.id = CallId::from("our-1");
        assert_eq!(book.user_leg(&call).as_deref(), Some("leg-a"));
    }

    #[test]
    fn old_calls_are_forgotten() {
        let book = LegBook::default();
        for i in 0..CAPACITY + 10 {
            let mut event = ProviderEvent::new("telecmi", ProviderEventKind::Incoming);
            event.provider_call_id = Some(format!("conv-{i}"));
            book.remember(&Parsed { event, user_leg: Some(format!("leg-{i}")) });
        }
        let mut call = Call::new(Direction::In, "1", "telecmi");
        call.provider_call_id = Some("conv-0".into());
        assert_eq!(book.user_leg(&call), None);
        call.provider_call_id = Some(format!("conv-{}", CAPACITY + 9));
        assert!(book.user_leg(&call).is_some());
    }
}
