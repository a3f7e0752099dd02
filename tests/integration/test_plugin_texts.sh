# What a plugin writes that sluice passes on, kept tidy: a dead letter's
# reason (from host->dead) is valid UTF-8 and bounded, in SQLite, in JSON
# and in the log; the plugin's debug lines show only at
# engine.log_level: debug; a log line or init error with line breaks or
# control characters stays one line (escaped) in the text log and one
# JSON object with --log-format json. With the probe plugin's `messy`
# and `init_fails_lines` builds (tests/harness/bad_plugin.c).
. "$(dirname "$0")/lib.sh"
TP=$(dirname "$SLUICE")/test-plugins

python3 - <<'PY'
import json
with open("in.jsonl", "w") as f:
    for i in range(1, 1001):
        f.write(json.dumps({"id": i, "bad": i % 10 == 2}) + "\n")
PY
cat > m.yaml <<YAML
engine: { plugin_path: [$TP/messy] }
sources: { f: { type: file, path: in.jsonl } }
stages: { p: { type: probe, inputs: [f] } }
sinks:
  db: { type: sqlite, inputs: [p], path: out.db, table: t }
  js: { type: file, inputs: [p], path: out.jsonl }
dead_letter: { type: sqlite, path: out.db, table: rejects }
YAML

# utf8_lines FILE: every line of FILE valid UTF-8, without control
# characters (tabs aside); prints how many lines.
utf8_lines() {
    python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
text = data.decode("utf-8")  # strict: fails on an invalid byte
bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7f]
assert not bad, "control characters: %r" % bad[:5]
print(len(text.splitlines()))
PY
}

# ---- dead letters: the reason as stored ----
"$SLUICE" run m.yaml --summary-json s.json 2> run.err || fail "run: $(err_of run.err)"
counts_add_up s.json
[ "$(json s.json 'd["nodes"]["p"]["dead"]')" = 100 ] || fail "dead: $(cat s.json)"
python3 - <<'PY' || fail "the reason in SQLite"
import sqlite3
db = sqlite3.connect("out.db")
db.text_factory = bytes
rows = db.execute("SELECT _error FROM rejects").fetchall()
assert len(rows) == 100, len(rows)
for (e,) in rows:
    t = e.decode("utf-8")  # strict
    assert t.startswith("probe:\ufffd\ufffd\u00e9\u00e9"), repr(t[:20])
    assert set(t[8:]) == {"\u00e9"}, repr(t[:40])
    assert 100 < len(e) <= 4096, len(e)
PY

# ---- the same dead letters into a JSON file, and logged without a store ----
sed -e 's/^dead_letter: .*$/dead_letter: { type: file, path: dead.jsonl }/' m.yaml > j.yaml
"$SLUICE" run j.yaml --quiet 2> j.err || fail "run with a file store: $(err_of j.err)"
python3 - <<'PY' || fail "the reason in JSON: $(head -c 300 dead.jsonl)"
import json
rows = [json.loads(l) for l in open("dead.jsonl", "rb").read().decode("utf-8").splitlines()]
assert len(rows) == 100 and all(r["_error"].startswith("probe:\ufffd\ufffd\u00e9") for r in rows)
PY
grep -v '^dead_letter' m.yaml > n.yaml
"$SLUICE" run n.yaml 2> n.err || fail "run without a store: $(err_of n.err)"
utf8_lines n.err > /dev/null || fail "the log of dead letters: $(head -c 300 n.err)"
grep -q "probe:" n.err || fail "no dead letter logged: $(cat n.err)"

# ---- debug lines: only at log_level debug ----
grep -q "debug from" run.err && fail "debug lines at the default level: $(grep 'debug from' run.err | head -3)"
"$SLUICE" run n.yaml --set engine.log_level=debug 2> d.err || fail "run at debug: $(err_of d.err)"
grep -q "^sluice: debug: node 'p': debug from init$" d.err || fail "no init debug line: $(head d.err)"
grep -q "^sluice: debug: node 'p': debug from process: [0-9]* records$" d.err ||
    fail "no process debug line: $(head d.err)"
"$SLUICE" run n.yaml --set engine.log_level=warn 2> w.err || fail "run at warn: $(err_of w.err)"
grep -q "info from init" w.err && fail "an info line at warn: $(cat w.err)"
grep -q "warning from process" w.err || fail "no warning at warn: $(head w.err)"

# ---- one message, one line ----
n=$(utf8_lines run.err) || fail "the text log: $(head -c 300 run.err)"
grep -qF "sluice: node 'p': info from init:\nsecond line\x1b[31m red" run.err ||
    fail "the info line: $(grep -a 'info from' run.err)"
grep -qF "sluice: warning: node 'p': warning from process:\n\tindented \x7f\x01 and �" run.err ||
    fail "the warning: $(grep -a -A1 'warning from' run.err | head -3)"
grep -q "^second line" run.err && fail "a message split over lines"
"$SLUICE" run n.yaml --log-format json --set engine.log_level=debug 2> json.err ||
    fail "run, json: $(err_of json.err)"
python3 - <<'PY' || fail "the JSON log: $(head -c 500 json.err)"
import json
lines = open("json.err", "rb").read().decode("utf-8").splitlines()
msgs = [json.loads(l) for l in lines]
info = [m for m in msgs if "info from init" in m["msg"]]
assert info and info[0]["msg"] == "node 'p': info from init:\nsecond line\x1b[31m red", info
warn = [m for m in msgs if "warning from process" in m["msg"]]
assert warn and warn[0]["level"] == "warn", warn[:1]
assert warn[0]["msg"] == "node 'p': warning from process:\n\tindented \x7f\x01 and \ufffd", warn[0]
assert any(m["level"] == "debug" and m["msg"] == "node 'p': debug from init" for m in msgs)
PY

# ---- an init error of several lines ----
sed "s|$TP/messy|$TP/init_fails_lines|; s|out\.db|f.db|" n.yaml > f.yaml
set +e
"$SLUICE" run f.yaml 2> f.err
rc=$?
set -e
[ $rc = 1 ] || fail "init fails: exit $rc: $(cat f.err)"
[ "$(utf8_lines f.err)" = 1 ] || fail "init error over several lines: $(cat -A f.err)"
grep -qF "init failed: no table:\nline two\r\x1b[2Jline three" f.err || fail "init error: $(cat -A f.err)"
set +e
"$SLUICE" run f.yaml --log-format json 2> fj.err
rc=$?
set -e
[ $rc = 1 ] || fail "init fails, json: exit $rc: $(cat fj.err)"
python3 - <<'PY' || fail "init error, json: $(cat fj.err)"
import json
lines = open("fj.err", "rb").read().decode("utf-8").splitlines()
assert len(lines) == 1, lines
m = json.loads(lines[0])
assert m["level"] == "error" and m["msg"].endswith("init failed: no table:\nline two\r\x1b[2Jline three"), m
PY
echo ok
