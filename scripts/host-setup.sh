#!/usr/bin/env bash
# Makes this machine ready for berth's tests and the local example: a Docker engine in swarm
# mode. Idempotent: installs only what is missing, starts only what is not running.
set -euo pipefail

log() { printf '[host-setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# CloudFormation template tests (crates/cfn) lint every template variant with the real cfn-lint.
command -v cfn-lint >/dev/null || pip install -q cfn-lint
# AWS tests (crates/aws, crates/berth/tests/aws.rs, the agent's) run against moto in server mode.
command -v moto_server >/dev/null || pip install -q 'moto[server]'

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker >/dev/null 2>&1 || need_pkgs+=(docker.io)
# Image-build tests push to a throwaway local registry (crates/engine/tests/build.rs).
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
# Edge tests: a real ACME server and a real load generator.
command -v pebble >/dev/null 2>&1 || [ -x /usr/bin/pebble ] || need_pkgs+=(pebble)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
# Example app: offline base images (debootstrap), the Vue build (node/npm), browser test (chromium).
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
# Many-machine tests: test hosts in network namespaces, each with sshd.
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
# ... and a bare host's local apt repository (crates/berth/tests/lab/bare-root.sh).
command -v dpkg-scanpackages >/dev/null 2>&1 || need_pkgs+=(dpkg-dev)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  if command -v systemctl >/dev/null 2>&1 && systemctl list-units >/dev/null 2>&1; then
    as_root systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    as_root sh -c 'nohup dockerd >/var/log/berth-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/berth-dockerd.log"; exit 1; }
fi

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" = inactive ]; then
  log "initialising swarm mode (single node, advertise 127.0.0.1)"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi
log "docker $(docker info --format '{{.ServerVersion}}'), swarm $(docker info --format '{{.Swarm.LocalNodeState}}')"
