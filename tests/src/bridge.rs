//! Runs the built `callbridge` binary as a user would: `callbridge serve --config FILE --port 0`, in a
//! private temporary home, and talks to it over loopback.
//!
//! The binary under test may be the Windows build, run under wine: `scripts/windows.sh` sets
//! `CALLBRIDGE_BIN` to `callbridge.exe` and `CALLBRIDGE_WRAPPER=wine`. Everything that starts it goes
//! through [`command`] and [`private_dirs`], so every test runs against either build unchanged; a test
//! that cannot run against the Windows build says why with [`unsupported_on_windows`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The built binary: `$CALLBRIDGE_BIN`, else `callbridge` next to the test executable's directory
/// (`target/debug/callbridge`). `scripts/test.sh` builds it before the tests run.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CALLBRIDGE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/test-xxxx → target/debug/callbridge
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("callbridge{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is missing: build it first with `cargo build -p callbridge` (scripts/test.sh does)", bin.display());
    bin
}

/// The program under test, ready for arguments: [`binary`], run by `$CALLBRIDGE_WRAPPER` when that is
/// set (words split on spaces, e.g. `wine`: a Windows build under wine).
pub fn command() -> Command {
    wrapped(binary())
}

/// [`command`] as a line for `sh -c`: the wrapper's words, then the binary's path in single quotes.
pub fn shell_command() -> String {
    let wrapper = std::env::var("CALLBRIDGE_WRAPPER").unwrap_or_default();
    let quoted = format!("'{}'", binary().display().to_string().replace('\'', "'\\''"));
    wrapper.split_whitespace().chain([quoted.as_str()]).collect::<Vec<_>>().join(" ")
}

