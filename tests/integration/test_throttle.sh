# The `throttle` stage. Deterministic shapes first: at a rate so low that
# no token comes back during the run, exactly `burst` records of a fast
# input pass (per key: each key its burst), and the counts add up (in =
# out + dropped + dead). Then a paced generator, with bounds that a slow
# machine cannot break (the output is bounded above by burst + rate x the
# run's wall time). wait mode loses nothing and takes at least
# (N - burst) / rate; SIGINT cuts a long wait short. Bad configs are
# refused, located, exit 2.
. "$(dirname "$0")/lib.sh"

# summary LOG NODE: NODE's throttle summary line.
summary() {
    grep "^$2: rate " "$1" || fail "no $2 summary line: $(cat "$1")"
}
# field LOG NODE WHAT: passed, limited, keys, evicted, waited (s), cut.
field() {
    local line
    line=$(summary "$1" "$2")
    case $3 in
    passed) echo "$line" | sed -n 's/.*: passed \([0-9]*\),.*/\1/p' ;;
    limited) echo "$line" | sed -n 's/.*, limited \([0-9]*\) .*/\1/p' ;;
    keys) echo "$line" | sed -n 's/.*, keys \([0-9]*\),.*/\1/p' ;;
    evicted) echo "$line" | sed -n 's/.*, evicted \([0-9]*\).*/\1/p' ;;
    waited) echo "$line" | sed -n 's/.*(waited \([0-9.]*\) s).*/\1/p' ;;
    cut) echo "$line" | sed -n 's/.*, \([0-9]*\) waits cut short by the stop.*/\1/p' ;;
    esac
}
# counts LOG NODE: "in out dropped dead" of NODE's summary row.
counts() {
    awk -v n="$2" '$1 == n && NF == 8 { print $4, $5, $6, $7 }' "$1"
}
now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# 1. A burst of 20000 records at 0.001 per s (one token per 1000 s): the
# first 100 pass, the rest are dropped and counted; the sink has exactly
# them, the first 100 ids. A leaky bucket passes exactly one.
cat > burst.yaml <<'YAML'
sources:
  gen: { type: generator, count: 20000 }
stages:
  limit: { type: throttle, inputs: [gen], rate: 0.001, burst: 100 }
sinks:
  db: { type: sqlite, inputs: [limit], path: out/burst.db, table: orders }
YAML
"$SLUICE" run burst.yaml 2> burst.log || fail "burst run: $(cat burst.log)"
[ "$(counts burst.log limit)" = "20000 100 19900 0" ] || fail "burst counts: $(cat burst.log)"
[ "$(counts burst.log db)" = "100 100 0 0" ] || fail "db counts: $(cat burst.log)"
[ "$(q out/burst.db 'SELECT count(*), min(id), max(id) FROM orders')" = "100|1|100" ] ||
    fail "burst rows: $(q out/burst.db 'SELECT count(*), min(id), max(id) FROM orders')"
summary burst.log limit | grep -q "^limit: rate 0.001/s token_bucket burst 100: passed 100, limited 19900 (dropped), keys 1, evicted 0$" ||
    fail "summary line: $(summary burst.log limit)"
sed -e 's/burst: 100/algorithm: leaky_bucket/' -e 's/burst.db/leaky.db/' burst.yaml > leaky.yaml
"$SLUICE" run leaky.yaml 2> leaky.log || fail "leaky run: $(cat leaky.log)"
[ "$(counts leaky.log limit)" = "20000 1 19999 0" ] || fail "leaky counts: $(cat leaky.log)"
summary leaky.log limit | grep -q "^limit: rate 0.001/s leaky_bucket: passed 1, limited 19999 (dropped)" ||
    fail "leaky summary line: $(summary leaky.log limit)"

# 2. Per key: each country gets its own burst of 5 (the generator makes 8
# countries); a key that is missing (null) is one key of its own; a key
# that fails to evaluate dead-letters the record; in = out + dropped +
# dead every time.
cat > keys.yaml <<'YAML'
sources:
  gen: { type: generator, count: 20000 }
stages:
  limit: { type: throttle, inputs: [gen], rate: 0.001, burst: 5, key: 'country' }
sinks:
  db: { type: sqlite, inputs: [limit], path: out/keys.db, table: orders }
YAML
"$SLUICE" run keys.yaml 2> keys.log || fail "keys run: $(cat keys.log)"
ncountries=$(q out/keys.db 'SELECT count(DISTINCT country) FROM orders')
[ "$ncountries" -ge 2 ] || fail "only $ncountries countries"
[ "$(q out/keys.db 'SELECT count(*) FROM (SELECT country FROM orders GROUP BY 1 HAVING count(*) != 5)')" = 0 ] ||
    fail "a key without exactly its burst: $(q out/keys.db 'SELECT country, count(*) FROM orders GROUP BY 1')"
