#!/bin/bash
# test_corrections_kinds: corrections of the kinds test_corrections does not
# cover (issue 14, part 2): door counts, phone calls, customer changes and
# survey responses with their CSI scores, through a real agent and collector
# on a real PostgreSQL.  Each kind has records with a version column
# (people counts and customers: updated_at; calls and surveys: revision)
# and records without one.  Four phases:
#   1 originals           every versioned record at version 1, every
#                         unversioned one as first exported;
#   2 corrections         versioned records at version 3 (other values, some
#                         moved to another month, so to another partition
#                         and period; one the same content under a new
#                         version: a duplicate), unversioned ones corrected
#                         (by arrival); two versions of one record in one
#                         file, in both orders;
#   3 late versions       version 2 of some records arrives after version 3
#                         (kept in the history, changes nothing; also where
#                         version 3 was version 1's content again), version
#                         3 of two records goes back to version 1's content
#                         (a newer version: it wins), and the original
#                         unversioned file again (its content is in the
#                         history: a duplicate, it does not revert);
#   4 resends             every file again under a new name.
# Asserted after each phase: each record stored once with its newest content
# (surveys: with exactly the newest version's CSI scores, and a CSI index
# that is their mean); the history rows per kind and status, what they hold
# and which batch they name; the ledger's corrected counts; rollups equal a
# full recomputation (bm_rollups_check); and nps, csi, capture_rate,
# conversion, calls_answered_share and customer_balance from `branchmark
# rank` (which reads the rollups) equal the same figures computed here from
# the raw rows.
source "$(dirname "$0")/lib.sh"

bm_load_refdata --branches 1 --regions 1 --competitors 1 --days 2 --scale 0.05 --seed 5

BASE=$(($(date +%s) - 86400 * 2))
MOVED=-3456000      # 40 days before BASE: always another month
t() { date -u -d "@$((BASE + $1))" +%Y-%m-%dT%H:%M:%SZ; }
q() { bm_psql "$1" | tr '|' ' '; }
# Version 1, 2 and 3 as updated_at times (revisions are 1, 2, 3).
U1=$(t 1000) U2=$(t 2000) U3=$(t 3000)
S=$T/src
mkdir -p "$S"
csv() { # csv FILE HEADER LINE...: writes $S/FILE
    local f=$1
    shift
    printf '%s\n' "$@" >"$S/$f"
}

# ---- door counts: PV-* with updated_at, PN-* without
{
    echo "source_id,interval_start,interval_seconds,passers_by,entrants,updated_at"
    echo "PV-1,$(t 0),900,100,10,$U1"
    echo "PV-2,$(t 900),900,50,5,$U1"
    echo "PV-3,$(t 1800),900,80,8,$U1"
    echo "PV-5,$(t 5400),900,70,7,$U1"
} >"$S/people_count_v1.csv"
{
    echo "source_id,interval_start,interval_seconds,passers_by,entrants,updated_at"
    echo "PV-1,$(t 0),900,120,30,$U3"
    echo "PV-2,$(t $MOVED),900,60,6,$U3"
    echo "PV-3,$(t 1800),900,80,8,$U3"
    echo "PV-5,$(t 5400),900,70,7,$U3"
    echo "PV-4,$(t 2700),900,40,4,$U3"
} >"$S/people_count_v3.csv"
{
    echo "source_id,interval_start,interval_seconds,passers_by,entrants,updated_at"
    echo "PV-1,$(t 0),900,110,20,$U2"
    echo "PV-2,$(t 900),900,55,4,$U2"
    echo "PV-3,$(t 1800),900,80,8,$U2"
    echo "PV-5,$(t 5400),900,75,9,$U2"
} >"$S/people_count_v2late.csv"
PH=source_id,interval_start,interval_seconds,passers_by,entrants
csv people_count_a.csv $PH "PN-1,$(t 3600),900,200,20" "PN-2,$(t 4500),900,30,3"
csv people_count_b.csv $PH "PN-1,$(t 3600),900,200,25" "PN-2,$(t 4500),900,30,3"

