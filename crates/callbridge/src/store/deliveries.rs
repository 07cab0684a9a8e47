//! The outbox and delivery log tables: every notification CallBridge owes a CRM, and every attempt.
//!
//! A delivery is written here when its call event happens ([`super::Write::Deliveries`], through the
//! store's writer), before anyone is told the event happened, so a crash afterwards cannot lose it.
//! The outbox worker ([`crate::notify::durable`]) hears of each one as it is committed, reads them all
//! at start (`pending`), and, when more are pending than it holds in memory, takes the due ones
//! from here ([`Store::due`]) — per [`Lane`] (one call's notifications to one endpoint, the CRM server
//! a rule's URL names) only the oldest pending one, which keeps each call's notifications to a CRM in
//! event order while rules that go to different endpoints never wait for each other. Each attempt's
//! outcome is recorded ([`super::Write::Finish`]). The same rows are the delivery log the API and the
//! Activity view show.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::error::StoreError;
use super::time::{now_ms, to_datetime};
use crate::call::CallId;
use crate::delivery::{Attempt, Delivery};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet; will be tried (again) at `next_attempt_at`.
    Pending,
    /// The CRM answered 2xx.
    Delivered,
    /// Given up: the CRM refused it (4xx), or it kept failing until its maximum age.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(StoreError::Corrupt(format!("unknown delivery status {other:?}"))),
        }
    }

    /// Parses the API's `status=` filter.
    pub fn from_query(s: &str) -> Option<Self> {
        DeliveryStatus::parse(s).ok()
    }
}

/// The deliveries of one call to one endpoint ([`Delivery::endpoint`]): they go out one at a time, in
/// the order they were queued, so a CRM never sees a call's `ended` before its `incoming`, even when
/// the two come from different rules. Different lanes do not wait for each other: a rule whose
/// endpoint is down or slow holds up nothing sent elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lane {
    pub call_id: CallId,
    pub endpoint: String,
}


/// A delivery the worker should attempt now.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    pub expires_at: i64,
    /// When it is to be attempted (ms since the epoch).
    pub next_attempt_at: i64,
    pub delivery: Delivery,
    /// Its lane, as the store keeps it.
    pub lane: Lane,
}

/// What the worker decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again in this many milliseconds.
    RetryIn(i64),
    /// Give up.
    GiveUp,
}

/// One delivery as the log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryEntry {
    pub id: i64,
    pub idempotency_key: String,
    pub call_id: CallId,
    pub event: String,
    pub rule_id: String,
    pub method: String,
    pub url: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// After this, failures are no longer retried.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The CRM's HTTP status on the last attempt, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One attempt as the log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptEntry {
    pub attempt: u32,
    pub at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the CRM's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    pub elapsed_ms: u64,
    /// The backoff chosen after this attempt, when it was retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

