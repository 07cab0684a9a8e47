#!/usr/bin/env bash
# Builds CallBridge in release and prints the benchmark table of docs/performance.md (markdown, on stdout; progress
# on stderr). Arguments go to callbridge-bench: `--only 1,3` for some figures, `--quick` for a brief run
# that checks the harness (scripts/test.sh runs that on the debug build).
#
# The desktop app and its `.deb` are built by the Tauri CLI (`cargo tauri build --bundles deb`, which
# builds the app in release once and packages it); the CLI is installed with cargo when missing. They
# are left out in quick mode, with `--only` figures that do not need them (1, 2), and with
# CALLBRIDGE_BENCH_DESKTOP=0.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh bench

# Whether the run measures the desktop app (figures 3, 4) or the .deb (5).
wants_desktop() {
  [ -f tauri.conf.json ] && [ "${CALLBRIDGE_BENCH_DESKTOP:-1}" != 0 ] || return 1
  local only="" arg prev=""
  for arg in "$@"; do
    case "$arg" in
      --quick) return 1 ;;
      --only=*) only=${arg#--only=} ;;
    esac
    [ "$prev" = --only ] && only=$arg
    prev=$arg
  done
  [ -z "$only" ] || [[ ",$only," =~ ,[345], ]]
}

cargo build --release -p callbridge -p callbridge-bench
if wants_desktop "$@"; then
  if ! cargo tauri --version >/dev/null 2>&1; then
    echo "Installing the Tauri CLI (cargo install tauri-cli), which builds the .deb" >&2
    cargo install tauri-cli --version "^2" --locked
  fi
  # The CLI finds the top-level tauri.conf.json; the app and the bundle land in target/release.
  cargo tauri build --bundles deb
fi
# A private D-Bus session with an unlocked keyring, as the desktop app expects one.
exec scripts/with-keyring.sh target/release/callbridge-bench "$@"
