# memory_limit bounds peak RSS (issue 6, finding 2): a route with 20
# outputs each into a map, a 10-way fan-out into 10 sinks, and the default
# chain, with a 16 MiB limit, stay within the limit + 16 MiB whatever the
# input size. Sanitizer builds add their own shadow memory: there the shapes
# only run, unmeasured.
. "$(dirname "$0")/lib.sh"
N=$((300000 / SCALE))
gen_orders data/o.jsonl "$N" 5
python3 "$SLUICE_ROOT/tests/integration/memory_shapes.py" data/o.jsonl 16MiB .
for shape in route20 fan10 chain; do
    /usr/bin/time -f %M -o rss.txt "$SLUICE" run $shape.yaml 2> $shape.log || fail "$shape: $(cat $shape.log)"
    rss_kb=$(cat rss.txt)
    # The summary's in-flight figure is the budget's own count: it must
    # stay near the limit too (the reserve and one task's growth over it).
    peak=$(sed -n 's/.*peak in flight \([0-9.]*\) MiB.*/\1/p' $shape.log)
    python3 -c "import sys; sys.exit(float(sys.argv[1]) > 24)" "$peak" ||
        fail "$shape: peak in flight $peak MiB with memory_limit 16MiB"
    if [ -z "${SLUICE_SANITIZE:-}" ] && [ "$rss_kb" -gt $((32 * 1024)) ]; then
        fail "$shape: peak RSS $((rss_kb / 1024)) MB with memory_limit 16MiB (bound 32 MB)"
    fi
done
[ "$(q out/r.db 'SELECT count(*) FROM t')" = "$N" ] || fail "route20 rows"
echo ok
