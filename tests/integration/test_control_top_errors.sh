# sluice top (and tap) and the control socket's "#error" replies: one that will not
# change (an unknown request: a server that does not speak this protocol)
# ends top at once, exit 1, with the message; a passing one (the pipeline
# still starting, its places all taken, a connection closed unanswered
# while it finishes, no answer at all) is asked again with a backoff, a
# bounded number of times. Against a stand-in server on a unix socket
# that counts the requests it gets.
. "$(dirname "$0")/lib.sh"

# serve SOCK LOG REPLY...: answers the i-th request with the i-th REPLY
# (the last one for the rest): a "#..." line (\n: a line break); STATS: a stats line; CLOSE:
# closes unanswered; SILENT: holds the connection, unanswered; GONE: stops
# listening and removes the socket. LOG gets one line per request.
serve() {
    python3 - "$@" <<'PY' &
import json, os, socket, sys, time
path, log, replies = sys.argv[1], sys.argv[2], sys.argv[3:]
stats = json.dumps({"elapsed_s": 1.5, "in_flight_bytes": 0, "memory_limit": 64 << 20,
    "nodes": [{"name": "g", "kind": "source", "type": "generator", "in": 0, "out": 10,
               "dropped": 0, "shed": 0, "dead": 0, "added": 0, "queue": 0, "queue_cap": 0,
               "workers": 1}]}) + "\n"
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(16)
held = []
i = 0
deadline = time.time() + 120
while time.time() < deadline:
    srv.settimeout(deadline - time.time())
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    c.settimeout(5)
    req = b""
    while not req.endswith(b"\n"):
        d = c.recv(100)
        if not d:
            break
        req += d
    with open(log, "a") as f:
        f.write("%.3f %s\n" % (time.time(), req.decode().strip()))
    r = replies[min(i, len(replies) - 1)]
    i += 1
    if r == "SILENT":
        held.append(c)
        continue
    if r == "GONE":
        c.close()
        break
    if r == "STATS":
        c.sendall(stats.encode())
    elif r != "CLOSE":
        c.sendall((r.encode().decode("unicode_escape") + "\n").encode())
    c.close()
srv.close()
os.unlink(path)
time.sleep(1 if held else 0)
PY
    SERVER=$!
    wait_until test -S "$1" || fail "no stand-in server"
}
requests() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }
# top_run NAME ARGS...: runs top, its exit code in RC, its output in NAME.out/.err
top_run() {
    local name=$1
    shift
    set +e
    timeout 60 "$SLUICE" top "$@" > "$name.out" 2> "$name.err"
    RC=$?
    set -e
}

# An error that will not change: asked once, exit 1 with the message.
serve a.sock a.log "#error unknown request"
top_run a a.sock -n 3
kill $SERVER 2> /dev/null || true
wait $SERVER 2> /dev/null || true
[ $RC = 1 ] || fail "unknown request: exit $RC: $(cat a.err)"
grep -q "unknown request" a.err || fail "unknown request: said $(cat a.err)"
[ "$(requests a.log)" = 1 ] || fail "unknown request: asked $(requests a.log) times"

# Still starting, then stats: asked again, the table drawn, exit 0.
serve b.sock b.log "#error the pipeline is still starting" "#error the pipeline is still starting" \
    "#error too many clients" STATS
top_run b b.sock -n 1
kill $SERVER 2> /dev/null || true
wait $SERVER 2> /dev/null || true
[ $RC = 0 ] || fail "starting: exit $RC: $(cat b.err)"
grep -Eq '^g +source +generator ' b.out || fail "starting: no table: $(cat b.out)"
[ "$(requests b.log)" = 4 ] || fail "starting: asked $(requests b.log) times"

# Never done starting: given up after a bounded number of tries, each
# further apart, exit 1 with the message.
serve c.sock c.log "#error the pipeline is still starting"
top_run c c.sock -n 1
kill $SERVER 2> /dev/null || true
wait $SERVER 2> /dev/null || true
[ $RC = 1 ] || fail "never started: exit $RC: $(cat c.err)"
grep -q "still starting" c.err || fail "never started: said $(cat c.err)"
n=$(requests c.log)
[ "$n" -ge 3 ] && [ "$n" -le 20 ] || fail "never started: asked $n times"
python3 - c.log <<'PY' || fail "never started: no backoff: $(cat c.log)"
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1])]
gaps = [b - a for a, b in zip(t, t[1:])]
assert gaps[-1] > 2 * gaps[0], gaps
PY

# The pipeline finishing: a stats table, then a connection closed
# unanswered, then no socket: "the pipeline ended", exit 0.
serve e.sock e.log STATS CLOSE GONE
top_run e e.sock -n 5
kill $SERVER 2> /dev/null || true
wait $SERVER 2> /dev/null || true
[ $RC = 0 ] || fail "finishing: exit $RC: $(cat e.err)"
grep -q "the pipeline ended" e.out || fail "finishing: $(cat e.out e.err)"
[ "$(grep -c '^sluice top: .* up ' e.out)" = 1 ] || fail "finishing: tables: $(cat e.out)"

# A server that takes the connection and never answers (a pipeline whose
# loop has stopped, its socket not yet closed): top does not hang on it.
serve f.sock f.log SILENT STATS
top_run f f.sock -n 1
kill $SERVER 2> /dev/null || true
wait $SERVER 2> /dev/null || true
[ $RC = 124 ] && fail "no answer: top still waits after 60 s"
[ $RC = 0 ] || fail "no answer: exit $RC: $(cat f.err)"
grep -Eq '^g +source +generator ' f.out || fail "no answer: no table: $(cat f.out)"
[ "$(requests f.log)" = 2 ] || fail "no answer: asked $(requests f.log) times"

# tap: no place free, then the tap: asked again; a node that does not
# exist: asked once, exit 2.
serve t.sock t.log "#error too many clients" '#tap g\n{"id":1}\n#end'
set +e
timeout 60 "$SLUICE" tap t.sock g > t.out 2> t.err
RC=$?
set -e
kill $SERVER 2> /dev/null || true
wait $SERVER 2> /dev/null || true
[ $RC = 0 ] && [ "$(cat t.out)" = '{"id":1}' ] || fail "tap, no place: exit $RC: $(cat t.out t.err)"
[ "$(requests t.log)" = 2 ] || fail "tap, no place: asked $(requests t.log) times"
serve u.sock u.log "#error no node 'x' in this pipeline"
set +e
timeout 60 "$SLUICE" tap u.sock x > u.out 2> u.err
RC=$?
set -e
kill $SERVER 2> /dev/null || true
wait $SERVER 2> /dev/null || true
[ $RC = 2 ] && grep -q "no node 'x'" u.err || fail "tap, no node: exit $RC: $(cat u.err)"
[ "$(requests u.log)" = 1 ] || fail "tap, no node: asked $(requests u.log) times"
echo ok
