# `workers: auto` (issue 7): the tuner runs inside a real pipeline, within
# workers_min..workers_max, records are all there whatever it decides, and
# the summary (text and --summary-json) shows each node's final and peak
# workers. The tuner's decisions themselves are tested on a virtual clock
# (tests/unit/test_tune.c); bench/tune.sh measures it against a sweep.
. "$(dirname "$0")/lib.sh"

N=$((400000 / SCALE))

# 1. Bounds: workers_min = workers_max pins it; counts add up.
cat > pinned.yaml <<YAML
sources:
  g: { type: generator, count: $N }
stages:
  m: { type: map, inputs: [g], set: { c: 'round(amount * 100)' }, workers: auto, workers_min: 3, workers_max: 3 }
  f: { type: filter, inputs: [m], where: 'c % 2 == 0', workers: auto }
sinks:
  db: { type: sqlite, inputs: [f], path: out/o.db, table: t }
YAML
"$SLUICE" run pinned.yaml --summary-json pinned.json 2> pinned.err || fail "pinned: $(err_of pinned.err)"
[ "$(json pinned.json 'd["nodes"]["m"]["workers_final"], d["nodes"]["m"]["workers_peak"], d["nodes"]["m"]["workers_auto"]')" = "(3, 3, True)" ] ||
    fail "workers_min = workers_max = 3 not held: $(cat pinned.json)"
grep -q '^m: workers auto (3\.\.3): final 3, peak 3$' pinned.err || fail "no workers line for m: $(cat pinned.err)"
peak=$(json pinned.json 'd["nodes"]["f"]["workers_peak"]')
[ "$peak" -ge 1 ] && [ "$peak" -le 64 ] || fail "f's peak workers $peak outside 1..64"
kept=$(json pinned.json 'd["nodes"]["f"]["out"]')
dropped=$(json pinned.json 'd["nodes"]["f"]["dropped"]')
[ $((kept + dropped)) -eq "$N" ] || fail "filter: $kept kept + $dropped dropped != $N"
[ "$(q out/o.db 'SELECT count(*) FROM t')" -eq "$kept" ] || fail "rows != the filter's out ($kept)"
[ "$(json pinned.json 'd["nodes"]["g"]["workers_auto"]')" = False ] || fail "g is not auto"
[ "$(json pinned.json 'd["nodes"]["db"]["workers_final"]')" -eq 1 ] || fail "a sink writes with one worker"
for k in elapsed_s peak_rss_bytes; do
    [ "$(json pinned.json "d['$k'] > 0")" = True ] || fail "summary json: $k missing or 0"
done

# 2. Config: auto on a type that runs one worker, bounds without auto.
cat > bad.yaml <<'YAML'
sources:
  g: { type: generator, count: 10 }
stages:
  m: { type: map, inputs: [g], set: { c: '1' }, workers: 4, workers_max: 8 }
sinks:
  db: { type: sqlite, inputs: [m], path: out/b.db, table: t, workers: auto }
YAML
set +e
"$SLUICE" validate bad.yaml 2> bad.err
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "validate accepted workers_max without auto (exit $rc)"
grep -q 'bad.yaml:4:.*stages.m.workers_max: only with workers: auto' bad.err || fail "message: $(cat bad.err)"

# 3. --summary-json into a folder that does not exist: the run's data is
# fine, the exit code says the summary was not written.
set +e
"$SLUICE" run pinned.yaml --summary-json /nonexistent/dir/s.json 2> nojson.err
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "an unwritable --summary-json exited $rc"
grep -q -- '--summary-json: /nonexistent/dir/s.json' nojson.err || fail "message: $(cat nojson.err)"

# 4. A slow call past its knee (delay, saturate_at 8): slow start must find
# the knee within the run and settle near it, not pile calls onto it. Each
# task runs several 20 ms calls in a row, longer than a tuning interval:
# its busy time must count as it goes, not only when it ends (it did, and
# the tuner, seeing idle workers, crept up one worker per half second).
# The calls are slow enough (100 ms) that the stage, not the generator,
# limits the rate in every build: under TSan the generator makes about
# 250k records/s, below the 400k/s of 20 ms calls at the knee, and the
# tuner then rightly chased the input instead of the knee (CI saw 19).
cat > knee.yaml <<'YAML'
sources:
  g: { type: generator, count: 300000 }
stages:
  d: { type: delay, inputs: [g], per_batch: 100ms, saturate_at: 8, workers: auto }
sinks:
  n: { type: null, inputs: [d] }
YAML
# With the trace on: it reads the run's start time from the loop thread
# (TSan found that written after the loop had started).
SLUICE_TUNE_TRACE=1 "$SLUICE" run knee.yaml --summary-json knee.json 2> knee.err ||
    fail "knee: $(err_of knee.err)"
grep -q '^sluice: tune d: .*workers 1 -> 2' knee.err || fail "no trace of the tuner: $(cat knee.err)"
peak=$(json knee.json 'd["nodes"]["d"]["workers_peak"]')
final=$(json knee.json 'd["nodes"]["d"]["workers_final"]')
[ "$peak" -ge 8 ] || fail "slow start stopped at $peak workers below the knee (8): $(cat knee.err)"
[ "$final" -ge 4 ] && [ "$final" -le 12 ] || fail "settled at $final workers, knee 8: $(cat knee.err)"
[ "$(json knee.json 'd["nodes"]["n"]["in"]')" -eq 300000 ] || fail "knee: records lost"
echo "ok: pinned 3/3; knee 8: peak $peak, final $final"
