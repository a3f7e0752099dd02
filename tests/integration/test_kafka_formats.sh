# Kafka messages through the shared decoders (issue 6, finding 25): a
# message may end in one "\n" or "\r\n" in every format (csv used to refuse
# it); an empty message, a lone "\n" or a tombstone is skipped as a blank
# line of a file is, and counted as dropped so that in = out + dropped +
# dead; a CSV row with the wrong field count says so in words.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
mock_start 1
mock_cmd "topic rows 1"
mock_cmd "topic js 1"
printf '1,Berlin,10\n|2,Paris,20\r\n|3,Rome,30|\n|4,Oslo\n|5\n|' | produce rows -p 0 -D '|'
printf 'k1:\n' | produce rows -p 0 -K: -Z # a tombstone: NULL value
printf '{"a":1}\n|\n|' | produce js -p 0 -D '|'
printf 'k1:\n' | produce js -p 0 -K: -Z

cat > k.yaml <<YAML
sources:
  c: { type: kafka, brokers: '$BROKERS', topics: [rows], group: gc, format: csv, columns: [n, city, v], exit_on_eof: true }
  l: { type: kafka, brokers: '$BROKERS', topics: [rows], group: gl, format: lines, exit_on_eof: true }
  j: { type: kafka, brokers: '$BROKERS', topics: [js], group: gj, exit_on_eof: true }
sinks:
  cdb: { type: sqlite, inputs: [c], path: out/k.db, table: c }
  ldb: { type: sqlite, inputs: [l], path: out/k.db, table: l }
  jdb: { type: sqlite, inputs: [j], path: out/k.db, table: j }
dead_letter: { type: sqlite, path: out/k.db, table: rejects }
YAML
timeout 120 "$SLUICE" run k.yaml 2> run.err > /dev/null || fail "run: $(cat run.err)"
db=out/k.db
[ "$(q $db "SELECT group_concat(n || ':' || city || ':' || typeof(v) || ':' || v, ' ') FROM (SELECT * FROM c ORDER BY n)")" = "1:Berlin:integer:10 2:Paris:integer:20 3:Rome:integer:30" ] || fail "csv: $(q $db 'SELECT * FROM c')"
[ "$(q $db "SELECT group_concat(_offset || '|' || _error, ' / ') FROM (SELECT * FROM rejects WHERE _source = 'c' ORDER BY _offset)")" = "4|row has 2 fields, the header has 3 / 5|row has 1 field, the header has 3" ] || fail "csv dead letters: $(q $db 'SELECT * FROM rejects')"
[ "$(q $db "SELECT group_concat(quote(message), ' ') FROM l")" = "'1,Berlin,10' '2,Paris,20' '3,Rome,30' '4,Oslo' '5'" ] || fail "lines: $(q $db 'SELECT quote(message) FROM l')"
[ "$(q $db "SELECT count(*) FROM rejects WHERE _source != 'c'")" = 0 ] || fail "an empty message became a dead letter: $(q $db 'SELECT _source, _offset, _error FROM rejects')"
[ "$(q $db 'SELECT a FROM j')" = 1 ] || fail "json: $(q $db 'SELECT * FROM j')"
summary() {
    awk -v n="$1" '$1 == n && NF == 8 { print $4, $5, $6, $7 }' run.err
}
[ "$(summary c)" = "7 3 2 2" ] || fail "csv summary: $(summary c), want 7 3 2 2"
[ "$(summary l)" = "7 5 2 0" ] || fail "lines summary: $(summary l), want 7 5 2 0"
[ "$(summary j)" = "3 1 2 0" ] || fail "json summary: $(summary j), want 3 1 2 0"
echo "ok"
