//! The calls missed since the user last looked: what the tray counts ("Missed calls: 2").
//!
//! Whether a call was missed is the engine's verdict — an incoming call whose `ended` event carries
//! the disposition `missed` — and this only counts those verdicts. Opening the dial popup, which lists
//! the recent calls with the missed ones marked, is looking: it sets the count back to zero. Every
//! change is announced on a watch channel, so the tray follows it.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use callbridge::{Call, CallId, Direction, Disposition};
use tokio::sync::watch;

/// How many missed calls a count remembers by id (to count each call once); more is still counted.
const REMEMBERED: usize = 1000;

/// The missed calls not yet looked at (managed by Tauri, reached with `app.state::<MissedCalls>()`).
#[derive(Debug)]
pub struct MissedCalls {
    unseen: Mutex<HashSet<CallId>>,
    count: watch::Sender<usize>,
}

impl Default for MissedCalls {
    fn default() -> Self {
        MissedCalls { unseen: Mutex::new(HashSet::new()), count: watch::Sender::new(0) }
    }
}

/// True for a call the engine ended as missed: incoming, never answered.
pub fn is_missed(call: &Call) -> bool {
    call.direction == Direction::In && call.disposition == Some(Disposition::Missed)
}

impl MissedCalls {
    /// Counts `call` when it is a missed call not counted before; true when it was counted.
    pub fn record(&self, call: &Call) -> bool {
        if !is_missed(call) {
            return false;
        }
        let mut unseen = self.unseen.lock().unwrap_or_else(PoisonError::into_inner);
        if unseen.contains(&call.id) {
            return false;
        }
        if unseen.len() < REMEMBERED {
            unseen.insert(call.id.clone());
        }
        self.count.send_modify(|n| *n += 1);
        true
    }

    /// The user looked at the recent calls: nothing is unseen any more.
    pub fn seen(&self) {
        self.unseen.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.count.send_if_modified(|n| std::mem::replace(n, 0) != 0);
    }

    /// How many missed calls the user has not looked at.
    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// A receiver that wakes up at every change of the count.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use callbridge::CallState;

    use super::*;

    fn ended(direction: Direction, disposition: Disposition) -> Call {
        let mut call = Call::new(direction, "+442079460001", "simulator");
        call.state = CallState::Ended;
        call.disposition = Some(disposition);
        call
    }

    #[test]
    fn only_unanswered_incoming_calls_count_and_each_once() {
        let missed = MissedCalls::default();
        let call = ended(Direction::In, Disposition::Missed);
        assert!(missed.record(&call));
        assert!(!missed.record(&call), "the same call again");
        assert!(!missed.record(&ended(Direction::In, Disposition::Answered)));
        assert!(!missed.record(&ended(Direction::Out, Disposition::Missed)));
        assert!(!missed.record(&ended(Direction::Out, Disposition::Cancelled)));
        assert!(missed.record(&ended(Direction::In, Disposition::Missed)));
        assert_eq!(missed.count(), 2);
    }

    #[test]
    fn looking_clears_the_count_and_tells_the_watchers() {
        let missed = MissedCalls::default();
        let mut watcher = missed.watch();
        missed.record(&ended(Direction::In, Disposition::Missed));
        assert!(watcher.has_changed().unwrap_or(false));
        assert_eq!(*watcher.borrow_and_update(), 1);
        missed.seen();
        assert!(watcher.has_changed().unwrap_or(false));
        assert_eq!(*watcher.borrow_and_update(), 0);
        missed.seen();
        assert!(!watcher.has_changed().unwrap_or(true), "nothing to clear is no change");
    }
}
