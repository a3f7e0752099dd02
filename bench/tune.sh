#!/bin/sh
# `workers: auto` against a sweep of fixed `workers` (issue 7), in one run:
# for each scenario, every fixed value of the sweep and then auto run for
# SECS seconds on an endless generator (stopped by SIGTERM, a clean stop).
# A map after the tuned node stamps each record with now() into a small
# file, so the rate is read off the data itself, per 100 ms:
#   steady  the median rate of the second half of the run
#   t90     auto only: when a 500 ms window first reached 90% of the best
#           fixed value's steady rate (cold start included)
# Scenarios: delay 20 ms per batch (scales until the CPUs run out), delay
# with saturate_at 8 (no gain past 8 calls at once; in-flight calls are
# read off the delay's summary line), and a CPU-bound map (best near the
# core count). Usage: bench/tune.sh [build dir]; SECS=4 SWEEP="1 2 4 ..."
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SLUICE="$BUILD/sluice"
[ -x "$SLUICE" ] || { echo "build sluice first"; exit 1; }
SECS=${SECS:-4}
SWEEP=${SWEEP:-1 2 4 8 16 32 64}
OUT=bench/out/tune
rm -rf "$OUT"
mkdir -p "$OUT"

# scenario NAME WORKERS -> pipeline file on stdout
scenario() {
    case $1 in
    delay) node='{ type: delay, inputs: [g], per_batch: 20ms' ;;
    saturate) node='{ type: delay, inputs: [g], per_batch: 20ms, saturate_at: 8' ;;
    cpu) node="{ type: map, inputs: [g], set: { a: 'concat(lower(user), upper(country), to_string(round(amount * 3.7)), substr(ts, 0, 10))', b: 'len(concat(meta.ip, meta.ua, status, user, country)) * amount', c: 'if(amount > 500, upper(concat(status, user)), lower(concat(country, ts)))' }" ;;
    esac
    cat <<YAML
sources:
  g: { type: generator, count: 1000000000000 }
stages:
  x: $node, workers: $2 }
  stamp: { type: map, inputs: [x], set: { t: 'now()' }, drop: [id, user, amount, country, status, ts, tags, meta, a, b, c] }
sinks:
  f: { type: file, inputs: [stamp], path: $OUT/out.jsonl }
YAML
}

# run NAME WORKERS -> "steady t90_s" (t90 against $BEST) on stdout
run() {
    scenario "$1" "$2" > "$OUT/p.yaml"
    rm -f "$OUT/out.jsonl"
    "$SLUICE" run "$OUT/p.yaml" --summary-json "$OUT/s.json" 2> "$OUT/err" &
    pid=$!
    sleep "$SECS"
    kill -TERM "$pid"
    wait "$pid" || { echo "run failed: $(tail -n 3 "$OUT/err")" >&2; exit 1; }
    python3 - "$OUT/out.jsonl" "${BEST:-0}" <<'PY'
import json, sys
ts = [json.loads(l)["t"] for l in open(sys.argv[1])]
best = float(sys.argv[2])
t0 = min(ts)
bins = {}
for t in ts:
    b = (t - t0) // 100
    bins[b] = bins.get(b, 0) + 1
n = max(bins) + 1
rates = [bins.get(i, 0) * 10 for i in range(n - 1)]  # the last bin is cut by the stop
half = sorted(rates[len(rates) // 2:])
steady = half[len(half) // 2] if half else 0
t90 = "-"
if best > 0:
    for i in range(len(rates) - 4):
        if sum(rates[i:i + 5]) / 5 >= 0.9 * best:
            t90 = "%.1f" % ((i + 5) / 10)
            break
print(steady, t90)
PY
}

for sc in delay saturate cpu; do
    echo "== $sc: fixed workers sweep, $SECS s each (records/s, steady)"
    BEST=0
    bestw=0
    for w in $SWEEP; do
        set -- $(BEST=0 run "$sc" "$w")
        printf '  workers %-3s %10s/s\n' "$w" "$1"
        if [ "$1" -gt "$BEST" ]; then
            BEST=$1
            bestw=$w
        fi
    done
    set -- $(BEST=$BEST run "$sc" auto)
    line=$(grep '^x: workers auto' "$OUT/err" || true)
    calls=$(grep '^x: .* calls, at most' "$OUT/err" | sed 's/.*at most \([0-9]*\) at once.*/\1/' || true)
    ratio=$(python3 -c "print('%.3f' % ($1 / $BEST))")
    printf '  auto        %10s/s = %s of the best fixed (workers %s), 90%% after %s s; %s%s\n' \
        "$1" "$ratio" "$bestw" "$2" "${line#x: }" "${calls:+; at most $calls calls at once}"
done
