# SIGTERM drains: the sources stop, everything read is committed, exit 0;
# a restart finishes the job exactly once. A second signal exits 130.
. "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
sources:
  gen: { type: generator, count: 100000, rate: 20000 }
sinks:
  s: { type: sqlite, inputs: [gen], path: out/s.db, table: t }
YAML
"$SLUICE" run p.yaml --quiet &
pid=$!
sleep 1
kill -TERM $pid
set +e
wait $pid
rc=$?
set -e
[ "$rc" = 0 ] || fail "drain exit code $rc"
n=$(q out/s.db 'SELECT count(*) FROM t')
[ "$n" -gt 0 ] && [ "$n" -lt 100000 ] || fail "drained $n rows"
# Restart: finish exactly once (faster now).
"$SLUICE" run p.yaml --quiet --set sources.gen.rate=0 || fail "restart"
[ "$(q out/s.db 'SELECT count(*), count(DISTINCT id) FROM t')" = "100000|100000" ] || fail "after restart: $(q out/s.db 'SELECT count(*), count(DISTINCT id) FROM t')"

rm -rf out
"$SLUICE" run p.yaml --quiet --set sources.gen.rate=100 &
pid=$!
sleep 0.5
kill -INT $pid
sleep 0.1
# The drain may be over by now: the loop no longer waits for a tick.
kill -INT $pid 2> /dev/null || true
set +e
wait $pid
rc=$?
set -e
[ "$rc" = 130 ] || [ "$rc" = 0 ] || fail "second signal exit code $rc"
echo "ok"
