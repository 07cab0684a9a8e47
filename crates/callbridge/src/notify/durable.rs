//! The durable outbox: at-least-once delivery of notifications through the SQLite store.
//!
//! [`DurableOutbox::enqueue`] writes the deliveries to the store before it returns — the engine calls
//! it before the call event is published anywhere — so a notification is never only in memory: if the
//! process is killed a moment later, the next start finds it pending and sends it. A worker task sends
//! due deliveries in [`Lane`]s: one call's deliveries to one endpoint (the CRM server a rule's URL
//! names) go out strictly in event order, one at a time; different calls and different endpoints go in
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
//! [`FAILING_ENDPOINT_IN_FLIGHT`], so the others always have room.
//!
//! Every attempt carries the same `Idempotency-Key` (call id, event, rule id), so a CRM can drop the
//! repeats that at-least-once delivery implies (a crash between sending and recording the answer).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::task::JoinSet;

use super::{Attempt, Delivery, DeliveryLog, Outbox, Sender};
use crate::config::DeliveryConfig;
use crate::store::deliveries::{Due, Lane, Next};
use crate::store::{now_ms, Store};

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

/// How often the worker looks at the store even when nothing woke it, as a safety net.
const IDLE_POLL: Duration = Duration::from_secs(30);

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

    /// The wait before attempt `failures + 1`, without jitter: `initial × 2^(failures-1)`, capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        self.initial.saturating_mul(factor).min(self.max_delay)
    }

    /// [`Self::backoff`] with "equal jitter": a uniformly random wait between half of it and all of
    /// it, so many deliveries that failed together do not all come back at the same moment.
    pub fn backoff_with_jitter(&self, failures: u32, random: u64) -> Duration {
        let full = self.backoff(failures);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(if spread == 0 { 0 } else { random % (spread + 1) })
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
    /// Deliveries the store could not take (disk full, I/O error), kept to be written when it can.
    unsaved: Arc<std::sync::Mutex<Vec<Delivery>>>,
}

impl DurableOutbox {
    /// Starts the worker on `store`: pending deliveries left from an earlier run are sent at once.
    /// Must be called inside a Tokio runtime.
    pub fn start(store: Store, config: &DeliveryConfig, log: Arc<DeliveryLog>) -> Self {
        let settings = Arc::new(RwLock::new(Settings {
            sender: Sender::new(Duration::from_secs(config.timeout_secs)),
            policy: RetryPolicy::from_config(config),
        }));
        let unsaved = Arc::default();
        let worker = Worker { store: store.clone(), settings: Arc::clone(&settings), log, unsaved: Arc::clone(&unsaved) };
        tokio::spawn(worker.run());
        DurableOutbox { store, settings, unsaved }
    }

    fn policy(&self) -> RetryPolicy {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).policy
    }
}

impl Outbox for DurableOutbox {
    fn enqueue(&self, deliveries: Vec<Delivery>) {
        if let Err(e) = self.store.enqueue(&deliveries, self.policy().max_age_ms()) {
            // Not lost: the worker writes them as soon as the store takes writes again.
            tracing::error!(error = %e, count = deliveries.len(), "cannot write notifications to the store; keeping them in memory until it can");
            self.unsaved.lock().unwrap_or_else(PoisonError::into_inner).extend(deliveries);
            self.store.outbox_changed().notify_one();
        }
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
    unsaved: Arc<std::sync::Mutex<Vec<Delivery>>>,
}

/// What an attempt task hands back.
struct Done {
    due: Due,
    attempt: u32,
    at: i64,
    outcome: Attempt,
}

/// The attempts in flight, by lane and by endpoint, and which endpoints are failing: what holds a
/// due delivery back.
#[derive(Debug, Default)]
struct InFlight {
    tasks: HashMap<tokio::task::Id, Lane>,
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

    /// Whether a delivery of `call` to `endpoint` must wait: its lane has an attempt in flight, or
    /// its endpoint as many as it may have.
    fn holds(&self, call: &str, endpoint: &str) -> bool {
        self.endpoints.get(endpoint).is_some_and(|e| e.calls.contains(call) || e.calls.len() >= e.limit())
    }

    fn start(&mut self, task: tokio::task::Id, lane: Lane) {
        self.endpoints.entry(lane.endpoint.clone()).or_default().calls.insert(lane.call_id.as_str().to_owned());
        self.tasks.insert(task, lane);
    }

