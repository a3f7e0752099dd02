# A stored offset Kafka no longer has (the mock keeps ~5 MB per partition
# and drops older data): by default the run fails, naming the topic,
# partition and offsets; on_offset_out_of_range: earliest restarts from the
# oldest offset Kafka still has. Also: a librdkafka key sluice owns, or a
# misspelt one, is a config error at its line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
mock_start
mock_cmd "topic small 1"
python3 -c "
for i in range(100): print('{\"id\": %d}' % i)" | produce small
cat > k.yaml <<YAML
sources:
  k:
    type: kafka
    brokers: '$BROKERS'
    topics: [small]
    group: goff
    exit_on_eof: true
    librdkafka: { session.timeout.ms: '3000' }
sinks:
  db: { type: sqlite, inputs: [k], path: out/k.db, table: t }
YAML
timeout 120 "$SLUICE" run k.yaml --quiet || fail "first run"
[ "$(q out/k.db 'SELECT count(*) FROM t')" = 100 ] || fail "first run rows"
# Push the stored offset (100) out of the partition's log.
python3 -c "
pad = 'x' * 400
for i in range(100, 20100): print('{\"id\": %d, \"pad\": \"%s\"}' % (i, pad))" | produce small
set +e
timeout 120 "$SLUICE" run k.yaml --quiet 2> err.txt
rc=$?
set -e
[ "$rc" = 1 ] || fail "out of range: exit $rc, expected 1: $(cat err.txt)"
grep -q "small \[0\].*offset 100 is out of range: Kafka has offsets [0-9]*\.\.20100" err.txt || fail "message: $(cat err.txt)"
[ "$(q out/k.db 'SELECT count(*) FROM t')" = 100 ] || fail "rows written by a failed run"
timeout 120 "$SLUICE" run k.yaml --quiet --set sources.k.on_offset_out_of_range=earliest 2> err.txt || fail "earliest: $(cat err.txt)"
lo=$(q out/k.db 'SELECT min(id) FROM t WHERE id >= 100')
[ "$lo" -gt 100 ] || fail "earliest did not skip the gone offsets"
[ "$(q out/k.db 'SELECT max(id), count(*) FROM t WHERE id >= 100')" = "20099|$((20100 - lo))" ] || fail "earliest: $(q out/k.db 'SELECT min(id), max(id), count(*) FROM t WHERE id >= 100')"

# librdkafka keys: owned ones refused with a pointer, misspelt ones located.
sed "s/session.timeout.ms: '3000'/group.id: other/" k.yaml > owned.yaml
set +e
"$SLUICE" validate owned.yaml 2> err.txt
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "owned.yaml:8:.*group.id.*group" err.txt || fail "owned key: $rc $(cat err.txt)"
sed "s/session.timeout.ms/sesion.timeout.ms/" k.yaml > typo.yaml
set +e
"$SLUICE" validate typo.yaml 2> err.txt
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "typo.yaml:8:.*session.timeout.ms" err.txt || fail "misspelt key: $rc $(cat err.txt)"
echo "ok"
