# When the drain deadline ends a run (a sink stuck on a database another
# process keeps locked), sluice exits 1 and still prints the counts so far,
# and writes them to --summary-json: it used to print only "drain did not
# finish", then no JSON (hostile-user probes).
. "$(dirname "$0")/lib.sh"
mkdir -p out
cat > p.yaml <<'YAML'
engine: { drain_timeout: 1s }
sources:
  gen: { type: generator, count: 100000, rate: 200 }
sinks:
  db: { type: sqlite, inputs: [gen], path: out/o.db, table: orders }
YAML
"$SLUICE" run p.yaml --summary-json s.json 2> run.log &
pid=$!
has_rows() { [ "$(q out/o.db 'SELECT count(*) FROM orders' 2> /dev/null || echo 0)" -ge 1 ]; }
WAIT_TIMEOUT=60 wait_until has_rows || fail "nothing written: $(cat run.log)"
hold_lock out/o.db 60
locker=$LOCKER
sleep 0.5 # not a synchronisation: the sink is stuck whenever its next write comes
kill -INT $pid
set +e
wait $pid
rc=$?
set -e
touch release
wait $locker
[ "$rc" = 1 ] || fail "exit $rc, want 1: $(cat run.log)"
grep -q "drain did not finish within engine.drain_timeout" run.log || fail "no deadline message: $(cat run.log)"
grep -q "^node  *kind  *type" run.log || fail "no summary after the deadline: $(cat run.log)"
grep -q "^db  *sink  *sqlite" run.log || fail "no sink line: $(cat run.log)"
# --summary-json too: the counts so far (it was not written at all).
python3 -c "import json; d = json.load(open('s.json')); assert d['nodes']['gen']['out'] > 0, d" ||
    fail "no summary JSON after the deadline: $(cat s.json 2> /dev/null)"
echo ok
