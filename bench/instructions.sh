#!/usr/bin/env bash
# CPU instructions per request of a gateway build, counted by valgrind (callgrind): the one
# speed figure this shared, noisy VM cannot blur. Starts an nginx origin serving 1 KiB, runs the
# gateway under callgrind (access log on; concurrency gate and event-loop guard off, so nothing
# is shed under valgrind's slowness), sends 4,000 warm-up requests, zeroes the counters, sends
# 4,000 more with h2load and prints instructions per request.
#
# Usage: bench/instructions.sh [NODE] [CLI]   (default: the node on PATH, dist/cli.js)
# BODY=1m counts the instructions per 1 MiB download instead (N=400 by default, 16 at a time),
# the CPU cost of relaying large bodies, which the VM's noise cannot blur either.
# Needs: valgrind, nginx, h2load (nghttp2-client). Takes about two minutes.
set -euo pipefail
NODE=${1:-node}
CLI=${2:-"$(dirname "$0")/../dist/cli.js"}
BODY=${BODY:-1k}
if [ "$BODY" = 1m ]; then N=${N:-400} C=${C:-16}; else BODY=1k N=${N:-4000} C=${C:-8}; fi
PORT=${PORT:-18380} ORIGIN=${ORIGIN:-18301} ADMIN=${ADMIN:-18391}
W=$(mktemp -d /tmp/gangway-instructions.XXXX)
# nginx workers run as an unprivileged user and must be able to read the files.
chmod 755 "$W"
mkdir -p "$W/www"
head -c 1024 /dev/zero | tr '\0' a > "$W/www/1k"
head -c 1048576 /dev/zero | tr '\0' b > "$W/www/1m"
cat > "$W/nginx.conf" <<NGINX
daemon on; worker_processes 1; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$ORIGIN; root $W/www; } }
NGINX
nginx -c "$W/nginx.conf" -p "$W"
cat > "$W/gangway.yaml" <<YAML
listen: "127.0.0.1:$PORT"
admin: "127.0.0.1:$ADMIN"
upstreams:
  origin: { hosts: ["127.0.0.1:$ORIGIN"], concurrency: { enabled: false } }
routes:
  - { match: { path: "/" }, upstream: origin }
server: { maxEventLoopDelay: 0 }
log: { pretty: false }
YAML
valgrind --tool=callgrind --smc-check=all --callgrind-out-file="$W/callgrind.%p" "$NODE" "$CLI" start -c "$W/gangway.yaml" > "$W/gateway.log" 2>&1 &
PID=$!
cleanup() { kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; kill "$(cat "$W/nginx.pid")" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$PORT/1k" && break; sleep 0.2; done
h2load --h1 -n $N -c $C "http://127.0.0.1:$PORT/$BODY" > /dev/null
callgrind_control -z "$PID" > /dev/null
h2load --h1 -n $N -c $C "http://127.0.0.1:$PORT/$BODY" | grep -E "requests:|status codes:" | tee "$W/h2load.txt"
callgrind_control -d "$PID" > /dev/null
sleep 1
IR=$(grep -h '^summary:' "$W"/callgrind.*.1 | awk '{print $2}')
# Per answer that succeeded: a run where some failed is not flattered by the ones that did no work.
OK=$(awk '/^requests:/{for (i = 1; i < NF; i++) if ($(i + 1) ~ /^succeeded/) print $i}' "$W/h2load.txt")
echo "$("$NODE" --version) $CLI: $((IR / OK)) instructions per request ($BODY, $OK succeeded)"
