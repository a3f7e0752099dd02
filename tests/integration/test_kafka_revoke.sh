# A revoke while the sink is stuck (issue 6, finding 6): the revoking
# member used to wait, with no bound, for its sink to take and commit what
# it had read from the revoked partitions, so the whole group stalled as
# long as the sink did (here: another process holds the SQLite database's
# write lock for 20 s). Now it waits at most half of max.poll.interval.ms
# (3 s here), drops what the pipeline could not take (the next owner reads
# it again) and lets the rebalance go on: the newcomer gets its partitions
# while the lock is still held. Once the lock is gone, everything is in the
# table exactly once (late batches are trimmed at the stored positions).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=$((40000 / SCALE))
mock_start 1
mock_cmd "topic r 4"
gen_orders data/o.jsonl "$N" 5
produce_by_id r data/o.jsonl
cat > k.yaml <<YAML
engine: { memory_limit: 1MiB }
sources:
  k:
    type: kafka
    brokers: '$BROKERS'
    topics: [r]
    group: gr
    librdkafka: { session.timeout.ms: '3000', heartbeat.interval.ms: '500', max.poll.interval.ms: '6000' }
stages:
  m: { type: map, inputs: [k], set: { kp: '@partition', ko: '@offset' } }
sinks:
  db: { type: sqlite, inputs: [m], path: out/k.db, table: t, batch: { max_records: 500 } }
YAML
rows() { q out/k.db 'SELECT count(*) FROM t' 2> /dev/null || echo 0; }
"$SLUICE" run k.yaml 2> a.err > /dev/null &
a=$!
some() { [ "$(rows)" -gt 0 ]; }
wait_until some || { kill -9 $a; fail "first member: $(cat a.err)"; }
printf '.timeout 10000\nBEGIN IMMEDIATE;\nCREATE TABLE IF NOT EXISTS lock_holder(a);\n.shell sleep 20\nCOMMIT;\n' |
    sqlite3 out/k.db &
lock=$!
sleep 1
"$SLUICE" run k.yaml 2> b.err > /dev/null &
b=$!
die() {
    kill -9 $a $b $lock 2> /dev/null || true
    fail "$@"
}
assigned() { grep -q "assigned [1-9] partition" b.err; }
wait_until assigned || die "the second member got no partitions: $(cat b.err)"
# The first member must be done with its revoke, and back in the group with
# its share, while the sink is still stuck (the mock cluster hands the
# second member everything meanwhile if the first one does not rejoin).
rejoined() { [ "$(grep -c "assigned [1-9] partition" a.err)" -ge 2 ]; }
WAIT_TIMEOUT=30 wait_until rejoined || die "the first member never came back: $(grep -v refused a.err | head)"
kill -0 "$lock" 2> /dev/null ||
    die "the first member finished its revoke only once the sink was free again: the wait had no bound"
grep -q "within 3 s" a.err || die "the first member did not say it gave up waiting: $(cat a.err)"
wait "$lock" || fail "lock holder"
done_() { [ "$(rows)" -ge "$N" ]; }
WAIT_TIMEOUT=60 wait_until done_ || die "rows: $(rows) of $N"
kill -TERM $a $b
wait $a || fail "first member: $(err_of a.err)"
wait $b || fail "second member: $(err_of b.err)"
[ "$(q out/k.db 'SELECT count(*), count(DISTINCT id), count(DISTINCT kp || ":" || ko) FROM t')" = "$N|$N|$N" ] ||
    fail "not exactly once: $(q out/k.db 'SELECT count(*), count(DISTINCT id) FROM t'), want $N"
echo "ok"
