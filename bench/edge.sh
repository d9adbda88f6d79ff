#!/usr/bin/env bash
# Side-by-side benchmark of berth's edge against nginx and haproxy on loopback.
# Same backend (nginx returning a fixed body), same 4 KB static file, same self-signed ECDSA certificate.
# Prints a Markdown table: req/s and p99 (wrk -t1, 64 and 256 connections) for proxied GET and static file over
# HTTP and HTTPS, full TLS handshakes/s (no resumption), idle RSS and RSS with 10,000 keep-alive connections.
#
#   bench/edge.sh            # DUR=8 seconds per wrk run
#   DUR=15 bench/edge.sh
#   NO_BUILD=1 bench/edge.sh # skip the cargo build (binaries already in target/release/examples)
#   CASES='proxied.*http,' QUICK=1 bench/edge.sh   # only the wrk rows matching the regex; QUICK: no handshakes/10k
#
# Needs root for apt-get when nginx/haproxy/wrk are missing. Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-8}
HS_SECS=${HS_SECS:-5}
CONNS_10K=${CONNS_10K:-10000}
W=$(mktemp -d /tmp/edgebench.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

need=()
for t in nginx haproxy wrk; do command -v "$t" >/dev/null || need+=("$t"); done
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [[ -z ${NO_BUILD:-} ]]; then # NO_BUILD=1: use the binaries already in target/release/examples
    echo "building edge (release)..." >&2
    cargo build -q --release -p berth-edge --example edge-serve --example tls-handshakes
fi
EDGE=target/release/examples/edge-serve
HS=target/release/examples/tls-handshakes

# --- shared material ---------------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
    -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" >"$W/combined.pem"
mkdir -p "$W/www/static"
head -c 4096 /dev/urandom | base64 -w 76 | head -c 4096 >"$W/www/static/4k.txt"
chmod -R a+rX "$W"

BACKEND=19800
declare -A HTTP=([nginx]=19801 [haproxy]=19802 [edge]=19803)
declare -A HTTPS=([nginx]=19841 [haproxy]=19842 [edge]=19843)
declare -A PID

cat >"$W/backend.conf" <<EOF
user root;
worker_processes 2;
worker_rlimit_nofile 20000;
pid $W/backend.pid;
error_log $W/backend.err warn;
events { worker_connections 10000; }
http {
    access_log off;
    keepalive_requests 10000000;
    server { listen 127.0.0.1:$BACKEND; location / { return 200 "hello from the backend\n"; } }
}
EOF
cat >"$W/nginx.conf" <<EOF
user root;
worker_processes 2;
worker_rlimit_nofile 20000;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 15000; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    ssl_protocols TLSv1.2 TLSv1.3;
    upstream be { server 127.0.0.1:$BACKEND; keepalive 256; }
    server {
        listen ${HTTP[nginx]};
        listen ${HTTPS[nginx]} ssl http2;
        server_name localhost;
        ssl_certificate $W/cert.pem;
        ssl_certificate_key $W/key.pem;
        location /api { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
                        proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; }
        location /static/ { root $W/www; }
    }
}
EOF
cat >"$W/haproxy.cfg" <<EOF
global
    nbthread 2
    # haproxy wants 2 fds per connection and the fd limit here is 20000, so it cannot take all 10,000.
    maxconn 9990
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 120s
    timeout server 60s
    timeout http-keep-alive 120s
frontend f
    bind 127.0.0.1:${HTTP[haproxy]}
    bind 127.0.0.1:${HTTPS[haproxy]} ssl crt $W/combined.pem alpn h2,http/1.1
    http-request return status 200 content-type text/plain file $W/www/static/4k.txt if { path_beg /static/ }
    option forwardfor
    default_backend be
backend be
    http-reuse always
    server s1 127.0.0.1:$BACKEND
EOF
cat >"$W/edge.json" <<EOF
{
  "domains": ["localhost"], "listen": "127.0.0.1", "http_port": ${HTTP[edge]}, "https_port": ${HTTPS[edge]},
  "admin_addr": "127.0.0.1:19180", "access_log": false,
  "tls": {"mode": "files", "certs": [{"cert": "$W/cert.pem", "key": "$W/key.pem"}], "redirect": false},
  "limits": {"header_timeout_ms": 120000},
  "routes": [{"path": "/api", "backend": {"service": "backend", "port": $BACKEND}}],
  "statics": [{"path": "/static", "root": "$W/www/static"}]
}
EOF

nginx -c "$W/backend.conf" -g 'daemon off;' & PIDS+=($!)
nginx -c "$W/nginx.conf" -g 'daemon off;' & PID[nginx]=$!; PIDS+=($!)
haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 & PID[haproxy]=$!; PIDS+=($!)
EDGE_BACKENDS="backend=127.0.0.1:$BACKEND" "$EDGE" "$W/edge.json" >"$W/edge.log" 2>&1 & PID[edge]=$!; PIDS+=($!)

