#!/bin/sh
# The throttle's long-run rate in real time (issue 7: within 1% over
# 10 s): a generator at 2x the limit for SECS seconds through a throttle
# at RATE records/s, token and leaky bucket, drop and wait. A map after
# the throttle stamps each record with now() (epoch ms) as it leaves; the
# achieved rate is (records - burst) / (last stamp - first stamp), the
# burst being what passes at once at the start. Usage:
#   bench/throttle.sh [build dir] [RATE] [SECS]
set -eu
cd "$(dirname "$0")/.."
BUILD=$(cd "${1:-build}" && pwd)
RATE=${2:-50000}
SECS=${3:-10}
OUT=bench/out/throttle
rm -rf "$OUT"
mkdir -p "$OUT"
GEN=$((RATE * 2))
BURST=$((RATE / 10))

echo "throttle at $RATE/s, generator at $GEN/s for $SECS s; rate from the stamps of the records that left"
for alg in token_bucket leaky_bucket; do
    for mode in drop wait; do
        name="$alg-$mode"
        burst_line="burst: $BURST"
        burst=$BURST
        if [ "$alg" = leaky_bucket ]; then
            burst_line="algorithm: leaky_bucket"
            burst=1
        fi
        count=$((GEN * SECS))
        [ "$mode" = drop ] || count=$((RATE * SECS + burst))
        cat > "$OUT/$name.yaml" <<YAML
sources:
  gen: { type: generator, count: $count, rate: $GEN }
stages:
  limit: { type: throttle, inputs: [gen], rate: $RATE, $burst_line, when_limited: $mode }
  stamp: { type: map, inputs: [limit], set: { t: 'now()' }, keep: [id, t] }
sinks:
  db: { type: sqlite, inputs: [stamp], path: $OUT/$name.db, table: t }
YAML
        "$BUILD/sluice" run "$OUT/$name.yaml" 2> "$OUT/$name.log" || {
            cat "$OUT/$name.log"
            exit 1
        }
        sqlite3 "$OUT/$name.db" 'SELECT count(*), max(t) - min(t) FROM t' | tr '|' ' ' | {
            read -r n span_ms
            awk -v name="$name" -v n="$n" -v b="$burst" -v ms="$span_ms" -v rate="$RATE" 'BEGIN {
                got = (n - b) / (ms / 1000); err = (got - rate) / rate * 100
                printf "%-20s %8d records over %6.3f s: %9.1f/s, error %+.3f%% (%s)\n", name, n,
                    ms / 1000, got, err, (err < 1 && err > -1) ? "within 1%" : "OFF BY MORE THAN 1%"
            }'
        }
        grep "^limit: " "$OUT/$name.log" | sed 's/^/    /'
    done
done
