#!/usr/bin/env bash
# Runs every test of berth on this machine: sets the host up (Docker engine in swarm mode),
# then the whole Cargo workspace (unit, snapshot and integration tests against the real dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
# One run at a time on a machine: the tests share its dockerd (and restart it), so a second run
# beside the first would collide with it. The second waits.
exec 9>/run/lock/berth-tests.lock
flock -n 9 || { echo "another berth test run is in progress; waiting for it" >&2; flock 9; }
bash scripts/host-setup.sh
[ -d ../shared/compose-suites ] || { echo "tests need ../shared beside the repository" >&2; exit 1; }
export CARGO_TERM_COLOR=never
# A fresh clone gains nothing from incremental compilation; it only costs disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Free space where the build and the images go: "no space left on device" in a test is a full disk.
df -h . /var/lib/docker 2>/dev/null || true
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads=2
