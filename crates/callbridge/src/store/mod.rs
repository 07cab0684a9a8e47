//! The local store: one SQLite file with the call history, the notification outbox and its delivery log.
//!
//! It lives in the platform's data directory (`~/.local/share/callbridge/callbridge.sqlite3` on Linux,
//! `~/Library/Application Support/dev.callbridge.CallBridge/` on macOS, `%APPDATA%\callbridge\CallBridge\data\` on
//! Windows), or where `[store] path` or `callbridge serve --store` says. Every write is a committed
//! transaction in WAL mode, so what was written survives CallBridge crashing or being killed
//! (`kill -9`), and the file is never left half-written. By default ([`Durability::Crash`]) a commit
//! is handed to the OS but not flushed to the disk (`synchronous = NORMAL`): flushing costs one
//! `fsync` per commit — milliseconds — and would only matter if the machine lost power in the moment
//! between the write and the OS writing it back. [`Durability::PowerLoss`] (`[store] durability =
//! "power-loss"`) flushes every commit (`synchronous = FULL`) for those who want that moment covered
//! too; as a commit holds every write that was waiting (see [`writer`]), that is one flush per group
//! of events, not one per event. One CallBridge owns the file at
//! a time: it holds a lock on `callbridge.sqlite3.lock` beside it, and a second instance is told so
//! instead of sending the same notifications twice. Checkpoints of the write-ahead log run on a
//! thread of their own ([`checkpoint`]).
//!
//! The schema is versioned with SQLite's `user_version` and migrated forward on open; a file written by
//! a newer CallBridge is refused rather than misread. Secrets never go in here.
//!
//! Writes go through one thread of their own ([`writer`]), which owns the write connection and
//! commits everything that is waiting in one transaction (group commit); callers hand it their
//! writes without blocking and await the [`Commit`] when they must. Reads (the API's pages, counts)
//! use a connection of their own, which in WAL mode never waits for the writer.

pub mod calls;
mod checkpoint;
pub mod deliveries;
mod error;
mod retention;
mod time;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender as JobSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use self::calls::{parse_call, CallPage};
use self::deliveries::{entry, entry_from_row, AttemptEntry, DeliveryEntry, DeliveryStatus, Due, Next, RetryError, ENTRY_COLUMNS};
use crate::call::{Call, CallId};
use crate::delivery::{Attempt, Delivery};
pub use error::StoreError;
pub use retention::PurgeReport;
pub(crate) use time::{now_ms, to_datetime};
pub use writer::{Commit, Commits, Write};
use writer::{Feed, Held, Job, Noted, Stats};

/// The file name inside the platform's data directory.
pub const FILE_NAME: &str = "callbridge.sqlite3";

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 3;

/// What a committed write survives. See the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// CallBridge crashing or being killed (`synchronous = NORMAL`).
    #[default]
    Crash,
    /// The machine losing power too: every commit is flushed to the disk (`synchronous = FULL`).
    PowerLoss,
}

impl Durability {
    fn synchronous(self) -> &'static str {
        match self {
            Durability::Crash => "NORMAL",
            Durability::PowerLoss => "FULL",
        }
    }
}

/// `[store]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file; the platform's data directory when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Days to keep call history and finished deliveries; 0 keeps them forever.
    pub history_days: u32,
    /// What a committed write survives.
    pub durability: Durability,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { path: None, history_days: 90, durability: Durability::default() }
    }
}

impl StoreConfig {
    /// Checks what the types cannot; the error names the setting.
    pub fn validate(&self) -> Result<(), crate::config::invalid::Invalid> {
        crate::config::limits::HISTORY_DAYS.check(u64::from(self.history_days))?;
        if self.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(crate::config::invalid::Invalid::new("store.path", "store.path is empty; leave it out to use the platform's data directory"));
        }
        Ok(())
    }

    /// The file to open: the configured path, else the platform's data directory.
    pub fn file(&self) -> Result<PathBuf, StoreError> {
        match &self.path {
            Some(path) => Ok(path.clone()),
            None => default_path(),
        }
    }
}

