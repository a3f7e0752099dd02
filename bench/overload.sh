#!/bin/sh
# Overload (issue 7): input 10x faster than what the slow node can take, for
# SECS seconds, with when_full: drop_newest and drop_oldest against block
# (backpressure: the slow node runs at its full capacity, the input slows
# down to it). The slow node is a delay stage (10 ms per batch: ~100k
# records/s) in front of SQLite. Prints the slow node's rate against its
# capacity (the share of the time it spent in calls), what was shed, peak RSS against memory_limit + 16 MiB, and
# whether in = out + dropped + shed + dead held for every node.
# Then when_full: shed with three priority levels (1% of the input at 9,
# 49% at 5, 50% at 0) in front of a stage that costs 10 us a record: per
# level, what came in, what was written and the share shed, and the stage's
# busy time.
# Usage: bench/overload.sh [build dir]; SECS=30 LIMIT=64MiB
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SLUICE="$BUILD/sluice"
[ -x "$SLUICE" ] || { echo "build sluice first"; exit 1; }
SECS=${SECS:-30}
LIMIT=${LIMIT:-64MiB}
OUT=bench/out/overload
rm -rf "$OUT"
mkdir -p "$OUT"
CAP=102400 # records/s the slow node takes: 1024-record batches, 10 ms each

for policy in block drop_newest drop_oldest; do
    rm -f "$OUT"/o.db*
    cat > "$OUT/p.yaml" <<YAML
engine: { memory_limit: $LIMIT }
sources:
  g: { type: generator, count: $((CAP * 10 * SECS)), rate: $((CAP * 10)) }
stages:
  slow: { type: delay, inputs: [g], per_batch: 10ms, when_full: $policy }
sinks:
  db: { type: sqlite, inputs: [slow], path: $OUT/o.db, table: orders }
YAML
    # The input is paced: it ends after SECS s whatever the slow node does;
    # block stops reading after SECS s instead (what it read by then).
    "$SLUICE" run "$OUT/p.yaml" --quiet --summary-json "$OUT/s.json" &
    pid=$!
    if [ "$policy" = block ]; then
        sleep "$SECS"
        kill -TERM "$pid"
    fi
    wait "$pid"
    python3 - "$OUT/s.json" "$policy" "$CAP" "$LIMIT" "$OUT/o.db" <<'PY'
import json, sqlite3, sys
d = json.load(open(sys.argv[1]))
policy, cap, limit = sys.argv[2], int(sys.argv[3]), sys.argv[4]
units = {"MiB": 1 << 20, "GiB": 1 << 30, "KiB": 1 << 10}
lim = next(int(limit[:-3]) * v for k, v in units.items() if limit.endswith(k))
ok = all(n["in"] == n["out"] + n["dropped"] + n["shed"] + n["dead"] for n in d["nodes"].values())
slow = d["nodes"]["slow"]
rows = sqlite3.connect(sys.argv[5]).execute("SELECT count(*) FROM orders").fetchone()[0]
rate = slow["out"] / d["elapsed_s"]
busy = slow["batches"] / d["elapsed_s"] / 100.0  # 10 ms calls: 100 a second at most
print("%-12s in %9d  out %8d  shed %9d  rows %8d  slow node %7.0f/s, busy %.3f of the time;"
      " peak RSS %3d MB (bound %d MB); counts add up: %s"
      % (policy, slow["in"], slow["out"], slow["shed"], rows, rate, busy,
         d["peak_rss_bytes"] >> 20, (lim >> 20) + 16, "yes" if ok and rows == slow["out"] else "NO"))
PY
done

rm -f "$OUT"/o.db*
cat > "$OUT/p.yaml" <<YAML
engine: { memory_limit: $LIMIT }
sources:
  g: { type: generator, count: $((CAP * 10 * SECS)), rate: $((CAP * 10)) }
stages:
  tag: { type: map, inputs: [g], set: { c: '1' }, priority: 'if(amount > 990, 9, if(amount > 500, 5, 0))' }
  slow: { type: delay, inputs: [tag], per_record: 10us, when_full: shed }
  mark: { type: map, inputs: [slow], set: { lvl: '@priority' } }
sinks:
  db: { type: sqlite, inputs: [mark], path: $OUT/o.db, table: orders }
YAML
"$SLUICE" run "$OUT/p.yaml" --quiet --summary-json "$OUT/s.json"
python3 - "$OUT/s.json" "$LIMIT" "$OUT/o.db" <<'PY'
import json, sqlite3, sys
d = json.load(open(sys.argv[1]))
limit = sys.argv[2]
units = {"MiB": 1 << 20, "GiB": 1 << 30, "KiB": 1 << 10}
lim = next(int(limit[:-3]) * v for k, v in units.items() if limit.endswith(k))
ok = all(n["in"] == n["out"] + n["dropped"] + n["shed"] + n["dead"] for n in d["nodes"].values())
slow = d["nodes"]["slow"]
db = sqlite3.connect(sys.argv[3])
rows = dict(db.execute("SELECT lvl, count(*) FROM orders GROUP BY lvl").fetchall())
shed = {int(k): v for k, v in slow["shed_by_priority"].items()}
busy = slow["out"] * 10e-6 / d["elapsed_s"]
print("%-12s in %9d  out %8d  shed %9d  slow node busy %.3f of the time; peak RSS %3d MB (bound %d MB);"
      " counts add up: %s" % ("shed", slow["in"], slow["out"], slow["shed"], busy,
                               d["peak_rss_bytes"] >> 20, (lim >> 20) + 16,
                               "yes" if ok and sum(rows.values()) == slow["out"] else "NO"))
for lvl in (9, 5, 0):
    n = rows.get(lvl, 0) + shed[lvl]
    print("  level %d: in %9d  written %8d  shed %5.1f%%" % (lvl, n, rows.get(lvl, 0),
                                                            100.0 * shed[lvl] / n if n else 0))
PY
