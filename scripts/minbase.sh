#!/usr/bin/env bash
# Makes (once) a Debian bookworm root with `debootstrap --variant=minbase` from the mirror this
# host's apt uses (or $DEBIAN_MIRROR), with that mirror in its apt sources, and prints the path of
# its tar: $BERTH_LOCAL_CACHE/minbase-bookworm.tar (default /var/tmp/berth-local). The base of the
# example's local images (examples/blog/base-images.sh) and of the many-machine tests' bare host
# (crates/berth/tests/lab/bare-root.sh). Needs root and debootstrap.
set -euo pipefail

log() { printf '[minbase] %s\n' "$*" >&2; }

cache=${BERTH_LOCAL_CACHE:-/var/tmp/berth-local}
minbase="$cache/minbase-bookworm.tar"
[ -s "$minbase" ] && { echo "$minbase"; exit 0; }
mkdir -p "$cache"
exec 9>"$cache/minbase.lock"
flock 9
[ -s "$minbase" ] && { echo "$minbase"; exit 0; }

[ "$(id -u)" = 0 ] || { log "needs root (debootstrap)"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }

# The mirror and suites this host's apt uses: deb822 .sources files and one-line .list files.
host_sources() { # prints "uri suite" lines for bookworm suites
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN{RS=""; FS="\n"} {
      uris=""; suites=""; comps=""
      for (i=1;i<=NF;i++) {
        if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/,"",$i); uris=$i }
        if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/,"",$i); suites=$i }
        if ($i ~ /^Components:/) { comps=$i }
      }
      if (comps !~ /main/) next
      n=split(uris,u," "); m=split(suites,s," ")
      for (a=1;a<=n;a++) for (b=1;b<=m;b++) print u[a], s[b]
    }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i+1) }' "$f"
  done
}
mapfile -t sources < <(host_sources | awk '$2 ~ /^bookworm/' | sort -u)
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  for s in "${sources[@]}"; do
    set -- $s
    [ "$2" = bookworm ] && { mirror=$1; break; }
  done
fi
[ -n "$mirror" ] || { log "no bookworm mirror in this host's apt sources; set DEBIAN_MIRROR"; exit 1; }

work=$(mktemp -d "$cache/minbase.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
log "debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$work/minbase" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
{
  for s in "${sources[@]}"; do
    set -- $s
    echo "deb $1 $2 main"
  done
} >"$work/minbase/etc/apt/sources.list"
[ -s "$work/minbase/etc/apt/sources.list" ] || echo "deb $mirror bookworm main" >"$work/minbase/etc/apt/sources.list"
rm -rf "$work/minbase/var/cache/apt/archives/"*.deb "$work/minbase/var/lib/apt/lists/"*
tar -C "$work/minbase" -cf "$minbase.tmp" . && mv "$minbase.tmp" "$minbase"
log "minbase root ready ($(($(date +%s) - start)) s)"
echo "$minbase"
