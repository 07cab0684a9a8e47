#!/usr/bin/env bash
# Installs the Debian packages CallBridge needs for a purpose, skipping those already installed.
#   scripts/deps.sh run    — building and running the headless bridge
#   scripts/deps.sh desktop — building and running the tray app (WebKitGTK, appindicator, xdg-utils)
#   scripts/deps.sh test   — everything the test suite runs against (keyring, SIP, desktop under Xvfb, a Python venv for schemathesis)
#   scripts/deps.sh bench  — the benchmark (scripts/bench.sh): the desktop build, a D-Bus session, a keyring, Xvfb, strip
#                            (the .deb needs nothing more: the Tauri CLI writes the archive itself)
#   scripts/deps.sh windows — the Windows build on Debian (scripts/windows.sh): the mingw-w64 cross
#                            toolchain (its windres embeds the icon and version), wine to run the tests
#                            (Xvfb for the tray app), nsis for the installer, zip and icoutils to pack
#                            and check the package
set -euo pipefail
purpose=${1:-run}

packages=(build-essential pkg-config)
# The tray app (src-tauri): WebKitGTK webviews, the tray (appindicator), icons, the global shortcut
# (libxdo), TLS, and xdg-utils/desktop-file-utils to open the CRM and register tel:/callto: links.
desktop=(libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
         xdg-utils desktop-file-utils)
# The Windows target itself is added with rustup by scripts/windows.sh.
windows=(gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine wine64 nsis zip unzip icoutils python3 curl xvfb xauth)
case "$purpose" in
  run) ;;
  desktop) packages+=("${desktop[@]}") ;;
  # Desktop e2e: the app under Xvfb, driven by tauri-driver through WebKitWebDriver; curl for the
  # documentation's commands (tests/tests/docs_commands.rs).
  test) packages+=(dbus gnome-keyring libsecret-tools baresip-core sip-tester curl "${desktop[@]}" xvfb xauth xdotool webkit2gtk-driver python3 python3-venv "${windows[@]}") ;;
  windows) packages+=("${windows[@]}") ;;
  bench) packages+=(dbus gnome-keyring xvfb binutils python3 "${desktop[@]}") ;;
  *) echo "deps.sh: unknown purpose '$purpose' (run, desktop, test, bench, windows)" >&2; exit 2 ;;
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