/// The platform's store file.
pub fn default_path() -> Result<PathBuf, StoreError> {
    directories::ProjectDirs::from("dev", "callbridge", "CallBridge")
        .map(|dirs| dirs.data_dir().join(FILE_NAME))
        .ok_or(StoreError::NoDataDir)
}


#[derive(Debug)]
struct Inner {
    /// The writer thread's connection; tests and the in-memory store's reads use it too.
    #[cfg_attr(not(test), allow(dead_code, reason = "the writer thread has its own handle; tests look through this one"))]
    write: Arc<Mutex<Connection>>,
    /// The connection reads use: the writer's in memory; for a file one of its own, opened at the
    /// first read (a bridge nobody asks for its history or log never pays for it).
    read: Reader,
    /// The writer thread's queue; `None` once the store is closing.
    jobs: Option<JobSender<Job>>,
    /// Calls' history rows waiting to be written (see [`Store::note_call`]).
    noted: Arc<Mutex<Noted>>,
    writer: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Stats>,
    /// Held locked while the store is open: one process owns the outbox. `None` in memory.
    _owner: Option<std::fs::File>,
    /// Where the file is; `None` for an in-memory store.
    path: Option<PathBuf>,
}

impl Drop for Inner {
    /// Lets the writer finish what it was given before the file's lock is let go.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("the store's writer thread panicked");
            }
        }
    }
}

/// Where reads go.
#[derive(Debug)]
enum Reader {
    /// The writer's connection (an in-memory database is private to its connection).
    Writer(Arc<Mutex<Connection>>),
    /// A connection of its own, opened at the first read.
    Own(Mutex<Option<Connection>>),
}

/// A locked read connection.
enum ReadGuard<'a> {
    Writer(MutexGuard<'a, Connection>),
    /// Always `Some`: [`Store::read`] opens it before handing it out.
    Own(MutexGuard<'a, Option<Connection>>),
}

impl std::ops::Deref for ReadGuard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            ReadGuard::Writer(conn) => conn,
            ReadGuard::Own(conn) => match conn.as_ref() {
                Some(conn) => conn,
                None => unreachable!("Store::read opens the connection before handing it out"),
            },
        }
    }
}

