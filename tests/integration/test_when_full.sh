# when_full (issue 7): a node whose input queue is full sheds instead of
# holding its producers back, and every record is still accounted for:
# written, or counted as shed by exactly the node that shed it; dead letters
# of a shed batch still reach the dead-letter store; positions go on past
# shed batches (a re-run writes nothing), and kill -9 while shedding then a
# re-run duplicates nothing.
. "$(dirname "$0")/lib.sh"

N=$((200000 / SCALE))

gen_orders data/o.jsonl "$N" 3
# Bad lines spread through the file: dead letters in batches that get shed.
awk 'NR % 5000 == 0 { print "{bad json" } { print }' data/o.jsonl > data/mixed.jsonl
BAD=$(grep -c '^{bad' data/mixed.jsonl)

# 1. Each policy behind a slow stage with a short queue: the stage sheds,
# the sink writes what the stage let through, once. The shells go on
# through a route whose own output nobody reads: their dead letters must
# take the output that is read (the random DAG test found them lost).
for policy in drop_newest drop_oldest; do
    cat > $policy.yaml <<YAML
sources:
  orders: { type: file, path: data/mixed.jsonl }
stages:
  slow: { type: delay, inputs: [orders], per_batch: 20ms, queue: 2, when_full: $policy }
  r: { type: route, inputs: [slow], routes: { all: 'true' } }
sinks:
  db: { type: sqlite, inputs: [r.all], path: out/$policy.db, table: orders }
dead_letter: { type: sqlite, path: out/$policy.db, table: rejects }
YAML
    "$SLUICE" run $policy.yaml --summary-json $policy.json 2> $policy.err || fail "$policy: $(err_of $policy.err)"
    counts_add_up $policy.json
    shed=$(json $policy.json 'd["nodes"]["slow"]["shed"]')
    out=$(json $policy.json 'd["nodes"]["slow"]["out"]')
    [ "$shed" -gt 0 ] || fail "$policy: nothing shed behind a 20 ms stage with a 2-batch queue"
    [ $((shed + out)) -eq "$N" ] || fail "$policy: shed $shed + out $out != $N"
    rows=$(q out/$policy.db 'SELECT count(*) FROM orders')
    [ "$rows" -eq "$out" ] || fail "$policy: $rows rows, the stage let $out through"
    [ "$(q out/$policy.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$rows" ] || fail "$policy: duplicates"
    [ "$(q out/$policy.db 'SELECT count(*) FROM rejects')" -eq "$BAD" ] ||
        fail "$policy: $(q out/$policy.db 'SELECT count(*) FROM rejects') dead letters stored, $BAD bad lines"
    grep -q "^slow .* $shed " $policy.err || fail "$policy: the summary has no shed column: $(cat $policy.err)"
    # The positions went past the shed batches: nothing is read again.
    "$SLUICE" run $policy.yaml --summary-json again.json 2> again.err || fail "$policy again: $(err_of again.err)"
    [ "$(q out/$policy.db 'SELECT count(*) FROM orders')" -eq "$rows" ] || fail "$policy: the re-run wrote more"
    [ "$(json again.json 'd["nodes"]["slow"]["in"]')" -eq 0 ] || fail "$policy: the re-run read records again"
done

# 1b. A drop_oldest sink behind a shedding stage: the stage's shells take
# no room in the sink's queue, so the sink, never busy, sheds nothing (they
# did, and it shed 40-66% of what the stage let through). The stage takes
# 200 ms a batch so that it sheds even when a loaded machine slows the
# source under a sanitizer (at 50 ms, one CI run shed nothing).
cat > behind.yaml <<'YAML'
sources:
  orders: { type: file, path: data/o.jsonl }
stages:
  up: { type: map, inputs: [orders], set: { c: '1' } }
  slow: { type: delay, inputs: [up], per_batch: 200ms, when_full: drop_newest }
sinks:
  f: { type: null, inputs: [slow], when_full: drop_oldest }
