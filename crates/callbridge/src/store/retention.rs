//! Retention: the history and finished deliveries older than `[store] history_days` are removed.

use rusqlite::Connection;

use super::error::StoreError;

/// Removes calls and finished deliveries last changed before `cutoff`.
pub(super) fn purge(conn: &Connection, cutoff: i64) -> Result<PurgeReport, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let calls = tx.execute("DELETE FROM calls WHERE updated_at < ?1", [cutoff])?;
    let deliveries = tx.execute("DELETE FROM deliveries WHERE status != 'pending' AND created_at < ?1", [cutoff])?;
    tx.commit()?;
    Ok(PurgeReport { calls, deliveries })
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub calls: usize,
    pub deliveries: usize,
}
