//! The call tracker: provider events in, calls and call events out.
//!
//! Providers report what they see, often twice, sometimes out of order, and with their own ids (a
//! TeleCMI `cmiuuid`, a click-to-call `request_id`, a SIP Call-ID) or none at all (ELMA365-style
//! events). The tracker matches each [`ProviderEvent`] to a [`Call`] — by CallBridge's own id, then the
//! provider's call id, then the click-to-call request id, else by numbers, extension and direction —
//! and decides which [`CallEvent`]s that produces. Its promises, whatever arrives:
//!
//! * each call produces `incoming` or `outgoing`, `answered` and `ended` at most once each;
//! * `incoming`/`outgoing` always comes first (it is synthesized if the start was missed), `ended` last;
//! * an `ended` that says the call was answered is preceded by `answered` if that was missed.
//!
//! The tracker is plain synchronous state; the engine owns it behind a lock.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

use crate::call::{Call, CallMap, CallEvent, CallEventKind, CallId, CallState, Direction, Disposition};
use crate::provider::{Placed, ProviderEvent, ProviderEventKind};

/// How long after a call ended late duplicates are still recognised as belonging to it when the
/// provider gives no ids.
const MATCH_WINDOW: Duration = Duration::seconds(120);

/// Ended calls kept in memory (the store keeps the full history).
const KEEP_ENDED: usize = 500;

#[derive(Debug)]
struct Tracked {
    call: Call,
    emitted: Emitted,
}

impl Tracked {
    fn has(&self, kind: CallEventKind) -> bool {
        self.emitted.has(kind)
    }
}

/// Which kinds of event a call has produced: one bit per [`CallEventKind`], so tracking a call
/// allocates nothing beyond the call.
#[derive(Debug, Default, Clone, Copy)]
struct Emitted(u8);

impl Emitted {
    /// A kind's bit; the match is exhaustive, so a new kind must be given its own bit here.
    fn bit(kind: CallEventKind) -> u8 {
        match kind {
            CallEventKind::Incoming => 1,
            CallEventKind::Outgoing => 1 << 1,
            CallEventKind::Answered => 1 << 2,
            CallEventKind::Ended => 1 << 3,
            CallEventKind::Updated => 1 << 4,
        }
    }