/// See the module documentation. Cheap to clone; all clones share one writer.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (creating if needed) the store file and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.to_owned(), source })?;
        }
        let owner = lock_owner(path)?;
        let open_err = |source| StoreError::Open { path: path.to_owned(), source };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_millis(200)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", durability.synchronous()).map_err(open_err)?;
        migrate(&conn, Some(path))?;
        checkpoint::start(&mut conn, path)?;
        Store::finish_open(conn, true, Some(path.to_owned()), Some(owner))
    }

    /// A store in memory only: the same schema and code, gone when the process ends. For tests and
    /// engines that must not touch the disk.
    pub fn in_memory() -> Store {
        // Opening an in-memory database only fails when SQLite cannot allocate: nothing works then.
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("cannot open an in-memory SQLite database: {e}"));
        migrate(&conn, None).unwrap_or_else(|e| panic!("cannot create the in-memory store: {e}"));
        Store::finish_open(conn, false, None, None).unwrap_or_else(|e| panic!("cannot create the in-memory store: {e}"))
    }

    fn finish_open(conn: Connection, own_reader: bool, path: Option<PathBuf>, owner: Option<std::fs::File>) -> Result<Store, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let write = Arc::new(Mutex::new(conn));
        let read = if own_reader { Reader::Own(Mutex::new(None)) } else { Reader::Writer(Arc::clone(&write)) };
        let stats = Arc::new(Stats::default());
        let (jobs, queue) = std::sync::mpsc::channel();
        let noted = Arc::new(Mutex::new(Noted::default()));
        let writer = {
            let (conn, noted, stats) = (Arc::clone(&write), Arc::clone(&noted), Arc::clone(&stats));
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer::run(conn, &queue, noted, stats))
                .map_err(StoreError::WriterThread)?
        };
        Ok(Store { inner: Arc::new(Inner { write, read, jobs: Some(jobs), noted, writer: Some(writer), stats, _owner: owner, path }) })
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The writer's connection (tests look at and change the file through it).
    #[cfg(test)]
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection for reads, opened if need be.
    fn read(&self) -> Result<ReadGuard<'_>, StoreError> {
        match &self.inner.read {
            Reader::Writer(conn) => Ok(ReadGuard::Writer(conn.lock().unwrap_or_else(PoisonError::into_inner))),
            Reader::Own(conn) => {
                let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
                if guard.is_none() {
                    let path = self.inner.path.clone().unwrap_or_default();
                    let open_err = |source| StoreError::Open { path: path.clone(), source };
                    let read = Connection::open(&path).map_err(open_err)?;
                    read.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
                    read.pragma_update(None, "query_only", "ON").map_err(open_err)?;
                    *guard = Some(read);
                }
                Ok(ReadGuard::Own(guard))
            }
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        match &self.inner.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| StoreError::WriterStopped),
            None => Err(StoreError::WriterStopped),
        }
    }

    /// Hands `writes` to the writer, to be committed together (and with whatever else is waiting).
    /// Never blocks; await the [`Commit`] to know they are durable.
    pub fn write(&self, mut writes: Vec<Write>) -> Commit {
        let (done, rx) = oneshot::channel();
        // Settled and sent under the lock of the noted calls (see `writer::Noted`).
        let mut noted = self.noted();
        noted.settle_for(&mut writes);
        let sent = self.send(Job::Write { writes, done: Some(done), then: None });
        drop(noted);
        match sent {
            Ok(()) => Commit::pending(rx),
            Err(e) => Commit::failed(e),
        }
    }

    /// Runs `then` on the writer's thread once every write handed over before is committed (or has
    /// failed), in order with the writes: for telling others of what is now durable. `then` must
    /// not block.
    pub fn after_commit(&self, then: writer::Then) {
        if let Err(Job::Write { then: Some(then), .. }) = self.send_job(Job::Write { writes: Vec::new(), done: None, then: Some(then) }) {
            then();
        }
    }

    /// Sends `job`, or gives it back when the writer is gone.
    fn send_job(&self, job: Job) -> Result<(), Job> {
        match &self.inner.jobs {
            Some(jobs) => jobs.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    /// Hands the writer `call`'s new state for the history, to be written within
    /// [`writer::NOTE_WITHIN`] together with the call's later changes, or sooner with the next write
    /// of notifications or history (see [`writer`]). If the writer is gone, the state is not
    /// written, as for a failed write.
    pub fn note_call(&self, call: Call) {
        let tell = self.noted().note(Box::new(call));
        if tell && self.send(Job::Noted).is_err() {
            tracing::error!("the store's writer has stopped; calls' history rows are not written");
        }
    }

    fn noted(&self) -> MutexGuard<'_, Noted> {
        self.inner.noted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every write handed over before is committed (or failed), noted calls included:
    /// for readers that must see them (the history API).
    pub fn settled(&self) -> Commit {
        let (done, rx) = oneshot::channel();
        match self.send(Job::Settle { done }) {
            Ok(()) => Commit::pending(rx),
            Err(e) => Commit::failed(e),
        }
    }

    /// Where the outbox worker hears of committed deliveries: first a snapshot of the pending ones
    /// (`None` when there are more than `limit`), then every commit's. One listener at a time.
    pub(crate) fn feed(&self, limit: usize) -> mpsc::UnboundedReceiver<Feed> {
        let (feed, rx) = mpsc::unbounded_channel();
        if let Err(e) = self.send(Job::Attach { feed, limit }) {
            tracing::error!(error = %e, "the outbox cannot hear of new notifications");
        }
        rx
    }

    /// Asks for another snapshot of the pending deliveries over the feed.
    pub(crate) fn ask_snapshot(&self, limit: usize) {
        if let Err(e) = self.send(Job::Snapshot { limit }) {
            tracing::error!(error = %e, "cannot ask the store for the pending notifications");
        }
    }

    /// Due deliveries (see [`Store::due`]) read by the writer, in line with the writes before.
    pub(crate) async fn due_in_line(&self, now: i64, held: Held, limit: usize) -> writer::DueAnswer {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Due { now, held, limit, reply })?;
        rx.await.unwrap_or(Err(StoreError::WriterStopped))
    }

    /// Removes calls and finished deliveries older than `days` (0: nothing). Pending deliveries stay:
    /// their own maximum age governs them.
    pub async fn purge_older_than_days(&self, days: u32) -> Result<PurgeReport, StoreError> {
        if days == 0 {
            return Ok(PurgeReport::default());
        }
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
        let (reply, rx) = oneshot::channel();
        self.send(Job::Purge { cutoff, reply })?;
        rx.await.unwrap_or(Err(StoreError::WriterStopped))
    }
}

