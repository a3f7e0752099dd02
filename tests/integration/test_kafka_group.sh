# Scale-out: two sluice processes in one consumer group split the partitions
# and write into one SQLite file; one is killed with -9 mid-run, and the
# survivor takes its partitions over (after session.timeout.ms) from the
# stored positions: every message exactly once. Then a broker goes down for
# a few seconds during a run: nothing is lost. Then cooperative rebalancing:
# a second member joins a running one (incremental assignment), both stop
# on SIGTERM: exactly once, and the newcomer got partitions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=$((200000 / SCALE))
mock_start
mock_cmd "topic orders 8"
gen_orders data/o.jsonl "$N" 2
produce_by_id orders data/o.jsonl

cat > k.yaml <<YAML
sources:
  k:
    type: kafka
    brokers: '$BROKERS'
    topics: [orders]
    group: shared
    librdkafka: { session.timeout.ms: '3000', heartbeat.interval.ms: '500' }
stages:
  m: { type: map, inputs: [k], set: { kp: '@partition', ko: '@offset' } }
sinks:
  db: { type: sqlite, inputs: [m], path: out/k.db, table: t, batch: { max_records: 500 } }
YAML
rows() { q out/k.db 'SELECT count(*) FROM t' 2>/dev/null || echo 0; }
"$SLUICE" run k.yaml --quiet 2> a.txt &
a=$!
"$SLUICE" run k.yaml --quiet 2> b.txt &
b=$!
# Both members in, data flowing: kill one.
for _ in $(seq 1 400); do
    [ "$(rows)" -gt $((N / 10)) ] && break
    sleep 0.05
done
kill -9 $a
wait $a 2>/dev/null || true
# The survivor (no exit_on_eof: a long-running member) takes over; stop it
# with SIGTERM once everything is in.
for _ in $(seq 1 1200); do
    [ "$(rows)" -ge "$N" ] && break
    kill -0 $b 2>/dev/null || { cat b.txt; fail "survivor died"; }
    sleep 0.1
done
kill -TERM $b
wait $b || { cat b.txt; fail "survivor's drain"; }
[ "$(q out/k.db 'SELECT count(*), count(DISTINCT id), count(DISTINCT kp || ":" || ko), count(DISTINCT kp) FROM t')" = "$N|$N|$N|8" ] || fail "after takeover: $(q out/k.db 'SELECT count(*), count(DISTINCT id), count(DISTINCT kp) FROM t')"

# A broker down for a few seconds mid-run, then up: nothing lost.
sed -e 's/group: shared/group: gdown\n    exit_on_eof: true/' -e 's|out/k.db|out/down.db|' k.yaml > down.yaml
"$SLUICE" run down.yaml --quiet 2> down.txt &
pid=$!
for _ in $(seq 1 400); do
    [ "$(q out/down.db 'SELECT count(*) FROM t' 2>/dev/null || echo 0)" -gt 0 ] && break
    sleep 0.05
done
mock_cmd "down 1"
sleep 3
mock_cmd "up 1"
wait $pid || { cat down.txt; fail "run with a broker down"; }
[ "$(q out/down.db 'SELECT count(*), count(DISTINCT id) FROM t')" = "$N|$N" ] || fail "broker down: $(q out/down.db 'SELECT count(*), count(DISTINCT id) FROM t')"
# Cooperative (incremental) rebalancing.
sed -e 's/group: shared/group: coop/' -e 's|out/k.db|out/coop.db|' \
    -e "s/heartbeat.interval.ms: '500'/heartbeat.interval.ms: '500', partition.assignment.strategy: cooperative-sticky/" \
    k.yaml > coop.yaml
crows() { q out/coop.db 'SELECT count(*) FROM t' 2>/dev/null || echo 0; }
"$SLUICE" run coop.yaml 2> ca.txt > /dev/null &
a=$!
for _ in $(seq 1 400); do
    [ "$(crows)" -gt 0 ] && break
    sleep 0.05
done
"$SLUICE" run coop.yaml 2> cb.txt > /dev/null &
b=$!
coop_done() { [ "$(crows)" -ge "$N" ]; }
wait_until coop_done || fail "cooperative: rows"
# The newcomer's incremental assignment may come after the data is in.
wait_until grep -q "assigned [1-9]" cb.txt || fail "the second member got no partitions: $(cat cb.txt)"
kill -TERM $a $b
wait $a || { cat ca.txt; fail "first cooperative member"; }
wait $b || { cat cb.txt; fail "second cooperative member"; }
[ "$(q out/coop.db 'SELECT count(*), count(DISTINCT id) FROM t')" = "$N|$N" ] || fail "cooperative: $(q out/coop.db 'SELECT count(*), count(DISTINCT id) FROM t')"
grep -q "consumer lag: orders" cb.txt || fail "the second member got no partitions: $(cat cb.txt)"
echo "ok"
