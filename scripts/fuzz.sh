#!/usr/bin/env bash
# Mutation-fuzzes every parser of outside input (JSON, JWT, session, server frame, URL), a million
# inputs each by default, from the seeds in fuzz/corpus/. Zero panics or it fails.
#   bash scripts/fuzz.sh [--iterations N] [--seed S]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --quiet --profile fuzz --example fuzz -- "$@"
