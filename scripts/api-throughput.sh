#!/usr/bin/env bash
# The server API's throughput under wrk (2 threads, 100 keep-alive connections), in one run beside the Hummingbird 2
# peer's GET / and Switchboard's own GET /: POST /api/v1/publish (one channel, no subscriber: the API's own cost, then
# one /subscribe socket reading every message) and POST /api/v1/batch (100 publishes a request). Prints requests/s,
# messages/s and server CPU µs per request of each, alternating which server goes first, ROUNDS rounds.
#
#   scripts/api-throughput.sh [SWITCHBOARD_BIN] [HB_PEER_BIN]
#
# Defaults: .build/release/switchboard (swift build -c release) and /tmp/peers-build/release/hb-peer
# (../shared/peers/README.md). Needs wrk and python3.
set -euo pipefail
SB="${1:-.build/release/switchboard}"
HB="${2:-/tmp/peers-build/release/hb-peer}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
KEY=bench-api-key-0123456789
[[ -x "$SB" && -x "$HB" ]] || { echo "need $SB and $HB" >&2; exit 1; }
command -v wrk >/dev/null || { echo "need wrk" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat > "$WORK/publish.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"channel":"bench","data":{"order":1042,"state":"shipped"}}'
LUA
python3 - "$WORK/batch.lua" "$KEY" <<'PY'
import json, sys
commands = [{"publish": {"channel": "bench", "data": {"order": i, "state": "shipped"}}} for i in range(100)]
body = json.dumps({"commands": commands}, separators=(",", ":"))
open(sys.argv[1], "w").write(
    'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer %s"\nwrk.headers["Content-Type"] = '
    '"application/json"\nwrk.body = %s\n' % (sys.argv[2], json.dumps(body)))
PY
# A /subscribe socket that reads (and counts) everything, for the "with a subscriber" run.
cat > "$WORK/reader.py" <<'PY'
import base64, os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /subscribe/bench HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
s.recv(4096)
sys.stdout.write("subscribed\n"); sys.stdout.flush()
while s.recv(1 << 20):
    pass
PY

# load NAME PID URL [LUA]: prints "NAME rps us_per_request".
load() {
    local name="$1" pid="$2" url="$3" script="${4:-}"
    local args=(-t2 -c100 --timeout 10s --latency)
    [[ -n "$script" ]] && args+=(-s "$script")
    wrk "${args[@]}" -d2s "$url" > /dev/null   # warm-up
    local t0 t1 out
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(wrk "${args[@]}" -d"$DURATION" "$url")
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    python3 - "$name" "$t0" "$t1" <<PY
import sys, re
name, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = """$out"""
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
reqs = int(re.search(r"(\d+) requests in", out).group(1))
errors = re.search(r"Socket errors:.*|Non-2xx.*", out)
p99 = re.search(r"99%\s+(\S+)", out)
print(f"{name} {rps:.0f} {(t1 - t0) / 100.0 * 1e6 / reqs:.2f} p99={p99.group(1) if p99 else '?'}"
      + (f"  ({errors.group(0)})" if errors else ""))
PY
}

for round in $(seq "$ROUNDS"); do
    order=(sb hb); (( round % 2 )) || order=(hb sb)
    for who in "${order[@]}"; do
        port="$(free_port)"
        if [[ $who == hb ]]; then
            "$HB" --port "$port" > /dev/null 2>&1 &
            pid=$!
            for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
            echo "round $round: $(load hummingbird-GET/ "$pid" "http://127.0.0.1:$port/")" | tee -a "$WORK/results"
        else
            SWITCHBOARD_API_KEYS="bench:$KEY:*:*" "$SB" --port "$port" --api-rate 10000000 --log-level error > /dev/null 2>&1 &
            pid=$!
            for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
            echo "round $round: $(load switchboard-GET/ "$pid" "http://127.0.0.1:$port/healthz")" | tee -a "$WORK/results"
            echo "round $round: $(load publish "$pid" "http://127.0.0.1:$port/api/v1/publish" "$WORK/publish.lua")" | tee -a "$WORK/results"
            echo "round $round: $(load batch100 "$pid" "http://127.0.0.1:$port/api/v1/batch" "$WORK/batch.lua")" | tee -a "$WORK/results"
            python3 "$WORK/reader.py" "$port" > "$WORK/reader.out" &
            reader=$!
            for _ in $(seq 50); do grep -q subscribed "$WORK/reader.out" 2>/dev/null && break; sleep 0.1; done
            echo "round $round: $(load publish+1sub "$pid" "http://127.0.0.1:$port/api/v1/publish" "$WORK/publish.lua")" \
                | tee -a "$WORK/results"
            kill "$reader" 2>/dev/null || true
        fi
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
done

python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    rows.setdefault(parts[2], []).append((float(parts[3]), float(parts[4])))
med = {name: (statistics.median(r for r, _ in v), statistics.median(u for _, u in v)) for name, v in rows.items()}
hb = med["hummingbird-GET/"][0]
for name, (rps, us) in med.items():
    extra = f", {rps * 100:.0f} messages/s" if name == "batch100" else ""
    print(f"median {name}: {rps:.0f} req/s ({rps / hb:.2f}x Hummingbird's GET /), {us:.1f} µs server CPU per request, "
          f"{1e6 / us:.0f} requests per server CPU-s{extra}")
PY
