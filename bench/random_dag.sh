#!/bin/sh
# The long randomized DAG test (issue 6): many seeds, more data, more kill -9
# points and bigger pipelines than the CI version
# (tests/integration/test_random_dag.sh). Prints every failing seed with its
# pipeline, the differing rows, its kept work dir and the command that
# reproduces it, then a summary. Extra arguments go to random_dag.py (e.g.
# --distinct-tables, --motifs diamond,fanout, --no-rss).
# Usage: bench/random_dag.sh [build dir] [first seed] [seeds] [records] [args...]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FIRST=${2:-1000}
COUNT=${3:-100}
RECORDS=${4:-100000}
[ $# -gt 4 ] && shift 4 || shift $#
[ -x "$BUILD/sluice" ] || { echo "build sluice first (scripts/quickstart or cmake)"; exit 1; }
exec python3 tests/integration/random_dag.py --sluice "$BUILD/sluice" \
    --seeds "$FIRST-$((FIRST + COUNT - 1))" --records "$RECORDS" \
    --max-kills 6 --max-size 8 --timeout 600 "$@"
