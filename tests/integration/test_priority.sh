# Priorities (DESIGN.md "Flow control"): a map's priority expression splits
# each batch into one part per level, a filter and a fan-out / fan-in carry
# the parts to one sink, an int priority relabels them, and a source has an
# int priority of its own. Every output must hold exactly the rows the data
# gives (computed here with python, independently of sluice), once per
# path; every node's counts add up (in = out + dropped + shed + dead) and
# match the data; a record whose priority is a string ("high"), a double or
# out of range is a dead letter of the node with its reason.
#   0. File sinks (no positions): the rows, and their order within a level.
#   1. SQLite sinks: the rows; a re-run writes nothing.
#   2. SQLite sinks, kill -9 in the middle of runs on a larger input, then
#      a run to the end: exactly the expected rows, no duplicates, dead
#      letters exactly once (they share the sinks' file).
. "$(dirname "$0")/lib.sh"


# make_input FILE N SEED: N generated orders, each with a `level` field: an
# int 0..9 mostly, missing for some (null: level 0), "high" for every 97th,
# 2.5 for every 211th, 12 for every 307th; a bad JSON line every 1000 lines.
make_input() {
    gen_orders "$1.raw" "$2" "$3"
    python3 - "$1.raw" "$1" <<'PY'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    for i, line in enumerate(src):
        o = json.loads(line)
        if i % 97 == 0:
            o["level"] = "high"
        elif i % 211 == 0:
            o["level"] = 2.5
        elif i % 307 == 0:
            o["level"] = 12
        elif i % 13 != 0:
            o["level"] = i % 10
        out.write(json.dumps(o) + "\n")
        if i % 1000 == 999:
            out.write("{bad json\n")
PY
    rm "$1.raw"
}

# pipeline YAML INPUT GEN_COUNT KIND: the pipeline under test, into SQLite
# tables of out/p.db (KIND sqlite) or JSON-lines files out/*.jsonl (file).
pipeline() {
    local db="type: sqlite, path: out/p.db, table: orders" lv="type: sqlite, path: out/p.db, table: levels"
    local g="type: sqlite, path: out/p.db, table: gen" dead="type: sqlite, path: out/p.db, table: rejects"
    if [ "$4" = file ]; then
        db="type: file, path: out/orders.jsonl" lv="type: file, path: out/levels.jsonl"
        g="type: file, path: out/gen.jsonl" dead="type: file, path: out/rejects.jsonl"
    fi
    cat > "$1" <<YAML
engine: { threads: 4 }
sources:
  orders: { type: file, path: $2 }
  gen: { type: generator, count: $3, seed: 5, priority: 3 }
stages:
  tier:
    type: map
    inputs: [orders]
    set: { cents: 'round(amount * 100)' }
    priority: 'if(amount > 900, 9, if(amount > 500, 5, 0))'
  paid: { type: filter, inputs: [tier], where: 'status == "paid"' }
  eu: { type: filter, inputs: [paid], where: 'country in ["DE", "FR", "ES"]' }
  big: { type: map, inputs: [paid], set: { big: 'amount > 700' }, priority: 7 }
  lvl: { type: map, inputs: [orders], set: { l: 'level' }, priority: 'level' }
sinks:
  db: { $db, inputs: [eu, big], batch: { max_records: 700 } }
  lv: { $lv, inputs: [lvl], batch: { max_records: 300 } }
  g: { $g, inputs: [gen] }
dead_letter: { $dead }
YAML
}

