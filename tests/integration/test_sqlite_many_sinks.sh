# Many SQLite sinks within memory_limit + 16 MiB. Each sink had two
# connections and a checkpointer thread of its own outside the budget
# (about 300 KB): 80 sinks at 4 MiB peaked at 33-37 MB, and 80 maps into
# 80 SQLite tables of one file at 24 MiB at 57 MB (bound 40). Now the
# sinks of a file share one connection, one thread checkpoints for the
# process, what the sinks still hold comes out of the budget, and a limit
# too small for them is refused. Every row is written exactly once, and
# checkpoints keep the WAL short during a bulk load.
. "$(dirname "$0")/lib.sh"

# sinks_yaml N LIMIT SHAPE COUNT: a generator into N maps, each into a
# SQLite sink of its own table; SHAPE one: one file, many: a file each.
sinks_yaml() {
    printf 'engine:\n  memory_limit: %s\nsources:\n  gen: { type: generator, count: %s, seed: 3 }\nstages:\n' "$2" "$4"
    for i in $(seq 0 $(($1 - 1))); do
        printf '  m%d: { type: map, inputs: [gen], set: { k: %d } }\n' "$i" "$i"
    done
    printf 'sinks:\n'
    for i in $(seq 0 $(($1 - 1))); do
        if [ "$3" = one ]; then db=out/all.db; else db=out/s$i.db; fi
        printf '  s%d: { type: sqlite, inputs: [m%d], path: %s, table: t%d }\n' "$i" "$i" "$db" "$i"
    done
}

# every_row_once SHAPE N COUNT: each of the N tables holds ids 1..COUNT once.
every_row_once() {
    for i in $(seq 0 $(($2 - 1))); do
        if [ "$1" = one ]; then db=out/all.db; else db=out/s$i.db; fi
        got=$(q "$db" "SELECT count(*), count(DISTINCT id), min(id), max(id), min(k), max(k) FROM t$i")
        [ "$got" = "$3|$3|1|$3|$i|$i" ] || fail "$1: table t$i holds $got, want $3 rows once each"
    done
}

# A limit too small for the sinks: validate and run refuse it, and say how
# much they need; nothing runs.
sinks_yaml 80 4MiB many 10 > small.yaml
set +e
"$SLUICE" validate small.yaml 2> validate.err
v=$?
"$SLUICE" run small.yaml 2> run.err
r=$?
set -e
[ "$v" = 2 ] && [ "$r" = 2 ] || fail "80 sinks at 4 MiB: validate $v, run $r, want 2: $(cat validate.err)"
grep -q '^small.yaml:2:17: engine.memory_limit: 80 sqlite sinks hold about 16.2 MiB .* at least 29MiB' \
    validate.err || fail "message: $(cat validate.err)"
cmp -s validate.err run.err || fail "run said otherwise: $(cat run.err)"
[ ! -e out ] || fail "a refused config wrote $(ls out)"

# Limits near the smallest the sinks are accepted at (17 MiB for one file:
# the sinks hold 10.1 MiB; 29 MiB for a file each: 16.2 MiB), with maps
# copying every batch so that the records fill what the sinks leave of
# the budget.
N=$((4000 / SCALE))
for case in "one 24MiB 40" "many 34MiB 50"; do
    set -- $case
    rm -rf out
    sinks_yaml 80 "$2" "$1" "$N" > $1.yaml
    /usr/bin/time -f %M -o rss.txt "$SLUICE" run $1.yaml --quiet --summary-json $1.json 2> $1.log ||
        fail "$1: $(err_of $1.log)"
    check_rss rss.txt "$3" "80 sinks, $1 file(s), $2"
    counts_add_up $1.json
    every_row_once "$1" 80 "$N"
    ckpts=0
    for db in out/*.db; do
        ckpts=$((ckpts + $(q "$db" 'SELECT count(*) FROM _sluice_checkpoints')))
    done
    [ "$ckpts" = 80 ] || fail "$1: $ckpts positions stored, want one per sink"
    ls out/*-wal out/*-shm > /dev/null 2>&1 && fail "$1: the last close left $(ls out)"
done

# A bulk load into one table: checkpoints happen during the load, so the
# WAL stays short (the checkpointer once never copied a frame: the log
# grew to the whole load, 40 MB here). The WAL file keeps its largest
# size until the close removes it: its last size seen is the largest.
B=$((400000 / SCALE))
printf 'sources:\n  gen: { type: generator, count: %s, seed: 4 }\nsinks:\n  db: { type: sqlite, inputs: [gen], path: out/bulk.db, table: t }\n' \
    "$B" > bulk.yaml
"$SLUICE" run bulk.yaml --quiet 2> bulk.log &
pid=$!
wal=0
while kill -0 "$pid" 2> /dev/null; do
    s=$(stat -c %s out/bulk.db-wal 2> /dev/null || echo 0)
    [ "$s" -le "$wal" ] || wal=$s
    sleep 0.02
done
wait "$pid" || fail "bulk: $(err_of bulk.log)"
[ "$(q out/bulk.db 'SELECT count(*), count(DISTINCT id) FROM t')" = "$B|$B" ] || fail "bulk rows"
db=$(stat -c %s out/bulk.db)
echo "bulk: largest WAL $((wal / 1048576)) MB, database $((db / 1048576)) MB"
[ "$wal" -le $((24 << 20)) ] || fail "bulk: the WAL grew to $((wal / 1048576)) MB (database $((db / 1048576)) MB)"
echo "ok"
