#!/usr/bin/env bash
# Runs the whole Autobahn|Testsuite fuzzingclient (517 cases) against `switchboard`'s /echo and fails on any
# FAILED, UNIMPLEMENTED or NON-STRICT case (only INFORMATIONAL may remain), printing the summary counts.
#
#   scripts/autobahn.sh [SWITCHBOARD_BIN] [CASES]
#
# Uses ../shared/tools/autobahn (its Python 2.7 venv is made on first use, under $AUTOBAHN_WORK or /tmp/autobahn).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-.build/release/switchboard}"
CASES="${2:-*}"
SHARED="${SHARED:-$(cd .. && pwd)/shared}"
AUTOBAHN="$SHARED/tools/autobahn"
export AUTOBAHN_WORK="${AUTOBAHN_WORK:-/tmp/autobahn}"

[[ -x "$AUTOBAHN_WORK/.venv/bin/wstest" ]] || bash "$AUTOBAHN/setup-venv.sh"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BIN" --port "$PORT" --echo --log-level warning > /tmp/switchboard-autobahn-server.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$PORT" 2>/dev/null && break
    sleep 0.1
done
set +e
bash "$AUTOBAHN/run.sh" "ws://127.0.0.1:$PORT/echo" switchboard "$CASES"
set -e
kill -0 "$SERVER" || { echo "autobahn: the server died during the run" >&2; exit 1; }
python3 - "$AUTOBAHN_WORK/reports/switchboard/index.json" <<'PY'
import collections, json, sys
index = json.load(open(sys.argv[1]))
cases = next(iter(index.values()))
counts = collections.Counter(c["behavior"] for c in cases.values())
close = collections.Counter(c["behaviorClose"] for c in cases.values())
print(f"autobahn: {len(cases)} cases: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
      + " | close: " + ", ".join(f"{k}={v}" for k, v in sorted(close.items())))
bad = sorted((cid for cid, c in cases.items()
              if c["behavior"] in ("FAILED", "UNIMPLEMENTED", "NON-STRICT")
              or c["behaviorClose"] in ("FAILED", "UNIMPLEMENTED", "NON-STRICT")),
             key=lambda s: [int(p) for p in s.split(".")])
if bad:
    print("autobahn: not OK: " + " ".join(bad))
    sys.exit(1)
print("autobahn: 0 FAILED, 0 UNIMPLEMENTED, 0 NON-STRICT")
PY
