# A database locked by another process (issue 6, findings 6 and 13): the
# first setup and later writes wait for it with a log line, retrying with
# backoff (bounded), and every row lands once the lock is gone.
. "$(dirname "$0")/lib.sh"
N=$((50000 / SCALE))
gen_orders data/o.jsonl "$N" 4
mkdir -p out
cat > p.yaml <<'YAML'
sources:
  orders: { type: file, path: data/o.jsonl }
sinks:
  db: { type: sqlite, inputs: [orders], path: out/o.db, table: orders }
YAML
# Create the database, then hold an exclusive lock for 7 s (past SQLite's
# 5 s busy_timeout) while sluice starts.
sqlite3 out/o.db 'PRAGMA journal_mode=WAL; CREATE TABLE orders(id);' > /dev/null
hold_lock out/o.db 7
locker=$LOCKER
"$SLUICE" run p.yaml 2> run.log || fail "run: $(cat run.log)"
wait $locker
grep -q "busy or locked.*retry 1 of" run.log || fail "the wait is not said: $(cat run.log)"
[ "$(q out/o.db 'SELECT count(*) FROM orders')" = "$N" ] || fail "rows: $(q out/o.db 'SELECT count(*) FROM orders')"
echo ok
