#!/usr/bin/env bash
# Sets everything up, builds the release package, starts the dev server on loopback and runs the
# bench in headless Chromium: sizes against the JS anchors, per-message cost, start-up, memory and
# single flight, in one run. Pass --quick for a shorter run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
bash scripts/build.sh --release
cargo build --quiet --release -p authwire-devserver
workdir=$(mktemp -d)
target/release/authwire-devserver --port 0 --port-file "$workdir/port" --root . --token-ttl 3600 > "$workdir/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do [ -s "$workdir/port" ] && break; sleep 0.1; done
AUTHWIRE_SERVER_URL="http://127.0.0.1:$(cat "$workdir/port")" node bench/run.mjs "$@"
