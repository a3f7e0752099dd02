# Clients that connect to the control socket and never send a request do
# not hold its eight places for ever: each is told so and closed after
# 10 s, and sluice top gets in again (it asks again while refused).
. "$(dirname "$0")/lib.sh"
cat > p.yaml <<YAML
engine: { control: $WORK/c.sock }
sources: { g: { type: generator, count: 100000000, rate: 50 } }
sinks: { f: { type: file, inputs: [g], path: out.jsonl } }
YAML
"$SLUICE" run p.yaml --quiet 2> run.err &
pid=$!
wait_until test -S c.sock || fail "no socket: $(cat run.err)"
python3 - <<'PY' &
import socket, time
idle = []
for _ in range(8):
    s = socket.socket(socket.AF_UNIX)
    s.connect("c.sock")
    idle.append(s)
open("idle", "w").close()
s = idle[0]
s.settimeout(60)
got = s.recv(200)
open("told.txt", "wb").write(got)
time.sleep(60)
PY
holder=$!
trap 'kill $holder 2> /dev/null || true; kill -TERM $pid 2> /dev/null || true; rm -rf "$WORK"' EXIT
wait_until test -f idle || fail "the idle clients"
top_ok() { "$SLUICE" top c.sock -n 1 > top.txt 2> /dev/null; }
WAIT_TIMEOUT=40 wait_until top_ok || fail "idle clients kept the socket full"
grep -q '^sluice top: ' top.txt || fail "top: $(cat top.txt)"
wait_until test -s told.txt || fail "the idle client was told nothing"
grep -q '^#error no request' told.txt || fail "told: $(cat told.txt)"
kill $holder 2> /dev/null || true
wait $holder 2> /dev/null || true
kill -TERM $pid
wait $pid || fail "run: $(err_of run.err)"
echo ok
