# Exactly once with priority lanes across a kill -9 that left a higher lane
# ahead. With the same settings, a re-run writes exactly what lane 0
# lacked. With changed settings (the priority expression, or an upstream
# map's formula it reads), a record that was level 0 in the killed run and
# is level 9 now would be trimmed by lane 9's position and lost (and one
# that moves the other way written twice): such a run is refused. The kill is simulated on the database:
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
"$SLUICE" run p.yaml 2> same1.err || fail "same: $(err_of same1.err)"
[ "$(q out/same.db 'SELECT count(*) FROM orders')" -eq "$N" ] || fail "same: first run"
kill_lane0 out/same.db > /dev/null
"$SLUICE" run p.yaml 2> same2.err || fail "same again: $(err_of same2.err)"
[ "$(q out/same.db 'SELECT count(*) FROM orders')" -eq "$N" ] ||
    fail "same: $(q out/same.db 'SELECT count(*) FROM orders') rows of $N"
[ "$(q out/same.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$N" ] || fail "same: duplicates"

# A change of the nodes' settings after such a kill (the priority
# expression, or an upstream formula it reads): the records between the
# lanes were written by their old level, which the new settings cannot
# tell. The run is refused with a message, writing nothing; the old
# settings then finish, and the new ones start from where every level is.
for case in changed moved; do
    conf amount $case
    "$SLUICE" run p.yaml 2> $case.1.err || fail "$case: $(err_of $case.1.err)"
    kill_lane0 out/$case.db > /dev/null
    before=$(q out/$case.db 'SELECT count(*) FROM orders')
    if [ $case = changed ]; then
        conf amount $case 'if(score > 800, 9, 0)'
    else
        conf 'amount * 2' $case
    fi
    cp p.yaml new.yaml
    set +e
    "$SLUICE" run p.yaml 2> $case.2.err
    rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "$case: a run with changed settings and levels apart exited $rc"
    grep -q 'priority levels apart' $case.2.err || fail "$case: message: $(cat $case.2.err)"
    [ "$(q out/$case.db 'SELECT count(*) FROM orders')" -eq "$before" ] || fail "$case: the refused run wrote"
    conf amount $case
    "$SLUICE" run p.yaml 2> $case.3.err || fail "$case, old settings: $(err_of $case.3.err)"
    [ "$(q out/$case.db 'SELECT count(DISTINCT id) FROM orders')" -eq "$N" ] || fail "$case: not finished"
    cp new.yaml p.yaml
    "$SLUICE" run p.yaml 2> $case.4.err || fail "$case, new settings: $(err_of $case.4.err)"
    [ "$(q out/$case.db 'SELECT count(*) FROM orders')" -eq "$N" ] ||
        fail "$case: $(q out/$case.db 'SELECT count(*) FROM orders') rows of $N after the new settings"
done
echo "ok"
