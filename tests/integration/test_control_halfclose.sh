# The control socket answers a client that shuts down its sending side
# after its request (nc -N, socat, a script's shutdown(SHUT_WR)) in full:
# the reply of a pipeline with many nodes is larger than the socket's
# buffer, and the end of the request is not a client that went away.
. "$(dirname "$0")/lib.sh"
python3 - > p.yaml <<'PY'
name = "stage_with_a_long_name_" * 12
print("engine: { control: ./c.sock }")
print("sources: { g: { type: generator, count: 100000000, rate: 200 } }")
print("stages:")
prev = "g"
for i in range(800):
    print(f"  {name}{i}: {{ type: filter, inputs: [{prev}], where: 'amount > -1' }}")
    prev = f"{name}{i}"
print(f"sinks: {{ db: {{ type: sqlite, inputs: [{prev}], path: out.db, table: t }} }}")
PY
"$SLUICE" run p.yaml --quiet 2> run.err &
pid=$!
live() { "$SLUICE" top c.sock -n 1 > /dev/null 2>&1; }
wait_until live || { kill $pid; fail "the run never answered: $(err_of run.err)"; }
python3 - <<'PY' || { kill $pid; fail "half-closed stats"; }
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect("c.sock")
s.sendall(b"stats\n")
s.shutdown(socket.SHUT_WR)
time.sleep(0.5)  # the server sees the end of the request before it sent the reply
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
try:
    st = json.loads(data)
except ValueError:
    sys.exit("a cut reply: %d bytes, ends %r" % (len(data), data[-40:]))
assert len(data) > 300000, len(data)  # more than a socket buffer
assert len(st["nodes"]) == 802, len(st["nodes"])
PY
kill -TERM $pid
wait $pid || fail "run: $(err_of run.err)"
echo ok
