# `sluice test FILE`: the tests: cases of a pipeline file run in memory (no
# file, database or broker touched), pass and fail with a readable diff,
# keep order through worker pools and fan-in, run plugins, and the
# pipelines the repository ships pass their own cases.
. "$(dirname "$0")/lib.sh"
BUILD=$(dirname "$SLUICE")

# ---- the shipped pipelines' own cases ----
for f in "$SLUICE_ROOT"/pipelines/*.yaml; do
    grep -q '^tests:' "$f" || fail "$f has no tests: section"
    (cd "$SLUICE_ROOT" && "$SLUICE" test "$f") > out.txt 2> err.txt ||
        fail "sluice test $f: $(cat out.txt) $(err_of err.txt)"
    grep -q ' 0 failed$' out.txt || fail "$f: $(cat out.txt)"
done

# ---- pass, fail, diff; nothing touched ----
mkdir in
cat > p.yaml << 'YAML'
engine: { threads: 2 }
sources:
  orders: { type: file, path: in/*.jsonl, checkpoints: state/pos.db }
  feed: { type: kafka, brokers: '127.0.0.1:1', topics: [orders, more], group: g }
stages:
  paid:
    type: filter
    inputs: [orders, feed]
    where: 'amount > 0 && status != "test"'
  cents:
    type: map
    inputs: [paid]
    workers: 4
    set: { amount_cents: 'round(amount * 100)', at: '@topic', line: '@line' }
    drop: [tags]
  split:
    type: route
    inputs: [cents]
    routes: { eu: 'country in ["DE", "FR"]' }
sinks:
  db: { type: sqlite, inputs: [split.eu], path: out/o.db, table: orders }
  rest: { type: file, inputs: [split._unmatched], path: out/rest.jsonl }
dead_letter: { type: sqlite, path: out/o.db, table: rejects }
tests:
  - name: paid orders get cents
    inputs:
      orders:
        - { id: 1, amount: 12.5, status: paid, country: DE, tags: [a], meta: { b: 1, a: [1, 2.50] } }
        - { id: 2, amount: -1, status: paid, country: DE }
        - { id: 3, amount: 2, status: test, country: DE }
        - { id: 4, amount: 1, status: paid, country: US }
    expect:
      db:
        - { id: 1, status: paid, amount: 12.5, country: DE, amount_cents: 1250, at: null, line: 1, meta: { a: [1, 2.5], b: 1 } }
      rest:
        - { id: 4, amount: 1, status: paid, country: US, amount_cents: 100, at: null, line: 4 }
  - name: kafka records carry their metadata
    inputs:
      feed:
        - { id: 7, amount: 3, status: paid, country: FR, "@offset": 40 }
        - { id: 8, amount: 4, status: paid, country: FR, "@topic": more }
    expect:
      split.eu:
        - { id: 7, amount: 3, status: paid, country: FR, amount_cents: 300, at: orders, line: null }
        - { id: 8, amount: 4, status: paid, country: FR, amount_cents: 400, at: more, line: null }
  - name: a wrong expectation
    inputs:
      orders:
        - { id: 1, amount: 1.5, status: paid, country: DE }
        - { id: 2, amount: 2, status: paid, country: DE }
        - { id: 3, amount: "x", status: paid, country: DE }
    expect:
      db:
        - { id: 1, amount: 1.5, status: paid, country: DE, amount_cents: 150.0, at: null, line: 1 }
  - name: dead letters on the fields given
    inputs:
      orders:
        - { id: 3, amount: "x", status: paid }
    expect:
      dead_letter:
        - { _node: paid, _source: orders, _line: 1 }
      db: []
YAML
run_rc "$SLUICE" test p.yaml > out.txt 2> err.txt
[ $rc = 1 ] || fail "a failing case: exit $rc, not 1: $(cat out.txt) $(err_of err.txt)"
[ ! -e out ] && [ ! -e state ] || fail "sluice test wrote files: $(find out state 2> /dev/null)"
grep -qx 'ok    paid orders get cents' out.txt || fail "case 1: $(cat out.txt)"
grep -qx 'ok    kafka records carry their metadata' out.txt || fail "case 2: $(cat out.txt)"
grep -qx 'ok    dead letters on the fields given' out.txt || fail "case 4: $(cat out.txt)"
grep -qx 'FAIL  a wrong expectation  (p.yaml:[0-9]*)' out.txt || fail "case 3: $(cat out.txt)"
grep -q 'db: expected 1 record, got 2 (- expected, + got)' out.txt || fail "diff head: $(cat out.txt)"
grep -q 'amount_cents: expected 150.0, got 150$' out.txt || fail "field diff: $(cat out.txt)"
grep -q '^        + {"id":2,' out.txt || fail "extra record: $(cat out.txt)"
grep -q 'at paid: ' out.txt || fail "dead letters under the failure: $(cat out.txt)"
grep -qx '4 cases: 3 passed, 1 failed' out.txt || fail "count: $(cat out.txt)"

# `run` ignores the section and `validate` checks it.
"$SLUICE" validate p.yaml || fail "validate"
sed 's/      split.eu:/      split.us:/' p.yaml > bad.yaml
run_rc "$SLUICE" test bad.yaml > out.txt 2> err.txt
[ $rc = 2 ] || fail "a bad case: exit $rc"
grep -q "bad.yaml:[0-9]*:[0-9]*: tests\[1\].expect.\"split.us\": node 'split' has no output 'us'" err.txt ||
    fail "bad case message: $(cat err.txt)"
printf 'sources: { a: { type: generator } }\nsinks: { s: { type: null, inputs: [a] } }\n' > none.yaml
run_rc "$SLUICE" test none.yaml > /dev/null 2> err.txt
[ $rc = 2 ] && grep -q 'has no cases: its tests: section' err.txt || fail "no cases: exit $rc $(cat err.txt)"

# A side file of cases comes after the file's own.
cat > side.yaml << 'YAML'
tests:
  - name: from the side file
    inputs: { orders: [{ id: 9, amount: 1, status: paid, country: US }] }
    expect: { rest: [{ id: 9, amount: 1, status: paid, country: US, amount_cents: 100, at: null, line: 1 }] }
  - name: failing on the side
    inputs: { orders: [{ id: 9, amount: 1, status: paid, country: US }] }
    expect: { rest: [] }
YAML
run_rc "$SLUICE" test p.yaml side.yaml > out.txt 2> err.txt
[ $rc = 1 ] || fail "side file: exit $rc: $(cat out.txt) $(err_of err.txt)"
grep -qx 'ok    from the side file' out.txt || fail "side case: $(cat out.txt)"
grep -qx 'FAIL  failing on the side  (side.yaml:5)' out.txt || fail "side failure: $(cat out.txt)"
grep -qx '6 cases: 4 passed, 2 failed' out.txt || fail "side count: $(cat out.txt)"
printf 'tests: []\nsinks: {}\n' > side2.yaml
run_rc "$SLUICE" test p.yaml side2.yaml > out.txt 2> err.txt
[ $rc = 2 ] && grep -q '^side2.yaml:2:1: sinks: a file of cases holds only tests:' err.txt ||
    fail "a side file with more than tests: exit $rc $(cat err.txt)"

# ---- what a probe found (session 12) ----
# Expected dead letters match in any order, however loosely each is given;
# a passing case still says it made dead letters; records keep their
# metadata out of _raw; max_depth is the source's; numbers JSON keeps as
# text pass; names print on one line; shed records are named.
python3 - << 'PY'
import json
recs = ", ".join('{"v": %d}' % i for i in range(1000))
open("probe.yaml", "w").write("""sources:
  src: { type: file, path: z.jsonl, max_depth: 2 }
stages:
  f: { type: filter, inputs: [src], where: 'v > 0' }
  d: { type: delay, inputs: [src], per_batch: 100ms, queue: 1, when_full: drop_newest }
sinks:
  out: { type: null, inputs: [f] }
  slow: { type: null, inputs: [d] }
tests:
  - name: loose dead letter first
    inputs: { src: [{ v: "a" }, { v: "b", "@line": 7 }] }
    expect:
      dead_letter: [{ _node: f }, { _node: f, _line: 1 }]
  - name: dead letters not expected
    inputs: { src: [{ v: "a" }, { v: 1 }] }
    expect: { out: [{ v: 1 }] }
  - name: raw without metadata
    inputs: { src: [{ v: "a", "@offset": 42 }] }
    expect: { dead_letter: [{ _raw: '{"v":"a"}', _line: 1 }] }
  - name: deeper than max_depth
    inputs: { src: [{ v: 1, x: { a: { b: 1 } } }] }
    expect: { dead_letter: [{ _node: src }], out: [] }
  - name: numbers beyond int64 and double
    inputs: { src: [{ v: 99999999999999999999, w: 1e400 }] }
    expect: { src: [] }
  - name: "two\\nlines"
    inputs: { src: [{ v: 1 }] }
    expect: { out: [] }
  - name: shed
    inputs: { src: [%s] }
    expect: { slow: [%s] }
""" % (recs, recs))
PY
run_rc "$SLUICE" test probe.yaml > out.txt 2> err.txt
[ $rc = 1 ] || fail "probe cases: exit $rc: $(cat out.txt) $(err_of err.txt)"
grep -qx 'ok    loose dead letter first' out.txt || fail "dead letters matched greedily: $(cat out.txt)"
grep -qx 'ok    dead letters not expected  (1 dead letter, not in expect)' out.txt ||
    fail "a passing case hid its dead letters: $(cat out.txt)"
grep -qx 'ok    raw without metadata' out.txt || fail "_raw: $(cat out.txt)"
grep -qx 'ok    deeper than max_depth' out.txt || fail "max_depth: $(cat out.txt)"
grep -qx 'FAIL  numbers beyond int64 and double  (probe.yaml:[0-9]*)' out.txt ||
    fail "big numbers: $(cat out.txt)"
grep -q '^        + {"v":"99999999999999999999","w":"1e400"}' out.txt || fail "big numbers as text: $(cat out.txt)"
grep -qF 'FAIL  two\x0alines  (probe.yaml:' out.txt || fail "name on one line: $(cat out.txt)"
grep -q '^    d shed [0-9]* records' out.txt || fail "shed not named: $(cat out.txt)"

# Long values that differ far in: where, and both around it.
printf '%s\n' 'sources: { src: { type: generator } }' 'sinks: { out: { type: null, inputs: [src] } }' \
    'tests:' '  - inputs:' "      src: [{ t: $(printf 'x%.0s' $(seq 300))a }]" '    expect:' \
    "      out: [{ t: $(printf 'x%.0s' $(seq 300))b }]" > long.yaml
run_rc "$SLUICE" test long.yaml > out.txt 2> err.txt
grep -q 't: strings of 303 and 303 bytes (as JSON) that differ from byte 301:' out.txt ||
    fail "long strings: $(cat out.txt)"

# Unnamed cases in a file and a side file do not clash; run ignores a
# stale case that validate refuses.
printf '%s\n' 'sources: { src: { type: generator } }' 'sinks: { out: { type: null, inputs: [src] } }' \
    'tests:' '  - expect: { out: [] }' > unnamed.yaml
printf '%s\n' 'tests:' '  - expect: { out: [] }' > unnamed-side.yaml
"$SLUICE" test unnamed.yaml unnamed-side.yaml > out.txt 2> err.txt || fail "unnamed: $(cat out.txt err.txt)"
[ "$(grep -c '^ok    case [12]$' out.txt)" = 2 ] || fail "unnamed names: $(cat out.txt)"
printf '%s\n' '  - expect: { nosuch: [] }' >> unnamed.yaml
run_rc "$SLUICE" validate unnamed.yaml 2> err.txt
[ $rc = 2 ] || fail "validate passed a stale case"
printf '%s\n' 'sources: { src: { type: generator, count: 3 } }' 'sinks: { out: { type: null, inputs: [src] } }' \
    'tests:' '  - expect: { nosuch: [] }' > stale.yaml
"$SLUICE" run stale.yaml --quiet 2> err.txt || fail "run refused a stale case: $(cat err.txt)"

# A case that never ends fails after --timeout, and the next one runs.
cat > hang.yaml << 'YAML'
engine: { drain_timeout: 2s }
sources: { a: { type: generator } }
stages: { d: { type: delay, inputs: [a], per_batch: 1h } }
sinks: { s: { type: null, inputs: [d] } }
tests:
  - name: never ends
    inputs: { a: [{ id: 1 }] }
    expect: { s: [{ id: 1 }] }
  - name: next
    inputs: { a: [] }
    expect: { s: [] }
YAML
run_rc timeout 60 "$SLUICE" test hang.yaml --timeout 1 > out.txt 2> err.txt
[ $rc = 1 ] && grep -q 'the case did not finish within 1 s (--timeout)' out.txt &&
    grep -qx 'ok    next' out.txt || fail "a case that never ends: exit $rc $(cat out.txt) $(err_of err.txt)"

# ---- order through worker pools, priorities and fan-in ----
python3 - << 'PY'
import json
n = 3000
a = [{"id": i, "v": i % 7} for i in range(n)]
b = [{"id": n + i, "v": i % 5} for i in range(500)]
want = [dict(r, w=r["v"] * 2) for r in a + b if r["v"] != 3]
with open("order.yaml", "w") as f:
    f.write("""engine: { threads: 2 }
sources:
  a: { type: generator }
  b: { type: generator }
stages:
  keep: { type: filter, inputs: [a, b], where: 'v != 3', workers: 4 }
  twice: { type: map, inputs: [keep], set: { w: 'v * 2' }, workers: auto,
           priority: 'if(v == 0, 9, 0)' }
sinks:
  s: { type: null, inputs: [twice], when_full: shed }
  t: { type: null, inputs: [keep] }
tests:
  - name: grouped by source, in order
    inputs:
""")
    f.write("      a: " + json.dumps(a) + "\n")
    f.write("      b: " + json.dumps(b) + "\n")
    f.write("    expect:\n")
    f.write("      t: " + json.dumps([r for r in a + b if r["v"] != 3]) + "\n")
    f.write("      keep: " + json.dumps([r for r in a + b if r["v"] != 3]) + "\n")
PY
for i in 1 2 3; do
    "$SLUICE" test order.yaml > out.txt 2> err.txt || fail "order: $(head -20 out.txt) $(err_of err.txt)"
done

# ---- a plugin runs in a case ----
if [ -f "$BUILD/plugins/mask.so" ]; then
    cat > mask.yaml << YAML
engine: { plugin_path: [$BUILD/plugins] }
sources: { people: { type: file, path: people.jsonl } }
stages: { masked: { type: mask, inputs: [people], fields: [email], workers: 2 } }
sinks: { db: { type: sqlite, inputs: [masked], path: people.db, table: t } }
tests:
  - name: e-mails are masked
    inputs:
      people: [{ email: alice@example.com, n: 1 }, { email: none, n: 2 }]
    expect:
      db: [{ email: a****@example.com, n: 1 }, { email: none, n: 2 }]
YAML
    "$SLUICE" test mask.yaml > out.txt 2> err.txt || fail "plugin case: $(cat out.txt) $(err_of err.txt)"
    [ ! -e people.db ] || fail "the plugin case wrote people.db"
else
    fail "no $BUILD/plugins/mask.so: the example plugins are built with sluice"
fi
# ---- a plugin that adds records: the case's input batches are cut by
# what it measured, as a source's are (its input came in batches of 256
# records: 2000 copies of each went past what one call may add, and the
# plugin dead-lettered 288 of 300 records). A failing case shows at most 20
# dead letters it did not expect. ----
[ -f "$BUILD/test-plugins/emit/explode.so" ] || fail "no $BUILD/test-plugins/emit/explode.so"
# 2000 copies of a record fit what one call may add (4 MiB); 100000 do
# not: 40 dead letters.
for name in explode toomany; do
    python3 - "$BUILD/test-plugins/emit" $name > $name.yaml << 'PY'
import sys
n, copies = (300, 2000) if sys.argv[2] == "explode" else (40, 100000)
print("engine: { memory_limit: 16MiB, plugin_path: [%s] }" % sys.argv[1])
print("sources: { f: { type: file, path: in.jsonl } }")
print("stages: { x: { type: explode, inputs: [f], copies: %d } }" % copies)
print("sinks: { db: { type: sqlite, inputs: [x], path: x.db, table: t } }")
print("tests:\n  - name: %s\n    inputs:\n      f:" % sys.argv[2])
for i in range(n):
    print("        - { id: %d, pad: '%s' }" % (i, "x" * 100))
print("    expect:\n      dead_letter: []")
PY
done
"$SLUICE" test explode.yaml > out.txt 2> err.txt ||
    fail "explode: $(head -c 2000 out.txt) $(err_of err.txt)"
grep -qx 'ok    explode' out.txt || fail "explode: $(head -c 2000 out.txt)"
run_rc "$SLUICE" test toomany.yaml > out.txt 2> err.txt
[ "$rc" = 1 ] || fail "toomany: exit $rc: $(head -c 2000 out.txt) $(err_of err.txt)"
[ "$(grep -c 'not expected' out.txt)" = 20 ] || fail "toomany: $(grep -c 'not expected' out.txt) shown"
grep -q '\.\.\. and 20 more differences after these (0 dead letters expected, 40 got)' out.txt ||
    fail "toomany: $(tail -c 1000 out.txt)"

# ---- below a plugin that adds records, each input record is a batch of
# its own: its copies follow it, the same every run (the probe saw 8 of 20
# runs fail when the batches were cut by what the stage had measured). ----
cat > det.yaml << YAML
engine: { plugin_path: [$BUILD/test-plugins/emit] }
sources: { f: { type: file, path: in.jsonl } }
stages: { x: { type: explode, inputs: [f], copies: 1, workers: 2 } }
sinks: { db: { type: sqlite, inputs: [x], path: x.db, table: t } }
tests:
  - name: each record then its copy
    inputs:
      f: [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }, { id: 5 }, { id: 6 }]
    expect:
      db: [{ id: 1 }, { id: 1, n: 1 }, { id: 2 }, { id: 2, n: 1 }, { id: 3 }, { id: 3, n: 1 },
           { id: 4 }, { id: 4, n: 1 }, { id: 5 }, { id: 5, n: 1 }, { id: 6 }, { id: 6, n: 1 }]
YAML
for i in 1 2 3 4 5 6 7 8; do
    "$SLUICE" test det.yaml > out.txt 2> err.txt || fail "plugin order, run $i: $(head -c 1500 out.txt)"
done

echo "ok"
