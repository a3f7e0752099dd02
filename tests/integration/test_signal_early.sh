# Hostile-user probe, item 7: a SIGTERM/SIGINT that arrives while sluice
# starts (reading the config, opening sinks) stops it cleanly: exit 0,
# summary printed, the database consistent, and a restart finishes the job
# exactly once. It used to kill the process (exit 143 or 130, no summary)
# when it came before the signals were blocked, after the config was read.
# The config is read from a FIFO, so the test knows sluice has begun (it
# opened the FIFO) without any timing.
. "$(dirname "$0")/lib.sh"
N=2000
cat > p.yaml <<'YAML'
sources:
  gen: { type: generator, count: 2000 }
sinks:
  s: { type: sqlite, inputs: [gen], path: out/s.db, table: t }
YAML

# rows_consistent LOG: each id once in the table, and as many rows as the
# summaries so far say were written.
written=0
rows_consistent() {
    local out
    out=$(awk '$1 == "s" && $2 == "sink" { print $5 }' "$1")
    [ -n "$out" ] || fail "no summary: $(cat "$1")"
    written=$((written + out))
    [ -f out/s.db ] || { [ "$written" = 0 ] && return 0; }
    [ "$(q out/s.db 'SELECT count(*) - count(DISTINCT id) FROM t' 2> /dev/null || echo 0)" = 0 ] ||
        fail "duplicate rows after $1"
    [ "$(q out/s.db 'SELECT count(*) FROM t' 2> /dev/null || echo 0)" = "$written" ] ||
        fail "$(q out/s.db 'SELECT count(*) FROM t') rows, the summaries say $written"
}

# start_on_fifo SIGNAL...: runs sluice on a FIFO config, sends each signal
# once sluice opened the FIFO (main has begun, the config is not read yet),
# then writes the config. Leaves the exit code in rc and stderr in run.log.
start_on_fifo() {
    rm -f p.fifo
    mkfifo p.fifo
    "$SLUICE" run p.fifo 2> run.log &
    pid=$!
    exec 3> p.fifo # returns once sluice opened it for reading
    for sig in "$@"; do
        kill -"$sig" $pid
    done
    cat p.yaml >&3 2> /dev/null || true # a second signal may have ended it
    exec 3>&-
    set +e
    wait $pid
    rc=$?
    set -e
}

for i in 1 2 3 4; do
    sig=TERM
    [ $((i % 2)) = 0 ] && sig=INT
    start_on_fifo $sig
    [ "$rc" = 0 ] || fail "SIG$sig while the config is read: exit $rc: $(cat run.log)"
    grep -q "SIG$sig: draining" run.log || fail "signal not reported: $(cat run.log)"
    rows_consistent run.log
done

# A signal right after the config is read lands anywhere in the start-up
# (blocking signals, starting the loop, opening the sink, starting the
# source): always a clean stop.
for i in 1 2 3 4; do
    rm -f p.fifo
    mkfifo p.fifo
    "$SLUICE" run p.fifo 2> run.log &
    pid=$!
    cat p.yaml > p.fifo
    kill -TERM $pid 2> /dev/null || true # it may even have finished
    set +e
    wait $pid
    rc=$?
    set -e
    [ "$rc" = 0 ] || fail "SIGTERM at start-up: exit $rc: $(cat run.log)"
    rows_consistent run.log
done

# Two signals before the pipeline exists: the second exits 130 at once, as
# it does later.
start_on_fifo INT TERM
[ "$rc" = 130 ] || fail "two signals while the config is read: exit $rc: $(cat run.log)"
grep -q "second signal: exiting now" run.log || fail "second signal not said: $(cat run.log)"

"$SLUICE" run p.yaml 2> run.log || fail "restart: $(cat run.log)"
rows_consistent run.log
[ "$(q out/s.db 'SELECT count(*), count(DISTINCT id) FROM t')" = "$N|$N" ] ||
    fail "after restart: $(q out/s.db 'SELECT count(*), count(DISTINCT id) FROM t')"
echo "ok"
