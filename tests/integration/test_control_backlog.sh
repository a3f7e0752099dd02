# sluice top gives up on a control socket whose listener takes no
# connection (its backlog full: a stopped sluice, or one ending) within a
# few seconds, instead of blocking in connect() for as long as it stays so.
. "$(dirname "$0")/lib.sh"
cat > hold.py << 'PY'
import os, socket, sys, time
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(p)
os.chmod(p, 0o600)
s.listen(0)
held = []
for _ in range(8):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(p)
    except BlockingIOError:
        pass
    held.append(c)
open(p + ".ready", "w").close()
time.sleep(60)
PY
python3 hold.py "$WORK/c.sock" &
holder=$!
trap 'kill $holder 2> /dev/null; rm -rf "$WORK"' EXIT
WAIT_TIMEOUT=10 wait_until test -e "$WORK/c.sock.ready" || fail "the listener did not start"
start=$(date +%s)
run_rc timeout 50 "$SLUICE" top "$WORK/c.sock" -n 1 > out.txt 2> err.txt
took=$(($(date +%s) - start))
[ $rc = 1 ] || fail "top on a full backlog: exit $rc after ${took}s: $(cat err.txt)"
[ $took -lt 30 ] || fail "top waited ${took}s"
echo "ok"
