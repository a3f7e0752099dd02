#!/bin/sh
# What work stealing brings, on 2 worker threads: each load runs with
# engine.work_stealing true and false, alternating, best of R runs each (the
# machine is shared), and the ratio off/on of the wall times. Usage:
#   bench/steal.sh [build dir] [R]
#
# How work reaches the workers: a task submitted from a thread that is not a
# worker (a source thread handing over a block or a batch) goes to the
# injection queue, which every worker takes from; a task a worker submits (a
# stage kicking its consumer after an emit, or itself again for the next
# batch in its ring) goes on that worker's own deque, which only stealing
# lets another worker take. So:
# - skewed: source a (10x the records of b), each source into its own chain
#   of CPU-heavy maps. The generator builds records on its own thread, so
#   the pool's work is the chains, whose tasks workers push: without
#   stealing a chain stays on the worker that started it, and once b's chain
#   is done its worker idles (at best 11/10 of one worker's throughput);
#   with it, both workers share a's chain (at best 2x).
# - skewed, one chain: a and b into one chain (fan-in): the chain's stage
#   tasks move between workers only by stealing.
# - balanced: a and b with the same records, each into its own chain: each
#   worker has its own chain whether it steals or not.
set -eu
cd "$(dirname "$0")/.."
BUILD=$(cd "${1:-build}" && pwd)
R=${2:-5}
OUT=bench/out/steal
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# chains NA NB SHARED: a YAML file with sources a (NA records) and b (NB),
# each into its own chain of heavy maps, or both into one chain (SHARED=1).
# m0 makes a 60-byte string x; m1..m4 each build and measure 24 case-changed
# copies of it.
chains() {
    copies="len(concat(upper(x), lower(x), upper(x), lower(x), upper(x), lower(x), upper(x), lower(x)))"
    work="$copies + $copies + $copies"
    x='concat(to_string(amount), to_string(id), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")'
    printf 'engine: { threads: 2 }\nsources:\n'
    printf '  a: { type: generator, count: %s, seed: 1 }\n  b: { type: generator, count: %s, seed: 2 }\n' "$1" "$2"
    printf 'stages:\n'
    if [ "$3" = 1 ]; then
        set -- ab
        printf "  ab0: { type: map, inputs: [a, b], set: { x: '%s' } }\n" "$x"
    else
        set -- a b
        printf "  a0: { type: map, inputs: [a], set: { x: '%s' } }\n" "$x"
        printf "  b0: { type: map, inputs: [b], set: { x: '%s' } }\n" "$x"
    fi
    ends=""
    for c in "$@"; do
        for i in 1 2 3 4; do
            printf "  %s%d: { type: map, inputs: [%s%d], set: { v%d: '%s' } }\n" "$c" $i "$c" $((i - 1)) $i "$work"
        done
        ends="$ends${ends:+, }${c}4"
    done
    printf 'sinks:\n  n: { type: "null", inputs: [%s] }\n' "$ends"
}
chains 60000 6000 0 > "$OUT/skewed.yaml"
chains 60000 6000 1 > "$OUT/skewed_one_chain.yaml"
chains 33000 33000 0 > "$OUT/balanced.yaml"

# run_once LOAD STEALING: the wall time of one run (seconds). Each load
# alternates the two settings so that both see the same machine.
run_once() {
    /usr/bin/time -f '%e' -o "$OUT/time.txt" "$BUILD/sluice" run "$OUT/$1.yaml" --quiet \
        --set "engine.work_stealing=$2"
    cat "$OUT/time.txt"
}
echo "work stealing on 2 worker threads, best of $R runs (wall s); ratio = off / on"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other processes skew the figures)"
printf '%-28s %8s %8s %7s\n' load on off ratio
for load in skewed skewed_one_chain balanced; do
    on=999
    off=999
    i=0
    while [ $i -lt "$R" ]; do
        t=$(run_once $load true)
        on=$(echo "$t $on" | awk '{ print ($1 < $2) ? $1 : $2 }')
        t=$(run_once $load false)
        off=$(echo "$t $off" | awk '{ print ($1 < $2) ? $1 : $2 }')
        i=$((i + 1))
    done
    printf '%-28s %8.2f %8.2f %6.2fx\n' "$load" "$on" "$off" "$(echo "$on $off" | awk '{ print $2 / $1 }')"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
