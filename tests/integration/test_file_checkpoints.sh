# A file source's `checkpoints:` file gives sinks that keep no positions
# (file sink here) a resume point: a second run reads nothing again, new
# lines appended to an input are all that the next run adds, and a run
# killed with -9 and restarted loses nothing (at least once: the replay is
# at most what was not yet acknowledged).
. "$(dirname "$0")/lib.sh"
N=$((200000 / SCALE))
gen_orders data/o.jsonl "$N" 6
cat > p.yaml <<'YAML'
sources:
  orders: { type: file, path: 'data/*.jsonl', checkpoints: state/positions.db }
sinks:
  out: { type: file, inputs: [orders], path: out/copy.jsonl }
YAML
"$SLUICE" run p.yaml --quiet || fail "first run"
[ "$(wc -l < out/copy.jsonl)" = "$N" ] || fail "first run lines"
"$SLUICE" run p.yaml --quiet || fail "second run"
[ "$(wc -l < out/copy.jsonl)" = "$N" ] || fail "second run read the file again: $(wc -l < out/copy.jsonl)"
head -100 data/o.jsonl | sed 's/"id":\([0-9]*\)/"id":-\1/' >> data/o.jsonl
"$SLUICE" run p.yaml --quiet || fail "third run"
[ "$(wc -l < out/copy.jsonl)" = "$((N + 100))" ] || fail "appended lines: $(wc -l < out/copy.jsonl)"
[ "$(grep -c '"id":-' out/copy.jsonl)" = 100 ] || fail "the new lines"
q state/positions.db "SELECT tbl, position FROM _sluice_checkpoints" | grep -q "^_sluice_source:orders|" || fail "positions table"

# kill -9 and restart: nothing lost.
rm -rf out state
"$SLUICE" run p.yaml --quiet &
pid=$!
wait_until test -s out/copy.jsonl || fail "no output"
sleep 1.2 # one checkpoint period
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
"$SLUICE" run p.yaml --quiet || fail "restart"
python3 - "$N" <<'PY' || fail "lost records after kill -9"
import json, sys
n = int(sys.argv[1])
ids = [json.loads(l)["id"] for l in open("out/copy.jsonl")]
have = set(ids)
missing = [i for i in range(1, n + 1) if i not in have] + [i for i in range(-100, 0) if i not in have]
assert not missing, "missing %d records, e.g. %s" % (len(missing), missing[:5])
print("replayed", len(ids) - len(have), "records")
PY
echo "ok"
