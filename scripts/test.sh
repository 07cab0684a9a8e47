#!/usr/bin/env bash
# Runs the whole CallBridge test suite, as CI does. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

# The black-box tests run the built binaries: build them before the tests start.
cargo build --workspace --bins
# The benchmark harness, briefly, on the debug build: checks every measurement still works (its figures
# mean nothing here; scripts/bench.sh is the real run, on a release build).
scripts/with-keyring.sh target/debug/callbridge-bench --quick
# The real OS keyring (gnome-keyring in a private D-Bus session) backs the secret tests.
scripts/with-keyring.sh cargo test --workspace --no-fail-fast
