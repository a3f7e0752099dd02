# Smoke test of the Kafka test harness itself (kafka_lib.sh and
# sluice-mock-kafka): the control protocol (fault injection included: errors
# per request type, per-broker errors and delays, topic errors), a topic
# created with 8 partitions, 10k keyed JSON messages through kcat and back,
# and a broker taken down while a producer waits on it, then up again:
# nothing lost, nothing doubled.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

# ---- the control protocol, on a mock of our own ----
MOCK=$(dirname "$SLUICE")/sluice-mock-kafka
printf 'topic t 2\ntopic t 2\ntopic u 0\ntopic v 1 3\ndown 7\nup 1\nnope\n\n%s\nquit\ntopic w 1\n' \
    "$(printf '%s\n' 'errors OffsetFetch 3 COORDINATOR_LOAD_IN_PROGRESS' 'errors Nope 1 _TRANSPORT' \
        'errors 0 2 14' 'errors Produce 1 BOGUS' 'clear-errors OffsetFetch' \
        'broker-errors 1 Produce 2 NO_ERROR 300' 'broker-errors 3 Produce 1 _TRANSPORT' 'rtt -1 100' \
        'rtt 2 0' 'topic-error t UNKNOWN_TOPIC_OR_PART' 'topic-error t NO_ERROR')" |
    timeout "$KAFKA_TIMEOUT" "$MOCK" --brokers 2 > proto.out 2> proto.err ||
    fail "protocol: exit status $? ($(cat proto.err))"
grep -Eq '^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$' <(head -n 1 proto.out) ||
    fail "protocol: first line is not two loopback brokers: $(head -n 1 proto.out)"
tail -n +2 proto.out | cut -c1-6 > proto.got
printf 'ok\nerror:\nerror:\nerror:\nerror:\nok\nerror:\nerror:\n%s\nok\n' \
    "$(printf '%s\n' ok error: ok error: ok ok error: ok ok ok ok)" > proto.want
diff proto.want proto.got || fail "protocol: unexpected answers: $(cat proto.out)"
# EOF on stdin stops it cleanly, without `quit`.
timeout "$KAFKA_TIMEOUT" "$MOCK" < /dev/null > eof.out || fail "EOF: exit status $?"
[ "$(wc -l < eof.out)" -eq 1 ] || fail "EOF: expected only the bootstrap line"

# ---- produce and consume 10k messages over 8 partitions ----
mock_start 3
mock_cmd "topic orders 8"
N=10000
seq 1 "$N" | awk '{ printf "%d|{\"id\":%d,\"customer\":\"c%d\",\"amount\":%d.5}\n", $1, $1, $1 % 97, $1 % 1000 }' > keyed.txt
cut -d'|' -f2- keyed.txt | sort > want.txt
produce orders -K'|' < keyed.txt
consume orders "$N" | sort > got.txt
cmp -s want.txt got.txt || fail "consumed messages differ from produced ($(wc -l < got.txt) of $N)"
# The keys spread the messages over all 8 partitions (an auto-created topic
# would have had 4).
parts=$(consume orders all -f '%p\n' | sort -u | wc -l)
[ "$parts" -eq 8 ] || fail "messages landed in $parts partitions, expected 8"

# ---- a broker down while a producer waits on it, then up ----
# Take down broker 1 and produce to a partition it leads (the mock places
# leaders at random and never moves them): nothing can be delivered until
# the broker is back. If broker 1 leads nothing, use partition 0's leader.
timeout "$KAFKA_TIMEOUT" kcat -L -b "$BROKERS" -t orders > metadata.txt || fail "kcat -L failed"
part=$(sed -n 's/^ *partition \([0-9]*\), leader 1,.*/\1/p' metadata.txt | head -n 1)
part=${part:-0}
leader=$(sed -n "s/^ *partition $part, leader \([0-9]*\),.*/\1/p" metadata.txt)
[ -n "$leader" ] || fail "no leader for orders/$part in the metadata: $(cat metadata.txt)"
port=$(sed -n "s/^ *broker $leader at 127\.0\.0\.1:\([0-9]*\).*/\1/p" metadata.txt)
[ -n "$port" ] || fail "no loopback address for broker $leader: $(cat metadata.txt)"
reachable() {
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null
}
reachable || fail "broker $leader (port $port) is not reachable before the test"
mock_cmd "down $leader"
! reachable || fail "broker $leader still accepts connections while down"

M=2000
seq $((N + 1)) $((N + M)) | awk '{ printf "{\"id\":%d,\"late\":true}\n", $1 }' > late.txt
timeout "$KAFKA_TIMEOUT" kcat -P -b "$BROKERS" -t orders -p "$part" -X message.timeout.ms=60000 \
    < late.txt 2> late.err &
late_pid=$!
# Once the producer has been refused by the down broker, it must still be
# waiting: its messages are not lost, they wait for the broker.
wait_until grep -q 'Connection refused' late.err ||
    fail "the producer never tried the down broker: $(cat late.err)"
kill -0 "$late_pid" 2> /dev/null || fail "the producer finished while the leader of $part was down"
mock_cmd "up $leader"
wait_until reachable || fail "broker $leader does not accept connections after up"
wait "$late_pid" || fail "producing while broker $leader was down failed: $(cat late.err)"

sort want.txt late.txt > want_all.txt
consume orders $((N + M)) | sort > got_all.txt
cmp -s want_all.txt got_all.txt ||
    fail "after down/up: $(wc -l < got_all.txt) messages, expected $((N + M)) (lost or doubled)"
consume orders all -p "$part" | grep -c '"late":true' > late.count
[ "$(cat late.count)" -eq "$M" ] || fail "partition $part holds $(cat late.count) late messages, not $M"

# A clean stop; under a sanitizer, any report in the mock fails here.
mock_stop
echo "ok: kafka mock harness ($N + $M messages, broker $leader down and up, partition $part)"
