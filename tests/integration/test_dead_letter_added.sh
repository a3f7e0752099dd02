# Dead letters of records a plugin added (host->emit) each have an _id of
# their own (probe 13, finding 8): the copies share their input record's
# offset, and their ids were the same, so a SQLite store, which upserts on
# _id, kept one row per family while the summary said all were stored (an
# explode into 3 copies all rejected by a filter: 200 dead letters, 50
# rows). Through kill -9 the store stays exactly once: a replay makes the
# same ids again (a deterministic plugin), written over themselves.
. "$(dirname "$0")/lib.sh"
TP=$(dirname "$SLUICE")/test-plugins/emit

# Every record and its 3 copies rejected.
seq 1 50 | awk '{printf "{\"id\":%d,\"x\":\"s\"}\n",$1}' > small.jsonl
cat > small.yaml << YAML
engine: { plugin_path: [$TP] }
sources: { src: { type: file, path: small.jsonl } }
stages:
  ex: { type: explode, inputs: [src], copies: 3 }
  f: { type: filter, inputs: [ex], where: 'x * 2 > 1' }
sinks: { db: { type: sqlite, inputs: [f], path: out/small.db, table: t } }
dead_letter: { type: sqlite, path: out/small-dead.db, table: rejects }
YAML
"$SLUICE" run small.yaml 2> small.log || fail "small run: $(err_of small.log)"
grep -q '200 dead letters from 50 records' small.log || fail "summary: $(tail -n 3 small.log)"
got=$(q out/small-dead.db 'SELECT count(*), count(DISTINCT _id) FROM rejects')
[ "$got" = "200|200" ] || fail "dead-letter rows, distinct ids: $got, want 200|200"
# A record read from input keeps the id it had: partition:offset:path:hash.
got=$(q out/small-dead.db "SELECT count(*) FROM rejects WHERE _id GLOB '0:0:0:*' AND length(_id) = 38")
[ "$got" = 1 ] || fail "ids of records read from input: $got of offset 0 in the old form, want 1"

# Through kill -9: every 10th order is rejected with its 3 copies.
N=$((100000 / SCALE))
gen_orders data/o.jsonl "$N" 13
text_amounts data/o.jsonl
cat > p.yaml << YAML
engine: { plugin_path: [$TP] }
sources:
  orders: { type: file, path: data/o.jsonl }
stages:
  ex: { type: explode, inputs: [orders], copies: 3 }
  paid: { type: filter, inputs: [ex], where: 'amount * 2 > 0' }
sinks:
  db: { type: sqlite, inputs: [paid], path: out/main.db, table: orders, batch: { max_records: 2000 } }
dead_letter: { type: sqlite, path: out/dead.db, table: rejects }
YAML
kill_runs 6 4 "$SLUICE" run p.yaml --quiet
"$SLUICE" run p.yaml --quiet 2> last.log || fail "last run: $(err_of last.log)"
python3 - "$N" << 'PY' || fail "dead letters lost or written twice"
import json, sqlite3, sys
n = int(sys.argv[1])
bad = len(range(1, n + 1, 10))
dead = sqlite3.connect("out/dead.db")
rows, ids = dead.execute("SELECT count(*), count(DISTINCT _id) FROM rejects").fetchone()
assert rows == ids == 4 * bad, f"{rows} rows, {ids} ids, want {4 * bad}"
per_line = dict(dead.execute("SELECT _line, count(*) FROM rejects GROUP BY _line").fetchall())
missing = [l for l in range(1, n + 1, 10) if per_line.get(l) != 4]
assert not missing, f"{len(missing)} lines without their 4 dead letters, first {missing[:5]}"
good = sum(1 for l in open("data/o.jsonl")
           if not isinstance(json.loads(l)["amount"], str) and json.loads(l)["amount"] * 2 > 0)
main = sqlite3.connect("out/main.db")
rows, keys = main.execute("SELECT count(*), count(DISTINCT id || '/' || ifnull(n, 0)) FROM orders").fetchone()
assert rows == keys == 4 * good, f"main table: {rows} rows, {keys} (id, n), want {4 * good}"
PY
echo ok
