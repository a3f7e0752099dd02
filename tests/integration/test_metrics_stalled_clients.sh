# engine.metrics under clients that hold connections without finishing a
# request: ones that connect and send nothing, and ones that send one
# header byte a second (an inactivity timeout never fires for them). Each
# attacker keeps its connections open, reconnecting as soon as the server
# closes one, well past the old 32-connection limit. A scrape (a fresh
# connection, as Prometheus makes) must still get /metrics and /health
# within 2 s, every time, with counters that move, and the run ends
# normally.
. "$(dirname "$0")/lib.sh"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > m.yaml <<YAML
engine: { control: false, metrics: '127.0.0.1:$port' }
sources: { g: { type: generator, count: 100000000, rate: 500 } }
sinks: { out: { type: null, inputs: [g] } }
YAML
"$SLUICE" run m.yaml --quiet --summary-json s.json 2> run.err &
pid=$!
attackers=""
cleanup() {
    for a in $attackers; do kill "$a" 2> /dev/null || true; done
    kill "$pid" 2> /dev/null || true
}
trap 'cleanup; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
up() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' $port 2> /dev/null; }
wait_until up || fail "no metrics: $(cat run.err)"

# attack MODE N: N connections held open (stall: nothing sent; trickle: one
# byte of a never-ending header a second each), reconnected when closed.
# Writes ready-MODE once N are connected, and stats-MODE at the end.
attack() {
    python3 - "$port" "$1" "$2" <<'PY' &
import selectors, socket, sys, time
port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
header = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
sel = selectors.DefaultSelector()
conns = {}  # socket -> bytes sent
stats = {"connects": 0, "closed_by_server": 0, "refused": 0}
def connect():
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        stats["refused"] += 1
        s.close()
        return
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    conns[s] = 0
    stats["connects"] += 1
def drop(s):
    sel.unregister(s)
    del conns[s]
    s.close()
    stats["closed_by_server"] += 1
ready = False
next_byte = time.time() + 1
stop = time.time() + 60
while time.time() < stop:
    while len(conns) < n:
        before = len(conns)
        connect()
        if len(conns) == before:
            time.sleep(0.01)
            break
    if not ready and len(conns) == n:
        open("ready-" + mode, "w").close()
        ready = True
    for key, _ in sel.select(timeout=0.1):
        try:
            gone = key.fileobj.recv(65536) == b""
        except OSError:
            gone = True
        if gone:
            drop(key.fileobj)
    if mode == "trickle" and time.time() >= next_byte:
        next_byte += 1
        for s in list(conns):
            i = conns[s]
            b = header[i:i + 1] or b"a"
            try:
                s.send(b)
                conns[s] = i + 1
            except OSError:
                drop(s)
    with open("stats-" + mode, "w") as f:
        f.write("%s connections open, %s\n" % (len(conns), stats))
PY
    attackers="$attackers $!"
}

# scrape TAG: four scrapes of /metrics and /health half a second apart,
# each on a new connection with a 2 s timeout, none retried.
scrape() {
    python3 - "$port" "$1" <<'PY'
import re, sys, time, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
def get(path):
    t = time.time()
    try:
        with urllib.request.urlopen(base + path, timeout=2) as r:
            body = r.read().decode()
            status = r.status
    except Exception as e:
        sys.exit("%s: %s: %r after %.2f s" % (sys.argv[2], path, e, time.time() - t))
    took = time.time() - t
    assert took < 2, (path, took)
    return status, body, took
outs, worst = [], 0
for _ in range(4):
    st, body, took = get("/health")
    assert (st, body) == (200, "ok\n"), (st, body)
    worst = max(worst, took)
    st, body, took = get("/metrics")
    assert st == 200, st
    worst = max(worst, took)
    m = re.search(r'^sluice_node_records_total\{node="g",kind="out"\} (\d+)$', body, re.M)
    assert m, body[:300]
    assert re.search(r'^sluice_node_info\{node="out",type="null",kind="sink"\} 1$', body, re.M)
    outs.append(int(m.group(1)))
    time.sleep(0.5)
assert outs == sorted(outs) and outs[-1] > outs[0], ("the source did not move", outs)
print("%s: 8 scrapes, slowest %.3f s, g out %d -> %d" % (sys.argv[2], worst, outs[0], outs[-1]))
PY
}

scrape alone || fail "scrape without attackers"

attack stall 150
wait_until test -f ready-stall || fail "stall attacker"
sleep 1
scrape "150 stalled" || fail "scrape with 150 stalled clients: $(cat stats-stall)"

attack trickle 150
wait_until test -f ready-trickle || fail "trickle attacker"
sleep 3 # a few bytes each: every connection has been active lately
scrape "150 stalled + 150 trickling" || fail "scrape with trickling clients: $(cat stats-*)"
sleep 2
scrape "later" || fail "scrape later: $(cat stats-*)"
cat stats-stall stats-trickle

for a in $attackers; do kill "$a" 2> /dev/null || true; done
kill -TERM $pid
wait $pid || fail "run: $(err_of run.err)"
counts_add_up s.json
echo ok
