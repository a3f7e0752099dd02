# The `delay` stage: records pass through unchanged and in order, counts add
# up, a call is a call (empty batches too), `workers: N` makes N calls at
# once, saturate_at slows calls past the knee, jitter is reproducible by
# seed, and SIGINT cuts long calls short so the drain is quick. The checks
# read the stage's summary line (calls, most at once, simulated time), not
# the clock.
. "$(dirname "$0")/lib.sh"

# summary LOG NODE: NODE's summary line of the delay stage.
summary() {
    grep "^$2: [0-9]* calls, " "$1" || fail "no $2 summary line: $(cat "$1")"
}
# field LOG NODE WHAT: a number from the summary line: calls, once (at most
# N at once), simulated (seconds), slowed, cut.
field() {
    local line
    line=$(summary "$1" "$2")
    case $3 in
    calls) echo "$line" | sed -n 's/^[^:]*: \([0-9]*\) calls,.*/\1/p' ;;
    once) echo "$line" | sed -n 's/.*at most \([0-9]*\) at once.*/\1/p' ;;
    simulated) echo "$line" | sed -n 's/.*, \([0-9.]*\) s simulated.*/\1/p' ;;
    slowed) echo "$line" | sed -n 's/.*, \([0-9]*\) slowed past saturate_at.*/\1/p' ;;
    cut) echo "$line" | sed -n 's/.*, \([0-9]*\) cut short by the stop.*/\1/p' ;;
    esac
}
# counts LOG NODE: "in out dropped dead" of NODE's summary row.
counts() {
    awk -v n="$2" '$1 == n && NF == 8 { print $4, $5, $6, $7 }' "$1"
}

# 1. Pass-through: the same records, in the same order, as without the
# stage (sinks restore order: workers > 1 may finish calls out of order).
cat > direct.yaml <<'YAML'
sources:
  gen: { type: generator, count: 20000, seed: 3 }
sinks:
  f: { type: file, inputs: [gen], path: out/direct.jsonl }
YAML
"$SLUICE" run direct.yaml --quiet || fail "direct run"
cat > pass.yaml <<'YAML'
sources:
  gen: { type: generator, count: 20000, seed: 3 }
stages:
  lookup: { type: delay, inputs: [gen], per_batch: 20ms, per_record: 2us, jitter: 10%, workers: 4 }
sinks:
  f: { type: file, inputs: [lookup], path: out/delayed.jsonl }
  db: { type: sqlite, inputs: [lookup], path: out/d.db, table: orders }
YAML
"$SLUICE" run pass.yaml 2> pass.log || fail "pass run: $(cat pass.log)"
cmp -s out/direct.jsonl out/delayed.jsonl || fail "records changed or reordered by the delay"
[ "$(q out/d.db 'SELECT count(*), count(DISTINCT id) FROM orders')" = "20000|20000" ] ||
    fail "sqlite rows: $(q out/d.db 'SELECT count(*), count(DISTINCT id) FROM orders')"
[ "$(counts pass.log lookup)" = "20000 20000 0 0" ] || fail "lookup counts: $(cat pass.log)"
[ "$(counts pass.log db)" = "20000 20000 0 0" ] || fail "db counts: $(cat pass.log)"
[ "$(field pass.log lookup calls)" = 20 ] || fail "20 batches, 20 calls: $(summary pass.log lookup)"
! grep -q "not finished" pass.log || fail "records left unfinished: $(cat pass.log)"

# 2. A call is a call: batches a filter emptied still go through the stage
# (and sleep per_batch), and the sink still finishes.
cat > empty.yaml <<'YAML'
sources:
  gen: { type: generator, count: 8192 }
stages:
  none: { type: filter, inputs: [gen], where: 'false' }
  lookup: { type: delay, inputs: [none], per_batch: 5ms, per_record: 1ms }
sinks:
  db: { type: sqlite, inputs: [lookup], path: out/empty.db, table: orders }
YAML
"$SLUICE" run empty.yaml 2> empty.log || fail "empty run: $(cat empty.log)"
[ "$(field empty.log lookup calls)" = 8 ] || fail "empty batches skipped: $(summary empty.log lookup)"
[ "$(field empty.log lookup simulated)" = 0.040 ] || fail "empty calls: $(summary empty.log lookup)"
[ "$(counts empty.log lookup)" = "0 0 0 0" ] || fail "empty counts: $(cat empty.log)"

