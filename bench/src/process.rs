//! The programs under test, each in its own process: the headless `callbridge`, the bare axum floor
//! (this binary's hidden `floor` command) and, when it is built, the desktop app.
//!
//! Each runs in a private temporary home (config, data and keyring paths all inside it), on a free
//! loopback port chosen beforehand, so that start-up can be timed from `exec` to the first answer of
//! `GET /health` without reading the program's output. Logs go to a file in that home; when a program
//! fails, the error carries the end of it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How long a program may take to answer `/health` before the run gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A free loopback port (free when asked; the program binds it a moment later).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// One `GET /health` over a fresh connection; true on a 200 answer.
pub fn healthy(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_nodelay(true);
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// A program under test, running until dropped (then killed).
#[derive(Debug)]
pub struct Running {
    child: Child,
    pub port: u16,
    /// From `exec` to the first 200 on `/health`.
    pub started_in: Duration,
    pub home: PathBuf,
    /// Where its data is when not in the home ([`Launch::data_under`]).
    pub data: Option<PathBuf>,
    log: PathBuf,
    _home: Option<tempfile::TempDir>,
    _data: Option<tempfile::TempDir>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The end of the program's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Errors if the program has exited.
    pub fn ensure_alive(&mut self, what: &str) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("{what} exited ({status}); its log ends:\n{}", self.log_tail());
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// How to start one program: the command, the port it will listen on, its private home.
#[derive(Debug)]
pub struct Launch {
    command: Command,
    port: u16,
    home: tempfile::TempDir,
    log: PathBuf,
    data: Option<tempfile::TempDir>,
}

impl Launch {
    /// `program args…` in a fresh private home, to listen on `port`. HOME and the XDG directories
    /// point inside the home, so the program finds no config, data or keyring of the real user.
    pub fn new(program: &Path, args: &[&str], port: u16) -> Result<Launch> {
        let home = tempfile::Builder::new().prefix("callbridge-bench-").tempdir().context("cannot create a temporary home")?;
        let log = home.path().join("program.log");
        let mut command = Command::new(program);
        command
            .args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .stdin(Stdio::null());
        Ok(Launch { command, port, home, log, data: None })
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.command.env(key, value);
        self
    }

    /// Keeps the program's data (its SQLite store) in a fresh directory under `parent` instead of the
    /// home, e.g. on a tmpfs where `fsync` costs nothing.
    pub fn data_under(&mut self, parent: &Path) -> Result<&mut Self> {
        let dir = tempfile::Builder::new().prefix("callbridge-bench-data-").tempdir_in(parent).with_context(|| format!("cannot create a directory in {}", parent.display()))?;
        self.command.env("XDG_DATA_HOME", dir.path());
        self.data = Some(dir);
        Ok(self)
    }

    /// Writes `text` to `relative` inside the home (creating directories), e.g. the config file.
    pub fn write(&self, relative: &str, text: &str) -> Result<PathBuf> {
        let path = self.home.path().join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Starts the program and waits until `/health` answers 200, timing that from `exec`.
    pub fn start(mut self, what: &str) -> Result<Running> {
        let log = std::fs::File::create(&self.log).context("cannot create the program's log file")?;
        self.command.stdout(log.try_clone()?).stderr(log);
        let started = Instant::now();
        let child = self.command.spawn().with_context(|| format!("cannot start {what} ({:?})", self.command.get_program()))?;
        let mut running =
            Running { child, port: self.port, started_in: Duration::ZERO, home: self.home.path().to_owned(), data: self.data.as_ref().map(|d| d.path().to_owned()), log: self.log, _home: Some(self.home), _data: self.data };
        loop {
            if healthy(running.port) {
                running.started_in = started.elapsed();
                return Ok(running);
            }
            running.ensure_alive(what)?;
            if started.elapsed() > START_TIMEOUT {
                return Err(anyhow!("{what} did not answer GET /health on port {} within {START_TIMEOUT:?}; its log ends:\n{}", running.port, running.log_tail()));
            }
            std::thread::sleep(Duration::from_micros(250));
        }
    }
}