[ "$(counts keys.log limit)" = "20000 $((ncountries * 5)) $((20000 - ncountries * 5)) 0" ] ||
    fail "keys counts: $(cat keys.log)"
[ "$(field keys.log limit keys)" = "$ncountries" ] || fail "keys: $(summary keys.log limit)"
"$SLUICE" run keys.yaml --set stages.limit.key=nosuch --set sinks.db.path=out/null.db 2> null.log ||
    fail "null key run: $(cat null.log)"
[ "$(counts null.log limit)" = "20000 5 19995 0" ] || fail "null key counts: $(cat null.log)"
"$SLUICE" run keys.yaml --set 'stages.limit.key=if(id % 2 == 0, country * 2, country)' \
    --set sinks.db.path=out/dead.db 2> dead.log || fail "dead key run: $(cat dead.log)"
[ "$(counts dead.log limit)" = "20000 $((ncountries * 5)) $((10000 - ncountries * 5)) 10000" ] ||
    fail "dead-lettered keys: $(cat dead.log)"
grep -q "key: " dead.log || fail "no key reason: $(head -5 dead.log)"

# 3. max_keys: 20000 distinct ids through 100 buckets; each id is new, so
# each passes (its bucket starts full), and 19900 buckets were evicted.
"$SLUICE" run keys.yaml --set stages.limit.key=id --set stages.limit.max_keys=100 \
    --set stages.limit.burst=1 --set sinks.db.path=out/lru.db 2> lru.log || fail "lru run: $(cat lru.log)"
[ "$(counts lru.log limit)" = "20000 20000 0 0" ] || fail "lru counts: $(cat lru.log)"
[ "$(field lru.log limit keys)" = 100 ] || fail "lru keys: $(summary lru.log limit)"
[ "$(field lru.log limit evicted)" = 19900 ] || fail "lru evicted: $(summary lru.log limit)"

# 4. A paced input: 1000 records/s for 3 s through 200/s, burst 20. What
# passes is at most burst + rate x the whole run's wall time (arrivals
# all fall within it), and at least half the rate over the input's 3 s
# (only an input far slower than its pace could pass less; the tokens of
# a stalled throttle are not lost: a late batch's records count as
# arriving over the time it gathered them).
cat > paced.yaml <<'YAML'
sources:
  gen: { type: generator, count: 3000, rate: 1000 }
stages:
  limit: { type: throttle, inputs: [gen], rate: 200, burst: 20 }
sinks:
  db: { type: sqlite, inputs: [limit], path: out/paced.db, table: orders }
YAML
t0=$(now_ms)
"$SLUICE" run paced.yaml 2> paced.log || fail "paced run: $(cat paced.log)"
wall_ms=$(($(now_ms) - t0))
read -r pin pout pdrop pdead <<< "$(counts paced.log limit)"
[ "$pin" = 3000 ] && [ $((pout + pdrop + pdead)) = 3000 ] && [ "$pdead" = 0 ] ||
    fail "paced counts: $(cat paced.log)"
[ "$pout" -le $((20 + 200 * wall_ms / 1000 + 1)) ] || fail "paced: $pout passed in $wall_ms ms"
[ "$pout" -ge 300 ] || fail "paced: only $pout passed in $wall_ms ms"
[ "$(q out/paced.db 'SELECT count(*) FROM orders')" = "$pout" ] || fail "paced rows"
echo "paced: $pout of 3000 passed in $wall_ms ms (ideal 620)"

# 5. wait: nothing is lost, and N records through burst b at rate r take
# at least (N - b) / r: 3000 at 2000/s after a burst of 100 is >= 1.45 s;
# a leaky bucket, 1500 at 1000/s, >= 1.499 s.
cat > wait.yaml <<'YAML'
sources:
  gen: { type: generator, count: 3000 }
stages:
  limit: { type: throttle, inputs: [gen], rate: 2000, burst: 100, when_limited: wait }
sinks:
  db: { type: sqlite, inputs: [limit], path: out/wait.db, table: orders }
YAML
t0=$(now_ms)
"$SLUICE" run wait.yaml 2> wait.log || fail "wait run: $(cat wait.log)"
wall_ms=$(($(now_ms) - t0))
[ "$wall_ms" -ge 1450 ] || fail "wait: 3000 records in $wall_ms ms"
[ "$(counts wait.log limit)" = "3000 3000 0 0" ] || fail "wait counts: $(cat wait.log)"
[ "$(q out/wait.db 'SELECT count(*), count(DISTINCT id) FROM orders')" = "3000|3000" ] ||
    fail "wait rows: $(q out/wait.db 'SELECT count(*), count(DISTINCT id) FROM orders')"