# ---- phone calls: CV-* with revision, CN-* without (target 20 s: 19 in, 21 out)
CH=source_id,ring_start,answered,wait_seconds
csv calls_v1.csv $CH,revision "CV-1,$(t 10),no,45,1" "CV-2,$(t 20),yes,5,1" "CV-3,$(t 30),yes,15,1" \
    "CV-4,$(t 40),yes,8,1" "CV-5,$(t 90),no,40,1"
csv calls_v3.csv $CH,revision "CV-1,$(t 10),yes,12,3" "CV-2,$(t 20),yes,700,3" "CV-3,$(t 30),no,40,3" \
    "CV-4,$(t $((MOVED + 40))),yes,8,3" "CV-5,$(t 90),yes,10,2"
# CV-5 revision 3 goes back to revision 1's content: a newer version, not a resend.
csv calls_v2late.csv $CH,revision "CV-1,$(t 10),yes,30,2" "CV-2,$(t 20),no,10,2" "CV-3,$(t 30),yes,25,2" \
    "CV-5,$(t 90),no,40,3"
# Two versions of one record in one file: CV-9 older first, CV-8 newer first.
csv calls_inline.csv $CH,revision "CV-9,$(t 80),no,40,1" "CV-8,$(t 70),yes,10,2" "CV-9,$(t 80),yes,10,2" \
    "CV-8,$(t 70),no,40,1"
csv calls_a.csv $CH "CN-1,$(t 50),yes,19" "CN-2,$(t 60),no,3"
csv calls_b.csv $CH "CN-1,$(t 50),yes,21" "CN-2,$(t 60),no,3"

# ---- customer changes: UV-* with updated_at, UN-* without
UH=source_id,at,kind,reason,segment
csv customers_v1.csv $UH,updated_at "UV-1,$(t 100),gained,,family,$U1" "UV-2,$(t 200),lost,price,,$U1" \
    "UV-3,$(t 300),lost,moved_away,x,$U1" "UV-4,$(t 400),gained,,,$U1"
csv customers_v3.csv $UH,updated_at "UV-1,$(t 100),lost,price,family,$U3" "UV-2,$(t 200),lost,service,,$U3" \
    "UV-3,$(t 300),gained,,x,$U3" "UV-4,$(t $((MOVED + 400))),gained,,,$U3"
csv customers_v2late.csv $UH,updated_at "UV-1,$(t 100),lost,moved_away,family,$U2" "UV-2,$(t 200),gained,,,$U2"
csv customers_a.csv $UH "UN-1,$(t 500),gained,," "UN-2,$(t 600),lost,service,"
csv customers_b.csv $UH "UN-1,$(t 500),lost,price," "UN-2,$(t 600),lost,service,"

