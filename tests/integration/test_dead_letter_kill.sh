# Dead letters sent to another database are exactly once through kill -9
# (issue 6, finding 5): they are stored before the sink commits the batch
# they came with, so a kill between the two replays them instead of losing
# them, and the store writes a replayed one over itself (its _id is the
# same: upsert on _id). The main table stays exactly once.
. "$(dirname "$0")/lib.sh"
N=$((200000 / SCALE))
gen_orders data/o.jsonl "$N" 9
# Every 10th order gets a text amount: the filter's expression fails on it.
text_amounts data/o.jsonl
cat > p.yaml <<'YAML'
sources:
  orders: { type: file, path: data/o.jsonl }
stages:
  paid: { type: filter, inputs: [orders], where: 'amount * 2 > 0' }
sinks:
  db: { type: sqlite, inputs: [paid], path: out/main.db, table: orders, batch: { max_records: 2000 } }
dead_letter: { type: sqlite, path: out/dead.db, table: rejects }
YAML
kill_runs 8 4 "$SLUICE" run p.yaml --quiet
"$SLUICE" run p.yaml --quiet 2> last.log || fail "last run: $(cat last.log)"
python3 - "$N" <<'PY' || fail "dead letters lost or rows wrong"
import json, sqlite3, sys
n = int(sys.argv[1])
want = sum(1 for l in open("data/o.jsonl")
           if not isinstance(json.loads(l)["amount"], str) and json.loads(l)["amount"] * 2 > 0)
main = sqlite3.connect("out/main.db")
rows, ids = main.execute("SELECT count(*), count(DISTINCT id) FROM orders").fetchone()
assert rows == want and ids == want, f"main table: {rows} rows, {ids} ids, want {want}"
dead = sqlite3.connect("out/dead.db")
lines = [r[0] for r in dead.execute("SELECT _line FROM rejects")]
missing = [l for l in range(1, n + 1, 10) if l not in set(lines)]
assert not missing, f"{len(missing)} dead letters lost, first lines {missing[:5]}"
assert len(lines) == len(set(lines)), f"{len(lines) - len(set(lines))} dead letters written twice"
ids = dead.execute("SELECT count(*), count(DISTINCT _id) FROM rejects").fetchone()
assert ids[0] == ids[1] == len(lines), f"ids {ids}"
PY
echo ok
