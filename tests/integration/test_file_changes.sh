# Files that change between runs: a file that grew is resumed where the
# last run stopped (only the new lines are loaded); a different file under
# the same path is read from the start with a warning.
. "$(dirname "$0")/lib.sh"
mkdir -p data
python3 -c "
for i in range(1, 1001): print('{\"id\": %d, \"pad\": \"%s\"}' % (i, 'x' * 20))" > data/a.jsonl
cat > p.yaml <<'YAML'
sources:
  src: { type: file, path: data/a.jsonl }
sinks:
  db: { type: sqlite, inputs: [src], path: out/t.db, table: t }
YAML
"$SLUICE" run p.yaml --quiet || fail "first run"
python3 -c "
for i in range(1001, 1101): print('{\"id\": %d, \"pad\": \"%s\"}' % (i, 'x' * 20))" >> data/a.jsonl
"$SLUICE" run p.yaml 2> err.txt > /dev/null || fail "second run"
! grep -q "not the file read before" err.txt || fail "a grown file was taken for a new one"
[ "$(q out/t.db 'SELECT count(*), count(DISTINCT id), max(id) FROM t')" = "1100|1100|1100" ] || fail "grown file: $(q out/t.db 'SELECT count(*), count(DISTINCT id) FROM t')"
# A different file under the same path.
python3 -c "
for i in range(5001, 5051): print('{\"id\": %d}' % i)" > data/a.jsonl
"$SLUICE" run p.yaml 2> err.txt > /dev/null || fail "third run"
grep -q "not the file read before" err.txt || fail "no warning for a replaced file"
[ "$(q out/t.db 'SELECT count(*) FROM t WHERE id > 5000')" = 50 ] || fail "replaced file not read from the start"
echo "ok"
