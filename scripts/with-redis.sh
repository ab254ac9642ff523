#!/bin/bash
# scripts/with-redis.sh COMMAND...: runs COMMAND with `--redis redis://127.0.0.1:<port>` added, on a redis-server of
# its own (no persistence) started first, which goes when COMMAND goes. For the perf harness, whose CPU and memory
# figures sum the server's process tree: Redis's share is then counted too.
#   PROJECT_CMD='scripts/with-redis.sh .build/release/switchboard serve --port {PORT}' ../shared/tools/perf/bench.sh project
set -euo pipefail
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DIR="$(mktemp -d)"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --logfile "$DIR/redis.log" &
REDIS=$!
# Once COMMAND (this process, after exec) is gone, so is redis-server.
SELF=$$
( while kill -0 "$SELF" 2> /dev/null; do sleep 0.5; done; kill -9 "$REDIS" 2> /dev/null; rm -rf "$DIR" ) &
until redis-cli -p "$PORT" ping > /dev/null 2>&1; do sleep 0.05; done
exec "$@" --redis "redis://127.0.0.1:$PORT"
