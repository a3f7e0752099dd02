# on_offset_out_of_range earliest | latest into SQLite when the topic was
# recreated (issue 6, finding 18): the table stored offset 300, the new
# topic has offsets 0..49. The reset must reset the sink's stored position
# too (a new offset epoch, the batches' fingerprint), or the sink trims the
# new topic's records as "already written" and they never land. A reset
# that reads nothing still moves the stored position (an empty batch at the
# new offset), so the next run does not reset again and, with latest, skip
# what came in between.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
ids() { seq "$1" "$2" | awk '{ printf "{\"id\":%d}\n", $1 }'; }
cat > k.yaml <<'YAML'
sources:
  k:
    type: kafka
    brokers: '${BROKERS}'
    topics: [t]
    group: g
    exit_on_eof: true
    librdkafka: { session.timeout.ms: '3000' }
stages:
  m: { type: map, inputs: [k], set: { ko: '@offset' } }
sinks:
  db: { type: sqlite, inputs: [m], path: out/k.db, table: t }
YAML
stored() { q out/k.db "SELECT position FROM _sluice_checkpoints WHERE stream = 't'"; }
rows() { q out/k.db "SELECT count(*), count(DISTINCT id) FROM t WHERE id BETWEEN $1 AND $2"; }

mock_start 1
mock_cmd "topic t 1"
ids 1 300 | produce t
timeout 120 "$SLUICE" run k.yaml --quiet 2> r1.err || fail "first run: $(cat r1.err)"
[ "$(rows 1 300)" = "300|300" ] && [ "$(stored)" = 300 ] || fail "first run: $(rows 1 300), stored $(stored)"

# The topic is recreated (a new cluster, same name): offsets 0..49.
mock_stop
mock_start 1
mock_cmd "topic t 1"
ids 1001 1050 | produce t
set +e
timeout 120 "$SLUICE" run k.yaml --quiet 2> r2.err
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "t \[0\]: the stored offset 300 is out of range: Kafka has offsets 0..50" r2.err ||
    fail "default (fail): exit $rc: $(cat r2.err)"
timeout 120 "$SLUICE" run k.yaml --set sources.k.on_offset_out_of_range=earliest 2> r3.err > /dev/null ||
    fail "earliest: $(cat r3.err)"
[ "$(rows 1001 1050)" = "50|50" ] || fail "earliest: the new topic's records were trimmed: $(rows 1001 1050), want 50|50 ($(grep -E 'db|gone' r3.err))"
grep -q "stored offset 300 is gone (Kafka has 0..50): starting at 0, and the sinks' stored positions" r3.err ||
    fail "no log line says the positions were reset: $(cat r3.err)"
[ "$(stored)" = 50 ] || fail "earliest: stored position $(stored), want 50"
# Nothing new: the next run reads nothing (no reset any more).
timeout 120 "$SLUICE" run k.yaml --set sources.k.on_offset_out_of_range=earliest 2> r4.err > /dev/null ||
    fail "run after the reset: $(cat r4.err)"
[ "$(q out/k.db 'SELECT count(*) FROM t')" = 350 ] && ! grep -q "is gone" r4.err ||
    fail "the run after the reset: $(q out/k.db 'SELECT count(*) FROM t') rows, $(cat r4.err)"

# Recreated again, now with latest: offsets 0..29 are skipped by choice, but
# the stored position moves to 30 at once, so that what comes after is read.
mock_stop
mock_start 1
mock_cmd "topic t 1"
ids 2001 2030 | produce t
timeout 120 "$SLUICE" run k.yaml --set sources.k.on_offset_out_of_range=latest 2> r5.err > /dev/null ||
    fail "latest: $(cat r5.err)"
[ "$(rows 2001 2030)" = "0|0" ] && [ "$(stored)" = 30 ] ||
    fail "latest: $(rows 2001 2030) rows of the skipped ones, stored $(stored), want 0|0 and 30"
ids 2031 2050 | produce t
timeout 120 "$SLUICE" run k.yaml --set sources.k.on_offset_out_of_range=latest 2> r6.err > /dev/null ||
    fail "latest, next run: $(cat r6.err)"
[ "$(rows 2031 2050)" = "20|20" ] || fail "latest: what came after the reset was lost: $(rows 2031 2050), want 20|20"
echo "ok"
