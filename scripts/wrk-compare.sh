#!/usr/bin/env bash
# Plain GET / under wrk (2 threads, 100 keep-alive connections, 10 s), Switchboard against the Hummingbird 2
# peer of ../shared/peers, alternating which goes first, three rounds. Prints req/s and server CPU µs per
# request of each run and the median ratio. The machine is shared and noisy: compare within one run only.
#
#   scripts/wrk-compare.sh [SWITCHBOARD_BIN] [HB_PEER_BIN]
#
# Defaults: .build/release/switchboard (swift build -c release) and /tmp/peers-build/release/hb-peer
# (see ../shared/peers/README.md). Needs wrk (apt-get install wrk).
set -euo pipefail
SB="${1:-.build/release/switchboard}"
HB="${2:-/tmp/peers-build/release/hb-peer}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
[[ -x "$SB" && -x "$HB" ]] || { echo "need $SB and $HB" >&2; exit 1; }
command -v wrk >/dev/null || { echo "need wrk" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NAME CMD... : starts the server, loads it, prints "NAME rps us_per_req", stops it.
run() {
    local name="$1"; shift
    local port; port="$(free_port)"
    "$@" --port "$port" > /dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    wrk -t2 -c100 -d2s "http://127.0.0.1:$port/" > /dev/null   # warm-up
    local t0 t1 out
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(wrk -t2 -c100 -d"$DURATION" "http://127.0.0.1:$port/")
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$name" "$t0" "$t1" <<PY
import sys, re
name, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = """$out"""
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
reqs = int(re.search(r"(\d+) requests in", out).group(1))
errors = re.search(r"Socket errors:.*|Non-2xx.*", out)
cpu = (t1 - t0) / 100.0
print(f"{name} {rps:.0f} {cpu * 1e6 / reqs:.2f}" + (f"  ({errors.group(0)})" if errors else ""))
PY
}

results=()
for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then order=(sb hb); else order=(hb sb); fi
    for who in "${order[@]}"; do
        if [[ $who == sb ]]; then line=$(run switchboard "$SB"); else line=$(run hummingbird "$HB"); fi
        echo "round $round: $line"
        results+=("$round $line")
    done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = [l.split()[:4] for l in sys.stdin if l.strip()]
by = {}
for rnd, name, rps, us in rows:
    by.setdefault(rnd, {})[name] = (float(rps), float(us))
ratios = [v["switchboard"][0] / v["hummingbird"][0] for v in by.values()]
cpu = [v["hummingbird"][1] / v["switchboard"][1] for v in by.values()]
sb = statistics.median(v["switchboard"][0] for v in by.values())
hb = statistics.median(v["hummingbird"][0] for v in by.values())
print(f"median req/s: switchboard {sb:.0f}, hummingbird {hb:.0f}")
print("req/s ratio per round: " + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}")
print("server CPU per request, hummingbird/switchboard per round: " + ", ".join(f"{r:.2f}" for r in cpu)
      + f"; median {statistics.median(cpu):.2f}")
'
