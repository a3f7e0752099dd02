# engine.metrics: a request whose head is longer than libmicrohttpd's
# first read buffer is answered at once (the loop gives the library the
# turns MHD_get_timeout asks for, not one a second), and one too long for
# its memory pool gets 431 at once rather than after a minute.
. "$(dirname "$0")/lib.sh"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > m.yaml <<YAML
engine: { control: false, metrics: '127.0.0.1:$port' }
sources: { g: { type: generator, count: 100000000, rate: 100 } }
sinks: { out: { type: null, inputs: [g] } }
YAML
"$SLUICE" run m.yaml --quiet 2> run.err &
pid=$!
trap 'kill $pid 2> /dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
up() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' $port 2> /dev/null; }
wait_until up || fail "no metrics: $(cat run.err)"
python3 - "$port" <<'PY' || fail "long heads"
import socket, sys, time
port = int(sys.argv[1])
def ask(header_bytes):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    t = time.time()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * header_bytes +
              b"\r\nConnection: close\r\n\r\n")
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except socket.timeout:
        pass
    s.close()
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "none"
    took = time.time() - t
    print("head of %d bytes: %s in %.2f s" % (header_bytes, status, took))
    return status, took
for n, want in ((1000, "200"), (6000, "200"), (12000, "200"), (40000, "431")):
    status, took = ask(n)
    assert status == want and took < 2, (n, status, took)
PY
kill -TERM $pid
wait $pid || fail "run: $(err_of run.err)"
echo ok
