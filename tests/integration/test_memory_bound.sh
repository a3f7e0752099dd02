# memory_limit bounds peak RSS (issue 6, finding 2): a route with 20
# outputs each into a map, a 10-way fan-out into 10 sinks, the default
# chain and chained diamonds, with a 16 MiB limit, stay within the limit + 16 MiB whatever the
# input size. Sanitizer builds add their own shadow memory: there the shapes
# only run, unmeasured.
. "$(dirname "$0")/lib.sh"
# Under a sanitizer only the counts and the budget's own figure are
# checked: a sixteenth of the data (the shapes took 245 s under TSan).
[ -z "${SLUICE_SANITIZE:-}" ] || SCALE=$((SCALE * SCALE))
N=$((300000 / SCALE))
gen_orders data/o.jsonl "$N" 5
python3 "$SLUICE_ROOT/tests/integration/memory_shapes.py" data/o.jsonl 16MiB .
for shape in route20 fan10 chain; do
    /usr/bin/time -f %M -o rss.txt "$SLUICE" run $shape.yaml 2> $shape.log || fail "$shape: $(cat $shape.log)"
    rss_kb=$(cat rss.txt)
    # The summary's in-flight figure is the budget's own count: it must
    # stay near the limit too (the reserve and one task's growth over it).
    peak=$(sed -n 's/.*peak in flight \([0-9.]*\) MiB.*/\1/p' $shape.log)
    python3 -c "import sys; sys.exit(float(sys.argv[1]) > 24)" "$peak" ||
        fail "$shape: peak in flight $peak MiB with memory_limit 16MiB"
    if [ -z "${SLUICE_SANITIZE:-}" ] && [ "$rss_kb" -gt $((32 * 1024)) ]; then
        fail "$shape: peak RSS $((rss_kb / 1024)) MB with memory_limit 16MiB (bound 32 MB)"
    fi
done
[ "$(q out/r.db 'SELECT count(*) FROM t')" = "$N" ] || fail "route20 rows"

# Chained full-copy diamonds (issue 6, finding 2): each diamond doubles the
# paths into the sink and every map copies the batch it shares, so one
# admitted block became hundreds of copies (3 in a row at 16 MiB: 40-68 MB
# peak RSS, 6 in a row: 300 MB to 1.2 GB). Each record must still arrive
# once per path.
D=$((100000 / SCALE))
for k in 3 6; do
    python3 - "$k" "$D" > dia$k.yaml <<'PY'
import sys
k, n = int(sys.argv[1]), int(sys.argv[2])
print(f"engine: {{ memory_limit: 16MiB }}\nsources:\n  src: {{ type: generator, count: {n} }}\nstages:")
prev = "src"
for i in range(k):
    print(f"  a{i}: {{ type: map, inputs: [{prev}], set: {{ a{i}: '1' }} }}")
    print(f"  b{i}: {{ type: map, inputs: [{prev}], set: {{ b{i}: '2' }} }}")
    print(f"  j{i}: {{ type: map, inputs: [a{i}, b{i}], set: {{ j{i}: '3' }} }}")
    prev = f"j{i}"
print(f"sinks:\n  s: {{ type: null, inputs: [{prev}] }}")
PY
    /usr/bin/time -f %M -o rss.txt "$SLUICE" run dia$k.yaml --summary-json dia$k.json 2> dia$k.log ||
        fail "diamonds x$k: $(cat dia$k.log)"
    check_rss rss.txt 32 "diamonds x$k"
    paths=$((1 << k))
    [ "$(json dia$k.json 'd["nodes"]["s"]["in"]')" = "$((paths * D))" ] ||
        fail "diamonds x$k: sink got $(json dia$k.json 'd["nodes"]["s"]["in"]'), want $paths x $D"
    counts_add_up dia$k.json
    peak=$(sed -n 's/.*peak in flight \([0-9.]*\) MiB.*/\1/p' dia$k.log)
    python3 -c "import sys; sys.exit(float(sys.argv[1]) > 24)" "$peak" ||
        fail "diamonds x$k: peak in flight $peak MiB with memory_limit 16MiB"
done

# One wide diamond (hostile probe): a map, then 60 (or 20) maps each
# adding a field, all into one sink. Each admitted block became 61 copies
# of about 2.2 decoded batches each, and the plan counted a single
# fan-out's copies as one decoded batch in the whole budget: 60 paths at
# 16 MiB peaked at 34 MiB in flight and 38-41 MB RSS. Each batch is now
# admitted with a credit for its copies, and blocks shrink until its
# family fits (sl_flow_window).
W=$((60000 / SCALE))
head -n "$W" data/o.jsonl > data/w.jsonl
for paths in 60 20; do
    python3 - "$paths" > wide$paths.yaml <<'PY'
import sys
n = int(sys.argv[1])
print("engine: { memory_limit: 16MiB, threads: 2 }")
print("sources:\n  o: { type: file, path: data/w.jsonl }\nstages:")
print("  s0: { type: map, inputs: [o], set: { z: '1' } }")
for i in range(n):
    print(f"  a{i}: {{ type: map, inputs: [s0], set: {{ y{i}: 'amount * {i}' }} }}")
print("sinks:\n  k: { type: null, inputs: [%s] }" % ", ".join(f"a{i}" for i in range(n)))
PY
    /usr/bin/time -f %M -o rss.txt "$SLUICE" run wide$paths.yaml --summary-json wide$paths.json \
        2> wide$paths.log || fail "wide x$paths: $(err_of wide$paths.log)"
    check_rss rss.txt 32 "wide diamond x$paths"
    [ "$(json wide$paths.json 'd["nodes"]["k"]["in"]')" = "$((paths * W))" ] ||
        fail "wide x$paths: sink got $(json wide$paths.json 'd["nodes"]["k"]["in"]'), want $paths x $W"
    counts_add_up wide$paths.json
    peak=$(json wide$paths.json 'd["peak_in_flight_bytes"]')
    [ "$peak" -le $((16 << 20)) ] ||
        fail "wide x$paths: peak in flight $((peak >> 20)) MiB with memory_limit 16MiB"
