//! The durable outbox: at-least-once delivery of notifications through the SQLite store.
//!
//! [`DurableOutbox::enqueue`] hands the deliveries to the store's writer and returns the [`Commit`]
//! that the engine awaits before it answers the request that caused the call event — so a
//! notification is never only in memory once anyone has been told the event happened: if the process
//! is killed a moment later, the next start finds it pending and sends it. Enqueueing never blocks.
//!
//! The worker task hears of each delivery the moment its commit is done (the writer's feed): the
//! store is read once at start, for what an earlier run left pending, and the pending deliveries are
//! then held in memory, each retry included, so sending needs no query. Only when more are pending
//! than memory should hold ([`IN_MEMORY_MAX`]: a CRM down for long while calls go on) does the worker
//! read them from the store as they fall due, until they fit again. Every attempt's outcome is
//! written to the store (grouped with everything else the writer has waiting).
//!
//! Deliveries go out in [`Lane`]s: one call's deliveries to one endpoint (the CRM server a rule's URL
//! names) strictly in event order, one at a time; different calls and different endpoints go in
//! parallel and never wait for each other, so a rule whose endpoint is down, hangs or is slow delays
//! only what goes to that endpoint. After each attempt the worker decides with the [`RetryPolicy`]:
//!
//! * 2xx: delivered;
//! * no usable answer (connection refused, host name not found, TLS handshake failed, timed out, not
//!   an HTTP answer, connection closed) or 5xx, and also 408 and 429, which mean "try later": retried
//!   with exponential backoff and jitter until the delivery's maximum age (24 h by default);
//! * any other 4xx: the CRM refused this request, and sending it again will not change that: failed;
//!   likewise a request that cannot even be built (a rendered header value HTTP does not allow) and
//!   redirects that never end (a redirect loop).
//!
//! No endpoint can take every attempt slot: each has at most [`ENDPOINT_IN_FLIGHT`] attempts in flight,
//! and one whose last attempt failed (down, or hanging until the [`Sender`]'s timeout) at most
//! [`FAILING_ENDPOINT_IN_FLIGHT`], so the others always have room. Connections to a CRM are kept
//! open between attempts (the [`Sender`]'s HTTP client pools them).
//!
//! Every attempt carries the same `Idempotency-Key` (call id, event, rule id), so a CRM can drop the
//! repeats that at-least-once delivery implies (a crash between sending and recording the answer).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Attempt, Delivery, DeliveryLog, Outbox, Sender};
use crate::backoff::Backoff;
use crate::config::notification::DeliveryConfig;
use crate::store::deliveries::{Due, Lane, Next};
use crate::store::writer::{Feed, Held};
use crate::store::{now_ms, Commit, Store, Write};

/// Attempts in flight at once to one endpoint (each for a different call). Each waits for the CRM's
/// answer, so this bounds the rate: 32 lets a CRM 50 ms away take 640 notifications a second, and one
/// on the same network thousands, while keeping a CRM that slows down from facing an unbounded crowd.
pub const ENDPOINT_IN_FLIGHT: usize = 32;

/// Attempts in flight at once to an endpoint whose last attempt failed and will be retried (down,
/// answering 5xx, or not answering until the timeout): a few probes, not a crowd, so that a hanging
/// endpoint ties up a few attempt slots for a timeout each rather than all of them.
pub const FAILING_ENDPOINT_IN_FLIGHT: usize = 4;

/// Attempts in flight at once in all: room for one endpoint at full rate and others beside it.
pub const MAX_IN_FLIGHT: usize = 2 * ENDPOINT_IN_FLIGHT;

/// How often the worker reads the store, while it reads from there, even when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// Pending deliveries the worker holds in memory at most. Past that (a CRM down for long while calls
/// go on) it reads them from the store as they fall due, and every 5 s (`RELOAD_EVERY`) asks whether
/// they fit in memory again.
pub const IN_MEMORY_MAX: usize = 20_000;

