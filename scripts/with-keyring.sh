#!/usr/bin/env bash
# Runs a command inside a private D-Bus session whose Secret Service is a fresh, unlocked gnome-keyring
# with its files in a temporary directory: tests use the real OS keyring without touching the user's.
#   scripts/with-keyring.sh cargo test --workspace
set -euo pipefail

if [ -z "${CALLBRIDGE_KEYRING_SESSION:-}" ]; then
  command -v dbus-run-session >/dev/null || { echo "with-keyring: dbus-run-session is missing (apt-get install dbus)" >&2; exit 1; }
  command -v gnome-keyring-daemon >/dev/null || { echo "with-keyring: gnome-keyring-daemon is missing (apt-get install gnome-keyring)" >&2; exit 1; }
  export CALLBRIDGE_KEYRING_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi

keyring_home=$(mktemp -d)
trap 'kill "${GNOME_KEYRING_PID:-}" 2>/dev/null || true; rm -rf "$keyring_home"' EXIT
# --unlock creates the default "login" collection with this password and leaves it unlocked.
eval "$(printf 'callbridge-test' | XDG_DATA_HOME="$keyring_home" gnome-keyring-daemon --unlock --components=secrets | sed 's/^/export /')"
export CALLBRIDGE_TEST_KEYRING=1
"$@"
