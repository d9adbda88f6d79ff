#!/usr/bin/env bash
# Makes (once) the root file system of a "bare" lab host: Debian bookworm minbase
# (scripts/minbase.sh) with sshd, sudo and a user `deploy` who may use it without a password, and
# nothing of Docker, whose apt has a single source, a local
# repository inside the root with the `docker.io` package and everything `apt-get install docker.io`
# adds to this root (recommends included). `berth cluster up` can then install the distribution's
# Docker engine on that host the way it does on a real server, while the host reaches no address
# but the lab's: the packages are downloaded here, once, from the mirror this machine's apt uses.
#
# Prints the path of the tar: $BERTH_LOCAL_CACHE/bare-root-<hash>.tar (default /var/tmp/berth-local).
# lab.sh starts hosts listed in LAB_BARE from it (LAB_BARE_ROOT). Needs root, debootstrap, dpkg-dev.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[bare-root] %s\n' "$*" >&2; }

cache=${BERTH_LOCAL_CACHE:-/var/tmp/berth-local}
key=$(sha256sum "$here/bare-root.sh" | cut -c1-12)
out="$cache/bare-root-$key.tar"
[ -s "$out" ] && { echo "$out"; exit 0; }
mkdir -p "$cache"
exec 9>"$cache/bare-root.lock"
flock 9
[ -s "$out" ] && { echo "$out"; exit 0; }
command -v dpkg-scanpackages >/dev/null || { log "dpkg-scanpackages is missing (apt-get install dpkg-dev)"; exit 1; }

minbase=$(bash "$here/../../../../scripts/minbase.sh")
work=$(mktemp -d "$cache/bare.XXXXXX")
root="$work/root"
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
start=$(date +%s)
mkdir -p "$root"
tar -C "$root" -xf "$minbase"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# No service starts while the root is made.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
chroot "$root" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8;
  apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server sudo \
  && apt-get clean && apt-get install -y -qq --download-only docker.io" >"$work/apt.log" 2>&1 \
  || { tail -n 20 "$work/apt.log" >&2; exit 1; }
umount "$root/proc"
# The login of a cloud image: a user with passwordless sudo (`cluster up` installs through it).
# '*': no password, yet not locked (sshd refuses a locked account even a key).
chroot "$root" useradd -m -s /bin/sh -p '*' deploy
echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/deploy"
chmod 0440 "$root/etc/sudoers.d/deploy"
repo="$root/var/local/berth-debs"
mkdir -p "$repo"
mv "$root/var/cache/apt/archives/"*.deb "$repo/"
(cd "$repo" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null | gzip -9 >Packages.gz)
echo 'deb [trusted=yes] file:/var/local/berth-debs ./' >"$root/etc/apt/sources.list"
rm -f "$root/etc/apt/sources.list.d/"* "$root/usr/sbin/policy-rc.d"
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/tmp/"*
rm -f "$root/etc/ssh/ssh_host_"*
: >"$root/etc/resolv.conf"
tar -C "$root" -cf "$out.tmp" . && mv "$out.tmp" "$out"
find "$cache" -maxdepth 1 -name 'bare-root-*.tar' ! -path "$out" -delete
log "bare root ready: $(ls "$repo" | grep -c '\.deb$') packages for docker.io in its local repository ($(($(date +%s) - start)) s)"
echo "$out"