/// See [`IN_MEMORY_MAX`].
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// When to try again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each further one.
    pub initial: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// How long after it was queued a delivery is still retried.
    pub max_age: Duration,
}

impl RetryPolicy {
    pub fn from_config(config: &DeliveryConfig) -> Self {
        RetryPolicy {
            initial: Duration::from_millis(config.retry_initial_ms),
            max_delay: Duration::from_secs(config.retry_max_delay_secs),
            max_age: Duration::from_secs(u64::from(config.max_age_hours) * 3_600),
        }
    }

    /// The shape of the waits between attempts.
    pub fn waits(&self) -> Backoff {
        Backoff::new(self.initial, self.max_delay)
    }

    /// The wait before attempt `failures + 1`, without jitter: `initial × 2^(failures-1)`, capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        self.waits().delay(failures)
    }

    /// [`Self::backoff`] with "equal jitter": a uniformly random wait between half of it and all of
    /// it, so many deliveries that failed together do not all come back at the same moment.
    pub fn backoff_with_jitter(&self, failures: u32, random: u64) -> Duration {
        self.waits().delay_with_jitter(failures, random)
    }

    pub fn max_age_ms(&self) -> i64 {
        i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX)
    }

    /// What happens after attempt number `attempt` of a delivery that expires at `expires_at`.
    pub fn next(&self, outcome: &Attempt, attempt: u32, now: i64, expires_at: i64, random: u64) -> Next {
        if outcome.succeeded() {
            return Next::Delivered;
        }
        if !outcome.retryable() {
            return Next::GiveUp;
        }
        let wait = i64::try_from(self.backoff_with_jitter(attempt, random).as_millis()).unwrap_or(i64::MAX);
        if now.saturating_add(wait) > expires_at {
            Next::GiveUp
        } else {
            Next::RetryIn(wait)
        }
    }
}

#[derive(Debug)]
struct Settings {
    sender: Sender,
    policy: RetryPolicy,
}

/// See the module documentation.
#[derive(Debug)]
pub struct DurableOutbox {
    store: Store,
    settings: Arc<RwLock<Settings>>,
}

impl DurableOutbox {
    /// Starts the worker on `store`: pending deliveries left from an earlier run are sent at once.
    /// Must be called inside a Tokio runtime.
    pub fn start(store: Store, config: &DeliveryConfig, log: Arc<DeliveryLog>) -> Self {
        DurableOutbox::start_holding(store, config, log, IN_MEMORY_MAX)
    }

    /// [`Self::start`] with at most `in_memory` pending deliveries held in memory (see
    /// [`IN_MEMORY_MAX`]).
    pub fn start_holding(store: Store, config: &DeliveryConfig, log: Arc<DeliveryLog>, in_memory: usize) -> Self {
        let settings = Arc::new(RwLock::new(Settings {
            sender: Sender::new(Duration::from_secs(config.timeout_secs)),
            policy: RetryPolicy::from_config(config),
        }));
        let feed = store.feed(in_memory);
        let worker = Worker { store: store.clone(), settings: Arc::clone(&settings), log, in_memory };
        tokio::spawn(worker.run(feed));
        DurableOutbox { store, settings }
    }

    fn policy(&self) -> RetryPolicy {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).policy
    }
}

impl Outbox for DurableOutbox {
    fn enqueue(&self, deliveries: Vec<Delivery>) -> Commit {
        self.store.write(vec![Write::Deliveries { deliveries, max_age_ms: self.policy().max_age_ms() }])
    }

    fn reconfigure(&self, config: &DeliveryConfig) {
        let mut settings = self.settings.write().unwrap_or_else(PoisonError::into_inner);
        settings.policy = RetryPolicy::from_config(config);
        settings.sender = Sender::new(Duration::from_secs(config.timeout_secs));
    }
}

struct Worker {
    store: Store,
    settings: Arc<RwLock<Settings>>,
    log: Arc<DeliveryLog>,
    /// Pending deliveries held in memory at most.
    in_memory: usize,
}

