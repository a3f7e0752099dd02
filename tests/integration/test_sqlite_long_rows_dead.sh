# SQLite sinks write long records one at a time (a process-wide lock), and
# a sink's rejects reach a dead-letter store in another file under the
# store's lock. A sink writing long records into a.db, waiting for a.db's
# lock (another process), then handing its rejects to the store, while
# another sink hands the store more than 4 MiB of dead letters (which the
# store writes as long records): each waited for the other's lock, and the
# run never ended (stuck until the drain deadline after a signal).
. "$(dirname "$0")/lib.sh"
mkdir -p in out
python3 - <<'PY'
with open("in/seed.jsonl", "w") as f:
    f.write('{"id":0,"blob":"x"}\n')
with open("in/big.jsonl", "w") as f:
    for i in range(8):
        # "id" and "ID" clash in SQLite: the sink rejects the record.
        f.write('{"id":%d,"ID":%d,"blob":"%s"}\n' % (i, i, "b" * (9 << 19)))
with open("in/bad.jsonl", "w") as f:
    for i in range(200000):
        f.write('{"id":%d,\n' % i)
PY
cat > p.yaml <<'YAML'
engine: { memory_limit: 256MiB }
sources:
  big: { type: file, path: in/seed.jsonl }
  bad: { type: file, path: in/bad.jsonl }
sinks:
  a: { type: sqlite, inputs: [big], path: out/a.db, table: t }
  b: { type: null, inputs: [bad] }
dead_letter: { type: sqlite, path: out/dead.db, table: dead }
YAML
# First run: the databases and their tables exist, so the second run's
# setup does not need a.db's write lock.
"$SLUICE" run p.yaml --set sources.bad.path=in/seed.jsonl --quiet 2> run1.log ||
    fail "run 1: $(cat run1.log)"
# Another process holds a.db's write lock for 2 s (within SQLite's 5 s
# busy_timeout) while sluice starts.
hold_lock out/a.db 2
locker=$LOCKER
rc=0
timeout 60 "$SLUICE" run p.yaml --set sources.big.path=in/big.jsonl 2> run2.log || rc=$?
wait $locker
[ "$rc" = 0 ] || fail "run 2 (exit $rc): $(tail -5 run2.log)"
[ "$(q out/dead.db "SELECT count(*) FROM dead WHERE _node = 'a'")" = 8 ] ||
    fail "a's rejects: $(q out/dead.db "SELECT count(*) FROM dead WHERE _node = 'a'")"
[ "$(q out/dead.db "SELECT count(*) FROM dead WHERE _node = 'bad'")" = 200000 ] ||
    fail "bad lines: $(q out/dead.db "SELECT count(*) FROM dead WHERE _node = 'bad'")"
echo ok
