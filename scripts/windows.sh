#!/usr/bin/env bash
# CallBridge for Windows, built on Debian: cross-compiled for x86_64-pc-windows-gnu with mingw-w64, the
# engine's black-box tests run against callbridge.exe under wine, and the package (a portable zip and
# an NSIS installer) built with makensis and installed, checked and uninstalled under wine.
#
#   scripts/windows.sh build     debug build of callbridge.exe and callbridge-desktop.exe; checks that
#                                the desktop .exe carries its icon and version
#   scripts/windows.sh test      build, then the black-box suites against callbridge.exe under wine,
#                                and the %APPDATA% paths
#   scripts/windows.sh package   release build, then target/windows/CallBridge-VERSION-windows-x64.zip
#                                and CallBridge-VERSION-windows-x64-setup.exe, checked under wine
#                                (PROFILE=debug packages the debug build: quicker, for trying the package)
#   scripts/windows.sh ci        what scripts/test.sh runs: test, then the package from the debug build
#                                (PROFILE=release to package the release build instead), checked
#
# Wine runs in a private prefix (target/windows/wine-prefix), created on first use; nothing of the
# user's own wine is touched. Needs: scripts/deps.sh windows (mingw-w64, wine, nsis, zip, icoutils).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

triple=x86_64-pc-windows-gnu
mode=${1:-test}
case "$mode" in
  build|test|package|ci) ;;
  *) echo "windows.sh: unknown command '$mode' (build, test, package, ci)" >&2; exit 2 ;;
esac

scripts/deps.sh windows
export PATH="$HOME/.cargo/bin:$PATH"
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out="$target_dir/windows"
mkdir -p "$out"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)

# Wine: a private prefix, no X display (nothing may open a window), no debug chatter, no offer to
# install Mono or Gecko (CallBridge needs neither).
export WINEPREFIX="$out/wine-prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
wine_user=$(id -un)

stop_wine() { wineserver -k 2>/dev/null || true; }

fail() {
  echo "windows.sh: $*" >&2
  exit 1
}

# --- build -----------------------------------------------------------------------------------------

# Both programs in one cargo invocation, so their dependencies are built once with the same features.
build() {
  local profile=$1 flag=()
  [ "$profile" = release ] && flag=(--release)
  echo "== cargo build --target $triple ${flag[*]} -p callbridge -p callbridge-desktop" >&2
  cargo build --target "$triple" "${flag[@]}" -p callbridge -p callbridge-desktop
  local dir="$target_dir/$triple/$profile"
  for f in callbridge.exe callbridge-desktop.exe WebView2Loader.dll; do
    [ -f "$dir/$f" ] || fail "$dir/$f was not built"
  done
  check_resources "$dir/callbridge-desktop.exe" "$profile"
}

# The desktop .exe carries the app icon and its version (tauri-build compiles them with windres), and
# a release build is a GUI program: Windows opens no console window for it.
check_resources() {
  local exe=$1 profile=$2 listing
  listing=$(wrestool -l "$exe")
  grep -q -- '--type=14 ' <<<"$listing" || fail "$exe has no icon group resource: $listing"
  grep -q -- '--type=3 ' <<<"$listing" || fail "$exe has no icon resource: $listing"
  grep -q -- '--type=16 ' <<<"$listing" || fail "$exe has no version resource: $listing"
  # The version resource holds its strings in UTF-16: dropping the NUL bytes leaves key and value
  # side by side ("ProductVersion0.1.0").
  local info
  info=$(wrestool -x --raw --type=16 "$exe" | tr -d '\0')
  grep -aq "ProductNameCallBridge" <<<"$info" && grep -aq "ProductVersion$version" <<<"$info" \
    || fail "$exe: the version resource does not name CallBridge $version"
  local subsystem
  subsystem=$(x86_64-w64-mingw32-objdump -p "$exe" | awk '/^Subsystem/ { print $2 }')
  if [ "$profile" = release ]; then
    [ "$subsystem" = 00000002 ] || fail "$exe is not a GUI program (subsystem $subsystem): it would open a console window"
  fi
  echo "$exe: icon and version $version embedded; subsystem $subsystem ($([ "$subsystem" = 00000002 ] && echo GUI || echo console))" >&2
}

