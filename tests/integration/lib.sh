# Shared helpers for the integration tests (sourced). SLUICE is the binary,
# SLUICE_ROOT the repository; each test works in its own temporary folder.
set -eu
: "${SLUICE:?set SLUICE to the sluice binary}"
: "${SLUICE_ROOT:?set SLUICE_ROOT to the repository}"
WORK=$(mktemp -d /tmp/sluice-it.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# err_of FILE: what explains a failed run: with a sanitizer's report in
# FILE, the last lines before it and the report's start (the stack's last
# lines alone do not say what went wrong); else the last five lines.
err_of() {
    local pat='^==[0-9]+==(ERROR|WARNING)|WARNING: ThreadSanitizer|runtime error:'
    if grep -qE "$pat" "$1" 2> /dev/null; then
        sed -nE "/$pat/q;p" "$1" | tail -n 5
        grep -m1 -A40 -E "$pat" "$1"
    else
        tail -n 5 "$1"
    fi
}

# Sanitizer builds are slower: tests scale their data with this.
SCALE=1
if [ -n "${SLUICE_SANITIZE:-}" ]; then
    SCALE=4
fi

# run_rc CMD...: runs CMD without ending the test when it fails; its exit
# code is left in rc (redirections after the call apply to CMD).
run_rc() {
    set +e
    "$@"
    rc=$?
    set -e
}

q() {
    sqlite3 "$1" "$2"
}

# gen_orders FILE N SEED: N generated orders as JSON lines in FILE (sluice's
# generator source into its file sink).
gen_orders() {
    printf 'sources:\n  gen: { type: generator, count: %s, seed: %s }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
        "$2" "$3" "$1" > "$WORK/gen-orders.yaml"
    "$SLUICE" run "$WORK/gen-orders.yaml" --quiet || fail "gen_orders $1"
}

# wait_until COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails
# (returns 1) after ${WAIT_TIMEOUT:-120} s.
wait_until() {
    local deadline=$((SECONDS + ${WAIT_TIMEOUT:-120}))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# hold_lock DB MOST [LEAST]: another process takes DB's write lock (BEGIN
# EXCLUSIVE) and keeps it until the file `release` exists and LEAST seconds
# passed, or MOST seconds passed; returns once the lock is held, with the
# process's pid in LOCKER.
hold_lock() {
    python3 - "$1" "$2" "${3:-0}" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
open("locked", "w").close()
start, most, least = time.time(), float(sys.argv[2]), float(sys.argv[3])
while time.time() < start + most and not (os.path.exists("release") and time.time() >= start + least):
    time.sleep(0.05)
db.execute("ROLLBACK")
PY
    LOCKER=$!
    wait_until test -f locked || fail "locker did not start"
}

# check_rss FILE BOUND_MB WHAT: fails when the peak RSS that /usr/bin/time
# -f %M wrote to FILE is above BOUND_MB (not checked under the sanitizers,
# whose shadow memory counts in RSS).
check_rss() {
    local kb
    kb=$(cat "$1")
    echo "$3: peak RSS $((kb / 1024)) MB"
    if [ -z "${SLUICE_SANITIZE:-}" ] && [ "$kb" -gt $(($2 * 1024)) ]; then
        fail "$3: peak RSS $((kb / 1024)) MB (bound $2 MB)"
    fi
}

# json FILE EXPR: EXPR evaluated in python with d = the JSON in FILE.
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# counts_add_up FILE (--summary-json): in + added = out + dropped + shed + dead for
# every node, or fail.
counts_add_up() {
    python3 - "$1" <<'PY' || fail "counts do not add up: $(cat "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
for name, n in d["nodes"].items():
    if n["in"] + n.get("added", 0) != n["out"] + n["dropped"] + n["shed"] + n["dead"]:
        sys.exit("%s: in %d != out %d + dropped %d + shed %d + dead %d" % (
            name, n["in"], n["out"], n["dropped"], n["shed"], n["dead"]))
PY
}

# text_amounts FILE: every 10th order of FILE, from the first, gets a text
# amount ("n/a"), so that an expression on it fails (a dead letter).
text_amounts() {
    python3 - "$1" << 'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
with open(sys.argv[1], "w") as f:
    for i, l in enumerate(lines):
        o = json.loads(l)
        if i % 10 == 0:
            o["amount"] = "n/a"
        f.write(json.dumps(o) + "\n")
PY
}

# kill_runs N MAX CMD...: N times, starts CMD in the background (stderr
# dropped) and kills it with -9 after 0.1 to 0.MAX s.
kill_runs() {
    local n=$1 max=$2 i pid
    shift 2
    for i in $(seq "$n"); do
        "$@" 2> /dev/null &
        pid=$!
        sleep "0.$((RANDOM % max + 1))"
        kill -9 $pid 2> /dev/null || true
        wait $pid 2> /dev/null || true
    done
}
