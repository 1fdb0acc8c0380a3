#!/bin/bash
# test_spool_limit: a small spool (spool_max_bytes = 1M) and no collector.
# The agent takes inbox files until the spool reaches its limit, then stops
# taking them: the rest stay in the inbox byte for byte (checksums), the
# status says spool_full (and "status" exits 3), the log says "spool full".
# Then the collector starts: delivery resumes by itself, intake resumes
# ("spool below its limit"), every file ends in done/ and every record is
# stored exactly once (by source id).
source "$(dirname "$0")/lib.sh"

NBIG=10

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 1 --regions 1 --competitors 1 --days 2 \
    --scale 0.5 --seed 53 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
# NBIG receipts files of 8000 records (about 260 KB of spool each), so the
# 1 MiB spool fills after a few of them.
src=$(ls "$T/data/B001/inbox"/receipts_* | head -n 1)
for k in $(seq 1 $NBIG); do
    awk -F, -v k="$k" 'NR == 1 { print; next }
        NR == 2 { for (i = 1; i <= 8000; i++) printf "RBIG%d-%06d,%s,%d.%02d,EUR\n", k, i, $2, i % 300, i % 100 }' \
        "$src" >"$T/data/B001/inbox/receipts_zbig$k.csv"
done
bm_expected_ids "$T/expected-ids.tsv" "$T/data" B001
nfiles=$(ls "$T/data/B001/inbox" | wc -l)
note "generated $(wc -l <"$T/expected-ids.tsv") records in $nfiles files"

bm_pick_port CPORT
A=$T/agents/B001
mkdir -p "$A"
start_agent agent-B001 B001 "$A" "tcp://127.0.0.1:$CPORT" \
    "batch_records = 500" "spool_max_bytes = 1M" "segment_bytes = 64K" "ack_timeout = 2s" "backoff_min = 100ms"
bm_drop_files "$T/data/B001/inbox" "$A/inbox"

full() { [ "$(bm_agent_json agent-B001 spool_full)" = true ]; }
wait_until "the agent reports its spool full" 30 full
wait_until "the agent logs that its spool is full" 10 grep -q 'spool full (' "$T/agent-B001.log"
rc=0
agent_status agent-B001 >"$T/status.txt" || rc=$?
assert_eq "exit code of branchmark-agent status with a full spool" 3 "$rc"
grep -q 'FULL' "$T/status.txt" || fail "status does not say the spool is full: $(cat "$T/status.txt")"
left=$(ls "$A/inbox" | wc -l)
[ "$left" -gt 0 ] || fail "every file was taken although the spool is full"
note "spool full with $(bm_agent_json agent-B001 spool_bytes) bytes; $left files wait in the inbox"

# Some scans later the files are still there and unchanged.
age_at_least() { [ "$(bm_agent_json agent-B001 oldest_unsent_age_s)" -ge "$1" ] 2>/dev/null; }
wait_until "the agent has waited 3 s more" 30 age_at_least $(($(bm_agent_json agent-B001 oldest_unsent_age_s) + 3))
assert_eq "files still in the inbox" "$left" "$(ls "$A/inbox" | wc -l)"
for f in "$A/inbox"/*; do
    cmp -s "$f" "$T/data/B001/inbox/$(basename "$f")" || fail "$(basename "$f") changed in the inbox"
done
(cd "$A/inbox" && sha256sum -- *) >"$T/inbox.sha256"
(cd "$T/data/B001/inbox" && sha256sum -c --quiet "$T/inbox.sha256") || fail "inbox checksums differ"
full || fail "the spool is no longer full while the collector is down"

start_collector collector "$CPORT"
wait_until "agent-B001 delivered all $nfiles files" 90 bm_delivered agent-B001 "$A" "$nfiles"
grep -q 'spool below its limit' "$T/agent-B001.log" || fail "no \"spool below its limit\" line in the log"
[ "$(bm_agent_json agent-B001 spool_full)" = false ] || fail "status still says spool_full"
rc=0
agent_status agent-B001 >/dev/null || rc=$?
assert_eq "exit code of branchmark-agent status once delivered" 0 "$rc"
bm_assert_exactly_once "$T/expected-ids.tsv"
stop_all
