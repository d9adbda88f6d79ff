#!/usr/bin/env bash
# Builds local stand-ins for the public base images the blog's Dockerfiles and compose file use, for
# machines without a registry (tests, CI, the README command offline). Each is a Debian bookworm
# root made with `debootstrap --variant=minbase` plus Debian packages, imported with `docker import`:
#
#   berth-local/python:bookworm    python3 + Django, gunicorn, Celery, redis, psycopg2, Pillow
#                                  (stands in for python:3.11-slim-bookworm; the Dockerfile then skips pip)
#   berth-local/postgres:bookworm  PostgreSQL 15 with an entrypoint like the official postgres image's
#                                  (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD[_FILE], PGDATA; initdb on
#                                  first start) and a pg_isready HEALTHCHECK
#   berth-local/redis:bookworm     redis-server 7 (listens on all interfaces, like the official image) and a
#                                  redis-cli ping HEALTHCHECK
#   berth-local/node:bookworm      nodejs + npm, for the front end's build stage
#   berth-local/debian:bookworm    the bare minbase root (a small final stage)
#
# The Debian mirror is the one this host's apt uses (or $DEBIAN_MIRROR). Cached: every image carries
# the label io.berth.local.hash (a hash of this script); when all images have it nothing happens.
# One debootstrap root (scripts/minbase.sh) is made and copied for every image; the package installs run in parallel and
# each installed root is kept in $BERTH_LOCAL_CACHE (default /var/tmp/berth-local) per package list.
# Usage: base-images.sh [--force] [--print-env]   (--print-env: print the BASE_IMAGE variables to use)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=(python postgres redis node debian)
force=
print_env=
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    --print-env) print_env=1 ;;
    *) echo "usage: $0 [--force] [--print-env]" >&2; exit 2 ;;
  esac
done

log() { printf '[base-images] %s\n' "$*" >&2; }

print_vars() {
  [ -n "$print_env" ] || return 0
  cat <<'EOF'
PYTHON_BASE=berth-local/python:bookworm
POSTGRES_IMAGE=berth-local/postgres:bookworm
REDIS_IMAGE=berth-local/redis:bookworm
NODE_BASE=berth-local/node:bookworm
DEBIAN_BASE=berth-local/debian:bookworm
EOF
}

hash=$(sha256sum "$here/base-images.sh" | cut -c1-16)

up_to_date() {
  local i
  for i in "${images[@]}"; do
    [ "$(docker image inspect -f '{{index .Config.Labels "io.berth.local.hash"}}' "berth-local/$i:bookworm" 2>/dev/null)" = "$hash" ] \
      || return 1
  done
}

if [ -z "$force" ] && up_to_date; then print_vars; exit 0; fi
exec 9>"${TMPDIR:-/tmp}/berth-local-base-images.lock"
flock 9
if [ -z "$force" ] && up_to_date; then print_vars; exit 0; fi

[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, chroot)"; exit 1; }

