#!/bin/sh
# What work stealing brings, on 2 worker threads: each load runs with
# engine.work_stealing true and false, alternating, best of R runs each (the
# machine is shared), and the ratio off/on of the wall times. Usage:
#   bench/steal.sh [build dir] [R]
#
# Without stealing the pool partitions the work statically, as a
# thread-per-input design does: each source's subgraph (its decoding and the
# stages only it reaches) runs on one worker, the sources taking the workers
# in turn (a node several sources reach goes with the first). With it, a
# task goes on the deque of the worker that submitted it (or, from a source
# thread, the injection queue) and idle workers take from the others. So:
# - skewed: source a (10x the records of b), each source into its own chain
#   of CPU-heavy maps. Without stealing, once b's chain is done its worker
#   idles (at best 11/10 of one worker's throughput); with it, both workers
#   share a's chain (at best 2x).
# - skewed, one chain: a and b into one chain (fan-in), which goes with a:
#   without stealing one worker runs it all.
# - balanced: a and b with the same records, each into its own chain:
#   without stealing a worker each, the best static split; the difference
#   is what stealing costs, less what it makes up for when the OS gives one
#   worker less CPU (the generators build records on threads of their own)
#   or one chain ends first.
# - balanced, one stage: the same with one heavy map per source instead of
#   a chain.
set -eu
cd "$(dirname "$0")/.."
BUILD=$(cd "${1:-build}" && pwd)
R=${2:-5}
OUT=bench/out/steal
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# chains NA NB SHARED: a YAML file with sources a (NA records) and b (NB),
# each into its own chain of heavy maps, both into one chain (SHARED=1), or
# each into one map doing the work of the whole chain (SHARED=2).
# m0 makes a 60-byte string x; m1..m4 each build and measure 24 case-changed
# copies of it.
chains() {
    copies="len(concat(upper(x), lower(x), upper(x), lower(x), upper(x), lower(x), upper(x), lower(x)))"
    work="$copies + $copies + $copies"
    x='concat(to_string(amount), to_string(id), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")'
    printf 'engine: { threads: 2 }\nsources:\n'
    printf '  a: { type: generator, count: %s, seed: 1 }\n  b: { type: generator, count: %s, seed: 2 }\n' "$1" "$2"
    printf 'stages:\n'
    stages=4
    [ "$3" = 2 ] && stages=0
    if [ "$3" = 1 ]; then
        set -- ab
        printf "  ab0: { type: map, inputs: [a, b], set: { x: '%s' } }\n" "$x"
    elif [ "$3" = 2 ]; then
        # One heavy stage per source (x written out in it: more work per
        # record than the four stages, fewer records).
        set -- a b
        one=$(echo "$work" | sed "s/x/$x/g")
        for c in a b; do
            printf "  %s0: { type: map, inputs: [%s], set: { v: '%s + %s + %s + %s' } }\n" \
                $c $c "$one" "$one" "$one" "$one"
        done
    else
        set -- a b
        printf "  a0: { type: map, inputs: [a], set: { x: '%s' } }\n" "$x"
        printf "  b0: { type: map, inputs: [b], set: { x: '%s' } }\n" "$x"
    fi
    ends=""
    for c in "$@"; do
        for i in $(seq "$stages"); do
            printf "  %s%d: { type: map, inputs: [%s%d], set: { v%d: '%s' } }\n" "$c" $i "$c" $((i - 1)) $i "$work"
        done
        ends="$ends${ends:+, }${c}${stages}"
    done
    printf 'sinks:\n  n: { type: "null", inputs: [%s] }\n' "$ends"
}
chains 60000 6000 0 > "$OUT/skewed.yaml"
chains 60000 6000 1 > "$OUT/skewed_one_chain.yaml"
chains 33000 33000 0 > "$OUT/balanced.yaml"
chains 20000 20000 2 > "$OUT/balanced_one_stage.yaml"

# run_once LOAD STEALING: the wall time and the CPU time (user + system) of
# one run, in seconds. Each load alternates the two settings so that both
# see the same machine. The CPU time is what stealing costs where there is
# nothing to steal: idle workers looking at the others' deques, tasks
# moving between caches. The wall time also holds what it makes up for when
# the OS gives one worker less of the CPUs.
run_once() {
    /usr/bin/time -f '%e %U %S' -o "$OUT/time.txt" "$BUILD/sluice" run "$OUT/$1.yaml" --quiet \
        --set "engine.work_stealing=$2"
    awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$OUT/time.txt"
}
min() { echo "$1 $2" | awk '{ print ($1 < $2) ? $1 : $2 }'; }
echo "work stealing on 2 worker threads, best of $R runs (s); ratio = off / on"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other processes skew the figures)"
printf '%-22s %7s %7s %6s   %7s %7s %6s\n' load "wall on" off ratio "cpu on" off ratio
for load in skewed skewed_one_chain balanced balanced_one_stage; do
    on=999 off=999 con=999 coff=999
    i=0
    while [ $i -lt "$R" ]; do
        set -- $(run_once $load true)
        on=$(min "$1" "$on")
        con=$(min "$2" "$con")
        set -- $(run_once $load false)
        off=$(min "$1" "$off")
        coff=$(min "$2" "$coff")
        i=$((i + 1))
    done
    printf '%-22s %7.2f %7.2f %5.2fx   %7.2f %7.2f %5.2fx\n' "$load" "$on" "$off" \
        "$(echo "$on $off" | awk '{ print $2 / $1 }')" "$con" "$coff" \
        "$(echo "$con $coff" | awk '{ print $2 / $1 }')"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
