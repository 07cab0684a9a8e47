//! The call history: every call CallBridge saw, written again each time something happens to it.
//! Each row keeps the whole [`Call`] as JSON, so what the caller lookup found (name, company, CRM
//! record) is kept with it, and rows written before those fields existed still load.
//!
//! The tracker keeps the live calls in memory; this table keeps them all (failed dials included) for
//! the API, the tray's recent calls and the Activity view, until the retention period
//! (`[store] history_days`) has passed. Pages run newest first and are addressed by the `seq` of the
//! last call seen, which stays valid while new calls arrive.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::error::StoreError;
use crate::call::Call;

/// One page of history.
#[derive(Debug, Clone, Serialize)]
pub struct CallPage {
    pub calls: Vec<Call>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// Inserts `call` into the history, or updates it; `now` is when.
pub(super) fn record(conn: &Connection, call: &Call, now: i64) -> Result<(), StoreError> {
    let json = serde_json::to_string(call).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO calls (id, started_at, updated_at, direction, remote_number, state, disposition, provider, call)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, direction = excluded.direction,
             remote_number = excluded.remote_number, state = excluded.state, disposition = excluded.disposition,
             provider = excluded.provider, call = excluded.call",
    )?
    .execute(params![
        call.id.as_str(),
        call.started_at.timestamp_millis(),
        now,
        call.direction.as_str(),
        call.remote_number,
        call.state.as_str(),
        call.disposition.map(|d| d.as_str()),
        call.provider,
        json,
    ])?;
    Ok(())
}


pub(super) fn parse_call(json: &str) -> Result<Call, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("a call in the history: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallId;
    use crate::store::Store;
    use crate::call::{CallState, Direction, Disposition};

    #[test]
    fn calls_upsert_and_page_newest_first() {
        let store = Store::in_memory();
        let mut calls: Vec<Call> = (0..5).map(|i| Call::new(Direction::Out, format!("+4420794600{i:02}"), "simulator")).collect();
        for c in &calls {
            store.record_call(c).expect("record");
        }
        // An update keeps the call's place in the order.
        calls[1].state = CallState::Ended;
        calls[1].disposition = Some(Disposition::Failed);
        store.record_call(&calls[1]).expect("update");

        let page = store.calls_page(None, 2).expect("page 1");
        assert_eq!(page.calls, vec![calls[4].clone(), calls[3].clone()]);
        let page2 = store.calls_page(page.next_before, 2).expect("page 2");
        assert_eq!(page2.calls, vec![calls[2].clone(), calls[1].clone()]);
        let page3 = store.calls_page(page2.next_before, 2).expect("page 3");
        assert_eq!(page3.calls, vec![calls[0].clone()]);
        assert_eq!(page3.next_before, None);
        assert_eq!(store.call(&calls[1].id).expect("get"), Some(calls[1].clone()));
        assert_eq!(store.call(&CallId::from("nope")).expect("get"), None);
    }

    #[test]
    fn looked_up_fields_are_kept_and_old_records_without_them_still_load() {
        let store = Store::in_memory();
        let mut call = Call::new(Direction::In, "+442079460000", "simulator");
        store.record_call(&call).expect("record");
        call.remote_name = Some("Ada Lovelace".into());
        call.company = Some("Acme Corp".into());
        call.record_url = Some("https://crm.example/contacts/42".into());
        store.record_call(&call).expect("update");
        assert_eq!(store.call(&call.id).expect("get"), Some(call.clone()));
        // A row written before calls had these fields.
        let mut old = serde_json::to_value(Call::new(Direction::In, "+442079460001", "simulator")).expect("JSON");
        if let Some(fields) = old.as_object_mut() {
            fields.remove("company");
            fields.remove("record_url");
        }
        let parsed = parse_call(&old.to_string()).expect("old row loads");
        assert_eq!((parsed.company, parsed.record_url), (None, None));
    }

    #[test]
    fn retention_removes_old_calls_and_finished_deliveries_only() {
        let store = Store::in_memory();
        let old = Call::new(Direction::In, "+442079460000", "simulator");
        let new = Call::new(Direction::In, "+442079460001", "simulator");
        store.record_call(&old).expect("old");
        store.record_call(&new).expect("new");
        let delivery = crate::notify::Delivery {
            rule_id: "r".into(),
            event: "incoming".into(),
            call_id: old.id.clone(),
            method: "GET",
            url: "http://127.0.0.1:9/".into(),
            headers: vec![],
            body: None,
            idempotency_key: "k".into(),
        };
        store.enqueue(&[delivery], 86_400_000).expect("enqueue");
        {
            let conn = store.conn();
            let long_ago = crate::store::now_ms() - 40 * 86_400_000;
            conn.execute("UPDATE calls SET updated_at = ?1 WHERE id = ?2", params![long_ago, old.id.as_str()]).expect("age call");
            conn.execute("UPDATE deliveries SET created_at = ?1", [long_ago]).expect("age delivery");
        }
        // A pending delivery is kept whatever its age.
        let purge = |days| crate::store::tests::block_on(store.purge_older_than_days(days));
        let report = purge(30).expect("purge");
        assert_eq!((report.calls, report.deliveries), (1, 0));
        assert_eq!(store.calls_page(None, 10).expect("page").calls, vec![new.clone()]);
        store.conn().execute("UPDATE deliveries SET status = 'failed'", []).expect("fail it");
        assert_eq!(purge(30).expect("purge").deliveries, 1);
        assert_eq!(purge(0).expect("forever"), super::super::PurgeReport::default());
    }
}
