#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test:
#   1. native tests of the pure core and of the dev server (cargo test);
#   2. browser tests (wasm-bindgen-test in headless Chromium) against the dev server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh

echo "== native tests (core state machines, dev server)"
cargo test --workspace --quiet

echo "== fuzzing every parser of outside input (a short run; scripts/fuzz.sh runs a million each)"
cargo run --quiet --profile fuzz --example fuzz -- --iterations 50000

echo "== browser tests (headless Chromium, dev server on loopback)"
cargo build --quiet -p authwire-devserver
workdir=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT
target/debug/authwire-devserver --port 0 --port-file "$workdir/port" --root . > "$workdir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$workdir/port" ] && break; sleep 0.1; done
if [ ! -s "$workdir/port" ]; then echo "dev server did not start:"; cat "$workdir/server.log"; exit 1; fi
export AUTHWIRE_SERVER_URL="http://127.0.0.1:$(cat "$workdir/port")"
echo "dev server at $AUTHWIRE_SERVER_URL (pid $server_pid)"

export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
status=0
wasm-pack test --headless --chrome --mode no-install || status=$?
if [ "$status" -ne 0 ]; then
  echo "== dev server log"; cat "$workdir/server.log"
  exit "$status"
fi

echo "== TypeScript: a strict consumer of the package's types"
bash scripts/build.sh --release
node_modules/.bin/tsc -p tests/ts/tsconfig.json
echo "tsc --strict: ok"

echo "== end-to-end journeys (playwright-core, Debian's Chromium, the built package and React app)"
AUTHWIRE_ARTIFACTS="target/e2e-artifacts" node --test --test-concurrency=1 tests/e2e/ || {
  echo "== dev server log"; tail -50 "$workdir/server.log"; exit 1; }
echo "screenshots: target/e2e-artifacts/"

echo "== soak, short version (scripts/soak.sh runs 60 s)"
AUTHWIRE_SERVER_URL="$AUTHWIRE_SERVER_URL" node soak/run.mjs --seconds 15

urls=$(node -e 'fetch(process.argv[1] + "/__test/stats").then((r) => r.json()).then((s) => console.log(s.tokens_in_urls))' "$AUTHWIRE_SERVER_URL")
if [ "$urls" != "0" ]; then echo "$urls request(s) carried a token in the URL"; exit 1; fi
echo "no request carried a token in its URL"

if grep -E "eyJ[A-Za-z0-9_-]{10,}" "$workdir/server.log" >/dev/null; then
  echo "the dev server log contains a token"; exit 1
fi
echo "== all tests passed"
