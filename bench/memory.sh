#!/bin/sh
# Peak RSS and time of the memory-bound shapes (tests/integration/
# memory_shapes.py) at one memory_limit, for one or two builds side by side
# in one run (ratios; the machine is shared). Usage:
#   bench/memory.sh [build dir] [other build dir] [N] [limit]
set -eu
cd "$(dirname "$0")/.."
A=${1:-build}
B=${2:-}
N=${3:-1000000}
LIMIT=${4:-16MiB}
A=$(cd "$A" && pwd)
[ -z "$B" ] || B=$(cd "$B" && pwd)
OUT=bench/out/memory
mkdir -p "$OUT"
DATA="bench/out/orders-$N.jsonl"
if [ ! -f "$DATA" ]; then
    printf 'sources:\n  gen: { type: generator, count: %s, seed: 1 }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
        "$N" "$DATA" > "$OUT/gen.yaml"
    "$A/sluice" run "$OUT/gen.yaml" --quiet
fi
python3 tests/integration/memory_shapes.py "$(pwd)/$DATA" "$LIMIT" "$OUT"
echo "memory_limit $LIMIT, $N orders; peak RSS (MB) and seconds"
for shape in chain route20 fan10 diamond5; do
    line="$shape"
    for build in $A $B; do
        rm -rf "$OUT/out"
        (cd "$OUT" && /usr/bin/time -f '%M %e' -o time.txt "$build/sluice" run $shape.yaml --quiet) ||
            true
        line="$line  $build: $(awk '{ printf "%d MB %s s", $1 / 1024, $2 }' "$OUT/time.txt")"
    done
    echo "$line"
done
