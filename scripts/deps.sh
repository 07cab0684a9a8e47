#!/usr/bin/env bash
# Installs the Debian packages CallBridge needs for a purpose, skipping those already installed.
#   scripts/deps.sh run    — building and running the headless bridge
#   scripts/deps.sh test   — everything the test suite runs against (keyring, SIP, desktop under Xvfb)
#   scripts/deps.sh bench  — the benchmark (scripts/bench.sh): a D-Bus session, a keyring, Xvfb, strip
set -euo pipefail
purpose=${1:-run}

packages=(build-essential pkg-config)
case "$purpose" in
  run) ;;
  test) packages+=(dbus gnome-keyring libsecret-tools) ;;
  bench) packages+=(dbus gnome-keyring xvfb binutils) ;;
  *) echo "deps.sh: unknown purpose '$purpose' (run, test, bench)" >&2; exit 2 ;;
esac

if ! command -v cargo >/dev/null; then
  echo "CallBridge is built with Rust: install it with rustup (https://rustup.rs) and run this again." >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${missing[*]}" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
