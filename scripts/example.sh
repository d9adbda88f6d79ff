#!/usr/bin/env bash
# Deploys the example stack (examples/hello) on this machine's Docker engine with berth and prints
# its URL. Idempotent: run it again and berth reports the stack up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/host-setup.sh
echo "[example] building berth and the example's static server" >&2
cargo build --release --quiet -p berth
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet -p berth-testapp --target x86_64-unknown-linux-gnu
install -m 0755 target/x86_64-unknown-linux-gnu/release/berth-testapp examples/hello/app/app
port=${HELLO_PORT:-8480}
HELLO_PORT=$port ./target/release/berth -c examples/hello/compose.yaml deploy
url="http://127.0.0.1:$port/"
for _ in $(seq 1 20); do
  body=$(curl -fsS "$url" 2>/dev/null) && break
  sleep 0.5
done
echo "[example] $url answers: ${body:-<no answer>}"
[ -n "${body:-}" ]
echo "$url"
