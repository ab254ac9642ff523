#!/bin/bash
# What identity costs, in one run on this machine (issue 13's "Cost, measured"): handshakes per second and server
# CPU per handshake with no token, an HS256 token and an ES256 token; broadcast deliveries per server CPU-second with
# 1,000 /subscribe sockets anonymous (tokens off) and with every socket authenticated (tokens required). Server
# pinned to CPU 1, load on CPU 0. Usage: scripts/auth-cost.sh [SWITCHBOARD_BINARY] (default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-}"
if [ -z "$BIN" ]; then swift build -c release --product switchboard >/dev/null; BIN="$(swift build -c release --show-bin-path)/switchboard"; fi
W="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
(cd scripts/authbench && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$W/authbench" .)
SECRET="auth-cost-hmac-secret-0123456789abcdef"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ec.pem" 2>/dev/null
openssl pkey -in "$W/ec.pem" -pubout -out "$W/ec.pub.pem"
KEY="notify:auth-cost-publish-key-0123456789:*"
for n in $(seq 1 50); do "$BIN" token --user "user$n" --secret "$SECRET" --ttl 3600; done > "$W/hs256"
for n in $(seq 1 50); do "$BIN" token --user "user$n" --private-key "$W/ec.pem" --ttl 3600; done > "$W/es256"

serve() {  # serve PORT ARGS...: starts the server pinned to CPU 1 and waits for it
    local port="$1"; shift
    taskset -c 1 "$BIN" --port "$port" --publish-key "$KEY" "$@" > "$W/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
    echo "server did not start" >&2; exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }
bench() { taskset -c 0 "$W/authbench" "$@"; }

PORT=18931
echo "== handshakes: open /ws, welcome, auth (or not), close; 16 clients, 10 s each"
serve $PORT; printf "anonymous (no key)        "; bench handshakes -addr 127.0.0.1:$PORT -pid "$SERVER"; stop
serve $PORT --jwt-secret "$SECRET"; printf "HS256 token               "; bench handshakes -addr 127.0.0.1:$PORT -pid "$SERVER" -tokens "$W/hs256"; stop
serve $PORT --jwt-public-key "$W/ec.pub.pem"; printf "ES256 token               "; bench handshakes -addr 127.0.0.1:$PORT -pid "$SERVER" -tokens "$W/es256"; stop
echo "== bcast: 1,000 /subscribe sockets, 100 msg/s published, 10 s"
for rep in 1 2 3; do
    serve $PORT; printf "tokens off, anonymous     "; bench bcast -addr 127.0.0.1:$PORT -pid "$SERVER" -key "$(echo "$KEY" | cut -d: -f2)"; stop
    serve $PORT --jwt-secret "$SECRET"; printf "tokens required, HS256    "; bench bcast -addr 127.0.0.1:$PORT -pid "$SERVER" -tokens "$W/hs256" -key "$(echo "$KEY" | cut -d: -f2)"; stop
done