/// Takes the lock that makes this process the store's only user: `PATH.lock` beside the store, locked
/// for as long as the returned file is open (the OS lets go of it if the process dies).
fn lock_owner(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::LockFile { path: lock_path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked { path: path.to_owned() }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::LockFile { path: lock_path, source }),
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], one step per version, each in a transaction.
fn migrate(conn: &Connection, path: Option<&Path>) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { path: path.map(Path::to_owned).unwrap_or_default(), found: version, reads: SCHEMA_VERSION });
    }
    if version < 1 {
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE calls (
                 seq            INTEGER PRIMARY KEY AUTOINCREMENT,
                 id             TEXT NOT NULL UNIQUE,
                 started_at     INTEGER NOT NULL,
                 updated_at     INTEGER NOT NULL,
                 direction      TEXT NOT NULL,
                 remote_number  TEXT NOT NULL,
                 state          TEXT NOT NULL,
                 disposition    TEXT,
                 provider       TEXT NOT NULL,
                 call           TEXT NOT NULL
             );
             CREATE TABLE deliveries (
                 id               INTEGER PRIMARY KEY AUTOINCREMENT,
                 idempotency_key  TEXT NOT NULL UNIQUE,
                 call_id          TEXT NOT NULL,
                 event            TEXT NOT NULL,
                 rule_id          TEXT NOT NULL,
                 method           TEXT NOT NULL,
                 url              TEXT NOT NULL,
                 headers          TEXT NOT NULL,
                 body             TEXT,
                 status           TEXT NOT NULL,
                 attempts         INTEGER NOT NULL DEFAULT 0,
                 created_at       INTEGER NOT NULL,
                 expires_at       INTEGER NOT NULL,
                 next_attempt_at  INTEGER NOT NULL,
                 last_attempt_at  INTEGER,
                 last_http_status INTEGER,
                 last_error       TEXT,
                 finished_at      INTEGER
             );
             CREATE INDEX deliveries_pending ON deliveries (status, call_id, id);
             CREATE TABLE delivery_attempts (
                 delivery_id    INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
                 attempt        INTEGER NOT NULL,
                 at             INTEGER NOT NULL,
                 http_status    INTEGER,
                 error          TEXT,
                 response       TEXT,
                 elapsed_ms     INTEGER NOT NULL,
                 retry_in_ms    INTEGER,
                 PRIMARY KEY (delivery_id, attempt)
             );
             PRAGMA user_version = 1;
             COMMIT;",
        )?;
    }
    if version < 2 {
        // The outbox worker's questions — which deliveries are due, when is the next one — answered
        // from the pending rows alone, in due order, however long the delivery log grows.
        conn.execute_batch(
            "BEGIN;
             CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
             PRAGMA user_version = 2;
             COMMIT;",
        )?;
    }
    if version < 3 {
        migrate_to_lanes(conn)?;
    }
    Ok(())
}

