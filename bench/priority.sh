#!/bin/sh
# What priorities cost (issue 7): the orders benchmark (bench/file_to_sqlite.yaml:
# file -> filter -> map -> SQLite, 1M orders) as it is, with an int priority on
# the map (a label), with an expression of two levels (every batch split in
# two parts), and with one of ten levels (`id % 10`: ten parts, each with a
# tenth of the records, and a queue with ten lanes at the sink). Rounds
# interleave the variants (the machine is shared); prints the best time of
# each and its ratio to the plain pipeline, and the peak RSS.
# Then the worker pool's priority: on one worker thread, two sources each
# into its own chain of three CPU-heavy maps (no queue shared: lanes play no
# part), `hi` at 30k records/s and `lo` at 300k/s, together more than the
# worker takes (about 270k/s here), with `hi` at priority 9 and at 0, in
# turn: each sink's latency (source read to sink) p50 and p99 per round.
# Usage: bench/priority.sh [build dir] [N]; ROUNDS=5
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-1000000}
SLUICE="$BUILD/sluice"
[ -x "$SLUICE" ] || { echo "build sluice first"; exit 1; }
OUT=bench/out/priority
mkdir -p "$OUT"
DATA="bench/out/orders-$N.jsonl"
if [ ! -f "$DATA" ]; then
    printf 'sources:\n  gen: { type: generator, count: %s, seed: 1 }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
        "$N" "$DATA" > "$OUT/gen.yaml"
    "$SLUICE" run "$OUT/gen.yaml" --quiet
fi
cat "$DATA" > /dev/null
ROUNDS=${ROUNDS:-5}
for r in $(seq "$ROUNDS"); do
    for v in plain int two ten; do
        case $v in
        plain) set_arg="" ;;
        int) set_arg="stages.cents.priority=5" ;;
        two) set_arg="stages.cents.priority=if(amount > 900, 9, 0)" ;;
        ten) set_arg="stages.cents.priority=id % 10" ;;
        esac
        rm -f "$OUT"/o.db*
        BENCH_DATA=$DATA BENCH_DB=$OUT/o.db /usr/bin/time -f "%e %M" -o "$OUT/t" \
            "$SLUICE" run bench/file_to_sqlite.yaml --quiet ${set_arg:+--set "$set_arg"}
        echo "$v $(cat "$OUT/t")" >> "$OUT/times.$r"
    done
done
cat "$OUT"/times.* | python3 -c '
import sys
best, rss = {}, {}
for line in sys.stdin:
    v, t, m = line.split()
    best[v] = min(best.get(v, 1e9), float(t))
    rss[v] = max(rss.get(v, 0), int(m))
for v in ("plain", "int", "two", "ten"):
    print("%-6s best %.2f s  %.3fx the plain time  peak RSS %d MB" % (v, best[v], best[v] / best["plain"], rss[v] >> 10))
'
rm -f "$OUT"/times.*

# The worker pool's priority.
copies="len(concat(upper(x), lower(x), upper(x), lower(x)))"
{
    printf 'engine: { threads: 1 }\nsources:\n'
    printf '  hi: { type: generator, count: 150000, rate: 30000, priority: 9 }\n'
    printf '  lo: { type: generator, count: 1500000, rate: 300000 }\nstages:\n'
    for c in hi lo; do
        printf "  %s0: { type: map, inputs: [%s], set: { x: 'concat(to_string(amount), \"%s\")' } }\n" \
            $c $c abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ
        printf "  %s1: { type: map, inputs: [%s0], set: { v: '%s + %s' } }\n" $c $c "$copies" "$copies"
        printf "  %s2: { type: map, inputs: [%s1], set: { w: '%s + %s' } }\n" $c $c "$copies" "$copies"
    done
    printf 'sinks:\n  shi: { type: "null", inputs: [hi2] }\n  slo: { type: "null", inputs: [lo2] }\n'
} > "$OUT/pool.yaml"
echo "worker pool, 1 thread: latency ms (p50 / p99) of each chain"
for r in $(seq "$ROUNDS"); do
    for level in 9 0; do
        "$SLUICE" run "$OUT/pool.yaml" --quiet --set "sources.hi.priority=$level" \
            --summary-json "$OUT/pool.json"
        python3 - "$OUT/pool.json" "$level" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
hi, lo = d["nodes"]["shi"]["latency_ms"], d["nodes"]["slo"]["latency_ms"]
print("  hi at %s: hi %6.1f / %6.1f   lo %6.1f / %6.1f" % (sys.argv[2], hi["p50"], hi["p99"], lo["p50"], lo["p99"]))
PY
    done
done
