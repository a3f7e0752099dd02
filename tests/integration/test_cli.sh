# The command line: exit codes, config errors located as file:line:col:
# key.path, --set overrides, graph output, a glob matching nothing.
. "$(dirname "$0")/lib.sh"
expect() { # expected-exit-code stderr-substring command...
    want=$1
    pattern=$2
    shift 2
    set +e
    "$@" > out.txt 2> err.txt
    got=$?
    set -e
    [ "$got" = "$want" ] || fail "$*: exit $got, expected $want: $(cat err.txt)"
    [ -z "$pattern" ] || grep -qF -- "$pattern" err.txt || fail "$*: stderr lacks '$pattern': $(cat err.txt)"
}
cat > ok.yaml <<'YAML'
sources:
  gen: { type: generator, count: 100 }
stages:
  f: { type: filter, inputs: [gen], where: 'amount > 100' }
sinks:
  s: { type: sqlite, inputs: [f], path: out/ok.db, table: t }
YAML
expect 0 "" "$SLUICE" --version
expect 0 "" "$SLUICE" --help
expect 2 "usage" "$SLUICE"
expect 2 "unknown command" "$SLUICE" frobnicate ok.yaml
expect 0 "" "$SLUICE" validate ok.yaml
[ ! -e out ] || fail "validate did I/O"
expect 2 "--set: stages.f.where" "$SLUICE" validate ok.yaml --set 'stages.f.where=amount >'
printf 'sources:\n  gen: { type: generator }\nsinks:\n  s: { type: null, inputs: [gen], batch: 3 }\n' > bad0.yaml
expect 2 "bad0.yaml:4:" "$SLUICE" validate bad0.yaml
expect 2 "--set: stages.f.wher" "$SLUICE" validate ok.yaml --set 'stages.f.wher=true'
expect 0 "" "$SLUICE" run ok.yaml --quiet --set sources.gen.count=10 --set 'stages.f.where=true'
[ "$(q out/ok.db 'SELECT count(*) FROM t')" = 10 ] || fail "--set not applied"
expect 0 "" "$SLUICE" graph ok.yaml
grep -q '"gen" -> "f"' out.txt || fail "graph: $(cat out.txt)"

printf 'sources:\n  a: {type: file, path: x}\nsinks:\n  s: {type: null, inputs: [b]}\n' > bad1.yaml
expect 2 "bad1.yaml:4:" "$SLUICE" validate bad1.yaml
printf 'sources:\n  a: {type: generator}\nstages:\n  x: {type: map, inputs: [a, y], set: {k: "1"}}\n  y: {type: map, inputs: [x], set: {k: "1"}}\nsinks:\n  s: {type: null, inputs: [y]}\n' > cycle.yaml
expect 2 "cycle" "$SLUICE" validate cycle.yaml
printf 'sources:\n  a: {type: file, path: nothing-here/*.jsonl}\nsinks:\n  s: {type: null, inputs: [a]}\n' > glob.yaml
expect 0 "" "$SLUICE" validate glob.yaml
expect 1 "nothing-here/*.jsonl" "$SLUICE" run glob.yaml
echo "ok"
