# DAG corner cases found in review: a record routed to two outputs edited by
# both branches (each must see only its own edits); all route outputs into
# one sink with a ring of one batch (must not hang); dead letters made
# before a fan-out diamond (written once); an LZ4 dead-letter file (a
# complete frame, written after the other sinks).
. "$(dirname "$0")/lib.sh"
mkdir -p data
python3 -c "
for i in range(20000): print('{\"id\": %d, \"v\": \"orig\"}' % i)
for i in range(10): print('{bad json %d' % i)" > data/in.jsonl
cat > p.yaml <<'YAML'
engine: { threads: 2 }
sources:
  src: { type: file, path: data/in.jsonl }
stages:
  split:
    type: route
    inputs: [src]
    routes: { a: 'true', b: 'true', lo: 'id < 10000', hi: 'id >= 10000' }
  ma: { type: map, inputs: [split.a], set: { tag: '"A"' }, workers: 2 }
  mb: { type: map, inputs: [split.b], set: { tag: '"B"', v: '"changed-by-b"' }, workers: 2 }
  f1: { type: filter, inputs: [src], where: 'id >= 0' }
  m2: { type: map, inputs: [src], set: { t: '1' } }
sinks:
  fa: { type: file, inputs: [ma], path: out/a.jsonl }
  fb: { type: file, inputs: [mb], path: out/b.jsonl }
  all: { type: file, inputs: [split], path: out/all.jsonl }
  one: { type: file, inputs: [split.lo, split.hi, split._unmatched], path: out/one.jsonl, queue: 1 }
  diamond: { type: sqlite, inputs: [f1, m2], path: out/d.db, table: d }
dead_letter: { type: file, path: out/dead.jsonl.lz4, compression: lz4 }
YAML
timeout 120 "$SLUICE" run p.yaml --quiet || fail "run (or hang)"
[ "$(grep -c changed-by-b out/a.jsonl || true)" = 0 ] || fail "branch b's edit leaked into branch a"
[ "$(grep -c '"tag"' out/all.jsonl || true)" = 0 ] || fail "branch edits leaked into the route's own output"
[ "$(grep -c '"v":"changed-by-b","tag":"B"' out/b.jsonl)" = 20000 ] || fail "branch b"
[ "$(wc -l < out/one.jsonl)" = 20000 ] || fail "all outputs into one sink"
[ "$(q out/d.db 'SELECT count(*), count(DISTINCT id) FROM d')" = "40000|20000" ] || fail "diamond rows"
[ "$(lz4 -dc out/dead.jsonl.lz4 | wc -l)" = 10 ] || fail "dead letters: $(lz4 -dc out/dead.jsonl.lz4 | wc -l), expected 10 in a complete frame"
# One-field records (a `lines` source) read by two maps that each add a
# field: each map edits a copy with room for exactly one field (it crashed).
seq 1 5000 > data/lines.txt
cat > lines2.yaml <<'YAML'
sources:
  src: { type: file, path: data/lines.txt, format: lines }
stages:
  m1: { type: map, inputs: [src], set: { n: 'len(message)', k: '1' } }
  m2: { type: map, inputs: [src], set: { up: 'upper(message)' } }
sinks:
  a: { type: sqlite, inputs: [m1], path: out/l.db, table: t1 }
  b: { type: sqlite, inputs: [m2], path: out/l.db, table: t2 }
YAML
"$SLUICE" run lines2.yaml --quiet || fail "lines into two maps: exit $?"
[ "$(q out/l.db 'SELECT count(*), sum(n), sum(k) FROM t1')" = "5000|$(seq 1 5000 | tr -d '\n' | wc -c)|5000" ] ||
    fail "lines into two maps: t1 $(q out/l.db 'SELECT count(*), sum(n), sum(k) FROM t1')"
[ "$(q out/l.db 'SELECT count(*), count(DISTINCT message) FROM t2 WHERE up = message')" = "5000|5000" ] ||
    fail "lines into two maps: t2 $(q out/l.db 'SELECT count(*) FROM t2')"
echo "ok"
