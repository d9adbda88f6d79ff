#!/usr/bin/env bash
# Runs every test of berth on this machine: sets the host up (Docker engine in swarm mode),
# then the whole Cargo workspace (unit, snapshot and integration tests against the real dockerd).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
# One run at a time on a machine: the tests share its dockerd (and restart it), so a second run
# beside the first would collide with it. The second waits. The lock is held by `flock` itself
# (`-o`: this script and what it starts do not get the descriptor): a dockerd a test restarted
# must not keep holding it after the run (regression: one did, and the next run waited forever).
mkdir -p /run/lock
lock=/run/lock/berth-tests-run.lock
if [ -z "${BERTH_TESTS_LOCKED:-}" ]; then
  export BERTH_TESTS_LOCKED=1
  rc=0
  flock -n -E 200 -o "$lock" bash "$self" "$@" || rc=$?
  if [ "$rc" = 200 ]; then
    echo "another berth test run is in progress; waiting for it" >&2
    exec flock -o "$lock" bash "$self" "$@"
  fi
  exit "$rc"
fi
bash scripts/host-setup.sh
[ -d ../shared/compose-suites ] || { echo "tests need ../shared beside the repository" >&2; exit 1; }
export CARGO_TERM_COLOR=never
# A fresh clone gains nothing from incremental compilation; it only costs disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Free space where the build and the images go: "no space left on device" in a test is a full disk.
df -h . /var/lib/docker 2>/dev/null || true
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads=2
