# engine.control names a path of the user's own; a socket a killed run
# left there is replaced, but a regular file (a typo: the pipeline file,
# the database) must never be deleted: run must refuse it (exit 1) and
# leave the file as it was.
. "$(dirname "$0")/lib.sh"
echo "precious" > precious.txt
cat > p.yaml <<'YAML'
engine: { control: precious.txt }
sources: { g: { type: generator, count: 10 } }
sinks: { n: { type: "null", inputs: [g] } }
YAML
set +e
"$SLUICE" run p.yaml --quiet 2> err.txt
rc=$?
set -e
[ -f precious.txt ] && [ "$(cat precious.txt)" = precious ] ||
    fail "engine.control: precious.txt deleted the file (exit $rc): $(cat err.txt)"
[ $rc = 1 ] || fail "engine.control on a regular file: exit $rc, want 1: $(cat err.txt)"
# The pipeline file itself.
cat > self.yaml <<'YAML'
engine: { control: self.yaml }
sources: { g: { type: generator, count: 10 } }
sinks: { n: { type: "null", inputs: [g] } }
YAML
set +e
"$SLUICE" run self.yaml --quiet 2> err.txt
set -e
[ -f self.yaml ] || fail "engine.control: self.yaml deleted the pipeline file"
echo ok
