# Two processes run one pipeline on one SQLite file at once: both read (a
# later starter resumes where the other's commits are), and each dead letter
# is stored once (in the sink's transaction). The
# one whose write finds it already stored trims it: the dead_letter node
# must count it as received and dropped (replayed), not lose it from its
# counts (hostile probe: 113 + 485 of 598 were counted).
. "$(dirname "$0")/lib.sh"
N=$((100000 / SCALE))
gen_orders data/o.jsonl "$N" 5
awk 'NR % 250 == 0 { print "{bad json" } { print }' data/o.jsonl > data/mixed.jsonl
BAD=$(grep -c '^{bad' data/mixed.jsonl)
cat > p.yaml <<'YAML'
sources:
  orders: { type: file, path: data/mixed.jsonl }
sinks:
  db: { type: sqlite, inputs: [orders], path: out/o.db, table: orders, batch: { max_records: 500 } }
dead_letter: { type: sqlite, path: out/o.db, table: rejects }
YAML
mkdir -p out
"$SLUICE" run p.yaml --summary-json a.json 2> a.err &
a=$!
"$SLUICE" run p.yaml --summary-json b.json 2> b.err &
b=$!
wait $a || fail "run a: $(err_of a.err)"
wait $b || fail "run b: $(err_of b.err)"
[ "$(q out/o.db 'SELECT count(*) FROM rejects')" -eq "$BAD" ] || fail "rejects: $(q out/o.db 'SELECT count(*) FROM rejects') of $BAD"
[ "$(q out/o.db 'SELECT count(*) FROM orders')" -eq "$N" ] || fail "orders: $(q out/o.db 'SELECT count(*) FROM orders') of $N"
python3 - "$BAD" <<'PY' || fail "dead_letter counts: $(cat a.json) $(cat b.json)"
import json, sys
bad = int(sys.argv[1])
stored = 0
for f in ("a.json", "b.json"):
    d = json.load(open(f))["nodes"]
    n = d["dead_letter"]
    # A process that starts after the other committed resumes there: it
    # sees fewer lines, and exactly the dead letters of what it read.
    assert n["in"] == d["orders"]["dead"], (f, n)
    assert n["in"] == n["out"] + n["dropped"], (f, n)
    assert n["dropped"] == n["replayed"], (f, n)
    stored += n["out"]
assert stored == bad, stored
PY
echo "ok: $BAD dead letters, stored once between two processes"
