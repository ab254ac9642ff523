#!/bin/bash
# scripts/redis-bench.sh [SWITCHBOARD_BIN]: the Redis path against redis-server's own limit, in one run.
#
# Starts a redis-server of its own (no persistence) and measures, one after the other:
#   1. redis-benchmark -P 64 PUBLISH (64 B), the server's own publish rate;
#   2. switchboard bench broker --redis: PUBLISH through RedisBroker, each message delivered back to 10 local
#      subscribers through the process's subscriber connection;
#   3. redis-benchmark -P 64 EVALSHA of the rooms' post script (XADD, trims, PUBLISH), with the arguments a room
#      message has: once as it is (nobody subscribed), once with one subscriber connection reading the room's channel
#      (reading and dropping the bytes), as in 4, where Redis also writes each message to the bench's subscriber connection;
#   4. switchboard bench broker --redis --rooms: room messages through RedisRoomLog (the same script).
# and prints each rate and the ratios. Build the release binary first (swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/switchboard}"
MESSAGES="${MESSAGES:-1000000}"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DIR="$(mktemp -d)"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --daemonize yes \
    --logfile "$DIR/redis.log" > /dev/null
trap 'redis-cli -p "$PORT" shutdown nosave > /dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping > /dev/null 2>&1; do sleep 0.05; done
PAYLOAD="$(head -c 64 < /dev/zero | tr '\0' 'x')"

rate() { grep -oE '[0-9.]+ requests per second' | head -1 | cut -d' ' -f1; }

PUBLISH="$(redis-benchmark -p "$PORT" -P 64 -n 2000000 -q PUBLISH bench "$PAYLOAD" | tr '\r' '\n' | rate)"
echo "redis-benchmark -P 64 PUBLISH:           ${PUBLISH%.*} /s"

OURS="$("$BIN" bench broker --redis "redis://127.0.0.1:$PORT" --redis-only --rooms --messages "$MESSAGES" \
    --window 4000)"
BROKER="$(echo "$OURS" | grep '^RedisBroker' | grep -oE '[0-9]+ messages/s' | cut -d' ' -f1)"
ROOMS="$(echo "$OURS" | grep '^RedisRoomLog' | grep -oE '[0-9]+ messages/s' | cut -d' ' -f1)"
echo "switchboard RedisBroker (10 subscribers): $BROKER messages/s"

# The post script, as RedisRoomLog runs it, with a room message's arguments.
SCRIPT="$(python3 - <<'EOF'
import re
source = open("Sources/SwitchboardRoomsRedis/RedisRoomLog.swift").read()
print(re.search(r'static let post = RedisScript\(\s*"""\n(.*?)"""', source, re.S).group(1))
EOF
)"
SHA="$(redis-cli -p "$PORT" script load "$SCRIPT")"
HEAD='{"room":"bench","nick":"bench","ts":1796650000000,"type":"message","text":"'"$PAYLOAD"'","id":"'
EVAL="$(redis-benchmark -p "$PORT" -P 64 -n 500000 -q EVALSHA "$SHA" 3 'switchboard:{room:bench2}:stream' \
    'room:bench2' 'switchboard:{room:bench2}:epoch' 1000 epoch0 "$HEAD" '"}' 86400000 | tr '\r' '\n' | rate)"
echo "redis-benchmark -P 64 EVALSHA post:       ${EVAL%.*} /s"
# A subscriber that only reads (redis-cli would print every message and fall behind); starved of CPU by the two
# busy processes beside it, it may still fall more than Redis's pubsub output limit behind: no limit for this run.
redis-cli -p "$PORT" config set client-output-buffer-limit "pubsub 0 0 0" > /dev/null
python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"SUBSCRIBE room:bench3\r\n")
buffer = bytearray(1 << 20)
while s.recv_into(buffer): pass' "$PORT" &
LISTENER=$!
until [[ "$(redis-cli -p "$PORT" pubsub numsub room:bench3 | tail -1)" == 1 ]]; do sleep 0.05; done
EVAL_SUBSCRIBED="$(redis-benchmark -p "$PORT" -P 64 -n 500000 -q EVALSHA "$SHA" 3 'switchboard:{room:bench3}:stream' \
    'room:bench3' 'switchboard:{room:bench3}:epoch' 1000 epoch0 "$HEAD" '"}' 86400000 | tr '\r' '\n' | rate)"
kill "$LISTENER"
echo "  the same, one subscriber:               ${EVAL_SUBSCRIBED%.*} /s"
echo "switchboard RedisRoomLog (10 subscribers): $ROOMS messages/s"
python3 - "$PUBLISH" "$BROKER" "$EVAL" "$ROOMS" "$EVAL_SUBSCRIBED" <<'EOF'
import sys
publish, broker, evalsha, rooms, subscribed = map(float, sys.argv[1:])
print(f"ratios: PUBLISH {broker / publish:.2f}x of redis-benchmark's, room messages {rooms / evalsha:.2f}x of "
      f"redis-benchmark's EVALSHA ({rooms / subscribed:.2f}x with its one subscriber) "
      f"(targets: >= 0.8x, or >= 500,000/s, whichever is lower)")
EOF
