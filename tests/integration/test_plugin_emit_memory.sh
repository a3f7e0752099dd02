# Records a stage plugin adds (host->emit) stay within memory_limit: a
# plugin that adds K records per input record (an explode or split) made
# each batch K + 1 times what the memory plan counted on, after the
# sources had admitted it, and nothing waited for that growth: at 16 MiB,
# K = 50 took 80 MiB in flight and 60 MB RSS, K = 200 took 294 MiB and
# 195 MB. Every count must add up exactly, every added record must reach
# the sink once (exactly once into SQLite), and peak in flight must stay
# within the limit, peak RSS within limit + 16 MiB.
. "$(dirname "$0")/lib.sh"
TP=$(dirname "$SLUICE")/test-plugins/emit

# check NAME N K SINK: the run's summary NAME.json and peak RSS NAME.rss
# against N input records exploded K times each into sink SINK.
check() {
    local name=$1 n=$2 k=$3 sink=$4 peak
    counts_add_up "$name.json"
    [ "$(json "$name.json" 'd["nodes"]["x"]["in"]')" = "$n" ] ||
        fail "$name: explode got $(json "$name.json" 'd["nodes"]["x"]["in"]'), want $n"
    [ "$(json "$name.json" 'd["nodes"]["x"]["added"]')" = "$((n * k))" ] ||
        fail "$name: added $(json "$name.json" 'd["nodes"]["x"]["added"]'), want $((n * k))"
    [ "$(json "$name.json" "d['nodes']['$sink']['in']")" = "$((n * (k + 1)))" ] ||
        fail "$name: sink got $(json "$name.json" "d['nodes']['$sink']['in']"), want $((n * (k + 1)))"
    peak=$(json "$name.json" 'd["peak_in_flight_bytes"]')
    echo "$name: peak in flight $((peak >> 10)) KiB"
    [ "$peak" -le $((16 << 20)) ] ||
        fail "$name: peak in flight $((peak >> 20)) MiB with memory_limit 16MiB"
    check_rss "$name.rss" 32 "$name"
}

# Generated orders, K = 10 and 200, into a null sink.
for k in 10 200; do
    n=$(((k == 10 ? 20000 : 3000) / SCALE))
    cat > gen$k.yaml <<YAML
engine: { memory_limit: 16MiB, plugin_path: [$TP] }
sources: { gen: { type: generator, count: $n } }
stages: { x: { type: explode, inputs: [gen], copies: $k } }
sinks: { s: { type: null, inputs: [x] } }
YAML
    /usr/bin/time -f %M -o gen$k.rss "$SLUICE" run gen$k.yaml --summary-json gen$k.json \
        2> gen$k.log || fail "gen K=$k: $(err_of gen$k.log)"
    check gen$k "$n" "$k" s
done

# JSON lines from a file, K = 50, two workers, into SQLite: every record
# once per copy, and the input record itself (no `n`).
N=$((4000 / SCALE))
gen_orders data/o.jsonl "$N" 3
cat > file50.yaml <<YAML
engine: { memory_limit: 16MiB, plugin_path: [$TP] }
sources: { f: { type: file, path: data/o.jsonl } }
stages: { x: { type: explode, inputs: [f], copies: 50, workers: 2 } }
sinks: { db: { type: sqlite, inputs: [x], path: out/t.db, table: t } }
YAML
/usr/bin/time -f %M -o file50.rss "$SLUICE" run file50.yaml --summary-json file50.json \
    2> file50.log || fail "file K=50: $(err_of file50.log)"
check file50 "$N" 50 db
got=$(q out/t.db 'SELECT count(*), count(DISTINCT id), sum(n IS NULL), count(DISTINCT id * 100 + n) FROM t')
[ "$got" = "$((N * 51))|$N|$N|$((N * 50))" ] ||
    fail "file K=50 rows: $got, want $((N * 51))|$N|$N|$((N * 50))"

# A plugin stage behind a route output that none of the records take is
# called with empty batches only: that tells nothing of what it makes of
# records, but its source must not go on a record at a time (40 times
# slower: a batch per record).
cat > never.yaml <<YAML
engine: { memory_limit: 16MiB, plugin_path: [$TP] }
sources: { f: { type: file, path: data/o.jsonl } }
stages:
  r: { type: route, inputs: [f], routes: { none: 'country == "XX"' } }
  x: { type: explode, inputs: [r.none], copies: 50 }
sinks: { s: { type: null, inputs: [x, r._unmatched] } }
YAML
"$SLUICE" run never.yaml --summary-json never.json 2> never.log || fail "never: $(err_of never.log)"
counts_add_up never.json
[ "$(json never.json 'd["nodes"]["s"]["in"]')" = "$N" ] || fail "never: sink records"
batches=$(json never.json 'd["nodes"]["r"]["batches"]')
echo "never: $batches batches for $N records"
[ "$batches" -le $((N / 20)) ] || fail "never: $batches batches for $N records"

