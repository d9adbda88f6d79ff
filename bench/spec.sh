#!/usr/bin/env bash
# Benchmark: load + validate + convert + plan of generated stacks, berth vs `docker stack config`,
# side by side in one run. Prints a Markdown table (median wall time, peak RSS).
#   bash bench/spec.sh [SIZES...]        default sizes: 10 100 500
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-10 100 500}")
read -r -a sizes <<<"${sizes[*]}"
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null; }
[ -x /usr/bin/time ] || { apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p berth
berth=$PWD/target/release/berth
docker=$(command -v docker)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo '{}' >"$work/observed.json"
printf 'app-secret\n' >"$work/app_key.txt"
printf 'x=1\n' >"$work/app.conf"

rss_mb() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'; }
median_ms() { jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$1"; }
command -v jq >/dev/null || apt-get install -y -qq jq >/dev/null

echo "| services | docker stack config | berth config | berth plan (load+validate+convert+plan) | plan / docker | docker RSS | berth plan RSS |"
echo "|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  python3 bench/gen_stack.py "$n" >"$work/stack.yml"
  (cd "$work" && "$berth" -c stack.yml plan --observed observed.json >/dev/null) || { echo "berth failed on $n services" >&2; exit 1; }
  (cd "$work" && "$docker" stack config -c stack.yml >/dev/null) || { echo "docker failed on $n services" >&2; exit 1; }
  hyperfine -N -w 3 -r 20 --export-json "$work/d.json" "$docker stack config -c $work/stack.yml" >/dev/null
  hyperfine -N -w 3 -r 20 --export-json "$work/c.json" "$berth -c $work/stack.yml config" >/dev/null
  hyperfine -N -w 3 -r 20 --export-json "$work/p.json" "$berth -c $work/stack.yml -s bench plan --observed $work/observed.json" >/dev/null
  d=$(median_ms "$work/d.json"); c=$(median_ms "$work/c.json"); p=$(median_ms "$work/p.json")
  ratio=$(awk -v a="$p" -v b="$d" 'BEGIN{printf "%.2f", a/b}')
  drss=$(rss_mb "$docker" stack config -c "$work/stack.yml")
  prss=$(rss_mb "$berth" -c "$work/stack.yml" -s bench plan --observed "$work/observed.json")
  echo "| $n | ${d} ms | ${c} ms | ${p} ms | ${ratio}× | ${drss} MB | ${prss} MB |"
done