    fn has(self, kind: CallEventKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    fn add(&mut self, kind: CallEventKind) {
        self.0 |= Self::bit(kind);
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct CallTracker {
    calls: CallMap<Tracked>,
    /// Call ids, oldest first.
    order: VecDeque<CallId>,
    by_provider_id: HashMap<(String, String), CallId>,
    by_request_id: HashMap<String, CallId>,
    /// How many of `calls` are over: kept up to date so eviction need not count them.
    ended: usize,
}

impl CallTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a call about to be placed from here. It produces no event until the provider has
    /// accepted it (see [`Self::placed`]).
    pub fn begin_outgoing(&mut self, call: Call) {
        self.insert(call);
    }

    /// The provider accepted the dial: record its ids and emit `outgoing`.
    pub fn placed(&mut self, id: &CallId, placed: Placed) -> Vec<CallEvent> {
        let Some(call) = self.calls.get(id).map(|t| t.call.clone()) else { return Vec::new() };
        let mut event = ProviderEvent::for_call(&call, ProviderEventKind::Outgoing);
        event.provider_call_id = placed.provider_call_id;
        event.request_id = placed.request_id;
        self.observe(event)
    }

    /// The provider refused the dial: the call is kept in the history as failed, and the outside world
    /// hears nothing of a call that never existed.
    pub fn failed(&mut self, id: &CallId) -> Option<Call> {
        let tracked = self.calls.get_mut(id)?;
        if tracked.call.state.is_live() {
            self.ended += 1;
        }
        tracked.call.state = CallState::Ended;
        tracked.call.disposition = Some(Disposition::Failed);
        tracked.call.ended_at = Some(Utc::now());
        Some(tracked.call.clone())
    }

    /// Changes what is known of call `id` (not its state) with `change`, which says whether it changed
    /// anything; returns the call if it did.
    pub fn update(&mut self, id: &CallId, change: impl FnOnce(&mut Call) -> bool) -> Option<Call> {
        let tracked = self.calls.get_mut(id)?;
        change(&mut tracked.call).then(|| tracked.call.clone())
    }

    pub fn get(&self, id: &CallId) -> Option<&Call> {
        self.calls.get(id).map(|t| &t.call)
    }

    /// All calls, newest first.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.order.iter().rev().filter_map(|id| self.get(id))
    }

    /// The call `/answer` acts on: the newest incoming call that is ringing.
    pub fn ringing_incoming(&self) -> Option<&Call> {
        self.calls().find(|c| c.direction == Direction::In && c.state == CallState::Ringing)
    }

    /// The call `/end` acts on: the newest active call, else the newest call still ringing or dialing.
    pub fn current(&self) -> Option<&Call> {
        self.calls().find(|c| c.state == CallState::Active).or_else(|| self.calls().find(|c| c.state.is_live()))
    }

    /// Applies one provider event and returns the call events it produces, in order.
    pub fn observe(&mut self, event: ProviderEvent) -> Vec<CallEvent> {
        let at = event.at.unwrap_or_else(Utc::now);
        let id = match self.find(&event, at) {
            Some(id) => id,
            None => {
                if event.kind != ProviderEventKind::Incoming && event.kind != ProviderEventKind::Outgoing
                    && event.kind != ProviderEventKind::Ringing
                    && event.remote_number.is_none()
                    && event.provider_call_id.is_none()
                    && event.request_id.is_none()
                {
                    // Nothing to tie it to and nothing to show: a stray answer or hangup.
                    tracing::debug!(?event, "ignoring a provider event that matches no call");
                    return Vec::new();
                }
                self.insert(new_call_from(&event, at))
            }
        };
        self.index(&id, &event);
        let Some(tracked) = self.calls.get_mut(&id) else { return Vec::new() };
        let was_live = tracked.call.state.is_live();
        let events = apply(tracked, &event, at);
        if was_live && !tracked.call.state.is_live() {
            self.ended += 1;
        }
        self.evict_old();
        events
    }

    fn insert(&mut self, call: Call) -> CallId {
        let id = call.id.clone();
        if !call.state.is_live() {
            self.ended += 1;
        }
        if let Some(pid) = &call.provider_call_id {
            self.by_provider_id.insert((call.provider.clone(), pid.clone()), id.clone());
        }
        if let Some(rid) = &call.request_id {
            self.by_request_id.insert(rid.clone(), id.clone());
        }
        self.order.push_back(id.clone());
        if let Some(replaced) = self.calls.insert(id.clone(), Tracked { call, emitted: Emitted::default() }) {
            if !replaced.call.state.is_live() {
                self.ended -= 1;
            }
        }
        id
    }

    /// Remembers the ids an event carries, so later events with only one of them still match.
    fn index(&mut self, id: &CallId, event: &ProviderEvent) {
        let Some(tracked) = self.calls.get_mut(id) else { return };
        if let Some(pid) = &event.provider_call_id {
            // Most events repeat the id the call already has (and is indexed by): nothing to add.
            if tracked.call.provider_call_id.as_ref() != Some(pid) || tracked.call.provider != event.provider {
                self.by_provider_id.insert((event.provider.clone(), pid.clone()), id.clone());
            }
            tracked.call.provider_call_id.get_or_insert_with(|| pid.clone());
        }
        if let Some(rid) = &event.request_id {
            if tracked.call.request_id.as_ref() != Some(rid) {
                self.by_request_id.insert(rid.clone(), id.clone());
            }
            tracked.call.request_id.get_or_insert_with(|| rid.clone());
        }
    }

    fn find(&self, event: &ProviderEvent, at: DateTime<Utc>) -> Option<CallId> {
        if let Some(id) = event.call_id.as_ref().filter(|id| self.calls.contains_key(*id)) {
            return Some(id.clone());
        }
        // Index entries of evicted calls may linger (see `evict_old`): they count as unknown.
        let known = |id: &&CallId| self.calls.contains_key(*id);
        if let Some(pid) = &event.provider_call_id {
            if let Some(id) = self.by_provider_id.get(&(event.provider.clone(), pid.clone())).filter(known) {
                return Some(id.clone());
            }
        }
        if let Some(id) = event.request_id.as_ref().and_then(|r| self.by_request_id.get(r)).filter(known) {
            return Some(id.clone());
        }
        if event.provider_call_id.is_some() || event.request_id.is_some() {
            // An id we have not seen is a new call, even if the numbers look alike.
            return None;
        }
        self.find_by_parties(event, at)
    }

    /// ELMA365-style matching: same provider, direction, number and extension; a live call, or one
    /// that ended within the window when the event is older than its end (a late duplicate).
    fn find_by_parties(&self, event: &ProviderEvent, at: DateTime<Utc>) -> Option<CallId> {
        let number = event.remote_number.as_deref().map(digits)?;
        let starts = matches!(event.kind, ProviderEventKind::Incoming | ProviderEventKind::Outgoing);
        self.calls()
            .filter(|c| c.provider == event.provider)
            .filter(|c| event.direction.is_none_or(|d| d == c.direction))
            .filter(|c| same_number(&digits(&c.remote_number), &number))
            .filter(|c| match (&event.local_extension, &c.local_extension) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .find(|c| match c.ended_at {
                None => true,
                Some(ended) if starts => at <= ended,
                Some(ended) => at - ended <= MATCH_WINDOW,
            })
            .map(|c| c.id.clone())
    }

    /// Drops the oldest ended calls beyond [`KEEP_ENDED`]. Runs on every event, so it touches only the
    /// front of `order` (where old ended calls are) rather than every call; index entries of dropped
    /// calls are ignored by [`Self::find`] and swept out once they outnumber the calls.
    fn evict_old(&mut self) {
        debug_assert_eq!(self.ended, self.calls.values().filter(|t| !t.call.state.is_live()).count());
        let mut to_drop = self.ended.saturating_sub(KEEP_ENDED);
        let mut live_at_front = Vec::new();
        while to_drop > 0 {
            let Some(id) = self.order.pop_front() else { break };
            match self.calls.get(&id) {
                Some(t) if t.call.state.is_live() => live_at_front.push(id),
                Some(_) => {
                    self.calls.remove(&id);
                    self.ended -= 1;
                    to_drop -= 1;
                }
                None => {}
            }
        }
        for id in live_at_front.into_iter().rev() {
            self.order.push_front(id);
        }
        let calls = &self.calls;
        if self.by_provider_id.len() > 2 * calls.len() + 64 {
            self.by_provider_id.retain(|_, id| calls.contains_key(id));
        }
        if self.by_request_id.len() > 2 * calls.len() + 64 {
            self.by_request_id.retain(|_, id| calls.contains_key(id));
        }
    }
}

fn new_call_from(event: &ProviderEvent, at: DateTime<Utc>) -> Call {
    let direction = event.direction.unwrap_or(match event.kind {
        ProviderEventKind::Outgoing => Direction::Out,
        _ => Direction::In,
    });
    let mut call = Call::new(direction, event.remote_number.clone().unwrap_or_default(), event.provider.clone());
    if let Some(id) = &event.call_id {
        call.id = id.clone();
    }
    call.started_at = at;
    call.provider_call_id = event.provider_call_id.clone();
    call.request_id = event.request_id.clone();
    call
}

/// Applies `event` to one call; returns what the outside world should hear, in order.
fn apply(tracked: &mut Tracked, event: &ProviderEvent, at: DateTime<Utc>) -> Vec<CallEvent> {
    let call = &mut tracked.call;
    if call.remote_number.is_empty() {
        if let Some(n) = &event.remote_number {
            call.remote_number = n.clone();
        }
    }
    if call.remote_name.is_none() {
        call.remote_name = event.remote_name.clone().filter(|n| !n.is_empty());
    }
    if call.local_extension.is_none() {
        call.local_extension = event.local_extension.clone().filter(|e| !e.is_empty());
    }

    // One provider event makes at most three call events (a missed start and answer, then the end),
    // most often one. Room for two is one small allocation (a `Vec` grown from empty takes room for
    // four events, large enough that glibc's allocator takes its slow path for it).
    let mut out = Vec::with_capacity(2);
    let failed_before_start = call.state == CallState::Ended && tracked.emitted.is_empty();
    if failed_before_start || tracked.has(CallEventKind::Ended) {
        // Over (or failed before it started): late and duplicate events change nothing.
        return out;
    }
    let start = CallEventKind::start_for(tracked.call.direction);
    let mut emit = |tracked: &mut Tracked, kind: CallEventKind| {
        if !tracked.has(kind) {
            tracked.emitted.add(kind);
            out.push(CallEvent { kind, at, call: tracked.call.clone() });
        }
    };

    match event.kind {
        ProviderEventKind::Incoming | ProviderEventKind::Outgoing | ProviderEventKind::Ringing => {
            if event.kind == ProviderEventKind::Ringing && tracked.call.state < CallState::Ringing {
                tracked.call.state = CallState::Ringing;
            }
            emit(tracked, start);
        }
        ProviderEventKind::Answered => {
            emit(tracked, start);
            let call = &mut tracked.call;
            if call.state < CallState::Active {
                call.state = CallState::Active;
                call.answered_at.get_or_insert(at);
            }
            emit(tracked, CallEventKind::Answered);
        }
        ProviderEventKind::Ended => {
            emit(tracked, start);
            if event.disposition == Some(Disposition::Answered) && tracked.call.answered_at.is_none() {
                tracked.call.answered_at = Some(at);
                tracked.call.state = CallState::Active;
                emit(tracked, CallEventKind::Answered);
            }
            let call = &mut tracked.call;
            call.disposition = Some(event.disposition.unwrap_or(match (call.answered_at, call.direction) {
                (Some(_), _) => Disposition::Answered,
                (None, Direction::In) => Disposition::Missed,
                (None, _) => Disposition::Cancelled,
            }));
            if call.answered_at.is_some() {
                // A call that was talked on ended "answered", whatever the provider's hang-up reason.
                call.disposition = Some(Disposition::Answered);
            }
            call.state = CallState::Ended;
            call.ended_at = Some(at);
            emit(tracked, CallEventKind::Ended);
        }
    }
    out
}

fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

/// `+442079460000` and `02079460000` are the same line: compare the last nine digits when both are
/// long, the whole thing otherwise (extensions).
fn same_number(a: &str, b: &str) -> bool {
    const SIGNIFICANT: usize = 9;
    if a.len() >= SIGNIFICANT && b.len() >= SIGNIFICANT {
        a[a.len() - SIGNIFICANT..] == b[b.len() - SIGNIFICANT..]
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallEventKind::*;

    fn ev(kind: ProviderEventKind, pid: &str) -> ProviderEvent {
        let mut e = ProviderEvent::new("test", kind);
        e.provider_call_id = Some(pid.into());
        e.remote_number = Some("+442079460000".into());
        e.direction = Some(Direction::In);
        e
    }

    fn kinds(events: &[CallEvent]) -> Vec<CallEventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    fn run(tracker: &mut CallTracker, events: Vec<ProviderEvent>) -> Vec<CallEventKind> {
        events.into_iter().flat_map(|e| tracker.observe(e)).map(|e| e.kind).collect()
    }

    #[test]
    fn emitted_keeps_each_kind_apart() {
        let kinds = [CallEventKind::Incoming, CallEventKind::Outgoing, CallEventKind::Answered, CallEventKind::Ended, CallEventKind::Updated];
        for (i, kind) in kinds.iter().enumerate() {
            let mut emitted = Emitted::default();
            assert!(emitted.is_empty());
            emitted.add(*kind);
            assert!(!emitted.is_empty());
            for (j, other) in kinds.iter().enumerate() {
                assert_eq!(emitted.has(*other), i == j, "{kind:?} added, {other:?} asked");
            }
        }
    }

    #[test]
    fn in_order_events_produce_each_event_once() {
        let mut t = CallTracker::new();
        let got = run(
            &mut t,
            vec![
                ev(ProviderEventKind::Incoming, "a"),
                ev(ProviderEventKind::Answered, "a"),
                ev(ProviderEventKind::Ended, "a"),
            ],
        );
        assert_eq!(got, [Incoming, Answered, Ended]);
        let call = t.calls().next().expect("one call");
        assert_eq!((call.state, call.disposition), (CallState::Ended, Some(Disposition::Answered)));
    }

    #[test]
    fn duplicates_produce_nothing_more() {
        let mut t = CallTracker::new();
        let all = [ProviderEventKind::Incoming, ProviderEventKind::Answered, ProviderEventKind::Ended];
        let doubled: Vec<_> = all.iter().flat_map(|k| [ev(*k, "a"), ev(*k, "a")]).collect();
        assert_eq!(run(&mut t, doubled), [Incoming, Answered, Ended]);
        assert_eq!(run(&mut t, all.iter().map(|k| ev(*k, "a")).collect()), Vec::<CallEventKind>::new());
        assert_eq!(t.calls().count(), 1);
    }

    #[test]
    fn out_of_order_events_keep_the_order_of_the_story() {
        // Answer before the ring: the start is synthesized, the late ring adds nothing.
        let mut t = CallTracker::new();
        let got = run(
            &mut t,
            vec![ev(ProviderEventKind::Answered, "b"), ev(ProviderEventKind::Incoming, "b"), ev(ProviderEventKind::Ended, "b")],
        );
        assert_eq!(got, [Incoming, Answered, Ended]);

        // Hangup first: the call starts and ends; a late answer and ring change nothing.
        let mut t = CallTracker::new();
        let got = run(
            &mut t,
            vec![ev(ProviderEventKind::Ended, "c"), ev(ProviderEventKind::Answered, "c"), ev(ProviderEventKind::Incoming, "c")],
        );
        assert_eq!(got, [Incoming, Ended]);
        assert_eq!(t.calls().next().and_then(|c| c.disposition), Some(Disposition::Missed));
    }

    #[test]
    fn an_answered_hangup_implies_the_missed_answer() {
        let mut t = CallTracker::new();
        let mut end = ev(ProviderEventKind::Ended, "d");
        end.disposition = Some(Disposition::Answered);
        assert_eq!(run(&mut t, vec![ev(ProviderEventKind::Incoming, "d"), end]), [Incoming, Answered, Ended]);
    }

    #[test]
    fn request_id_ties_click2call_events_to_the_dialed_call() {
        let mut t = CallTracker::new();
        let call = Call::new(Direction::Out, "+919200000000", "test");
        let id = call.id.clone();
        t.begin_outgoing(call);
        let placed = t.placed(&id, Placed { provider_call_id: None, request_id: Some("req-1".into()) });
        assert_eq!(kinds(&placed), [Outgoing]);
        let mut answered = ProviderEvent::new("test", ProviderEventKind::Answered);
        answered.request_id = Some("req-1".into());
        answered.provider_call_id = Some("leg-a".into());
        let mut ended = ProviderEvent::new("test", ProviderEventKind::Ended);
        ended.provider_call_id = Some("leg-a".into()); // only the id learned from the answer
        assert_eq!(run(&mut t, vec![answered, ended]), [Answered, Ended]);
        assert_eq!(t.calls().count(), 1);
        assert_eq!(t.get(&id).and_then(|c| c.request_id.clone()).as_deref(), Some("req-1"));
    }

    #[test]
    fn without_ids_calls_match_by_parties_within_the_window() {
        let mut t = CallTracker::new();
        let bare = |kind| {
            let mut e = ProviderEvent::new("pbx", kind);
            e.direction = Some(Direction::In);
            e.remote_number = Some("02079460000".into());
            e.local_extension = Some("101".into());
            e
        };
        let mut other_ext = bare(ProviderEventKind::Incoming);
        other_ext.local_extension = Some("102".into());
        let mut intl = bare(ProviderEventKind::Answered);
        intl.remote_number = Some("+44 20 7946 0000".into());
        let got = run(&mut t, vec![bare(ProviderEventKind::Incoming), other_ext, intl, bare(ProviderEventKind::Ended)]);
        assert_eq!(got, [Incoming, Incoming, Answered, Ended]);
        assert_eq!(t.calls().count(), 2, "extension 102's call is a call of its own");
        // A late duplicate hangup matches the ended call and changes nothing; a new ring is a new call.
        assert_eq!(run(&mut t, vec![bare(ProviderEventKind::Ended)]), Vec::<CallEventKind>::new());
        assert_eq!(run(&mut t, vec![bare(ProviderEventKind::Incoming)]), [Incoming]);
        assert_eq!(t.calls().count(), 3);
    }

    #[test]
    fn a_failed_dial_is_kept_but_silent() {
        let mut t = CallTracker::new();
        let call = Call::new(Direction::Out, "+15550100", "test");
        let id = call.id.clone();
        t.begin_outgoing(call);
        let failed = t.failed(&id).expect("known");
        assert_eq!(failed.disposition, Some(Disposition::Failed));
        let mut late = ProviderEvent::new("test", ProviderEventKind::Ended);
        late.call_id = Some(id);
        assert!(t.observe(late).is_empty());
    }

    #[test]
    fn answer_and_end_pick_the_right_call() {
        let mut t = CallTracker::new();
        run(&mut t, vec![ev(ProviderEventKind::Incoming, "x")]);
        let ringing = t.ringing_incoming().map(|c| c.id.clone());
        assert!(ringing.is_some());
        run(&mut t, vec![ev(ProviderEventKind::Answered, "x")]);
        assert!(t.ringing_incoming().is_none());
        assert_eq!(t.current().map(|c| c.id.clone()), ringing);
        run(&mut t, vec![ev(ProviderEventKind::Ended, "x")]);
        assert!(t.current().is_none());
    }

    #[test]
    fn old_ended_calls_are_evicted_but_live_ones_stay() {
        let mut t = CallTracker::new();
        run(&mut t, vec![ev(ProviderEventKind::Incoming, "live")]);
        for i in 0..(KEEP_ENDED + 10) {
            let pid = format!("p{i}");
            run(&mut t, vec![ev(ProviderEventKind::Incoming, &pid), ev(ProviderEventKind::Ended, &pid)]);
        }
        assert_eq!(t.calls().count(), KEEP_ENDED + 1);
        assert!(t.ringing_incoming().is_some(), "the live call survived eviction");
    }

    #[test]
    fn an_evicted_call_is_forgotten_by_its_provider_id() {
        let mut t = CallTracker::new();
        for i in 0..(3 * KEEP_ENDED) {
            let pid = format!("p{i}");
            run(&mut t, vec![ev(ProviderEventKind::Incoming, &pid), ev(ProviderEventKind::Ended, &pid)]);
        }
        assert_eq!(t.calls().count(), KEEP_ENDED);
        assert!(t.by_provider_id.len() <= 2 * KEEP_ENDED + 64, "stale index entries are swept");
        // p0 was evicted long ago: a late event for it is a call of its own, as for any unknown id.
        let late = t.observe(ev(ProviderEventKind::Ended, "p0"));
        assert_eq!(late.iter().map(|e| e.kind).collect::<Vec<_>>(), [Incoming, Ended]);
        // p1499 is still tracked: its late duplicate changes nothing.
        assert!(t.observe(ev(ProviderEventKind::Ended, &format!("p{}", 3 * KEEP_ENDED - 1))).is_empty());
    }
}
