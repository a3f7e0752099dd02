# A sink that waits (a locked database, retries with backoff) never holds a
# CPU worker (issue 6, finding 6): with `threads: 1`, sink `da` waits for a
# lock on a.db while source b's records are decoded and written to b.db.
. "$(dirname "$0")/lib.sh"
mkdir -p out
cat > p.yaml <<'YAML'
engine: { threads: 1 }
sources:
  a: { type: generator, count: 40, rate: 10, seed: 1 }
  b: { type: generator, count: 300, rate: 100, seed: 2 }
sinks:
  da: { type: sqlite, inputs: [a], path: out/a.db, table: orders }
  db: { type: sqlite, inputs: [b], path: out/b.db, table: orders }
YAML
"$SLUICE" run p.yaml 2> run.log &
pid=$!
rows() { q "$1" 'SELECT count(*) FROM orders' 2> /dev/null || echo 0; }
has_rows() { [ "$(rows "$1")" -ge "$2" ]; }
WAIT_TIMEOUT=60 wait_until has_rows out/a.db 1 || fail "a.db never written"
# Hold a.db's write lock until b.db has all of b and SQLite's 5 s
# busy_timeout has passed (so da retries), or 60 s.
hold_lock out/a.db 60 6
locker=$LOCKER
before=$(rows out/b.db)
got=0
WAIT_TIMEOUT=60 wait_until has_rows out/b.db 300 || got=1
b_locked=$(rows out/b.db)
touch release
wait $locker
wait $pid || fail "run failed: $(cat run.log)"
[ "$got" = 0 ] || fail "b.db stalled at $b_locked rows (from $before) while a.db was locked"
grep -q "busy or locked.*retry 1 of" run.log || fail "da never waited: $(cat run.log)"
[ "$(rows out/a.db)" = 40 ] || fail "a.db rows: $(rows out/a.db)"
[ "$(rows out/b.db)" = 300 ] || fail "b.db rows: $(rows out/b.db)"
echo ok
