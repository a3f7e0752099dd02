# A run killed while its file sink writes an LZ4 file leaves a frame
# without its end; the next run used to append a new frame after it, and
# every reader (lz4 -dc, sluice) stopped there: what came after was lost
# (hostile-user probe: 113,881 of 200,000 lines left after 8 kills). Each
# write is now a whole frame, and an unfinished last frame is dropped at
# open (it was never acknowledged, so it is read again).
. "$(dirname "$0")/lib.sh"
gen_orders data/a.jsonl 3000 1
gen_orders data/b.jsonl 2000 2
cat > p.yaml <<'YAML'
sources:
  s: { type: file, path: data/a.jsonl }
sinks:
  f: { type: file, inputs: [s], path: out/o.jsonl.lz4, compression: lz4 }
YAML
"$SLUICE" run p.yaml --quiet || fail "first run"
# What a kill in the middle of a write leaves: the start of a frame.
lz4 -q -c data/b.jsonl | head -c 3000 >> out/o.jsonl.lz4
"$SLUICE" run p.yaml --set sources.s.path=data/b.jsonl 2> run2.log > /dev/null || fail "run 2: $(cat run2.log)"
grep -q "ends in an unfinished LZ4 frame" run2.log || fail "the dropped frame is not said: $(cat run2.log)"
lines=$(lz4 -dc out/o.jsonl.lz4 | wc -l)
[ "$lines" = 5000 ] || fail "lz4 -dc reads $lines lines, want 5000"
# sluice reads it back whole too.
printf 'sources:\n  r: { type: file, path: out/o.jsonl.lz4 }\nsinks:\n  n: { type: null, inputs: [r] }\n' > back.yaml
"$SLUICE" run back.yaml 2> back.log || fail "read back: $(cat back.log)"
awk '$1 == "n" { if ($4 != 5000 || $7 != 0) bad = 1; seen = 1 } END { exit !seen || bad }' back.log ||
    fail "read back: $(cat back.log)"
# An empty run still leaves a valid .lz4 file.
: > data/empty.jsonl
"$SLUICE" run p.yaml --quiet --set sources.s.path=data/empty.jsonl --set sinks.f.path=out/e.jsonl.lz4 ||
    fail "empty run"
[ "$(lz4 -dc out/e.jsonl.lz4 | wc -c)" = 0 ] || fail "empty output is not a valid LZ4 file"
echo ok
