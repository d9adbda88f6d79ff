#!/usr/bin/env bash
# Benchmark: converge time of `berth deploy` vs `docker stack deploy` + polling, side by side in one run,
# on the same generated stack files (N services of berth-test/app:v1, healthcheck every 1 s,
# update_config.delay 0s). Prints a Markdown table:
#   - converge: from command start until every service has all its replicas running and healthy
#     (docker: `docker stack deploy --resolve-image never` then polling `docker service ls` every 0.1 s;
#     Swarm reports a task `running` only once its healthcheck passed; berth: `berth deploy`, which waits itself);
#   - no-op: a second `berth deploy` of the same file, its wall time and the number of write calls it made
#     (0 when berth says "is up to date"; otherwise read from a "N write(s)" in its output, "?" if absent);
#   - peak RSS of `berth deploy` (first deploy), from /usr/bin/time -f %M.
# Targets (issue #4): converge ≤ 0.8 × docker, no-op ≤ 150 ms with 0 writes, RSS ≤ 30 MB at 50 services.
#
#   bash bench/deploy.sh [SIZES...]          default sizes: 1 10 50
#   BERTH=target/debug/berth bash bench/deploy.sh 1    use a given binary instead of building --release
# Needs a swarm-mode dockerd (scripts/host-setup.sh). Stacks are named bench-docker-N / bench-berth-N and
# removed at the end (also on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-1 10 50}")
read -r -a sizes <<<"${sizes[*]}"
timeout_s=${BENCH_TIMEOUT:-600}

[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
bash crates/engine/tests/images/build.sh
if [ -z "${BERTH:-}" ]; then
  cargo build --release -q -p berth
  BERTH=$PWD/target/release/berth
fi
berth=$(realpath "$BERTH")
work=$(mktemp -d)
stacks=()

wait_gone() { # stack: until no task container of the stack is left
  for _ in $(seq 1 300); do
    [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$1")" ] && return 0
    sleep 0.2
  done
}
remove_stack() { # stack
  if [[ $1 == bench-berth-* ]]; then
    "$berth" -s "$1" rm --yes >/dev/null 2>&1 || true
  fi
  docker stack rm "$1" >/dev/null 2>&1 || true
  wait_gone "$1"
  for kind in config secret network; do
    docker "$kind" ls -q --filter "label=com.docker.stack.namespace=$1" | xargs -r docker "$kind" rm >/dev/null 2>&1 || true
    docker "$kind" ls -q --filter "label=io.berth.stack=$1" | xargs -r docker "$kind" rm >/dev/null 2>&1 || true
  done
}
cleanup() {
  for s in "${stacks[@]}"; do remove_stack "$s"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

gen() { # n -> stack file on stdout
  local n=$1 i
  echo 'version: "3.9"'
  echo 'services:'
  for ((i = 0; i < n; i++)); do
    cat <<EOF
  svc$i:
    image: berth-test/app:v1
    environment:
      SERVICE_INDEX: "$i"
    deploy:
      replicas: 1
      update_config:
        delay: 0s
        parallelism: 1
EOF
  done
}

now_ms() { date +%s%3N; }

# Every service of the stack has Replicas "k/k" with k = desired (and the expected number of services).
converged() { # stack n
  local lines
  lines=$(docker service ls --filter "label=com.docker.stack.namespace=$1" --format '{{.Replicas}}' 2>/dev/null) || return 1
  [ "$(grep -c . <<<"$lines")" -eq "$2" ] || return 1
  ! awk -F'[/ ]' '$1 != $2 { bad = 1 } END { exit !bad }' <<<"$lines"
}

docker_converge_ms() { # n file -> ms
  local stack=bench-docker-$1 start end
  stacks+=("$stack")
  start=$(now_ms)
  docker stack deploy --resolve-image never -c "$2" "$stack" >"$work/docker.out" 2>&1 || {
    cat "$work/docker.out" >&2
    return 1
  }
  until converged "$stack" "$1"; do
    sleep 0.1
    if (($(now_ms) - start > timeout_s * 1000)); then
      echo "docker stack $stack did not converge in ${timeout_s}s" >&2
      return 1
    fi
  done
  end=$(now_ms)
  echo $((end - start))
}

fmt_s() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }

echo "| services | docker stack deploy + poll | berth deploy | berth / docker | no-op redeploy | no-op writes | berth peak RSS |"
echo "|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  file=$work/stack-$n.yml
  gen "$n" >"$file"

  d_ms=$(docker_converge_ms "$n" "$file")
  remove_stack "bench-docker-$n"

  stack=bench-berth-$n
  stacks+=("$stack")
  start=$(now_ms)
  if ! /usr/bin/time -o "$work/rss" -f '%M' "$berth" -c "$file" -s "$stack" deploy --plain \
    --timeout "$timeout_s" >"$work/out" 2>&1; then
    echo "berth deploy of $n services failed:" >&2
    tail -n 30 "$work/out" >&2
    exit 1
  fi
  b_ms=$(($(now_ms) - start))
  converged "$stack" "$n" || echo "warning: berth returned but $stack is not converged per docker service ls" >&2
  rss=$(awk '{ printf "%.1f MB", $1 / 1024 }' "$work/rss")

  start=$(now_ms)
  "$berth" -c "$file" -s "$stack" deploy --plain --timeout "$timeout_s" >"$work/noop" 2>&1
  noop_ms=$(($(now_ms) - start))
  if grep -q 'is up to date' "$work/noop"; then
    writes=0
  else
    writes=$(grep -oE '[0-9]+ writes?( calls?)?' "$work/noop" | head -n1 | grep -oE '^[0-9]+' || echo '?')
  fi
  remove_stack "$stack"

  ratio=$(awk -v b="$b_ms" -v d="$d_ms" 'BEGIN { printf "%.2f×", b / d }')
  echo "| $n | $(fmt_s "$d_ms") | $(fmt_s "$b_ms") | $ratio | ${noop_ms} ms | $writes | $rss |"
done
