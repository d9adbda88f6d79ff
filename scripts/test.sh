#!/usr/bin/env bash
# Runs every test of berth on this machine: sets the host up (Docker engine in swarm mode),
# then the whole Cargo workspace (unit, snapshot and integration tests against the real dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/host-setup.sh
[ -d ../shared/compose-suites ] || { echo "tests need ../shared beside the repository" >&2; exit 1; }
export CARGO_TERM_COLOR=never
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads=2