# ---- survey responses: SV-* with revision, SN-* without
sv() { # sv ID OFFSET REST-OF-OBJECT
    echo "{\"source_id\":\"$1\",\"responded_at\":\"$(t "$2")\"$3}"
}
{
    sv SV-1 1000 ',"nps":9,"csi":{"friendliness":5,"speed":4},"segment":"family","revision":1'
    sv SV-2 1100 ',"nps":3,"csi":{"speed":2},"revision":1'
    sv SV-3 1200 ',"nps":7,"revision":1'
    sv SV-4 1300 ',"nps":10,"csi":{"speed":5},"revision":1'
    sv SV-5 1400 ',"nps":8,"csi":{"speed":4},"revision":1'
    sv SV-6 1450 ',"nps":9,"csi":{"speed":5},"revision":1'
} >"$S/surveys_v1.jsonl"
{
    # SV-1 leaves the segment "family"; SV-2 gains items; SV-3 loses its
    # NPS and gets a 10-point CSI; SV-4 moves; SV-5 is the same content.
    sv SV-1 1000 ',"nps":4,"csi":{"friendliness":2},"revision":3'
    sv SV-2 1100 ',"nps":10,"csi":{"speed":5,"cleanliness":4,"friendliness":5},"revision":3'
    sv SV-3 1200 ',"csi":{"cleanliness":7},"csi_scale":10,"revision":3'
    sv SV-4 $((MOVED + 1300)) ',"nps":10,"csi":{"speed":5},"revision":3'
    sv SV-5 1400 ',"nps":8,"csi":{"speed":4},"revision":3'
    sv SV-6 1450 ',"nps":3,"csi":{"speed":1},"revision":2'
} >"$S/surveys_v3.jsonl"
{
    sv SV-1 1000 ',"nps":8,"csi":{"friendliness":3,"speed":3,"cleanliness":4},"revision":2'
    sv SV-2 1100 ',"nps":6,"revision":2'
    sv SV-3 1200 ',"nps":7,"csi":{"cleanliness":9},"csi_scale":10,"revision":2'
    # SV-6 revision 3 goes back to revision 1's content.
    sv SV-6 1450 ',"nps":9,"csi":{"speed":5},"revision":3'
} >"$S/surveys_v2late.jsonl"
{
    sv SV-9 1500 ',"nps":2,"csi":{"speed":1},"revision":1'
    sv SV-9 1500 ',"nps":9,"csi":{"speed":5,"friendliness":4},"revision":2'
} >"$S/surveys_inline.jsonl"
{
    sv SN-1 1600 ',"nps":9,"csi":{"speed":5}'
    sv SN-2 1700 ',"nps":0'
    sv SN-3 1800 ',"nps":5,"why":"slow"'
} >"$S/surveys_a.jsonl"
{
    sv SN-1 1600 ',"nps":9,"csi":{"speed":3}'
    sv SN-2 1700 ',"nps":0'
    sv SN-3 1800 ',"nps":5,"why":"slow, but kind"'
} >"$S/surveys_b.jsonl"

# ---- receipts (never corrected here): the sales of the conversion figure
csv receipts_static.csv source_id,at,amount,currency "R-1,$(t 100),10.00,EUR" "R-2,$(t 200),5.00,EUR" \
    "R-3,$(t 300),-5.00,EUR"

bm_pick_port CPORT
start_collector collector "$CPORT"
AG=$T/agent
start_agent agent B001 "$AG" "tcp://127.0.0.1:$CPORT"
DONE=0
SENT=0
ledger_records() { [ "$(q "SELECT coalesce(sum(records), 0) FROM ingest_batches")" = "$1" ]; }
# deliver SRC NAME: drops SRC as inbox/NAME and waits until the agent has it
# acknowledged and the ledger holds every line sent so far.
deliver() {
    mkdir -p "$T/drop"
    cp "$S/$1" "$T/drop/$2"
    bm_drop_files "$T/drop" "$AG/inbox" "$2"
    rm -f "$T/drop/$2"
    DONE=$((DONE + 1))
    local lines
    lines=$(grep -c . "$S/$1")
    case "$1" in *.csv) lines=$((lines - 1)) ;; esac
    SENT=$((SENT + lines))
    wait_until "$2 is delivered" 60 bm_delivered agent "$AG" "$DONE"
    wait_until "the ledger holds the $SENT records sent" 30 ledger_records "$SENT"
}

# ---------------------------------------------------------------- checks