/// What an attempt task hands back.
struct Done {
    due: Due,
    attempt: u32,
    at: i64,
    outcome: Attempt,
}

/// How a finished attempt left its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Delivered or given up: no longer pending.
    Finished,
    /// Pending, to be attempted again at `at`, after `attempts` attempts.
    RetryAt { at: i64, attempts: u32 },
}

/// Where the worker takes its deliveries from.
#[derive(Debug)]
enum Mode {
    /// Waiting for the store's snapshot of the pending deliveries; how the attempts that finished
    /// since it was asked for left theirs (the snapshot may predate their records).
    Loading(HashMap<i64, Settled>),
    /// Every pending delivery is in memory.
    Memory(Queue),
    /// More were pending than memory holds: read from the store as they fall due, and ask again at
    /// `reload_at` whether they fit.
    Store { reload_at: tokio::time::Instant },
}

/// The attempts in flight, by lane and by endpoint, and which endpoints are failing: what holds a
/// due delivery back.
#[derive(Debug, Default)]
struct InFlight {
    tasks: HashMap<tokio::task::Id, (Lane, i64)>,
    endpoints: HashMap<String, Endpoint>,
}

/// One endpoint's attempts in flight.
#[derive(Debug, Default)]
struct Endpoint {
    /// The calls with an attempt in flight to this endpoint (at most one each: a lane is sequential).
    calls: HashSet<String>,
    /// The last finished attempt failed and will be retried.
    failing: bool,
}

impl Endpoint {
    fn limit(&self) -> usize {
        if self.failing {
            FAILING_ENDPOINT_IN_FLIGHT
        } else {
            ENDPOINT_IN_FLIGHT
        }
    }
}

impl InFlight {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    /// How many more attempts `endpoint` may have in flight.
    fn room(&self, endpoint: &str) -> usize {
        self.endpoints.get(endpoint).map_or(ENDPOINT_IN_FLIGHT, |e| e.limit().saturating_sub(e.calls.len()))
    }

    /// Whether `lane` has an attempt in flight.
    fn busy(&self, lane: &Lane) -> bool {
        self.endpoints.get(&lane.endpoint).is_some_and(|e| e.calls.contains(lane.call_id.as_str()))
    }

    /// What the store should leave out when it reads due deliveries.
    fn held(&self) -> Held {
        Held {
            lanes: self.tasks.values().map(|(lane, _)| (lane.call_id.as_str().to_owned(), lane.endpoint.clone())).collect(),
            endpoints: self.endpoints.iter().filter(|(_, e)| e.calls.len() >= e.limit()).map(|(name, _)| name.clone()).collect(),
        }
    }

    fn start(&mut self, task: tokio::task::Id, lane: Lane, id: i64) {
        self.endpoints.entry(lane.endpoint.clone()).or_default().calls.insert(lane.call_id.as_str().to_owned());
        self.tasks.insert(task, (lane, id));
    }

    /// Frees the lane of a finished attempt and returns it with the delivery's id; `outcome` (none
    /// when the attempt task died) updates whether its endpoint is failing.
    fn finish(&mut self, task: tokio::task::Id, outcome: Option<&Attempt>) -> Option<(Lane, i64)> {
        let (lane, id) = self.tasks.remove(&task)?;
        if let Some(endpoint) = self.endpoints.get_mut(&lane.endpoint) {
            endpoint.calls.remove(lane.call_id.as_str());
            if let Some(outcome) = outcome {
                endpoint.failing = outcome.retryable();
            }
            if endpoint.calls.is_empty() && !endpoint.failing {
                self.endpoints.remove(&lane.endpoint);
            }
        }
        Some((lane, id))
    }
}

