#!/bin/bash
# test_collector_outage: three agents deliver a first half of their exports,
# then the collector is stopped (SIGTERM).  While it is down the agents keep
# taking new inbox files into their spools (the files leave the inbox for
# sending/, the spool depth grows, nothing is acknowledged).  The collector
# is started again: the agents reconnect by themselves and every record of
# every file is stored exactly once (checked by source id).
source "$(dirname "$0")/lib.sh"

BRANCHES=(B001 B002 B003)

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 3 --regions 1 --competitors 1 --days 4 \
    --scale 0.5 --seed 11 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
bm_expected_ids "$T/expected-ids.tsv" "$T/data" "${BRANCHES[@]}"
note "generated $(wc -l <"$T/expected-ids.tsv") records"

bm_pick_port CPORT
start_collector collector "$CPORT"
for b in "${BRANCHES[@]}"; do
    # First part: door counts and receipts; the other kinds come during the outage.
    bm_drop_files "$T/data/$b/inbox" "$T/agents/$b/inbox" "people_count*"
    bm_drop_files "$T/data/$b/inbox" "$T/agents/$b/inbox" "receipts*"
    start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$CPORT" \
        "batch_records = 50" "ack_timeout = 3s" "backoff_min = 100ms"
done
for b in "${BRANCHES[@]}"; do
    n=$(ls "$T/data/$b/inbox" | grep -Ec '^(people_count|receipts)')
    wait_until "agent-$b delivered its first $n files" 60 bm_delivered "agent-$b" "$T/agents/$b" "$n"
done
first=$(bm_psql "SELECT count(*) FROM ingest_batches")
note "first part delivered ($first batches); stopping the collector"

stop_proc collector || fail "collector did not stop cleanly"

# While the collector is down: the rest of the files.
declare -A NFILES=()
for b in "${BRANCHES[@]}"; do
    before=$(find "$T/agents/$b/done" -type f | wc -l)
    mkdir -p "$T/rest/$b"
    cp "$T/data/$b/inbox"/* "$T/rest/$b/"
    rm -f "$T/rest/$b"/people_count* "$T/rest/$b"/receipts*
    rest=$(find "$T/rest/$b" -type f | wc -l)
    [ "$rest" -gt 0 ] || fail "$b: no files left for the outage"
    NFILES[$b]=$((before + rest))
    bm_drop_files "$T/rest/$b" "$T/agents/$b/inbox"
done
inbox_empty() { [ -z "$(find "$T/agents/$1/inbox" -type f)" ]; }
spool_grew() { [ "$(bm_agent_json "agent-$1" spool_entries)" -gt 0 ] 2>/dev/null; }
not_connected() { case "$(bm_agent_json "agent-$1" state)" in connecting | disconnected) return 0 ;; esac; return 1; }
unsent_age_at_least() { [ "$(bm_agent_json "agent-$1" oldest_unsent_age_s)" -ge "$2" ] 2>/dev/null; }
for b in "${BRANCHES[@]}"; do
    wait_until "agent-$b took every new file into its spool while the collector is down" 30 inbox_empty "$b"
    wait_until "agent-$b has unacknowledged spool entries" 30 spool_grew "$b"
    [ -n "$(find "$T/agents/$b/sending" -type f)" ] || fail "$b: nothing waits in sending/"
done
# Acknowledged nothing while down: the ledger did not move.
assert_eq "batches stored while the collector was down" "$first" "$(bm_psql "SELECT count(*) FROM ingest_batches")"
for b in "${BRANCHES[@]}"; do
    wait_until "agent-$b notices the collector is gone" 30 not_connected "$b"
    # Long enough for reconnect attempts and ack timeouts (ack_timeout = 3s).
    wait_until "agent-$b has waited 5 s for acks" 30 unsent_age_at_least "$b" 5
    note "agent-$b: $(bm_agent_json "agent-$b" spool_entries) spool entries, $(find "$T/agents/$b/sending" -type f | wc -l) files in sending/"
done

note "restarting the collector"
restart_proc collector
for b in "${BRANCHES[@]}"; do
    wait_until "agent-$b delivered all ${NFILES[$b]} files" 60 bm_delivered "agent-$b" "$T/agents/$b" "${NFILES[$b]}"
done
bm_assert_exactly_once "$T/expected-ids.tsv"

# The check itself must be able to fail: a record deleted from the database
# must show up as missing.
bm_psql "DELETE FROM receipts WHERE id = (SELECT min(id) FROM receipts)" >/dev/null
r=$(bm_count_ids "$T/expected-ids.tsv")
[ "$(awk '{ print $3 }' <<<"$r")" = 1 ] || fail "the exactly-once check did not notice a deleted record: $r"

stop_all
