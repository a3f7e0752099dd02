# Exactly once through kill -9: generated orders in files are loaded into
# SQLite by a pipeline that fans out to two sinks; the run is killed at
# random moments and restarted until it finishes; then each table must hold
# every input record exactly once.
. "$(dirname "$0")/lib.sh"
N=$((600000 / SCALE))
cat > gen.yaml <<YAML
sources:
  gen: { type: generator, count: $N, seed: 42 }
sinks:
  out: { type: file, inputs: [gen], path: data/orders.jsonl }
YAML
"$SLUICE" run gen.yaml --quiet || fail "generate"
split -l $((N / 3 + 1)) -d --additional-suffix=.jsonl data/orders.jsonl data/part-
rm data/orders.jsonl
lz4 -q data/part-01.jsonl data/part-01.jsonl.lz4 && rm data/part-01.jsonl

cat > load.yaml <<'YAML'
sources:
  orders: { type: file, path: 'data/part-*', format: json }
stages:
  cents:
    type: map
    inputs: [orders]
    set: { amount_cents: 'round(amount * 100)' }
sinks:
  a: { type: sqlite, inputs: [cents], path: out/a.db, table: orders, batch: { max_records: 5000 } }
  b: { type: sqlite, inputs: [orders], path: out/b.db, table: orders_raw, batch: { max_records: 3000 } }
YAML
kills=0
for attempt in $(seq 1 40); do
    "$SLUICE" run load.yaml --quiet &
    pid=$!
    # Kill after a random 20-400 ms (or let it finish).
    sleep "$(printf '0.%03d' $(( (RANDOM % 380) + 20 )))"
    if kill -9 "$pid" 2>/dev/null; then
        kills=$((kills + 1))
        wait "$pid" 2>/dev/null || true
    else
        wait "$pid" || fail "run failed"
        break
    fi
done
"$SLUICE" run load.yaml --quiet || fail "final run failed"
echo "killed $kills times"
for t in "out/a.db orders" "out/b.db orders_raw"; do
    set -- $t
    got="$(q "$1" "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM $2")"
    [ "$got" = "$N|$N|1|$N" ] || fail "$1: $got, expected $N rows once each"
done
echo "ok"
