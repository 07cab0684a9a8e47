//! Click-to-calls in flight, so websocket events find the call they belong to.
//!
//! Kazoo answers the connect request at once (`202`) and originates the call afterwards, but the
//! websocket events of the new call can still overtake the HTTP answer. An event about a
//! click-to-call leg that no dial has claimed yet therefore waits, briefly, while a connect request
//! is in flight; once the answer names the `outbound_call_id`, the event carries CallBridge's own
//! call id and the tracker ties it to the call being dialed instead of starting a new one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::call::CallId;

/// How long an event waits for a connect request to be answered.
const WAIT: Duration = Duration::from_secs(10);
const REMEMBER: usize = 256;

#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    placed: HashMap<String, CallId>,
    order: VecDeque<String>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Dials {
    state: Mutex<State>,
    changed: Notify,
}

impl Dials {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connect request is about to be sent.
    pub fn begin(&self) {
        self.lock().in_flight += 1;
    }

    /// The connect request was answered; `placed` names the call's first leg when it succeeded.
    pub fn end(&self, placed: Option<(String, CallId)>) {
        {
            let mut s = self.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            if let Some((leg, call)) = placed {
                if s.order.len() >= REMEMBER {
                    if let Some(old) = s.order.pop_front() {
                        s.placed.remove(&old);
                    }
                }
                s.order.push_back(leg.clone());
                s.placed.insert(leg, call);
            }
        }
        self.changed.notify_waiters();
    }

    /// The call dialed from here whose first leg is `leg`; waits while connect requests are in
    /// flight and `leg` is not known yet.
    pub async fn call_for(&self, leg: &str) -> Option<CallId> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let s = self.lock();
                if let Some(call) = s.placed.get(leg) {
                    return Some(call.clone());
                }
                if s.in_flight == 0 {
                    return None;
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn an_event_waits_for_the_connect_answer_that_names_its_leg() {
        let dials = Arc::new(Dials::default());
        dials.begin();
        let waiting = tokio::spawn({
            let d = Arc::clone(&dials);
            async move { d.call_for("c2c-x-1").await }
        });
        tokio::task::yield_now().await;
        let ours = CallId::new();
        dials.end(Some(("c2c-x-1".into(), ours.clone())));
        assert_eq!(waiting.await.expect("join"), Some(ours.clone()));
        assert_eq!(dials.call_for("c2c-x-1").await, Some(ours), "known legs answer at once");
    }

    #[tokio::test]
    async fn without_dials_in_flight_unknown_legs_do_not_wait() {
        let dials = Dials::default();
        assert_eq!(dials.call_for("c2c-other").await, None);
        dials.begin();
        dials.end(None);
        assert_eq!(dials.call_for("c2c-other").await, None);
    }
}
