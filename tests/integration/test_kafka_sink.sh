# The kafka sink against the mock cluster, read back with kcat (an
# independent client): file -> kafka into an 8-partition topic keeps every
# record exactly once, byte for byte what the file sink writes (doubles keep
# their type), keyed by id over all partitions; the leader of a partition
# down for a few seconds during the run loses nothing (at least once); a
# cluster unreachable for longer than message.timeout.ms dead-letters the
# records with the reason instead of hanging or losing them silently.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

N=$((40000 / SCALE))

# The summary's out and dead columns of node $2 in stderr file $1.
summary_of() {
    awk -v n="$2" '$1 == n { print $5, $7 }' "$1"
}

# Input: every value type JSON has, escapes, non-ASCII text, doubles that
# look like integers (100.0), nesting.
python3 - "$N" > in.jsonl <<'PY'
import json, random, sys
n = int(sys.argv[1])
r = random.Random(7)
for i in range(n):
    o = {"id": i, "amount": round(r.uniform(-500, 5000), 2), "whole": float(i % 300),
         "name": r.choice(["ana", "Zoë", "李", "a \"quoted\" \\ name", "tab\there", ""]),
         "ok": r.random() < 0.5, "none": None, "big": r.randint(-2**63, 2**63 - 1),
         "tiny": r.choice([1e-7, 1.5e300, -0.0, 0.1]),
         "tags": r.sample(["x", "y", "z"], r.randint(0, 3)), "meta": {"n": i % 7, "s": [1, 2.5]}}
    print(json.dumps(o, ensure_ascii=r.random() < 0.5))
PY

# ---- file -> kafka, read back ----
mock_start 3
mock_cmd "topic orders 8"
cat > p.yaml <<'YAML'
sources:
  in: { type: file, path: in.jsonl }
sinks:
  k:
    type: kafka
    inputs: [in]
    brokers: '${BROKERS}'
    topic: orders
    key: id
    batch: { max_records: 5000 }
  f: { type: file, inputs: [in], path: out/copy.jsonl }
YAML
"$SLUICE" run p.yaml 2> run1.err || fail "run: $(cat run1.err)"
[ "$(summary_of run1.err k)" = "$N 0" ] || fail "summary of k: $(summary_of run1.err k), want $N 0"
consume orders all -f '%p\t%k\t%s\n' > got.tsv
[ "$(wc -l < got.tsv)" -eq "$N" ] || fail "read back $(wc -l < got.tsv) messages, want $N"
# Byte for byte what the file sink writes, each record exactly once.
cut -f3- got.tsv | sort > got.txt
sort out/copy.jsonl > want.txt
cmp -s got.txt want.txt || fail "messages differ from the file sink's lines"
python3 - <<'PY' || fail "messages do not match the input"
import json
def canon(text):
    # json.dumps keeps 100.0 apart from 100: a double must stay a double.
    return json.dumps(json.loads(text), sort_keys=False)
want = sorted(canon(l) for l in open("in.jsonl"))
got, parts = [], set()
for line in open("got.tsv", encoding="utf-8"):
    part, key, value = line.rstrip("\n").split("\t", 2)
    o = json.loads(value)
    assert key == str(o["id"]), (key, o["id"])
    assert isinstance(o["whole"], float) and isinstance(o["amount"], float), value
    parts.add(part)
    got.append(canon(value))
assert sorted(got) == want, "content differs"
assert len(parts) == 8, parts
PY
grep -q '"whole":100.0,' got.txt || fail "a double lost its type: $(grep -m1 '"id":100,' got.txt)"

