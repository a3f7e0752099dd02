# The runtime under pressure: more threads than cores, rings of one batch,
# a 1 MiB memory budget, stages with 4 workers, a route diamond and fan-out.
# Sinks must see every record once and in input order (per file), which the
# file sink makes visible: its output must equal a straight computation.
. "$(dirname "$0")/lib.sh"
N=$((200000 / SCALE))
gen_orders data/o.jsonl "$N" 11
split -l $((N / 4 + 1)) -d --additional-suffix=.jsonl data/o.jsonl data/p-
rm data/o.jsonl
# work_stealing false splits the work statically (each source's subgraph on
# one worker): two sources into one chain there.
for run in "1 true" "3 true" "8 true" "2 false" "3 false"; do
    set -- $run
    threads=$1
    rm -rf out
    if [ "$2" = true ]; then
        srcs="  orders: { type: file, path: 'data/p-*.jsonl', queue: 1 }"
        ins=orders
    else
        srcs="  o1: { type: file, path: 'data/p-0[01].jsonl', queue: 1 }
  o2: { type: file, path: 'data/p-0[23].jsonl', queue: 1 }"
        ins="o1, o2"
    fi
    cat > p.yaml <<YAML
engine: { threads: $threads, memory_limit: 1MiB, work_stealing: $2 }
sources:
$srcs
stages:
  tag: { type: map, inputs: [$ins], set: { cents: 'round(amount * 100)' }, keep: [id, country, cents], workers: 4, queue: 1 }
  split:
    type: route
    inputs: [tag]
    workers: 3
    queue: 1
    routes: { eu: 'country in ["DE", "FR"]' }
  eu: { type: map, inputs: [split.eu], set: { r: '"eu"' }, workers: 2, queue: 1 }
  rest: { type: map, inputs: [split._unmatched], set: { r: '"rest"' }, workers: 2, queue: 1 }
sinks:
  all: { type: file, inputs: [tag], path: out/all.jsonl, queue: 1 }
  merged: { type: file, inputs: [eu, rest], path: out/merged.jsonl, queue: 2 }
  db: { type: sqlite, inputs: [eu, rest], path: out/m.db, table: m, queue: 1 }
YAML
    "$SLUICE" run p.yaml --quiet || fail "$run: run"
    python3 - <<'PY' || fail "$run: output differs"
import glob, json
want, part = [], {}
for n, path in enumerate(sorted(glob.glob("data/p-*.jsonl"))):
    for line in open(path):
        o = json.loads(line)
        c = o["amount"] * 100
        want.append((o["id"], o["country"], int(c + 0.5)))
        part[o["id"]] = n
# Order is kept per file (stream), not across files.
def per_file(rows, key):
    out = {}
    for r in rows:
        out.setdefault(part[key(r)], []).append(r)
    return out
got = [tuple(json.loads(l)[k] for k in ("id", "country", "cents")) for l in open("out/all.jsonl")]
assert per_file(got, lambda r: r[0]) == per_file(want, lambda r: r[0]), "all.jsonl: order or content"
merged = [json.loads(l) for l in open("out/merged.jsonl")]
for r in ("eu", "rest"):
    for ids in per_file([m["id"] for m in merged if m["r"] == r], lambda i: i).values():
        assert ids == sorted(ids), r + " out of order"
assert sorted(m["id"] for m in merged) == [w[0] for w in want], "merged: not exactly once"
PY
    [ "$(q out/m.db 'SELECT count(*), count(DISTINCT id) FROM m')" = "$N|$N" ] || fail "$run: sqlite"
done
echo "ok"