/// `program` behind `$CALLBRIDGE_WRAPPER`, if any.
fn wrapped(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let wrapper = std::env::var("CALLBRIDGE_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    match words.next() {
        Some(runner) => {
            let mut cmd = Command::new(runner);
            cmd.args(words).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// Whether the binary under test is a Windows build (`callbridge.exe`, run under wine on Linux).
pub fn is_windows_build() -> bool {
    binary().extension().is_some_and(|e| e.eq_ignore_ascii_case("exe"))
}

/// Keeps `cmd` off the real user's files: its config, data and home in `dir`. A Unix build finds them
/// through HOME and the XDG directories. A Windows build ignores those (its config and data live under
/// `%APPDATA%`): the harness passes `--config` itself, and here the store file goes in `CALLBRIDGE_STORE`
/// (`callbridge serve --store`), at the same place XDG_DATA_HOME would put it
/// (`dir/data/callbridge/callbridge.sqlite3`). Call it before adding a test's own environment, so that a
/// test setting `CALLBRIDGE_STORE` wins.
pub fn private_dirs<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    cmd.env("HOME", dir).env("XDG_CONFIG_HOME", dir.join("config")).env("XDG_DATA_HOME", dir.join("data"));
    if is_windows_build() {
        cmd.env("CALLBRIDGE_STORE", dir.join("data").join("callbridge").join("callbridge.sqlite3"));
    }
    cmd
}

/// For a test that cannot run against the Windows build: when that is the build under test, records
/// the test and `reason` in the file `$CALLBRIDGE_UNSUPPORTED_LOG` (`scripts/windows.sh` lists them in
/// its tally, apart from the tests that passed), prints them, and returns true: the test returns at
/// once. Against a Unix build it returns false and the test runs.
pub fn unsupported_on_windows(reason: &str) -> bool {
    if !is_windows_build() {
        return false;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    eprintln!("not run against the Windows build: {test}: {reason}");
    if let Some(log) = std::env::var_os("CALLBRIDGE_UNSUPPORTED_LOG") {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| writeln!(f, "{test}: {reason}"));
        assert!(written.is_ok(), "cannot record the unsupported test in {}: {written:?}", PathBuf::from(log).display());
    }
    true
}

/// The secret the OS keyring holds for CallBridge under `entry`, read with the platform's own tool, not
/// through CallBridge: `secret-tool` (libsecret-tools) on Linux; for the Windows build, the Credential
/// Manager read by `credread.exe` (tests/windows/credread.c, built by `scripts/windows.sh`, which sets
/// `CALLBRIDGE_CREDREAD`) under the same wrapper. `None` when the keyring has no such secret.
pub fn keyring_lookup(entry: &str) -> Option<String> {
    let out = if is_windows_build() {
        let tool = std::env::var_os("CALLBRIDGE_CREDREAD").expect("CALLBRIDGE_CREDREAD names credread.exe (scripts/windows.sh sets it)");
        // keyring's Windows store names a generic credential `USER.SERVICE`.
        wrapped(tool).arg(format!("{entry}.CallBridge")).output().expect("credread.exe runs")
    } else {
        Command::new("secret-tool")
            .args(["lookup", "service", "CallBridge", "username", entry])
            .output()
            .expect("secret-tool runs (apt-get install libsecret-tools; scripts/deps.sh test does)")
    };
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running `callbridge serve`.
#[derive(Debug)]
pub struct Bridge {
    child: Option<Child>,
    /// `http://localhost:PORT`
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    /// Everything the process wrote to stderr (its logs), collected in the background.
    logs: std::sync::Arc<std::sync::Mutex<String>>,
    /// The thread collecting [`Self::logs`]; it ends when the process's stderr closes.
    log_reader: Option<std::thread::JoinHandle<()>>,
    _home: Option<tempfile::TempDir>,
}

impl Bridge {
    /// Writes `config` to a fresh directory and starts the bridge on it with a free port.
    pub fn start(config: &str) -> Bridge {
        let home = tempfile::tempdir().expect("tempdir");
        let dir = home.path().to_owned();
        std::fs::write(dir.join("callbridge.toml"), config).expect("write config");
        let mut bridge = Bridge::start_in(&dir, &[]);
        bridge._home = Some(home);
        bridge
    }

    /// Starts the bridge on `dir/callbridge.toml` (which may not exist) on a free port, with `extra_env`.
    /// The directory doubles as the process's HOME and XDG directories, so nothing of the real user's
    /// is touched.
    pub fn start_in(dir: &Path, extra_env: &[(&str, &str)]) -> Bridge {
        Bridge::launch(dir, &["--port", "0"], extra_env)
    }

    /// Like [`Self::start_in`] with `serve`'s arguments given (none: the configured port).
    pub fn launch(dir: &Path, serve_args: &[&str], extra_env: &[(&str, &str)]) -> Bridge {
        let config_path = dir.join("callbridge.toml");
        let mut cmd = command();
        cmd.arg("serve").arg("--config").arg(&config_path).args(serve_args);
        private_dirs(&mut cmd, dir)
            .env("CALLBRIDGE_LOG", "info,callbridge=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut log_reader = None;
        if let Some(stderr) = child.stderr.take() {
            let logs = std::sync::Arc::clone(&logs);
            log_reader = Some(std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[callbridge] {line}");
                    if let Ok(mut l) = logs.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            }));
        }
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        // The first line says where it listens; if the process dies instead, lines() ends.
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("CallBridge is listening on ") {
                url = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        let Some(url) = url else {
            let status = child.wait().ok();
            panic!("callbridge exited before listening ({status:?}); logs:\n{}", logs.lock().map(|l| l.clone()).unwrap_or_default());
        };
        let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in URL");
        Bridge { child: Some(child), url, port, dir: dir.to_owned(), config_path, logs, log_reader, _home: None }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `GET {url}{path}`: status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        request(reqwest::Client::new().get(format!("{}{path}", self.url))).await
    }

    /// `POST {url}{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        request(reqwest::Client::new().post(format!("{}{path}", self.url)).json(&body)).await
    }

    /// The listener token, as `callbridge token show` prints it (created if there is none yet).
    pub fn token(&self) -> String {
        let out = run_cli(&self.dir, &["token", "show"], &[]);
        assert!(out.status.success(), "`callbridge token show` failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Kills the process with SIGKILL (no clean shutdown), leaving its files behind.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to stop and waits for it; returns whether it exited cleanly. On Unix that is
    /// SIGTERM; a Windows build gets Ctrl-C instead (Windows has no SIGTERM), which wine delivers to the
    /// program as `CTRL_C_EVENT` when its process gets SIGINT.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        #[cfg(unix)]
        {
            let signal = if is_windows_build() { "-INT" } else { "-TERM" };
            let _ = Command::new("kill").arg(signal).arg(child.id().to_string()).status();
        }
        #[cfg(not(unix))]
        {
            let _ = child.kill();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.read_last_logs();
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        false
    }

    /// Once the process has exited, waits (a few seconds at most) until the last lines it wrote to
    /// stderr are in [`Self::logs`]: the reader thread may still be behind the exit.
    fn read_last_logs(&mut self) {
        let Some(reader) = self.log_reader.take() else { return };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !reader.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Stores `value` in the OS keyring under `name` with `callbridge secret set`, as a user would. The
/// tests run inside `scripts/with-keyring.sh` (a private, unlocked gnome-keyring), which sets
/// `CALLBRIDGE_TEST_KEYRING`; against the Windows build, `scripts/windows.sh` sets it for the Credential
/// Manager of its private wine prefix.
pub fn store_secret(name: &str, value: &str) {
    assert!(
        std::env::var_os("CALLBRIDGE_TEST_KEYRING").is_some(),
        "this test needs the OS keyring: run it through scripts/with-keyring.sh (scripts/test.sh does)"
    );
    let home = tempfile::tempdir().expect("tempdir");
    let out = crate::cli::callbridge(home.path(), &["secret", "set", name], value);
    assert!(out.success, "callbridge secret set {name} failed: {}", out.stderr);
}

/// Runs `callbridge ARGS --config dir/callbridge.toml` to completion with the same private HOME and
/// XDG directories as [`Bridge::start_in`], plus `extra_env`. A process still running after 30 s is
/// killed (its output so far is returned, with a failed status).
pub fn run_cli(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = command();
    cmd.args(args).arg("--config").arg(dir.join("callbridge.toml"));
    private_dirs(&mut cmd, dir).stdin(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    child.wait_with_output().expect("callbridge output")
}

/// Sends a request and returns the status and the JSON body (`null` if the body is not JSON).
pub async fn request(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let response = builder.timeout(Duration::from_secs(30)).send().await.expect("CallBridge answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
