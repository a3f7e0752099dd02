# Exactly once from Kafka into SQLite through kill -9: the run is killed at
# random moments and restarted (same group) until it finishes; every message
# must then be in the table once. Also with a 1 MiB memory budget, which
# makes the source pause its partitions (backpressure) while it keeps
# polling: still everything once, and the member stays in the group.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=$((120000 / SCALE))
mock_start
mock_cmd "topic orders 6"
gen_orders data/o.jsonl "$N" 4
produce_by_id orders data/o.jsonl

cat > k.yaml <<YAML
sources:
  k:
    type: kafka
    brokers: '$BROKERS'
    topics: [orders]
    group: gk
    exit_on_eof: true
    librdkafka: { session.timeout.ms: '3000', heartbeat.interval.ms: '500' }
stages:
  m: { type: map, inputs: [k], set: { kp: '@partition', ko: '@offset' } }
sinks:
  db: { type: sqlite, inputs: [m], path: out/k.db, table: t, batch: { max_records: 2000 } }
YAML
kills=0
for attempt in 1 2 3 4; do
    "$SLUICE" run k.yaml --quiet &
    pid=$!
    # Kill once rows are arriving (the group join takes 3 s on the mock).
    for _ in $(seq 1 200); do
        n=$(q out/k.db 'SELECT count(*) FROM t' 2>/dev/null || echo 0)
        [ "${n:-0}" -gt $((attempt * N / 8)) ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    sleep "$(printf '0.%03d' $((RANDOM % 200)))"
    if kill -9 $pid 2>/dev/null; then
        kills=$((kills + 1))
    fi
    wait $pid 2>/dev/null || true
done
timeout 120 "$SLUICE" run k.yaml --quiet || fail "final run"
echo "killed $kills times"
[ "$(q out/k.db 'SELECT count(*), count(DISTINCT id), count(DISTINCT kp || ":" || ko) FROM t')" = "$N|$N|$N" ] || fail "after kills: $(q out/k.db 'SELECT count(*), count(DISTINCT id) FROM t'), expected $N once each"

# Backpressure: another process holds the database's write lock for 4 s
# mid-run, so the pipeline stays full (1 MiB budget): the source must pause
# its partitions and keep polling (still in the group), then finish.
sed -e 's/group: gk/group: gbp/' -e 's|out/k.db|out/bp.db|' k.yaml > bp.yaml
printf 'engine: { memory_limit: 1MiB }\n' >> bp.yaml
"$SLUICE" run bp.yaml 2> bp.txt > /dev/null &
pid=$!
for _ in $(seq 1 400); do
    [ "$(q out/bp.db 'SELECT count(*) FROM t' 2>/dev/null || echo 0)" -gt 0 ] && break
    sleep 0.05
done
printf '.timeout 10000\nBEGIN IMMEDIATE;\nCREATE TABLE lock_holder(a);\n.shell sleep 4\nCOMMIT;\n' | sqlite3 out/bp.db
wait $pid || { cat bp.txt; fail "backpressure run"; }
[ "$(q out/bp.db 'SELECT count(*), count(DISTINCT id) FROM t')" = "$N|$N" ] || fail "backpressure: $(q out/bp.db 'SELECT count(*) FROM t')"
grep -q "paused [1-9][0-9]* times" bp.txt || fail "the source never paused: $(grep paused bp.txt)"
echo "ok"
