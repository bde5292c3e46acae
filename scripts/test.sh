#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test:
#   native tests (cargo test; the lite build's core too), a short fuzzing run, browser tests
#   (wasm-bindgen-test in headless Chromium, the lite build in Chromium, then Firefox ESR and
#   WebKitGTK) against the dev server on 127.0.0.1, each build's size against size-budget.json, the
#   strict TypeScript consumer, the journeys in the same three engines, a short soak, and the checks
#   that no log or URL carried a token.
#   In Chromium the browser tests and the journeys run twice: against GoTrue's reuse interval (10 s,
#   hosted Supabase's default, which answers a reused refresh token) and against strict rotation (0:
#   every reuse revokes the session, where cross-tab races show); Firefox and WebKit run at strict
#   rotation. The server is switched between runs (POST /__test/config), so its URL, baked into the
#   browser tests at compile time, stays the same.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh

echo "== native tests (core state machines, dev server)"
cargo test --workspace --quiet
echo "== native tests of the lite build's core (authwire/lite: no \`full\` feature)"
cargo test --quiet --lib --no-default-features

echo "== fuzzing every parser of outside input (a short run; scripts/fuzz.sh runs a million each)"
cargo run --quiet --profile fuzz --example fuzz -- --iterations 50000

echo "== browser tests (headless Chromium, Firefox and WebKit; dev server on loopback)"
source scripts/dev-server.sh
start_dev_server debug

# Drivers go to wasm-pack as flags and none is exported: wasm-bindgen-test-runner drives the first
# of GECKODRIVER, SAFARIDRIVER and CHROMEDRIVER that is set, whatever browser flag it is given (with
# GECKODRIVER exported, --chrome and --safari quietly run Firefox), so every run clears all three.
CHROMEDRIVER_BIN="${CHROMEDRIVER:-$(command -v chromedriver)}"
GECKODRIVER_BIN="${GECKODRIVER:-$HOME/.cargo/bin/geckodriver}"
SAFARIDRIVER_BIN="${SAFARIDRIVER:-/usr/bin/WebKitWebDriver}"
unset CHROMEDRIVER GECKODRIVER SAFARIDRIVER
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
browser_tests() { # engine interval [cargo flags: --no-default-features for the lite build]
  local engine="$1" interval="$2" status=0 started=$SECONDS
  shift 2
  echo "== browser tests, $engine${1:+ $1}, refresh-token reuse interval $interval s"
  set_reuse_interval "$interval"
  case "$engine" in
    chromium) env -u CHROMEDRIVER -u GECKODRIVER -u SAFARIDRIVER \
      wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER_BIN" --mode no-install "$@" || status=$? ;;
    firefox) env -u CHROMEDRIVER -u GECKODRIVER -u SAFARIDRIVER \
      wasm-pack test --headless --firefox --geckodriver "$GECKODRIVER_BIN" --mode no-install || status=$? ;;
    # MiniBrowser has no headless mode: without a display the WebDriver session times out.
    webkit) env -u CHROMEDRIVER -u GECKODRIVER -u SAFARIDRIVER xvfb-run -a \
      wasm-pack test --headless --safari --safaridriver "$SAFARIDRIVER_BIN" --mode no-install || status=$? ;;
  esac
  if [ "$status" -ne 0 ]; then
    echo "== dev server log"; cat "$DEV_SERVER_LOG"
    exit "$status"
  fi
  echo "== browser tests, $engine${1:+ $1}, reuse interval $interval s: $((SECONDS - started)) s"
}
for interval in 10 0; do browser_tests chromium "$interval"; done
# The lite build (authwire/lite): the tests of what it contains, and web_lite's of what it refuses.
browser_tests chromium 0 --no-default-features
# Firefox 153 ESR and WebKitGTK 2.50 (MiniBrowser) take 2.5 to 3.5 minutes each per mode on 2 shared
# cores (Chromium's two modes about 6), so by default each runs once, at strict rotation (where
# cross-tab races show): about 5.5 minutes more. AUTHWIRE_ENGINE_MODES="10 0" runs both modes in each.
for interval in ${AUTHWIRE_ENGINE_MODES:-0}; do
  browser_tests firefox "$interval"
  browser_tests webkit "$interval"
done

echo "== TypeScript: a strict consumer of the package's types"
bash scripts/build.sh --release
echo "== size: each build against size-budget.json (fails past +1 %)"
node scripts/size.mjs --check
node_modules/.bin/tsc -p tests/ts/tsconfig.json
echo "tsc --strict: ok"

# The journeys: one suite (tests/e2e), driven through WebDriver (selenium-webdriver) in each engine,
# with the engines' own drivers: Chromium at both reuse intervals, Firefox and WebKit at strict
# rotation (AUTHWIRE_ENGINE_MODES="10 0" runs both there too). About 1.6, 1.7 and 2.1 minutes each.
journeys() { # engine interval
  local engine="$1" interval="$2" started=$SECONDS
  echo "== end-to-end journeys, $engine (WebDriver, the built package and React app), reuse interval $interval s"
  set_reuse_interval "$interval"
  AUTHWIRE_ENGINE="$engine" CHROMEDRIVER="$CHROMEDRIVER_BIN" GECKODRIVER="$GECKODRIVER_BIN" SAFARIDRIVER="$SAFARIDRIVER_BIN" \
    AUTHWIRE_ARTIFACTS="target/e2e-artifacts/reuse-$interval" node --test --test-concurrency=1 --test-timeout=300000 tests/e2e/ || {
    echo "== dev server log"; tail -50 "$DEV_SERVER_LOG"; exit 1; }
  echo "== end-to-end journeys, $engine, reuse interval $interval s: $((SECONDS - started)) s"
}
for interval in 10 0; do journeys chromium "$interval"; done
for interval in ${AUTHWIRE_ENGINE_MODES:-0}; do
  journeys firefox "$interval"
  journeys webkit "$interval"
done
echo "screenshots: target/e2e-artifacts/"
set_reuse_interval 10

echo "== soak, short version (scripts/soak.sh runs 60 s)"
node soak/run.mjs --seconds 15
echo "== soak, short version: a token-endpoint outage past expiry, then recovery"
node soak/run.mjs --seconds 15 --outage

urls=$(node -e 'fetch(process.argv[1] + "/__test/stats").then((r) => r.json()).then((s) => console.log(s.tokens_in_urls))' "$AUTHWIRE_SERVER_URL")
if [ "$urls" != "0" ]; then echo "$urls request(s) carried a token in the URL"; exit 1; fi
echo "no request carried a token in its URL"

if grep -E "eyJ[A-Za-z0-9_-]{10,}" "$DEV_SERVER_LOG" >/dev/null; then
  echo "the dev server log contains a token"; exit 1
fi
echo "== all tests passed"
