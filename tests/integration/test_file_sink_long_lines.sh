# Long lines fanned out to many file sinks stay within the memory bound
# (hostile-input probe 04): each file sink formatted a whole write's JSON
# text before writing it and kept that buffer, one 12 MB copy per sink
# (12 MB lines at memory_limit 16MiB: 74 MB peak RSS with 4 sinks, 122 MB
# with 8). Now a sink writes its text out in pieces of at most 256 KiB, long
# records included, and frees the pieces after the write: peak RSS stays
# within the limit + 16 MiB + the longest line, however many sinks. Every
# sink writes the same bytes as one sink alone does (the pieces cut long
# strings between characters, escapes and multibyte ones included), and
# the lz4 one the same text. Sanitizer builds only run it, unmeasured.
. "$(dirname "$0")/lib.sh"
mkdir -p in
python3 - <<'PY'
import json
# Long strings of every kind of character: plain, escaped (quotes,
# backslashes, control characters), 2-, 3- and 4-byte UTF-8.
unit = 'x' * 40 + '\u00e9\u20ac\U0001F600"\\\n\t\u0001' + 'y' * 17
with open("in/long.jsonl", "w") as f:
    for i in range(3):
        f.write(json.dumps({"id": i, "blob": unit * (12_000_000 // 64), "n": i * 1.5},
                           ensure_ascii=False) + "\n")
        for j in range(200):
            f.write(json.dumps({"id": 1000 + i * 200 + j, "v": "s\u00e9", "ok": j % 2 == 0}) + "\n")
PY
fan() {
    echo "engine: { memory_limit: 16MiB }"
    echo "sources:"
    echo "  s: { type: file, path: in/long.jsonl, max_line: 64MiB }"
    echo "sinks:"
    for i in $(seq 1 "$1"); do
        echo "  f$i: { type: file, inputs: [s], path: out/f$i.jsonl }"
    done
    [ "$2" = plain ] || echo "  z: { type: file, inputs: [s], path: out/z.jsonl.lz4, compression: lz4 }"
}
fan 1 plain > one.yaml
"$SLUICE" run one.yaml --quiet 2> one.log || fail "one sink: $(err_of one.log)"
mv out/f1.jsonl one.jsonl
[ "$(wc -l < one.jsonl)" = 603 ] || fail "one sink wrote $(wc -l < one.jsonl) lines"
python3 - <<'PY' || fail "one sink's output is not the input's records"
import json
a = [json.loads(l) for l in open("in/long.jsonl")]
b = [json.loads(l) for l in open("one.jsonl")]
assert a == b
PY
fan 5 lz4 > many.yaml
/usr/bin/time -f %M -o rss.txt "$SLUICE" run many.yaml --quiet 2> many.log ||
    fail "five sinks: $(err_of many.log)"
for i in 1 2 3 4 5; do
    cmp -s out/f$i.jsonl one.jsonl || fail "f$i differs from what one sink writes"
done
lz4 -dc out/z.jsonl.lz4 | cmp -s - one.jsonl || fail "the lz4 sink's text differs"
rm -f out/*.jsonl out/*.lz4
check_rss rss.txt $((16 + 16 + 12)) "12 MB lines into 6 file sinks"
echo ok