/// Why a manual retry was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no delivery with id {0}")]
    Unknown(i64),
    #[error("delivery {0} was already delivered")]
    AlreadyDelivered(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The pending deliveries due by `?1` that head their lane (no older delivery of the same call to the
/// same endpoint is still pending), longest due first. `INDEXED BY` pins the plan: without statistics
/// SQLite may prefer `deliveries_lane` and sort every pending row. The subquery is one seek in
/// `deliveries_lane` (status, call, endpoint, id).
const DUE: &str = "SELECT id, attempts, expires_at, idempotency_key, call_id, event, rule_id, method, url, headers, body, endpoint, next_attempt_at
     FROM deliveries d INDEXED BY deliveries_due
     WHERE status = 'pending' AND next_attempt_at <= ?1
       AND NOT EXISTS (SELECT 1 FROM deliveries e
                       WHERE e.status = 'pending' AND e.call_id = d.call_id AND e.endpoint = d.endpoint AND e.id < d.id)
     ORDER BY next_attempt_at, id";

/// The pending deliveries that head their lane, soonest due first.
const NEXT_DUE: &str = "SELECT call_id, endpoint, next_attempt_at
     FROM deliveries d INDEXED BY deliveries_due
     WHERE status = 'pending'
       AND NOT EXISTS (SELECT 1 FROM deliveries e
                       WHERE e.status = 'pending' AND e.call_id = d.call_id AND e.endpoint = d.endpoint AND e.id < d.id)
     ORDER BY next_attempt_at, id";

/// The columns [`due_from_row`] reads, in its order.
const DUE_COLUMNS: &str = "id, attempts, expires_at, idempotency_key, call_id, event, rule_id, method, url, headers, body, endpoint, next_attempt_at";

pub(super) const ENTRY_COLUMNS: &str = "id, idempotency_key, call_id, event, rule_id, method, url, status, attempts, created_at, \
     expires_at, next_attempt_at, last_attempt_at, last_http_status, last_error, finished_at";

/// Inserts `d` as pending, due now (`now`) and retried until `max_age_ms` after. Returns it as due,
/// or `None` when a delivery with its idempotency key is already stored (it is the same delivery).
pub(super) fn insert(conn: &Connection, d: &Delivery, now: i64, max_age_ms: i64) -> Result<Option<Due>, StoreError> {
    let headers = serde_json::to_string(&d.headers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let endpoint = d.endpoint();
    let expires_at = now.saturating_add(max_age_ms);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO deliveries (idempotency_key, call_id, event, rule_id, method, url, headers, body, status,
                                     created_at, expires_at, next_attempt_at, endpoint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?9, ?11)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )?
        .execute(params![d.idempotency_key, d.call_id.as_str(), d.event, d.rule_id, d.method, d.url, headers, d.body, now, expires_at, endpoint])?;
    if inserted == 0 {
        return Ok(None);
    }
    Ok(Some(Due {
        id: conn.last_insert_rowid(),
        attempts: 0,
        expires_at,
        next_attempt_at: now,
        delivery: d.clone(),
        lane: Lane { call_id: d.call_id.clone(), endpoint },
    }))
}

/// Records attempt number `attempt` of delivery `id` and what happens next.
pub(super) fn finish(conn: &Connection, id: i64, attempt: u32, at: i64, outcome: &Attempt, next: Next) -> Result<(), StoreError> {
    let retry_in = match next {
        Next::RetryIn(ms) => Some(ms),
        _ => None,
    };
    conn.prepare_cached(
        "INSERT OR REPLACE INTO delivery_attempts (delivery_id, attempt, at, http_status, error, response, elapsed_ms, retry_in_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        attempt,
        at,
        outcome.status,
        outcome.error,
        outcome.response,
        i64::try_from(outcome.elapsed_ms).unwrap_or(i64::MAX),
        retry_in
    ])?;
    let (status, next_at, finished_at) = match next {
        Next::Delivered => (DeliveryStatus::Delivered, at, Some(at)),
        Next::RetryIn(ms) => (DeliveryStatus::Pending, at.saturating_add(ms), None),
        Next::GiveUp => (DeliveryStatus::Failed, at, Some(at)),
    };
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, last_attempt_at = ?5,
                               last_http_status = ?6, last_error = ?7, finished_at = ?8
         WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), attempt, next_at, at, outcome.status, outcome.error, finished_at])?;
    Ok(())
}

/// Makes a pending or failed delivery due now, with a fresh maximum age.
pub(super) fn retry(conn: &Connection, id: i64, max_age_ms: i64) -> Result<DeliveryEntry, RetryError> {
    let now = now_ms();
    let status: Option<String> =
        conn.query_row("SELECT status FROM deliveries WHERE id = ?1", [id], |row| row.get(0)).optional().map_err(StoreError::from)?;
    match status.as_deref() {
        None => return Err(RetryError::Unknown(id)),
        Some("delivered") => return Err(RetryError::AlreadyDelivered(id)),
        Some(_) => {}
    }
    conn.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, expires_at = ?3, finished_at = NULL WHERE id = ?1",
        params![id, now, now.saturating_add(max_age_ms)],
    )
    .map_err(StoreError::from)?;
    entry(conn, id)?.ok_or(RetryError::Unknown(id))
}

/// Delivery `id` as due, if it is pending.
pub(super) fn pending_by_id(conn: &Connection, id: i64) -> Result<Option<Due>, StoreError> {
    let mut select = conn.prepare_cached(&format!("SELECT {DUE_COLUMNS} FROM deliveries WHERE id = ?1 AND status = 'pending'"))?;
    let mut rows = select.query([id])?;
    match rows.next()? {
        Some(row) => Ok(Some(due_from_row(row)??)),
        None => Ok(None),
    }
}