/// Schema 3: each delivery records its endpoint (the CRM server its URL names), and a call's
/// deliveries are kept in order per endpoint instead of all together, so a rule whose endpoint is down
/// holds up nothing sent elsewhere. Rows that may still be sent (pending, or failed and retried by
/// hand) get their endpoint from their URL; delivered ones are never sent again and keep it empty.
fn migrate_to_lanes(conn: &Connection) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(
        "ALTER TABLE deliveries ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';
         DROP INDEX IF EXISTS deliveries_pending;
         CREATE INDEX deliveries_lane ON deliveries (status, call_id, endpoint, id);",
    )?;
    {
        let mut select = tx.prepare("SELECT id, url FROM deliveries WHERE status != 'delivered'")?;
        let mut update = tx.prepare("UPDATE deliveries SET endpoint = ?2 WHERE id = ?1")?;
        let rows = select.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, url) = row?;
            update.execute(rusqlite::params![id, crate::delivery::endpoint_of(&url)])?;
        }
    }
    tx.pragma_update(None, "user_version", 3)?;
    tx.commit()?;
    Ok(())
}

/// The call history (`calls`).
impl Store {
    /// Inserts `call`, or updates it, and waits for the commit: for code outside async contexts.
    /// The engine hands [`Write::Call`] to [`Store::write`] instead.
    pub fn record_call(&self, call: &Call) -> Result<(), StoreError> {
        self.write(vec![Write::Call(Box::new(call.clone()))]).wait_blocking()
    }

    /// Up to `limit` calls, newest first, older than the cursor `before` when given.
    pub fn calls_page(&self, before: Option<i64>, limit: usize) -> Result<CallPage, StoreError> {
        let conn = self.read()?;
        let mut select = conn.prepare_cached("SELECT seq, call FROM calls WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2")?;
        // One more than asked tells whether there is a next page.
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = select.query_map(params![before.unwrap_or(i64::MAX), fetch], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut calls = Vec::new();
        let mut last_seq = None;
        let mut more = false;
        for row in rows {
            let (seq, json) = row?;
            if calls.len() == limit {
                more = true;
                break;
            }
            calls.push(parse_call(&json)?);
            last_seq = Some(seq);
        }
        Ok(CallPage { calls, next_before: if more { last_seq } else { None } })
    }

    pub fn call(&self, id: &CallId) -> Result<Option<Call>, StoreError> {
        let conn = self.read()?;
        let json: Option<String> =
            conn.query_row("SELECT call FROM calls WHERE id = ?1", [id.as_str()], |row| row.get(0)).optional()?;
        json.map(|j| parse_call(&j)).transpose()
    }
}

/// The outbox and the delivery log (`deliveries`).
impl Store {
    /// Writes `deliveries` as pending, all or none, and waits for the commit: for code outside
    /// async contexts (the outbox hands [`Write::Deliveries`] to [`Store::write`]). A delivery whose
    /// idempotency key is already stored is the same delivery and is not added twice.
    pub fn enqueue(&self, deliveries: &[Delivery], max_age_ms: i64) -> Result<(), StoreError> {
        self.write(vec![Write::Deliveries { deliveries: deliveries.to_vec(), max_age_ms }]).wait_blocking()
    }

    /// Up to `limit` deliveries due at `now`, the longest due first: for each [`Lane`], only its oldest
    /// pending delivery, and none for which `held(call id, endpoint)` says so (the worker holds back
    /// lanes with an attempt in flight, and endpoints with as many attempts in flight as they may have).
    ///
    /// Both this and [`Store::next_due_at`] walk the pending rows in due order through the
    /// `deliveries_due` index and stop as soon as they have their answer, so the worker's cost per
    /// attempt does not grow with the delivery log.
    pub fn due(&self, now: i64, held: impl Fn(&str, &str) -> bool, limit: usize) -> Result<Vec<Due>, StoreError> {
        deliveries::due(&*self.read()?, now, held, limit)
    }

    /// When the next pending delivery that heads its lane falls due, if any, leaving out the lanes
    /// `held(call id, endpoint)` holds back.
    pub fn next_due_at(&self, held: impl Fn(&str, &str) -> bool) -> Result<Option<i64>, StoreError> {
        deliveries::next_due_at(&*self.read()?, held)
    }

    /// Records attempt number `attempt` of delivery `id` and what happens next, and waits for the
    /// commit: for code outside async contexts (the worker hands [`Write::Finish`] to [`Store::write`]).
    pub fn finish_attempt(&self, id: i64, attempt: u32, at: i64, outcome: &Attempt, next: Next) -> Result<(), StoreError> {
        self.write(vec![Write::Finish { id, attempt, at, outcome: outcome.clone(), next }]).wait_blocking()
    }

