# engine.blocking_threads: a number starts exactly that many threads; auto
# starts one and adds threads only as blocking tasks need them (a delay stage
# with workers: auto has 64 task slots, which used to mean 64 threads up
# front). The summary and --summary-json show peak, final and started.
. "$(dirname "$0")/lib.sh"

# bt JSON FIELD: blocking_threads.FIELD of a summary JSON file.
bt() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["blocking_threads"][sys.argv[2]])' "$1" "$2"
}

# 1. A number: exactly N, up front, and no more.
cat > fixed.yaml <<'YAML'
engine: { blocking_threads: 3 }
sources:
  gen: { type: generator, count: 4000 }
stages:
  lookup: { type: delay, inputs: [gen], per_batch: 5ms, workers: 8 }
sinks:
  f: { type: file, inputs: [lookup], path: out/fixed.jsonl }
YAML
"$SLUICE" run fixed.yaml --summary-json fixed.json 2> fixed.log || fail "fixed run: $(cat fixed.log)"
[ "$(bt fixed.json peak) $(bt fixed.json final) $(bt fixed.json started)" = "3 3 3" ] ||
    fail "blocking_threads 3: $(cat fixed.json)"
grep -q "^blocking threads (fixed): peak 3, now 3, started 3$" fixed.log ||
    fail "summary line: $(cat fixed.log)"

# 2. auto with 4 batches through 64 task slots: a handful of threads, as
# many as the calls at once need (a thread finishing its call may still be
# busy when the next is submitted), not 64.
cat > auto.yaml <<'YAML'
sources:
  gen: { type: generator, count: 4000 }
stages:
  lookup: { type: delay, inputs: [gen], per_batch: 50ms, workers: auto, workers_min: 64 }
sinks:
  f: { type: file, inputs: [lookup], path: out/auto.jsonl }
YAML
"$SLUICE" run auto.yaml --summary-json auto.json 2> auto.log || fail "auto run: $(cat auto.log)"
peak=$(bt auto.json peak)
started=$(bt auto.json started)
final=$(bt auto.json final)
[ "$peak" -ge 1 ] && [ "$peak" -le 10 ] || fail "auto: peak $peak blocking threads: $(cat auto.log)"
[ "$started" -ge "$peak" ] && [ "$final" -le "$peak" ] && [ "$final" -ge 1 ] ||
    fail "auto: started $started, peak $peak, final $final"
grep -q "^blocking threads (on demand): peak $peak, now $final, started $started$" auto.log ||
    fail "summary line: $(cat auto.log)"
[ "$(wc -l < out/auto.jsonl)" = 4000 ] || fail "auto: records lost"

# 3. No blocking node: no blocking thread, and the JSON says so.
cat > none.yaml <<'YAML'
sources:
  gen: { type: generator, count: 100 }
sinks:
  n: { type: "null", inputs: [gen] }
YAML
"$SLUICE" run none.yaml --summary-json none.json 2> none.log || fail "none run: $(cat none.log)"
[ "$(bt none.json peak) $(bt none.json final) $(bt none.json started)" = "0 0 0" ] ||
    fail "no blocking node: $(cat none.json)"
! grep -q "^blocking threads" none.log || fail "summary line without blocking threads"

echo "ok"