# ---- a partition leader down for a few seconds during the run ----
mock_cmd "topic again 8"
timeout "$KAFKA_TIMEOUT" kcat -L -b "$BROKERS" -t again > metadata.txt || fail "kcat -L failed"
leader=$(sed -n 's/^ *partition 0, leader \([0-9]*\),.*/\1/p' metadata.txt)
[ -n "$leader" ] || fail "no leader for again/0: $(cat metadata.txt)"
sed -e 's/topic: orders/topic: again/' -e '/^  f:/d' p.yaml > down.yaml
cat >> down.yaml <<'YAML'
dead_letter: { type: file, path: out/dead.jsonl }
YAML
mock_cmd "down $leader"
"$SLUICE" run down.yaml 2> run2.err &
pid=$!
# Partition 0 cannot take a message while its leader is down: the run must
# still be waiting for its delivery reports after the refused connection.
wait_until grep -q 'Connection refused' run2.err || fail "sluice never met the down broker"
sleep 2
kill -0 "$pid" 2> /dev/null || fail "the run ended while the leader of partition 0 was down"
mock_cmd "up $leader"
wait "$pid" || fail "run with broker $leader down and up: $(err_of run2.err)"
[ ! -s out/dead.jsonl ] || fail "dead letters after down/up: $(head -n 2 out/dead.jsonl)"
consume again all | sort > again.txt
# At least once: every record is there (a retry may repeat one).
sort -u again.txt | cmp -s - want.txt ||
    fail "after down/up: $(sort -u again.txt | wc -l) distinct records, want $N (lost some)"
echo "down/up: $(wc -l < again.txt) messages for $N records"

# ---- topic_expr, object keys, a tiny producer queue ----
# Records without tags have no topic (an int): dead letters with the reason.
# A queue of 50 messages is full all the time: produce waits, never drops.
cat > expr.yaml <<'YAML'
sources:
  in: { type: file, path: in.jsonl }
sinks:
  k:
    type: kafka
    inputs: [in]
    brokers: '${BROKERS}'
    topic_expr: 'coalesce(tags[0], 5)'
    key: meta
    librdkafka: { queue.buffering.max.messages: 50 }
dead_letter: { type: file, path: out/expr-dead.jsonl }
YAML
"$SLUICE" run expr.yaml 2> run4.err || fail "topic_expr run: $(err_of run4.err)"
python3 - "$N" <<'PY' > expr.want
import json, sys
counts = {"x": 0, "y": 0, "z": 0, "dead": 0}
for line in open("in.jsonl"):
    tags = json.loads(line)["tags"]
    counts[tags[0] if tags else "dead"] += 1
print(counts["x"], counts["y"], counts["z"], counts["dead"])
PY
for t in x y z; do consume "$t" all -f '%k\n' > "topic-$t.txt"; done
echo "$(wc -l < topic-x.txt) $(wc -l < topic-y.txt) $(wc -l < topic-z.txt)" \
    "$(grep -c '"_error":"topic_expr: expected a string, got int"' out/expr-dead.jsonl)" > expr.got
cmp -s expr.want expr.got || fail "topic_expr: got $(cat expr.got), want $(cat expr.want)"
# An object key is its JSON text, as written in the input.
grep -qx '{"n": 3, "s": \[1, 2.5\]}' topic-x.txt || fail "object key: $(head -n 1 topic-x.txt)"

# ---- the whole cluster unreachable longer than message.timeout.ms ----
M=200
head -n "$M" in.jsonl > few.jsonl
cat > gone.yaml <<'YAML'
sources:
  in: { type: file, path: few.jsonl }
sinks:
  k:
    type: kafka
    inputs: [in]
    brokers: '${BROKERS}'
    topic: orders
    librdkafka: { message.timeout.ms: 1500 }
dead_letter: { type: file, path: out/gone.jsonl }
YAML
mock_cmd "down -1"
"$SLUICE" run gone.yaml 2> run3.err || fail "run with the cluster down: $(err_of run3.err)"
[ "$(summary_of run3.err k)" = "0 $M" ] || fail "summary of k: $(summary_of run3.err k), want 0 $M"
[ "$(grep -c '"_error":"kafka: delivery to orders.*Message timed out"' out/gone.jsonl)" -eq "$M" ] ||
    fail "dead letters: $(head -n 2 out/gone.jsonl)"
mock_cmd "up -1"
mock_stop
echo "ok"
