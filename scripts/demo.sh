#!/usr/bin/env bash
# Sets everything up, builds the package and serves the demo on loopback.
#   PORT=8787 (default)  TTL=20 (seconds a token lives; the page shows it refresh)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
bash scripts/build.sh --release
cargo build --quiet --release -p authwire-devserver
port="${PORT:-8787}"
echo
echo "  authwire demo: open http://127.0.0.1:${port}/   (Ctrl-C stops the server)"
echo
exec "${CARGO_TARGET_DIR:-target}/release/authwire-devserver" --port "$port" --root . --token-ttl "${TTL:-20}"