# The stored content of each kind, one "id:values@offset" per record
# (offset: seconds from BASE of the record's time).
off() { echo "(extract(epoch FROM $1)::bigint - $BASE)"; }
stored_people() {
    q "SELECT string_agg(source_id || ':' || passers_by || '/' || entrants || '@' || $(off interval_start),
                         ' ' ORDER BY source_id) FROM people_counts"
}
stored_calls() {
    q "SELECT string_agg(source_id || ':' || CASE WHEN answered THEN 'yes' ELSE 'no' END || '/'
                         || wait_seconds || '@' || $(off ring_start), ' ' ORDER BY source_id)
         FROM phone_calls"
}
stored_customers() {
    q "SELECT string_agg(source_id || ':' || kind || '/' || reason || '/' || segment || '@' || $(off at),
                         ' ' ORDER BY source_id) FROM customer_changes"
}
# Surveys with their CSI scores as stored (item=score/scale, by item).
stored_surveys() {
    q "SELECT string_agg(r.source_id || ':' || coalesce(r.nps::text, '-') || '/' || r.segment || '/'
                         || r.why || '@' || $(off r.responded_at) || '['
                         || coalesce((SELECT string_agg(c.item || '=' || c.score || '/' || c.scale_max,
                                                        ',' ORDER BY c.item)
                                        FROM survey_csi_scores c WHERE c.response_id = r.id), '')
                         || ']', ' ' ORDER BY r.source_id) FROM survey_responses r"
}
M=$MOVED
PEOPLE1="PN-1:200/20@3600 PN-2:30/3@4500 PV-1:100/10@0 PV-2:50/5@900 PV-3:80/8@1800 PV-5:70/7@5400"
PEOPLE2="PN-1:200/25@3600 PN-2:30/3@4500 PV-1:120/30@0 PV-2:60/6@$M PV-3:80/8@1800 PV-4:40/4@2700"
PEOPLE2="$PEOPLE2 PV-5:70/7@5400"
CALLS1="CN-1:yes/19@50 CN-2:no/3@60 CV-1:no/45@10 CV-2:yes/5@20 CV-3:yes/15@30 CV-4:yes/8@40"
CALLS1="$CALLS1 CV-5:no/40@90"
CALLS2="CN-1:yes/21@50 CN-2:no/3@60 CV-1:yes/12@10 CV-2:yes/700@20 CV-3:no/40@30 CV-4:yes/8@$((M + 40))"
CALLS3="$CALLS2 CV-5:no/40@90 CV-8:yes/10@70 CV-9:yes/10@80"
CALLS2="$CALLS2 CV-5:yes/10@90 CV-8:yes/10@70 CV-9:yes/10@80"
CUST1="UN-1:gained//@500 UN-2:lost/service/@600 UV-1:gained//family@100 UV-2:lost/price/@200"
CUST1="$CUST1 UV-3:lost/moved_away/x@300 UV-4:gained//@400"
CUST2="UN-1:lost/price/@500 UN-2:lost/service/@600 UV-1:lost/price/family@100 UV-2:lost/service/@200"
CUST2="$CUST2 UV-3:gained//x@300 UV-4:gained//@$((M + 400))"
SURV1="SN-1:9//@1600[speed=5/5] SN-2:0//@1700[] SN-3:5//slow@1800[]"
SURV1="$SURV1 SV-1:9/family/@1000[friendliness=5/5,speed=4/5] SV-2:3//@1100[speed=2/5]"
SURV1="$SURV1 SV-3:7//@1200[] SV-4:10//@1300[speed=5/5] SV-5:8//@1400[speed=4/5] SV-6:9//@1450[speed=5/5]"
SURV2="SN-1:9//@1600[speed=3/5] SN-2:0//@1700[] SN-3:5//slow, but kind@1800[]"
SURV2="$SURV2 SV-1:4//@1000[friendliness=2/5]"
SURV2="$SURV2 SV-2:10//@1100[cleanliness=4/5,friendliness=5/5,speed=5/5] SV-3:-//@1200[cleanliness=7/10]"
SURV2="$SURV2 SV-4:10//@$((M + 1300))[speed=5/5] SV-5:8//@1400[speed=4/5]"
SURV3="$SURV2 SV-6:9//@1450[speed=5/5] SV-9:9//@1500[friendliness=4/5,speed=5/5]"
SURV2="$SURV2 SV-6:3//@1450[speed=1/5] SV-9:9//@1500[friendliness=4/5,speed=5/5]"