/// The pending deliveries in memory: each lane's in id order, the lanes whose oldest delivery may
/// go now (per endpoint, so that a full endpoint's lanes are passed over without a look), and when
/// the others fall due.
#[derive(Debug, Default)]
struct Queue {
    lanes: HashMap<Lane, LaneQueue>,
    ready: HashMap<String, VecDeque<Lane>>,
    /// (due at, tie-breaker) → lane. A lane may have stale entries: each is checked when it fires.
    timers: BTreeMap<(i64, u64), Lane>,
    timer_seq: u64,
    /// Deliveries held.
    count: usize,
    /// Which endpoint goes first on the next [`Queue::take`], so that all take turns.
    turn: usize,
}

#[derive(Debug, Default)]
struct LaneQueue {
    items: VecDeque<Due>,
    /// Its oldest delivery is being attempted.
    in_flight: bool,
    /// It is in [`Queue::ready`].
    queued: bool,
}

impl Queue {
    /// Takes in a pending delivery (new, from the snapshot, or retried by hand: then it replaces the
    /// one with its id, unless that one is being attempted).
    fn add(&mut self, due: Due, now: i64) {
        let lane = due.lane.clone();
        let q = self.lanes.entry(lane.clone()).or_default();
        match q.items.iter().position(|d| d.id >= due.id) {
            Some(i) if q.items[i].id == due.id => {
                if !(q.in_flight && i == 0) {
                    q.items[i] = due;
                }
            }
            Some(i) => {
                q.items.insert(i, due);
                self.count += 1;
            }
            None => {
                q.items.push_back(due);
                self.count += 1;
            }
        }
        self.consider(&lane, now);
    }

    /// Puts `lane` where it belongs: ready if its oldest delivery is due, else behind a timer.
    fn consider(&mut self, lane: &Lane, now: i64) {
        let Some(q) = self.lanes.get_mut(lane) else { return };
        if q.in_flight || q.queued {
            return;
        }
        let Some(head) = q.items.front() else {
            self.lanes.remove(lane);
            return;
        };
        if head.next_attempt_at <= now {
            q.queued = true;
            self.ready.entry(lane.endpoint.clone()).or_default().push_back(lane.clone());
        } else {
            self.timer_seq += 1;
            self.timers.insert((head.next_attempt_at, self.timer_seq), lane.clone());
        }
    }

    /// Makes the lanes whose retry time has come ready.
    fn fire_timers(&mut self, now: i64) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let lane = entry.remove();
            self.consider(&lane, now);
        }
    }

    /// When the next timer fires, if any.
    fn next_timer(&self) -> Option<i64> {
        self.timers.first_key_value().map(|(k, _)| k.0)
    }

    /// Up to `room` deliveries to attempt now, at most `room_of(endpoint)` for each endpoint, the
    /// endpoints taking turns; their lanes are marked in flight.
    fn take(&mut self, mut room: usize, room_of: impl Fn(&str) -> usize) -> Vec<Due> {
        let mut taken = Vec::new();
        if room == 0 || self.ready.is_empty() {
            return taken;
        }
        let mut endpoints: Vec<String> = self.ready.keys().cloned().collect();
        endpoints.sort_unstable();
        let turn = self.turn % endpoints.len();
        endpoints.rotate_left(turn);
        self.turn = self.turn.wrapping_add(1);
        let mut rooms: Vec<usize> = endpoints.iter().map(|e| room_of(e)).collect();
        loop {
            let mut progress = false;
            for (endpoint, endpoint_room) in endpoints.iter().zip(rooms.iter_mut()) {
                if room == 0 {
                    break;
                }
                if *endpoint_room == 0 {
                    continue;
                }
                let Some(lanes) = self.ready.get_mut(endpoint) else { continue };
                while let Some(lane) = lanes.pop_front() {
                    let Some(q) = self.lanes.get_mut(&lane) else { continue };
                    q.queued = false;
                    let Some(head) = q.items.front().filter(|_| !q.in_flight) else { continue };
                    taken.push(head.clone());
                    q.in_flight = true;
                    *endpoint_room -= 1;
                    room -= 1;
                    progress = true;
                    break;
                }
                if lanes.is_empty() {
                    self.ready.remove(endpoint);
                }
            }
            if !progress || room == 0 {
                break;
            }
        }
        taken
    }

    /// An attempt of delivery `id` in `lane` finished and left it `settled`.
    fn settle(&mut self, lane: &Lane, id: i64, settled: Settled, now: i64) {
        let Some(q) = self.lanes.get_mut(lane) else { return };
        q.in_flight = false;
        if let Some(i) = q.items.iter().position(|d| d.id == id) {
            match settled {
                Settled::Finished => {
                    q.items.remove(i);
                    self.count -= 1;
                }
                Settled::RetryAt { at, attempts } => {
                    if let Some(d) = q.items.get_mut(i) {
                        d.next_attempt_at = at;
                        d.attempts = attempts;
                    }
                }
            }
        }
        self.consider(lane, now);
    }
}

