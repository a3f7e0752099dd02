# A Kafka source's batches follow the memory plan (issue 6, finding 25):
# they were sealed at a fixed 1 MiB of messages, which decoded put 4.4 MiB
# in flight at a 2 MiB limit. Now at most the plan's block of message
# bytes: the summary's peak in flight stays near the limit, and every
# message is written once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=$((60000 / SCALE))
mock_start 1
gen_orders data/o.jsonl "$N" 3
mock_cmd "topic mem 4"
produce_by_id mem data/o.jsonl
cat > k.yaml <<YAML
engine: { memory_limit: 2MiB }
sources:
  k: { type: kafka, brokers: '$BROKERS', topics: [mem], group: gmem, exit_on_eof: true }
stages:
  m: { type: map, inputs: [k], set: { kp: '@partition' } }
sinks:
  db: { type: sqlite, inputs: [m], path: out/k.db, table: t }
YAML
"$SLUICE" run k.yaml --quiet --summary-json s.json 2> run.log || fail "run: $(cat run.log)"
python3 - "$N" <<'PY' || fail "memory or rows wrong"
import json, sqlite3, sys
n = int(sys.argv[1])
d = json.load(open("s.json"))
peak = d["peak_in_flight_bytes"]
assert peak <= 2.25 * (1 << 20), f"peak in flight {peak / (1 << 20):.2f} MiB at a 2 MiB limit"
print(f"peak in flight {peak / (1 << 20):.2f} MiB", file=sys.stderr)
rows, ids = sqlite3.connect("out/k.db").execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone()
assert rows == n and ids == n, f"{rows} rows, {ids} ids, want {n}"
PY
echo ok
