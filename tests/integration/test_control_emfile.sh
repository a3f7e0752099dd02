# A client waiting to be accepted while the process has no file
# descriptor left (accept fails with EMFILE) does not make the loop thread
# spin: the listening socket stays readable, and polling it again at once
# took a core until a descriptor came free. The run goes on and ends
# normally, and the client is served once descriptors are back.
. "$(dirname "$0")/lib.sh"
cat > p.yaml <<YAML
engine: { control: $WORK/c.sock }
sources: { g: { type: generator, count: 100000000, rate: 10 } }
sinks: { f: { type: file, inputs: [g], path: out.jsonl } }
YAML
"$SLUICE" run p.yaml --quiet 2> run.err &
pid=$!
wait_until test -S c.sock || fail "no socket: $(cat run.err)"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# The lowest free descriptor number as the limit: every new descriptor
# fails with EMFILE, and ppoll's descriptors (a handful) stay under it.
lowest_free=$(python3 -c 'import os,sys; u={int(f) for f in os.listdir("/proc/%s/fd" % sys.argv[1])}; print(min(set(range(len(u) + 1)) - u))' $pid)
[ "$lowest_free" -ge 5 ] || fail "descriptors: $(ls /proc/$pid/fd)"
prlimit --nofile=$lowest_free:1024 --pid $pid
python3 - <<'PY' &
import socket, time
s = socket.socket(socket.AF_UNIX)
s.connect("c.sock")  # queued: the run cannot accept it
s.sendall(b"stats\n")
time.sleep(3)
s.settimeout(30)
data = b""
while not data.endswith(b"\n"):
    d = s.recv(65536)
    if not d:
        break
    data += d
open("stats.json", "wb").write(data)
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
python3 -c 'import json; json.load(open("stats.json"))' || fail "the client was not served after: $(head -c 200 stats.json)"
echo ok