# One record that alone would add more than the whole budget (a million
# copies, about 400 MB): a call may add about a quarter of the records'
# budget, then emit refuses (host->emit_full says so), and the plugin
# dead-letters what it could not explode. The run goes on within the
# bound, with every count exact.
python3 - "$N" <<'PY'
import json, sys
with open("data/o.jsonl") as f, open("data/huge.jsonl", "w") as g:
    for i, line in enumerate(f):
        o = json.loads(line)
        if i == int(sys.argv[1]) // 2:
            o["copies"] = 1000000
        g.write(json.dumps(o) + "\n")
PY
huge=$((N / 2 + 1))
sed -e 's/o.jsonl/huge.jsonl/' -e 's/t.db/huge.db/' file50.yaml > huge.yaml
echo "dead_letter: { type: sqlite, path: out/huge.db, table: rejects }" >> huge.yaml
/usr/bin/time -f %M -o huge.rss "$SLUICE" run huge.yaml --summary-json huge.json 2> huge.log ||
    fail "huge record: $(err_of huge.log)"
grep -q "added more to one batch than one call may" huge.log || fail "huge record: no warning: $(cat huge.log)"
counts_add_up huge.json
dead=$(json huge.json 'd["nodes"]["x"]["dead"]')
[ "$dead" -ge 1 ] && [ "$dead" -lt 50 ] || fail "huge record: $dead dead letters"
[ "$(q out/huge.db "SELECT count(*) FROM rejects WHERE _error LIKE 'explode: too many copies%'")" = "$dead" ] ||
    fail "huge record: dead letters: $(q out/huge.db 'SELECT _line, _error FROM rejects')"
[ "$(q out/huge.db "SELECT count(*) FROM rejects WHERE _line = $huge")" = 1 ] || fail "huge record not rejected"
[ "$(q out/huge.db 'SELECT count(*) FROM t')" = "$(((N - dead) * 51))" ] ||
    fail "huge record: $(q out/huge.db 'SELECT count(*) FROM t') rows, want $(((N - dead) * 51))"
[ "$(json huge.json 'd["nodes"]["x"]["added"]')" = "$(((N - dead) * 50))" ] || fail "huge record: added"
peak=$(json huge.json 'd["peak_in_flight_bytes"]')
echo "huge record: $dead dead letters, peak in flight $((peak >> 10)) KiB"
[ "$peak" -le $((16 << 20)) ] || fail "huge record: peak in flight $((peak >> 20)) MiB"
check_rss huge.rss 32 "huge record"

# Every record alone goes past one call's room (a million copies each):
# explode drops what it added and dead-letters the record. The first
# records were read one at a time but all admitted at their own size while
# the first call ran, each grew to the room (and the arena chunk doubling
# past it) and then went on holding it as garbage with its dead letter:
# 120 MiB in flight and 71 MB RSS at 32 MiB, 500 MiB and 260 MB at 64 MiB.
M=$((120 / SCALE))
head -n "$M" data/o.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line); o["copies"] = 1000000; print(json.dumps(o))' > data/all_huge.jsonl
cat > allhuge.yaml <<YAML
engine: { memory_limit: 32MiB, plugin_path: [$TP] }
sources: { f: { type: file, path: data/all_huge.jsonl } }
stages: { x: { type: explode, inputs: [f], workers: 2 } }
sinks: { s: { type: null, inputs: [x] } }
YAML
/usr/bin/time -f %M -o allhuge.rss "$SLUICE" run allhuge.yaml --summary-json allhuge.json \
    2> allhuge.log || fail "all huge: $(err_of allhuge.log)"
counts_add_up allhuge.json
[ "$(json allhuge.json 'd["nodes"]["x"]["dead"]')" = "$M" ] ||
    fail "all huge: $(json allhuge.json 'd["nodes"]["x"]["dead"]') dead letters, want $M"
[ "$(json allhuge.json 'd["nodes"]["x"]["added"]')" = 0 ] || fail "all huge: added"
peak=$(json allhuge.json 'd["peak_in_flight_bytes"]')
echo "all huge: peak in flight $((peak >> 10)) KiB"
[ "$peak" -le $((32 << 20)) ] || fail "all huge: peak in flight $((peak >> 20)) MiB with memory_limit 32MiB"
check_rss allhuge.rss 48 "all huge"

# From Kafka (batches of messages, cut by the records' bytes): before, 55
# MiB in flight and 56 MB RSS with K = 50.
. "$(dirname "$0")/kafka_lib.sh"
mock_start 1
mock_cmd "topic ex 2"
produce_by_id ex data/o.jsonl
cat > kafka50.yaml <<YAML
engine: { memory_limit: 16MiB, plugin_path: [$TP] }
sources:
  k: { type: kafka, brokers: '$BROKERS', topics: [ex], group: gex, exit_on_eof: true }
stages: { x: { type: explode, inputs: [k], copies: 50 } }
sinks: { db: { type: sqlite, inputs: [x], path: out/k.db, table: t } }
YAML
/usr/bin/time -f %M -o kafka50.rss "$SLUICE" run kafka50.yaml --summary-json kafka50.json \
    2> kafka50.log || fail "kafka K=50: $(err_of kafka50.log)"
check kafka50 "$N" 50 db
got=$(q out/k.db 'SELECT count(*), count(DISTINCT id), count(DISTINCT id * 100 + n) FROM t')
[ "$got" = "$((N * 51))|$N|$((N * 50))" ] || fail "kafka K=50 rows: $got"
echo "ok"
