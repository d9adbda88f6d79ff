#!/bin/sh
# Entry point of the frontend image: copies the built app (/dist) into the volume the edge serves
# (x-berth `static` with `spa: true`, mounted here at $DEST, default /srv/frontend), then waits.
#
# No visitor ever gets an index.html whose scripts are missing: Vite names every asset after its
# content hash, so the new assets are copied first (next to the old ones), then index.html is
# replaced in one rename. Old assets stay for the previous two releases (a page loaded before the
# switch still finds its lazy chunks); older ones are removed. The HEALTHCHECK passes once the
# copy is done, so `berth deploy` waits for it.
set -eu
src=${SRC:-/dist}
dst=${DEST:-/srv/frontend}
keep=${KEEP_RELEASES:-3}
id=$(cat "$src/.build-id")
umask 022
rm -f /tmp/published

mkdir -p "$dst/.releases"
cd "$src"
# 1. Everything but index.html, each file through a temporary name and a rename.
find . -type f ! -name index.html ! -name .build-id | sed 's|^\./||' | sort >/tmp/files
while IFS= read -r f; do
  mkdir -p "$dst/$(dirname "$f")"
  cp "$f" "$dst/$f.tmp-$$"
  mv -f "$dst/$f.tmp-$$" "$dst/$f"
done </tmp/files
# 2. index.html last, in one rename.
cp index.html "$dst/.index.html.tmp-$$"
mv -f "$dst/.index.html.tmp-$$" "$dst/index.html"
echo index.html >>/tmp/files
# 3. Remember this release's files; remove files no kept release lists.
cp /tmp/files "$dst/.releases/$id"
touch "$dst/.releases/$id"
ls -1t "$dst/.releases" | head -n "$keep" | sed "s|^|$dst/.releases/|" | xargs cat | sort -u >/tmp/kept
(cd "$dst" && find . -type f ! -path './.releases/*' | sed 's|^\./||' | sort) | comm -23 - /tmp/kept |
  while IFS= read -r f; do rm -f "$dst/$f"; done
ls -1t "$dst/.releases" | tail -n "+$((keep + 1))" | while IFS= read -r r; do rm -f "$dst/.releases/$r"; done
find "$dst" -mindepth 1 -type d -empty -delete

echo "published release $id to $dst ($(wc -l </tmp/files) files)"
touch /tmp/published
# Wait until the task is stopped (a shell `wait` is interrupted by SIGTERM; `sleep` alone is not).
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $! || true
done
