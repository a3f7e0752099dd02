# Exactly once with priority lanes across a kill -9 that left a higher lane
# ahead, when the level of a record depends on more than the priority
# settings the plan hashes (here an upstream map's formula; `now()` in the
# expression does the same): a record that was level 0 in the killed run
# (not yet written: lane 0 behind) and is level 9 in the re-run is trimmed
# by lane 9's position, and lost. The kill is simulated on the database:
# after a complete run, lane 0's rows from the middle on are deleted and its
# position set there (a state a kill -9 leaves when lane 9's transactions
# ran ahead, which priorities are for).
. "$(dirname "$0")/lib.sh"

N=$((20000 / SCALE))
gen_orders data/o.jsonl "$N" 5

conf() {
    local prio=${3:-'if(score > 900, 9, 0)'}
    cat > p.yaml <<YAML
sources:
  src: { type: file, path: data/o.jsonl }
stages:
  m: { type: map, inputs: [src], set: { score: '$1' } }
  p: { type: map, inputs: [m], set: { c: '1' }, priority: '$prio' }
  mark: { type: map, inputs: [p], set: { lvl: '@priority', off: '@offset' } }
sinks:
  db: { type: sqlite, inputs: [mark], path: out/$2.db, table: orders }
YAML
}

# kill_lane0 DB: lane 0 committed only below the middle of the file.
kill_lane0() {
    local cut
    cut=$(q "$1" "SELECT min(off) FROM orders WHERE lvl = 0 AND off >= (SELECT max(off) / 2 FROM orders)")
    q "$1" "DELETE FROM orders WHERE lvl = 0 AND off >= $cut;
            UPDATE _sluice_checkpoints SET position = $cut WHERE tbl = 'orders' AND level = 0"
    echo "$cut"
}

# Control: the same settings again write exactly what lane 0 lacked.
conf amount same
"$SLUICE" run p.yaml 2> same1.err || fail "same: $(tail -n 5 same1.err)"
[ "$(q out/same.db 'SELECT count(*) FROM orders')" -eq "$N" ] || fail "same: first run"
kill_lane0 out/same.db > /dev/null
"$SLUICE" run p.yaml 2> same2.err || fail "same again: $(tail -n 5 same2.err)"
[ "$(q out/same.db 'SELECT count(*) FROM orders')" -eq "$N" ] ||
    fail "same: $(q out/same.db 'SELECT count(*) FROM orders') rows of $N"
[ "$(q out/same.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$N" ] || fail "same: duplicates"

bad=""
# The priority settings changed: the plan differs, so both lanes resume
# from the lowest old position, and lane 9 writes again what it had written
# above it (the records that stay level 9).
conf amount changed
"$SLUICE" run p.yaml 2> changed1.err || fail "changed: $(tail -n 5 changed1.err)"
kill_lane0 out/changed.db > /dev/null
conf amount changed 'if(score > 800, 9, 0)'
"$SLUICE" run p.yaml 2> changed2.err || fail "changed again: $(tail -n 5 changed2.err)"
dups=$(q out/changed.db 'SELECT count(*) - count(DISTINCT id) FROM orders')
[ "$dups" -eq 0 ] || bad="$bad; changed settings: $dups records written twice"

# An upstream stage changed between the runs: the plan (the priority
# settings) is the same, the levels are not.
conf amount moved
"$SLUICE" run p.yaml 2> moved1.err || fail "moved: $(tail -n 5 moved1.err)"
cut=$(kill_lane0 out/moved.db)
conf 'amount * 2' moved
"$SLUICE" run p.yaml 2> moved2.err || fail "moved again: $(tail -n 5 moved2.err)"
rows=$(q out/moved.db 'SELECT count(DISTINCT id) FROM orders')
[ "$rows" -eq "$N" ] ||
    bad="$bad; upstream change: $((N - rows)) of $N records lost (level 0 to 9 past offset $cut)"
[ -z "$bad" ] || fail "${bad#; }"
echo "ok"
