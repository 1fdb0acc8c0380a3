#!/bin/bash
# test_corrections: records exported again with other content (issue 14,
# part 2), through a real agent and collector on a real PostgreSQL.
#   complaints K-1..K-4: open (updated_at T), then resolved (updated_at T+1h)
#   tickets Q-1..Q-4:    issued (revision 1), then called and served (revision 2)
#   receipts R-1..R-3:   no version column: R-1 and R-2 change amount, R-3 not
#                        (the later arrival wins)
# The six files arrive in a random order (BM_SEED, printed), so a correction
# may come before its original; the agent is killed with SIGKILL between two
# of them; then every file is sent again (resends of each version).  Then an
# evaluation is approved and corrected: it goes back to review.  Asserted
# after each phase: each record stored once with its newest version, the
# history rows, the acks' corrected counts, rollups equal a full
# recomputation, and complaints open / resolve median from the rollups equal
# the same figures computed from the raw rows.
source "$(dirname "$0")/lib.sh"

SEED=${BM_SEED:-$$}
RANDOM=$SEED
note "seed $SEED (BM_SEED=$SEED reproduces the order)"

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "migrate"; }
"$BM_DATAGEN" --out "$T/data" --branches 1 --regions 1 --competitors 1 --days 2 --scale 0.05 \
    --seed 5 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "refdata load"; }

BASE=$(($(date +%s) - 86400 * 2))
t() { date -u -d "@$((BASE + $1))" +%Y-%m-%dT%H:%M:%SZ; }
mkdir -p "$T/src"
{
    echo "source_id,received_at,category,contact_point,channel,resolved_at,updated_at"
    for i in 1 2 3 4; do echo "K-$i,$(t $((i * 60))),waiting,checkout,in_person,,$(t 4000)"; done
} >"$T/src/complaints_v1.csv"
{
    echo "source_id,received_at,category,contact_point,channel,resolved_at,updated_at"
    for i in 1 2 3 4; do
        echo "K-$i,$(t $((i * 60))),waiting,checkout,in_person,$(t $((i * 60 + i * 9000))),$(t 40000)"
    done
} >"$T/src/complaints_v2.csv"
{
    echo "source_id,issued_at,called_at,served_at,service_point,revision"
    for i in 1 2 3 4; do echo "Q-$i,$(t $((i * 60))),,,desk 1,1"; done
} >"$T/src/queue_v1.csv"
{
    echo "source_id,issued_at,called_at,served_at,service_point,revision"
    for i in 1 2 3 4; do
        echo "Q-$i,$(t $((i * 60))),$(t $((i * 60 + i * 30))),$(t $((i * 60 + i * 30 + 200))),desk 1,2"
    done
} >"$T/src/queue_v2.csv"
printf 'source_id,at,amount,currency\nR-1,%s,10.00,EUR\nR-2,%s,20.00,EUR\nR-3,%s,30.00,EUR\n' \
    "$(t 100)" "$(t 200)" "$(t 300)" >"$T/src/receipts_a.csv"
printf 'source_id,at,amount,currency\nR-1,%s,12.50,EUR\nR-2,%s,-20.00,EUR\nR-3,%s,30.00,EUR\n' \
    "$(t 100)" "$(t 200)" "$(t 300)" >"$T/src/receipts_b.csv"