# 3. workers: N makes N calls at once: 2N batches of 1 s calls. At 16 MiB
# the sink's automatic queue holds 4 batches, and each call in progress
# holds a slot there (reserved before the call): it used to cap the calls
# at 4. At the default 64 MiB automatic queues stop at 16: 32 workers
# made at most 16 calls. The 32 calls take 2 s each, and more than 16 at
# once is what is checked: under TSan on a loaded machine the generator
# made only 24 batches in the first second.
cat > conc.yaml <<'YAML'
engine: { memory_limit: 16MiB }
sources:
  gen: { type: generator, count: 16384 }
stages:
  lookup: { type: delay, inputs: [gen], per_batch: 1s, workers: 8 }
sinks:
  out: { type: null, inputs: [lookup] }
YAML
"$SLUICE" run conc.yaml 2> conc.log || fail "concurrency run: $(cat conc.log)"
[ "$(field conc.log lookup once)" = 8 ] || fail "workers 8: $(summary conc.log lookup)"
"$SLUICE" run conc.yaml --set engine.memory_limit=64MiB --set stages.lookup.workers=32 \
    --set stages.lookup.per_batch=2s --set sources.gen.count=65536 2> conc32.log ||
    fail "32 workers run: $(cat conc32.log)"
once=$(field conc32.log lookup once)
[ "$once" -gt 16 ] && [ "$once" -le 32 ] || fail "workers 32: $(summary conc32.log lookup)"

# 4. saturate_at: 8 calls at once past a knee of 2 are slowed (a call that
# starts with n in progress takes n / 2 times as long): reaching 8 at once
# takes starts that saw 3, 4, ..., 8 in progress. Below the knee nothing
# is, and the simulated time is exactly calls x per_batch.
cat > sat.yaml <<'YAML'
sources:
  gen: { type: generator, count: 16384 }
stages:
  lookup: { type: delay, inputs: [gen], per_batch: 200ms, saturate_at: 2, workers: 8 }
sinks:
  out: { type: null, inputs: [lookup] }
YAML
"$SLUICE" run sat.yaml 2> sat.log || fail "saturate run: $(cat sat.log)"
[ "$(field sat.log lookup once)" = 8 ] || fail "saturate: $(summary sat.log lookup)"
slowed=$(field sat.log lookup slowed)
[ "$slowed" -ge 6 ] || fail "saturate_at 2 with 8 at once: $(summary sat.log lookup)"
python3 -c "import sys; sys.exit(not float(sys.argv[1]) > 16 * 0.2)" "$(field sat.log lookup simulated)" ||
    fail "saturated calls not slower: $(summary sat.log lookup)"
"$SLUICE" run sat.yaml --set stages.lookup.saturate_at=8 2> knee.log || fail "knee run: $(cat knee.log)"
[ "$(field knee.log lookup slowed)" = 0 ] || fail "slowed below the knee: $(summary knee.log lookup)"
[ "$(field knee.log lookup simulated)" = 3.200 ] || fail "below the knee: $(summary knee.log lookup)"

# 5. jitter is seeded: the same seed gives the same durations (their sum
# does not depend on which worker made which call), another seed others;
# every call stays within +-50 %.
cat > jit.yaml <<'YAML'
sources:
  gen: { type: generator, count: 40960 }
stages:
  lookup: { type: delay, inputs: [gen], per_batch: 10ms, jitter: 50%, seed: 7, workers: 4 }
sinks:
  out: { type: null, inputs: [lookup] }
YAML
"$SLUICE" run jit.yaml 2> jit1.log || fail "jitter run: $(cat jit1.log)"
"$SLUICE" run jit.yaml 2> jit2.log || fail "jitter run 2: $(cat jit2.log)"
"$SLUICE" run jit.yaml --set stages.lookup.seed=8 2> jit3.log || fail "jitter run 3: $(cat jit3.log)"
"$SLUICE" run jit.yaml --set stages.lookup.jitter=0 2> jit0.log || fail "jitter 0: $(cat jit0.log)"
a=$(field jit1.log lookup simulated)
b=$(field jit2.log lookup simulated)
c=$(field jit3.log lookup simulated)
[ "$a" = "$b" ] || fail "same seed, different durations: $a s, $b s"
[ "$a" != "$c" ] || fail "seeds 7 and 8 gave the same durations: $a s"
[ "$(field jit0.log lookup simulated)" = 0.400 ] || fail "no jitter: $(summary jit0.log lookup)"
python3 -c "import sys; sys.exit(not (0.2 < float(sys.argv[1]) < 0.6 and float(sys.argv[1]) != 0.4))" "$a" ||
    fail "jitter 50% of 40 calls of 10 ms: $a s"

