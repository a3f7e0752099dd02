# A record that would take the table past SQLite's 2000 columns is a dead
# letter, and adds none of its columns (probe): the columns it added before
# the limit stayed, the table ended at exactly 2000, and every later record
# with a new field was a dead letter too, in that run and the next ones.
. "$(dirname "$0")/lib.sh"
python3 - <<'PY'
import json
with open("in.jsonl", "w") as f:
    f.write(json.dumps({"id": 1}) + "\n")
    f.write(json.dumps({"c%d" % i: i for i in range(2100)}) + "\n")
    f.write(json.dumps({"id": 3, "note": "hello"}) + "\n")
PY
cat > p.yaml <<'YAML'
sources:
  s: { type: file, path: in.jsonl }
sinks:
  k: { type: sqlite, inputs: [s], path: out/o.db, table: t }
dead_letter: { type: sqlite, path: out/o.db, table: rejects }
YAML
"$SLUICE" run p.yaml 2> run.log > /dev/null || fail "run: $(cat run.log)"
[ "$(q out/o.db "SELECT count(*) FROM pragma_table_info('t')")" = 2 ] ||
    fail "columns: $(q out/o.db "SELECT count(*) FROM pragma_table_info('t')"), want 2 (id, note)"
[ "$(q out/o.db 'SELECT group_concat(id) FROM t')" = "1,3" ] || fail "rows: $(q out/o.db 'SELECT * FROM t')"
[ "$(q out/o.db 'SELECT _line || ": " || _error FROM rejects')" = \
  "2: adding a column: the table would have more than 2000 columns, SQLite's limit" ] ||
    fail "dead letters: $(q out/o.db 'SELECT _line, _error FROM rejects')"
echo ok
