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
source scripts/dev-server.sh
start_dev_server debug
node soak/run.mjs "$@"
