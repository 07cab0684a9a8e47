#!/usr/bin/env bash
# Builds and runs CallBridge, installing what it needs first. With a graphical session (DISPLAY or
# WAYLAND_DISPLAY) it starts the tray app; without one, the headless bridge. Both listen on
# http://localhost:5678 and use the built-in simulator when nothing is configured.
#   scripts/run.sh                     the tray app, or the headless bridge when there is no display
#   scripts/run.sh --headless [ARGS]   the headless bridge; ARGS go to `callbridge serve` (e.g. --port 5679)
#   scripts/run.sh --open settings     the tray app with the settings window open
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--headless" ] || { [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; }; then
  [ "${1:-}" = "--headless" ] && shift
  scripts/deps.sh run
  cargo build --release -p callbridge
  exec target/release/callbridge serve "$@"
fi
scripts/deps.sh desktop
cargo build --release -p callbridge-desktop
exec target/release/callbridge-desktop "$@"