# check_outputs KIND INPUT GEN_COUNT [SUMMARY_JSON]: every table (KIND
# sqlite) or output file (file) against the input, row by row, and the
# summary's counts when given; for files, also the order within a level.
check_outputs() {
    python3 - "$@" <<'PY'
import collections, json, sqlite3, sys
kind, path, gen_count = sys.argv[1], sys.argv[2], int(sys.argv[3])
summary = json.load(open(sys.argv[4]))["nodes"] if len(sys.argv) > 4 else None
fail = []
want_orders = collections.Counter()  # (id, branch) -> rows; branch 'eu' or 'big'
want_levels = set()
want_dead = collections.Counter()  # (node, error, line)
level_of = {}  # id -> the level its `level` field gives
good = 0
for ln, line in enumerate(open(path), 1):
    try:
        o = json.loads(line)
    except ValueError:
        want_dead[("orders", None, ln)] += 1
        continue
    good += 1
    if o["status"] == "paid":
        want_orders[(o["id"], "big")] += 1
        if o["country"] in ("DE", "FR", "ES"):
            want_orders[(o["id"], "eu")] += 1
    lv = o.get("level")
    if isinstance(lv, str):
        want_dead[("lvl", "priority: expected an int 0..9, got string", ln)] += 1
    elif isinstance(lv, float):
        want_dead[("lvl", "priority: expected an int 0..9, got float", ln)] += 1
    elif lv is not None and not 0 <= lv <= 9:
        want_dead[("lvl", "priority: %d is not a level this node gives (0..9)" % lv, ln)] += 1
    else:
        want_levels.add(o["id"])
        level_of[o["id"]] = lv or 0


def rows(name, cols):
    """The output's rows as tuples of cols, in the order written."""
    if kind == "sqlite":
        db = sqlite3.connect("out/p.db")
        return list(db.execute("SELECT %s FROM %s ORDER BY rowid" % (", ".join(cols), name)))
    out = []
    with open("out/%s.jsonl" % name) as f:
        for line in f:
            r = json.loads(line)
            out.append(tuple(r.get(c) for c in cols))
    return out


orders = rows("orders", ["id", "big", "amount", "cents"])
got_orders = collections.Counter((i, "eu" if b is None else "big") for i, b, a, c in orders)
if got_orders != want_orders:
    missing, extra = want_orders - got_orders, got_orders - want_orders
    fail.append("orders: %d rows, want %d: %d missing (first %s), %d extra (first %s)" % (
        sum(got_orders.values()), sum(want_orders.values()), sum(missing.values()),
        sorted(missing)[:3], sum(extra.values()), sorted(extra)[:3]))
bad_cents = [i for i, b, a, c in orders if c != round(a * 100)]
if bad_cents:
    fail.append("orders: %d rows with a wrong cents, first ids %s" % (len(bad_cents), bad_cents[:3]))
levels = [r[0] for r in rows("levels", ["id"])]
if len(levels) != len(want_levels) or set(levels) != want_levels:
    fail.append("levels: %d rows (%d distinct), want %d: %d missing, %d unexpected" % (
        len(levels), len(set(levels)), len(want_levels), len(want_levels - set(levels)),
        len(set(levels) - want_levels)))
gen = [r[0] for r in rows("gen", ["id"])]
if sorted(gen) != list(range(1, gen_count + 1)):
    fail.append("gen: %d rows (%d distinct), want ids 1..%d once each" % (
        len(gen), len(set(gen)), gen_count))
got_dead = collections.Counter((n, None if n == "orders" else e, l)
                               for n, e, l in rows("rejects", ["_node", "_error", "_line"]))
if got_dead != want_dead:
    missing, extra = want_dead - got_dead, got_dead - want_dead
    fail.append("rejects: %d, want %d: missing %s, extra %s" % (
        sum(got_dead.values()), sum(want_dead.values()), sorted(missing, key=str)[:3],
        sorted(extra, key=str)[:3]))
if kind == "file":
    # A sink restores order per (source, stream, level): within a level
    # reached by one path, rows come in input order (ids increase).
    def check_order(what, seq):
        last = {}
        for lvl, i in seq:
            if i <= last.get(lvl, 0):
                fail.append("%s: id %d after id %d at level %d" % (what, i, last[lvl], lvl))
                return
            last[lvl] = i
    check_order("levels", [(level_of.get(i, -1), i) for i in levels])
    check_order("orders (eu)", [(9 if a > 900 else 5 if a > 500 else 0, i)
                                for i, b, a, c in orders if b is None])
    check_order("gen", [(3, i) for i in gen])
if summary is not None:
    paid = sum(c for (i, b), c in want_orders.items() if b == "big")
    eu = sum(c for (i, b), c in want_orders.items() if b == "eu")
    nlvl_dead = sum(c for k, c in want_dead.items() if k[0] == "lvl")
    want = {
        ("tier", "in"): good, ("tier", "out"): good, ("tier", "dead"): 0,
        ("paid", "in"): good, ("paid", "out"): paid,
        ("eu", "in"): paid, ("eu", "out"): eu,
        ("big", "in"): paid, ("big", "out"): paid,
        ("lvl", "in"): good, ("lvl", "out"): good - nlvl_dead, ("lvl", "dead"): nlvl_dead,
        ("db", "in"): paid + eu, ("db", "out"): paid + eu,
        ("lv", "in"): good - nlvl_dead, ("lv", "out"): good - nlvl_dead,
        ("g", "in"): gen_count, ("g", "out"): gen_count,
        ("orders", "dead"): sum(c for k, c in want_dead.items() if k[0] == "orders"),
    }
    for (node, key), v in sorted(want.items()):
        if summary[node][key] != v:
            fail.append("summary: %s.%s = %d, want %d" % (node, key, summary[node][key], v))
if fail:
    sys.exit("\n".join(fail))
print("%s outputs ok: %d orders rows, %d levels rows, %d gen rows, %d dead letters" % (
    kind, sum(want_orders.values()), len(want_levels), gen_count, sum(want_dead.values())))
PY
}

