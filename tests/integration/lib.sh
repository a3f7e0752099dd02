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

# Sanitizer builds are slower: tests scale their data with this.
SCALE=1
if [ -n "${SLUICE_SANITIZE:-}" ]; then
    SCALE=4
fi

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
