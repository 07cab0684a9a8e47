//! Runs one-shot `callbridge` commands (`secret set`, `status`, …) as a user would, with the same
//! private HOME as a [`crate::bridge::Bridge`] and input on stdin.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

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
    let mut cmd = crate::bridge::command();
    cmd.args(args).env("CALLBRIDGE_CONFIG", dir.join("callbridge.toml"));
    let mut child = crate::bridge::private_dirs(&mut cmd, dir)
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