/// Every pending delivery in id order, or `None` when there are more than `limit`.
pub(super) fn pending(conn: &Connection, limit: usize) -> Result<Option<Vec<Due>>, StoreError> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending'", [], |row| row.get(0))?;
    if usize::try_from(count).unwrap_or(usize::MAX) > limit {
        return Ok(None);
    }
    let mut select = conn.prepare_cached(&format!("SELECT {DUE_COLUMNS} FROM deliveries WHERE status = 'pending' ORDER BY id"))?;
    let mut rows = select.query([])?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(due_from_row(row)??);
    }
    Ok(Some(all))
}

/// See [`Store::due`].
pub(super) fn due(conn: &Connection, now: i64, held: impl Fn(&str, &str) -> bool, limit: usize) -> Result<Vec<Due>, StoreError> {
    let mut due = Vec::new();
    if limit == 0 {
        return Ok(due);
    }
    let mut select = conn.prepare_cached(DUE)?;
    let mut rows = select.query([now])?;
    while let Some(row) = rows.next()? {
        // Held lanes head the walk under load: skip them before decoding the rest of the row.
        let call = row.get_ref(4)?.as_str().map_err(rusqlite::Error::from)?;
        let endpoint = row.get_ref(11)?.as_str().map_err(rusqlite::Error::from)?;
        if held(call, endpoint) {
            continue;
        }
        due.push(due_from_row(row)??);
        if due.len() == limit {
            break;
        }
    }
    Ok(due)
}

/// See [`Store::next_due_at`].
pub(super) fn next_due_at(conn: &Connection, held: impl Fn(&str, &str) -> bool) -> Result<Option<i64>, StoreError> {
    let mut select = conn.prepare_cached(NEXT_DUE)?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let call = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let endpoint = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        if !held(call, endpoint) {
            return Ok(Some(row.get(2)?));
        }
    }
    Ok(None)
}

pub(super) fn entry(conn: &Connection, id: i64) -> Result<Option<DeliveryEntry>, StoreError> {
    let entry = conn.query_row(&format!("SELECT {ENTRY_COLUMNS} FROM deliveries WHERE id = ?1"), [id], entry_from_row).optional()?;
    entry.transpose()
}


fn due_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Due, StoreError>> {
    let headers: String = row.get(9)?;
    let method: String = row.get(7)?;
    let headers = match serde_json::from_str::<Vec<(String, String)>>(&headers) {
        Ok(h) => h,
        Err(e) => return Ok(Err(StoreError::Corrupt(format!("delivery headers: {e}")))),
    };
    let call_id = CallId::from(row.get::<_, String>(4)?);
    Ok(Ok(Due {
        id: row.get(0)?,
        attempts: row.get(1)?,
        expires_at: row.get(2)?,
        next_attempt_at: row.get(12)?,
        lane: Lane { call_id: call_id.clone(), endpoint: row.get(11)? },
        delivery: Delivery {
            idempotency_key: row.get(3)?,
            call_id,
            event: row.get(5)?,
            rule_id: row.get(6)?,
            method: if method == "POST" { "POST" } else { "GET" },
            url: row.get(8)?,
            headers,
            body: row.get(10)?,
        },
    }))
}

