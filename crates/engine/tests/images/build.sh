#!/usr/bin/env bash
# Builds berth's offline test images (no registry needed): each is `FROM scratch` with the static
# `berth-testapp` binary as /app, listening on 8080.
#
#   berth-test/app:v1          VERSION=v1, HEALTHCHECK /app check http://127.0.0.1:8080/health (1s, retries 2)
#   berth-test/app:v2          VERSION=v2, same healthcheck
#   berth-test/app:bad-health  HEALTH=fail: /health answers 500, so the healthcheck fails
#   berth-test/app:nohealth    VERSION=v1, no HEALTHCHECK
#
# Idempotent and fast: every image carries the label io.berth.test.hash (a hash of the test app's
# sources and this script); when all images carry the current hash nothing is built (not even cargo).
# Concurrent runs are serialised with flock. Usage: build.sh [--force]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
app="$repo/crates/testapp"
repo_name=berth-test/app
tags=(v1 v2 bad-health nohealth)
force=${1:-}

log() { printf '[test-images] %s\n' "$*" >&2; }

hash=$(cat "$app/Cargo.toml" "$app"/src/*.rs "$here/build.sh" | sha256sum | cut -c1-16)

up_to_date() {
  local t
  for t in "${tags[@]}"; do
    [ "$(docker image inspect -f '{{index .Config.Labels "io.berth.test.hash"}}' "$repo_name:$t" 2>/dev/null)" = "$hash" ] \
      || return 1
  done
}

[ "$force" != --force ] && up_to_date && exit 0

exec 9>"${TMPDIR:-/tmp}/berth-test-images.lock"
flock 9
[ "$force" != --force ] && up_to_date && exit 0

target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$repo/target}
log "building the static berth-testapp ($target)"
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release -p berth-testapp --target "$target")
bin="$target_dir/$target/release/berth-testapp"
[ -x "$bin" ] || { log "no binary at $bin"; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/app"
# The binary must run without any file of the host (it is static): check it before building.
"$ctx/app" echo ok >/dev/null

healthcheck='HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["/app","check","http://127.0.0.1:8080/health"]'

dockerfile() { # tag -> Dockerfile text
  local env hc="$healthcheck"
  case "$1" in
    v1) env='ENV VERSION=v1' ;;
    v2) env='ENV VERSION=v2' ;;
    bad-health) env='ENV VERSION=bad-health HEALTH=fail' ;;
    nohealth) env='ENV VERSION=v1'; hc='HEALTHCHECK NONE' ;;
    *) log "unknown tag $1"; exit 1 ;;
  esac
  printf '%s\n' 'FROM scratch' 'COPY app /app' "$env" 'EXPOSE 8080' "$hc" \
    "LABEL io.berth.test.hash=$hash io.berth.test.image=$1" 'CMD ["/app"]'
}

# `docker import --change` equivalent of the Dockerfile, for engines/CLIs where `docker build` fails.
import_image() { # tag
  local t=$1 changes=() env
  case "$t" in
    v1 | nohealth) env='VERSION=v1' ;;
    v2) env='VERSION=v2' ;;
    bad-health) env='VERSION=bad-health HEALTH=fail' ;;
  esac
  changes+=(--change "ENV $env" --change 'EXPOSE 8080' --change 'CMD ["/app"]'
    --change "LABEL io.berth.test.hash=$hash io.berth.test.image=$t")
  [ "$t" = nohealth ] || changes+=(--change "$healthcheck")
  tar -C "$ctx" -c app | docker import "${changes[@]}" - "$repo_name:$t" >/dev/null
}

for t in "${tags[@]}"; do
  dockerfile "$t" >"$ctx/Dockerfile"
  if ! DOCKER_BUILDKIT=0 docker build -q -t "$repo_name:$t" "$ctx" >/dev/null 2>"$ctx/build.err"; then
    log "docker build failed for $t ($(tail -n1 "$ctx/build.err")); using docker import"
    import_image "$t"
  fi
done
up_to_date || { log "images were built but do not carry hash $hash"; exit 1; }
log "built ${tags[*]/#/$repo_name:} (hash $hash)"