# --- wine ------------------------------------------------------------------------------------------

# Test fixtures, never shipped: the bcryptprimitives.dll Windows 10 and 11 have in System32 and wine 8
# lacks, which Rust's std needs (tests/windows/bcryptprimitives.c), put in the private prefix's
# System32 where Windows has it; and credread.exe, which reads the Credential Manager from outside.
prepare_wine() {
  local profile=$1 fixtures="$out/fixtures"
  mkdir -p "$fixtures"
  x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -o "$fixtures/bcryptprimitives.dll" tests/windows/bcryptprimitives.c -ladvapi32
  x86_64-w64-mingw32-gcc -municode -O2 -Wall -Werror -o "$fixtures/credread.exe" tests/windows/credread.c -ladvapi32
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "== creating the wine prefix $WINEPREFIX" >&2
    wineboot -i >/dev/null 2>&1 || fail "wineboot -i failed for $WINEPREFIX"
  fi
  trap stop_wine EXIT
  # Replaced by a rename, never rewritten in place: a wine process may have the old one mapped.
  local dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
  if ! cmp -s "$fixtures/bcryptprimitives.dll" "$dll"; then
    cp "$fixtures/bcryptprimitives.dll" "$dll.new" && mv -f "$dll.new" "$dll"
  fi
  exe="$target_dir/$triple/$profile/callbridge.exe"
  credread="$fixtures/credread.exe"
  wine "$exe" --version >/dev/null || fail "callbridge.exe does not start under wine"
}

# The Windows path wine prints, as a Unix path without symbolic links (wine goes through
# $WINEPREFIX/dosdevices/c:, a link to drive_c).
unix_path() { realpath -m "$(winepath -u "$1" 2>/dev/null | tr -d '\r')"; }

# Config and data live under %APPDATA% (the roaming profile), and `config path` says where.
check_paths() {
  local appdata config store log pid
  appdata=$(realpath -m "$WINEPREFIX/drive_c/users/$wine_user/AppData/Roaming")
  config=$(wine "$exe" config path | tr -d '\r')
  echo "callbridge.exe config path: $config" >&2
  case "$(unix_path "$config")" in
    "$appdata"/callbridge/CallBridge/config/callbridge.toml) ;;
    *) fail "config path $config is not %APPDATA%\\callbridge\\CallBridge\\config\\callbridge.toml ($appdata)" ;;
  esac
  # serve with no --config and no --store: the store goes to %APPDATA% too, and is created there.
  log=$(mktemp)
  wine "$exe" serve --port 0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q '^Store:' "$log" && break; sleep 0.2; done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || true
  store=$(sed -n 's/^Store: //p' "$log" | tr -d '\r')
  [ -n "$store" ] || fail "serve did not say where its store is: $(cat "$log")"
  echo "callbridge.exe store: $store" >&2
  [ "$(unix_path "$store")" = "$appdata/callbridge/CallBridge/data/callbridge.sqlite3" ] || fail "the store $store is not under %APPDATA%\\callbridge\\CallBridge\\data"
  [ -f "$appdata/callbridge/CallBridge/data/callbridge.sqlite3" ] || fail "serve did not create its store under %APPDATA%"
  grep -q 'shutting down' "$log" || fail "callbridge.exe did not shut down cleanly on Ctrl-C: $(cat "$log")"
  rm -f "$log"
}