    /// Deliveries, newest first: those with an id below `before` when given, of `status` when given.
    pub fn deliveries(&self, before: Option<i64>, status: Option<DeliveryStatus>, limit: usize) -> Result<Vec<DeliveryEntry>, StoreError> {
        let conn = self.read()?;
        let mut select = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM deliveries
             WHERE id < ?1 AND (?2 IS NULL OR status = ?2)
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![before.unwrap_or(i64::MAX), status.map(DeliveryStatus::as_str), limit], entry_from_row)?;
        rows.map(|r| r?).collect()
    }

    pub fn delivery(&self, id: i64) -> Result<Option<DeliveryEntry>, StoreError> {
        entry(&*self.read()?, id)
    }

    /// Every attempt of delivery `id`, first first.
    pub fn attempts(&self, id: i64) -> Result<Vec<AttemptEntry>, StoreError> {
        let conn = self.read()?;
        let mut select = conn.prepare_cached(
            "SELECT attempt, at, http_status, error, response, elapsed_ms, retry_in_ms
             FROM delivery_attempts WHERE delivery_id = ?1 ORDER BY attempt",
        )?;
        let rows = select.query_map([id], |row| {
            Ok(AttemptEntry {
                attempt: row.get(0)?,
                at: to_datetime(row.get(1)?),
                http_status: row.get(2)?,
                error: row.get(3)?,
                response: row.get(4)?,
                elapsed_ms: u64::try_from(row.get::<_, i64>(5)?).unwrap_or_default(),
                retry_in_ms: row.get::<_, Option<i64>>(6)?.map(|ms| u64::try_from(ms).unwrap_or_default()),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many deliveries are in each status: (pending, delivered, failed).
    pub fn delivery_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let conn = self.read()?;
        let count = |status: &str| -> Result<u64, StoreError> {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM deliveries WHERE status = ?1", [status], |row| row.get(0))?;
            Ok(u64::try_from(n).unwrap_or_default())
        };
        Ok((count("pending")?, count("delivered")?, count("failed")?))
    }
}

/// Retrying a delivery (through the writer, which tells the outbox worker).
impl Store {
    /// Makes a pending or failed delivery due now, with a fresh maximum age, and tells the worker.
    pub async fn retry_delivery(&self, id: i64, max_age_ms: i64) -> Result<DeliveryEntry, RetryError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Retry { id, max_age_ms, reply })?;
        rx.await.unwrap_or(Err(RetryError::Store(StoreError::WriterStopped)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `future` to its end on a runtime of its own, for tests that are not async.
    pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
    }

    #[test]
    fn a_second_process_is_refused_and_the_file_reopens_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deep").join(FILE_NAME);
        let first = Store::open(&path, Durability::Crash).expect("first open");
        let second = Store::open(&path, Durability::Crash).expect_err("second open must fail");
        assert!(matches!(second, StoreError::Locked { .. }), "{second}");
        assert!(second.to_string().contains("another CallBridge"), "{second}");
        drop(first);
        Store::open(&path, Durability::Crash).expect("reopen after the owner closed it");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            let conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "user_version", 99).expect("set version");
        }
        let err = Store::open(&path, Durability::Crash).expect_err("too new");
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn durability_sets_how_commits_are_flushed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (durability, expected) in [(Durability::Crash, 1), (Durability::PowerLoss, 2)] {
            let path = dir.path().join(format!("{durability:?}.sqlite3"));
            let store = Store::open(&path, durability).expect("open");
            let conn = store.conn();
            let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).expect("pragma");
            let journal: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("pragma");
            assert_eq!((synchronous, journal.as_str()), (expected, "wal"), "{durability:?}");
        }
        let config: StoreConfig = toml::from_str("durability = \"power-loss\"").expect("parse");
        assert_eq!(config.durability, Durability::PowerLoss);
        assert!(toml::from_str::<StoreConfig>("durability = \"never\"").is_err());
    }

