# The control socket, sluice top and sluice tap against a running pipeline:
# top's table, tap's records (limit, --where, a sink, two taps at once, the
# socket given directly), a tap that never reads and one killed mid-stream
# neither slow nor stop the run (its drops are counted), the socket is
# 0600 and goes with the run, a socket a kill -9 left is replaced, a
# second run of the same file runs without one, errors exit 1 or 2.
. "$(dirname "$0")/lib.sh"
export XDG_RUNTIME_DIR=$WORK/run
mkdir -m 700 run
cat > p.yaml <<'YAML'
sources: { g: { type: generator, count: 100000, rate: 5000 } }
stages: { f: { type: filter, inputs: [g], where: 'amount > 10' } }
sinks: { db: { type: sqlite, inputs: [f], path: out.db, table: t } }
YAML
set +e
"$SLUICE" top p.yaml -n 1 > /dev/null 2> err.txt
rc=$?
set -e
[ $rc = 1 ] && grep -q "no running pipeline answers on $WORK/run/sluice-p.yaml-" err.txt ||
    fail "nothing running: exit $rc: $(cat err.txt)"

"$SLUICE" run p.yaml --quiet --summary-json s.json 2> run.err &
pid=$!
wait_until sh -c 'ls run/*.sock > /dev/null 2>&1' || fail "no socket: $(cat run.err)"
sock=$(ls run/*.sock)
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket mode $(stat -c %a "$sock")"

"$SLUICE" top p.yaml -n 2 > top.txt 2> err.txt || fail "top: $(cat err.txt)"
[ "$(grep -c '^sluice top: ' top.txt)" = 2 ] || fail "top tables: $(cat top.txt)"
for n in g f db; do
    grep -Eq "^$n +(source|stage|sink) " top.txt || fail "top: no row for $n: $(cat top.txt)"
done
grep -Eq '^db +sink +sqlite +[0-9]+ +[0-9]+ +[0-9]+ .* [0-9]+\.[0-9]{3}$' top.txt || fail "top: sink row: $(cat top.txt)"

"$SLUICE" tap p.yaml f --limit 50 > tap.txt 2> err.txt || fail "tap: $(cat err.txt)"
"$SLUICE" tap "$sock" db --limit 20 --where 'amount > 500' > tapw.txt 2> err.txt || fail "tap --where: $(cat err.txt)"
python3 - <<'PY' || fail "tap output: $(head -3 tap.txt)"
import json
rows = [json.loads(l) for l in open("tap.txt")]
assert len(rows) == 50 and all(r["amount"] > 10 for r in rows), len(rows)
ids = [r["id"] for r in rows]
assert ids == sorted(ids) and len(set(ids)) == 50, ids[:5]
w = [json.loads(l) for l in open("tapw.txt")]
assert len(w) == 20 and all(r["amount"] > 500 for r in w), w[:2]
PY
# Two taps at once.
"$SLUICE" tap p.yaml g --limit 30 > t1.txt &
t1=$!
"$SLUICE" tap p.yaml g --limit 30 > t2.txt &
t2=$!
wait $t1 && wait $t2 || fail "two taps"
[ "$(wc -l < t1.txt)" = 30 ] && [ "$(wc -l < t2.txt)" = 30 ] || fail "two taps: $(wc -l t1.txt t2.txt)"
# A tap that never reads, and one killed while it streams.
python3 - "$sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"tap g\t0\t\n")
time.sleep(300)
PY
stalled=$!
"$SLUICE" tap p.yaml f > /dev/null &
killed=$!
sleep 0.5
kill -9 $killed
set +e
"$SLUICE" tap p.yaml nope 2> err.txt
rc1=$?
"$SLUICE" tap p.yaml f --where 'amount >' 2> err2.txt
rc2=$?
set -e
[ $rc1 = 2 ] && grep -q "no node 'nope'" err.txt || fail "unknown node: exit $rc1: $(cat err.txt)"
# --where that fails on the records ends the tap with the reason (it
# printed nothing, forever); a node name with a tab is refused.
set +e
timeout 60 "$SLUICE" tap p.yaml f --where 'tags + 1 > 0' > /dev/null 2> err3.txt
rc3=$?
timeout 60 "$SLUICE" tap p.yaml f --where 'amount' > /dev/null 2> err4.txt
rc4=$?
"$SLUICE" tap p.yaml "$(printf 'f\tx')" 2> err5.txt
rc5=$?
set -e
[ $rc3 = 1 ] && grep -q "tap: --where: " err3.txt || fail "where error: exit $rc3: $(cat err3.txt)"
[ $rc4 = 1 ] && grep -q "tap: --where: expected a bool, got float" err4.txt ||
    fail "where not a bool: exit $rc4: $(cat err4.txt)"
[ $rc5 = 2 ] || fail "tab in the node: exit $rc5: $(cat err5.txt)"
[ $rc2 = 2 ] && grep -q -- "--where: column" err2.txt || fail "bad where: exit $rc2: $(cat err2.txt)"
wait $pid || fail "run: $(err_of run.err)"
kill $stalled 2> /dev/null || true
wait $stalled 2> /dev/null || true
counts_add_up s.json
[ "$(q out.db 'SELECT count(*) FROM t')" = "$(json s.json 'd["nodes"]["db"]["out"]')" ] || fail "rows"
# The generator's pace held: a stalled tap did not hold the source back.
python3 -c "import json,sys; e=json.load(open('s.json'))['elapsed_s']; sys.exit(0 if e < 40 else 1)" ||
    fail "the run took $(json s.json 'd["elapsed_s"]') s for 20 s of input"
[ ! -e "$sock" ] || fail "the socket outlived the run"

# A socket a killed run left behind is replaced; a live one is not taken.
# (A file of its own: a rerun of p.yaml would find everything written.)
sed 's/out.db/q.db/' p.yaml > q.yaml
"$SLUICE" run q.yaml --quiet 2> run1.err &
pid=$!
wait_until sh -c 'ls run/sluice-q.yaml-*.sock > /dev/null 2>&1' || fail "no socket (2): $(cat run1.err)"
qsock=$(ls run/sluice-q.yaml-*.sock)
"$SLUICE" tap q.yaml g > /dev/null 2> died.txt &
tapper=$!
sleep 0.5
kill -9 $pid
wait $pid 2> /dev/null || true
set +e
wait $tapper
rc=$?
set -e
[ $rc = 1 ] && grep -q "the pipeline stopped answering" died.txt ||
    fail "a tap whose pipeline was killed: exit $rc: $(cat died.txt)"
[ -S "$qsock" ] || fail "kill -9 removed the socket?"
"$SLUICE" run q.yaml --quiet 2> run2.err &
pid=$!
live() { "$SLUICE" top q.yaml -n 1 > /dev/null 2>&1; }
wait_until live || fail "the new run never answered: $(cat run2.err)"
"$SLUICE" tap q.yaml g --limit 1 > one.txt 2> err.txt ||
    fail "tap after a stale socket: $(cat err.txt) $(cat run2.err)"
[ "$(wc -l < one.txt)" = 1 ] || fail "tap after a stale socket: $(cat one.txt)"
"$SLUICE" run q.yaml --set 'sources.g.count=10' --set 'sinks.db.path=other.db' 2> second.err ||
    fail "second run: $(cat second.err)"
grep -q "no control socket" second.err || fail "second run said nothing: $(cat second.err)"
kill -TERM $pid
wait $pid || fail "run after the stale socket: $(err_of run2.err)"
# The automatic folder must be this user's alone.
mkdir -m 777 open && chmod 777 open
XDG_RUNTIME_DIR=$WORK/open "$SLUICE" run q.yaml --set 'sinks.db.path=third.db' --set 'sources.g.count=10' \
    2> open.err || fail "run with an open folder: $(cat open.err)"
grep -q "open is not a folder of this user's alone" open.err || fail "open folder: $(cat open.err)"
[ -z "$(ls open)" ] || fail "a socket in a folder others may write"
echo ok
