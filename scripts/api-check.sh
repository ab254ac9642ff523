#!/bin/bash
# scripts/api-check.sh [--update]: the public libraries' API against the baseline in api/ (swift-api-digester on
# the debug build's modules; build first). Fails, naming each change, when a public declaration was removed, renamed,
# or changed in a way that breaks clients; --update writes the current API as the new baseline (for a deliberate
# change, committed with it). Additions are not breakages.
set -euo pipefail
cd "$(dirname "$0")/.."
MODULES=(Switchboard SwitchboardServer SwitchboardWebSocket SwitchboardPubSub SwitchboardRedis SwitchboardTopics
    SwitchboardAuth SwitchboardNode SwitchboardJSON)
BUILD="$(swift build --show-bin-path)"
# The C modules the Swift ones import (NIO's shims, zlib, BoringSSL) are found through their module maps.
ARGS=()
while IFS= read -r map; do
    ARGS+=(-Xcc "-fmodule-map-file=$PWD/$map" -Xcc "-I$PWD/$(dirname "$map")")
done < <( (find "${BUILD#"$PWD/"}" -maxdepth 2 -name module.modulemap; find .build/checkouts -path "*include/module.modulemap";
    find Sources -name module.modulemap) | sort -u)
TRIPLE="$(uname -m)-unknown-linux-gnu"
CURRENT="$(mktemp -d)"
trap 'rm -rf "$CURRENT"' EXIT
dump() {
    swift-api-digester -dump-sdk -module "$1" -I "$BUILD/Modules" -target "$TRIPLE" "${ARGS[@]}" -o "$2.raw"
    # Without the tool's own arguments (this machine's paths): the baseline is the API, nothing else.
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["ABIRoot"].pop("tool_arguments",None); json.dump(d,open(sys.argv[2],"w"),indent=1,sort_keys=True)' "$2.raw" "$2"
    rm "$2.raw"
}
if [[ "${1:-}" == "--update" ]]; then
    mkdir -p api
    for module in "${MODULES[@]}"; do dump "$module" "api/$module.json"; done
    echo "api/: baseline written for ${MODULES[*]}"
    exit 0
fi
FAILED=0
for module in "${MODULES[@]}"; do
    [[ -f "api/$module.json" ]] || { echo "FAIL $module: no baseline (scripts/api-check.sh --update)"; FAILED=1; continue; }
    dump "$module" "$CURRENT/$module.json"
    CHANGES="$(swift-api-digester -diagnose-sdk --input-paths "api/$module.json" --input-paths "$CURRENT/$module.json" 2>&1 \
        | grep -v -E '^(/\*.*\*/)?$' || true)"
    if [[ -n "$CHANGES" ]]; then
        echo "FAIL $module: the public API broke (a deliberate change: scripts/api-check.sh --update, and say so):"
        echo "$CHANGES" | sed 's/^/     /'
        FAILED=1
    else
        echo "ok   $module: no breaking change"
    fi
done
exit "$FAILED"
