#!/usr/bin/env bash
# Builds CallBridge in release and prints the benchmark table of issue #7 (markdown, on stdout; progress
# on stderr). Arguments go to callbridge-bench: `--only 1,3` for some figures, `--quick` for a brief run
# that checks the harness (scripts/test.sh runs that on the debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh bench

packages=(-p callbridge -p callbridge-bench)
# The desktop app is measured when its crate is in the workspace (CALLBRIDGE_BENCH_DESKTOP=0 skips it).
if [ -f src-tauri/Cargo.toml ] && [ "${CALLBRIDGE_BENCH_DESKTOP:-1}" != 0 ]; then
  packages+=(-p callbridge-desktop)
fi
cargo build --release "${packages[@]}"
# A private D-Bus session with an unlocked keyring, as the desktop app expects one.
exec scripts/with-keyring.sh target/release/callbridge-bench "$@"
