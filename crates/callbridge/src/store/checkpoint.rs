//! Checkpoints off the write path.
//!
//! In WAL mode every commit appends to the `-wal` file, and a checkpoint copies those pages back into
//! the database file and flushes it to the disk. SQLite does that by itself inside the commit that
//! crosses 1,000 pages — on the thread that is writing a call event, holding the store for the two
//! `fsync`s it takes. Here the store's connection only reports the WAL's size after each commit, and
//! a thread with a connection of its own runs a `PASSIVE` checkpoint when it has grown past
//! [`WAL_PAGES`]; writers go on appending meanwhile. The thread sleeps on a channel, so it costs
//! nothing at idle, and it ends when the store's connection is closed.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

use rusqlite::Connection;

/// The WAL size, in pages, at which a checkpoint is asked for: SQLite's own default.
const WAL_PAGES: i32 = 1_000;

/// Starts the checkpoint thread for the database at `path` and hooks it to `conn`, the store's
/// connection (which, from now on, no longer checkpoints by itself).
pub(super) fn start(conn: &mut Connection, path: &Path) -> Result<(), super::error::StoreError> {
    let own = Connection::open(path)?;
    // A checkpoint waits for readers and the writer only briefly; better late than failing.
    own.busy_timeout(Duration::from_secs(5))?;
    let (wake, woken) = sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || run(&own, &woken))
        .map_err(super::error::StoreError::CheckpointThread)?;
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
        if pages >= WAL_PAGES {
            ask(&wake);
        }
        Ok(())
    }))?;
    Ok(())
}

/// Asks for a checkpoint; one already asked for and not yet started covers this one too.
fn ask(wake: &SyncSender<()>) {
    let _ = wake.try_send(());
}

fn run(conn: &Connection, woken: &Receiver<()>) {
    while woken.recv().is_ok() {
        // (busy, pages in the WAL, pages checkpointed); a busy result just means "next time".
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "cannot checkpoint the store's write-ahead log; will try again after more writes");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::call::CallId;
    use crate::notify::Delivery;
    use crate::store::{Durability, Store, FILE_NAME};

    #[test]
    fn the_log_is_checkpointed_into_the_database_file_as_it_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let store = Store::open(&path, Durability::Crash).expect("open");
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default();
        let before = size();
        // About 2,400 pages of 4 KiB: past the checkpoint threshold twice.
        for i in 0..1_200 {
            let delivery = Delivery {
                rule_id: "r".into(),
                event: "incoming".into(),
                call_id: CallId::from(format!("c{i}")),
                method: "POST",
                url: "http://127.0.0.1:9/".into(),
                headers: Vec::new(),
                body: Some("x".repeat(8_000)),
                idempotency_key: format!("c{i}:incoming:r"),
            };
            store.enqueue(&[delivery], 86_400_000).expect("enqueue");
        }
        // Until a checkpoint copies them, committed pages live only in the -wal file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while size() < before + 4_000_000 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint: the database file is still {} bytes", size());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(store.delivery_counts().expect("counts").0, 1_200);
    }
}
