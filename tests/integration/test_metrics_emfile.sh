# An HTTP client of engine.metrics waiting to be accepted while the process
# has no file descriptor left (libmicrohttpd's accept fails with EMFILE and
# it keeps its listening socket in its epoll set) does not make the loop
# thread spin on the epoll descriptor. The run goes on and ends normally,
# and the scrape is answered once descriptors are back.
. "$(dirname "$0")/lib.sh"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > p.yaml <<YAML
engine: { control: false, metrics: '127.0.0.1:$port' }
sources: { g: { type: generator, count: 100000000, rate: 10 } }
sinks: { f: { type: file, inputs: [g], path: out.jsonl } }
YAML
"$SLUICE" run p.yaml --quiet 2> run.err &
pid=$!
up() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' $port 2> /dev/null; }
wait_until up || fail "no metrics: $(cat run.err)"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# The lowest free descriptor number as the limit: every new descriptor
# fails with EMFILE, and ppoll's descriptors (a handful) stay under it.
lowest_free=$(python3 -c 'import os,sys; u={int(f) for f in os.listdir("/proc/%s/fd" % sys.argv[1])}; print(min(set(range(len(u) + 1)) - u))' $pid)
[ "$lowest_free" -ge 5 ] || fail "descriptors: $(ls /proc/$pid/fd)"
prlimit --nofile=$lowest_free:1024 --pid $pid
python3 - $port <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))  # queued: not accepted
s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
time.sleep(3)
s.settimeout(30)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
open("scrape.txt", "wb").write(data)
PY
client=$!
sleep 0.5
before=$(cpu)
sleep 2
after=$(cpu)
prlimit --nofile=1024:1024 --pid $pid
wait $client || fail "the client"
kill -TERM $pid
wait $pid || fail "run: $(err_of run.err)"
ticks=$((after - before))
hz=$(getconf CLK_TCK)
# Spinning is about a core (2 s of CPU in 2 s); an idle run, nothing.
[ $ticks -lt $((hz / 2)) ] || fail "the run used $ticks ticks (of $hz a second) in 2 s with a client it could not accept"
grep -q '^sluice_node_records_total{node="g",kind="out"}' scrape.txt || fail "the scrape was not answered after: $(head -c 200 scrape.txt)"
echo ok
