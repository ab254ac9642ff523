#!/bin/bash
# What metrics cost, in one run on this machine (issue 14's "bcast with metrics on ≥ 0.97× off"): the harness's
# bcast workload (1,000 /chat subscribers, 100 msg/s, server pinned to CPU 1) against the same release binary
# without metrics and with --metrics-port, scraped every second as a busy Prometheus would, alternating, REPS times.
# Prints deliveries per server CPU-second for each run and the median ratio on/off.
# Usage: scripts/metrics-cost.sh [SWITCHBOARD_BINARY] (default: a release build); env REPS (3), SHARED (../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-}"
if [ -z "$BIN" ]; then swift build -c release --product switchboard >/dev/null; BIN="$(swift build -c release --show-bin-path)/switchboard"; fi
SHARED="${SHARED:-$(cd ../shared && pwd)}"
REPS="${REPS:-3}"
OUT="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT
METRICS_PORT=18099
# The scraper runs throughout; while no server listens its requests fail at once.
(while :; do curl -s -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics" || true; sleep 1; done) &
for rep in $(seq 1 "$REPS"); do
    PROJECT_CMD="$BIN serve --port {PORT} --exempt-loopback --say-rate 1000000" "$SHARED/tools/perf/bench.sh" project -w bcast -r "$rep" -o "$OUT/off.jsonl" >/dev/null
    PROJECT_CMD="$BIN serve --port {PORT} --exempt-loopback --say-rate 1000000 --metrics-port $METRICS_PORT" \
        "$SHARED/tools/perf/bench.sh" project -w bcast -r "$rep" -o "$OUT/on.jsonl" >/dev/null
done
python3 - "$OUT/off.jsonl" "$OUT/on.jsonl" <<'PY'
import json, statistics, sys
def rates(path):
    runs = [json.loads(line) for line in open(path) if '"workload":"bcast"' in line]
    return [r["delivered_per_s"] / (r["server_cpu_pct"] / 100) for r in runs], [r["loss_pct"] for r in runs]
off, off_loss = rates(sys.argv[1]); on, on_loss = rates(sys.argv[2])
for i, (a, b) in enumerate(zip(off, on), 1):
    print(f"rep {i}: metrics off {a:,.0f}  on {b:,.0f} deliveries per server CPU-s  ratio {b / a:.3f}")
print(f"median: off {statistics.median(off):,.0f}  on {statistics.median(on):,.0f}  "
      f"ratio on/off {statistics.median(on) / statistics.median(off):.3f}  loss off {max(off_loss)} % on {max(on_loss)} %")
PY
