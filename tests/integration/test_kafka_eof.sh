# exit_on_eof must end (issue 6, finding 22): when the topic does not exist
# (the mock answers UNKNOWN_TOPIC_OR_PART for it) or the brokers cannot be
# reached (connection refused, a name that does not resolve), the run used
# to wait forever for an assignment. Now it fails after a bounded wait
# (30 s) with an error naming the topics, the brokers and librdkafka's last
# error. The three runs go side by side. An empty topic still ends at once,
# successfully.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
mock_start 1
mock_cmd "topic-error nope UNKNOWN_TOPIC_OR_PART"
mock_cmd "topic empty 2"
pipeline() { # NAME BROKERS TOPIC
    cat > "$1.yaml" <<YAML
sources:
  k: { type: kafka, brokers: '$2', topics: [$3], group: g, exit_on_eof: true, librdkafka: { session.timeout.ms: '3000' } }
sinks:
  f: { type: file, inputs: [k], path: out/$1.jsonl }
YAML
}
pipeline missing "$BROKERS" nope
pipeline refused 127.0.0.1:1 t
pipeline nohost nohost.invalid:9092 t
pipeline empty "$BROKERS" empty
pids=""
for n in missing refused nohost; do
    timeout 90 "$SLUICE" run "$n.yaml" > /dev/null 2> "$n.err" &
    pids="$pids $!"
done
timeout 60 "$SLUICE" run empty.yaml > /dev/null 2> empty.err || fail "an empty topic: $(cat empty.err)"
set -- $pids
for n in missing refused nohost; do
    set +e
    wait "$1"
    rc=$?
    set -e
    shift
    [ "$rc" = 1 ] || fail "$n: exit $rc, want 1 within 90 s: $(err_of "$n.err")"
    grep -q "exit_on_eof: no partition of .* was assigned within 30 s: are the brokers" "$n.err" ||
        fail "$n: $(cat "$n.err")"
done
grep -q "last error: .*Unknown topic or partition" missing.err || fail "missing: $(cat missing.err)"
grep -q "(127.0.0.1:1).*last error: .*\(refused\|brokers are down\)" refused.err || fail "refused: $(cat refused.err)"
grep -q "(nohost.invalid:9092).*last error: .*\(resolve\|brokers are down\)" nohost.err || fail "nohost: $(cat nohost.err)"
echo "ok"
