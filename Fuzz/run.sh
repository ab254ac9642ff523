#!/bin/bash
# Fuzz/run.sh [SECONDS] [TARGET...] (env FUZZ_RUNS=N: N executions instead): builds the libFuzzer targets (release, AddressSanitizer, in .build-fuzz) and runs
# each for SECONDS (default 30) from a copy of its seed corpus in Fuzz/corpus (the committed corpus is not changed).
# FUZZ_BUILD_ONLY=1 builds the targets and runs none. Fails on a crash, a leak, a timeout or an out-of-memory; a crashing input is kept and printed. Prints, per target,
# the executions, the time and the corpus size at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-30}"
shift || true
TARGETS=("$@")
if (( ${#TARGETS[@]} == 0 )); then
    TARGETS=(FuzzWebSocketFrames FuzzHTTPRequestHead FuzzRESPDecoder FuzzRoomsCommands FuzzApiJSON FuzzRedisURL FuzzConfigFile)
fi
export SWITCHBOARD_FUZZ=1
# A trap is reported by libFuzzer ("deadly signal", with the input); Swift's own backtracer would read memory that
# AddressSanitizer then reports as an overflow of its own.
export SWIFT_BACKTRACE=enable=no
# SwiftPM's --sanitize=fuzzer links libFuzzer (its main) but does not instrument Swift code for coverage: -Xswiftc does.
FLAGS=(-c release --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address
    -Xswiftc -enable-testing)
for target in "${TARGETS[@]}"; do
    swift build "${FLAGS[@]}" --product "$target" 2>&1 | grep -E "error|warning: .*Fuzz/|Compiling Fuzz|Build of" || true
done
# FUZZ_BUILD_ONLY=1: build, run nothing (CI builds beside other checks, then runs).
[[ -n "${FUZZ_BUILD_ONLY:-}" ]] && exit 0
BIN="$(swift build "${FLAGS[@]}" --show-bin-path)"
FAILED=0
for target in "${TARGETS[@]}"; do
    WORK="$(mktemp -d "/tmp/switchboard-fuzz-$target-XXXX")"
    cp Fuzz/corpus/"$target"/* "$WORK"/
    mkdir -p "$WORK/artifacts"
    set +e
    # FUZZ_RUNS=N runs N executions instead of SECONDS (how the figures in the README were made).
    LIMIT=(-max_total_time="$SECONDS_EACH")
    [[ -n "${FUZZ_RUNS:-}" ]] && LIMIT=(-runs="$FUZZ_RUNS")
    "$BIN/$target" "$WORK" "${LIMIT[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$WORK/artifacts/" > "$WORK/log" 2>&1
    STATUS=$?
    set -e
    RUNS="$(grep -m1 "stat::number_of_executed_units" "$WORK/log" | awk "{print \$2}" || true)"
    TIME="$(grep -m1 'Done [0-9]* runs in' "$WORK/log" | sed -E 's/.* in ([0-9]+) second.*/\1/' || true)"
    CORPUS="$(find "$WORK" -maxdepth 1 -type f ! -name log | wc -l)"
    printf '%-22s %12s executions in %4s s, corpus %5s inputs: ' "$target" "${RUNS:-?}" "${TIME:-?}" "$CORPUS"
    if (( STATUS == 0 )); then
        echo "ok"
    else
        echo "FAILED (exit $STATUS); the input and the report:"
        ls "$WORK/artifacts"
        grep -A30 -m1 -E "ERROR|==[0-9]+==|Fatal error|deadly signal" "$WORK/log" | head -40
        FAILED=1
    fi
done
exit "$FAILED"
