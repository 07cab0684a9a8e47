//! Runs the built `callbridge` binary as a user would: `callbridge serve --config FILE --port 0`, in a
//! private temporary home, and talks to it over loopback.

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
        let mut cmd = Command::new(binary());
        cmd.arg("serve").arg("--config").arg(&config_path).args(serve_args);
        cmd.env("HOME", dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("CALLBRIDGE_LOG", "info,callbridge=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let logs = std::sync::Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[callbridge] {line}");
                    if let Ok(mut l) = logs.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
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
        Bridge { child: Some(child), url, port, dir: dir.to_owned(), config_path, logs, _home: None }
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

    /// Asks the process to stop (SIGTERM on Unix) and waits for it; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        #[cfg(unix)]
        {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        }
        #[cfg(not(unix))]
        {
            let _ = child.kill();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        false
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Stores `value` in the OS keyring under `name` with `callbridge secret set`, as a user would. The
/// tests run inside `scripts/with-keyring.sh` (a private, unlocked gnome-keyring), which sets
/// `CALLBRIDGE_TEST_KEYRING`.
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
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .arg("--config")
        .arg(dir.join("callbridge.toml"))
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .stdin(Stdio::null());
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
