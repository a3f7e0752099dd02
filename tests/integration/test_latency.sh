# Per-record latency at sinks (issue 7): each sink measures source read to
# commit for every record it writes and reports p50, p99 and max in the
# summary and in --summary-json (latency_ms, sinks only). Figures against
# targets are bench/latency.sh's job; this checks they are there and sane.
. "$(dirname "$0")/lib.sh"


cat > lat.yaml <<'YAML'
sources:
  g: { type: generator, count: 1500, rate: 3000 }
stages:
  m: { type: map, inputs: [g], set: { c: '1' } }
sinks:
  db: { type: sqlite, inputs: [m], path: out/l.db, table: t }
  f: { type: file, inputs: [m], path: out/l.jsonl }
YAML
"$SLUICE" run lat.yaml --summary-json lat.json 2> lat.err || fail "run: $(err_of lat.err)"
for s in db f; do
    ok=$(json lat.json "(lambda l, e: 0 <= l['p50'] <= l['p99'] <= l['max'] <= e * 1000 and l['max'] > 0)(d['nodes']['$s']['latency_ms'], d['elapsed_s'])")
    [ "$ok" = True ] || fail "$s: latency not ordered within the run: $(cat lat.json)"
    ok=$(json lat.json "(lambda n: 0 <= n['write_ms']['p50'] <= n['write_ms']['p99'] <= n['write_ms']['max'] <= n['latency_ms']['max'] and 1 <= n['writes'] <= 1500)(d['nodes']['$s'])")
    [ "$ok" = True ] || fail "$s: write times not ordered or above the latency: $(cat lat.json)"
    grep -q "^$s: latency from source read to commit: p50 [0-9.]* ms, p99 [0-9.]* ms, max [0-9.]* ms; [0-9]* writes took p50 [0-9.]* ms, p99 [0-9.]* ms, max [0-9.]* ms$" lat.err ||
        fail "no latency line for $s: $(cat lat.err)"
done
for n in g m; do
    [ "$(json lat.json "'latency_ms' in d['nodes']['$n']")" = False ] || fail "$n is not a sink but has a latency"
done
[ "$(q out/l.db 'SELECT count(*) FROM t')" -eq 1500 ] || fail "rows"
echo "ok: $(json lat.json "d['nodes']['db']['latency_ms']")"
