//! The store's writer: one thread that owns the write connection and commits in groups.
//!
//! Every write — a call's history row, a call event's notifications, the outcome of a delivery
//! attempt, a manual retry, a purge — is a job sent over a channel to this thread, which never
//! blocks the sender. The thread takes the first job, then everything else waiting, and writes it all
//! in one transaction: one commit (and with `durability = "power-loss"`, one flush to the disk) for
//! all the events that came in meanwhile, however many. Whoever must not go on before a write is
//! durable — a request that must not be answered before its notification is stored — awaits its
//! [`Commit`] without holding a thread; every waiter of a group hears the group's outcome.
//!
//! When a group fails (disk full, I/O error), each of its jobs is tried again on its own, so one bad
//! write does not fail the others, and whatever still fails is reported to its waiters as a
//! [`StoreError::NotSaved`]. Notifications that could not be written are kept by the thread and
//! written again before its next group (and every [`RESAVE_EVERY`] while there are some), so a full
//! disk delays them rather than losing them — unless CallBridge stops before the disk has room again.
//!
//! A call's history row is not worth a commit of its own each time the call changes: a dialed call
//! changes three or four times in its first seconds. [`Store::note_call`](super::Store::note_call)
//! keeps a call's new state, to be written within [`NOTE_WITHIN`]; only each call's latest state is
//! kept until then, and the writer writes them all in one commit once that time is up (or once [`MAX_NOTED`] calls wait, when a
//! reader asks for the history to be settled, and when the store closes). A write to the history or
//! of notifications takes every noted call into its own commit, first, so a call the CRM was told of is
//! in the history as it was told, and rows keep the order in which calls began. A crash can therefore lose the last [`NOTE_WITHIN`] of changes to calls that had no
//! notifications — never a notification: those are written before their request is answered.
//!
//! The outbox worker is told of every delivery the moment it is committed, over its feed ([`Feed`]):
//! first a snapshot of what is pending, then each commit's new deliveries, in the order of the
//! commits. A job panicking (a bug) is caught and logged, and the thread goes on with the next group.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::deliveries::{self, DeliveryEntry, Due, Next, RetryError};
use super::error::StoreError;
use super::retention::{self, PurgeReport};
use super::time::now_ms;
use crate::call::{Call, CallId, CallMap};
use crate::delivery::{Attempt, Delivery};

/// Most jobs in one group: bounds how long a commit takes, and so the wait of the first in it.
const MAX_GROUP: usize = 1_024;

/// How often notifications that could not be written are tried again while nothing else comes.
pub const RESAVE_EVERY: Duration = Duration::from_secs(1);

/// A noted call's state is in the history within this long (see the module documentation).
pub const NOTE_WITHIN: Duration = Duration::from_millis(200);

/// Most calls whose noted state waits to be written; one more is written with them at once.
const MAX_NOTED: usize = 1_024;

/// One write.
#[derive(Debug, Clone)]
pub enum Write {
    /// Inserts the call into the history, or updates it.
    Call(Box<Call>),
    /// Queues notifications as pending, each to be sent until `max_age_ms` from now.
    Deliveries { deliveries: Vec<Delivery>, max_age_ms: i64 },
    /// Records attempt number `attempt` of delivery `id`, started at `at`, and what happens next.
    Finish { id: i64, attempt: u32, at: i64, outcome: Attempt, next: Next },
}

/// The attempts in flight, as the outbox worker tells the store which deliveries to leave out.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// (call id, endpoint) of each lane with an attempt in flight.
    pub lanes: HashSet<(String, String)>,
    /// Endpoints with as many attempts in flight as they may have.
    pub endpoints: HashSet<String>,
}

impl Held {
    fn holds(&self, call: &str, endpoint: &str) -> bool {
        self.endpoints.contains(endpoint) || self.lanes.contains(&(call.to_owned(), endpoint.to_owned()))
    }
}

/// What the outbox worker hears from the writer, in commit order.
#[derive(Debug)]
pub enum Feed {
    /// Every pending delivery in id order, as committed when it was taken; `None` when there were
    /// more than the worker asked to hold in memory.
    Snapshot(Option<Vec<Due>>),
    /// Deliveries one commit added, in id order.
    Added(Vec<Due>),
    /// A delivery made due again by hand.
    Retried(Box<Due>),
}

