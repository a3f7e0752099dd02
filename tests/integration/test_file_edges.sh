# Edges of file input (issue 6): a last line still being written is left
# unread, not dead-lettered, and lands once when finished (finding 8); a CSV
# file with a bad header turns each of its rows into a dead letter (9); a
# truncated .lz4 file is read as far as it goes and the next files load, a
# damaged one is one dead letter, a plain file named .lz4 is "not an LZ4
# frame" (13); globs skip directories, a mid-file BOM is named (16). Every
# run's summary must add up: in = out + dropped + dead for every node.
. "$(dirname "$0")/lib.sh"

# check_counts ERRFILE: every summary row has in = out + dropped + dead.
check_counts() {
    awk '$1 == "node" { on = 1; next } /^elapsed / { on = 0 } on && NF == 8 {
            if ($4 != $5 + $6 + $7) { print "node " $1 ": in " $4 " != out " $5 " + dropped " $6 " + dead " $7; bad = 1 }
            rows++
        } END { if (!rows) { print "no summary"; bad = 1 } exit bad }' "$1" || fail "counts in $1: $(cat "$1")"
}

# summary_of ERRFILE NODE: "in out dropped dead" of NODE.
summary_of() {
    awk -v n="$2" '$1 == n && NF == 8 { print $4, $5, $6, $7 }' "$1"
}

# rejects DB: the number of dead letters stored (0 without the table).
rejects() {
    if [ "$(q "$1" "SELECT count(*) FROM sqlite_master WHERE name = 'rejects'")" = 1 ]; then
        q "$1" "SELECT count(*) FROM rejects"
    else
        echo 0
    fi
}

run() {
    local name=$1
    shift
    "$SLUICE" run "$@" 2> "$name.err" > /dev/null || fail "$name: exit $?: $(cat "$name.err")"
    check_counts "$name.err"
}

# ---- Finding 8: a last line without a line break ----
mkdir -p j c
printf '{"id":1}\n{"id":2,"name":"ha' > j/a.jsonl
printf 'id,name,n\n1,x,10\n2,"two\nlines' > c/a.csv
python3 -c "import sys; sys.stdout.write('{\"id\":1}\\n{\"big\":\"' + 'x' * 3000)" > j/long.jsonl
cat > p8.yaml <<'YAML'
sources:
  j: { type: file, path: j/a.jsonl }
  c: { type: file, path: c/a.csv, format: csv }
  l: { type: file, path: j/long.jsonl, max_line: 1KiB }
sinks:
  jdb: { type: sqlite, inputs: [j], path: out/t.db, table: j }
  cdb: { type: sqlite, inputs: [c], path: out/t.db, table: c }
  ldb: { type: sqlite, inputs: [l], path: out/t.db, table: l }
