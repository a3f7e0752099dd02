# engine.control's path held by a live listener that accepts nothing (a
# stuck run: its backlog is full) is another run's socket: the run says so
# and exits at once, instead of waiting for ever in its probe's connect
# before the loop and its deadlines start.
. "$(dirname "$0")/lib.sh"
cat > p.yaml <<YAML
engine: { control: $WORK/c.sock }
sources: { g: { type: generator, count: 10 } }
sinks: { db: { type: sqlite, inputs: [g], path: out.db, table: t } }
YAML
python3 - <<'PY' &
import os, socket, time
s = socket.socket(socket.AF_UNIX)
s.bind("c.sock")
s.listen(0)
c = socket.socket(socket.AF_UNIX)
c.connect("c.sock")  # the backlog is full from here on: nothing accepts
open("ready", "w").close()
time.sleep(120)
PY
holder=$!
wait_until test -f ready || fail "the listener did not start"
set +e
# The bound only ends a run that hangs: one that works exits at once.
timeout -s KILL 30 "$SLUICE" run p.yaml --quiet 2> err.txt
rc=$?
set -e
kill $holder 2> /dev/null || true
wait $holder 2> /dev/null || true
[ $rc != 137 ] || fail "the run hung in its probe of the busy socket"
[ $rc = 1 ] && grep -q "another run of this pipeline has it" err.txt ||
    fail "exit $rc: $(cat err.txt)"
echo ok
