# --log-format json: every line sluice writes on stderr is one JSON object
# with time, level and msg: warnings (dead letters), the summary (its JSON
# form under "summary"), a config error (with file, line, col, path), a
# runtime failure. A wrong value is a usage error.
. "$(dirname "$0")/lib.sh"
printf '{"id":1}\nnot json\n{"id":2}\n' > in.jsonl
cat > p.yaml <<'YAML'
sources: { f: { type: file, path: in.jsonl } }
sinks: { db: { type: sqlite, inputs: [f], path: out.db, table: t } }
YAML
"$SLUICE" run p.yaml --log-format json 2> err.txt || fail "run: $(cat err.txt)"
python3 - <<'PY' || fail "json lines: $(cat err.txt)"
import json, re
lines = open("err.txt").read().splitlines()
objs = [json.loads(l) for l in lines]          # every line is one object
for o in objs:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o
    assert o["level"] in ("error", "warn", "info", "debug", "progress"), o
    assert isinstance(o["msg"], str), o
warn = [o for o in objs if o["level"] == "warn"]
assert any("dead letter from f (in.jsonl:2)" in o["msg"] for o in warn), warn
summ = [o for o in objs if o["msg"] == "summary"]
assert len(summ) == 1 and summ[0]["summary"]["nodes"]["db"]["out"] == 2, summ
assert summ[0]["summary"]["nodes"]["f"]["dead"] == 1
PY
# A config error: the location as members.
printf 'sources:\n  f: { type: file, path: in.jsonl, format: xml }\nsinks:\n  n: { type: "null", inputs: [f] }\n' > bad.yaml
set +e
"$SLUICE" validate bad.yaml --log-format json 2> err.txt
rc=$?
set -e
[ $rc = 2 ] || fail "config error: exit $rc"
python3 - <<'PY' || fail "config error line: $(cat err.txt)"
import json
[o] = [json.loads(l) for l in open("err.txt").read().splitlines()]
assert o["level"] == "error" and o["file"] == "bad.yaml" and o["line"] == 2 and o["path"] == "sources.f.format", o
assert "xml" in o["msg"], o
PY
# A runtime failure (a glob that matches nothing): an error line, exit 1.
printf 'sources:\n  f: { type: file, path: nothing*.jsonl }\nsinks:\n  n: { type: "null", inputs: [f] }\n' > none.yaml
set +e
"$SLUICE" run none.yaml --log-format=json 2> err.txt
rc=$?
set -e
[ $rc = 1 ] || fail "failure: exit $rc: $(cat err.txt)"
python3 -c '
import json
objs = [json.loads(l) for l in open("err.txt").read().splitlines()]
assert any(o["level"] == "error" and "nothing*.jsonl" in o["msg"] for o in objs), objs
' || fail "failure line: $(cat err.txt)"
set +e
"$SLUICE" run p.yaml --log-format yaml 2> err.txt
rc=$?
set -e
[ $rc = 2 ] && grep -q "log-format takes text or json, not 'yaml'" err.txt || fail "bad value: exit $rc"
echo ok
