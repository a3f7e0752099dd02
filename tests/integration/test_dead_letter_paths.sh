# Dead letters into a table of the sink's own file are exactly once even when
# the source reaches the sink by several paths (a diamond): those made
# before the split once (they go on with the first path only), those made
# after the merge once per copy that reached the node (the old code kept one
# of the two), through kill -9; and the summary counts as stored only the
# dead letters a write stored, not those trimmed as replays.
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
        o["q"] = "x" if i % 7 == 0 else 1
        f.write(json.dumps(o) + "\n")
PY
cat > p.yaml <<'YAML'
sources:
  orders: { type: file, path: data/o.jsonl }
stages:
  paid: { type: filter, inputs: [orders], where: 'amount * 2 > 0' }
  a: { type: map, inputs: [paid], set: { via: '"a"' } }
  b: { type: map, inputs: [paid], set: { via: '"b"' } }
  m: { type: map, inputs: [a, b], set: { q2: 'q * 2' } }
sinks:
  db: { type: sqlite, inputs: [m], path: out/o.db, table: orders, batch: { max_records: 2000 } }
  other: { type: sqlite, inputs: [orders], path: out/other.db, table: all_orders }
dead_letter: { type: sqlite, path: out/o.db, table: rejects }
YAML
kill_runs 6 5 "$SLUICE" run p.yaml --quiet
"$SLUICE" run p.yaml --quiet 2> last.log || fail "last run: $(cat last.log)"
python3 - "$N" <<'PY' || fail "rows or dead letters wrong"
import json, sqlite3, sys
n = int(sys.argv[1])
recs = [json.loads(l) for l in open("data/o.jsonl")]
paid = [o for o in recs if not isinstance(o["amount"], str) and o["amount"] * 2 > 0]
want = sum(1 for o in paid if o["q"] == 1)
late = len(paid) - want  # rejected by m, once per path
db = sqlite3.connect("out/o.db")
rows, ids = db.execute("SELECT count(*), count(DISTINCT id || via) FROM orders").fetchone()
assert rows == 2 * want and ids == 2 * want, f"orders: {rows} rows, {ids} distinct, want {2 * want}"
early = db.execute("SELECT count(*), count(DISTINCT _line) FROM rejects WHERE _node = 'paid'").fetchone()
assert early == ((n + 9) // 10,) * 2, f"rejects at paid: {early}, want {(n + 9) // 10} once each"
after = db.execute("SELECT count(*), count(DISTINCT _line) FROM rejects WHERE _node = 'm'").fetchone()
assert after == (2 * late, late), f"rejects at m: {after}, want {late} lines twice each"
PY
q out/o.db 'SELECT count(*) FROM rejects' > rejects.count
# A replay: `other` starts over under a new identity, so the source reads
# everything again; `db` trims it all, its dead letters included.
"$SLUICE" run p.yaml --set sinks.other.writer_id=fresh 2> replay.log > /dev/null || fail "replay: $(cat replay.log)"
[ "$(q out/o.db 'SELECT count(*) FROM rejects')" = "$(cat rejects.count)" ] || fail "replay added dead letters"
# The store received them again and dropped them as replays: none stored.
read -r dl_in dl_out dl_dropped <<< "$(awk '$1 == "dead_letter" && NF == 8 { print $4, $5, $6 }' replay.log)"
[ "$dl_out" = 0 ] || fail "dead_letter counts trimmed replays as stored: $dl_out ($(cat replay.log))"
[ "$dl_in" -gt 0 ] && [ "$dl_in" = "$dl_dropped" ] ||
    fail "dead_letter: in $dl_in, dropped $dl_dropped: the trimmed replays must be counted ($(cat replay.log))"
grep -q "^dead_letter: $dl_in of the dropped records were already stored" replay.log ||
    fail "no replay line for dead_letter: $(cat replay.log)"
echo ok
