#!/usr/bin/env bash
# Test hosts for berth's many-machine tests: N "machines" on this one, each a network namespace
# with its own dockerd (NOT in swarm mode: berth's `cluster up` makes the swarm) and its own sshd
# (key auth only). The hosts sit on a bridge (192.168.87.0/24 by default) that the root namespace
# reaches through a veth, so berth (running on the host) connects to them over real SSH.
#
#   lab.sh up N        start hosts 1..N (fresh state); prints the lab's env on stdout
#   lab.sh down        stop everything and remove all state
#   lab.sh kill I      SIGKILL host I's dockerd, containerd and containers (a crashed machine; sshd stays)
#   lab.sh start I     start host I's dockerd again (the machine comes back)
#   lab.sh cut I       cut host I off the network (its link goes down; processes keep running)
#   lab.sh heal I      put host I back on the network
#
# Each dockerd listens on /run/berth-lab/<ip>/docker.sock (the targets' `socket:` is
# /run/berth-lab/{host}/docker.sock): the hosts share this machine's mount namespace, so every
# node needs its own path. SSH sessions get DOCKER_HOST set to it, so that the docker CLI's
# `DOCKER_HOST=ssh://` (which runs `docker system dial-stdio` on the host) reaches the same engine. Images given in LAB_IMAGES are copied into every node (docker save|load), those in LAB_IMAGES_<i> into node i.
# Hosts listed in LAB_BARE (e.g. "2") are bare machines instead: no dockerd, their own root file system
# (the tar LAB_BARE_ROOT, see bare-root.sh: Debian without Docker, apt reaching only a local repository)
# where their sshd runs (root and `deploy`, a sudoer, log in with the lab's key), so that `cluster up` installs Docker there as on a fresh server. Their
# engine, once installed, listens on the same socket path as the others' (a daemon.json placed in the
# root beforehand; /run/berth-lab/<ip> on this machine is a link into the root).
# Every name starts with $LAB_PREFIX (default "blab"; a second lab beside the first needs another prefix, LAB_NET, LAB_BASE and LAB_RUN); `down` touches nothing else. Needs root, iproute2, openssh-server.
set -euo pipefail

NET=${LAB_NET:-192.168.87}
BASE=${LAB_BASE:-/var/lib/berth-lab}
RUN=${LAB_RUN:-/run/berth-lab}
P=${LAB_PREFIX:-blab}
BRNS=$P-br

log() { printf '%s [lab] %s\n' "$(date +%T.%3N)" "$*" >&2; }
nip() { echo "$NET.$((10 + $1))"; }
sock() { echo "$RUN/$(nip "$1")/docker.sock"; }
dk() { local i=$1; shift; docker -H "unix://$(sock "$i")" "$@"; }

start_dockerd() {
  local i=$1 n=n$1 ip
  ip=$(nip "$i")
  mkdir -p "$BASE/$n" "$RUN/$ip"
  cat >"$BASE/$n/daemon.json" <<JSON
{
  "data-root": "$BASE/$n/docker",
  "exec-root": "$RUN/x$i",
  "hosts": ["unix://$(sock "$i")"],
  "pidfile": "$RUN/$n.pid",
  "cgroup-parent": "/$P-$n",
  "storage-driver": "overlay2",
  "log-opts": {"max-size": "5m", "max-file": "2"},
  "default-address-pools": [{"base": "10.210.0.0/16", "size": 24}]
}
JSON
  # nsenter --net (not `ip netns exec`, which remounts /sys and hides cgroups from dockerd).
  setsid nsenter --net="/run/netns/$P-$n" unshare --uts \
    sh -c "hostname $P-$n; exec dockerd --config-file $BASE/$n/daemon.json" \
    </dev/null >>"$BASE/$n/dockerd.log" 2>&1 &
}

wait_dockerd() {
  local i=$1
  for _ in $(seq 1 300); do dk "$i" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "dockerd n$i did not come up; see $BASE/n$i/dockerd.log"
  return 1
}

# sshd_config of host i: key logins only, socket forwarding, DOCKER_HOST set; then the lines given
# (listen address, host key, pid and authorized-keys files, which differ between lab and bare hosts).
sshd_config() {
  local i=$1
  shift
  printf '%s\n' "ListenAddress $(nip "$i"):22" "$@" \
    "PermitRootLogin prohibit-password" "PasswordAuthentication no" "KbdInteractiveAuthentication no" \
    "UsePAM no" "PrintMotd no" "AllowStreamLocalForwarding yes" "SetEnv DOCKER_HOST=unix://$(sock "$i")"
}

