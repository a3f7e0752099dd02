#!/bin/sh
# File sink throughput and peak RSS, for one build or two side by side
# (round by round, so both see the same load on a shared machine): N
# generated orders into one file sink, plain and LZ4, and the same orders
# read back from a file (file source -> file sink), at the default
# memory_limit. Prints the best seconds of ROUNDS runs, records/s and the
# highest peak RSS of each. Usage: bench/file_sink.sh [build dir] [other
# build dir] [N]; ROUNDS=3.
set -eu
cd "$(dirname "$0")/.."
A=${1:-build}
B=${2:-}
N=${3:-1000000}
ROUNDS=${ROUNDS:-3}
OUT=bench/out/file_sink
mkdir -p "$OUT"
DATA="bench/out/orders-$N.jsonl"
if [ ! -f "$DATA" ]; then
    printf 'sources:\n  gen: { type: generator, count: %s, seed: 1 }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
        "$N" "$DATA" > "$OUT/gen.yaml"
    "$A/sluice" run "$OUT/gen.yaml" --quiet
fi
cat "$DATA" > /dev/null # warm the page cache for every build

printf 'sources:\n  g: { type: generator, count: %s, seed: 1 }\nsinks:\n  f: { type: file, inputs: [g], path: %s/out.jsonl }\n' \
    "$N" "$OUT" > "$OUT/gen_plain.yaml"
printf 'sources:\n  g: { type: generator, count: %s, seed: 1 }\nsinks:\n  f: { type: file, inputs: [g], path: %s/out.jsonl.lz4, compression: lz4 }\n' \
    "$N" "$OUT" > "$OUT/gen_lz4.yaml"
printf 'sources:\n  s: { type: file, path: %s }\nsinks:\n  f: { type: file, inputs: [s], path: %s/out.jsonl }\n' \
    "$DATA" "$OUT" > "$OUT/file_plain.yaml"

# run BUILD SHAPE -> "seconds rss_kib" of one run
run() {
    rm -f "$OUT/out.jsonl" "$OUT/out.jsonl.lz4"
    /usr/bin/time -f '%e %M' -o "$OUT/time" "$1/sluice" run "$OUT/$2.yaml" --quiet > /dev/null
    cat "$OUT/time"
}

echo "$N orders, best of $ROUNDS rounds: seconds, records/s, peak RSS"
for shape in gen_plain gen_lz4 file_plain; do
    for build in $A $B; do
        : > "$OUT/$shape.$(echo "$build" | tr / _)"
    done
    for _ in $(seq "$ROUNDS"); do
        for build in $A $B; do
            run "$build" "$shape" >> "$OUT/$shape.$(echo "$build" | tr / _)"
        done
    done
    for build in $A $B; do
        sort -n "$OUT/$shape.$(echo "$build" | tr / _)" | awk -v n="$N" -v s="$shape" -v b="$build" '
            NR == 1 { t = $1 } { if ($2 > r) r = $2 }
            END { printf "%-10s %-24s %6.2f s  %9.0f rec/s  %4d MB\n", s, b, t, n / t, r / 1024 }'
    done
done
