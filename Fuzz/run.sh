#!/bin/bash
# Fuzz/run.sh [SECONDS] [TARGET...] (env FUZZ_RUNS=N: N executions instead; FUZZ_JOBS=N: N targets at a time, one
# per core by default): builds the libFuzzer targets (release, AddressSanitizer, in .build-fuzz) and runs
# each for SECONDS (default 30) from a copy of its seed corpus in Fuzz/corpus (the committed corpus is not changed).
# FUZZ_BUILD_ONLY=1 builds the targets and runs none; FUZZ_NO_BUILD=1 runs them as built. Fails on a crash, a leak, a timeout or an out-of-memory; a crashing input is kept and printed. Prints, per target,
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
# FUZZ_NO_BUILD=1: run what was built (CI builds beside other checks first; asked again, SwiftPM was seen to rebuild
# every target from scratch, some five CPU-minutes, for a reason not found).
if [[ -z "${FUZZ_NO_BUILD:-}" ]]; then
    for target in "${TARGETS[@]}"; do
        swift build "${FLAGS[@]}" --product "$target" 2>&1 | grep -E "error|warning: .*Fuzz/|Compiling Fuzz|Build of" || true
    done
fi
# FUZZ_BUILD_ONLY=1: build, run nothing (CI builds beside other checks, then runs).
[[ -n "${FUZZ_BUILD_ONLY:-}" ]] && exit 0
BIN="$(swift build "${FLAGS[@]}" --show-bin-path)"
# Targets run FUZZ_JOBS at a time (default: one per core); each is single-threaded and gets its SECONDS of a core.
JOBS="${FUZZ_JOBS:-$(nproc)}"

# fuzz_one TARGET: runs it from a copy of its corpus; prints one line (and the failure, if any); its exit status.
fuzz_one() {
    local target="$1" work status runs time corpus limit report
    work="$(mktemp -d "/tmp/switchboard-fuzz-$target-XXXX")"
    cp Fuzz/corpus/"$target"/* "$work"/
    mkdir -p "$work/artifacts"
    # FUZZ_RUNS=N runs N executions instead of SECONDS (how the figures in the README were made).
    limit=(-max_total_time="$SECONDS_EACH")
    [[ -n "${FUZZ_RUNS:-}" ]] && limit=(-runs="$FUZZ_RUNS")
    set +e
    "$BIN/$target" "$work" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" > "$work/log" 2>&1
    status=$?
    set -e
    runs="$(grep -m1 "stat::number_of_executed_units" "$work/log" | awk "{print \$2}" || true)"
    time="$(grep -m1 'Done [0-9]* runs in' "$work/log" | sed -E 's/.* in ([0-9]+) second.*/\1/' || true)"
    corpus="$(find "$work" -maxdepth 1 -type f ! -name log | wc -l)"
    report="$(printf '%-22s %12s executions in %4s s, corpus %5s inputs: ' "$target" "${runs:-?}" "${time:-?}" "$corpus")"
    if (( status == 0 )); then
        echo "${report}ok"
    else
        # One write, so the lines of two targets finishing together do not interleave.
        echo "${report}FAILED (exit $status); the input and the report:
$(ls "$work/artifacts")
$(grep -A30 -m1 -E "ERROR|==[0-9]+==|Fatal error|deadly signal" "$work/log" | head -40)"
    fi
    return "$status"
}

FAILED=0
RUNNING=()
for target in "${TARGETS[@]}"; do
    fuzz_one "$target" &
    RUNNING+=("$!")
    if (( ${#RUNNING[@]} >= JOBS )); then
        wait "${RUNNING[0]}" || FAILED=1
        RUNNING=("${RUNNING[@]:1}")
    fi
done
for pid in "${RUNNING[@]}"; do wait "$pid" || FAILED=1; done
exit "$FAILED"
