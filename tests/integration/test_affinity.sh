# engine.cpu_affinity: the CPU workers (threads named sl-worker-N) are pinned
# as configured, visible in /proc/PID/task/*/status; blocking threads are
# not. A listed CPU this process may not run on fails the run (exit 1,
# naming it), not validate (which checks the file, not the machine).
. "$(dirname "$0")/lib.sh"

# cpus_of PID: "NAME LIST" for each sl-* thread of PID.
cpus_of() {
    local t
    for t in /proc/"$1"/task/*; do
        case $(cat "$t/comm" 2>/dev/null) in
        sl-worker-* | sl-blocking-*)
            echo "$(cat "$t/comm") $(awk '/^Cpus_allowed_list:/ { print $2 }' "$t/status")"
            ;;
        esac
    done
}

# workers_named PID N: PID has N sl-worker threads and 3 blocking threads
# (the sink's and delay calls': those are started on demand, mostly by the
# pinned workers, whose CPUs a new thread would inherit).
workers_named() {
    [ "$(cpus_of "$1" | grep -c '^sl-worker-')" = "$2" ] &&
        [ "$(cpus_of "$1" | grep -c '^sl-blocking-')" -ge 3 ]
}

# run_pinned AFFINITY THREADS: runs a paced generator with those settings in
# the background; once its threads are up, stores cpus_of in threads.txt,
# then stops it with SIGINT (exit 0).
run_pinned() {
    cat > pin.yaml <<YAML
engine: { threads: $2, cpu_affinity: $1 }
sources:
  gen: { type: generator, count: 1000000, rate: 1000 }
stages:
  call: { type: delay, inputs: [gen], per_batch: 20ms, workers: 4 }
sinks:
  f: { type: file, inputs: [call], path: out/pin.jsonl }
YAML
    "$SLUICE" run pin.yaml --quiet 2> pin.log &
    local pid=$!
    wait_until workers_named "$pid" "$2" || { kill -9 "$pid"; fail "no worker threads: $(cpus_of "$pid")"; }
    cpus_of "$pid" > threads.txt
    kill -INT "$pid"
    wait "$pid" || fail "run with cpu_affinity $1: exit $?: $(cat pin.log)"
}

allowed=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
first=$(python3 -c 'import os; print(sorted(os.sched_getaffinity(0))[0])')

# 1. A list: every worker on list[i mod n]; here all on the first CPU.
run_pinned "[$first]" 3
[ "$(grep -c "^sl-worker-[0-2] $first\$" threads.txt)" = 3 ] ||
    fail "workers not pinned to CPU $first: $(cat threads.txt)"
grep '^sl-blocking-' threads.txt | while read -r name list; do
    [ "$list" = "$allowed" ] || fail "$name pinned to $list (blocking threads are not pinned)"
done

# 2. true: worker i on the i-th allowed CPU (mod their count).
run_pinned true 3
python3 - "$first" <<'PY' || fail "cpu_affinity true: $(cat threads.txt)"
import os, sys
cpus = sorted(os.sched_getaffinity(0))
got = dict(line.split() for line in open("threads.txt") if line.startswith("sl-worker-"))
for i in range(3):
    want = str(cpus[i % len(cpus)])
    assert got["sl-worker-%d" % i] == want, (i, got, want)
PY

# 3. false (the default): workers keep the process's CPUs.
run_pinned false 2
grep '^sl-worker-' threads.txt | while read -r name list; do
    [ "$list" = "$allowed" ] || fail "$name pinned to $list without cpu_affinity"
done

# 4. A CPU the process may not use: validate accepts the file, run refuses
# it with exit 1 naming the CPU (1023 is in range but on no test machine).
cat > far.yaml <<'YAML'
engine: { cpu_affinity: [0, 1023] }
sources:
  gen: { type: generator, count: 10 }
sinks:
  f: { type: file, inputs: [gen], path: out/far.jsonl }
YAML
"$SLUICE" validate far.yaml || fail "validate refused a CPU of another machine"
set +e
"$SLUICE" run far.yaml --quiet 2> far.log
code=$?
set -e
[ "$code" = 1 ] || fail "run with CPU 1023: exit $code: $(cat far.log)"
grep -q "engine.cpu_affinity: CPU 1023 is not one this process may run on" far.log ||
    fail "message: $(cat far.log)"

# 5. The process's own mask is what counts: under taskset to one CPU,
# another CPU of the machine is refused.
other=$(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(c[1] if len(c) > 1 else "")')
if command -v taskset > /dev/null && [ -n "$other" ]; then
    set +e
    taskset -c "$first" "$SLUICE" run far.yaml --quiet --set "engine.cpu_affinity=[$other]" 2> ts.log
    code=$?
    set -e
    [ "$code" = 1 ] || fail "CPU $other under taskset -c $first: exit $code: $(cat ts.log)"
    grep -q "CPU $other is not one" ts.log || fail "taskset message: $(cat ts.log)"
fi

echo "ok"