# 6. SIGINT during calls of an hour: the stop cuts them short, everything
# read passes through and is written, exit 0 well before drain_timeout
# (a drain that waited for the calls would exit 1 after 10 s). `seen`
# shows the generator has emitted (so calls are in progress or queued).
cat > sig.yaml <<'YAML'
engine: { drain_timeout: 10s }
sources:
  gen: { type: generator, count: 100000000 }
stages:
  lookup: { type: delay, inputs: [gen], per_batch: 1h, workers: 4 }
sinks:
  db: { type: sqlite, inputs: [lookup], path: out/sig.db, table: orders }
  seen: { type: file, inputs: [gen], path: out/seen.jsonl }
YAML
"$SLUICE" run sig.yaml 2> sig.log &
pid=$!
has_lines() { [ -s out/seen.jsonl ]; }
WAIT_TIMEOUT=60 wait_until has_lines || fail "generator never emitted: $(cat sig.log)"
kill -INT $pid
set +e
wait $pid
rc=$?
set -e
[ "$rc" = 0 ] || fail "SIGINT during long calls: exit $rc: $(cat sig.log)"
! grep -q "drain did not finish" sig.log || fail "drain waited for the calls: $(cat sig.log)"
! grep -q "not finished" sig.log || fail "records left unfinished: $(cat sig.log)"
[ "$(field sig.log lookup cut)" -ge 1 ] || fail "no call cut short: $(summary sig.log lookup)"
read -r lin lout _ <<< "$(counts sig.log lookup)"
[ "$lin" -gt 0 ] && [ "$lin" = "$lout" ] || fail "lookup in $lin, out $lout: $(cat sig.log)"
[ "$(q out/sig.db 'SELECT count(*) FROM orders')" = "$lout" ] ||
    fail "sqlite has $(q out/sig.db 'SELECT count(*) FROM orders') rows, lookup emitted $lout"

# 7. Bad configs: run refuses each one as validate does (test_cli checks
# validate over the same files), exit 2, the same located message.
n=0
for f in "$SLUICE_ROOT"/tests/data/conf/builtin/bad_delay_*.yaml; do
    want=$(head -1 "$f")
    want=${want#\# expect: }
    want=${want/#FILE/$f}
    set +e
    "$SLUICE" run "$f" > /dev/null 2> err.txt
    got=$?
    set -e
    [ "$got" = 2 ] || fail "$f: run exit $got, expected 2: $(cat err.txt)"
    [ "$(cat err.txt)" = "$want" ] || fail "$f:
    want $want
    got  $(cat err.txt)"
    n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "only $n bad delay configs"

# --summary-json carries the delay's figures: one call per batch.
cat > sj.yaml <<'YAML'
sources:
  gen: { type: generator, count: 5000 }
stages:
  call: { type: delay, inputs: [gen], per_batch: 1ms, workers: 2 }
sinks:
  n: { type: null, inputs: [call] }
YAML
"$SLUICE" run sj.yaml --quiet --summary-json sj.json || fail "summary json run"
python3 - <<'PY' || fail "delay in summary JSON: $(cat sj.json)"
import json
n = json.load(open("sj.json"))["nodes"]["call"]
d = n["delay"]
assert d["calls"] == n["batches"] and 1 <= d["peak_at_once"] <= 2, n
assert d["simulated_s"] >= 0.001 * d["calls"] * 0.999, n
PY

# Calls back to back: each takes the timer's lateness of the calls
# before off its sleep, so they add up to what was asked, not to that
# plus 30-50 us each.
sed 's/workers: 2/workers: 1, queue: 64/; s/per_batch: 1ms/per_batch: 300us/; s/count: 5000/count: 200000/' sj.yaml > late.yaml
"$SLUICE" run late.yaml --quiet --summary-json late.json || fail "late run"
python3 - <<'PY' || fail "lateness carried: $(cat late.json)"
import json
n = json.load(open("late.json"))["nodes"]["call"]
d = n["delay"]
assert d["calls"] > 20 and d["late_credit_s"] > 0, d
assert d["late_credit_s"] <= 0.0002 * d["calls"], d
PY
echo ok