[ "$(field wait.log limit passed)" = 3000 ] || fail "wait passed: $(summary wait.log limit)"
echo "wait: 3000 records in $wall_ms ms (at least 1450)"
t0=$(now_ms)
sed -e 's/burst: 100/algorithm: leaky_bucket/' wait.yaml > wleaky.yaml
"$SLUICE" run wleaky.yaml --set stages.limit.rate=1000 --set sources.gen.count=1500 \
    --set sinks.db.path=out/wleaky.db 2> wleaky.log || fail "leaky wait run: $(cat wleaky.log)"
wall_ms=$(($(now_ms) - t0))
[ "$wall_ms" -ge 1499 ] || fail "leaky wait: 1500 records in $wall_ms ms"
[ "$(q out/wleaky.db 'SELECT count(*) FROM orders')" = 1500 ] || fail "leaky wait rows"

# 6. SIGINT while waiting for records due in hours: the stop cuts the
# wait short, everything read passes and is written, exit 0.
cat > sig.yaml <<'YAML'
engine: { drain_timeout: 10s }
sources:
  gen: { type: generator, count: 100000000 }
stages:
  limit: { type: throttle, inputs: [gen], rate: 0.01, when_limited: wait }
sinks:
  db: { type: sqlite, inputs: [limit], path: out/sig.db, table: orders }
  seen: { type: file, inputs: [gen], path: out/seen.jsonl }
YAML
"$SLUICE" run sig.yaml 2> sig.log &
pid=$!
has_lines() { [ -s out/seen.jsonl ]; }
WAIT_TIMEOUT=60 wait_until has_lines || fail "generator never emitted: $(cat sig.log)"
kill -INT $pid
set +e
wait $pid
rc=$?
set -e
[ "$rc" = 0 ] || fail "SIGINT during a long wait: exit $rc: $(cat sig.log)"
! grep -q "drain did not finish" sig.log || fail "drain waited: $(cat sig.log)"
[ "$(field sig.log limit cut)" -ge 1 ] || fail "no wait cut short: $(summary sig.log limit)"
# The time it waited, not the hours it planned to (it said 79 years).
python3 -c "import sys; sys.exit(not float(sys.argv[1]) < 60)" "$(field sig.log limit waited)" ||
    fail "waited more than the run lasted: $(summary sig.log limit)"
read -r lin lout _ <<< "$(counts sig.log limit)"
[ "$lin" -gt 0 ] && [ "$lin" = "$lout" ] || fail "limit in $lin, out $lout: $(cat sig.log)"
[ "$(q out/sig.db 'SELECT count(*) FROM orders')" = "$lout" ] ||
    fail "sqlite has $(q out/sig.db 'SELECT count(*) FROM orders') rows, limit emitted $lout"

# 7. Bad configs: run refuses each one as validate does (test_cli checks
# validate over the same files), exit 2, the same located message.
n=0
for f in "$SLUICE_ROOT"/tests/data/conf/builtin/bad_throttle_*.yaml; do
    want=$(head -1 "$f")
    want=${want#\# expect: }
    want=${want/#FILE/$f}
    set +e
    "$SLUICE" run "$f" > /dev/null 2> err.txt
    got=$?
    set -e
    [ "$got" = 2 ] || fail "$f: run exit $got, expected 2: $(cat err.txt)"
    [ "$(cat err.txt)" = "$want" ] || fail "$f:
    want $want
    got  $(cat err.txt)"
    n=$((n + 1))
done
[ "$n" -ge 10 ] || fail "only $n bad throttle configs"

# 8. --summary-json carries the throttle's figures, matching the counts.
cat > sj.yaml <<'YAML'
sources:
  gen: { type: generator, count: 5000 }
stages:
  limit: { type: throttle, inputs: [gen], rate: 1000, burst: 10 }
sinks:
  n: { type: null, inputs: [limit] }
YAML
"$SLUICE" run sj.yaml --quiet --summary-json sj.json || fail "summary json run"
python3 - <<'PY' || fail "throttle in summary JSON: $(cat sj.json)"
import json
n = json.load(open("sj.json"))["nodes"]["limit"]
t = n["throttle"]
assert t["passed"] == n["out"] and t["limited"] == n["dropped"], n
assert t["passed"] + t["limited"] == 5000 and t["keys"] == 1, n
PY
echo ok
