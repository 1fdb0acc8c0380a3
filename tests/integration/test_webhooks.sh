#!/bin/bash
# test_webhooks: branchmark-notify's signed webhooks (docs/actions.md) to a
# local receiver (tests/tools/webhook_receiver.py) that checks every HMAC
# and deduplicates by Idempotency-Key.
#
#   endpoints: "hq" (HQ scope: every notification), "north" (region NORTH
#   only), "wrongsig" (HQ scope, but the receiver knows another secret: its
#   deliveries are refused with 401 and end 'failed' after max_attempts);
#   notifications: three overdue actions (B1, B2 in NORTH, B4 in SOUTH):
#   hq gets 3, north 2.
#   1. the sender SIGKILLs itself after its first send, before recording
#      the answer (the receiver saw it: the retry is a duplicate);
#   2. it SIGKILLs itself after recording an attempt, before sending;
#   3. the receiver is down while a sender runs: attempts fail, backoff;
#   4. the receiver is back: every notification arrives, and each key is
#      accepted exactly once; restarting the sender creates nothing new;
#      SIGTERM stops it cleanly.
# Synchronisation is by polling the database and the receiver's log
# (wait_until), never by sleeping.
source "$(dirname "$0")/lib.sh"

BM_NOTIFY=$BM_BUILD_DIR/collector/branchmark-notify
RECEIVER=$BM_SOURCE_DIR/tests/tools/webhook_receiver.py
bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "migrate"; }
"$BM_TOOL" refdata load --db "$BM_DB" "$BM_SOURCE_DIR/tests/data/metrics/refdata.json" \
    >"$T/refdata.log" 2>&1 || { cat "$T/refdata.log"; fail "refdata load"; }
bm_psql "CREATE ROLE hq1 LOGIN IN ROLE branchmark_hq;
         CREATE ROLE bm_notify LOGIN IN ROLE branchmark_notifier;" >/dev/null
as_db() { echo "host=$PGHOST port=$PGPORT dbname=branchmark user=$1"; }
bm_as() { local who=$1; shift; "$BM_TOOL" "$@" --db "$(as_db "$who")"; }

"$BM_NOTIFY" --help | grep -q "retry_initial" || fail "branchmark-notify --help"
bm_pick_port RPORT
HQ_SECRET=hq-secret-0123456789
NORTH_SECRET=north-secret-0123456789
bm_psql "SELECT bm_webhook_set('hq', 'http://127.0.0.1:$RPORT/hook/hq', '$HQ_SECRET', NULL, NULL);
         SELECT bm_webhook_set('north', 'http://127.0.0.1:$RPORT/hook/north', '$NORTH_SECRET', 'NORTH', NULL);
         SELECT bm_webhook_set('wrongsig', 'http://127.0.0.1:$RPORT/hook/wrongsig', 'not-the-receivers-secret', NULL, '{action_overdue}');" >/dev/null
# HQ reads the configuration, not the secrets.
psql -X -q -d "$(as_db hq1)" -c "SELECT secret FROM webhook_endpoints" >/dev/null 2>&1 &&
    fail "HQ can read webhook secrets"
PAST=$(bm_psql "SELECT (now() AT TIME ZONE bm_chain_timezone())::date - 3")
for b in B1 B2 B4; do
    bm_as hq1 action open --branch "$b" --metric nps --what "call back detractors" --owner branch \
        --due "$PAST" >/dev/null || fail "action open $b"
done

start_receiver() {
    bm_run_bg receiver /usr/bin/python3 "$RECEIVER" --port "$RPORT" --log "$T/received.jsonl" \
        --secret "hq=$HQ_SECRET" --secret "north=$NORTH_SECRET" --secret "wrongsig=$HQ_SECRET"
    # the log of a restarted receiver is appended to, not replaced
    wait_until "the receiver listens" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RPORT"
}
cat >"$T/notify.conf" <<EOF
database = "$(as_db bm_notify)"
poll_interval = 300ms
tick = 100ms
retry_initial = 200ms
retry_max = 1s
max_attempts = 4
request_timeout = 2s
alerts = true
log_level = info
EOF
# run_notify NAME [ENV=VALUE...]: starts a sender.
run_notify() { local name=$1; shift; bm_run_bg "$name" env "$@" "$BM_NOTIFY" -c "$T/notify.conf"; }
# A sender that is to kill itself: not a process that "died unexpectedly"
# for lib.sh's watch (reaped here instead).
run_crashing() { run_notify "$@"; BM_STOPPED[$1]=1; }
exited() { ! kill -0 "${BM_PIDS[$1]}" 2>/dev/null; }
reap() { local rc=0; wait "${BM_PIDS[$1]}" 2>/dev/null || rc=$?; echo "$rc"; }
received() { [ -f "$T/received.jsonl" ] && wc -l <"$T/received.jsonl" || echo 0; }

start_receiver
# 1. killed after sending, before recording the answer.
run_crashing notify1 BM_NOTIFY_CRASH_AFTER_SEND=1
wait_until "the first sender killed itself after a send" 30 exited notify1
assert_eq "first sender's exit (SIGKILL)" 137 "$(reap notify1)"
assert_eq "notifications (hq 3 + north 2 + wrongsig 3 deliveries)" "3 8" \
    "$(bm_psql "SELECT (SELECT count(*) FROM notifications) || ' ' || (SELECT count(*) FROM webhook_deliveries)")"
