#!/usr/bin/env bash
# The long simulation run: SIM_SEEDS seeded hours (default 1,000,000) of tabs, GoTrue, locks,
# the BroadcastChannel and a chat server under faults, on every core, from seed SIM_FROM
# (default 1,000,000: the seeds `cargo test` runs are 0..10,000).
#
#   scripts/sim.sh                    # a million seeds
#   SIM_SEEDS=50000 scripts/sim.sh    # fewer
#
# A failure prints its seed and the command that replays it with a trace:
#   SIM_SEED=<seed> cargo test --test sim replay -- --nocapture
# Built with the `fuzz` profile (release, opt-level 3, unwinding, no LTO): `--release` would build
# for size with panic=abort.
set -euo pipefail
cd "$(dirname "$0")/.."
export SIM_SEEDS="${SIM_SEEDS:-1000000}"
exec cargo test --profile fuzz --test sim long_run -- --ignored --nocapture
