# file -> kafka under injected broker faults (issue 6, findings 20 and 21):
# - Produce answers delayed past message.timeout.ms: the broker has every
#   message, librdkafka reports them timed out. They are dead-lettered (no
#   blind resend), but the reason must say "possibly delivered": the topic
#   holds them all.
# - A slow broker (every answer 0.3 s late, one request at a time) makes the sink acknowledge long
#   after the file source has read its whole file: the source's
#   `checkpoints:` positions must go on following the acknowledgements, so
#   that a kill -9 then and a restart resend at most about a second's worth,
#   not the whole file (six such kills once made 257,114 messages of 100,000).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
mock_start 1

# ---- delivery timed out, but the broker has the messages ----
mock_cmd "topic slow 1"
M=200
seq 1 "$M" | awk '{ printf "{\"id\":%d}\n", $1 }' > few.jsonl
cat > slow.yaml <<'YAML'
sources:
  in: { type: file, path: few.jsonl }
sinks:
  k: { type: kafka, inputs: [in], brokers: '${BROKERS}', topic: slow, librdkafka: { message.timeout.ms: 1500 } }
dead_letter: { type: file, path: out/slow-dead.jsonl }
YAML
mock_cmd "broker-errors 1 Produce 5 NO_ERROR 3000"
timeout 120 "$SLUICE" run slow.yaml 2> slow.err > /dev/null || fail "slow run: $(err_of slow.err)"
[ "$(consume slow | wc -l)" -eq "$M" ] || fail "the broker should hold all $M messages"
dead=$(wc -l < out/slow-dead.jsonl)
[ "$dead" -gt 0 ] || fail "no delivery timed out: the fault was not injected"
[ "$(grep -c '"_error":"kafka: delivery to slow \[0\] not confirmed (possibly delivered: Kafka may hold the message): Local: Message timed out"' out/slow-dead.jsonl)" -eq "$dead" ] ||
    fail "a timed-out delivery does not say possibly delivered: $(head -n 1 out/slow-dead.jsonl)"

# ---- checkpoints follow the acknowledgements after the file is read ----
# One partition: with several, librdkafka may serve one partition's
# requests long before another's (one request in flight), and a write is
# acknowledged only when all its partitions are (CI once saw 9,169 of 20,000
# messages in the topic and no write complete yet).
mock_cmd "topic ids 1"
N=20000 # not scaled: a source batch holds ~2,200 of these lines, the kill must come several writes in
seq 1 "$N" | awk '{ printf "{\"id\":%d,\"pad\":\"%0100d\"}\n", $1, $1 }' > in.jsonl
cat > ck.yaml <<'YAML'
sources:
  in: { type: file, path: in.jsonl, checkpoints: out/ck.db }
sinks:
  k:
    type: kafka
    inputs: [in]
    brokers: '${BROKERS}'
    topic: ids
    key: id
    batch: { max_records: 500 }
    librdkafka: { max.in.flight.requests.per.connection: 1, batch.num.messages: 500 }
YAML
mock_cmd "rtt 1 300"
"$SLUICE" run ck.yaml 2> ck1.err > /dev/null &
pid=$!
stored() { q out/ck.db 'SELECT max(position) FROM _sluice_checkpoints' 2> /dev/null || true; }
# The file is read at once (it fits in memory_limit); wait until the stored
# checkpoint covers a quarter of it (the mock's answers come late, so poll
# the checkpoint, not the topic), then kill it.
size=$(stat -c %s in.jsonl)
quarter_stored() { [ "$(stored)" -ge $((size / 4)) ] 2> /dev/null; }
wait_until quarter_stored ||
    fail "the checkpoint never covered a quarter of the file (stored: '$(stored)'): $(err_of ck1.err)"
kill -0 "$pid" 2> /dev/null || fail "the slow run ended too soon: $(err_of ck1.err)"
kill -9 "$pid"
wait "$pid" 2> /dev/null || true
mock_cmd "rtt 1 0"
acked=$(consume ids | wc -l)
pos=$(stored)
# What the position covers, in records (each line has the same length).
covered=$((pos * N / size))
[ $((acked - covered)) -le $((N / 4)) ] ||
    fail "the checkpoint ($covered records) lags the messages in the topic ($acked) by more than $((N / 4))"
timeout 120 "$SLUICE" run ck.yaml 2> ck2.err > /dev/null || fail "restart: $(err_of ck2.err)"
consume ids > all.txt
total=$(wc -l < all.txt)
distinct=$(sort -u all.txt | wc -l)
[ "$distinct" -eq "$N" ] || fail "after the restart: $distinct distinct messages, want $N"
[ $((total - N)) -le $((N / 4)) ] ||
    fail "after the restart: $total messages for $N records: the checkpoint did not follow the acknowledgements"
echo "ok: $dead possibly delivered; kill with $acked in the topic, checkpoint at $covered, $((total - N)) sent twice"