/// The due deliveries and when the next one falls due, for an outbox worker reading the store.
pub type DueAnswer = Result<(Vec<Due>, Option<i64>), StoreError>;

/// Something to do once the writes handed over before it are committed (or failed).
pub type Then = Box<dyn FnOnce() + Send>;

pub(super) enum Job {
    Write { writes: Vec<Write>, done: Option<oneshot::Sender<Result<(), StoreError>>>, then: Option<Then> },
    /// Calls were noted (see [`Noted`]): when they are due, or that there are enough to write now.
    Noted,
    /// Writes the noted calls now, with everything handed over before, then tells `done`.
    Settle { done: oneshot::Sender<Result<(), StoreError>> },
    Retry { id: i64, max_age_ms: i64, reply: oneshot::Sender<Result<DeliveryEntry, RetryError>> },
    Purge { cutoff: i64, reply: oneshot::Sender<Result<PurgeReport, StoreError>> },
    /// From now on, tell `feed` of every committed delivery, starting with a snapshot of at most `limit`.
    Attach { feed: mpsc::UnboundedSender<Feed>, limit: usize },
    /// A snapshot of at most `limit` pending deliveries, over the feed.
    Snapshot { limit: usize },
    Due { now: i64, held: Held, limit: usize, reply: oneshot::Sender<DueAnswer> },
}

/// Counts the writer's commits (for tests and diagnostics).
#[derive(Debug, Default)]
pub struct Stats {
    pub commits: AtomicU64,
}

/// Waits for a write to be committed. Dropping it does not cancel the write.
#[derive(Debug)]
#[must_use = "a write is only known to be durable once its commit has been awaited"]
pub struct Commit(Result<oneshot::Receiver<Result<(), StoreError>>, StoreError>);

impl Commit {
    pub(super) fn pending(rx: oneshot::Receiver<Result<(), StoreError>>) -> Commit {
        Commit(Ok(rx))
    }

    pub(super) fn failed(e: StoreError) -> Commit {
        Commit(Err(e))
    }

    /// Until the write is committed (or failed).
    pub async fn wait(self) -> Result<(), StoreError> {
        match self.0 {
            Ok(rx) => rx.await.unwrap_or(Err(StoreError::WriterStopped)),
            Err(e) => Err(e),
        }
    }

    /// [`Self::wait`] for code outside async contexts (it panics inside a Tokio runtime).
    pub fn wait_blocking(self) -> Result<(), StoreError> {
        match self.0 {
            Ok(rx) => rx.blocking_recv().unwrap_or(Err(StoreError::WriterStopped)),
            Err(e) => Err(e),
        }
    }

    /// Lets the write go on without waiting for it; the writer logs it if it fails.
    pub fn detach(self) {}
}

/// Several commits awaited together: the writes of one request.
#[derive(Debug, Default)]
#[must_use = "writes are only known to be durable once their commits have been awaited"]
pub struct Commits(Vec<Commit>);

impl Commits {
    pub fn push(&mut self, commit: Commit) {
        self.0.push(commit);
    }

    pub fn extend(&mut self, other: Commits) {
        self.0.extend(other.0);
    }

