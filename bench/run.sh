#!/bin/sh
# Times, on the same 1M generated orders (JSON lines, ~170 MB): sluice
# file -> filter -> map -> SQLite; the same ETL as a Python loop; and the
# insert-only bound (a C program doing only multi-row INSERTs). Prints each
# time, the ratios, sluice's peak RSS and the JSON decoder's rate on one
# core. Usage: bench/run.sh [build dir] [N]; OTHER=dir also times another
# build's sluice in the same run, round by round (ratios: the machine is
# shared).
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-1000000}
OUT=bench/out
mkdir -p "$OUT"
SLUICE="$BUILD/sluice"
[ -x "$SLUICE" ] || { echo "build sluice first (scripts/quickstart or cmake)"; exit 1; }
gcc -O2 -o "$OUT/insert_bound" bench/sqlite_insert_bound.c -lsqlite3
gcc -std=c11 -O2 -D_GNU_SOURCE -iquote engine bench/json_decode.c engine/json_decode.c \
    engine/json_write.c engine/err.c engine/mem.c engine/arena.c engine/flow.c engine/record.c \
    engine/buf.c -lm -lpthread -o "$OUT/json_decode"

DATA="$OUT/orders-$N.jsonl"
if [ ! -f "$DATA" ]; then
    printf 'sources:\n  gen: { type: generator, count: %s, seed: 1 }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
        "$N" "$DATA" > "$OUT/gen.yaml"
    "$SLUICE" run "$OUT/gen.yaml" --quiet
fi
echo "data: $DATA ($(du -m "$DATA" | cut -f1) MB, $N orders)"
cat "$DATA" > /dev/null # warm the page cache for every contender

ROUNDS=${ROUNDS:-3}
# best ROUNDS command... -> the best wall seconds on stdout; the highest peak
# RSS (KiB) of the rounds in $OUT/rss. Each round starts from an empty db.
best() {
    db=$1
    shift
    b=""
    r=0
    for _ in $(seq "$ROUNDS"); do
        rm -f "$db" "$db-wal" "$db-shm"
        /usr/bin/time -f '%e %M' -o "$OUT/time" "$@" > /dev/null
        t=$(cut -d' ' -f1 "$OUT/time")
        m=$(cut -d' ' -f2 "$OUT/time")
        [ "$m" -gt "$r" ] && r=$m
        if [ -z "$b" ] || python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$t" "$b"; then
            b=$t
        fi
    done
    echo "$r" > "$OUT/rss"
    echo "$b"
}
export BENCH_DATA="$DATA" BENCH_DB="$OUT/sluice.db"
if [ -n "${OTHER:-}" ]; then
    # Alternate the two builds so that both see the same load.
    t_other=""
    t_sluice=""
    for _ in $(seq "$ROUNDS"); do
        t=$(ROUNDS=1 best "$OUT/sluice.db" "$OTHER/sluice" run bench/file_to_sqlite.yaml --quiet)
        rss_other=$(cat "$OUT/rss")
        [ -z "$t_other" ] || python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$t" "$t_other" && t_other=$t
        t=$(ROUNDS=1 best "$OUT/sluice.db" "$SLUICE" run bench/file_to_sqlite.yaml --quiet)
        rss=$(cat "$OUT/rss")
        [ -z "$t_sluice" ] || python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$t" "$t_sluice" && t_sluice=$t
    done
    echo "$OTHER/sluice ${t_other}s (peak RSS $((rss_other / 1024)) MB, last round)"
    python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'$SLUICE vs $OTHER/sluice: {a/b:.3f}x the time')" "$t_sluice" "$t_other"
else
    t_sluice=$(best "$OUT/sluice.db" "$SLUICE" run bench/file_to_sqlite.yaml --quiet)
    rss=$(cat "$OUT/rss")
fi
rows=$(sqlite3 "$OUT/sluice.db" 'SELECT count(*) FROM orders')
t_python=$(best "$OUT/python.db" python3 bench/etl_python.py "$DATA" "$OUT/python.db")
prow=$(sqlite3 "$OUT/python.db" 'SELECT count(*) FROM orders')
t_bound=$(best "$OUT/bound.db" "$OUT/insert_bound" "$OUT/bound.db" "$rows")
echo "best of $ROUNDS runs each:"
echo "sluice        ${t_sluice}s  ($rows rows, peak RSS $((rss / 1024)) MB)"
echo "python loop   ${t_python}s  ($prow rows)"
echo "insert bound  ${t_bound}s  ($rows rows, no parsing)"
echo "JSON decoder alone, one core, on the same file:"
"$OUT/json_decode" "$N" 3 "$DATA" | tail -1
python3 -c "import sys; s,p,b=map(float,sys.argv[1:]); print(f'sluice is {p/s:.2f}x faster than Python; {s/b:.2f}x the insert-only time')" \
    "$t_sluice" "$t_python" "$t_bound"
# The same pipeline at smaller memory limits (issue 7: 16MiB within 15% of
# the default's throughput, peak RSS <= limit + 16 MiB).
for limit in ${LIMITS:-16MiB}; do
    t=$(best "$OUT/sluice.db" "$SLUICE" run bench/file_to_sqlite.yaml --quiet --set "engine.memory_limit=$limit")
    python3 -c "import sys; t,d=map(float,sys.argv[1:3]); print(f'memory_limit {sys.argv[3]}: {t}s = {t/d:.3f}x the default limit time, peak RSS {int(sys.argv[4])//1024} MB')" \
        "$t" "$t_sluice" "$limit" "$(cat "$OUT/rss")"
done
