#!/bin/sh
# A fast path beside a bulk one (issue 7): 200 alerts/s into one table of a
# SQLite file while the 1M orders load into another table of the same file
# at full speed, against the same alerts alone and the bulk load alone. The
# sinks share the file's connection, and their transactions take turns on
# it in arrival order (connectors/sqlite/sqlite_file.c); with a connection
# each, SQLite's busy handler made the alerts poll and wait 300-650 ms
# (p99) behind the bulk load. Last, the alerts with priority 9: their transactions go before the
# bulk load's queued ones. Prints the alerts' latency (source
# read to commit) and the bulk load's rate. Usage: bench/alerts.sh [build dir]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SLUICE="$BUILD/sluice"
[ -x "$SLUICE" ] || { echo "build sluice first"; exit 1; }
OUT=bench/out/alerts
rm -rf "$OUT"
mkdir -p "$OUT"
DATA=bench/out/orders-1000000.jsonl
if [ ! -f "$DATA" ]; then
    printf 'sources:\n  gen: { type: generator, count: 1000000, seed: 1 }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
        "$DATA" > "$OUT/gen.yaml"
    "$SLUICE" run "$OUT/gen.yaml" --quiet
fi

# run NAME BULK ALERTS: prints the figures of one run
ALERTS=0
run() {
    rm -f "$OUT"/o.db*
    {
        echo "sources:"
        [ "$2" = no ] || echo "  bulk: { type: file, path: $DATA }"
        [ "$3" = no ] || echo "  alerts: { type: generator, count: $ALERTS, rate: 200${4:-} }"
        echo "sinks:"
        [ "$2" = no ] || echo "  db: { type: sqlite, inputs: [bulk], path: $OUT/o.db, table: orders }"
        [ "$3" = no ] || echo "  al: { type: sqlite, inputs: [alerts], path: $OUT/o.db, table: alerts }"
    } > "$OUT/p.yaml"
    "$SLUICE" run "$OUT/p.yaml" --quiet --summary-json "$OUT/s.json"
    python3 - "$OUT/s.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = d["nodes"]
line = "%-22s" % sys.argv[2]
if "al" in n:
    lat = n["al"]["latency_ms"]
    line += "  alerts %5d, latency p50 %6.2f ms, p99 %6.2f ms, max %6.2f ms" % (
        n["al"]["out"], lat["p50"], lat["p99"], lat["max"])
if "db" in n:
    line += "  bulk %8d rows at %8.0f rows/s" % (n["db"]["out"], n["db"]["out"] / d["elapsed_s"])
print(line)
PY
}

# The alerts last about as long as the bulk load (0.6-0.8 s here), so that
# every alert meets it: bulk alone first, to size them.
run "bulk alone" yes no
secs=$(python3 -c "import json; print(json.load(open('$OUT/s.json'))['elapsed_s'])")
ALERTS=$(python3 -c "print(max(20, int(200 * $secs)))")
run "alerts alone" no yes
run "alerts beside bulk" yes yes
run "priority 9 beside bulk" yes yes ", priority: 9"
