# Dead letters into a table of the sink's own file are exactly once even when
# the source reaches the sink by several paths (a diamond: each path's copy
# of a batch carries the dead letters made before the split), through kill
# -9; and the summary counts as stored only the dead letters a write
# stored, not those trimmed as replays.
. "$(dirname "$0")/lib.sh"
N=$((100000 / SCALE))
gen_orders data/o.jsonl "$N" 5
python3 - <<'PY'
import json
lines = open("data/o.jsonl").read().splitlines()
with open("data/o.jsonl", "w") as f:
    for i, l in enumerate(lines):
        o = json.loads(l)
        if i % 10 == 0:
            o["amount"] = "n/a"
        f.write(json.dumps(o) + "\n")
PY
cat > p.yaml <<'YAML'
sources:
  orders: { type: file, path: data/o.jsonl }
stages:
  paid: { type: filter, inputs: [orders], where: 'amount * 2 > 0' }
  a: { type: map, inputs: [paid], set: { via: '"a"' } }
  b: { type: map, inputs: [paid], set: { via: '"b"' } }
sinks:
  db: { type: sqlite, inputs: [a, b], path: out/o.db, table: orders, batch: { max_records: 2000 } }
  other: { type: sqlite, inputs: [orders], path: out/other.db, table: all_orders }
dead_letter: { type: sqlite, path: out/o.db, table: rejects }
YAML
for i in 1 2 3 4 5 6; do
    "$SLUICE" run p.yaml --quiet 2> /dev/null &
    pid=$!
    sleep "0.$((RANDOM % 5 + 1))"
    kill -9 $pid 2> /dev/null || true
    wait $pid 2> /dev/null || true
done
"$SLUICE" run p.yaml --quiet 2> last.log || fail "last run: $(cat last.log)"
python3 - "$N" <<'PY' || fail "rows or dead letters wrong"
import json, sqlite3, sys
n = int(sys.argv[1])
want = sum(1 for l in open("data/o.jsonl")
           if not isinstance(json.loads(l)["amount"], str) and json.loads(l)["amount"] * 2 > 0)
db = sqlite3.connect("out/o.db")
rows, ids = db.execute("SELECT count(*), count(DISTINCT id || via) FROM orders").fetchone()
assert rows == 2 * want and ids == 2 * want, f"orders: {rows} rows, {ids} distinct, want {2 * want}"
dead, lines = db.execute("SELECT count(*), count(DISTINCT _line) FROM rejects").fetchone()
assert dead == lines == (n + 9) // 10, f"rejects: {dead} rows, {lines} lines, want {(n + 9) // 10}"
PY
# A replay: `other` starts over under a new identity, so the source reads
# everything again; `db` trims it all, its dead letters included.
"$SLUICE" run p.yaml --set sinks.other.writer_id=fresh 2> replay.log > /dev/null || fail "replay: $(cat replay.log)"
[ "$(q out/o.db 'SELECT count(*) FROM rejects')" = "$(((N + 9) / 10))" ] || fail "replay added dead letters"
dl=$(awk '$1 == "dead_letter" && NF == 8 { print $4, $5 }' replay.log)
[ "$dl" = "0 0" ] || fail "dead_letter counts trimmed replays as stored: '$dl' ($(cat replay.log))"
echo ok
