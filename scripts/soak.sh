#!/usr/bin/env bash
# Sets everything up, builds the package, starts the dev server and runs the soak.
#   bash scripts/soak.sh [--seconds 60] [--interval 10] [--drop 0.1] [--fail 0.2] [--reject 0.005]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ "${AUTHWIRE_SKIP_SETUP:-}" != 1 ]; then
  bash scripts/setup.sh
  bash scripts/build.sh --release
fi
cargo build --quiet -p authwire-devserver
workdir=$(mktemp -d)
target/debug/authwire-devserver --port 0 --port-file "$workdir/port" --root . > "$workdir/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do [ -s "$workdir/port" ] && break; sleep 0.1; done
AUTHWIRE_SERVER_URL="http://127.0.0.1:$(cat "$workdir/port")" node soak/run.mjs "$@"
