#!/usr/bin/env bash
# Runs the whole CallBridge test suite, as CI does. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Property tests run a bounded number of random cases (plus the committed corpus) so CI time is bounded.
export PROPTEST_CASES=${PROPTEST_CASES:-512}

# The black-box tests run the built binaries: build them before the tests start.
cargo build --workspace --bins
# The real OS keyring (gnome-keyring in a private D-Bus session) backs the secret tests. The desktop
# e2e tests run separately below (they bring their own display and session bus).
status=0
# The benchmark harness, briefly, on the debug build: checks every measurement still works (its figures
# mean nothing here; scripts/bench.sh is the real run, on a release build).
scripts/with-keyring.sh target/debug/callbridge-bench --quick || status=$?
scripts/with-keyring.sh cargo test --workspace --no-fail-fast --exclude callbridge-desktop-e2e 2>&1 | tee "$log" || status=$?
scripts/with-keyring.sh scripts/schemathesis.sh 2>&1 | tee -a "$log" || status=$?
# The tray app under Xvfb over WebDriver.
scripts/desktop-e2e.sh 2>&1 | tee -a "$log" || status=$?
# The Windows build: cross-compiled, the black-box suites against callbridge.exe under wine, the
# installer run and checked under wine (scripts/windows.sh).
scripts/windows.sh ci 2>&1 | tee -a "$log" || status=$?

# One closing line for the whole run.
# cargo test prints "test result: ok. N passed; M failed; …", nextest "Summary … N tests run: N passed, M failed …".
# A test that cannot run against the Windows build returns at once (cargo counts it passed) and
# scripts/windows.sh lists it as "windows: not run: …": those are counted apart.
awk '/^test result:|Summary .* tests? run:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed[;,]?$/) p += $(i-1); if ($(i) ~ /^failed[;,]?$/) f += $(i-1) } }
     /^windows: not run: / { n++ }
     END { if (n) printf "not run against the Windows build: %d (each listed above as \"windows: not run\", with why)\n", n
           printf "%d passed, %d failed%s\n", p - n, f, n ? sprintf(", %d skipped", n) : "" }' "$log"
exit "$status"
