# Several SQLite sinks of one process share one connection to a file, and
# other processes (another sluice, a user's sqlite3) may use the file at
# the same time. Opening each sink made the file with open() + close()
# (sqlite_file.c create_file, also when the file was already open): a
# close() drops every POSIX lock the process holds on that file, so the
# shared connection ran without its SHARED lock on the database. Another
# process's connection then took itself for the last one at its close: it
# checkpointed and deleted the WAL sluice was still writing to. Found by
# a hostile probe: a sqlite3 reader polling the table saw "database disk
# image is malformed"; two sluice processes of three sinks each writing
# three tables of one file lost rows, wrote some twice, or left a file
# that no longer opened (PRAGMA journal_mode=WAL: database disk image is
# malformed), without kill -9 and with every run exiting 0.
. "$(dirname "$0")/lib.sh"

# 1. While a pipeline runs, a reader that opens and closes the file is
# not its last connection: the WAL stays. Two sinks of one file, or one
# sink and the dead-letter table in its file (pipelines/quickstart.yaml
# and kafka-to-sqlite.yaml have that shape).
for shape in two_sinks sink_and_dead_letter; do
    rm -rf out
    if [ $shape = two_sinks ]; then
        more='  a2: { type: sqlite, inputs: [gen], path: out/slow.db, table: a2 }'
    else
        more='dead_letter: { type: sqlite, path: out/slow.db, table: dead }'
    fi
    printf 'sources:\n  gen: { type: generator, count: 1000000, rate: 2000 }\nsinks:\n  a1: { type: sqlite, inputs: [gen], path: out/slow.db, table: a1 }\n%s\n' \
        "$more" > slow.yaml
    "$SLUICE" run slow.yaml --quiet 2> slow.log &
    pid=$!
    rows() { [ "$(q out/slow.db 'SELECT count(*) FROM a1' 2> /dev/null || echo 0)" -gt 10 ] 2> /dev/null; }
    wait_until rows || fail "$shape: no rows: $(err_of slow.log)"
    # A close finds the WAL busy now and then (a commit in progress) and
    # leaves it: look 30 times.
    wal=$(python3 -c "
import os, sqlite3, sys, time
for i in range(30):
    c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM a1').fetchone(); c.close()
    if not os.path.exists(sys.argv[1] + '-wal'):
        print('deleted'); sys.exit()
    time.sleep(0.03)
print('kept')" out/slow.db)
    kill -TERM "$pid"
    wait "$pid" || fail "$shape: $(err_of slow.log)"
    [ "$wal" = kept ] || fail "$shape: a reader's close deleted the WAL of a running pipeline (its lock on the file was dropped)"
done

# 2. A user polls the table with another connection while the pipeline
# runs: sluice exited 0 with 380,928 of 400,000 rows in one table (its
# last commits had gone with the deleted WAL), or failed with "inserting
# rows: database disk image is malformed"; the reader saw that too.
M=$((400000 / SCALE))
cat > poll.yaml <<Y
sources:
  gen: { type: generator, count: $M }
sinks:
  a1: { type: sqlite, inputs: [gen], path: out/poll.db, table: a1 }
  a2: { type: sqlite, inputs: [gen], path: out/poll.db, table: a2 }
Y
"$SLUICE" run poll.yaml --quiet 2> poll.log &
pid=$!
python3 - "$pid" <<'P' 2> reader.err
import os, sqlite3, sys, time
pid = int(sys.argv[1])
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        break
    try:
        c = sqlite3.connect("out/poll.db", timeout=5)
        c.execute("SELECT count(*) FROM a1").fetchone()
        c.close()
    except sqlite3.Error as e:
        print(e, file=sys.stderr)
    time.sleep(0.01)
P
wait "$pid" || fail "poll: $(err_of poll.log)"
for t in a1 a2; do
    got=$(q out/poll.db "SELECT count(*), count(DISTINCT id) FROM $t")
    [ "$got" = "$M|$M" ] || fail "poll: a clean run left $got rows in $t, want $M (reader: $(sort -u reader.err | head -n 2))"
done
grep -q malformed reader.err && fail "poll: the reader saw $(sort -u reader.err | head -n 1)"

# 3. Two processes, three sinks each, into the same three tables of one
# file at once: every row once, and the file intact.
N=$((200000 / SCALE))
for x in a b; do
    sk=$([ $x = a ] && echo 0 || echo 1)
    printf 'engine: { memory_limit: 16MiB }\nsources:\n  gen: { type: generator, count: %s, seed: %s }\nstages:\n  m: { type: map, inputs: [gen], set: { sk: %s } }\nsinks:\n' \
        "$N" $((sk + 1)) "$sk" > $x.yaml
    for j in 0 1 2; do
        printf '  %s%s: { type: sqlite, inputs: [m], path: out/two.db, table: t%s }\n' $x $j $j >> $x.yaml
    done
done
for round in 1 2 3; do
    rm -rf out
    "$SLUICE" run a.yaml --quiet 2> a.log &
    pa=$!
    "$SLUICE" run b.yaml --quiet 2> b.log &
    pb=$!
    ra=0 rb=0
    wait "$pa" || ra=$?
    wait "$pb" || rb=$?
    [ "$ra" = 0 ] && [ "$rb" = 0 ] || fail "round $round: exit $ra, $rb: $(err_of a.log) $(err_of b.log)"
    ok=$(q out/two.db 'PRAGMA integrity_check' 2>&1 | head -n 3)
    [ "$ok" = ok ] || fail "round $round: the file is damaged: $ok"
    for j in 0 1 2; do
        got=$(q out/two.db "SELECT sk, count(*), count(DISTINCT id) FROM t$j GROUP BY sk" | tr '\n' ' ')
        [ "$got" = "0|$N|$N 1|$N|$N " ] || fail "round $round: t$j holds $got, want $N rows once each per process"
    done
done
echo "ok"
