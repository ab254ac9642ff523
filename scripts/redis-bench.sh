#!/bin/bash
# scripts/redis-bench.sh [SWITCHBOARD_BIN]: the Redis path against redis-server's own limit, in one run.
#
# Starts a redis-server of its own (no persistence) and measures, one after the other:
#   1. redis-benchmark -P 64 PUBLISH (64 B), the server's own publish rate;
#   2. switchboard bench broker --redis: PUBLISH through RedisBroker, each message delivered back to 10 local
#      subscribers through the process's subscriber connection;
#   3. switchboard bench broker --redis --rooms: room messages through RedisRoomLog (the rooms' post script: XADD,
#      trims, PUBLISH), delivered the same way;
#   4. redis-benchmark -P 64 EVALSHA of the same script with the arguments a room message has: once as it is (nobody
#      subscribed), once with one subscriber connection reading the room's channel (reading and dropping the bytes),
#      as in 3, where Redis also writes each message to the bench's subscriber connection;
# ROUNDS times (default 3), alternating, and prints each round's rates, then the median ratios: on a shared machine
# two runs a few seconds apart can differ by a third. Build the release binary first (swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/switchboard}"
MESSAGES="${MESSAGES:-1000000}"
ROUNDS="${ROUNDS:-3}"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DIR="$(mktemp -d)"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --daemonize yes \
    --logfile "$DIR/redis.log" > /dev/null
LISTENER=""
trap '[[ -z "$LISTENER" ]] || kill "$LISTENER" 2> /dev/null; redis-cli -p "$PORT" shutdown nosave > /dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping > /dev/null 2>&1; do sleep 0.05; done
PAYLOAD="$(head -c 64 < /dev/zero | tr '\0' 'x')"

rate() { grep -oE '[0-9.]+ requests per second' | head -1 | cut -d' ' -f1; }

# The post script, as RedisRoomLog runs it, with a room message's arguments.
SCRIPT="$(python3 -c '
import re
source = open("Sources/SwitchboardRoomsRedis/RedisRoomLog.swift").read()
print(re.search(r"static let post = RedisScript\(\s*\"\"\"\n(.*?)\"\"\"", source, re.S).group(1))')"
SHA="$(redis-cli -p "$PORT" script load "$SCRIPT")"
HEAD='{"room":"bench","nick":"bench","ts":1796650000000,"type":"message","text":"'"$PAYLOAD"'","id":"'
# evalsha ROOM: redis-benchmark's rate for the post script on ROOM's keys and channel.
evalsha() {
    redis-benchmark -p "$PORT" -P 64 -n 500000 -q EVALSHA "$SHA" 3 "switchboard:{room:$1}:stream" "room:$1" \
        "switchboard:{room:$1}:epoch" 1000 epoch0 "$HEAD" '"}' 86400000 | tr '\r' '\n' | rate
}

# A subscriber that only reads (redis-cli would print every message and fall behind); starved of CPU by the two busy
# processes beside it, it may still fall more than Redis's pubsub output limit behind: no limit on this server.
redis-cli -p "$PORT" config set client-output-buffer-limit "pubsub 0 0 0" > /dev/null
python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"SUBSCRIBE room:subscribed\r\n")
buffer = bytearray(1 << 20)
while s.recv_into(buffer): pass' "$PORT" &
LISTENER=$!
until [[ "$(redis-cli -p "$PORT" pubsub numsub room:subscribed | tail -1)" == 1 ]]; do sleep 0.05; done

RESULTS=()
for round in $(seq "$ROUNDS"); do
    PUBLISH="$(redis-benchmark -p "$PORT" -P 64 -n 2000000 -q PUBLISH bench "$PAYLOAD" | tr '\r' '\n' | rate)"
    OURS="$("$BIN" bench broker --redis "redis://127.0.0.1:$PORT" --redis-only --rooms --messages "$MESSAGES" \
        --window 4000)"
    BROKER="$(echo "$OURS" | grep '^RedisBroker' | grep -oE '[0-9]+ messages/s' | cut -d' ' -f1)"
    ROOMS="$(echo "$OURS" | grep '^RedisRoomLog' | grep -oE '[0-9]+ messages/s' | cut -d' ' -f1)"
    EVAL="$(evalsha bench)"
    EVAL_SUBSCRIBED="$(evalsha subscribed)"
    echo "round $round: redis-benchmark PUBLISH ${PUBLISH%.*}/s, RedisBroker $BROKER/s (10 subscribers);" \
        "redis-benchmark EVALSHA ${EVAL%.*}/s (${EVAL_SUBSCRIBED%.*}/s with one subscriber), RedisRoomLog $ROOMS/s"
    RESULTS+=("$PUBLISH $BROKER $EVAL $ROOMS $EVAL_SUBSCRIBED")
done
python3 -c '
import statistics, sys
rounds = [list(map(float, r.split())) for r in sys.argv[1:]]
median = lambda xs: statistics.median(list(xs))
show = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
publish = [b / p for p, b, e, r, s in rounds]
rooms = [r / e for p, b, e, r, s in rounds]
subscribed = [r / s for p, b, e, r, s in rounds]
print(f"PUBLISH: ours {median(b for p, b, e, r, s in rounds):,.0f}/s (median); ratios {show(publish)}: "
      f"median {median(publish):.2f}x of redis-benchmark")
print(f"room messages: ours {median(r for p, b, e, r, s in rounds):,.0f}/s (median); ratios {show(rooms)}: "
      f"median {median(rooms):.2f}x of redis-benchmark EVALSHA; with its one subscriber {show(subscribed)}: "
      f"median {median(subscribed):.2f}x")
print("targets: >= 0.8x, or >= 500,000/s, whichever is lower")' "${RESULTS[@]}"