assert_eq "requests the receiver got" 1 "$(received)"
assert_eq "the sent one is not recorded as delivered" "0 1" \
    "$(bm_psql "SELECT count(*) FILTER (WHERE state = 'delivered') || ' ' || count(*) FILTER (WHERE finished_at IS NULL) FROM webhook_deliveries d JOIN webhook_attempts a ON a.delivery_id = d.id")"

# 2. killed after recording an attempt, before sending it.
run_crashing notify2 BM_NOTIFY_CRASH_AFTER_RECORD=1
wait_until "the second sender killed itself before a send" 30 exited notify2
assert_eq "second sender's exit (SIGKILL)" 137 "$(reap notify2)"
unfinished=$(bm_psql "SELECT count(*) FROM webhook_attempts WHERE finished_at IS NULL")
assert_eq "attempts recorded but never finished" 2 "$unfinished"

# 3. the receiver down while a sender runs.
stop_proc receiver || fail "receiver did not stop"
n_before=$(received)
run_notify notify3
refused() { [ "$(bm_psql "SELECT count(*) FROM webhook_attempts WHERE error LIKE 'could not connect%'")" -ge 4 ]; }
wait_until "attempts fail while the receiver is down" 30 refused
assert_eq "nothing arrived while down" "$n_before" "$(received)"

# 4. back up: everything arrives.
unset "BM_STOPPED[receiver]"
start_receiver
all_done() {
    [ "$(bm_psql "SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                  WHERE e.name IN ('hq', 'north') AND d.state = 'delivered'")" = 5 ] &&
    [ "$(bm_psql "SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                  WHERE e.name = 'wrongsig' AND d.state = 'failed'")" = 3 ]
}
wait_until "every delivery is delivered (or failed for the wrong secret)" 60 all_done
stop_proc notify3 || fail "branchmark-notify did not stop cleanly on SIGTERM"
grep -q 'comp=main msg="stopped"' "$T/notify3.log" || fail "no clean stop in the log"

python3 - "$T/received.jsonl" <<'EOF' >"$T/check.txt" || { cat "$T/check.txt"; fail "receiver log check"; }
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first = collections.Counter(r["key"] for r in rows if r["first"])
dups = sum(1 for r in rows if not r["first"])
by_ep = collections.defaultdict(set)
for r in rows:
    by_ep[r["endpoint"]].add(r["branch"])
assert all(c == 1 for c in first.values()), first
print(len(first), dups, ",".join(sorted(by_ep["hq"])), ",".join(sorted(by_ep["north"])),
      len(by_ep.get("wrongsig", ())))
EOF
read -r nfirst ndups hq_br north_br wrong <<<"$(cat "$T/check.txt")"
note "receiver: $nfirst keys accepted once each, $ndups duplicate(s) ignored"
assert_eq "keys accepted (hq 3 + north 2), each once" 5 "$nfirst"
[ "$ndups" -ge 1 ] || fail "the send before the first kill should have come again as a duplicate"
assert_eq "hq got every branch" "B1,B2,B4" "$hq_br"
assert_eq "north got NORTH only" "B1,B2" "$north_br"
assert_eq "wrong-secret requests accepted" 0 "$wrong"
keys_db=$(bm_psql "SELECT string_agg(idempotency_key, ' ' ORDER BY idempotency_key) FROM webhook_deliveries d
                   JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE e.name IN ('hq', 'north')")
keys_rx=$(python3 -c "import json,sys; print(' '.join(sorted({json.loads(l)['key'] for l in open(sys.argv[1])})))" "$T/received.jsonl")
assert_eq "the receiver's keys are the deliveries' keys" "$keys_db" "$keys_rx"
assert_eq "wrongsig: 401 on every attempt" "4 4 4" \
    "$(bm_psql "SELECT string_agg(attempts::text, ' ') FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE e.name = 'wrongsig' AND d.last_status = 401")"

# A tampered body is refused by the receiver (the check is real).
body='{"key":"x","kind":"alert"}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$HQ_SECRET" -r | cut -d' ' -f1)
assert_eq "well-signed by hand" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Idempotency-Key: manual-1" \
    -H "X-Branchmark-Signature: sha256=$sig" --data-binary "$body" "http://127.0.0.1:$RPORT/hook/hq")"
assert_eq "tampered body" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H "Idempotency-Key: manual-2" \
    -H "X-Branchmark-Signature: sha256=$sig" --data-binary '{"key":"y"}' "http://127.0.0.1:$RPORT/hook/hq")"

# A restart creates no notification twice.
n=$(bm_psql "SELECT count(*) FROM notifications")
run_notify notify4
polled() { grep -q 'msg="started' "$T/notify4.log" && [ "$(bm_psql "SELECT count(*) FROM pg_stat_activity WHERE usename = 'bm_notify'")" -ge 1 ]; }
wait_until "the restarted sender is connected" 20 polled
stop_proc notify4 || fail "notify4 did not stop cleanly"
assert_eq "notifications after a restart" "$n" "$(bm_psql "SELECT count(*) FROM notifications")"
stop_all
