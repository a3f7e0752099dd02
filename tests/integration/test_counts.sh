# Counts add up for every node (issue 6, finding 10): in = out + dropped +
# dead, also for a route whose records match several routes, match routes
# nobody reads, or fail their condition, and for a sink that finds rows
# already stored (replays are dropped and said).
. "$(dirname "$0")/lib.sh"
gen_orders o.jsonl 2000 2
echo '{"id": 999999, "amount": "x", "country": "DE"}' >> o.jsonl
cat > p.yaml <<'YAML'
sources:
  orders: { type: file, path: o.jsonl }
stages:
  split:
    type: route
    inputs: [orders]
    routes: { eu: 'country in ["DE", "FR"]', big: 'amount * 2 > 1000', unread: 'id % 2 == 0' }
  tag: { type: map, inputs: [split.eu, split.big], set: { t: '1' } }
sinks:
  a: { type: sqlite, inputs: [tag], path: out/a.db, table: t }
  b: { type: null, inputs: [split.big] }
YAML
# check LOG: every node row of the summary adds up.
check() {
    awk '$2 ~ /^(source|stage|sink|dlq)$/ && NF == 8 { if ($4 != $5 + $6 + $7) { print "node " $1 ": in " $4 " != out " $5 " + dropped " $6 " + dead " $7; bad = 1 } }
         END { exit bad }' "$1" || fail "counts do not add up: $(cat "$1")"
}
"$SLUICE" run p.yaml 2> run1.log || fail "run: $(cat run1.log)"
check run1.log
python3 - <<'PY' || fail "route counts: $(cat run1.log)"
import json
rows = [json.loads(l) for l in open("o.jsonl")]
ok = [r for r in rows if isinstance(r["amount"], (int, float))]
eu = [r for r in ok if r["country"] in ("DE", "FR")]
big = [r for r in ok if r["amount"] * 2 > 1000]
out = len([r for r in ok if r in eu or r in big])
line = [l.split() for l in open("run1.log") if l.startswith("split ")][0]
assert int(line[3]) == len(rows), line
assert int(line[4]) == out, (line, out)
assert int(line[5]) == len(ok) - out, line
assert int(line[6]) == 1, line
PY
# A second process on the same database, reading from the start: its rows
# are trimmed as replays, counted as dropped, and said. It is another file,
# so its sink takes the positions over with an explicit writer_id.
cat > q.yaml <<'YAML'
sources:
  orders: { type: file, path: o.jsonl }
stages:
  split:
    type: route
    inputs: [orders]
    routes: { eu: 'country in ["DE", "FR"]', big: 'amount * 2 > 1000', unread: 'id % 2 == 0' }
  tag: { type: map, inputs: [split.eu, split.big], set: { t: '1' } }
sinks:
  a: { type: sqlite, inputs: [tag], path: out/a.db, table: t, writer_id: a }
  c: { type: null, inputs: [split.big] }
YAML
"$SLUICE" run q.yaml 2> run2.log || fail "re-run: $(cat run2.log)"
check run2.log
awk '$1 == "a" { exit !($5 == 0 && $6 > 0) }' run2.log || fail "replays counted as written: $(cat run2.log)"
grep -q "a: .* already stored" run2.log || fail "replays not said: $(cat run2.log)"
echo ok