    /// Turns a freshly created store back into one of schema `version` (1 or 2), as an older
    /// CallBridge left it.
    fn downgrade(conn: &Connection, version: i64) {
        conn.execute_batch(
            "DROP INDEX deliveries_lane;
             ALTER TABLE deliveries DROP COLUMN endpoint;
             CREATE INDEX deliveries_pending ON deliveries (status, call_id, id);",
        )
        .expect("back to schema 2");
        if version < 2 {
            conn.execute_batch("DROP INDEX deliveries_due;").expect("back to schema 1");
        }
        conn.pragma_update(None, "user_version", version).expect("set version");
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).expect(sql)
    }

    #[test]
    fn a_version_1_store_is_migrated_and_keeps_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            let store = Store::open(&path, Durability::Crash).expect("open");
            let conn = store.conn();
            downgrade(&conn, 1);
            conn.execute_batch(
                "INSERT INTO calls (id, started_at, updated_at, direction, remote_number, state, provider, call)
                 VALUES ('c1', 1, 1, 'out', '020', 'ended', 'simulator', '{}');",
            )
            .expect("a call");
        }
        let store = Store::open(&path, Durability::Crash).expect("migrate");
        let conn = store.conn();
        let version = count(&conn, "PRAGMA user_version");
        let calls = count(&conn, "SELECT COUNT(*) FROM calls");
        let indexes = count(&conn, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('deliveries_due', 'deliveries_lane')");
        assert_eq!((version, calls, indexes), (3, 1, 2));
    }

    #[test]
    fn a_version_2_store_gets_the_endpoint_of_every_delivery_that_may_still_be_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            let store = Store::open(&path, Durability::Crash).expect("open");
            let conn = store.conn();
            downgrade(&conn, 2);
            conn.execute_batch(
                "INSERT INTO deliveries (idempotency_key, call_id, event, rule_id, method, url, headers, status, created_at, expires_at, next_attempt_at)
                 VALUES ('c:incoming:a', 'c', 'incoming', 'a', 'GET', 'http://127.0.0.1:9/in?x=1', '[]', 'pending', 1, 9999999999999, 1),
                        ('c:incoming:b', 'c', 'incoming', 'b', 'GET', 'https://crm.example/in', '[]', 'failed', 1, 9999999999999, 1),
                        ('c:ended:b', 'c', 'ended', 'b', 'GET', 'https://crm.example/end', '[]', 'pending', 1, 9999999999999, 1),
                        ('d:incoming:b', 'd', 'incoming', 'b', 'GET', 'https://crm.example/in', '[]', 'delivered', 1, 9999999999999, 1);",
            )
            .expect("deliveries of an older CallBridge");
        }
        let store = Store::open(&path, Durability::Crash).expect("migrate");
        {
            let conn = store.conn();
            assert_eq!(count(&conn, "PRAGMA user_version"), 3);
            assert_eq!(count(&conn, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'deliveries_pending'"), 0, "the old index is gone");
            let endpoints: Vec<(String, String)> = conn
                .prepare("SELECT idempotency_key, endpoint FROM deliveries ORDER BY id")
                .expect("select")
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect();
            let expected = [
                ("c:incoming:a", "http://127.0.0.1:9"),
                ("c:incoming:b", "https://crm.example"),
                ("c:ended:b", "https://crm.example"),
                ("d:incoming:b", ""),
            ];
            assert_eq!(endpoints, expected.map(|(k, e)| (k.to_owned(), e.to_owned())));
        }
        // Both pending deliveries of call c head their own lane now: neither waits for the other.
        let due = store.due(now_ms(), |_, _| false, 10).expect("due");
        assert_eq!(due.iter().map(|d| d.delivery.idempotency_key.as_str()).collect::<Vec<_>>(), ["c:incoming:a", "c:ended:b"]);
    }

    #[test]
    fn history_days_is_validated() {
        let config = StoreConfig { history_days: 40_000, ..StoreConfig::default() };
        assert!(config.validate().is_err());
        assert!(StoreConfig::default().validate().is_ok());
    }
}
