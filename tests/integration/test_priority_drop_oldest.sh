# when_full: drop_oldest on a queue with priority lanes: push_or_shed makes
# room with sl_ring_try_pop, which takes the lane a consumer would serve
# next: the highest level (aging aside). So the queue sheds its level 9
# batches first and keeps level 0: measured 100% of level 9 shed, 97% of
# level 5, 35% of level 0 (overload 4x). Neither the oldest queued batch
# nor the least important one. It also marks that lane served (aging).
. "$(dirname "$0")/lib.sh"

P=$((20000 / SCALE))
cat > dold.yaml <<YAML
sources:
  gen: { type: generator, count: $P, rate: $P }
stages:
  tag: { type: map, inputs: [gen], set: { c: '1' }, priority: 'if(amount > 900, 9, if(amount > 300, 5, 0))' }
  slow: { type: delay, inputs: [tag], per_record: 200us, queue: 4, when_full: drop_oldest }
  mark: { type: map, inputs: [slow], set: { lvl: '@priority' } }
sinks:
  db: { type: sqlite, inputs: [mark], path: out/dold.db, table: orders }
YAML
"$SLUICE" run dold.yaml --summary-json dold.json 2> dold.err || fail "$(err_of dold.err)"
q out/dold.db 'SELECT lvl, count(*) FROM orders GROUP BY lvl' > dold.rows
python3 - dold.json dold.rows <<'PY' || fail "drop_oldest sheds the highest level first: $(cat dold.rows)"
import json, sys
d = json.load(open(sys.argv[1]))
by = {int(k): v for k, v in d["nodes"]["slow"]["shed_by_priority"].items()}
rows = dict(map(int, l.split("|")) for l in open(sys.argv[2]) if l.strip())
share = {l: by[l] / (by[l] + rows.get(l, 0)) for l in (0, 5, 9) if by[l] + rows.get(l, 0) > 0}
print("shed share per level:", {l: round(v, 3) for l, v in share.items()})
assert by[0] + by[5] + by[9] > 0, "nothing shed: no overload?"
assert share[9] <= share[0], "level 9 shed %.3f, level 0 %.3f" % (share[9], share[0])
PY
echo "ok"
