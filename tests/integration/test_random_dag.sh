# Randomized DAGs (issue 6), the short version: random shapes (fan-out,
# fan-in, diamonds, routes, several sinks on one table and on other files,
# two sources on the same files, dead letters to the same and another file),
# random engine.threads and queue sizes, random kill -9 points; every table
# is checked against an independent model (random_dag.py): exact rows, no
# loss, no duplicate, a replay writes nothing, and peak RSS within
# memory_limit + 16 MiB. bench/random_dag.sh runs many more seeds.
# A failing seed prints its pipeline, the differing rows, the kept work dir
# and the command that reproduces it. RANDOM_DAG_SEEDS overrides the seeds.
. "$(dirname "$0")/lib.sh"
SEEDS=${RANDOM_DAG_SEEDS:-1-16}
RSS=""
if [ -n "${SLUICE_SANITIZE:-}" ]; then
    # Sanitizer shadow memory makes the peak RSS meaningless there.
    RSS=--no-rss
fi
python3 "$SLUICE_ROOT/tests/integration/random_dag.py" --sluice "$SLUICE" --seeds "$SEEDS" \
    --records $((20000 / SCALE)) --kill-scale "$SCALE" --require-shapes $RSS ||
    fail "random DAG: failing seeds above (each with its pipeline and how to reproduce it)"
echo "ok"