    /// Frees the lane of a finished attempt; `outcome` (none when the attempt task died) updates
    /// whether its endpoint is failing.
    fn finish(&mut self, task: tokio::task::Id, outcome: Option<&Attempt>) {
        let Some(lane) = self.tasks.remove(&task) else { return };
        if let Some(endpoint) = self.endpoints.get_mut(&lane.endpoint) {
            endpoint.calls.remove(lane.call_id.as_str());
            if let Some(outcome) = outcome {
                endpoint.failing = outcome.retryable();
            }
            if endpoint.calls.is_empty() && !endpoint.failing {
                self.endpoints.remove(&lane.endpoint);
            }
        }
    }
}

impl Worker {
    async fn run(self) {
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut in_flight = InFlight::default();
        loop {
            self.save_unsaved();
            let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
            if room > 0 {
                // Several due deliveries may go to one endpoint: `holds` is asked again as each one
                // starts, so the endpoint's limit holds within one batch too. The ones held back stay
                // pending and come back on a later pass.
                match self.store.due(now_ms(), |call, endpoint| in_flight.holds(call, endpoint), room) {
                    Ok(due) => {
                        for d in due {
                            let lane = d.lane.clone();
                            if in_flight.holds(lane.call_id.as_str(), &lane.endpoint) {
                                continue;
                            }
                            let task = tasks.spawn(self.attempt(d));
                            in_flight.start(task.id(), lane);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
                }
            }
            // With every slot taken, only a finished attempt can make progress. Under load that is
            // the usual case, and then a new delivery's wake-up costs no query at all.
            let wait = if in_flight.len() >= MAX_IN_FLIGHT { IDLE_POLL } else { self.wait_for_next(&in_flight) };
            tokio::select! {
                Some(finished) = tasks.join_next_with_id() => {
                    self.finished(finished, &mut in_flight);
                    // Every other attempt that has finished too: while call events pour in, this
                    // task's turns on the runtime are scarce, and one attempt per turn would let the
                    // backlog grow however fast the CRM answers.
                    while let Some(finished) = tasks.try_join_next_with_id() {
                        self.finished(finished, &mut in_flight);
                    }
                }
                () = self.store.outbox_changed().notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Records a finished attempt and frees its lane for the next delivery.
    fn finished(&self, finished: Result<(tokio::task::Id, Done), tokio::task::JoinError>, in_flight: &mut InFlight) {
        match finished {
            Ok((task, done)) => {
                in_flight.finish(task, Some(&done.outcome));
                self.record(done);
            }
            // Short of a bug an attempt cannot panic; its delivery stays pending and is retried.
            Err(e) => {
                tracing::error!(error = %e, "a notification attempt failed unexpectedly");
                in_flight.finish(e.id(), None);
            }
        }
    }

    /// How long to sleep when nothing wakes the worker: until the next delivery not held back by the
    /// attempts in flight falls due. (Held ones wait for an attempt to finish, which wakes the worker.)
    fn wait_for_next(&self, in_flight: &InFlight) -> Duration {
        match self.store.next_due_at(|call, endpoint| in_flight.holds(call, endpoint)) {
            Ok(Some(at)) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(IDLE_POLL),
            Ok(None) => IDLE_POLL,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                IDLE_POLL
            }
        }
    }

    fn attempt(&self, due: Due) -> impl std::future::Future<Output = Done> + Send + 'static {
        let sender = self.settings.read().unwrap_or_else(PoisonError::into_inner).sender.clone();
        async move {
            let at = now_ms();
            let outcome = sender.send(&due.delivery).await;
            Done { attempt: due.attempts + 1, at, outcome, due }
        }
    }

    fn record(&self, done: Done) {
        let Done { due, attempt, at, outcome } = done;
        let policy = self.settings.read().unwrap_or_else(PoisonError::into_inner).policy;
        let next = policy.next(&outcome, attempt, now_ms(), due.expires_at, random());
        match next {
            Next::RetryIn(ms) => tracing::debug!(key = %due.delivery.idempotency_key, attempt, retry_in_ms = ms, "will retry"),
            Next::GiveUp if !outcome.succeeded() => {
                let why = if outcome.retryable() {
                    "it kept failing until its maximum age"
                } else if outcome.permanent {
                    "sending it again cannot help"
                } else {
                    "the CRM refused it"
                };
                tracing::warn!(key = %due.delivery.idempotency_key, attempt, "giving up on a notification: {why}");
            }
            _ => {}
        }
        if let Err(e) = self.store.finish_attempt(due.id, attempt, at, &outcome, next) {
            // The delivery stays pending in the store and is sent again: a repeat, never a loss.
            tracing::error!(error = %e, key = %due.delivery.idempotency_key, "cannot record a notification attempt");
        }
        self.log.record(&due.delivery, attempt, outcome);
    }

    fn save_unsaved(&self) {
        let pending: Vec<Delivery> = std::mem::take(&mut *self.unsaved.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return;
        }
        let max_age = self.settings.read().unwrap_or_else(PoisonError::into_inner).policy.max_age_ms();
        if let Err(e) = self.store.enqueue(&pending, max_age) {
            tracing::error!(error = %e, count = pending.len(), "the store still refuses notifications");
            self.unsaved.lock().unwrap_or_else(PoisonError::into_inner).extend(pending);
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
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