YAML
"$SLUICE" run behind.yaml --summary-json behind.json 2> behind.err || fail "behind: $(err_of behind.err)"
counts_add_up behind.json
[ "$(json behind.json 'd["nodes"]["slow"]["shed"]')" -gt 0 ] || fail "behind: the stage shed nothing"
# Before the fix it shed 40-66% of what the stage let through. Under TSan
# on a loaded machine the sink (a CPU task kicked from the stage's
# blocking thread) also waited 1.2 s in the scheduler's injection queue,
# which workers then read only every 61 tasks, and shed up to a quarter;
# they now read it at least every 1 ms (test_sched). The bound stays
# loose for a loaded machine and still catches shells taking queue room.
f_shed=$(json behind.json 'd["nodes"]["f"]["shed"]')
f_in=$(json behind.json 'd["nodes"]["f"]["in"]')
[ $((f_shed * 3)) -le "$f_in" ] || fail "behind: the idle sink shed $f_shed of $f_in records"

# 1c. workers: auto on a shedding stage: the tuner measures what the stage
# did, not what arrived (shed records counted as work made every rate the
# arrival rate, and it stayed at one worker while shedding 97%).
R=$((30000 / SCALE))
cat > tuned.yaml <<YAML
sources:
  gen: { type: generator, count: $((R * 3)), rate: $R }
stages:
  slow: { type: delay, inputs: [gen], per_batch: 20ms, workers: auto, queue: 4, when_full: drop_newest }
sinks:
  n: { type: null, inputs: [slow] }
YAML
"$SLUICE" run tuned.yaml --summary-json tuned.json 2> tuned.err || fail "tuned: $(err_of tuned.err)"
counts_add_up tuned.json
peak=$(json tuned.json 'd["nodes"]["slow"]["workers_peak"]')
shed=$(json tuned.json 'd["nodes"]["slow"]["shed"]')
# Before the fix it stayed at one worker and shed 97%. How much it sheds
# once it grows depends on the machine's load (13-89% of the input in
# Release with other tests running beside it), so only the growth is
# checked here; bench/overload.sh measures the rest.
[ "$peak" -ge 4 ] || fail "tuned: the shedding stage peaked at $peak workers (shed $shed)"

# 2. block (the default) sheds nothing, and the summary has no shed column.
sed 's/when_full: drop_newest/when_full: block/; s/drop_newest.db/block.db/' drop_newest.yaml > block.yaml
"$SLUICE" run block.yaml --summary-json block.json 2> block.err || fail "block: $(err_of block.err)"
[ "$(json block.json 'd["nodes"]["slow"]["shed"]')" -eq 0 ] || fail "block shed records"
[ "$(q out/block.db 'SELECT count(*) FROM orders')" -eq "$N" ] || fail "block lost records"
! grep -q ' shed ' block.err || fail "a shed column without when_full: $(head -n 2 block.err)"

# 3. A sink that sheds: another process locks its database for a second
# while a paced generator goes on; the sink's queue fills and what does
# not fit is shed, then it writes the rest. Every record is written or shed.
G=$((400000 / SCALE))
cat > sink.yaml <<YAML
sources:
  gen: { type: generator, count: $G, rate: 200000 }
sinks:
  db: { type: sqlite, inputs: [gen], path: out/sink.db, table: orders, queue: 2, when_full: drop_oldest }
YAML
"$SLUICE" run sink.yaml --summary-json sink.json 2> sink.err &
pid=$!
has_rows() { [ "$(q out/sink.db 'SELECT count(*) FROM orders' 2> /dev/null || echo 0)" -gt 0 ]; }
wait_until has_rows || fail "the sink wrote nothing"
hold_lock out/sink.db 1 1
wait $LOCKER
wait $pid || fail "sink: $(err_of sink.err)"
counts_add_up sink.json
shed=$(json sink.json 'd["nodes"]["db"]["shed"]')
rows=$(q out/sink.db 'SELECT count(*) FROM orders')
[ "$shed" -gt 0 ] || fail "the locked sink shed nothing: $(cat sink.err)"
[ $((rows + shed)) -eq "$G" ] || fail "sink: $rows rows + $shed shed != $G"
[ "$(q out/sink.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$rows" ] || fail "sink: duplicates"

