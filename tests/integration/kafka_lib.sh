# Kafka helpers for the integration tests, sourced after lib.sh:
#
#     . "$(dirname "$0")/lib.sh"
#     . "$(dirname "$0")/kafka_lib.sh"
#     mock_start                    # 3 brokers; sets and exports BROKERS
#     mock_cmd "topic orders 8"
#     produce orders < lines.jsonl
#     consume orders 1000 > got.txt
#
# The cluster is sluice-mock-kafka (tests/harness/mock_kafka.c), built next to
# $SLUICE, driven through a bash coprocess: call mock_* from the test's main
# shell, not from a subshell, a pipeline or $(...), where bash closes the
# coprocess's descriptors. Producing and consuming use kcat, an independent
# client. Pipelines reach the cluster with `brokers: ${BROKERS}`.
#
# Facts about the librdkafka 2.0.2 mock that tests must respect:
# - each partition keeps about 5 MB (or 100k message sets); older data is
#   silently dropped, so keep a test's data well under 5 MB per partition;
# - unknown topics are auto-created with 4 partitions: create yours first;
# - a down broker refuses connections, but keeps leading its partitions;
# - the first join of a consumer group waits 3 s; after a member leaves (even
#   cleanly) or dies, the next join waits until the group's rebalance timer,
#   session.timeout.ms - 1 s, and a SIGKILLed member stays a member until
#   session.timeout.ms (librdkafka default 45 s): set session.timeout.ms to
#   2000-6000 in every group test, e.g. `librdkafka: {session.timeout.ms: "3000"}`;
# - pausing a partition purges the messages librdkafka had prefetched.

# Seconds that one kcat run or one mock answer may take before the test fails
# (sanitizer builds are slow; a hang must still end well before ctest's limit).
KAFKA_TIMEOUT=${KAFKA_TIMEOUT:-120}

# mock_start [BROKERS_COUNT]: starts a mock cluster of BROKERS_COUNT brokers
# (default 3, ids 1..N) on 127.0.0.1, and sets and exports BROKERS to its
# bootstrap servers ("127.0.0.1:port,..."). $MOCK is the binary (default: the
# sluice-mock-kafka next to $SLUICE); its stderr goes to $WORK/mock-kafka.log.
# The cluster stops when the test exits, however it exits: mock_stop runs in
# the EXIT trap (before lib.sh's cleanup), and if the shell is killed the mock
# sees EOF on its stdin and exits by itself. One cluster at a time.
mock_start() {
    local nbrokers=${1:-3}
    local prev
    MOCK=${MOCK:-$(dirname "$SLUICE")/sluice-mock-kafka}
    [ -x "$MOCK" ] || fail "mock_start: $MOCK not found (build the sluice-mock-kafka target)"
    [ -z "${MOCK_PID:-}" ] || fail "mock_start: a mock cluster is already running"
    if [ -z "${_KAFKA_TRAP_SET:-}" ]; then
        # Keep lib.sh's EXIT trap (if any) and run it after ours.
        prev=$(trap -p EXIT)
        _KAFKA_PREV_TRAP=""
        if [ -n "$prev" ]; then
            eval "set -- $prev"
            _KAFKA_PREV_TRAP=$3
        fi
        trap '_kafka_on_exit' EXIT
        _KAFKA_TRAP_SET=1
    fi
    coproc MOCK_CO { exec "$MOCK" --brokers "$nbrokers" 2>>"$WORK/mock-kafka.log"; }
    MOCK_PID=$MOCK_CO_PID
    BROKERS=""
    read -r -t "$KAFKA_TIMEOUT" BROKERS <&"${MOCK_CO[0]}" || true
    case "$BROKERS" in
    127.0.0.1:*) ;;
    *) _kafka_fail "mock_start: no bootstrap servers from $MOCK (got '$BROKERS')" ;;
    esac
    export BROKERS
}

# mock_cmd "COMMAND ARGS...": sends one command to the mock cluster and waits
# for its answer; an `error: ...` answer, no answer within $KAFKA_TIMEOUT s or
# a dead cluster fails the test. Commands (see sluice-mock-kafka --help):
#   topic NAME PARTITIONS [REPLICATION]   create a topic (error if it exists)
#   down BROKER_ID | up BROKER_ID         take a broker down / up (-1: all)
# Fault injection (request types by name, errors by librdkafka's name):
#   errors API COUNT ERROR                the next COUNT requests of API fail,
#                                         e.g. "errors OffsetFetch 1000 COORDINATOR_LOAD_IN_PROGRESS"
#   clear-errors API                      forget them
#   broker-errors BROKER_ID API COUNT ERROR [RTT_MS]
#                                         the same on one broker, each answer
#                                         RTT_MS late (ERROR NO_ERROR: delay only)
#   rtt BROKER_ID MS                      every answer of a broker MS late (-1: all)
#   topic-error TOPIC ERROR               metadata for TOPIC fails (NO_ERROR clears)
mock_cmd() {
    local answer=""
    [ -n "${MOCK_PID:-}" ] || fail "mock_cmd $*: no mock cluster (call mock_start first)"
    [ -n "${MOCK_CO[1]:-}" ] || _kafka_fail "mock_cmd $*: the mock cluster has exited"
    printf '%s\n' "$*" >&"${MOCK_CO[1]}" || _kafka_fail "mock_cmd $*: the mock cluster has exited"
    read -r -t "$KAFKA_TIMEOUT" answer <&"${MOCK_CO[0]}" || true
    [ "$answer" = ok ] || _kafka_fail "mock_cmd $*: ${answer:-no answer}"
}

