//! The headless `callbridge` as the benchmark runs it: `callbridge serve --port N` on a config file
//! written for the figure being measured, in a private home.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::process::{free_port, Launch, Running};

/// TOML that switches the dial rate limit off (`[security] dials_per_minute = 0`), appended to the config
/// of the `/make` figure: the issue measures the listener and the engine, not the throttle. If the key
/// ever changes, the run fails with "HTTP 429" until it is changed here too.
pub const DIAL_RATE_LIMIT_OFF: &str = "[security]\ndials_per_minute = 0\n";

/// What a headless config holds beyond the port.
#[derive(Debug, Default, Clone)]
pub struct Setup {
    /// Simulator far end: ring, answer and hang up after these many ms (None: the defaults).
    pub far_end: Option<(u64, u64, u64)>,
    /// The dial rate limit is switched off ([`DIAL_RATE_LIMIT_OFF`]).
    pub no_rate_limit: bool,
    /// GET this URL template on `incoming` and `ended`.
    pub notify_url: Option<String>,
    /// Keep the store in a directory under this one (a tmpfs, to take the disk's `fsync` out).
    pub data_under: Option<PathBuf>,
}

impl Setup {
    pub fn toml(&self, port: u16) -> String {
        let mut t = format!("version = 1\n\n[listener]\nport = {port}\n");
        if let Some((ring, answer, hangup)) = self.far_end {
            t += &format!("\n[provider.simulator]\nring_after_ms = {ring}\nanswer_after_ms = {answer}\nhangup_after_ms = {hangup}\n");
        }
        if self.no_rate_limit && !DIAL_RATE_LIMIT_OFF.is_empty() {
            t += "\n";
            t += DIAL_RATE_LIMIT_OFF;
        }
        if let Some(url) = &self.notify_url {
            for event in ["incoming", "ended"] {
                t += &format!("\n[[notification]]\nevent = \"{event}\"\nurl = \"{url}\"\n");
            }
        }
        t
    }
}

/// Starts `binary serve` with `setup` and waits until it answers.
pub fn start(binary: &Path, setup: &Setup) -> Result<Running> {
    let port = free_port()?;
    let port_arg = port.to_string();
    let mut launch = Launch::new(binary, &["serve", "--port", &port_arg], port)?;
    let config = launch.write("callbridge.toml", &setup.toml(port))?;
    launch.env("CALLBRIDGE_CONFIG", config);
    if let Some(parent) = &setup.data_under {
        launch.data_under(parent)?;
    }
    launch.start("the headless callbridge")
}

/// Which notification outbox the engine used, judged by what it left in its home: a durable outbox
/// keeps a SQLite file there; the in-memory one leaves nothing.
pub fn outbox_kind(running: &Running) -> String {
    let mut dirs = vec![running.home.clone()];
    dirs.extend(running.data.clone());
    outbox_kind_in(&dirs)
}

/// [`outbox_kind`] for the program whose files are in `dirs`.
fn outbox_kind_in(dirs: &[PathBuf]) -> String {
    fn sqlite_files(dir: &Path, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                sqlite_files(&path, found);
            } else if starts_with(&path, b"SQLite format 3\0") {
                found.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            }
        }
    }
    fn starts_with(path: &Path, magic: &[u8]) -> bool {
        use std::io::Read;
        let mut head = vec![0; magic.len()];
        std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == magic
    }
    let mut found = Vec::new();
    for dir in dirs {
        sqlite_files(dir, &mut found);
    }
    if found.is_empty() {
        "in-memory outbox".into()
    } else {
        format!("durable outbox ({})", found.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_the_far_end_and_the_rules() {
        let setup = Setup { far_end: Some((1, 2, 1)), no_rate_limit: true, notify_url: Some("http://127.0.0.1:9/n?e=$event".into()), data_under: None };
        let toml = setup.toml(4242);
        assert!(toml.contains("port = 4242"));
        assert!(toml.contains("ring_after_ms = 1\nanswer_after_ms = 2\nhangup_after_ms = 1"));
        assert_eq!(toml.matches("[[notification]]").count(), 2);
        assert!(toml.contains("event = \"ended\"\nurl = \"http://127.0.0.1:9/n?e=$event\""));
    }

    #[test]
    fn a_sqlite_file_means_a_durable_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = [dir.path().to_owned()];
        assert_eq!(outbox_kind_in(&dirs), "in-memory outbox");
        std::fs::create_dir_all(dir.path().join("data/callbridge")).expect("mkdir");
        std::fs::write(dir.path().join("data/callbridge/store.db"), b"SQLite format 3\0rest").expect("write");
        assert_eq!(outbox_kind_in(&dirs), "durable outbox (store.db)");
    }
}