start_sshd() {
  local i=$1 n=n$1 S=$BASE/ssh
  [ -f "$S/host_$n" ] || ssh-keygen -q -t ed25519 -N '' -f "$S/host_$n" -C "$P-$n"
  sshd_config "$i" "HostKey $S/host_$n" "PidFile $RUN/sshd-$n.pid" "AuthorizedKeysFile $S/authorized_keys" \
    "StrictModes no" >"$S/sshd_config.$n"
  setsid nsenter --net="/run/netns/$P-$n" unshare --uts \
    sh -c "hostname $P-$n; exec /usr/sbin/sshd -D -e -f $S/sshd_config.$n" \
    </dev/null >>"$BASE/sshd-$n.log" 2>&1 &
}

is_bare() { [[ " ${LAB_BARE:-} " == *" $1 "* ]]; }

start_bare() {
  local i=$1 n=n$1 S=$BASE/ssh ip root
  ip=$(nip "$i")
  root=$BASE/$n/root
  [ -s "${LAB_BARE_ROOT:-}" ] || { log "LAB_BARE needs LAB_BARE_ROOT (bare-root.sh)"; return 1; }
  mkdir -p "$root"
  tar -C "$root" -xf "$LAB_BARE_ROOT"
  [ -f "$S/host_$n" ] || ssh-keygen -q -t ed25519 -N '' -f "$S/host_$n" -C "$P-$n"
  install -m 600 "$S/host_$n" "$root/etc/ssh/lab_host_key"
  install -m 644 "$S/authorized_keys" "$root/etc/ssh/lab_authorized_keys"
  echo "127.0.1.1 $P-$n" >>"$root/etc/hosts"
  mkdir -p "$root/run/sshd" "$root/etc/docker" "$root$RUN/$ip" "$RUN"
  ln -sfn "$root$RUN/$ip" "$RUN/$ip"
  # What an operator's image would carry: where the engine listens, and this lab's cgroup and
  # address pools (so that `lab.sh down` finds its containers and the pools do not collide).
  cat >"$root/etc/docker/daemon.json" <<JSON
{
  "hosts": ["unix://$(sock "$i")"],
  "cgroup-parent": "/$P-$n",
  "storage-driver": "overlay2",
  "log-opts": {"max-size": "5m", "max-file": "2"},
  "default-address-pools": [{"base": "10.210.0.0/16", "size": 24}]
}
JSON
  sshd_config "$i" "HostKey /etc/ssh/lab_host_key" "PidFile /run/sshd-lab.pid" \
    "AuthorizedKeysFile /etc/ssh/lab_authorized_keys" >"$root/etc/ssh/sshd_config.lab"
  # Its own mount namespace whose root is the host's root (pivot_root, not chroot: runc's `exec`
  # into a container, e.g. a health check, enters the namespace's root), with /proc, /sys, /dev;
  # everything ends with the host's processes.
  mkdir -p "$root/.oldroot"
  setsid nsenter --net="/run/netns/$P-$n" unshare --uts --mount --propagation private \
    sh -c "hostname $P-$n && mount --bind $root $root && mount -t proc proc $root/proc \
      && mount --rbind /sys $root/sys && mount --rbind /dev $root/dev && cd $root && pivot_root . .oldroot \
      && exec /usr/sbin/chroot . /bin/sh -c 'umount -l /.oldroot && exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config.lab'" \
    </dev/null >>"$BASE/sshd-$n.log" 2>&1 &
}

# PIDs of processes that belong to host i: every process in the host's network namespace (its
# dockerd, containerd, shims, sshd) and every process of its containers, which have network
# namespaces of their own but live in the cgroup the host's dockerd puts them under
# (cgroup-parent /$P-n<i>, cgroup v1 or v2).
pids_of() {
  ip netns pids "$P-n$1" 2>/dev/null || true
  grep -l ":/$P-n$1/" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 || true
}

down() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  # Containers of the nodes' dockerds (their own network namespaces, the nodes' cgroups);
  # their mounts are under $RUN/x* and $BASE/n*/docker.
  grep -l ":/$P-n[0-9]*/" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 | xargs -r kill -9 2>/dev/null || true
  sleep 0.3
  for m in $(awk '{print $2}' /proc/mounts | grep -E "^($RUN|$BASE)/" | sort -r || true); do
    umount -l "$m" 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del $P-host 2>/dev/null || true
  rm -rf "$RUN" "$BASE"
  # cgroups the nodes' containers used
  for cg in /sys/fs/cgroup/$P-n*; do [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; done
  true
}

