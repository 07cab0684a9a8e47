#!/usr/bin/env bash
# Starts CallBridge the way this machine can show it: the tray app when there is a graphical session
# (DISPLAY or WAYLAND_DISPLAY), else the headless bridge (./run.sh). Installs what it needs first.
# Extra arguments go to the program (e.g. --open settings for the tray app).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No graphical session: starting the headless bridge (settings at http://localhost:5678/ui/)." >&2
  exec ./run.sh "$@"
fi
scripts/deps.sh desktop
cargo build --release -p callbridge-desktop
exec target/release/callbridge-desktop "$@"
