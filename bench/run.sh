#!/bin/sh
# Times, on the same 1M generated orders (JSON lines, ~170 MB): sluice
# file -> filter -> map -> SQLite; the same ETL as a Python loop; and the
# insert-only bound (a C program doing only multi-row INSERTs). Prints each
# time, the ratios and sluice's peak RSS. Usage: bench/run.sh [build dir] [N]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-1000000}
OUT=bench/out
mkdir -p "$OUT"
SLUICE="$BUILD/sluice"
[ -x "$SLUICE" ] || { echo "build sluice first (scripts/quickstart or cmake)"; exit 1; }
gcc -O2 -o "$OUT/insert_bound" bench/sqlite_insert_bound.c -lsqlite3

DATA="$OUT/orders-$N.jsonl"
if [ ! -f "$DATA" ]; then
    printf 'sources:\n  gen: { type: generator, count: %s, seed: 1 }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
        "$N" "$DATA" > "$OUT/gen.yaml"
    "$SLUICE" run "$OUT/gen.yaml" --quiet
fi
echo "data: $DATA ($(du -m "$DATA" | cut -f1) MB, $N orders)"
cat "$DATA" > /dev/null # warm the page cache for every contender

secs() { # command... -> wall seconds on stdout, peak RSS KiB in $OUT/rss
    /usr/bin/time -f '%e %M' -o "$OUT/time" "$@" > /dev/null
    cut -d' ' -f1 "$OUT/time"
    cut -d' ' -f2 "$OUT/time" > "$OUT/rss"
}
rm -f "$OUT"/sluice.db* "$OUT"/python.db* "$OUT"/bound.db*
t_sluice=$(BENCH_DATA="$DATA" BENCH_DB="$OUT/sluice.db" secs "$SLUICE" run bench/file_to_sqlite.yaml --quiet)
rss=$(cat "$OUT/rss")
rows=$(sqlite3 "$OUT/sluice.db" 'SELECT count(*) FROM orders')
t_python=$(secs python3 bench/etl_python.py "$DATA" "$OUT/python.db")
prow=$(sqlite3 "$OUT/python.db" 'SELECT count(*) FROM orders')
t_bound=$(secs "$OUT/insert_bound" "$OUT/bound.db" "$rows")
echo "sluice        ${t_sluice}s  ($rows rows, peak RSS $((rss / 1024)) MB)"
echo "python loop   ${t_python}s  ($prow rows)"
echo "insert bound  ${t_bound}s  ($rows rows, no parsing)"
python3 -c "import sys; s,p,b=map(float,sys.argv[1:]); print(f'sluice is {p/s:.2f}x faster than Python; {s/b:.2f}x the insert-only time')" \
    "$t_sluice" "$t_python" "$t_bound"
