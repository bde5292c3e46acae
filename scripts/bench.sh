#!/usr/bin/env bash
# Sets everything up, builds the release package, starts the dev server on loopback and runs the
# bench in headless Chromium: sizes against the JS anchors, per-message cost, start-up, memory and
# single flight, in one run. Pass --quick for a shorter run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
bash scripts/build.sh --release
source scripts/dev-server.sh
start_dev_server release --token-ttl 3600
node bench/run.mjs "$@"
