#!/usr/bin/env bash
# Runs the tray app's end-to-end tests: builds callbridge-desktop, installs tauri-driver if missing,
# and runs tests/desktop, where each test starts its own Xvfb display, D-Bus session, tauri-driver
# (driving WebKitWebDriver) and the real app in a temporary home.
#   scripts/desktop-e2e.sh                 run the tests
#   scripts/desktop-e2e.sh --screenshots   also refresh the README's screenshots in docs/
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
if [ "${1:-}" = "--screenshots" ]; then
  export CALLBRIDGE_SCREENSHOTS="$PWD/docs"
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tauri-driver >/dev/null; then
  echo "Installing tauri-driver (WebDriver server for Tauri apps) from crates.io" >&2
  cargo install tauri-driver --locked
fi
cargo build -p callbridge-desktop
# WebKitWebDriver occasionally fails to attach to a freshly started webview (an infrastructure hiccup,
# not a CallBridge failure): nextest runs a failed test again, up to twice, and reports it as flaky.
# A test that fails three times fails the run.
if command -v cargo-nextest >/dev/null; then
  cargo nextest run -p callbridge-desktop-e2e --no-fail-fast --retries 2 --test-threads 1
else
  cargo test -p callbridge-desktop-e2e --no-fail-fast
fi