dead_letter: { type: sqlite, path: out/t.db, table: rejects }
YAML
run r8a p8.yaml
[ "$(rejects out/t.db)" = 0 ] || fail "half a line became a dead letter: $(q out/t.db 'SELECT _file, _line, _error FROM rejects')"
grep -q "j/a.jsonl: line 2 has no line break yet and does not decode" r8a.err || fail "no warning for the json half line: $(cat r8a.err)"
grep -q "c/a.csv: line 3 starts a row that has no line break after it yet and does not decode" r8a.err || fail "no warning for the csv half row: $(cat r8a.err)"
grep -q "j/long.jsonl: line 2 .*left unread" r8a.err || fail "no warning for the long half line: $(cat r8a.err)"
[ "$(summary_of r8a.err j)" = "1 1 0 0" ] || fail "json summary: $(summary_of r8a.err j)"
[ "$(q out/t.db 'SELECT group_concat(id) FROM j')" = 1 ] || fail "json first run: $(q out/t.db 'SELECT * FROM j')"
[ "$(q out/t.db 'SELECT group_concat(id) FROM c')" = 1 ] || fail "csv first run: $(q out/t.db 'SELECT * FROM c')"
# The writer finishes the lines (and a complete last line without a line
# break is a record at once).
printf 'lf"}\n{"id":3}\n{"id":4}' >> j/a.jsonl
printf '",20\n3,y,30\n' >> c/a.csv
printf 'x"}\n{"id":3}\n' >> j/long.jsonl
run r8b p8.yaml
# The long line, finished, is one dead letter (as it would have been whole).
[ "$(q out/t.db "SELECT group_concat(_file || ':' || _line || ':' || _error, ' / ') FROM rejects")" = "j/long.jsonl:2:line longer than max_line (1024 bytes)" ] || fail "dead letters after the lines were finished: $(q out/t.db 'SELECT _file, _line, _error FROM rejects')"
[ "$(q out/t.db 'SELECT group_concat(id) FROM (SELECT id FROM l ORDER BY id)')" = "1,3" ] || fail "long file records: $(q out/t.db 'SELECT * FROM l')"
! grep -q "no line break yet" r8b.err || fail "warning for a line that decodes: $(cat r8b.err)"
[ "$(q out/t.db "SELECT group_concat(id || ':' || coalesce(name, ''), ' ') FROM (SELECT * FROM j ORDER BY id)")" = "1: 2:half 3: 4:" ] || fail "json records: $(q out/t.db 'SELECT * FROM j')"
[ "$(q out/t.db "SELECT group_concat(id || ':' || name || ':' || n, ' ') FROM (SELECT * FROM c ORDER BY id)")" = "$(printf '1:x:10 2:two\nlines:20 3:y:30')" ] || fail "csv records: $(q out/t.db 'SELECT * FROM c')"
# The unterminated '{"id":4}' was read; its line break and one more line
# later add only the new line.
printf '\n{"id":5}\n' >> j/a.jsonl
run r8c p8.yaml
[ "$(q out/t.db 'SELECT count(*), count(DISTINCT id), max(id) FROM j')" = "5|5|5" ] || fail "json after the last line was ended: $(q out/t.db 'SELECT * FROM j')"
[ "$(rejects out/t.db)" = 1 ] || fail "third run: $(q out/t.db 'SELECT _file, _line, _error FROM rejects')"

# The same through a file sink and the source's `checkpoints:` file.
mkdir -p k
printf '{"id":1}\n{"id":' > k/a.jsonl
cat > p8k.yaml <<'YAML'
sources:
  k: { type: file, path: k/a.jsonl, checkpoints: out/pos.db }
sinks:
  f: { type: file, inputs: [k], path: out/k.jsonl }
YAML
run r8k1 p8k.yaml
grep -q "no line break yet" r8k1.err || fail "no warning (checkpoints): $(cat r8k1.err)"
printf '2}\n' >> k/a.jsonl
run r8k2 p8k.yaml
[ "$(tr -d ' ' < out/k.jsonl | tr '\n' ' ')" = '{"id":1} {"id":2} ' ] || fail "file sink output: $(cat out/k.jsonl)"

# ---- Finding 9: a CSV header that cannot name the columns ----
mkdir -p h
printf 'id,name,id\n1,a,2\n\n2,"b\nc",3\n3,d\n' > h/a_bad.csv
printf 'id,,n\n1,a,2\n' > h/b_empty.csv
printf 'id,name,n\n7,ok,1\n' > h/c_good.csv
cat > p9.yaml <<'YAML'
sources:
  h: { type: file, path: 'h/*.csv', format: csv }
sinks:
  db: { type: sqlite, inputs: [h], path: out/h.db, table: h }
