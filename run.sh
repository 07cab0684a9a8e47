#!/usr/bin/env bash
# Builds and runs CallBridge on this machine. With nothing configured it uses the built-in simulator
# and listens on http://localhost:5678. Extra arguments go to `callbridge serve` (e.g. --port 5679).
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh run
cargo build --release -p callbridge
exec target/release/callbridge serve "$@"
