//! Why the store could not be opened or used: [`StoreError`], shared by every part of the store.

use std::path::PathBuf;

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no data directory is known for this user; set [store] path in the config or pass --store PATH")]
    NoDataDir,
    #[error("cannot create the directory for the store {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("the store {path} is in use by another CallBridge; stop that one first (only one may send its notifications)")]
    Locked { path: PathBuf },
    #[error("cannot lock {path}, which keeps a second CallBridge off the store: {source}")]
    LockFile { path: PathBuf, source: std::io::Error },
    #[error("the store {path} was written by a newer CallBridge (schema {found}); this one reads schema {reads}")]
    TooNew { path: PathBuf, found: i64, reads: i64 },
    #[error("cannot open the store {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("the store failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store holds a record it cannot read: {0}")]
    Corrupt(String),
    #[error("cannot start the store's checkpoint thread: {0}")]
    CheckpointThread(std::io::Error),
    #[error("cannot start the store's writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error("could not save to the store: {0}")]
    NotSaved(String),
    #[error("the store's writer has stopped; nothing more can be saved until CallBridge restarts")]
    WriterStopped,
}
