#!/usr/bin/env bash
# README command 1: deploys the example application (examples/blog: Django + Celery + Postgres +
# Redis + a Vue front end, behind berth's edge) on this machine's Docker engine with berth, waits
# until it answers, and prints its URL. Idempotent: run it again and berth reports it up to date.
#
# Base images: the public ones (python, postgres, redis, node, debian) when the engine has them or
# can pull them; otherwise local stand-ins built once with debootstrap (examples/blog/base-images.sh).
# The admin password is generated once into examples/blog/.env (mode 0600; berth reads that file).
#
# Environment: BLOG_DOMAIN (default blog.localhost), BLOG_BASES=local|public (skip the probe).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/host-setup.sh

log() { printf '[example] %s\n' "$*" >&2; }

log "building berth"
cargo build --release --quiet -p berth
berth=$PWD/target/release/berth
blog=examples/blog

public_images=(python:3.11-slim-bookworm postgres:15-bookworm redis:7-bookworm node:20-bookworm-slim debian:bookworm-slim)
public_ok() {
  local i
  for i in "${public_images[@]}"; do
    docker image inspect "$i" >/dev/null 2>&1 && continue
    timeout 120 docker pull -q "$i" >/dev/null 2>&1 || return 1
  done
}
bases=${BLOG_BASES:-}
if [ -z "$bases" ]; then
  if public_ok; then bases=public; else bases=local; fi
fi
if [ "$bases" = local ]; then
  log "public base images are not reachable: using local ones (examples/blog/base-images.sh; a few minutes the first time)"
  vars=$(bash "$blog/base-images.sh" --print-env)
  # shellcheck disable=SC2046
  export $vars
fi

# A generated admin password, kept beside the compose file (berth reads .env there).
if ! grep -q '^BLOG_ADMIN_PASSWORD=' "$blog/.env" 2>/dev/null; then
  (umask 077 && printf 'BLOG_ADMIN_PASSWORD=%s\n' "$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >>"$blog/.env")
  log "generated the admin password into $blog/.env"
fi

(cd "$blog" && "$berth" deploy)

domain=${BLOG_DOMAIN:-blog.localhost}
port=${BLOG_HTTPS_PORT:-443}
url="https://$domain:${port:-443}/"
[ "${port:-443}" = 443 ] && url="https://$domain/"
body=
for _ in $(seq 1 60); do
  body=$(curl -fsSk --resolve "$domain:${port:-443}:127.0.0.1" "${url}api/health" 2>/dev/null) && break
  sleep 1
done
log "${url}api/health answers: ${body:-<no answer>}"
[ -n "$body" ]
log "admin: ${url}admin/ (user admin, password in $blog/.env); the certificate is the edge's local CA's"
echo "$url"
