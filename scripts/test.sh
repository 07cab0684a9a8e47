#!/usr/bin/env bash
# Runs the whole CallBridge test suite, as CI does. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

# The black-box tests run the built binaries: build them before the tests start.
cargo build --workspace --bins
# The real OS keyring (gnome-keyring in a private D-Bus session) backs the secret tests. The desktop
# e2e tests run separately below (they bring their own display and session bus).
scripts/with-keyring.sh cargo test --workspace --no-fail-fast --exclude callbridge-desktop-e2e
# The tray app under Xvfb over WebDriver.
scripts/desktop-e2e.sh