N=$((20000 / SCALE))
G=$((10000 / SCALE))
make_input data/o.jsonl "$N" 11
grep -q '"level": "high"' data/o.jsonl || fail "no string priority in the input"

# 0. File sinks: rows, counts, dead letters and order within a level.
pipeline f.yaml data/o.jsonl "$G" file
"$SLUICE" validate f.yaml || fail "validate"
"$SLUICE" run f.yaml --summary-json s0.json 2> run0.err || fail "run: $(err_of run0.err)"
counts_add_up s0.json
check_outputs file data/o.jsonl "$G" s0.json || fail "file sinks: outputs or counts wrong (above)"
rm -rf out

# 1. One run: exact rows, counts and dead letters; a re-run writes nothing.
N=$((20000 / SCALE))
G=$((10000 / SCALE))
make_input data/o.jsonl "$N" 11
grep -q '"level": "high"' data/o.jsonl || fail "no string priority in the input"
pipeline p.yaml data/o.jsonl "$G" sqlite
"$SLUICE" run p.yaml --summary-json s1.json 2> run1.err || fail "run: $(err_of run1.err)"
counts_add_up s1.json
check_outputs sqlite data/o.jsonl "$G" s1.json || fail "first run: tables or counts wrong (above)"
before=$(q out/p.db 'SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM levels), (SELECT count(*) FROM gen), (SELECT count(*) FROM rejects)')
"$SLUICE" run p.yaml --summary-json s2.json 2> run2.err || fail "re-run: $(err_of run2.err)"
counts_add_up s2.json
after=$(q out/p.db 'SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM levels), (SELECT count(*) FROM gen), (SELECT count(*) FROM rejects)')
[ "$before" = "$after" ] || fail "the re-run wrote more: $before -> $after"
check_outputs sqlite data/o.jsonl "$G" || fail "after the re-run: tables wrong (above)"

# 2. kill -9 at random moments on a larger input, then a run to the end:
# exactly the expected rows, no duplicates.
rm -rf out
N=$((600000 / SCALE))
G=$((300000 / SCALE))
make_input data/big.jsonl "$N" 12
pipeline k.yaml data/big.jsonl "$G" sqlite
kills=0
for attempt in $(seq 1 30); do
    "$SLUICE" run k.yaml --quiet 2> kill.err &
    pid=$!
    # Kill after a random 20-400 ms (or let it finish).
    sleep "$(printf '0.%03d' $(((RANDOM % 380) + 20)))"
    if kill -9 "$pid" 2> /dev/null; then
        kills=$((kills + 1))
        wait "$pid" 2> /dev/null || true
    else
        wait "$pid" || fail "run $attempt failed: $(err_of kill.err)"
        break
    fi
done
"$SLUICE" run k.yaml --summary-json last.json 2> last.err || fail "final run: $(err_of last.err)"
counts_add_up last.json
echo "killed $kills times"
[ "$kills" -gt 0 ] || fail "no run was killed"
check_outputs sqlite data/big.jsonl "$G" || fail "after kill -9: tables wrong (above)"
echo ok
