#!/usr/bin/env bash
# Benchmark (issue #6): the example app (examples/blog) on the local engine —
#   - first deploy and a code-only redeploy (one backend source file changed), wall time split into
#     build, push, release phase and rollout (read from `berth deploy --plain`'s timestamped lines:
#     build = until the last image is built, release phase = from the first release command to the
#     last one's end, rollout = from there until the release is live; push is 0 without a registry);
#   - a redeploy with no change: whether anything was rebuilt or restarted;
#   - memory of every service at idle (docker stats, 10 s after the deploy).
# Uses the local base images (examples/blog/base-images.sh) unless BLOG_BASES=public. Stack `bbench`,
# edge on ports 20180/20543; removed at the end with its volumes.
#
#   bash bench/example.sh              BERTH=target/debug/berth to use a given binary
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BERTH:-}" ]; then
  cargo build --release -q -p berth
  BERTH=$PWD/target/release/berth
fi
berth=$(realpath "$BERTH")
if [ "${BLOG_BASES:-local}" = local ]; then
  # shellcheck disable=SC2046
  export $(bash examples/blog/base-images.sh --print-env)
fi
work=$(mktemp -d)
cp -r examples/blog/. "$work/"
rm -f "$work/.env"
export BLOG_ADMIN_PASSWORD=bench-admin-password BLOG_HTTP_PORT=20180 BLOG_HTTPS_PORT=20543 BLOG_DOMAIN=localhost
cleanup() {
  (cd "$work" && "$berth" -s bbench rm --yes --volumes >/dev/null 2>&1) || true
  mkdir -p target/bench-example && cp "$work"/*.log target/bench-example/ 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

split() { # deploy output file -> "total build push release rollout" in seconds
  python3 - "$1" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
t = 0.0
build = push = 0.0
rel_start = rel_end = None
live = None
for l in lines:
    m = re.match(r"^\[ *([0-9.]+)s\]", l)
    if m:
        t = float(m.group(1))
    if re.search(r"build \S+: (built|building|\S+ exists)", l):
        build = t
    if "pushed" in l:
        push = t
    if "running `" in l:
        rel_start = t if rel_start is None else rel_start
        rel_end = t
    m = re.search(r"is live \(\d+ services, ([0-9.]+) s\)", l)
    if m:
        live = float(m.group(1))
if rel_start is not None:
    # the release phase ends when the rollout of new tasks starts: the first "update service" line after it
    after = [float(re.match(r"^\[ *([0-9.]+)s\]", l).group(1)) for l in lines
             if re.match(r"^\[ *([0-9.]+)s\]", l) and re.search(r"(update|create) service", l)]
    later = [a for a in after if a >= rel_end]
    rel_end = later[0] if later else rel_end
total = live if live is not None else t
release = (rel_end - rel_start) if rel_start is not None else 0.0
rollout = total - (rel_end if rel_end is not None else build)
print(f"{total:.1f} {build:.1f} {max(push - build, 0):.1f} {release:.1f} {max(rollout, 0):.1f}")
PY
}

deploy() { # label -> row
  local out=$work/deploy-$1.log start end
  start=$(date +%s%3N)
  (cd "$work" && "$berth" -s bbench deploy --plain >"$out" 2>&1) || { tail -30 "$out" >&2; exit 1; }
  end=$(date +%s%3N)
  read -r total build push release rollout <<<"$(split "$out")"
  printf '| %s | %.1f s | %s s | %s s | %s s | %s s |\n' "$1" "$(awk -v a="$start" -v b="$end" 'BEGIN{print (b-a)/1000}')" \
    "$build" "$push" "$release" "$rollout"
}

echo "| deploy | wall time | build | push | release phase | rollout |"
echo "|---|---|---|---|---|---|"
deploy "first deploy"
echo "# berth-bench: a code-only change $(date +%s%N)" >>"$work/backend/posts/views.py"
deploy "code-only redeploy (backend)"
sleep 5 # old tasks of the redeploy finish stopping
tasks_before=$(docker ps -q --filter label=com.docker.stack.namespace=bbench | sort | tr '\n' ' ')
start=$(date +%s%3N)
(cd "$work" && "$berth" -s bbench deploy --plain >"$work/noop.log" 2>&1)
noop_ms=$(($(date +%s%3N) - start))
tasks_after=$(docker ps -q --filter label=com.docker.stack.namespace=bbench | sort | tr '\n' ' ')
rebuilt=$(grep -c 'built ' "$work/noop.log" || true)
restarted=$([ "$tasks_before" = "$tasks_after" ] && echo 0 || echo "some")
echo
echo "| no-change redeploy | wall time | images rebuilt | containers restarted | says |"
echo "|---|---|---|---|---|"
echo "| | ${noop_ms} ms | $rebuilt | $restarted | $(grep -o 'is up to date[^)]*)' "$work/noop.log" | head -1) |"

sleep 10
echo
echo "| service (idle) | memory |"
echo "|---|---|"
docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' $(docker ps -q --filter label=com.docker.stack.namespace=bbench) |
  awk '{ split($1, a, "."); name = a[1]; sub(/^bbench_/, "", name); mem[name] = mem[name] (mem[name] ? ", " : "") $2 }
       END { for (n in mem) print "| " n " | " mem[n] " |" }' | sort