# mock_stop: stops the mock cluster and waits for it (killing it after 10 s).
# Fails the test if the mock exited with an error, e.g. a sanitizer report.
# Does nothing when no cluster runs; mock_start may be called again after.
mock_stop() {
    _kafka_stop || _kafka_fail "mock_stop: sluice-mock-kafka exited with status $?"
}

# produce TOPIC [KCAT_OPTION...] < LINES: produces each line of stdin as one
# message to TOPIC and returns once every message is acknowledged (acks=all);
# a delivery failure fails the test. Options go to kcat: `-K:` splits each
# line into key:value, `-p 3` picks a partition, `-X key=value` sets a
# librdkafka property (message.timeout.ms defaults to 60 s here, so a broker
# that is down longer than that fails the test instead of hanging it).
produce() {
    local topic=$1
    shift
    [ -n "${BROKERS:-}" ] || fail "produce $topic: no cluster (call mock_start first)"
    timeout "$KAFKA_TIMEOUT" kcat -P -q -b "$BROKERS" -t "$topic" -X message.timeout.ms=60000 \
        "$@" || fail "produce $topic: kcat failed"
}

# consume TOPIC [COUNT [KCAT_OPTION...]]: prints the payloads of TOPIC, one per
# line, from the beginning of every partition until the end of all of them, or
# COUNT messages if fewer (COUNT empty or "all": no limit). Order is kept
# within a partition only: compare sorted. Options go to kcat, e.g.
# `-f '%k %s\n'` for keys, `-p 0` for one partition. kcat failing or taking
# more than $KAFKA_TIMEOUT s fails the test.
consume() {
    local topic=$1
    local count=${2:-all}
    local limit=()
    shift
    [ $# -eq 0 ] || shift
    [ -n "${BROKERS:-}" ] || fail "consume $topic: no cluster (call mock_start first)"
    [ "$count" = all ] || limit=(-c "$count")
    timeout "$KAFKA_TIMEOUT" kcat -C -q -b "$BROKERS" -t "$topic" -o beginning -e \
        "${limit[@]}" -f '%s\n' "$@" || fail "consume $topic: kcat failed"
}

# produce_by_id TOPIC FILE: produces FILE's JSON orders (lines starting
# {"id":N,...) keyed by their id, so they spread evenly over the partitions
# (the mock keeps only ~5 MB per partition; kcat without keys fills a few).
produce_by_id() {
    awk -F'[:,]' '{ print $2 "\t" $0 }' "$2" > "$WORK/keyed-$1.txt"
    produce "$1" -K '\t' -l "$WORK/keyed-$1.txt"
}

# ---- private ----

# Stops the mock; returns its exit status (0 if it was not running).
_kafka_stop() {
    local pid=${MOCK_PID:-}
    local rc=0
    [ -n "$pid" ] || return 0
    MOCK_PID=""
    if [ -n "${MOCK_CO[1]:-}" ]; then
        { printf 'quit\n' >&"${MOCK_CO[1]}"; } 2>/dev/null || true
    fi
    # Wait until it is gone or a zombie (bash reaps coprocesses on its own).
    for _ in $(seq 100); do
        if [ ! -d "/proc/$pid" ] || [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
            break
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    # 127: bash had already reaped it and forgotten its status.
    [ "$rc" -eq 127 ] && rc=0
    return "$rc"
}

_kafka_dump_log() {
    if [ -s "$WORK/mock-kafka.log" ]; then
        echo "---- last lines of $WORK/mock-kafka.log ----" >&2
        tail -n 40 "$WORK/mock-kafka.log" >&2
    fi
}

_kafka_fail() {
    _kafka_dump_log
    fail "$@"
}

# The EXIT trap: stop the mock, then run lib.sh's trap. A mock that exited
# badly turns a passing test into a failing one, never the other way round.
_kafka_on_exit() {
    local rc=$?
    set +e
    if ! _kafka_stop; then
        echo "FAIL: sluice-mock-kafka exited with an error" >&2
        _kafka_dump_log
        [ "$rc" -ne 0 ] || rc=1
    fi
    eval "${_KAFKA_PREV_TRAP:-}"
    exit "$rc"
}