pub(super) fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<Result<DeliveryEntry, StoreError>> {
    let status: String = row.get(7)?;
    let status = match DeliveryStatus::parse(&status) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(DeliveryEntry {
        id: row.get(0)?,
        idempotency_key: row.get(1)?,
        call_id: CallId::from(row.get::<_, String>(2)?),
        event: row.get(3)?,
        rule_id: row.get(4)?,
        method: row.get(5)?,
        url: row.get(6)?,
        status,
        attempts: row.get(8)?,
        created_at: to_datetime(row.get(9)?),
        expires_at: to_datetime(row.get(10)?),
        next_attempt_at: (status == DeliveryStatus::Pending).then(|| row.get(11).map(to_datetime)).transpose()?,
        last_attempt_at: row.get::<_, Option<i64>>(12)?.map(to_datetime),
        last_http_status: row.get(13)?,
        last_error: row.get(14)?,
        finished_at: row.get::<_, Option<i64>>(15)?.map(to_datetime),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn delivery(call: &str, event: &str) -> Delivery {
        Delivery {
            rule_id: format!("{event}-1"),
            event: event.into(),
            call_id: CallId::from(call),
            method: "POST",
            url: format!("http://127.0.0.1:9/{event}"),
            headers: vec![("X-Api-Key".into(), "k".into())],
            body: Some("{}".into()),
            idempotency_key: format!("{call}:{event}:{event}-1"),
        }
    }

    fn ok() -> Attempt {
        Attempt { status: Some(200), error: None, response: None, elapsed_ms: 3, permanent: false }
    }

    fn unavailable() -> Attempt {
        Attempt { status: Some(503), error: Some("the CRM answered 503".into()), response: None, elapsed_ms: 3, permanent: false }
    }

    const DAY: i64 = 86_400_000;

    /// Holds back nothing.
    fn free(_call: &str, _rule: &str) -> bool {
        false
    }

    /// Holds back every lane of these calls.
    fn busy<'a>(calls: &'a [&'a str]) -> impl Fn(&str, &str) -> bool + 'a {
        move |call, _rule| calls.contains(&call)
    }

    #[test]
    fn enqueued_deliveries_round_trip_and_repeat_keys_are_one_delivery() {
        let store = Store::in_memory();
        let d = delivery("c1", "incoming");
        store.enqueue(std::slice::from_ref(&d), DAY).expect("enqueue");
        store.enqueue(std::slice::from_ref(&d), DAY).expect("enqueue again");
        let due = store.due(now_ms(), free, 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].delivery, d);
        assert_eq!(due[0].attempts, 0);
    }

    #[test]
    fn only_the_oldest_pending_delivery_of_a_call_is_due() {
        let store = Store::in_memory();
        store
            .enqueue(&[delivery("a", "incoming"), delivery("a", "ended"), delivery("b", "outgoing")], DAY)
            .expect("enqueue");
        let now = now_ms();
        let keys = |due: Vec<Due>| due.into_iter().map(|d| d.delivery.idempotency_key).collect::<Vec<_>>();
        assert_eq!(keys(store.due(now, free, 10).expect("due")), ["a:incoming:incoming-1", "b:outgoing:outgoing-1"]);
        assert_eq!(keys(store.due(now, busy(&["a"]), 10).expect("due")), ["b:outgoing:outgoing-1"]);

        // The head failing and waiting for its retry holds back the rest of its call.
        let head = store.due(now, free, 1).expect("due").remove(0);
        store.finish_attempt(head.id, 1, now, &unavailable(), Next::RetryIn(60_000)).expect("finish");
        assert_eq!(keys(store.due(now, free, 10).expect("due")), ["b:outgoing:outgoing-1"]);
        assert!(store.next_due_at(free).expect("next").is_some_and(|at| at <= now));
        assert_eq!(store.next_due_at(busy(&["b"])).expect("next"), Some(now + 60_000));
        store.finish_attempt(head.id, 2, now, &ok(), Next::Delivered).expect("finish");
        assert_eq!(keys(store.due(now, free, 10).expect("due")), ["a:ended:ended-1", "b:outgoing:outgoing-1"]);
    }

    /// A delivery of `call`'s `event` for rule `rule`, to `url`.
    fn to(call: &str, event: &str, rule: &str, url: &str) -> Delivery {
        Delivery { rule_id: rule.into(), url: url.into(), idempotency_key: format!("{call}:{event}:{rule}"), ..delivery(call, event) }
    }

    #[test]
    fn a_rule_waiting_for_its_retry_holds_up_only_its_own_endpoint() {
        let store = Store::in_memory();
        let down = |call: &str, event: &str| to(call, event, &format!("down-{event}"), &format!("http://127.0.0.1:9/{event}"));
        let up = |call: &str, event: &str| to(call, event, &format!("up-{event}"), &format!("https://crm.example/{event}?c={call}"));
        store.enqueue(&[down("a", "incoming"), up("a", "incoming")], DAY).expect("enqueue");
        store.enqueue(&[down("a", "ended"), up("a", "ended")], DAY).expect("enqueue");
        store.enqueue(&[down("b", "incoming"), up("b", "incoming")], DAY).expect("enqueue");
        let now = now_ms();
        let keys = |due: &[Due]| due.iter().map(|d| d.delivery.idempotency_key.clone()).collect::<Vec<_>>();

        // Each endpoint's lane of each call has its head due: both rules of call a, both of call b.
        let due = store.due(now, free, 10).expect("due");
        assert_eq!(keys(&due), ["a:incoming:down-incoming", "a:incoming:up-incoming", "b:incoming:down-incoming", "b:incoming:up-incoming"]);
        assert_eq!(due[0].lane.endpoint, "http://127.0.0.1:9");
        assert_eq!(due[1].lane.endpoint, "https://crm.example");

        // The down endpoint fails and waits a minute for its retry; the working one answers.
        for d in &due {
            let (outcome, next) = if d.delivery.rule_id.starts_with("down") { (unavailable(), Next::RetryIn(60_000)) } else { (ok(), Next::Delivered) };
            store.finish_attempt(d.id, 1, now, &outcome, next).expect("finish");
        }
        // The working rule's next notification of call a is due at once; the failing rule's `ended`
        // still waits behind its `incoming`.
        assert_eq!(keys(&store.due(now, free, 10).expect("due")), ["a:ended:up-ended"]);
        assert!(store.next_due_at(free).expect("next").is_some_and(|at| at <= now));
        // Held back by the worker (its endpoint busy), nothing else is due before the retries.
        let crm_busy = |_: &str, endpoint: &str| endpoint == "https://crm.example";
        assert!(store.due(now, crm_busy, 10).expect("due").is_empty());
        assert_eq!(store.next_due_at(crm_busy).expect("next"), Some(now + 60_000));

        // Once the failing rule's `incoming` is through, its `ended` follows.
        let retry = store.due(now + 60_000, crm_busy, 10).expect("due");
        assert_eq!(keys(&retry), ["a:incoming:down-incoming", "b:incoming:down-incoming"]);
        store.finish_attempt(retry[0].id, 2, now, &ok(), Next::Delivered).expect("finish");
        assert_eq!(keys(&store.due(now, free, 10).expect("due")), ["a:ended:down-ended", "a:ended:up-ended"]);
    }

    #[test]
    fn two_rules_to_one_crm_keep_a_call_in_event_order() {
        let store = Store::in_memory();
        // The usual setup: one rule per event, all to the same CRM server (different paths).
        store
            .enqueue(&[to("a", "incoming", "incoming-1", "https://crm.example/in"), to("a", "ended", "ended-1", "https://crm.example:443/end")], DAY)
            .expect("enqueue");
        let now = now_ms();
        let due = store.due(now, free, 10).expect("due");
        assert_eq!(due.iter().map(|d| d.delivery.rule_id.as_str()).collect::<Vec<_>>(), ["incoming-1"]);
        store.finish_attempt(due[0].id, 1, now, &unavailable(), Next::RetryIn(60_000)).expect("finish");
        assert!(store.due(now, free, 10).expect("due").is_empty(), "the CRM must not see `ended` before `incoming`");
        store.finish_attempt(due[0].id, 2, now, &ok(), Next::Delivered).expect("finish");
        assert_eq!(store.due(now, free, 10).expect("due").len(), 1);
    }

    #[test]
    fn due_deliveries_come_longest_due_first_through_the_due_index() {
        let store = Store::in_memory();
        store.enqueue(&[delivery("a", "incoming"), delivery("b", "incoming"), delivery("c", "incoming")], DAY).expect("enqueue");
        let now = now_ms();
        let due = store.due(now, free, 10).expect("due");
        // a failed long ago and is due again; b only later: a comes first, b waits.
        store.finish_attempt(due[0].id, 1, now - 10_000, &unavailable(), Next::RetryIn(1_000)).expect("finish a");
        store.finish_attempt(due[1].id, 1, now, &unavailable(), Next::RetryIn(60_000)).expect("finish b");
        let keys = |due: Vec<Due>| due.into_iter().map(|d| d.delivery.call_id.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(keys(store.due(now, free, 10).expect("due")), ["a", "c"]);
        assert_eq!(keys(store.due(now, busy(&["a"]), 1).expect("due")), ["c"]);
        assert_eq!(store.next_due_at(busy(&["a", "c"])).expect("next"), Some(now + 60_000));
        assert_eq!(store.due(now, free, 0).expect("due").len(), 0);

        // Neither question reads the delivered rows or sorts: both walk the partial index in order.
        let conn = store.conn();
        for sql in [DUE, NEXT_DUE] {
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
            let zeros = rusqlite::params_from_iter(std::iter::repeat_n(0, plan.parameter_count()));
            let steps: Vec<String> = plan.query_map(zeros, |row| row.get::<_, String>(3)).expect("plan").map(|r| r.expect("step")).collect();
            assert!(steps.iter().any(|s| s.contains("USING INDEX deliveries_due")), "{steps:?}");
            // The lane check is one seek: a call's pending deliveries to the same endpoint.
            assert!(steps.iter().any(|s| s.contains("deliveries_lane (status=? AND call_id=? AND endpoint=? AND id<?)")), "{steps:?}");
            assert!(!steps.iter().any(|s| s.contains("TEMP B-TREE")), "{steps:?}");
        }
    }

    #[test]
    fn the_log_shows_attempts_and_a_failed_delivery_can_be_retried() {
        let store = Store::in_memory();
        store.enqueue(&[delivery("a", "incoming")], DAY).expect("enqueue");
        let now = now_ms();
        let d = store.due(now, free, 1).expect("due").remove(0);
        store.finish_attempt(d.id, 1, now, &unavailable(), Next::RetryIn(1_000)).expect("first");
        let refused = Attempt { status: Some(404), error: Some("the CRM answered 404".into()), response: Some("no".into()), elapsed_ms: 1, permanent: false };
        store.finish_attempt(d.id, 2, now + 1_000, &refused, Next::GiveUp).expect("second");

        let entry = store.delivery(d.id).expect("read").expect("exists");
        assert_eq!(entry.status, DeliveryStatus::Failed);
        assert_eq!((entry.attempts, entry.last_http_status), (2, Some(404)));
        assert!(entry.next_attempt_at.is_none() && entry.finished_at.is_some());
        let attempts = store.attempts(d.id).expect("attempts");
        assert_eq!(attempts.len(), 2);
        assert_eq!((attempts[0].http_status, attempts[0].retry_in_ms), (Some(503), Some(1_000)));
        assert_eq!((attempts[1].response.as_deref(), attempts[1].retry_in_ms), (Some("no"), None));
        assert_eq!(store.delivery_counts().expect("counts"), (0, 0, 1));

        let retry = |id| crate::store::tests::block_on(store.retry_delivery(id, DAY));
        let retried = retry(d.id).expect("retry");
        assert_eq!(retried.status, DeliveryStatus::Pending);
        assert_eq!(store.due(now_ms(), free, 10).expect("due").len(), 1);
        store.finish_attempt(d.id, 3, now_ms(), &ok(), Next::Delivered).expect("third");
        assert!(matches!(retry(d.id), Err(RetryError::AlreadyDelivered(_))));
        assert!(matches!(retry(999), Err(RetryError::Unknown(999))));
    }

    #[test]
    fn the_log_pages_newest_first_and_filters_by_status() {
        let store = Store::in_memory();
        let all: Vec<Delivery> = (0..5).map(|i| delivery(&format!("c{i}"), "incoming")).collect();
        store.enqueue(&all, DAY).expect("enqueue");
        let first = store.deliveries(None, None, 2).expect("page 1");
        assert_eq!(first.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(), ["c4", "c3"]);
        let second = store.deliveries(Some(first[1].id), None, 2).expect("page 2");
        assert_eq!(second.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(), ["c2", "c1"]);
        assert_eq!(store.deliveries(None, Some(DeliveryStatus::Delivered), 10).expect("none").len(), 0);
        assert_eq!(store.deliveries(None, Some(DeliveryStatus::Pending), 10).expect("all").len(), 5);
    }

    #[test]
    fn deliveries_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite3");
        {
            let store = Store::open(&path, crate::store::Durability::Crash).expect("open");
            store.enqueue(&[delivery("a", "incoming"), delivery("a", "ended")], DAY).expect("enqueue");
        }
        let store = Store::open(&path, crate::store::Durability::Crash).expect("reopen");
        assert_eq!(store.delivery_counts().expect("counts"), (2, 0, 0));
        assert_eq!(store.due(now_ms(), free, 10).expect("due")[0].delivery.headers, vec![("X-Api-Key".to_owned(), "k".to_owned())]);
    }
}