check_once() {
    local tbl
    for tbl in people_counts phone_calls customer_changes survey_responses; do
        assert_eq "$1: each $tbl source id stored once" 0 \
            "$(q "SELECT count(*) FROM (SELECT 1 FROM $tbl GROUP BY branch_id, source_id
                                        HAVING count(*) > 1) d")"
    done
}
# CSI scores belong to a stored response, and a response's CSI index is the
# mean of its scores (the collector computes it from the same message).
check_csi() {
    assert_eq "$1: no CSI score without its response" 0 \
        "$(q "SELECT count(*) FROM survey_csi_scores c
                WHERE NOT EXISTS (SELECT 1 FROM survey_responses r WHERE r.id = c.response_id)")"
    assert_eq "$1: every CSI index is the mean of its scores" 0 \
        "$(q "SELECT count(*) FROM survey_responses r
                LEFT JOIN (SELECT response_id, avg((score - 1)::numeric / (scale_max - 1) * 100) AS m
                             FROM survey_csi_scores GROUP BY 1) c ON c.response_id = r.id
               WHERE (r.csi IS NULL) <> (c.m IS NULL) OR abs(r.csi::numeric - c.m) > 1e-9")"
}
check_rollups() {
    local bad
    bad=$(q "SELECT string_agg(rollup || ':' || only_incremental || '/' || only_full, ' ')
               FROM bm_rollups_check() WHERE only_incremental <> 0 OR only_full <> 0")
    assert_eq "$1: rollups equal a full recomputation (rollup:only_incremental/only_full)" "" "$bad"
}
# history PHASE WANT: "kind:superseded/late" per kind, and what the rows hold.
check_history() {
    assert_eq "$2: record_history rows (kind:superseded/late)" "$1" \
        "$(q "SELECT string_agg(kind || ':' || s || '/' || l, ' ' ORDER BY kind)
                FROM (SELECT k.kind, count(h.id) FILTER (WHERE h.status = 'superseded') AS s,
                             count(h.id) FILTER (WHERE h.status = 'late') AS l
                        FROM (VALUES ('customer_changes'), ('people_counts'), ('phone_calls'),
                                     ('survey_responses')) k(kind)
                        LEFT JOIN record_history h ON h.kind = k.kind GROUP BY 1) x")"
    assert_eq "$2: every history row names a batch of the ledger" 0 \
        "$(q "SELECT count(*) FROM record_history h WHERE NOT EXISTS (SELECT 1 FROM ingest_batches b
                WHERE b.stream_id = h.by_stream AND b.sequence = h.by_sequence)")"
    assert_eq "$2: the ledger counts every history row as a correction" \
        "$(q "SELECT count(*) FROM record_history")" "$(q "SELECT sum(corrected) FROM ingest_batches")"
}

# The figures, from `branchmark rank` (rollups) and from the raw rows of the
# same month (the month of BASE in the chain's time zone).
AT=$(q "SELECT (to_timestamp($BASE) AT TIME ZONE bm_chain_timezone())::date")
in_month() {
    echo "date_trunc('month', $1 AT TIME ZONE bm_chain_timezone())
          = date_trunc('month', to_timestamp($BASE) AT TIME ZONE bm_chain_timezone())"
}
raw_figure() { # raw_figure METRIC: "value n" from the raw rows
    case "$1" in
    nps) q "SELECT round(100.0 * (count(*) FILTER (WHERE nps >= 9) - count(*) FILTER (WHERE nps <= 6))
                         / count(nps), 6), count(nps)
              FROM survey_responses WHERE $(in_month responded_at)" ;;
    csi) q "SELECT round(avg(csi)::numeric, 6), count(csi) FROM survey_responses
             WHERE $(in_month responded_at)" ;;
    capture_rate) q "SELECT round(100.0 * sum(entrants) / sum(passers_by), 6), sum(passers_by)
                       FROM people_counts WHERE $(in_month interval_start)" ;;
    conversion) q "SELECT round(100.0 * (SELECT count(*) FROM receipts WHERE amount_minor > 0
                                           AND $(in_month at)) / sum(entrants), 6), sum(entrants)
                     FROM people_counts WHERE $(in_month interval_start)" ;;
    calls_answered_share)
        q "SELECT round(100.0 * count(*) FILTER (WHERE answered AND wait_seconds <= 20) / count(*), 6),
                  count(*) FROM phone_calls WHERE $(in_month ring_start)" ;;
    customer_balance)
        q "SELECT count(*) FILTER (WHERE kind = 'gained') - count(*) FILTER (WHERE kind = 'lost'),
                  count(*) FROM customer_changes WHERE $(in_month at)" ;;
    esac
}
check_figures() {
    local m out row want got
    for m in nps csi capture_rate conversion calls_answered_share customer_balance; do
        out=$("$BM_TOOL" rank --metric "$m" --period month --at "$AT" --format csv --db "$BM_DB" 2>&1) ||
            fail "$1: rank --metric $m failed: $out"
        row=$(tr -d '\r' <<<"$out" | awk -F, '$3 == "B001" { print $6 " " $7; exit }')
        want=$(raw_figure "$m")
        # rank shows the value rounded (1 decimal, counts 0): it is within
        # half a last digit of the exact value.
        got=$(awk -v a="$row" -v b="$want" 'BEGIN { split(a, x, " "); split(b, y, " ");
                  d = x[1] - y[1]; if (d < 0) d = -d;
                  print (x[2] == y[2] && d <= 0.050001) ? "same" : "differs" }')
        assert_eq "$1: $m (value n) from rank [$row] = from the raw rows [$want]" same "$got"
        note "$1: $m $row"
    done
}
check_all() {
    check_once "$1"
    check_csi "$1"
    check_rollups "$1"
    check_figures "$1"
}