impl Worker {
    async fn run(self, mut feed: mpsc::UnboundedReceiver<Feed>) {
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut in_flight = InFlight::default();
        let mut mode = Mode::Loading(HashMap::new());
        loop {
            let wait = self.start_due(&mut mode, &mut tasks, &mut in_flight).await;
            tokio::select! {
                Some(finished) = tasks.join_next_with_id() => {
                    self.finished(finished, &mut in_flight, &mut mode);
                    // Every other attempt that has finished too: while call events pour in, this
                    // task's turns on the runtime are scarce, and one attempt per turn would let the
                    // backlog grow however fast the CRM answers.
                    while let Some(finished) = tasks.try_join_next_with_id() {
                        self.finished(finished, &mut in_flight, &mut mode);
                    }
                }
                heard = feed.recv() => match heard {
                    Some(heard) => self.hear(heard, &mut mode),
                    None => {
                        tracing::error!("the store's writer has stopped: no more notifications are sent until CallBridge restarts");
                        return;
                    }
                },
                () = sleep_for(wait) => {}
            }
        }
    }

    /// Starts the attempts that may start now; how long until something falls due (`None`: only
    /// new work or a finished attempt can change anything).
    async fn start_due(&self, mode: &mut Mode, tasks: &mut JoinSet<Done>, in_flight: &mut InFlight) -> Option<Duration> {
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        let now = now_ms();
        match mode {
            Mode::Loading(_) => None,
            Mode::Memory(queue) => {
                queue.fire_timers(now);
                for due in queue.take(room, |endpoint| in_flight.room(endpoint)) {
                    self.spawn(due, tasks, in_flight);
                }
                queue.next_timer().map(|at| millis_until(at, now))
            }
            Mode::Store { reload_at } => {
                if tokio::time::Instant::now() >= *reload_at {
                    self.store.ask_snapshot(self.in_memory);
                    *mode = Mode::Loading(HashMap::new());
                    return None;
                }
                let until_reload = reload_at.saturating_duration_since(tokio::time::Instant::now());
                if room == 0 {
                    // With every slot taken, only a finished attempt can make progress.
                    return Some(until_reload);
                }
                match self.store.due_in_line(now, in_flight.held(), room).await {
                    Ok((due, next)) => {
                        for d in due {
                            if in_flight.room(&d.lane.endpoint) > 0 && !in_flight.busy(&d.lane) {
                                self.spawn(d, tasks, in_flight);
                            }
                        }
                        Some(next.map_or(IDLE_POLL, |at| millis_until(at, now)).min(IDLE_POLL).min(until_reload))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the outbox");
                        Some(IDLE_POLL.min(until_reload))
                    }
                }
            }
        }
    }

    fn spawn(&self, due: Due, tasks: &mut JoinSet<Done>, in_flight: &mut InFlight) {
        let (lane, id) = (due.lane.clone(), due.id);
        let task = tasks.spawn(self.attempt(due));
        in_flight.start(task.id(), lane, id);
    }