for p in $BACKEND "${HTTP[@]}" "${HTTPS[@]}"; do
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
sleep 1.5 # the edge's first discovery + health check

# RSS of a process and its children, in MB.
rss() {
    local kb
    kb=$( (ps -o rss= -p "$1"; ps -o rss= --ppid "$1") | awk '{s+=$1} END {print s}')
    awk -v k="$kb" 'BEGIN {printf "%.1f", k/1024}'
}

servers=(nginx haproxy edge)
declare -A R
for s in "${servers[@]}"; do
    curl -s -o /dev/null -H 'Host: localhost' "http://127.0.0.1:${HTTP[$s]}/static/4k.txt" || true
    curl -sk -o /dev/null "https://localhost:${HTTPS[$s]}/api/x" || true
    R[$s,idle]=$(rss "${PID[$s]}")
done

# wrk: "req/s|p99ms"
run_wrk() {
    local out rps p99
    out=$(wrk -t1 -c"$2" -d"${DUR}s" --latency -H 'Host: localhost' "$1" 2>&1)
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p99=$(awk '$1=="99%" {v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
        if (u=="us") v/=1000; else if (u=="s") v*=1000; printf "%.2f", v}' <<<"$out")
    local errs
    errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
    [[ -n $errs ]] && echo "  $1 c$2: $errs" >&2
    echo "${rps:-0}|${p99:-?}"
}

rows=()
for proto in http https; do
    for kind in proxied static; do
        for c in 64 256; do
            row="$kind GET, $proto, $c conns"
            [[ $row =~ ${CASES:-.} ]] || continue
            rows+=("$row")
            for s in "${servers[@]}"; do
                if [[ $proto == http ]]; then base="http://127.0.0.1:${HTTP[$s]}"; else base="https://localhost:${HTTPS[$s]}"; fi
                if [[ $kind == proxied ]]; then path=/api/bench; else path=/static/4k.txt; fi
                echo "wrk $s $row" >&2
                R[$s,$row]=$(run_wrk "$base$path" "$c")
            done
        done
    done
done

for s in "${servers[@]}"; do
    [[ -n ${QUICK:-} ]] && break
    echo "handshakes $s" >&2
    R[$s,hs]=$("$HS" "127.0.0.1:${HTTPS[$s]}" localhost "$HS_SECS" 2 | awk '{print $1}')
done

# 10k keep-alive connections, each having completed one request, held open while RSS is read.
cat >"$W/hold.py" <<'EOF'
import asyncio, os, subprocess, sys
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
async def one(sem, conns):
    async with sem:
        await asyncio.wait_for(connect_one(conns), 20)
async def connect_one(conns):
    if True:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET /static/4k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
        await r.readexactly(length)
        conns.append((r, w))
async def main():
    sem, conns = asyncio.Semaphore(256), []
    res = await asyncio.gather(*[one(sem, conns) for _ in range(n)], return_exceptions=True)
    bad = sum(1 for x in res if isinstance(x, Exception))
    await asyncio.sleep(1)
    print(len(conns), bad, flush=True)
    await asyncio.sleep(3)
asyncio.run(main())
EOF
for s in "${servers[@]}"; do
    [[ -n ${QUICK:-} ]] && break
    echo "10k connections $s" >&2
    python3 "$W/hold.py" "${HTTP[$s]}" "$CONNS_10K" "${PID[$s]}" >"$W/hold.$s" &
    hp=$!
    for _ in $(seq 600); do [[ -s $W/hold.$s ]] && break; sleep 0.1; done
    R[$s,rss10k]=$(rss "${PID[$s]}")
    read -r okc badc <"$W/hold.$s" || true
    R[$s,held]="${okc:-0}"
    wait $hp || true
done

echo
echo "| test | nginx req/s | nginx p99 ms | haproxy req/s | haproxy p99 ms | edge req/s | edge p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
    line="| $row"
    for s in "${servers[@]}"; do line+=" | ${R[$s,$row]%%|*} | ${R[$s,$row]##*|}"; done
    echo "$line |"
done
echo "| full TLS handshakes/s (2 client threads) | ${R[nginx,hs]} | | ${R[haproxy,hs]} | | ${R[edge,hs]} | |"
echo "| idle RSS MB | ${R[nginx,idle]} | | ${R[haproxy,idle]} | | ${R[edge,idle]} | |"
echo "| RSS MB, ${CONNS_10K} keep-alive conns (held: nginx ${R[nginx,held]}, haproxy ${R[haproxy,held]}, edge ${R[edge,held]}) | ${R[nginx,rss10k]} | | ${R[haproxy,rss10k]} | | ${R[edge,rss10k]} | |"
echo
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(haproxy -v | head -1 | awk '{print "haproxy " $3}'); haproxy serves the static file with 'http-request return file' (from memory). RSS includes nginx workers." 
