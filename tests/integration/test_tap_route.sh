# sluice tap on a route node prints each record once (the node's output is
# every record, once), and a route output (`r.big`, a name `inputs` takes)
# can be tapped too.
. "$(dirname "$0")/lib.sh"
export XDG_RUNTIME_DIR=$WORK/run
mkdir -m 700 run
cat > p.yaml <<'YAML'
sources: { g: { type: generator, count: 10000000, rate: 2000 } }
stages:
  r: { type: route, inputs: [g], routes: { big: 'amount > 500', small: 'amount <= 500' } }
sinks:
  n: { type: "null", inputs: [r.big] }
  m: { type: "null", inputs: [r.small] }
YAML
"$SLUICE" run p.yaml --quiet 2> run.err &
pid=$!
trap 'kill $pid 2> /dev/null; rm -rf "$WORK"' EXIT
wait_until sh -c 'ls run/*.sock > /dev/null 2>&1' || fail "no socket: $(cat run.err)"
"$SLUICE" tap p.yaml r --limit 40 > tap.txt 2> err.txt || fail "tap r: $(cat err.txt)"
python3 - <<'PY' || fail "tap r: records repeated: $(cut -c1-40 tap.txt | head -6)"
import json
ids = [json.loads(l)["id"] for l in open("tap.txt")]
assert len(ids) == 40 and len(set(ids)) == 40, (len(ids), len(set(ids)))
PY
"$SLUICE" tap p.yaml r.big --limit 5 > big.txt 2> err.txt || fail "tap r.big: $(cat err.txt)"
python3 -c "
import json
rows = [json.loads(l) for l in open('big.txt')]
assert len(rows) == 5 and all(r['amount'] > 500 for r in rows), rows" || fail "tap r.big: $(cat big.txt)"
echo ok