    /// Takes in what the store's writer says.
    fn hear(&self, heard: Feed, mode: &mut Mode) {
        let now = now_ms();
        match (heard, &mut *mode) {
            (Feed::Snapshot(Some(pending)), Mode::Loading(settled)) => {
                let mut queue = Queue::default();
                for mut due in pending {
                    match settled.get(&due.id) {
                        Some(Settled::Finished) => continue,
                        Some(Settled::RetryAt { at, attempts }) => {
                            due.next_attempt_at = *at;
                            due.attempts = *attempts;
                        }
                        None => {}
                    }
                    queue.add(due, now);
                }
                tracing::debug!(pending = queue.count, "the outbox holds every pending notification in memory");
                *mode = Mode::Memory(queue);
            }
            (Feed::Snapshot(None), Mode::Loading(_)) => {
                tracing::info!(limit = self.in_memory, "more notifications are pending than the outbox holds in memory; reading them from the store as they fall due");
                *mode = Mode::Store { reload_at: tokio::time::Instant::now() + RELOAD_EVERY };
            }
            (Feed::Added(added), Mode::Memory(queue)) => {
                for due in added {
                    queue.add(due, now);
                }
                if queue.count > self.in_memory {
                    tracing::info!(limit = self.in_memory, "more notifications are pending than the outbox holds in memory; reading them from the store as they fall due");
                    *mode = Mode::Store { reload_at: tokio::time::Instant::now() + RELOAD_EVERY };
                }
            }
            (Feed::Retried(due), Mode::Memory(queue)) => queue.add(*due, now),
            // Loading: the snapshot to come includes it. From the store: read when it falls due.
            (Feed::Added(_) | Feed::Retried(_) | Feed::Snapshot(_), _) => {}
        }
    }

    /// Records a finished attempt and frees its lane for the next delivery.
    fn finished(&self, finished: Result<(tokio::task::Id, Done), tokio::task::JoinError>, in_flight: &mut InFlight, mode: &mut Mode) {
        let now = now_ms();
        let (lane, id, settled) = match finished {
            Ok((task, done)) => {
                in_flight.finish(task, Some(&done.outcome));
                let (lane, id) = (done.due.lane.clone(), done.due.id);
                (lane, id, self.record(done))
            }
            // Short of a bug an attempt cannot panic; its delivery stays pending and is retried.
            Err(e) => {
                tracing::error!(error = %e, "a notification attempt failed unexpectedly");
                let Some((lane, id)) = in_flight.finish(e.id(), None) else { return };
                let at = now.saturating_add(i64::try_from(self.policy().initial.as_millis()).unwrap_or(i64::MAX));
                (lane, id, Settled::RetryAt { at, attempts: 0 })
            }
        };
        match mode {
            Mode::Memory(queue) => queue.settle(&lane, id, settled, now),
            Mode::Loading(pending) => {
                pending.insert(id, settled);
            }
            Mode::Store { .. } => {}
        }
    }