dead_letter: { type: sqlite, path: out/h.db, table: rejects }
YAML
run r9a p9.yaml
[ "$(summary_of r9a.err h)" = "5 1 0 4" ] || fail "bad header summary: $(summary_of r9a.err h), want 5 1 0 4"
[ "$(q out/h.db "SELECT group_concat(_line || '|' || _error, ' / ') FROM (SELECT * FROM rejects WHERE _file = 'h/a_bad.csv' ORDER BY _line)")" = "2|bad CSV header (line 1): duplicate column name id / 4|bad CSV header (line 1): duplicate column name id / 6|bad CSV header (line 1): duplicate column name id" ] || fail "bad header dead letters: $(q out/h.db 'SELECT _file, _line, _error FROM rejects')"
[ "$(q out/h.db "SELECT _raw FROM rejects WHERE _file = 'h/a_bad.csv' AND _line = 4")" = "$(printf '2,"b\nc",3')" ] || fail "a row's raw text"
[ "$(q out/h.db "SELECT _error FROM rejects WHERE _file = 'h/b_empty.csv'")" = "bad CSV header (line 1): empty column name (column 2)" ] || fail "empty column name: $(q out/h.db 'SELECT _file, _error FROM rejects')"
grep -q "h/a_bad.csv: bad CSV header (line 1): duplicate column name id: its rows are dead letters" r9a.err || fail "no warning for the bad header: $(cat r9a.err)"
[ "$(q out/h.db 'SELECT id FROM h')" = 7 ] || fail "the good file after the bad ones"
# The rows were delivered (as dead letters): a rerun adds nothing.
run r9b p9.yaml
[ "$(rejects out/h.db)" = 4 ] || fail "bad header rows dead-lettered again: $(rejects out/h.db)"
# A fixed header makes a new file: its rows load.
printf 'id,name,id2\n1,a,2\n\n2,"b\nc",3\n3,d,4\n' > h/a_bad.csv
run r9c p9.yaml
[ "$(q out/h.db 'SELECT group_concat(id) FROM (SELECT id FROM h ORDER BY id)')" = "1,2,3,7" ] || fail "fixed header: $(q out/h.db 'SELECT * FROM h')"

