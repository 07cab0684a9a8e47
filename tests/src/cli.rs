//! Runs one-shot `callbridge` commands (`secret set`, `status`, …) as a user would, with the same
//! private HOME as a [`crate::bridge::Bridge`] and input on stdin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// `callbridge ARGS` in `dir` (its HOME and config directory), with `stdin` piped in. The process
/// inherits the D-Bus session, so it sees the same keyring as the test and the bridge.
pub fn callbridge(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(crate::bridge::binary())
        .args(args)
        .env("CALLBRIDGE_CONFIG", dir.join("callbridge.toml"))
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run callbridge {args:?}: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("callbridge finishes");
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