cache=${BERTH_LOCAL_CACHE:-/var/tmp/berth-local}
mkdir -p "$cache"
work=$(mktemp -d "$cache/work.XXXXXX")
cleanup() {
  local d
  for d in "$work"/*/; do
    [ -d "$d" ] || continue
    umount "$d/proc" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
minbase=$(bash "$here/../../scripts/minbase.sh")

packages() { # image -> Debian packages
  case "$1" in
    python) echo python3 python3-django gunicorn python3-gunicorn python3-psycopg2 python3-celery python3-redis \
      python3-pil ca-certificates libjs-jquery ;; # jquery: the admin's static files link to it
    postgres) echo postgresql-15 postgresql-client-15 ;;
    redis) echo redis-server redis-tools ;;
    node) echo nodejs npm ca-certificates ;;
    debian) echo ;;
  esac
}

make_root() { # image: untar minbase, install packages (cached per package list), add entrypoints
  local i=$1 root="$work/$1" pkgs key
  pkgs=$(packages "$i")
  key=$(printf '%s\n' "$i" "$pkgs" | sha256sum | cut -c1-12)
  mkdir -p "$root"
  if [ -s "$cache/root-$i-$key.tar" ]; then
    tar -C "$root" -xf "$cache/root-$i-$key.tar"
  else
    tar -C "$root" -xf "$minbase"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    if [ "$i" = postgres ]; then
      mkdir -p "$root/etc/postgresql-common"
      echo 'create_main_cluster = false' >"$root/etc/postgresql-common/createcluster.conf"
    fi
    if [ -n "$pkgs" ]; then
      mount -t proc proc "$root/proc"
      # shellcheck disable=SC2086
      chroot "$root" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8;
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs" >"$work/$i.log" 2>&1 \
        || { umount "$root/proc"; tail -n 20 "$work/$i.log" >&2; return 1; }
      umount "$root/proc"
    fi
    rm -f "$root/usr/sbin/policy-rc.d"
    rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb "$root/tmp/"*
    : >"$root/etc/resolv.conf"
    tar -C "$root" -cf "$cache/root-$i-$key.tar.tmp" . && mv "$cache/root-$i-$key.tar.tmp" "$cache/root-$i-$key.tar"
  fi
  # Local CAs this host trusts (e.g. a proxy's), so that pip/npm inside builds from these bases
  # work where the host's do.
  if [ -x "$root/usr/sbin/update-ca-certificates" ] && ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || log "update-ca-certificates failed in $i"
  fi
  case "$i" in
    postgres) write_postgres_entrypoint "$root" ;;
    redis) write_redis_entrypoint "$root" ;;
  esac
}

write_postgres_entrypoint() {
  mkdir -p "$1/usr/local/bin" "$1/docker-entrypoint-initdb.d"
  cat >"$1/usr/local/bin/docker-entrypoint.sh" <<'EOS'
#!/bin/sh
# Behaves like the official postgres image's entrypoint for the variables the blog uses:
# POSTGRES_USER (default postgres), POSTGRES_DB (default the user), POSTGRES_PASSWORD or
# POSTGRES_PASSWORD_FILE, PGDATA (default /var/lib/postgresql/data). initdb on first start.
set -eu
PATH=/usr/lib/postgresql/15/bin:$PATH
export PATH
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  export POSTGRES_PASSWORD
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "postgres: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required" >&2; exit 1; }
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    postgres --single -D "$PGDATA" postgres <<EOF >/dev/null
CREATE DATABASE "$db" OWNER "$user";
EOF
  fi
  echo "postgres: initialised $PGDATA (user $user, database $db)"
fi
unset POSTGRES_PASSWORD
# The official image stops postgres with SIGINT (fast shutdown: ends sessions, then a clean
# checkpoint); `docker import` cannot set STOPSIGNAL, so turn the SIGTERM Swarm sends into SIGINT.
postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql &
pid=$!
trap 'kill -INT "$pid"' TERM INT
rc=0
wait "$pid" || rc=$?
if kill -0 "$pid" 2>/dev/null; then # the wait was interrupted by the signal: wait for the shutdown
  rc=0
  wait "$pid" || rc=$?
fi
exit "$rc"
EOS
  chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"
  mkdir -p "$1/var/lib/postgresql/data"
}

write_redis_entrypoint() {
  mkdir -p "$1/usr/local/bin" "$1/data"
  cat >"$1/usr/local/bin/docker-entrypoint.sh" <<'EOS'
#!/bin/sh
# Like the official redis image: `redis-server ARGS` listens on all interfaces, without protected
# mode, working directory /data, as the redis user.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  if [ "$(id -u)" = 0 ]; then
    chown redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server --bind 0.0.0.0 --protected-mode no --dir /data "$@"
  fi
  exec redis-server --bind 0.0.0.0 --protected-mode no --dir /data "$@"
fi
exec "$@"
EOS
  chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"
}

changes() { # image -> --change arguments, one per line
  echo "LABEL io.berth.local.hash=$hash io.berth.local.image=$1"
  echo "ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  case "$1" in
    python) echo 'CMD ["python3"]' ;;
    postgres)
      echo 'ENV PGDATA=/var/lib/postgresql/data'
      echo 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
      echo 'CMD ["postgres"]'
      echo 'EXPOSE 5432'
      echo 'HEALTHCHECK --interval=2s --timeout=3s --retries=10 CMD ["sh","-c","pg_isready -q -h 127.0.0.1 -U \"${POSTGRES_USER:-postgres}\""]'
      ;;
    redis)
      echo 'WORKDIR /data'
      echo 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
      echo 'CMD ["redis-server"]'
      echo 'EXPOSE 6379'
      echo 'HEALTHCHECK --interval=2s --timeout=3s --retries=10 CMD ["redis-cli","ping"]'
      ;;
    node) echo 'CMD ["node"]' ;;
    debian) echo 'CMD ["bash"]' ;;
  esac
}

pids=()
for i in "${images[@]}"; do
  make_root "$i" &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { log "a package install failed"; exit 1; }

import_root() { # image
  local args=() c
  while IFS= read -r c; do args+=(--change "$c"); done < <(changes "$1")
  tar -C "$work/$1" -c . | docker import "${args[@]}" - "berth-local/$1:bookworm" >/dev/null
  rm -rf "${work:?}/$1"
}
pids=()
for i in "${images[@]}"; do
  import_root "$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { log "docker import failed"; exit 1; }
up_to_date || { log "images were imported but do not carry hash $hash"; exit 1; }
log "built ${images[*]/#/berth-local/} (tag bookworm, hash $hash) in $(($(date +%s) - start)) s"
print_vars
