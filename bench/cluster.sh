#!/usr/bin/env bash
# Benchmark (issue #7): `berth cluster up` of 5 fresh hosts, and deploying the same stack across them
# with berth (SSH target) and with `docker stack deploy` over DOCKER_HOST=ssh:// (the docker CLI + the
# ssh client, which run `docker system dial-stdio` on the host), side by side in one run.
# The hosts are crates/berth/tests/lab/lab.sh's network namespaces (dockerd + sshd each) on this machine.
# The stack: N services (default 10) of berth-test/app:v1, 2 replicas each, healthcheck every 1 s;
# "converged" = every service has all replicas running (healthy), polled every 0.1 s.
#
#   bash bench/cluster.sh [N]          BERTH=target/debug/berth to use a given binary
# Needs root. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
lab=crates/berth/tests/lab/lab.sh
bash crates/engine/tests/images/build.sh
if [ -z "${BERTH:-}" ]; then
  cargo build --release -q -p berth
  BERTH=$PWD/target/release/berth
fi
berth=$(realpath "$BERTH")
work=$(mktemp -d)
trap 'bash $lab down >/dev/null 2>&1; rm -rf "$work"' EXIT
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }

t=$(now_ms)
LAB_IMAGES="berth-test/app:v1" bash $lab up 5 >/dev/null
lab_ms=$(($(now_ms) - t))

hosts="192.168.87.11, 192.168.87.12, 192.168.87.13, 192.168.87.14, 192.168.87.15"
{
  echo "services:"
  for ((i = 0; i < n; i++)); do
    printf '  svc%d:\n    image: berth-test/app:v1\n    deploy:\n      replicas: 2\n' "$i"
  done
  cat <<YAML
x-berth:
  targets:
    lab:
      ssh: [$hosts]
      managers: 3
      key: /var/lib/berth-lab/ssh/id_ed25519
      known_hosts: /var/lib/berth-lab/ssh/known_hosts
      socket: /run/berth-lab/{host}/docker.sock
YAML
} >"$work/compose.yaml"
# The same services without x-berth for docker stack deploy (it would ignore x-berth anyway).
sed '/^x-berth:/,$d' "$work/compose.yaml" >"$work/plain.yaml"

t=$(now_ms)
"$berth" -c "$work/compose.yaml" -t lab cluster up >/dev/null 2>&1
up_ms=$(($(now_ms) - t))
t=$(now_ms)
"$berth" -c "$work/compose.yaml" -t lab cluster up >/dev/null 2>&1
up2_ms=$(($(now_ms) - t))

# docker CLI over ssh: an ssh config with the lab's key and known_hosts, in a private HOME.
mkdir -p "$work/home/.ssh"
cat >"$work/home/.ssh/config" <<CFG
Host 192.168.87.*
  User root
  IdentityFile /var/lib/berth-lab/ssh/id_ed25519
  UserKnownHostsFile /var/lib/berth-lab/ssh/known_hosts
  StrictHostKeyChecking yes
CFG
# OpenSSH reads the passwd entry's home, not $HOME: a wrapper passes the config explicitly.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$work/home/.ssh/config" >"$work/bin/ssh"
chmod +x "$work/bin/ssh"
dk() { PATH=$work/bin:$PATH HOME=$work/home DOCKER_HOST=ssh://root@192.168.87.11 docker "$@"; }
converged() { # stack
  local lines
  lines=$(dk service ls --filter "label=com.docker.stack.namespace=$1" --format '{{.Replicas}}' 2>/dev/null) || return 1
  [ "$(grep -c . <<<"$lines")" -eq "$n" ] || return 1
  ! awk -F'[/ ]' '$1 != $2 { bad = 1 } END { exit !bad }' <<<"$lines"
}
t=$(now_ms)
dk stack deploy --resolve-image never -c "$work/plain.yaml" bdocker >/dev/null
until converged bdocker; do sleep 0.1; done
docker_ms=$(($(now_ms) - t))
dk stack rm bdocker >/dev/null
sleep 5

t=$(now_ms)
/usr/bin/time -o "$work/rss" -f '%M' "$berth" -c "$work/compose.yaml" -s bberth -t lab deploy --plain >"$work/out" 2>&1 \
  || { tail -20 "$work/out" >&2; exit 1; }
berth_ms=$(($(now_ms) - t))
t=$(now_ms)
"$berth" -c "$work/compose.yaml" -s bberth -t lab deploy --plain >/dev/null 2>&1
noop_ms=$(($(now_ms) - t))

echo "| step | docker CLI over ssh:// | berth (SSH target) | berth / docker |"
echo "|---|---|---|---|"
echo "| 5 test hosts started (lab.sh) | | $(secs $lab_ms) | |"
echo "| cluster up, 5 fresh hosts (3 managers) | (by hand) | $(secs $up_ms) | |"
echo "| cluster up again (no change) | | $(secs $up2_ms) | |"
echo "| deploy $n services × 2 replicas, until converged | $(secs $docker_ms) | $(secs $berth_ms) | $(awk -v b=$berth_ms -v d=$docker_ms 'BEGIN{printf "%.2f×", b/d}') |"
echo "| no-op redeploy | | $(secs $noop_ms) | |"
echo "| berth peak RSS (deploy) | | $(awk '{printf "%.1f MB", $1/1024}' "$work/rss") | |"