# ---- phase 1: originals
for f in people_count_v1.csv people_count_a.csv calls_v1.csv calls_a.csv customers_v1.csv \
    customers_a.csv surveys_v1.jsonl surveys_a.jsonl receipts_static.csv; do
    deliver "$f" "$f"
done
assert_eq "originals: door counts" "$PEOPLE1" "$(stored_people)"
assert_eq "originals: calls" "$CALLS1" "$(stored_calls)"
assert_eq "originals: customer changes" "$CUST1" "$(stored_customers)"
assert_eq "originals: surveys" "$SURV1" "$(stored_surveys)"
check_history "customer_changes:0/0 people_counts:0/0 phone_calls:0/0 survey_responses:0/0" originals
check_all originals

# ---- phase 2: corrections (and two versions in one file)
for f in people_count_v3.csv people_count_b.csv calls_v3.csv calls_b.csv calls_inline.csv \
    customers_v3.csv customers_b.csv surveys_v3.jsonl surveys_b.jsonl surveys_inline.jsonl; do
    deliver "$f" "$f"
done
# verify PHASE CALLS SURVEYS REVERTED: the stored records and versions
# (REVERTED: the revision of CV-5 and SV-6).
verify() {
    assert_eq "$1: door counts" "$PEOPLE2" "$(stored_people)"
    assert_eq "$1: calls" "$2" "$(stored_calls)"
    assert_eq "$1: customer changes" "$CUST2" "$(stored_customers)"
    assert_eq "$1: surveys" "$3" "$(stored_surveys)"
    # PV-3, PV-5 and SV-5 came again with their content under version 3:
    # duplicates, but the version stored is 3 (an older version arriving
    # later must not win: PV-5's version 2).  PV-3 was sent again at
    # version 2 only with its content.
    assert_eq "$1: stored versions (people, calls, customers, surveys with a version)" \
        "$(((BASE + 3000) * 1000)) 3 $(((BASE + 3000) * 1000)) 3 $4 $4" \
        "$(q "SELECT (SELECT string_agg(DISTINCT src_version::text, ',') FROM people_counts WHERE source_id LIKE 'PV-%'),
                     (SELECT string_agg(DISTINCT src_version::text, ',') FROM phone_calls WHERE source_id ~ '^CV-[1-4]'),
                     (SELECT string_agg(DISTINCT src_version::text, ',') FROM customer_changes WHERE source_id LIKE 'UV-%'),
                     (SELECT string_agg(DISTINCT src_version::text, ',') FROM survey_responses WHERE source_id ~ '^SV-[1-5]'),
                     (SELECT src_version FROM phone_calls WHERE source_id = 'CV-5'),
                     (SELECT src_version FROM survey_responses WHERE source_id = 'SV-6')")"
}
verify corrections "$CALLS2" "$SURV2" 2
# Superseded: PV-1, PV-2, PN-1; CV-1..5, CN-1, CV-9 (CV-8's older version
# came second: late); UV-1..4, UN-1; SV-1..4, SV-6, SN-1, SN-3, SV-9.
check_history "customer_changes:5/0 people_counts:3/0 phone_calls:7/1 survey_responses:8/0" corrections
assert_eq "corrections: the superseded survey versions keep their CSI scores" \
    "SN-1:speed=5 SV-1:friendliness=5,speed=4 SV-2:speed=2 SV-3: SV-4:speed=5 SV-6:speed=5 SV-9:speed=1" \
    "$(q "SELECT string_agg(source_id || ':' || coalesce((SELECT string_agg((c->>'item') || '=' || (c->>'score'), ','
                                                                            ORDER BY c->>'item')
                                                           FROM jsonb_array_elements(content->'csi_scores') c), ''),
                            ' ' ORDER BY source_id)
            FROM record_history WHERE kind = 'survey_responses' AND source_id <> 'SN-3'")"