case "${1:-}" in
up)
  n=${2:?usage: lab.sh up N}
  [ "$(id -u)" = 0 ] || { echo "lab.sh needs root" >&2; exit 1; }
  down
  mkdir -p "$BASE/ssh" "$RUN" /run/sshd
  chmod 700 "$BASE/ssh"
  ip netns add "$BRNS"
  ip -n "$BRNS" link set lo up
  ip -n "$BRNS" link add br0 type bridge
  ip -n "$BRNS" link set br0 up
  for i in $(seq 1 "$n"); do
    ip netns add "$P-n$i"
    ip link add eth0 netns "$P-n$i" type veth peer name "n$i" netns "$BRNS"
    ip -n "$BRNS" link set "n$i" master br0 up
    ip -n "$P-n$i" link set lo up
    ip -n "$P-n$i" addr add "$(nip "$i")/24" dev eth0
    ip -n "$P-n$i" link set eth0 up
  done
  ip link add $P-host type veth peer name host netns "$BRNS"
  ip -n "$BRNS" link set host master br0 up
  ip addr add "$NET.1/24" dev $P-host
  ip link set $P-host up
  ssh-keygen -q -t ed25519 -N '' -f "$BASE/ssh/id_ed25519" -C berth-lab
  cp "$BASE/ssh/id_ed25519.pub" "$BASE/ssh/authorized_keys"
  chmod 600 "$BASE/ssh/authorized_keys"
  : >"$BASE/ssh/known_hosts"
  for i in $(seq 1 "$n"); do
    if is_bare "$i"; then
      start_bare "$i"
    else
      start_dockerd "$i"
      start_sshd "$i"
    fi
  done
  for i in $(seq 1 "$n"); do is_bare "$i" || wait_dockerd "$i"; done
  for i in $(seq 1 "$n"); do
    echo "$(nip "$i") $(cut -d' ' -f1-2 "$BASE/ssh/host_n$i.pub")" >>"$BASE/ssh/known_hosts"
  done
  # Images: LAB_IMAGES into every host, LAB_IMAGES_<i> into host i only (e.g. a database's image
  # where its data is pinned); one `docker save` per list, the loads in parallel.
  pids=()
  if [ -n "${LAB_IMAGES:-}" ]; then
    # shellcheck disable=SC2086
    docker save $LAB_IMAGES >"$BASE/images.tar"
    for i in $(seq 1 "$n"); do
      is_bare "$i" && continue
      dk "$i" load -q -i "$BASE/images.tar" >/dev/null &
      pids+=($!)
    done
  fi
  for i in $(seq 1 "$n"); do
    var=LAB_IMAGES_$i
    [ -n "${!var:-}" ] || continue
    # shellcheck disable=SC2086
    docker save ${!var} >"$BASE/images-$i.tar"
    dk "$i" load -q -i "$BASE/images-$i.tar" >/dev/null &
    pids+=($!)
  done
  [ "${#pids[@]}" -eq 0 ] || wait "${pids[@]}"
  rm -f "$BASE"/images*.tar
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 50); do
      (exec 3<>"/dev/tcp/$(nip "$i")/22") 2>/dev/null && break
      sleep 0.1
    done
  done
  echo "LAB_KEY=$BASE/ssh/id_ed25519"
  echo "LAB_KNOWN_HOSTS=$BASE/ssh/known_hosts"
  echo "LAB_SOCKET=$RUN/{host}/docker.sock"
  echo "LAB_HOSTS=$(for i in $(seq 1 "$n"); do printf '%s ' "$(nip "$i")"; done)"
  ;;
down) down ;;
kill)
  i=${2:?usage: lab.sh kill I}
  pids_of "$i" | grep -v "^$(cat "$RUN/sshd-n$i.pid" 2>/dev/null || echo none)\$" | xargs -r kill -9 2>/dev/null || true
  ;;
start)
  i=${2:?usage: lab.sh start I}
  start_dockerd "$i"
  wait_dockerd "$i"
  ;;
cut)
  i=${2:?usage: lab.sh cut I}
  ip -n "$P-n$i" link set eth0 down
  ;;
heal)
  i=${2:?usage: lab.sh heal I}
  ip -n "$P-n$i" link set eth0 up
  ;;
*)
  echo "usage: lab.sh up N | down | kill I | start I | cut I | heal I" >&2
  exit 2
  ;;
esac