    /// Until every write is committed; the first error if one failed.
    pub async fn wait(self) -> Result<(), StoreError> {
        let mut first_error = None;
        for commit in self.0 {
            if let Err(e) = commit.wait().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Lets the writes go on without waiting for them.
    pub fn detach(self) {}
}

/// The writer thread's state.
struct Writer {
    conn: Arc<Mutex<Connection>>,
    feed: Option<mpsc::UnboundedSender<Feed>>,
    /// Notifications whose write failed, to be written again.
    unsaved: Vec<Write>,
    /// The calls noted and not yet written, shared with the store's handles.
    noted: Arc<Mutex<Noted>>,
    stats: Arc<Stats>,
}

/// Calls' noted states waiting to be written (see [`Store::note_call`](super::Store::note_call)).
/// Shared by the store's handles, which note calls and settle what their writes touch without
/// waking the writer, and the writer, which takes them all when they are due. Whoever takes states
/// out of it sends the job that writes them while still holding the lock, so a state taken is
/// always in the writer's queue before any newer state of the same call can be taken.
#[derive(Debug, Default)]
pub(super) struct Noted {
    calls: CallMap<Box<Call>>,
    /// The calls in `calls` in the order they were first noted: the order their rows are written
    /// in, so a new call's history row comes after those of the calls before it.
    order: Vec<CallId>,
    since: Option<Instant>,
}

impl Noted {
    /// Keeps `call`'s latest state; whether the writer must be told (the first call noted since the
    /// last write, so it knows when they are due, or enough calls to write them at once).
    pub(super) fn note(&mut self, call: Box<Call>) -> bool {
        let first = self.calls.is_empty();
        if first {
            self.since = Some(Instant::now());
        }
        let id = call.id.clone();
        if self.calls.insert(id.clone(), call).is_none() {
            self.order.push(id);
        }
        first || self.calls.len() == MAX_NOTED
    }

    /// Settles what `writes` touch. A write to the history or a call's notifications takes every
    /// noted call into its commit, written before it: the call it writes is then written after its
    /// older noted state, a call the CRM is told of is in the history as the CRM is told of it, and
    /// history rows keep the order in which calls were first noted.
    pub(super) fn settle_for(&mut self, writes: &mut Vec<Write>) {
        if self.calls.is_empty() {
            return;
        }
        if writes.iter().any(|w| matches!(w, Write::Call(_) | Write::Deliveries { .. })) {
            let mut all = self.take_writes();
            all.append(writes);
            *writes = all;
        }
    }

    /// Every noted call as writes, in the order first noted, and nothing noted any more.
    fn take_writes(&mut self) -> Vec<Write> {
        self.since = None;
        let mut calls = std::mem::take(&mut self.calls);
        std::mem::take(&mut self.order).into_iter().filter_map(|id| calls.remove(&id)).map(Write::Call).collect()
    }

    /// When the noted calls must be written, if any wait.
    fn due_at(&self) -> Option<Instant> {
        self.since.filter(|_| !self.calls.is_empty()).map(|since| since + NOTE_WITHIN)
    }

    fn is_due(&self) -> bool {
        self.calls.len() >= MAX_NOTED || self.due_at().is_some_and(|due| Instant::now() >= due)
    }

    /// Every noted call, as one job's writes, and nothing noted any more.
    fn take(&mut self) -> Option<Waiting> {
        let writes = self.take_writes();
        (!writes.is_empty()).then_some(Waiting { writes, done: None, then: None })
    }
}

/// Runs the writer until every sender of `jobs` is gone; noted calls are written before it returns.
pub(super) fn run(conn: Arc<Mutex<Connection>>, jobs: &Receiver<Job>, noted: Arc<Mutex<Noted>>, stats: Arc<Stats>) {
    let mut writer = Writer { conn, feed: None, unsaved: Vec::new(), noted, stats };
    loop {
        let resave = (!writer.unsaved.is_empty()).then(|| Instant::now() + RESAVE_EVERY);
        let wake = match (resave, writer.noted().due_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let first = match wake {
            None => match jobs.recv() {
                Ok(job) => Some(job),
                Err(_) => break,
            },
            Some(at) => match jobs.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let conn = Arc::clone(&writer.conn);
        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        // Everything that is waiting now goes into this group.
        let mut group: Vec<Job> = first.into_iter().collect();
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.group(&conn, jobs, group)));
        if outcome.is_err() {
            tracing::error!("the store's writer failed on a group of writes (a bug); their waiters are told, and it goes on");
        }
    }
    let conn = Arc::clone(&writer.conn);
    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    let noted = writer.noted().take();
    if let Some(noted) = noted {
        writer.commit(&conn, vec![noted]);
    }
    if !writer.unsaved.is_empty() {
        tracing::error!(count = writer.unsaved.len(), "the store closed with notifications it could not write; they are lost");
    }
}

/// One job of a run of writes, with its waiter and what to do after.
struct Waiting {
    writes: Vec<Write>,
    done: Option<oneshot::Sender<Result<(), StoreError>>>,
    then: Option<Then>,
}

impl Waiting {
    /// Tells the waiter, then does what was to be done after.
    fn answer(self, result: Result<(), StoreError>) {
        if let Some(done) = self.done {
            let _ = done.send(result);
        }
        if let Some(then) = self.then {
            then();
        }
    }
}

impl Writer {
    fn noted(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.noted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries out one group: runs of writes in one transaction each, other jobs in between, in
    /// order; then, when they are due or someone asked, the noted calls, last.
    fn group(&mut self, conn: &Connection, queue: &Receiver<Job>, group: Vec<Job>) {
        let mut writes: Vec<Waiting> = Vec::new();
        if !self.unsaved.is_empty() {
            writes.push(Waiting { writes: std::mem::take(&mut self.unsaved), done: None, then: None });
        }
        let mut settles = Vec::new();
        self.run_jobs(conn, group, &mut writes, &mut settles);
        let due = !settles.is_empty() || self.noted().is_due();
        if due {
            // Every job sent before the noted states are taken carries only older states (see
            // `Noted`): take the queue's rest with them, under the same lock, and write them first.
            let (more, noted) = {
                let mut noted = self.noted();
                let more: Vec<Job> = std::iter::from_fn(|| queue.try_recv().ok()).collect();
                (more, noted.take())
            };
            self.run_jobs(conn, more, &mut writes, &mut settles);
            writes.extend(noted);
        }
        writes.extend(settles);
        self.commit(conn, writes);
    }

    /// Adds the writes of `jobs` to `writes`, carrying out other jobs in order between them; those
    /// waiting for the noted calls go to `settles`.
    fn run_jobs(&mut self, conn: &Connection, jobs: Vec<Job>, writes: &mut Vec<Waiting>, settles: &mut Vec<Waiting>) {
        for job in jobs {
            match job {
                Job::Write { writes: w, done, then } => writes.push(Waiting { writes: w, done, then }),
                // It only wakes the writer: the noted calls are in `self.noted`.
                Job::Noted => {}
                Job::Settle { done } => settles.push(Waiting { writes: Vec::new(), done: Some(done), then: None }),
                other => {
                    self.commit(conn, std::mem::take(writes));
                    self.other(conn, other);
                }
            }
        }
    }

    /// Commits `jobs` together; if that fails, each on its own, so only the failing ones fail.
    fn commit(&mut self, conn: &Connection, jobs: Vec<Waiting>) {
        if jobs.iter().all(|job| job.writes.is_empty()) {
            // Nothing to write: those waiting only wait for what came before, which is committed.
            for job in jobs {
                job.answer(Ok(()));
            }
            return;
        }
        match self.transaction(conn, &jobs) {
            Ok(added) => {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.tell(Feed::Added(added));
                for job in jobs {
                    job.answer(Ok(()));
                }
            }
            Err(e) if jobs.len() > 1 => {
                tracing::warn!(error = %e, jobs = jobs.len(), "a group of writes failed; writing each on its own");
                for job in jobs {
                    self.commit(conn, vec![job]);
                }
            }
            Err(e) => {
                let Some(mut job) = jobs.into_iter().next() else { return };
                let kept: Vec<Write> = std::mem::take(&mut job.writes).into_iter().filter(|w| matches!(w, Write::Deliveries { .. })).collect();
                let message = if kept.is_empty() {
                    e.to_string()
                } else {
                    format!("{e}; its notifications are kept in memory and written as soon as the store takes writes again")
                };
                tracing::error!(error = %message, "cannot write to the store");
                self.unsaved.extend(kept);
                job.answer(Err(StoreError::NotSaved(message)));
            }
        }
    }

    /// Writes every job's writes in one transaction; the deliveries it added, for the feed.
    fn transaction(&self, conn: &Connection, jobs: &[Waiting]) -> Result<Vec<Due>, StoreError> {
        let tx = conn.unchecked_transaction()?;
        let mut added = Vec::new();
        let now = now_ms();
        for job in jobs {
            for write in &job.writes {
                match write {
                    Write::Call(call) => super::calls::record(&tx, call, now)?,
                    Write::Deliveries { deliveries, max_age_ms } => {
                        for d in deliveries {
                            if let Some(due) = deliveries::insert(&tx, d, now, *max_age_ms)? {
                                if self.feed.is_some() {
                                    added.push(due);
                                }
                            }
                        }
                    }
                    Write::Finish { id, attempt, at, outcome, next } => deliveries::finish(&tx, *id, *attempt, *at, outcome, *next)?,
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Tells the outbox worker, if one listens.
    fn tell(&mut self, feed: Feed) {
        if matches!(&feed, Feed::Added(added) if added.is_empty()) {
            return;
        }
        if let Some(tx) = &self.feed {
            if tx.send(feed).is_err() {
                // The worker is gone (its runtime ended): nobody to tell any more.
                self.feed = None;
            }
        }
    }

    fn other(&mut self, conn: &Connection, job: Job) {
        match job {
            Job::Write { .. } | Job::Noted | Job::Settle { .. } => {}
            Job::Retry { id, max_age_ms, reply } => {
                let result = deliveries::retry(conn, id, max_age_ms);
                if result.is_ok() {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    match deliveries::pending_by_id(conn, id) {
                        Ok(Some(due)) => self.tell(Feed::Retried(Box::new(due))),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, id, "cannot read a retried delivery back"),
                    }
                }
                let _ = reply.send(result);
            }
            Job::Purge { cutoff, reply } => {
                let result = retention::purge(conn, cutoff);
                let _ = reply.send(result);
            }
            Job::Attach { feed, limit } => {
                self.feed = Some(feed);
                self.snapshot(conn, limit);
            }
            Job::Snapshot { limit } => self.snapshot(conn, limit),
            Job::Due { now, held, limit, reply } => {
                let answer = deliveries::due(conn, now, |c, e| held.holds(c, e), limit)
                    .and_then(|due| Ok((due, deliveries::next_due_at(conn, |c, e| held.holds(c, e))?)));
                let _ = reply.send(answer);
            }
        }
    }

    fn snapshot(&mut self, conn: &Connection, limit: usize) {
        match deliveries::pending(conn, limit) {
            Ok(all) => self.tell(Feed::Snapshot(all)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pending notifications; reading them as they fall due instead");
                self.tell(Feed::Snapshot(None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use crate::call::{Call, CallId, Direction};
    use crate::notify::Delivery;
    use crate::store::{Store, StoreError};

    use super::Write;

    fn delivery(i: usize) -> Delivery {
        Delivery {
            rule_id: "r".into(),
            event: "incoming".into(),
            call_id: CallId::from(format!("c{i}")),
            method: "GET",
            url: "http://127.0.0.1:9/".into(),
            headers: Vec::new(),
            body: None,
            idempotency_key: format!("c{i}:incoming:r"),
        }
    }

    fn writes(i: usize) -> Vec<Write> {
        vec![
            Write::Call(Box::new(Call::new(Direction::In, format!("+4420794600{i:02}"), "simulator"))),
            Write::Deliveries { deliveries: vec![delivery(i)], max_age_ms: 86_400_000 },
        ]
    }

    #[test]
    fn writes_waiting_together_are_committed_together() {
        let store = Store::in_memory();
        let commits = || store.stats().commits.load(Ordering::Relaxed);
        let before = commits();
        // While the writer cannot have the connection, 50 events' writes queue up behind it.
        let guard = store.conn();
        let waiting: Vec<_> = (0..50).map(|i| store.write(writes(i))).collect();
        drop(guard);
        for commit in waiting {
            commit.wait_blocking().expect("committed");
        }
        let used = commits() - before;
        assert!(used <= 2, "50 events' writes took {used} commits");
        assert_eq!(store.delivery_counts().expect("counts"), (50, 0, 0));
        assert_eq!(store.calls_page(None, 100).expect("history").calls.len(), 50);
    }

    #[test]
    fn a_failed_write_reaches_every_waiter_and_the_notifications_are_written_later() {
        let store = Store::in_memory();
        let guard = store.conn();
        // Every insert fails, as on a full disk.
        guard
            .execute_batch(
                "CREATE TRIGGER full_calls BEFORE INSERT ON calls BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
                 CREATE TRIGGER full_deliveries BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )
            .expect("triggers");
        let waiting: Vec<_> = (0..20).map(|i| store.write(writes(i))).collect();
        drop(guard);
        for commit in waiting {
            let err = commit.wait_blocking().expect_err("the write fails");
            assert!(matches!(err, StoreError::NotSaved(_)), "{err}");
            let text = err.to_string();
            assert!(text.contains("disk is full") && text.contains("kept in memory"), "{text}");
        }
        assert!(store.enqueue(&[delivery(100)], 86_400_000).is_err(), "still full");
        assert_eq!(store.delivery_counts().expect("counts"), (0, 0, 0));
        // Once the disk has room again, the kept notifications are written without anything new coming.
        store.conn().execute_batch("DROP TRIGGER full_calls; DROP TRIGGER full_deliveries;").expect("room again");
        let deadline = std::time::Instant::now() + super::RESAVE_EVERY * 10;
        while store.delivery_counts().expect("counts").0 < 21 {
            assert!(std::time::Instant::now() < deadline, "the kept notifications were not written");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(store.delivery_counts().expect("counts"), (21, 0, 0));
        // The history rows of the failed writes are not kept: the error said so to their waiters.
        assert_eq!(store.calls_page(None, 100).expect("history").calls.len(), 0);
    }

    fn state(call: &Call, state: crate::call::CallState) -> Call {
        Call { state, ..call.clone() }
    }

    #[test]
    fn a_call_noted_many_times_is_written_once_in_its_latest_state() {
        use crate::call::CallState;
        let store = Store::in_memory();
        let commits = || store.stats().commits.load(Ordering::Relaxed);
        let before = commits();
        let calls: Vec<Call> = (0..20).map(|i| Call::new(Direction::Out, format!("+4420794600{i:02}"), "simulator")).collect();
        for call in &calls {
            for s in [CallState::Dialing, CallState::Ringing, CallState::Active, CallState::Ended] {
                store.note_call(state(call, s));
            }
        }
        store.settled().wait_blocking().expect("settled");
        assert_eq!(commits() - before, 1, "80 noted states of 20 calls are one commit");
        let page = store.calls_page(None, 100).expect("history").calls;
        assert!(page.iter().all(|c| c.state == CallState::Ended), "{page:?}");
        // Newest first: the history keeps the order in which the calls were first noted.
        let ids: Vec<_> = page.iter().map(|c| c.id.clone()).collect();
        let newest_first: Vec<_> = calls.iter().rev().map(|c| c.id.clone()).collect();
        assert_eq!(ids, newest_first);
    }

    #[test]
    fn noted_calls_are_written_in_time_without_anyone_asking() {
        use crate::call::CallState;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.sqlite3"), crate::store::Durability::Crash).expect("open");
        let call = Call::new(Direction::In, "+442079460000", "simulator");
        store.note_call(state(&call, CallState::Ringing));
        // Read through the reader's own connection, which sees only what is committed.
        let deadline = std::time::Instant::now() + super::NOTE_WITHIN * 50;
        while store.call(&call.id).expect("read").is_none() {
            assert!(std::time::Instant::now() < deadline, "a noted call was never written");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn a_write_supersedes_an_older_note_and_a_later_note_supersedes_the_write() {
        use crate::call::CallState;
        let store = Store::in_memory();
        let call = Call::new(Direction::In, "+442079460000", "simulator");
        store.note_call(state(&call, CallState::Ringing));
        store.record_call(&state(&call, CallState::Active)).expect("written");
        store.settled().wait_blocking().expect("settled");
        assert_eq!(store.call(&call.id).expect("read").map(|c| c.state), Some(CallState::Active), "the older note came back");
        store.note_call(state(&call, CallState::Ended));
        store.settled().wait_blocking().expect("settled");
        assert_eq!(store.call(&call.id).expect("read").map(|c| c.state), Some(CallState::Ended));
    }

    #[test]
    fn a_calls_notifications_take_its_noted_state_into_their_commit() {
        use crate::call::CallState;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite3");
        let store = Store::open(&path, crate::store::Durability::Crash).expect("open");
        let mut call = Call::new(Direction::In, "+442079460000", "simulator");
        call.id = CallId::from("c1".to_owned());
        store.note_call(state(&call, CallState::Ended));
        store.write(vec![Write::Deliveries { deliveries: vec![delivery(1)], max_age_ms: 86_400_000 }]).wait_blocking().expect("committed");
        // Another connection sees the call as soon as its notification is committed, not a moment later.
        let other = rusqlite::Connection::open(&path).expect("open");
        let state: String = other.query_row("SELECT state FROM calls WHERE id = 'c1'", [], |r| r.get(0)).expect("the call is in the history");
        assert_eq!(state, CallState::Ended.as_str());
    }

    #[test]
    fn a_call_written_at_once_comes_after_the_calls_noted_before_it() {
        use crate::call::CallState;
        let store = Store::in_memory();
        let first = Call::new(Direction::In, "+442079460001", "simulator");
        let mut second = Call::new(Direction::In, "+442079460002", "simulator");
        second.id = CallId::from("c2".to_owned());
        store.note_call(state(&first, CallState::Ringing));
        store.note_call(state(&second, CallState::Ringing));
        // The second call's notification is written at once, with the noted calls, in their order.
        let mut d = delivery(2);
        d.call_id = second.id.clone();
        store.write(vec![Write::Deliveries { deliveries: vec![d], max_age_ms: 86_400_000 }]).wait_blocking().expect("committed");
        let third = Call::new(Direction::In, "+442079460003", "simulator");
        store.record_call(&state(&third, CallState::Ended)).expect("written");
        let ids: Vec<_> = store.calls_page(None, 10).expect("history").calls.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, [third.id, second.id, first.id], "newest first");
    }

    #[test]
    fn every_call_ends_up_in_its_last_state_when_threads_note_and_write_at_once() {
        // Four threads change their own calls as fast as they can: notes, notifications that take
        // the noted calls along, and rows written at once, while the writer writes the noted calls
        // whenever enough of them wait. Whatever the interleaving, no older state may land last.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.sqlite3"), crate::store::Durability::Crash).expect("open");
        // Every write that puts an older state over a newer one is recorded, however briefly it lasts.
        store
            .conn()
            .execute_batch(
                "CREATE TABLE backwards (id TEXT, old TEXT, new TEXT);
                 CREATE TRIGGER backwards AFTER UPDATE ON calls
                 WHEN json_extract(new.call, '$.remote_name') < json_extract(old.call, '$.remote_name')
                 BEGIN INSERT INTO backwards VALUES (new.id, json_extract(old.call, '$.remote_name'), json_extract(new.call, '$.remote_name')); END;",
            )
            .expect("trigger");
        // More calls than the writer lets wait, so it also writes the noted calls while the threads
        // go on; notifications and direct writes now and then.
        const CALLS: usize = 600;
        const VERSIONS: usize = 20;
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let calls: Vec<Call> = (0..CALLS)
                        .map(|i| {
                            let mut call = Call::new(Direction::In, format!("+4420794{t}{i:04}"), "simulator");
                            call.id = CallId::from(format!("t{t}c{i}"));
                            call
                        })
                        .collect();
                    for v in 0..VERSIONS {
                        for (i, call) in calls.iter().enumerate() {
                            let version = Call { remote_name: Some(format!("v{v:04}")), ..call.clone() };
                            match (v * CALLS + i) % 401 {
                                0 => {
                                    let mut d = delivery(i);
                                    d.call_id = call.id.clone();
                                    d.idempotency_key = format!("{}:{v}", call.id);
                                    store.note_call(version);
                                    store.write(vec![Write::Deliveries { deliveries: vec![d], max_age_ms: 86_400_000 }]).detach();
                                }
                                200 => store.write(vec![Write::Call(Box::new(version))]).detach(),
                                _ => store.note_call(version),
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a thread panicked");
        }
        store.settled().wait_blocking().expect("settled");
        let page = store.calls_page(None, 10_000).expect("history").calls;
        assert_eq!(page.len(), 4 * CALLS);
        let last = format!("v{:04}", VERSIONS - 1);
        let stale: Vec<_> = page.iter().filter(|c| c.remote_name.as_deref() != Some(last.as_str())).map(|c| (&c.id, &c.remote_name)).collect();
        assert!(stale.is_empty(), "calls whose last state was overwritten by an older one: {stale:?}");
        let backwards: i64 = store.conn().query_row("SELECT count(*) FROM backwards", [], |r| r.get(0)).expect("count");
        assert_eq!(backwards, 0, "writes that put an older state of a call over a newer one");
    }

    #[test]
    fn noted_calls_are_written_when_the_store_closes() {
        use crate::call::CallState;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite3");
        let call = Call::new(Direction::In, "+442079460000", "simulator");
        {
            let store = Store::open(&path, crate::store::Durability::Crash).expect("open");
            store.note_call(state(&call, CallState::Ended));
        }
        let store = Store::open(&path, crate::store::Durability::Crash).expect("reopen");
        assert_eq!(store.call(&call.id).expect("read").map(|c| c.state), Some(CallState::Ended));
    }

    #[test]
    fn power_loss_durability_flushes_once_per_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.sqlite3"), crate::store::Durability::PowerLoss).expect("open");
        let commits = || store.stats().commits.load(Ordering::Relaxed);
        let before = commits();
        let guard = store.conn();
        let waiting: Vec<_> = (0..100).map(|i| store.write(writes(i))).collect();
        drop(guard);
        for commit in waiting {
            commit.wait_blocking().expect("committed");
        }
        assert!(commits() - before <= 2, "100 events' writes took {} commits", commits() - before);
        assert_eq!(store.delivery_counts().expect("counts").0, 100);
    }
}