assert_eq "corrections: the history holds the older versions' values" \
    "CN-1:19 CV-1:45 CV-2:5 CV-3:15 CV-4:8 CV-5:40 CV-8:40 CV-9:40" \
    "$(q "SELECT string_agg(source_id || ':' || (content->>'wait_seconds'), ' ' ORDER BY source_id)
            FROM record_history WHERE kind = 'phone_calls'")"
check_all corrections

# ---- phase 3: older versions arriving late, the original unversioned files again
for f in people_count_v2late.csv calls_v2late.csv customers_v2late.csv surveys_v2late.jsonl; do
    deliver "$f" "$f"
done
for f in people_count_a.csv calls_a.csv customers_a.csv surveys_a.jsonl; do
    deliver "$f" "${f%.*}_again.${f##*.}"
done
verify "late versions" "$CALLS3" "$SURV3" 3
# Late: PV-1, PV-2, PV-5 (PV-3's version 2 is its old content: a
# duplicate); CV-1..3; UV-1, UV-2; SV-1..3.  Superseded: CV-5 and SV-6
# revision 2 (by revision 3, the content of revision 1).  The unversioned
# originals are in the history as superseded versions: duplicates.
check_history "customer_changes:5/2 people_counts:3/3 phone_calls:8/4 survey_responses:9/3" "late versions"
assert_eq "late versions: the late survey versions keep their CSI scores" \
    "SV-1:3 SV-2:0 SV-3:1" \
    "$(q "SELECT string_agg(source_id || ':' || jsonb_array_length(content->'csi_scores'), ' ' ORDER BY source_id)
            FROM record_history WHERE kind = 'survey_responses' AND status = 'late'")"
assert_eq "late versions: their versions are 2 (CV-8's late version 1 came inline)" \
    "2 $(((BASE + 2000) * 1000))" \
    "$(q "SELECT string_agg(DISTINCT src_version::text, ',') FILTER (WHERE kind IN ('phone_calls', 'survey_responses')),
                 string_agg(DISTINCT src_version::text, ',') FILTER (WHERE kind IN ('people_counts', 'customer_changes'))
            FROM record_history WHERE status = 'late' AND source_id <> 'CV-8'")"
check_all "late versions"

# ---- phase 4: every file again
before=$(q "SELECT sum(corrected) FROM ingest_batches")
for f in "$S"/*; do
    f=$(basename "$f")
    deliver "$f" "${f%.*}_resent.${f##*.}"
done
verify resends "$CALLS3" "$SURV3" 3
check_history "customer_changes:5/2 people_counts:3/3 phone_calls:8/4 survey_responses:9/3" resends
assert_eq "resends are not corrections" "$before" "$(q "SELECT sum(corrected) FROM ingest_batches")"
check_all resends

stop_all
note "ok"
