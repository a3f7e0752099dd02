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
