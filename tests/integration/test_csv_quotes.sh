# CSV quotes that are never closed (hostile-input probe, h2): a row whose
# quoted field is still open at the end of the input is left unread, not
# dead-lettered with the rows it swallowed, and lands whole once the writer
# closes it; an unclosed quote mid-file costs its own line only, however
# many lines follow and whatever the read sizes (a row longer than max_line
# is a dead letter and reading resumes at the next line); a header whose
# quote is never closed turns every data line into a dead letter naming the
# header, and a header still being written is left unread with a warning.
# Every run's summary must add up: in = out + dropped + dead for every node.
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

# ---- 1. The last row's quote is still open at the end of the input ----
mkdir -p a
printf 'id,name\n1,a\n2,"abc\n3,c\n' > a/open.csv
cat > pa.yaml <<'YAML'
sources:
  c: { type: file, path: a/open.csv, format: csv }
sinks:
  db: { type: sqlite, inputs: [c], path: out/a.db, table: c }
dead_letter: { type: sqlite, path: out/a.db, table: rejects }
YAML
run ra1 pa.yaml
[ "$(rejects out/a.db)" = 0 ] || fail "an open quote at the end became a dead letter: $(q out/a.db 'SELECT _line, _error, _raw FROM rejects')"
[ "$(summary_of ra1.err c)" = "1 1 0 0" ] || fail "open quote summary: $(summary_of ra1.err c)"
grep -q "a/open.csv: line 3 starts a row that has no line break after it yet and does not decode (unterminated quoted field 2): left unread" ra1.err ||
    fail "no warning for the open quote: $(cat ra1.err)"
# The writer closes the quote: the row lands whole, and what follows too.
printf '"\n4,d\n' >> a/open.csv
run ra2 pa.yaml
[ "$(rejects out/a.db)" = 0 ] || fail "after the quote was closed: $(q out/a.db 'SELECT _line, _error, _raw FROM rejects')"
[ "$(q out/a.db "SELECT group_concat(id || ':' || name, ' ') FROM (SELECT * FROM c ORDER BY id)")" = "$(printf '1:a 2:abc\n3,c\n 4:d')" ] ||
    fail "rows after the quote was closed: $(q out/a.db 'SELECT * FROM c')"

# ---- 2. An unclosed quote mid-file, followed by more than max_line ----
# Small enough to be read in one block: before, the row ran on to the next
# quote and swallowed the 200 lines before it into one dead letter.
mkdir -p m
python3 - <<'PY'
with open("m/mid.csv", "w") as f:
    f.write('id,name\n1,a\n2,"abc\n')
    for i in range(3, 201):
        f.write('%d,x%d\n' % (i, i))
    f.write('201,"q"\n')
    for i in range(202, 3001):
        f.write('%d,x%d\n' % (i, i))
PY
cat > pm.yaml <<'YAML'
sources:
  m: { type: file, path: m/mid.csv, format: csv, max_line: 1KiB }
sinks:
  db: { type: sqlite, inputs: [m], path: out/m.db, table: m }
dead_letter: { type: sqlite, path: out/m.db, table: rejects }
YAML
run rm1 pm.yaml
[ "$(summary_of rm1.err m)" = "3000 2999 0 1" ] || fail "unclosed quote mid-file summary: $(summary_of rm1.err m)"
[ "$(q out/m.db "SELECT _line || '|' || _raw FROM rejects")" = '3|2,"abc' ] ||
    fail "unclosed quote dead letter: $(q out/m.db 'SELECT _line, length(_raw), _error FROM rejects')"
q out/m.db "SELECT _error FROM rejects" | grep -q "^row longer than max_line (1024 bytes)" ||
    fail "unclosed quote reason: $(q out/m.db 'SELECT _error FROM rejects')"
[ "$(q out/m.db "SELECT count(*), min(id), max(id), sum(id) FROM m")" = "2999|1|3000|$((3000 * 3001 / 2 - 2))" ] ||
    fail "rows after the unclosed quote: $(q out/m.db 'SELECT count(*), min(id), max(id), sum(id) FROM m')"
[ "$(q out/m.db "SELECT name FROM m WHERE id = 201")" = q ] || fail "the quoted field after the resync"
# Larger than a read block: the same outcome.
python3 - <<'PY'
with open("m/mid.csv", "w") as f:
    f.write('id,name\n1,a\n2,"abc\n')
    for i in range(3, 60001):
        f.write('%d,x%d\n' % (i, i))
PY
rm -rf out
run rm2 pm.yaml
[ "$(summary_of rm2.err m)" = "60000 59999 0 1" ] || fail "long file summary: $(summary_of rm2.err m)"
[ "$(q out/m.db "SELECT _line || '|' || _raw FROM rejects")" = '3|2,"abc' ] ||
    fail "long file dead letter: $(q out/m.db 'SELECT _line, length(_raw), _error FROM rejects')"

# ---- 3. A header whose quote is never closed ----
mkdir -p h
printf 'id,"name\n1,a\n2,b\n' > h/bad.csv
cat > ph.yaml <<'YAML'
sources:
  h: { type: file, path: h/bad.csv, format: csv }
sinks:
  db: { type: sqlite, inputs: [h], path: out/h.db, table: h }
dead_letter: { type: sqlite, path: out/h.db, table: rejects }
YAML
run rh1 ph.yaml
[ "$(summary_of rh1.err h)" = "2 0 0 2" ] || fail "open-quote header summary: $(summary_of rh1.err h)"
[ "$(q out/h.db "SELECT group_concat(_line || '|' || _error || '|' || _raw, ' / ') FROM (SELECT * FROM rejects ORDER BY _line)")" = "2|bad CSV header (line 1): unterminated quoted column name 2|1,a / 3|bad CSV header (line 1): unterminated quoted column name 2|2,b" ] ||
    fail "open-quote header dead letters: $(q out/h.db 'SELECT _line, _error, _raw FROM rejects')"
grep -q "h/bad.csv: bad CSV header (line 1): unterminated quoted column name 2: its rows are dead letters" rh1.err ||
    fail "no warning for the open-quote header: $(cat rh1.err)"
# Its rows were delivered as dead letters, once; a new row is one more.
run rh2 ph.yaml
[ "$(rejects out/h.db)" = 2 ] || fail "header rows dead-lettered again: $(rejects out/h.db)"
printf '3,c\n' >> h/bad.csv
run rh3 ph.yaml
[ "$(q out/h.db "SELECT group_concat(_line) FROM (SELECT * FROM rejects ORDER BY _line)")" = "2,3,4" ] ||
    fail "a row added under the bad header: $(q out/h.db 'SELECT _line, _error FROM rejects')"
# A header still being written (no line break at all) is left unread with a
# warning, then read once complete.
printf 'id,"na' > h/bad.csv
rm -rf out
run rh4 ph.yaml
grep -q "h/bad.csv: the header (line 1) has no line break yet: left unread until a later run finds it complete" rh4.err ||
    fail "no warning for a header being written: $(cat rh4.err)"
[ "$(summary_of rh4.err h)" = "0 0 0 0" ] || fail "header being written summary: $(summary_of rh4.err h)"
printf 'me"\n1,a\n' >> h/bad.csv
run rh5 ph.yaml
[ "$(q out/h.db "SELECT id || ':' || name FROM h")" = "1:a" ] || fail "header completed: $(q out/h.db 'SELECT * FROM h')"
[ "$(rejects out/h.db)" = 0 ] || fail "header completed: $(q out/h.db 'SELECT _line, _error FROM rejects')"
echo ok
