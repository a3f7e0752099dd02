# The group's committed offsets, for sinks that keep no positions (kafka ->
# file), issue 6 findings 17 and 19:
# - `start: latest` with nothing committed yet: the run commits where it
#   started, so what is produced while sluice is down is read by the next run
#   (it used to start at the new end again and lose it all);
# - a coordinator that cannot give the committed offsets (OffsetFetch
#   answered COORDINATOR_LOAD_IN_PROGRESS, injected into the mock cluster) is
#   asked again; when it never answers the run fails naming the group and the
#   partitions, instead of taking `start` (which lost every new message with
#   latest, and read everything again with earliest); when it answers after
#   a while, the run reads exactly the new messages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
mock_start 1
mock_cmd "topic t 4"
ids() { seq "$1" "$2" | awk '{ printf "%d\t{\"id\":%d}\n", $1, $1 }'; }
ids 1 100 > old.txt
produce t -K '\t' -l old.txt
cat > k.yaml <<YAML
sources:
  k:
    type: kafka
    brokers: '$BROKERS'
    topics: [t]
    group: g1
    start: latest
    exit_on_eof: true
    librdkafka: { session.timeout.ms: '3000' }
sinks:
  f: { type: file, inputs: [k], path: out/f.jsonl }
YAML
got() { [ -f out/f.jsonl ] && python3 -c "
import json, sys
ids = sorted(json.loads(l)['id'] for l in open('out/f.jsonl'))
print(len(ids), len(set(ids)), ids[0] if ids else '-', ids[-1] if ids else '-')" || echo "0 0 - -"; }

# start: latest, nothing committed: nothing read, but the start is kept.
timeout 120 "$SLUICE" run k.yaml 2> r1.err > /dev/null || fail "first run: $(cat r1.err)"
[ "$(got)" = "0 0 - -" ] || fail "latest read old messages: $(got)"
ids 101 200 > new.txt
produce t -K '\t' -l new.txt
timeout 120 "$SLUICE" run k.yaml 2> r2.err > /dev/null || fail "second run: $(cat r2.err)"
[ "$(got)" = "100 100 101 200" ] || fail "what was produced while sluice was down: $(got), want 100 100 101 200 (count, distinct, min, max)"

# The coordinator never gives the committed offsets: the run fails, loudly.
ids 201 250 > more.txt
produce t -K '\t' -l more.txt
mock_cmd "errors OffsetFetch 1000000 COORDINATOR_LOAD_IN_PROGRESS"
set +e
timeout 150 "$SLUICE" run k.yaml 2> r3.err > /dev/null
rc=$?
set -e
[ "$rc" = 1 ] || fail "offsets unreadable: exit $rc, want 1: $(cat r3.err)"
grep -q "group 'g1': cannot read the committed offsets of t\[[0-3]\], t\[[0-3]\], t\[[0-3]\], t\[[0-3]\]" r3.err ||
    fail "the error does not name the group and the partitions: $(cat r3.err)"
[ "$(got)" = "100 100 101 200" ] || fail "a run without the committed offsets read: $(got)"

# It answers after a while: the run waits for it and reads exactly the new ones.
"$SLUICE" run k.yaml 2> r4.err > /dev/null &
pid=$!
wait_until grep -q "cannot be read .*trying again" r4.err || fail "no retry: $(cat r4.err)"
mock_cmd "clear-errors OffsetFetch"
wait $pid || fail "run after the coordinator came back: $(cat r4.err)"
[ "$(got)" = "150 150 101 250" ] || fail "after the coordinator came back: $(got), want 150 150 101 250"
echo "ok"
