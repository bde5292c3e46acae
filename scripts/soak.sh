#!/usr/bin/env bash
# Sets everything up, builds the package, starts the dev server and runs the soak.
#   bash scripts/soak.sh [--seed N] [--seconds 60] [--interval 10] [--drop 0.1] [--fail 0.2] [--reject 0.005] [--outage]
# Runs the soak, then the same with token-endpoint outages past expiry (--outage); given --outage,
# only that one. Each prints its seed; `--seed N` replays a run's fault schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ "${AUTHWIRE_SKIP_SETUP:-}" != 1 ]; then
  bash scripts/setup.sh
  bash scripts/build.sh --release
fi
source scripts/dev-server.sh
start_dev_server debug
if [[ " $* " == *" --outage "* ]]; then
  node soak/run.mjs "$@"
else
  status=0
  node soak/run.mjs "$@" || status=$?
  node soak/run.mjs "$@" --outage || status=$?
  exit "$status"
fi