# 4. kill -9 while shedding, then run to the end: no duplicates, and the
# rows are a subset of the input.
sed 's/per_batch: 20ms/per_batch: 50ms/; s/drop_newest.db/kill.db/' drop_newest.yaml > kill.yaml
"$SLUICE" run kill.yaml 2> kill.err &
pid=$!
sleep 0.5
kill -9 $pid 2> /dev/null || true
wait $pid 2> /dev/null || true
"$SLUICE" run kill.yaml 2> kill2.err || fail "after kill: $(err_of kill2.err)"
rows=$(q out/kill.db 'SELECT count(*) FROM orders')
[ "$(q out/kill.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$rows" ] || fail "kill -9: duplicates"
[ "$rows" -le "$N" ] || fail "kill -9: $rows rows of $N"

# 5. shed: a slow stage (200 us a record) fed three priority levels, four
# times what it takes (the rate is not scaled down under sanitizers: the
# overload must stay), of which level 9 needs a tenth of its time. A full
# queue sheds a lower level than the incoming one while one is queued, so
# level 9 loses only what arrives while the queue holds level 9 alone (64
# of its small parts: rarely, unless the machine holds the stage's thread
# off; with a fifth of the time at level 9 and a queue of 16, a machine at
# load average 10 had 14% of level 9 shed), far less than the others; the
# lowest level still gets through (aging); the counts add up per node and
# level.
P=$((60000 / SCALE))
cat > prio.yaml <<YAML
sources:
  gen: { type: generator, count: $P, rate: 20000 }
stages:
  tag: { type: map, inputs: [gen], set: { c: '1' }, priority: 'if(amount > 950, 9, if(amount > 300, 5, 0))' }
  slow: { type: delay, inputs: [tag], per_record: 200us, queue: 64, when_full: shed }
  mark: { type: map, inputs: [slow], set: { lvl: '@priority' } }
sinks:
  db: { type: sqlite, inputs: [mark], path: out/prio.db, table: orders }
YAML
"$SLUICE" run prio.yaml --summary-json prio.json 2> prio.err || fail "prio: $(err_of prio.err)"
counts_add_up prio.json
written=$(q out/prio.db 'SELECT count(*) FROM orders')
[ "$written" -eq "$(json prio.json 'd["nodes"]["db"]["out"]')" ] || fail "prio: rows != the sink's out"
[ "$(q out/prio.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$written" ] || fail "prio: duplicates"
[ "$(q out/prio.db 'SELECT count(*) FROM orders WHERE (amount > 950) != (lvl = 9)')" -eq 0 ] ||
    fail "prio: levels do not match the expression"
q out/prio.db 'SELECT lvl, count(*) FROM orders GROUP BY lvl' > prio.rows
python3 - prio.json prio.rows <<'PY' || fail "prio: $(cat prio.rows) $(cat prio.json)"
import json, sys
d = json.load(open(sys.argv[1]))
by = {int(k): v for k, v in d["nodes"]["slow"]["shed_by_priority"].items()}
assert sum(by.values()) == d["nodes"]["slow"]["shed"], "shed per level does not add up"
rows = dict(map(int, l.split("|")) for l in open(sys.argv[2]) if l.strip())
share = {l: by[l] / (by[l] + rows.get(l, 0)) for l in (0, 5, 9) if by[l] + rows.get(l, 0) > 0}
print("shed share per level:", {l: round(v, 3) for l, v in share.items()})
# Level 0 is shed first; level 5 only when the overload is deep enough
# (under TSan the generator was slow enough that level 5 lost nothing).
assert by[0] > 0, "the lowest level was not shed: no overload?"
assert share[9] * 10 <= share[0], "level 9 shed %.3f, level 0 %.3f" % (share[9], share[0])
assert rows.get(0, 0) > 0, "level 0 starved"
PY
sed 's/prio.db/prio_kill.db/' prio.yaml > prio_kill.yaml
"$SLUICE" run prio_kill.yaml 2> pk.err &
pid=$!
sleep 1
kill -9 $pid 2> /dev/null || true
wait $pid 2> /dev/null || true
"$SLUICE" run prio_kill.yaml 2> pk2.err || fail "prio after kill: $(err_of pk2.err)"
rows=$(q out/prio_kill.db 'SELECT count(*) FROM orders')
[ "$(q out/prio_kill.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$rows" ] || fail "prio kill -9: duplicates"
echo "ok: shed $shed at a locked sink; kill -9 kept $rows distinct rows; priorities: $(tr '\n' ' ' < prio.rows)"
