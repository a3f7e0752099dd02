# Issue 6, finding 6: the whole shutdown is bounded. Once the drain deadline
# or the end of the run has come, sluice exits 1 within the deadline plus a
# grace, naming what did not stop: a source thread blocked in a read, a sink
# stuck on a locked database, a step of the teardown itself (here writing
# --summary-json into a FIFO nobody reads: it hung for good after the loop
# thread had stopped, and the drain message named nothing).
. "$(dirname "$0")/lib.sh"

# gone_within PID SECONDS: waits until PID exited, at most SECONDS (a bound
# on a hang, not a timing: the run itself takes 1-3 s); kills it and fails
# otherwise. Sets rc to its exit code.
gone_within() {
    local pid=$1 most=$2
    if ! WAIT_TIMEOUT=$most wait_until sh -c "! kill -0 $pid 2> /dev/null"; then
        kill -9 "$pid" 2> /dev/null || true
        fail "still running after ${most}s: $(cat run.log)"
    fi
    set +e
    wait "$pid"
    rc=$?
    set -e
}

# 1. A FIFO as a file source's input: its source thread blocked in open
# until a writer came, and a read then failed (no position, no
# fingerprint). It is refused at once, named, with nothing left running.
mkfifo in.fifo
cat > fifo.yaml <<'YAML'
engine: { drain_timeout: 1s }
sources:
  f: { type: file, path: in.fifo, format: lines }
sinks:
  out: { type: file, inputs: [f], path: out/f.jsonl }
YAML
"$SLUICE" run fifo.yaml 2> run.log &
pid=$!
gone_within $pid 20
[ "$rc" = 1 ] || fail "fifo: exit $rc, want 1: $(cat run.log)"
grep -q "'in.fifo' is not a regular file (a FIFO)" run.log ||
    fail "fifo: the message does not say why: $(cat run.log)"
echo "fifo source: exit $rc, refused"

# 2. A sink stuck on a database another process keeps locked: named too.
mkdir -p out
cat > db.yaml <<'YAML'
engine: { drain_timeout: 1s }
sources:
  gen: { type: generator, count: 100000, rate: 200 }
sinks:
  db: { type: sqlite, inputs: [gen], path: out/o.db, table: orders }
YAML
"$SLUICE" run db.yaml 2> run.log &
pid=$!
has_rows() { [ "$(q out/o.db 'SELECT count(*) FROM orders' 2> /dev/null || echo 0)" -ge 1 ]; }
WAIT_TIMEOUT=60 wait_until has_rows || fail "nothing written: $(cat run.log)"
hold_lock out/o.db 60
locker=$LOCKER
sleep 0.5 # not a synchronisation: the sink is stuck whenever its next write comes
kill -INT $pid
gone_within $pid 20
touch release
wait $locker
[ "$rc" = 1 ] || fail "locked db: exit $rc, want 1: $(cat run.log)"
grep -q "still running: sink 'db' (1 task)" run.log ||
    fail "locked db: the message does not name the sink: $(cat run.log)"
echo "locked database: exit $rc, named"

# 2b. The same lock taken before the run: the sink waits in its open, before
# the pipeline started; the message named nothing (probe).
rm -f release locked
hold_lock out/early.db 60
locker=$LOCKER
sed 's|out/o.db|out/early.db|' db.yaml > early.yaml
"$SLUICE" run early.yaml 2> run.log &
pid=$!
sleep 0.5 # not a synchronisation: the open cannot end while the lock is held
kill -INT $pid
gone_within $pid 20
touch release
wait $locker
[ "$rc" = 1 ] || fail "locked at start: exit $rc, want 1: $(cat run.log)"
grep -q "still starting: opening 'db'" run.log ||
    fail "locked at start: the message does not name the sink: $(cat run.log)"
echo "locked at start: exit $rc, named"

# 3. A run that ends by itself, then a step of the teardown never ends
# (opening a FIFO for --summary-json blocks until a reader comes).
mkfifo s.fifo
cat > gen.yaml <<'YAML'
engine: { drain_timeout: 1s }
sources:
  g: { type: generator, count: 10 }
sinks:
  n: { type: null, inputs: [g] }
YAML
"$SLUICE" run gen.yaml --summary-json s.fifo 2> run.log &
pid=$!
gone_within $pid 20
[ "$rc" = 1 ] || fail "summary fifo: exit $rc, want 1: $(cat run.log)"
grep -q "shutdown did not finish within engine.drain_timeout (1000ms) and 10 s more: writing --summary-json s.fifo did not stop" run.log ||
    fail "summary fifo: no message naming the step: $(cat run.log)"
echo "teardown step: exit $rc, named"

# 4. A short drain_timeout does not cut a normal close (review: the close of
# a SQLite file after a bulk load checkpoints its log; with drain_timeout
# 1ms every run of 200k rows ended with exit 1).
cat > bulk.yaml <<'YAML'
engine: { drain_timeout: 1ms }
sources:
  g: { type: generator, count: 200000 }
sinks:
  db: { type: sqlite, inputs: [g], path: out/bulk.db, table: t }
YAML
"$SLUICE" run bulk.yaml --quiet 2> run.log || fail "short drain_timeout: exit $?: $(cat run.log)"
[ "$(q out/bulk.db 'SELECT count(*) FROM t')" -eq 200000 ] || fail "short drain_timeout: rows"
echo ok
