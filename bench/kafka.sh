#!/bin/sh
# Kafka consumption, in one run on the same mock cluster (librdkafka's mock,
# 3 brokers on loopback): 500k orders in a 32-partition topic, consumed by
# kcat as a group member (`kcat -G`, which pays the same group join) to
# /dev/null, and by sluice kafka -> map -> SQLite (exactly once). Prints both
# wall times, sluice's time to first assignment and its peak RSS.
# Usage: bench/kafka.sh [build dir] [N]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-500000}
OUT=bench/out/kafka
rm -rf "$OUT"
mkdir -p "$OUT"
SLUICE="$BUILD/sluice"
MOCK="$BUILD/sluice-mock-kafka"
mkfifo "$OUT/ctl"
sleep 100000 > "$OUT/ctl" &
holder=$!
"$MOCK" < "$OUT/ctl" > "$OUT/mock.out" 2> "$OUT/mock.err" &
mock=$!
trap 'kill $holder $mock 2>/dev/null || true' EXIT
while [ ! -s "$OUT/mock.out" ]; do sleep 0.05; done
BROKERS=$(head -1 "$OUT/mock.out")
printf 'topic orders 32\n' > "$OUT/ctl"
while [ "$(wc -l < "$OUT/mock.out")" -lt 2 ]; do sleep 0.05; done

printf 'sources:\n  gen: { type: generator, count: %s, seed: 5 }\nsinks:\n  f: { type: file, inputs: [gen], path: %s }\n' \
    "$N" "$OUT/orders.jsonl" > "$OUT/gen.yaml"
"$SLUICE" run "$OUT/gen.yaml" --quiet
# Keyed by id, so the partitions fill evenly: the mock keeps only ~5 MB per
# partition and silently drops older data.
awk -F'[:,]' '{ print $2 "\t" $0 }' "$OUT/orders.jsonl" > "$OUT/keyed.txt"
kcat -P -b "$BROKERS" -t orders -K '\t' -l "$OUT/keyed.txt" 2> /dev/null
echo "produced $N orders ($(du -m "$OUT/orders.jsonl" | cut -f1) MB) to 32 partitions"

/usr/bin/time -f '%e' -o "$OUT/kcat.time" \
    kcat -b "$BROKERS" -G bench-kcat orders -o beginning -e -q -f "%s\n" > "$OUT/kcat.out" 2> "$OUT/kcat.err" || true
cat > "$OUT/k.yaml" <<YAML
sources:
  k:
    type: kafka
    brokers: '$BROKERS'
    topics: [orders]
    group: bench-sluice
    exit_on_eof: true
stages:
  m: { type: map, inputs: [k], set: { kafka_offset: '@offset', kafka_partition: '@partition' } }
sinks:
  db: { type: sqlite, inputs: [m], path: $OUT/k.db, table: orders }
YAML
/usr/bin/time -f '%e %M' -o "$OUT/sluice.time" "$SLUICE" run "$OUT/k.yaml" 2> "$OUT/sluice.err"
rows=$(sqlite3 "$OUT/k.db" 'SELECT count(*) FROM orders')
echo "kcat -G      $(cat "$OUT/kcat.time")s ($(wc -l < "$OUT/kcat.out") messages)"
echo "sluice       $(cut -d' ' -f1 "$OUT/sluice.time")s ($rows rows in SQLite, peak RSS $(( $(cut -d' ' -f2 "$OUT/sluice.time") / 1024 )) MB)"
grep "first assignment" "$OUT/sluice.err" || true
