#!/bin/sh
# Latency from source read to SQLite commit (issue 7), in one run: a paced
# generator at 1k, 10k and 100k records/s for SECS seconds, then unpaced
# (full speed, N records), into SQLite with the default batching (write as
# soon as the writer is free: adaptive), with `target_latency`, and with
# fixed transaction sizes. Prints the sink's p50/p99/max latency and the
# rate from --summary-json; at full speed also each setting's throughput
# against the best fixed max_records of the sweep (100..100k).
# Usage: bench/latency.sh [build dir]; SECS=5 N=1000000
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SLUICE="$BUILD/sluice"
[ -x "$SLUICE" ] || { echo "build sluice first"; exit 1; }
SECS=${SECS:-5}
N=${N:-1000000}
OUT=bench/out/latency
rm -rf "$OUT"
mkdir -p "$OUT"

# run RATE COUNT BATCH -> "rate p50 p99 max" on stdout
run() {
    rm -f "$OUT"/o.db*
    cat > "$OUT/p.yaml" <<YAML
sources:
  g: { type: generator, count: $2, rate: $1 }
sinks:
  db: { type: sqlite, inputs: [g], path: $OUT/o.db, table: orders, batch: { $3 } }
YAML
    "$SLUICE" run "$OUT/p.yaml" --quiet --summary-json "$OUT/s.json"
    python3 - "$OUT/s.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
db = d["nodes"]["db"]
lat = db["latency_ms"]
print("%.0f %.2f %.2f %.2f" % (db["out"] / d["elapsed_s"], lat["p50"], lat["p99"], lat["max"]))
PY
}

SETTINGS="max_wait: 100ms|target_latency: 20ms|max_records: 100, max_wait: 1s|max_records: 10000, max_wait: 1s"
echo "== paced: records/s achieved, latency p50 / p99 / max (ms), $SECS s each"
for rate in 1000 10000 100000; do
    echo "$SETTINGS" | tr '|' '\n' | while read -r b; do
        set -- $(run "$rate" $((rate * SECS)) "$b")
        printf '  rate %-7s %-36s %8s/s  %7s / %7s / %7s\n' "$rate" "{ $b }" "$1" "$2" "$3" "$4"
    done
done

echo "== full speed, $N records: throughput against the best fixed max_records"
best=0
for m in 100 1000 10000 100000; do
    set -- $(run 0 "$N" "max_records: $m, max_wait: 1s")
    printf '  %-36s %8s/s  p99 %7s ms\n' "{ max_records: $m }" "$1" "$3"
    [ "$1" -gt "$best" ] && best=$1
done
for b in "max_wait: 100ms" "target_latency: 20ms"; do
    set -- $(run 0 "$N" "$b")
    printf '  %-36s %8s/s  p99 %7s ms  = %s of the best fixed\n' "{ $b }" "$1" "$3" \
        "$(python3 -c "print('%.3f' % ($1 / $best))")"
done