bm_pick_port CPORT
start_collector collector "$CPORT"
AG=$T/agent
start_agent agent B001 "$AG" "tcp://127.0.0.1:$CPORT"
DONE=0
# deliver SRC NAME: drops SRC as inbox/NAME and waits until it is acknowledged.
deliver() {
    mkdir -p "$T/drop"
    cp "$T/src/$1" "$T/drop/$2"
    bm_drop_files "$T/drop" "$AG/inbox" "$2"
    rm -f "$T/drop/$2"
    DONE=$((DONE + 1))
    wait_until "$2 is delivered" 60 bm_delivered agent "$AG" "$DONE"
}
q() { bm_psql "$1" | tr '|' ' '; }
check_rollups() {
    assert_eq "$1: rollups equal a full recomputation" 0 \
        "$(q "SELECT count(*) FROM bm_rollups_check() WHERE only_incremental <> 0 OR only_full <> 0")"
}
check_once() {
    local tbl
    for tbl in complaints queue_tickets receipts evaluations; do
        assert_eq "$1: each $tbl source id stored once" 0 \
            "$(q "SELECT count(*) FROM (SELECT source_id FROM $tbl GROUP BY branch_id, source_id
                                        HAVING count(*) > 1) d")"
    done
}
# The complaint figures from the rollups and, independently, from the raw
# rows: open complaints; resolved ones and the bucket (1 h wide) holding the
# median time to resolve, read from the histogram and from percentile_disc.
check_complaints() {
    assert_eq "$1: complaints_open from the rollups = from the raw rows" \
        "$(q "SELECT count(*) FILTER (WHERE resolved_at IS NULL) FROM complaints")" \
        "$(q "SELECT coalesce(sum(open), 0) FROM rollup_complaints WHERE period_kind = 'quarter'")"
    assert_eq "$1: resolved complaints in the histogram = in the raw rows" \
        "$(q "SELECT count(resolved_at) FROM complaints")" \
        "$(q "SELECT coalesce(sum(n), 0) FROM rollup_hist WHERE measure = 'complaint_resolve'
                AND period_kind = 'quarter'")"
    local raw hist
    raw=$(q "SELECT floor(percentile_disc(0.5) WITHIN GROUP (ORDER BY
                 extract(epoch FROM resolved_at - received_at_src) / 3600))
               FROM complaints WHERE resolved_at IS NOT NULL")
    hist=$(q "WITH h AS (SELECT sum(c) AS c, i - 1 AS b FROM rollup_hist,
                         unnest(counts) WITH ORDINALITY u(c, i)
                   WHERE measure = 'complaint_resolve' AND period_kind = 'quarter' GROUP BY i),
              r AS (SELECT b, sum(c) OVER (ORDER BY b) AS run, sum(c) OVER () AS tot FROM h)
              SELECT min(b) FROM r WHERE run >= tot / 2.0")
    assert_eq "$1: median time to resolve (hour bucket) from the histogram = from the raw rows" \
        "$raw" "$hist"
}

