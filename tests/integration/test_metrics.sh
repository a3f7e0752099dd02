# engine.metrics: a real scrape of /metrics (Prometheus text format, parsed
# and checked: HELP/TYPE before samples, counters that only grow, counts
# that add up against the summary, a sink latency histogram) and /health
# while a pipeline runs; a client that connects and never finishes its
# request does not hold the run up; a port in use stops run with exit 1.
. "$(dirname "$0")/lib.sh"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > m.yaml <<YAML
engine: { metrics: '127.0.0.1:$port' }
sources: { g: { type: generator, count: 4000, rate: 2000 } }
stages: { f: { type: filter, inputs: [g], where: 'amount > 10' } }
sinks: { db: { type: sqlite, inputs: [f], path: m.db, table: t } }
YAML
"$SLUICE" validate m.yaml || fail "validate"
"$SLUICE" run m.yaml --quiet --summary-json s.json 2> err.txt &
pid=$!
# A client that opens a connection and sends half a request, then holds it.
python3 - "$port" <<'PY' &
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.05)
s.sendall(b"GET /metr")
time.sleep(30)
PY
holder=$!
python3 - "$port" <<'PY' || { kill $pid $holder 2> /dev/null; fail "scrape: $(err_of err.txt)"; }
import re, sys, time, urllib.request, urllib.error
base = "http://127.0.0.1:%s" % sys.argv[1]
def get(path):
    for _ in range(200):
        try:
            with urllib.request.urlopen(base + path, timeout=5) as r:
                return r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, None, e.read().decode()
        except OSError:
            time.sleep(0.05)
    sys.exit("no answer on " + path)
def parse(text):
    """{(name, labels): value}, checking the text format as Prometheus reads it."""
    typed, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
            continue
        m = re.fullmatch(r'([a-z_]+)(\{(.*)\})? ([0-9.e+-]+)', line)
        assert m, "bad line: %r" % line
        name = m.group(1)
        base_name = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base_name in typed, "no TYPE before %s" % name
        labels = tuple(sorted(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
        samples[(name, labels)] = float(m.group(4))
    return samples
st, _, body = get("/health")
assert st == 200 and body == "ok\n", (st, body)
st, ctype, body = get("/metrics")
assert st == 200 and ctype.startswith("text/plain; version=0.0.4"), (st, ctype)
first = parse(body)
time.sleep(0.5)
st, _, body = get("/metrics")
second = parse(body)
for key, v in first.items():
    if key[0].endswith("_total"):
        assert second[key] >= v, ("counter went down", key, v, second[key])
rec = lambda s, node, kind: s[("sluice_node_records_total", (("kind", kind), ("node", node)))]
assert rec(second, "g", "out") > rec(first, "g", "out") > 0, "the source did not move"
assert second[("sluice_node_info", (("kind", "sink"), ("node", "db"), ("type", "sqlite")))] == 1
assert second[("sluice_memory_limit_bytes", ())] == 64 << 20
assert ("sluice_node_queue_capacity", (("node", "db"),)) in second
buckets = sorted((float(dict(k[1])["le"]) if dict(k[1])["le"] != "+Inf" else float("inf"), v)
                 for k, v in second.items() if k[0] == "sluice_sink_latency_seconds_bucket")
assert buckets and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
assert buckets[-1][1] == second[("sluice_sink_latency_seconds_count", (("node", "db"),))] > 0
assert get("/nope")[0] == 404
req = urllib.request.Request(base + "/metrics", data=b"x", method="POST")
try:
    urllib.request.urlopen(req, timeout=5)
    sys.exit("POST answered")
except urllib.error.HTTPError as e:
    assert e.code == 405, e.code
open("last.txt", "w").write(body)
PY
wait $pid || fail "run: $(err_of err.txt)"
kill $holder 2> /dev/null || true
wait $holder 2> /dev/null || true
counts_add_up s.json
[ "$(q m.db 'SELECT count(*) FROM t')" = "$(json s.json 'd["nodes"]["db"]["out"]')" ] || fail "rows"

# The port is taken: run stops before reading anything, exit 1, saying so.
python3 - "$port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
open("bound", "w").close()
time.sleep(20)
PY
taker=$!
wait_until test -f bound || fail "no taker"
set +e
"$SLUICE" run m.yaml --quiet 2> err.txt
rc=$?
set -e
kill $taker 2> /dev/null || true
wait $taker 2> /dev/null || true
[ $rc = 1 ] && grep -q "engine.metrics: cannot listen on 127.0.0.1:$port" err.txt ||
    fail "port in use: exit $rc: $(cat err.txt)"
echo ok