done

# CSV rows decode to more bytes per input byte than JSON lines (short rows,
# as many fields): two maps into one sink at 16 MiB peaked at 37-39 MB.
python3 - <<'PY'
import csv, json
with open("data/o.jsonl") as f, open("data/o.csv", "w", newline="") as g:
    w = csv.writer(g)
    w.writerow(["id", "user", "amount", "country", "status"])
    for line in f:
        o = json.loads(line)
        w.writerow([o["id"], o["user"], o["amount"], o["country"], o["status"]])
PY
cat > csv2.yaml <<'YAML'
engine: { memory_limit: 16MiB }
sources:
  orders: { type: file, path: data/o.csv, format: csv }
stages:
  m0: { type: map, inputs: [orders], set: { k: '0' } }
  m1: { type: map, inputs: [orders], set: { k: '1' } }
sinks:
  s: { type: sqlite, inputs: [m0, m1], path: out/csv2.db, table: t }
YAML
/usr/bin/time -f %M -o rss.txt "$SLUICE" run csv2.yaml 2> csv2.log || fail "csv2: $(cat csv2.log)"
rss_kb=$(cat rss.txt)
if [ -z "${SLUICE_SANITIZE:-}" ] && [ "$rss_kb" -gt $((32 * 1024)) ]; then
    fail "csv2: peak RSS $((rss_kb / 1024)) MB with memory_limit 16MiB (bound 32 MB)"
fi
[ "$(q out/csv2.db 'SELECT count(*) FROM t')" = "$((2 * N))" ] || fail "csv2 rows"

# Short JSON lines decode to about 10 bytes per input byte (the plan
# assumes 4): a diamond merging at a stage, with a dead-letter table, at
# 16 MiB peaked at 34-38 MB RSS (32 MiB in flight) when blocks were sized
# for 4 (hostile probe). Sources now start with small blocks and size them
# by what decoded blocks measured.
python3 - "$N" <<'PY'
import json, sys
with open("data/short.jsonl", "w") as f:
    for i in range(int(sys.argv[1])):
        c = ["DE", "JP", "FR", ["X", "Y"]][i % 4] if i % 1000 else "x" * 3
        f.write(json.dumps({"id": i, "amount": round(i * 0.37 % 100, 2), "country": c, "tags": [1, 2]}) + "\n")
PY
cat > short.yaml <<'YAML'
engine: { memory_limit: 16MiB }
sources:
  src: { type: file, path: data/short.jsonl }
stages:
  a: { type: map, inputs: [src], set: { p: '"a"' } }
  b: { type: map, inputs: [src], set: { p: '"b"', c: 'upper(country)' } }
  d: { type: map, inputs: [a, b], set: { q: '1' } }
sinks:
  db: { type: sqlite, inputs: [d], path: out/short.db, table: t }
dead_letter: { type: sqlite, path: out/short.db, table: dl }
YAML
/usr/bin/time -f %M -o rss.txt "$SLUICE" run short.yaml 2> short.log || fail "short: $(cat short.log)"
rss_kb=$(cat rss.txt)
if [ -z "${SLUICE_SANITIZE:-}" ] && [ "$rss_kb" -gt $((32 * 1024)) ]; then
    fail "short lines: peak RSS $((rss_kb / 1024)) MB with memory_limit 16MiB (bound 32 MB)"
fi
rows=$(q out/short.db 'SELECT count(*) FROM t')
dead=$(q out/short.db 'SELECT count(*) FROM dl')
[ $((rows + dead)) -eq $((2 * N)) ] || fail "short lines: $rows rows + $dead dead letters, want $((2 * N))"

# .lz4 input: liblz4 keeps two blocks per open file (8.4 MiB with the lz4
# tool's 4 MiB blocks, -B7), which memory_limit must cover too: four
# sources of such files at 4 MiB peaked at 32 MB before (bound 20).
for i in 1 2 3 4; do
    sed "s/^{/{\"src\":$i,/" data/o.jsonl | lz4 -q -B7 > data/z$i.jsonl.lz4
done
cat > lz4.yaml <<'YAML'
engine: { memory_limit: 4MiB }
sources:
  a: { type: file, path: data/z1.jsonl.lz4 }
  b: { type: file, path: data/z2.jsonl.lz4 }
  c: { type: file, path: data/z3.jsonl.lz4 }
  d: { type: file, path: data/z4.jsonl.lz4 }
sinks:
  n: { type: sqlite, inputs: [a, b, c, d], path: out/z.db, table: t }
YAML
/usr/bin/time -f %M -o rss.txt "$SLUICE" run lz4.yaml 2> lz4.log || fail "lz4: $(cat lz4.log)"
rss_kb=$(cat rss.txt)
if [ -z "${SLUICE_SANITIZE:-}" ] && [ "$rss_kb" -gt $((20 * 1024)) ]; then
    fail "lz4: peak RSS $((rss_kb / 1024)) MB with memory_limit 4MiB (bound 20 MB)"
fi
[ "$(q out/z.db 'SELECT count(*), count(DISTINCT src || id) FROM t')" = "$((4 * N))|$((4 * N))" ] ||
    fail "lz4 rows: $(q out/z.db 'SELECT count(*) FROM t'), want $((4 * N))"
echo ok