# ---- phase 1: six files in a random order, SIGKILL of the agent between two
files=(complaints_v1.csv complaints_v2.csv queue_v1.csv queue_v2.csv receipts_a.csv receipts_b.csv)
for ((i = ${#files[@]} - 1; i > 0; i--)); do
    j=$((RANDOM % (i + 1)))
    tmp=${files[$i]}; files[$i]=${files[$j]}; files[$j]=$tmp
done
note "order: ${files[*]}"
kill_at=$((RANDOM % 5 + 1))
n=0
for f in "${files[@]}"; do
    deliver "$f" "$f"
    n=$((n + 1))
    if [ $n = $kill_at ]; then
        kill -KILL "${BM_PIDS[agent]}"
        wait "${BM_PIDS[agent]}" 2>/dev/null || true
        note "agent killed with SIGKILL after $f; restarted"
        restart_proc agent
    fi
done
last_receipts=$(printf '%s\n' "${files[@]}" | grep receipts_ | tail -n 1)
if [ "$last_receipts" = receipts_b.csv ]; then want_r="1 1250 2 -2000 3 3000"; else want_r="1 1000 2 2000 3 3000"; fi

verify() {
    assert_eq "$1: complaints resolved, newest version" "4 4 4" \
        "$(q "SELECT count(*), count(resolved_at), count(*) FILTER (WHERE src_version =
                  (extract(epoch FROM '$(t 40000)'::timestamptz) * 1000)::bigint) FROM complaints")"
    assert_eq "$1: tickets served, revision 2" "4 4 4" \
        "$(q "SELECT count(*), count(served_at), count(*) FILTER (WHERE src_version = 2) FROM queue_tickets")"
    assert_eq "$1: receipts by arrival (last file $last_receipts)" "$want_r" \
        "$(q "SELECT string_agg(substr(source_id, 3) || ' ' || amount_minor, ' ' ORDER BY source_id)
                FROM receipts WHERE source_id LIKE 'R-%'")"
    assert_eq "$1: history: one older version per complaint and ticket, one per changed receipt" \
        "4 4 2" \
        "$(q "SELECT count(*) FILTER (WHERE kind = 'complaints'), count(*) FILTER (WHERE kind = 'queue_tickets'),
                     count(*) FILTER (WHERE kind = 'receipts') FROM record_history")"
    assert_eq "$1: the history says which version and which batch" 0 \
        "$(q "SELECT count(*) FROM record_history h WHERE h.kind IN ('complaints', 'queue_tickets')
                AND (h.src_version IS NULL OR NOT EXISTS (SELECT 1 FROM ingest_batches b
                     WHERE b.stream_id = h.by_stream AND b.sequence = h.by_sequence))")"
    check_once "$1"
    check_rollups "$1"
    check_complaints "$1"
}
verify "random order"
assert_eq "corrected counts in the ledger (4 complaints, 4 tickets, 2 receipts)" 10 \
    "$(q "SELECT sum(corrected) FROM ingest_batches")"
grep -q "records were corrections" "$T/agent.log" || fail "the agent's log does not mention corrections"
grep -q "were new versions of records stored before" "$T/collector.log" ||
    fail "the collector's log does not mention corrections"

# ---- phase 2: every version again (as new files): duplicates, nothing changes
before=$(q "SELECT sum(corrected) FROM ingest_batches")
for f in "${files[@]}"; do deliver "$f" "${f%.csv}_again.csv"; done
# a resend under its own name
for f in "${files[@]}"; do deliver "$f" "${f%.csv}_x.csv"; done
verify "after resends"
assert_eq "resends are not corrections" "$before" "$(q "SELECT sum(corrected) FROM ingest_batches")"

# ---- phase 3: an evaluation approved, then corrected by its source
ev=$(ls "$T/data/B001/inbox"/evaluations_* | head -n 1)
head -n 1 "$ev" >"$T/src/evaluations_v1.jsonl"
python3 - "$T/src/evaluations_v1.jsonl" "$T/src/evaluations_v2.jsonl" <<'EOF'
import json, sys
e = json.loads(open(sys.argv[1]).read())
e["revision"] = 1
open(sys.argv[1], "w").write(json.dumps(e) + "\n")
e["revision"] = 2
for a in e["answers"]:
    if a.get("points") not in (None, 0):
        a["points"] = 0
        break
open(sys.argv[2], "w").write(json.dumps(e) + "\n")
EOF
sid=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["source_id"])' "$T/src/evaluations_v1.jsonl")
deliver evaluations_v1.jsonl evaluations_v1.jsonl
bm_psql "SELECT bm_review_set(id, 'approved', 'fine') FROM evaluations WHERE source_id = '$sid'" >/dev/null
n_scores=$(q "SELECT count(*) FROM rollup_scores")
[ "$n_scores" -gt 0 ] || fail "the approved evaluation does not count"
deliver evaluations_v2.jsonl evaluations_v2.jsonl
assert_eq "corrected evaluation back to review" "received 2" \
    "$(q "SELECT review_status, src_version FROM evaluations WHERE source_id = '$sid'")"
assert_eq "the review log says why" 1 \
    "$(q "SELECT count(*) FROM evaluation_reviews r JOIN evaluations e ON e.id = r.evaluation_id
            WHERE e.source_id = '$sid' AND r.old_status = 'approved' AND r.new_status = 'received'
              AND r.comment LIKE 'corrected by the source%'")"
assert_eq "the evaluation's answers are the new version's" \
    "$(python3 -c 'import json,sys; print(sum(a.get("points") or 0 for a in json.loads(open(sys.argv[1]).read())["answers"]))' "$T/src/evaluations_v2.jsonl" | sed 's/\.0$//')" \
    "$(q "SELECT sum(points) FROM evaluation_answers a JOIN evaluations e ON e.id = a.evaluation_id
            WHERE e.source_id = '$sid'" | sed 's/\.0$//')"
assert_eq "the old evaluation version is in the history" 1 \
    "$(q "SELECT count(*) FROM record_history WHERE kind = 'evaluations' AND source_id = '$sid'
            AND status = 'superseded' AND src_version = 1 AND jsonb_array_length(content->'answers') > 0")"
assert_eq "it no longer counts (it waits for review)" 0 "$(q "SELECT count(*) FROM rollup_scores")"
deliver evaluations_v1.jsonl evaluations_v1_late.jsonl
assert_eq "the older evaluation version sent again changes nothing" "received 2" \
    "$(q "SELECT review_status, src_version FROM evaluations WHERE source_id = '$sid'")"
bm_psql "SELECT bm_review_set(id, 'approved', 'fine again') FROM evaluations WHERE source_id = '$sid'" >/dev/null
check_once "evaluation"
check_rollups "evaluation"

stop_all
note "ok"
