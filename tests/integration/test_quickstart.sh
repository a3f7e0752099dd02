# The quickstart pipeline on the shipped sample data: the SQLite contents
# must equal an independent computation in Python, and every bad line must
# be in the rejects table with its reason and line.
. "$(dirname "$0")/lib.sh"
mkdir -p examples/data pipelines
cp "$SLUICE_ROOT/examples/data/orders.jsonl" examples/data/
cp "$SLUICE_ROOT/pipelines/quickstart.yaml" pipelines/
"$SLUICE" run pipelines/quickstart.yaml --quiet || fail "run failed"

python3 - <<'PY' > expected.txt
import json
rows = []
for line in open("examples/data/orders.jsonl", encoding="utf-8"):
    if not line.strip():
        continue
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if not isinstance(o.get("amount"), (int, float)):
        continue
    if o["amount"] > 0 and o.get("status") != "test":
        c = o["amount"] * 100
        c = int(c + 0.5) if c >= 0 else -int(-c + 0.5)
        rows.append((o["id"], c))
print(len(rows), sum(c for _, c in rows))
PY
got="$(q out/quickstart.db 'SELECT count(*), sum(amount_cents) FROM orders')"
exp="$(tr ' ' '|' < expected.txt)"
[ "$got" = "$exp" ] || fail "orders: got $got, expected $exp"
[ "$(q out/quickstart.db "SELECT count(*) FROM pragma_table_info('orders') WHERE name IN ('tags','meta')")" = 0 ] || fail "tags/meta not dropped"
# Line 100 (syntax) and 900 (not JSON) are decode errors; line 500 has a
# string amount: a type error in the filter.
got="$(q out/quickstart.db 'SELECT _line FROM rejects ORDER BY _line' | tr '\n' ' ')"
[ "$got" = "100 500 900 " ] || fail "rejects lines: $got"
q out/quickstart.db "SELECT _error FROM rejects WHERE _line = 500" | grep -q "cannot" || fail "reason for line 500"
# A second run writes nothing new (exactly once).
"$SLUICE" run pipelines/quickstart.yaml --quiet || fail "second run failed"
got2="$(q out/quickstart.db 'SELECT count(*), sum(amount_cents) FROM orders')"
[ "$got2" = "$exp" ] || fail "second run changed the table: $got2"
echo "ok"
