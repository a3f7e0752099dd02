# DAG shapes against an independent count: route outputs to different sinks,
# route outputs merged again into one table (diamond: the sink waits for both
# paths' copy of each batch), fan-out of one node to two sinks, stages with
# workers > 1 (order restored per file), all exactly once on a second run.
. "$(dirname "$0")/lib.sh"
N=$((300000 / SCALE))
gen_orders data/o.jsonl "$N" 7
cat > p.yaml <<'YAML'
engine: { memory_limit: 8MiB }
sources:
  orders: { type: file, path: data/o.jsonl }
stages:
  split:
    type: route
    inputs: [orders]
    routes:
      eu: 'country in ["DE", "FR", "GB", "ES"]'
      big: 'amount >= 900'
  eu_tag: { type: map, inputs: [split.eu], set: { region: '"eu"' }, workers: 2 }
  other_tag: { type: map, inputs: [split._unmatched], set: { region: '"other"' }, workers: 2 }
sinks:
  eu: { type: sqlite, inputs: [split.eu], path: out/r.db, table: eu }
  big: { type: sqlite, inputs: [split.big], path: out/r.db, table: big }
  merged: { type: sqlite, inputs: [eu_tag, other_tag], path: out/m.db, table: merged, batch: { max_records: 2000 } }
  raw: { type: sqlite, inputs: [orders], path: out/raw.db, table: raw }
YAML
"$SLUICE" run p.yaml --quiet || fail "run"
python3 - "$N" > expected.txt <<'PY'
import json, sys
eu = big = other = 0
for line in open("data/o.jsonl"):
    o = json.loads(line)
    e = o["country"] in ("DE", "FR", "GB", "ES")
    b = o["amount"] >= 900
    eu += e
    big += b
    other += not e and not b
print(eu, big, eu + other, int(sys.argv[1]))
PY
got="$(q out/r.db 'SELECT count(*) FROM eu') $(q out/r.db 'SELECT count(*) FROM big') $(q out/m.db 'SELECT count(*) FROM merged') $(q out/raw.db 'SELECT count(*) FROM raw')"
[ "$got" = "$(cat expected.txt)" ] || fail "counts $got, expected $(cat expected.txt)"
[ "$(q out/m.db "SELECT count(*) FROM merged WHERE region = 'eu' AND country NOT IN ('DE','FR','GB','ES')")" = 0 ] || fail "region tags"
"$SLUICE" run p.yaml --quiet || fail "second run"
got2="$(q out/r.db 'SELECT count(*) FROM eu') $(q out/r.db 'SELECT count(*) FROM big') $(q out/m.db 'SELECT count(*) FROM merged') $(q out/raw.db 'SELECT count(*) FROM raw')"
[ "$got2" = "$got" ] || fail "second run wrote again: $got2"
echo "ok"