# The tray app starts under wine on an X display (Xvfb): the engine runs in it and its listener answers,
# the global shortcut is registered, and at start it registers itself for tel: and callto: for this
# user (tauri-plugin-deep-link). Its windows are not opened: they are Microsoft Edge WebView2, which
# wine does not have.
check_desktop() {
  local profile=$1 app dir port log pid scheme cmd expected
  app="$target_dir/$triple/$profile/callbridge-desktop.exe"
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf '[listener]\nport = %s\n' "$port" >"$dir/callbridge.toml"
  log="$dir/desktop.log"
  for scheme in tel callto; do wine reg delete "HKCU\\Software\\Classes\\$scheme" /f >/dev/null 2>&1 || true; done
  # Every wine program of a session shares one desktop window, made by the first that needs it; one
  # made without an X display cannot hold the app's windows ("Invalid window handle"). So the session
  # that runs the app, and every wine command beside it, sees the same Xvfb display: the display-less
  # session of the commands above is ended first, and this one after.
  wineserver -k 2>/dev/null || true
  wineserver -w
  local xvfb display_file="$dir/display"
  Xvfb -displayfd 3 -nolisten tcp -screen 0 1280x800x24 3>"$display_file" 2>/dev/null &
  xvfb=$!
  for _ in $(seq 50); do [ -s "$display_file" ] && break; sleep 0.1; done
  [ -s "$display_file" ] || fail "Xvfb did not start"
  export DISPLAY=":$(cat "$display_file")"
  wine "$app" --config "$dir/callbridge.toml" >"$log" 2>&1 &
  pid=$!
  expected="\"$(winepath -w "$app" 2>/dev/null | tr -d '\r')\" \"%1\""
  local up="" shortcut="" registered=()
  for _ in $(seq 150); do
    [ -n "$up" ] || { curl -fsS -m 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1 && up=1; }
    grep -q 'dial shortcut registered' "$log" && shortcut=1
    registered=()
    for scheme in tel callto; do
      cmd=$(reg_value "HKCU\\Software\\Classes\\$scheme\\shell\\open\\command")
      [ "$cmd" = "$expected" ] && registered+=("$scheme")
    done
    [ -n "$up" ] && [ -n "$shortcut" ] && [ "${#registered[@]}" -eq 2 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.4
  done
  # The store is written transaction by transaction, so ending the app at once loses nothing.
  wine taskkill /F /IM callbridge-desktop.exe >/dev/null 2>&1 || true
  wait "$pid" 2>/dev/null || true
  wineserver -k 2>/dev/null || true
  wineserver -w
  kill "$xvfb" 2>/dev/null || true
  wait "$xvfb" 2>/dev/null || true
  unset DISPLAY
  [ -n "$up" ] || fail "callbridge-desktop.exe did not answer on port $port under wine: $(tail -n 30 "$log")"
  [ -n "$shortcut" ] || fail "callbridge-desktop.exe did not register its dial shortcut: $(tail -n 30 "$log")"
  [ "${#registered[@]}" -eq 2 ] || fail "callbridge-desktop.exe registered only '${registered[*]}' for links (want tel callto as $expected)"
  echo "callbridge-desktop.exe under wine: listener on $port answered, dial shortcut registered, tel: and callto: registered to $expected" >&2
  rm -rf "$dir"
}

# --- the black-box suites against callbridge.exe ----------------------------------------------------

# The suites that drive the headless bridge. kazoo and baresip are left out: they need a Kazoo fake's
# websocket timing and a local SIP stack (baresip, SIPp), which are exercised on Linux.
suites=(headless security delivery generic_webhooks telecmi platform)

run_suites() {
  local log unsupported args=()
  log="$out/wine-tests.log"
  unsupported="$out/wine-unsupported.log"
  : >"$unsupported"
  for s in "${suites[@]}"; do
    [ -f "tests/tests/$s.rs" ] && args+=(--test "$s")
  done
  echo "== the black-box suites (${args[*]}) against $exe under wine" >&2
  local status=0
  # The test programs run on Linux and start callbridge.exe through wine; the Credential Manager of the
  # private prefix is the OS keyring they store secrets in. The same package selection as
  # scripts/test.sh's cargo test, so the test programs it built are reused, not rebuilt with other features.
  CALLBRIDGE_BIN="$exe" CALLBRIDGE_WRAPPER=wine CALLBRIDGE_CREDREAD="$credread" CALLBRIDGE_TEST_KEYRING=1 \
    CALLBRIDGE_UNSUPPORTED_LOG="$unsupported" \
    cargo test --workspace --exclude callbridge-desktop-e2e "${args[@]}" --no-fail-fast 2>&1 | tee "$log" || status=$?
  local passed failed not_run
  read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
                                END { printf "%d %d\n", p, f }' "$log")
  not_run=$(grep -c . "$unsupported" || true)
  # These lines are what scripts/test.sh subtracts from its count of passed tests.
  while IFS= read -r line; do echo "windows: not run: $line"; done <"$unsupported"
  echo "windows: $((passed - not_run)) passed, $failed failed against callbridge.exe under wine ($not_run not run on Windows, listed above)"
  [ "$status" -eq 0 ] && [ "$failed" -eq 0 ] || return 1
}

# --- the package -----------------------------------------------------------------------------------

package() {
  local profile=$1 dir="$target_dir/$triple/$1" stage name zip setup
  check_names
  name="CallBridge-$version-windows-x64"
  stage="$out/$name"
  rm -rf "$stage"
  mkdir -p "$stage"
  cp "$dir/callbridge-desktop.exe" "$dir/callbridge.exe" "$dir/WebView2Loader.dll" "$stage/"
  # README.txt with Windows line ends, for Notepad.
  sed "s/@VERSION@/$version/g" src-tauri/windows/README.txt | sed 's/$/\r/' >"$stage/README.txt"
  local level=-9 compressor="/SOLID lzma"
  if [ "$profile" = debug ]; then
    # A debug build is ~340 MB with its debug info: stripped and packed quickly, it checks the same
    # package contents and installer in a fraction of the time (the release build is stripped by
    # Cargo's profile and packed small).
    x86_64-w64-mingw32-strip --strip-all "$stage/callbridge-desktop.exe" "$stage/callbridge.exe"
    level=-1 compressor=zlib
  fi
  zip="$out/$name.zip"
  rm -f "$zip"
  (cd "$out" && zip -q -r "$level" "$name.zip" "$name")
  setup="$out/$name-setup.exe"
  makensis -V2 -DVERSION="$version" -DSOURCE="$stage" -DOUTFILE="$setup" -DICON="$root/icons/icon.ico" \
    -DCOMPRESSOR="$compressor" src-tauri/windows/installer.nsi
  echo "built $zip" >&2
  echo "built $setup" >&2
  check_zip "$zip" "$name"
  check_resources "$stage/callbridge-desktop.exe" "$profile"
  check_installer "$setup"
}

# The installer removes the autostart value tauri-plugin-autostart writes, which is named after the app's
# productName, and registers links as tauri-plugin-deep-link does, with the app's identifier: the
# installer script must use the same names as tauri.conf.json.
check_names() {
  local product identifier
  product=$(python3 -c 'import json; print(json.load(open("tauri.conf.json"))["productName"])')
  identifier=$(python3 -c 'import json; print(json.load(open("tauri.conf.json"))["identifier"])')
  grep -qx "!define PRODUCT \"$product\"" src-tauri/windows/installer.nsi || fail "installer.nsi's PRODUCT is not the productName $product"
  grep -qx "!define IDENTIFIER \"$identifier\"" src-tauri/windows/installer.nsi || fail "installer.nsi's IDENTIFIER is not the identifier $identifier"
}

check_zip() {
  local zip=$1 name=$2 listing
  listing=$(unzip -Z1 "$zip")
  for f in callbridge-desktop.exe callbridge.exe WebView2Loader.dll README.txt; do
    grep -qx "$name/$f" <<<"$listing" || fail "$zip lacks $name/$f: $listing"
  done
  if grep -qi 'bcryptprimitives\|credread' <<<"$listing"; then fail "$zip ships a test fixture: $listing"; fi
  echo "$zip holds: $(tr '\n' ' ' <<<"$listing")" >&2
}

# The default value of a registry key, or nothing when there is no such key.
reg_value() { { wine reg query "$1" /ve 2>/dev/null || true; } | tr -d '\r' | sed -n 's/.*REG_SZ[[:space:]]*//p'; }

# Installs silently under wine, checks what the installer promised, uninstalls silently, and checks
# that everything it added is gone.
check_installer() {
  local setup=$1 local_appdata programs start_menu cmd
  local_appdata="$WINEPREFIX/drive_c/users/$wine_user/AppData/Local"
  programs="$local_appdata/Programs/CallBridge"
  start_menu="$WINEPREFIX/drive_c/users/$wine_user/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/CallBridge.lnk"
  wine "$setup" /S || fail "the installer failed"
  for f in callbridge-desktop.exe callbridge.exe WebView2Loader.dll README.txt uninstall.exe; do
    [ -f "$programs/$f" ] || fail "the installer did not put $f in $programs"
  done
  [ -f "$start_menu" ] || fail "no Start-menu entry at $start_menu"
  for scheme in tel callto; do
    cmd=$(reg_value "HKCU\\Software\\Classes\\$scheme\\shell\\open\\command")
    echo "HKCU\\Software\\Classes\\$scheme\\shell\\open\\command = $cmd" >&2
    case "$cmd" in
      '"C:\users\'"$wine_user"'\AppData\Local\Programs\CallBridge\callbridge-desktop.exe" "%1"') ;;
      *) fail "$scheme: is not registered to the installed app: '$cmd'" ;;
    esac
    wine reg query "HKCU\\Software\\Classes\\$scheme" /v "URL Protocol" >/dev/null 2>&1 || fail "$scheme: has no URL Protocol value"
  done
  wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\CallBridge' /v UninstallString >/dev/null 2>&1 \
    || fail "CallBridge is not listed in Apps & features (no Uninstall key)"
  wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v CallBridge >/dev/null 2>&1 \
    && fail "the installer turned autostart on; that is the app's setting"
  wine "$programs/callbridge.exe" --version | grep -q "$version" || fail "the installed callbridge.exe does not run"
  # An autostart value as the app writes it when the user turns "Start at login" on, which the
  # uninstaller must remove with the rest.
  wine reg add 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v CallBridge /d "C:\\users\\$wine_user\\AppData\\Local\\Programs\\CallBridge\\callbridge-desktop.exe " /f >/dev/null
  echo "installed: files, Start-menu entry, tel:/callto: handlers and the Apps & features entry are in place" >&2

  wine "$programs/uninstall.exe" /S || fail "the uninstaller failed"
  # The uninstaller copies itself to %TEMP% and runs from there, so `wine` returns before it has
  # finished; wait for it. It removes the program folder first and its Apps & features key last
  # (src-tauri/windows/installer.nsi), so the folder being gone is not enough: on a busy machine the
  # Start-menu entry was checked while it was still being removed.
  uninstall_key='HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\CallBridge'
  for _ in $(seq 150); do
    if [ ! -e "$programs" ] && ! wine reg query "$uninstall_key" >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  [ ! -e "$programs" ] || fail "the uninstaller left $programs: $(ls -A "$programs")"
  [ ! -e "$start_menu" ] || fail "the uninstaller left the Start-menu entry"
  for key in 'HKCU\Software\Classes\tel' 'HKCU\Software\Classes\callto' "$uninstall_key"; do
    if wine reg query "$key" >/dev/null 2>&1; then fail "the uninstaller left $key"; fi
  done
  if wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v CallBridge >/dev/null 2>&1; then
    fail "the uninstaller left the autostart value"
  fi
  echo "uninstalled: everything the installer and the app added is gone" >&2
}

# ---------------------------------------------------------------------------------------------------

started=$SECONDS
status=0
case "$mode" in
  build)
    build debug
    ;;
  test)
    build debug
    prepare_wine debug
    check_paths
    check_desktop debug
    run_suites || status=1
    ;;
  package)
    profile=${PROFILE:-release}
    build "$profile"
    prepare_wine "$profile"
    package "$profile"
    ;;
  ci)
    profile=${PROFILE:-debug}
    build debug
    [ "$profile" = debug ] || build "$profile"
    prepare_wine debug
    check_paths
    check_desktop debug
    run_suites || status=1
    package "$profile"
    ;;
esac
echo "windows.sh $mode: done in $((SECONDS - started)) s" >&2
exit "$status"