# ---- Finding 13: .lz4 files that are truncated, damaged or not LZ4 ----
mkdir -p z
python3 -c "
for i in range(1, 20001): print('{\"id\": %d, \"pad\": \"%s\"}' % (i, 'abcdefghij' * 4))" > full.jsonl
lz4 -q -B4 full.jsonl full.lz4 # 64 KiB blocks: a cut file still decodes its first blocks
size=$(stat -c %s full.lz4)
head -c $((size * 2 / 3)) full.lz4 > z/a_trunc.jsonl.lz4
python3 -c "
d = bytearray(open('full.lz4', 'rb').read())
for i in range(len(d) // 2, len(d) // 2 + 40): d[i] ^= 0x5a
open('z/b_damaged.jsonl.lz4', 'wb').write(d)"
printf '{"id": -1}\n{"id": -2}\n' > z/c_plain.jsonl.lz4
printf '{"id": -3}\n' > z/d_last.jsonl
cat > p13.yaml <<'YAML'
sources:
  z: { type: file, path: 'z/*' }
stages:
  tag: { type: map, inputs: [z], set: { f: '@file' } }
sinks:
  db: { type: sqlite, inputs: [tag], path: out/z.db, table: z }
dead_letter: { type: sqlite, path: out/z.db, table: rejects }
YAML
run r13a p13.yaml
grep -q "z/a_trunc.jsonl.lz4: ends inside an LZ4 frame" r13a.err || fail "no warning for the truncated file: $(cat r13a.err)"
grep -q "z/c_plain.jsonl.lz4: not an LZ4 frame" r13a.err || fail "no human message for a plain .lz4: $(cat r13a.err)"
! grep -q "ERROR_" r13a.err || fail "a raw liblz4 error name: $(cat r13a.err)"
[ "$(q out/z.db "SELECT count(*) FROM z WHERE f = 'z/d_last.jsonl'")" = 1 ] || fail "the file after the .lz4 ones was not read"
trunc=$(q out/z.db "SELECT count(*) FROM z WHERE f = 'z/a_trunc.jsonl.lz4'")
[ "$trunc" -gt 1000 ] && [ "$trunc" -lt 20000 ] || fail "truncated file: $trunc records"
[ "$(q out/z.db "SELECT count(*) = max(id) FROM z WHERE f = 'z/a_trunc.jsonl.lz4'")" = 1 ] || fail "truncated file: not a prefix"
[ "$(q out/z.db "SELECT count(*) FROM rejects WHERE _file = 'z/a_trunc.jsonl.lz4'")" = 0 ] || fail "the truncated file's cut line became a dead letter"
[ "$(q out/z.db "SELECT _error FROM rejects WHERE _file = 'z/c_plain.jsonl.lz4'")" = "not an LZ4 frame" ] || fail "plain .lz4 dead letter: $(q out/z.db 'SELECT _file, _error FROM rejects')"
[ "$(q out/z.db "SELECT _raw FROM rejects WHERE _file = 'z/c_plain.jsonl.lz4'")" = "$(cat z/c_plain.jsonl.lz4)" ] || fail "plain .lz4 raw"
q out/z.db "SELECT _error FROM rejects WHERE _file = 'z/b_damaged.jsonl.lz4'" | grep -q "^damaged LZ4 data" || fail "damaged .lz4: $(q out/z.db 'SELECT _file, _error FROM rejects')"
damaged=$(q out/z.db "SELECT count(*) FROM z WHERE f = 'z/b_damaged.jsonl.lz4'")
[ "$damaged" -gt 1000 ] && [ "$damaged" -lt 20000 ] || fail "damaged file: $damaged records before the damage"
[ "$(summary_of r13a.err z)" = "$((trunc + damaged + 3)) $((trunc + damaged + 1)) 0 2" ] || fail "summary: $(summary_of r13a.err z)"
# Once the writer is done, the truncated file loads the rest exactly once;
# the damaged and plain files are not dead-lettered twice.
cp full.lz4 z/a_trunc.jsonl.lz4
run r13b p13.yaml
! grep -q "ends inside an LZ4 frame\|not an LZ4 frame\|damaged" r13b.err || fail "second run: $(cat r13b.err)"
[ "$(q out/z.db "SELECT count(*), count(DISTINCT id) FROM z WHERE f = 'z/a_trunc.jsonl.lz4'")" = "20000|20000" ] || fail "completed .lz4: $(q out/z.db "SELECT count(*), count(DISTINCT id) FROM z WHERE f = 'z/a_trunc.jsonl.lz4'")"
[ "$(rejects out/z.db)" = 2 ] || fail "dead letters after the second run: $(q out/z.db 'SELECT _file, _error FROM rejects')"
[ "$(q out/z.db 'SELECT count(*) FROM z')" = "$((20000 + damaged + 1))" ] || fail "second run added records: $(q out/z.db 'SELECT f, count(*) FROM z GROUP BY f')"

# ---- Finding 16: directories in a glob; a byte-order mark mid-file ----
mkdir -p g/sub.jsonl g/only/d1 g/only/d2
printf '{"id":1}\n\xef\xbb\xbf{"id":2}\n' > g/a.jsonl
cat > p16.yaml <<'YAML'
sources:
  g: { type: file, path: 'g/*.jsonl' }
sinks:
  db: { type: sqlite, inputs: [g], path: out/g.db, table: g }
dead_letter: { type: sqlite, path: out/g.db, table: rejects }
YAML
run r16a p16.yaml
[ "$(q out/g.db 'SELECT group_concat(id) FROM g')" = 1 ] || fail "glob with a directory: $(cat r16a.err)"
[ "$(q out/g.db "SELECT _line || '|' || _error FROM rejects")" = "2|byte-order mark in the middle of the file (one is allowed only at its start)" ] || fail "mid-file BOM: $(q out/g.db 'SELECT _line, _error FROM rejects')"
sed 's/g\/\*.jsonl/g\/only\/*/; s/g\.db/g16b.db/' p16.yaml > p16b.yaml
if "$SLUICE" run p16b.yaml 2> r16b.err > /dev/null; then fail "a glob of directories only ran"; fi
grep -q "no file matches 'g/only/\*' (it matches 2 directories only)" r16b.err || fail "glob of directories: $(cat r16b.err)"
# A CSV row or a `lines` line still being written when the run reaches it
# (no line break yet, but it decodes): taken only once the file has not
# changed for a second, so the rest that the writer adds meanwhile joins
# it (the audit of finding 8: "7,8" became a row and "9" a dead letter).
# The writer keeps the file changing for 2 s before it ends the line, so
# that a run slow to start (a sanitizer) still finds it being written.
writing() { for _ in 1 2 3 4 5 6 7 8 9 10; do sleep 0.2 && touch "$1"; done && printf "$2" >> "$1"; }
for fmt in csv lines; do
    cat > settle_$fmt.yaml << YAML
sources: { f: { type: file, path: settle.$fmt, format: $fmt } }
sinks: { db: { type: sqlite, inputs: [f], path: out/settle_$fmt.db, table: t } }
dead_letter: { type: sqlite, path: out/settle_$fmt.db, table: rejects }
YAML
done
printf 'a,b\n1,2\n7,8' > settle.csv
writing settle.csv '9\n' &
"$SLUICE" run settle_csv.yaml --quiet 2> settle.err || fail "settle csv: $(cat settle.err)"
wait $!
[ "$(q out/settle_csv.db 'SELECT group_concat(a || "," || b, " ") FROM t')" = "1,2 7,89" ] ||
    fail "a CSV row written while read: $(q out/settle_csv.db 'SELECT * FROM t')"
[ "$(q out/settle_csv.db 'SELECT count(*) FROM rejects' 2> /dev/null || echo 0)" = 0 ] ||
    fail "a CSV row written while read: dead letters"
printf 'one\ntw' > settle.lines
writing settle.lines 'o\n' &
"$SLUICE" run settle_lines.yaml --quiet 2> settle.err || fail "settle lines: $(cat settle.err)"
wait $!
[ "$(q out/settle_lines.db 'SELECT group_concat(message, " ") FROM t')" = "one two" ] ||
    fail "a line written while read: $(q out/settle_lines.db 'SELECT * FROM t')"
# Live files one after another do not add up their waits (10 s for the
# whole run, not per file: four took 40 s), and a line still being written
# when the run stops waiting is left unread, said, and read whole later
# (it was taken half, and its rest became another record).
mkdir -p live
printf 'a1\na' > live/1.lines
printf 'b1\nb' > live/2.lines
cat > live.yaml << 'YAML'
sources: { f: { type: file, path: live/*.lines, format: lines } }
sinks: { db: { type: sqlite, inputs: [f], path: out/live.db, table: t } }
YAML
(for _ in $(seq 70); do sleep 0.2 && touch live/1.lines live/2.lines; done) &
toucher=$!
start=$(date +%s)
"$SLUICE" run live.yaml 2> live.err || fail "live files: $(cat live.err)"
took=$(($(date +%s) - start))
kill $toucher 2> /dev/null || true
wait $toucher 2> /dev/null || true
[ "$took" -le 13 ] || fail "two live files took $took s"
[ "$(grep -c 'has no line break yet and the file is still being written: left unread' live.err)" = 2 ] ||
    fail "live lines not said: $(cat live.err)"
[ "$(q out/live.db 'SELECT group_concat(message, " ") FROM (SELECT message FROM t ORDER BY 1)')" = "a1 b1" ] ||
    fail "live files, first run: $(q out/live.db 'SELECT * FROM t')"
printf '2\n' >> live/1.lines
printf '2\n' >> live/2.lines
touch -d '-5 seconds' live/1.lines live/2.lines
"$SLUICE" run live.yaml 2> live.err || fail "live files, later run: $(cat live.err)"
[ "$(q out/live.db 'SELECT group_concat(message, " ") FROM (SELECT message FROM t ORDER BY 1)')" = "a1 a2 b1 b2" ] ||
    fail "live files, later run: $(q out/live.db 'SELECT * FROM t')"
echo "ok"