    fn policy(&self) -> RetryPolicy {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).policy
    }

    fn attempt(&self, due: Due) -> impl std::future::Future<Output = Done> + Send + 'static {
        let sender = self.settings.read().unwrap_or_else(PoisonError::into_inner).sender.clone();
        async move {
            let at = now_ms();
            let outcome = sender.send(&due.delivery).await;
            Done { attempt: due.attempts + 1, at, outcome, due }
        }
    }

    /// Hands the attempt's outcome to the store's writer (without waiting: a record lost to a crash
    /// means the delivery is sent again, never lost) and the log; how it left the delivery.
    fn record(&self, done: Done) -> Settled {
        let Done { due, attempt, at, outcome } = done;
        let next = self.policy().next(&outcome, attempt, now_ms(), due.expires_at, random());
        let settled = match next {
            Next::RetryIn(ms) => {
                tracing::debug!(key = %due.delivery.idempotency_key, attempt, retry_in_ms = ms, "will retry");
                Settled::RetryAt { at: at.saturating_add(ms), attempts: attempt }
            }
            Next::GiveUp if !outcome.succeeded() => {
                let why = if outcome.retryable() {
                    "it kept failing until its maximum age"
                } else if outcome.permanent {
                    "sending it again cannot help"
                } else {
                    "the CRM refused it"
                };
                tracing::warn!(key = %due.delivery.idempotency_key, attempt, "giving up on a notification: {why}");
                Settled::Finished
            }
            _ => Settled::Finished,
        };
        self.log.record(&due.delivery, attempt, outcome.clone());
        self.store.write(vec![Write::Finish { id: due.id, attempt, at, outcome, next }]).detach();
        settled
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// From `now` until `at` (both ms since the epoch), none if past.
fn millis_until(at: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
}

/// Sleeps for `wait`, or forever when there is nothing to wait for (no wake-ups at idle).
async fn sleep_for(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// A random number for jitter, from the OS. Jitter is not security-relevant; without the OS source
/// the wait is simply the full backoff.
fn random() -> u64 {
    getrandom::u64().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallId;

    fn policy() -> RetryPolicy {
        RetryPolicy { initial: Duration::from_secs(1), max_delay: Duration::from_secs(60), max_age: Duration::from_secs(3_600) }
    }

    fn answered(status: u16) -> Attempt {
        let error = (!(200..300).contains(&status)).then(|| format!("the CRM answered {status}"));
        Attempt { status: Some(status), error, response: None, elapsed_ms: 1, permanent: false }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_in_its_half() {
        let p = policy();
        let waits: Vec<u64> = (1..=9).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(60));
        for random in [0, 1, 499, 500, 12_345, u64::MAX] {
            for n in 1..8 {
                let full = p.backoff(n);
                let jittered = p.backoff_with_jitter(n, random);
                assert!(jittered >= full / 2 && jittered <= full, "{n} {random}: {jittered:?} vs {full:?}");
            }
        }
        assert_ne!(p.backoff_with_jitter(3, 0), p.backoff_with_jitter(3, 1_000));
    }

    #[test]
    fn server_errors_and_no_answer_are_retried_client_errors_are_not() {
        let p = policy();
        let now = 1_000_000;
        let expires = now + 3_600_000;
        assert_eq!(p.next(&answered(200), 1, now, expires, 0), Next::Delivered);
        assert_eq!(p.next(&answered(204), 5, now, expires, 0), Next::Delivered);
        for status in [400, 401, 403, 404, 410, 422] {
            assert_eq!(p.next(&answered(status), 1, now, expires, 0), Next::GiveUp, "{status}");
        }
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(matches!(p.next(&answered(status), 1, now, expires, 0), Next::RetryIn(500..=1_000)), "{status}");
        }
        let refused = Attempt { status: None, error: Some("could not connect".into()), response: None, elapsed_ms: 1, permanent: false };
        assert!(matches!(p.next(&refused, 3, now, expires, 0), Next::RetryIn(2_000..=4_000)));
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_not_retried() {
        let delivery = Delivery {
            rule_id: "r".into(),
            event: "incoming".into(),
            call_id: CallId::from("c"),
            method: "GET",
            url: "http://127.0.0.1:9/".into(),
            // A caller name with a NUL byte, rendered into a header: HTTP does not allow it.
            headers: vec![("X-Caller".into(), "a\0b".into())],
            body: None,
            idempotency_key: "c:incoming:r".into(),
        };
        let attempt = Sender::new(Duration::from_secs(1)).send(&delivery).await;
        assert!(attempt.permanent && !attempt.retryable(), "{attempt:?}");
        assert_eq!(policy().next(&attempt, 1, 0, i64::MAX, 0), Next::GiveUp);
    }

    #[test]
    fn retries_stop_at_the_maximum_age() {
        let p = policy();
        let expires = 10_000;
        assert!(matches!(p.next(&answered(503), 1, 8_000, expires, u64::MAX), Next::RetryIn(_)));
        assert_eq!(p.next(&answered(503), 4, 8_000, expires, u64::MAX), Next::GiveUp);
        assert_eq!(p.next(&answered(503), 1, 10_001, expires, 0), Next::GiveUp);
    }
}
