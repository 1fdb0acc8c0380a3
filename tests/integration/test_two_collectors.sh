#!/bin/bash
# test_two_collectors: two collectors write to the same PostgreSQL at once.
# Four agents list both endpoints (two with collector A first, two with B
# first).  A first part of the exports (door counts, receipts) goes in;
# once both collectors have stored batches of it, collector A is killed with
# SIGKILL (its agents may have batches in flight) and the rest of the exports
# goes in, so A's agents must fail over to B whatever the timing: they
# resend everything unacknowledged and send the rest through B.  At the end every record is stored
# exactly once (by branch, kind and source id), the counts per branch and
# kind equal bm-datagen's expected.tsv, and no (branch, source_id) repeats.
source "$(dirname "$0")/lib.sh"

BRANCHES=(B001 B002 B003 B004)

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 4 --regions 2 --competitors 1 --days 5 \
    --scale 0.4 --seed 23 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
bm_expected_ids "$T/expected-ids.tsv" "$T/data" "${BRANCHES[@]}"
note "generated $(wc -l <"$T/expected-ids.tsv") records"

bm_pick_port PORT_A
bm_pick_port PORT_B
start_collector collector-a "$PORT_A"
start_collector collector-b "$PORT_B"
EP_A=tcp://127.0.0.1:$PORT_A
EP_B=tcp://127.0.0.1:$PORT_B

# B001, B002: A first; B003, B004: B first.  Small batches and a small
# window keep batches in flight when A dies.
for b in "${BRANCHES[@]}"; do
    case "$b" in B001|B002) first=$EP_A second=$EP_B ;; *) first=$EP_B second=$EP_A ;; esac
    start_agent "agent-$b" "$b" "$T/agents/$b" "$first" "collector = $second" \
        "batch_records = 10" "send_window = 4" "ack_timeout = 2s" "backoff_min = 100ms"
done
# The first part goes in only now that every agent runs (enrolling keys
# takes a while), so that A dies early in the stream.
for b in "${BRANCHES[@]}"; do
    bm_drop_files "$T/data/$b/inbox" "$T/agents/$b/inbox" "people_count*"
    bm_drop_files "$T/data/$b/inbox" "$T/agents/$b/inbox" "receipts*"
done

# Both collectors are in use: each has stored batches of its agents.
stored_by() { # stored_by AGENT...: batches in the ledger from these agents
    local list
    list=$(printf "'%s'," "$@")
    bm_psql "SELECT count(*) FROM ingest_batches WHERE agent_id IN (${list%,})"
}
a_busy() { [ "$(stored_by agent-B001 agent-B002)" -ge 5 ]; }
b_busy() { [ "$(stored_by agent-B003 agent-B004)" -ge 1 ]; }
wait_until "collector A stored batches of its agents" 60 a_busy
wait_until "collector B stored batches of its agents" 60 b_busy
before=$(stored_by agent-B001 agent-B002)
note "killing collector A (SIGKILL) after $before batches of its agents"
kill9_proc collector-a

# The rest of the exports: A's agents can only deliver them through B.
for b in "${BRANCHES[@]}"; do
    for pat in "queue*" "calls*" "complaints*" "customers*" "surveys*" "evaluations*"; do
        bm_drop_files "$T/data/$b/inbox" "$T/agents/$b/inbox" "$pat"
    done
done

nfiles() { ls "$T/data/$1/inbox" | wc -l; }
for b in "${BRANCHES[@]}"; do
    wait_until "agent-$b delivered all $(nfiles "$b") files" 90 bm_delivered "agent-$b" "$T/agents/$b" "$(nfiles "$b")"
done
after=$(stored_by agent-B001 agent-B002)
[ "$after" -gt "$before" ] || fail "A's agents stored nothing after A died ($before -> $after batches)"
note "A's agents stored $((after - before)) more batches through collector B"

# Exactly once, by source id.
bm_assert_exactly_once "$T/expected-ids.tsv"

# Counts per (branch, kind) equal bm-datagen's expected.tsv.
got=$(bm_psql "
  SELECT b.code || E'\t' || x.kind || E'\t' || count(*) FROM (
              SELECT branch_id, 'people_count' AS kind FROM people_counts
    UNION ALL SELECT branch_id, 'receipt' FROM receipts
    UNION ALL SELECT branch_id, 'queue_ticket' FROM queue_tickets
    UNION ALL SELECT branch_id, 'phone_call' FROM phone_calls
    UNION ALL SELECT branch_id, 'complaint' FROM complaints
    UNION ALL SELECT branch_id, 'survey' FROM survey_responses
    UNION ALL SELECT branch_id, 'customer_change' FROM customer_changes
    UNION ALL SELECT branch_id, 'evaluation' FROM evaluations) x
  JOIN branches b ON b.id = x.branch_id GROUP BY b.code, x.kind ORDER BY 1" | sort)
want=$(awk -F'\t' 'NR > 1 && $3 > 0 { print $1 "\t" $2 "\t" $3 }' "$T/data/expected.tsv" | sort)
[ "$got" = "$want" ] || { diff <(echo "$want") <(echo "$got") >&2; fail "counts per branch and kind differ from expected.tsv"; }

# No (branch, source_id) twice within any raw table (the unique keys), and
# the ledger holds each (stream, sequence) once with its records.
dups=$(bm_psql "
  SELECT coalesce(sum(n - 1), 0) FROM (
    SELECT count(*) AS n FROM people_counts GROUP BY branch_id, source_id
    UNION ALL SELECT count(*) FROM receipts GROUP BY branch_id, source_id
    UNION ALL SELECT count(*) FROM queue_tickets GROUP BY branch_id, source_id
    UNION ALL SELECT count(*) FROM phone_calls GROUP BY branch_id, source_id
    UNION ALL SELECT count(*) FROM complaints GROUP BY branch_id, source_id
    UNION ALL SELECT count(*) FROM survey_responses GROUP BY branch_id, source_id
    UNION ALL SELECT count(*) FROM customer_changes GROUP BY branch_id, source_id
    UNION ALL SELECT count(*) FROM evaluations GROUP BY branch_id, source_id) d")
assert_eq "duplicate (branch, source_id) rows" 0 "$dups"
# Rollups still equal a full recomputation after the interleaved writes.
assert_eq "rollup rows differing from a full recomputation" 0 \
    "$(bm_psql "SELECT coalesce(sum(only_incremental + only_full), 0) FROM bm_rollups_check()")"

stop_all
