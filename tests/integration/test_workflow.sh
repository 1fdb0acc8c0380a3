#!/bin/bash
# test_workflow: the evaluation workflow (docs/workflow.md) on a real
# PostgreSQL with real login roles (branch manager, regional manager,
# reviewer, HQ), through the branchmark tool run as each of them.
#
# Data: the metrics test's reference data (questionnaire STORE: GREET G1
# critical/G2/G3 bonus, KNOW K1 critical/K2 with a 50% cap, CLEAN C1
# zero_total/C2) and evaluations made here:
#   FULL = every item full: 100;  MID = G2 1 of 2: 91.67;
#   LOW  = G2 0, K2 0, C2 0: GREET 1/3, KNOW (2*4)/(2*4+2) (K1 weighs 2),
#          CLEAN 1/2: (33.33 + 2*80 + 50) / 4 = 60.83.
# November 2026: B1 three FULL (shoppers S1-S3) and one LOW (S9); B2 three
# MID; B3 the flag cases.  October 2026, B4: hold/reject/approve.
source "$(dirname "$0")/lib.sh"

DATA=$BM_SOURCE_DIR/tests/data/metrics
bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "migrate"; }
"$BM_TOOL" refdata load --db "$BM_DB" "$DATA/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "refdata load"; }

# Login roles in the group roles of 003, with the branch manager's scope.
bm_psql "CREATE ROLE mgr_b1 LOGIN IN ROLE branchmark_branch;
         CREATE ROLE reg_north LOGIN IN ROLE branchmark_regional;
         CREATE ROLE rev1 LOGIN IN ROLE branchmark_reviewer;
         CREATE ROLE hq1 LOGIN IN ROLE branchmark_hq;
         INSERT INTO access_scopes (role_name, region_id, branch_id)
         SELECT 'mgr_b1', NULL, id FROM branches WHERE code = 'B1';
         INSERT INTO access_scopes (role_name, region_id, branch_id)
         SELECT 'reg_north', id, NULL FROM regions WHERE code = 'NORTH';" >/dev/null
as_db() { echo "host=$PGHOST port=$PGPORT dbname=branchmark user=$1"; }
bm_as() { local who=$1; shift; "$BM_TOOL" "$@" --db "$(as_db "$who")"; }
bm() { "$BM_TOOL" "$@" --db "$BM_DB"; }
psql_as() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$(as_db "$1")" -c "$2"; }

# expect_fail RC MESSAGE_PART COMMAND...: COMMAND exits RC and says MESSAGE_PART.
expect_fail() {
    local want_rc=$1 want=$2 rc=0
    shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    assert_eq "exit code of $*" "$want_rc" "$rc"
    grep -qF -- "$want" "$T/err.txt" || fail "$*: expected \"$want\" in: $(cat "$T/err.txt")"
}

FULL="1 2 4 2 1 1"
MID="1 1 4 2 1 1"
LOW="1 0 4 0 1 0"
# add_eval SOURCE_ID BRANCH VISITED SHOPPER "G1 G2 K1 K2 C1 C2" [SUBMITTED]: prints the id.
add_eval() {
    local sid=$1 br=$2 at=$3 sh=$4 sub=${6:-}
    read -r g1 g2 k1 k2 c1 c2 <<<"$5"
    local subv=NULL
    [ -n "$sub" ] && subv="'$sub'"
    bm_psql "INSERT INTO evaluations (branch_id, source_id, questionnaire_id, channel,
                 outlet_branch_id, visited_at, submitted_at, shopper_ref)
             SELECT b.id, '$sid', q.id, 'visit', b.id, '$at', $subv, '$sh'
               FROM branches b, questionnaires q WHERE b.code = '$br' AND q.code = 'STORE';
             INSERT INTO evaluation_answers (evaluation_id, questionnaire_id, item_code, points)
             SELECT e.id, e.questionnaire_id, v.item, v.points FROM evaluations e,
                    (VALUES ('G1', $g1::float8), ('G2', $g2), ('K1', $k1), ('K2', $k2),
                            ('C1', $c1), ('C2', $c2)) v(item, points)
              WHERE e.source_id = '$sid';
             SELECT id FROM evaluations WHERE source_id = '$sid'"
}
scores() { psql -X -q -d "$BM_DB" -c "COPY (SELECT * FROM rollup_scores r ORDER BY r) TO STDOUT"; }
check_rollups() {
    local bad
    bad=$(bm_psql "SELECT string_agg(rollup || ':' || only_incremental || '/' || only_full, ' ')
                     FROM bm_rollups_check() WHERE only_incremental <> 0 OR only_full <> 0")
    [ -z "$bad" ] || fail "rollups differ from a full recomputation: $bad"
}
csv_row() { tr -d '\r' <"$1" | awk -F, -v c="$2" -v k="$3" '$c == k { print; exit }'; }
flags_of() { bm_psql "SELECT coalesce(string_agg(flag, ',' ORDER BY flag), '') FROM bm_evaluation_flags(ARRAY[$1::bigint])"; }

# ------------------------------------------------ arrive received, not counted
B1F1=$(add_eval W-B1-1 B1 2026-11-02T10:00:00Z S1 "$FULL" 2026-11-02T12:00:00Z)
B1F2=$(add_eval W-B1-2 B1 2026-11-03T10:00:00Z S2 "$FULL" 2026-11-03T12:00:00Z)
B1F3=$(add_eval W-B1-3 B1 2026-11-04T10:00:00Z S3 "$FULL" 2026-11-04T12:00:00Z)
B1LOW=$(add_eval W-B1-4 B1 2026-11-05T10:00:00Z S9 "$LOW" 2026-11-05T12:00:00Z)
B2M1=$(add_eval W-B2-1 B2 2026-11-02T10:00:00Z S4 "$MID" 2026-11-02T12:00:00Z)
B2M2=$(add_eval W-B2-2 B2 2026-11-03T10:00:00Z S5 "$MID" 2026-11-03T12:00:00Z)
B2M3=$(add_eval W-B2-3 B2 2026-11-04T10:00:00Z S6 "$MID" 2026-11-04T12:00:00Z)
assert_eq "new evaluations are received" "7" "$(bm_psql "SELECT count(*) FROM evaluations WHERE review_status = 'received'")"
assert_eq "scored, but no rollup" "7|0" "$(bm_psql "SELECT (SELECT count(*) FROM evaluation_scores), (SELECT count(*) FROM rollup_scores)")"
assert_eq "LOW scores 60.8333" "60.8333" "$(bm_psql "SELECT round(overall, 4) FROM evaluation_scores WHERE evaluation_id = $B1LOW")"
bm summary >"$T/summary.txt" || fail "summary"
grep -q "pending review: 7 evaluations" "$T/summary.txt" || fail "summary does not show pending: $(cat "$T/summary.txt")"

# ---------------------------------------------------------------- flags
# high_total on FULL, outlier on LOW (60.8 vs 100 of 3 others), none on MID.
assert_eq "FULL flags" "high_total" "$(flags_of "$B1F1")"
assert_eq "LOW flags" "outlier" "$(flags_of "$B1LOW")"
assert_eq "MID flags" "" "$(flags_of "$B2M1")"
# B3 opens Monday to Friday 09:00-19:00 local (Europe/Sofia, UTC+2 in November).
bm_psql "INSERT INTO outlet_opening_hours SELECT 'branch', id, d, '09:00', '19:00'
           FROM branches, generate_series(1, 5) d WHERE code = 'B3'" >/dev/null
CLEAN=$(add_eval W-B3-clean B3 2026-11-12T10:00:00Z C1 "$MID" 2026-11-12T12:00:00Z)
HOURS=$(add_eval W-B3-hours B3 2026-11-10T20:00:00Z H1 "$MID" 2026-11-10T21:00:00Z)
SAT=$(add_eval W-B3-sat B3 2026-11-07T10:00:00Z H2 "$MID" 2026-11-07T12:00:00Z)
LOCK1=$(add_eval W-B3-lock1 B3 2026-11-02T10:00:00Z L1 "$MID" 2026-11-02T12:00:00Z)
LOCK2=$(add_eval W-B3-lock2 B3 2026-11-20T10:00:00Z L1 "$MID" 2026-11-20T12:00:00Z)
LATE=$(add_eval W-B3-late B3 2026-11-05T10:00:00Z T1 "$MID" 2026-11-08T10:00:00Z)
assert_eq "clean: no flag" "" "$(flags_of "$CLEAN")"
assert_eq "22:00 local on a Tuesday" "outside_hours" "$(flags_of "$HOURS")"
assert_eq "a Saturday (closed)" "outside_hours" "$(flags_of "$SAT")"
assert_eq "first visit of L1: no flag" "" "$(flags_of "$LOCK1")"
assert_eq "L1 again after 18 days" "lockout" "$(flags_of "$LOCK2")"
assert_eq "report after 72 h" "late_report" "$(flags_of "$LATE")"
# Thresholds come from programme_settings: a lock-out of 10 days clears it.
bm_psql "UPDATE programme_settings SET lockout_days = 10, high_total_percent = 90" >/dev/null
assert_eq "lock-out 10 days (high_total from 90%)" "high_total" "$(flags_of "$LOCK2")"
assert_eq "high_total from 90%" "high_total" "$(flags_of "$B2M1")"
bm_psql "UPDATE programme_settings SET lockout_days = 30, high_total_percent = 95" >/dev/null
# The reason is shown to reviewers in review list.
bm_as rev1 review list --branch B3 --format csv >"$T/list.csv" || fail "review list as reviewer"
grep -q "report filed 72.0 h after the visit (limit 48 h)" "$T/list.csv" || fail "no late reason: $(cat "$T/list.csv")"
grep -q "pending review: 13" "$T/list.csv" && fail "notes must not be in CSV"
bm_as rev1 review list >"$T/list.txt"
grep -q "pending review: 13 (received 13, on hold 0)" "$T/list.txt" || fail "pending count: $(cat "$T/list.txt")"

# ---------------------------------------------------------------- roles
expect_fail 1 "permission denied" bm_as mgr_b1 review approve "$B1F1"
expect_fail 1 "permission denied" bm_as reg_north review approve "$B1F1"
bm_as rev1 review approve "$B1F1" "$B1F2" "$B1F3" "$B1LOW" "$B2M1" "$B2M2" "$B2M3" --comment "checked" >/dev/null ||
    fail "reviewer could not approve"
assert_eq "review log" "rev1|received|approved|checked" \
    "$(bm_psql "SELECT reviewer || '|' || old_status || '|' || new_status || '|' || comment FROM evaluation_reviews WHERE evaluation_id = $B1LOW")"
expect_fail 2 "only received or on_hold evaluations can be reviewed" bm_as rev1 review reject "$B1F1"
check_rollups

# Branch and regional roles never read shopper identity, staff or plans.
bm_psql "INSERT INTO visit_plans (outlet_kind, outlet_id, planned_on, shopper_ref)
         SELECT 'branch', id, '2026-12-01', 'S1' FROM branches WHERE code = 'B1'" >/dev/null
for who in mgr_b1 reg_north; do
    for q in "SELECT shopper_ref FROM evaluations" "SELECT staff_ref FROM evaluations" \
             "SELECT * FROM evaluations" "SELECT * FROM visit_plans" \
             "SELECT * FROM bm_evaluation_flags(ARRAY[$B1F1::bigint])"; do
        if psql_as "$who" "$q" >/dev/null 2>"$T/err.txt"; then
            fail "$who could run: $q"
        fi
        grep -q "permission denied" "$T/err.txt" || fail "$who: $q: $(cat "$T/err.txt")"
    done
    assert_eq "$who reads status" "approved" "$(psql_as "$who" "SELECT review_status FROM evaluations WHERE id = $B1F1")"
done
assert_eq "hq reads the shopper" "S1" "$(psql_as hq1 "SELECT shopper_ref FROM evaluations WHERE id = $B1F1")"
assert_eq "reviewer reads plans" "1" "$(psql_as rev1 "SELECT count(*) FROM visit_plans")"

# ----------------------------------------------------------- corrections
bm_as rev1 review approve "$CLEAN" >/dev/null || fail "approve clean"
before=$(scores)
bm_as rev1 review correct "$CLEAN" --item G2 --points 2 --reason "photo shows a smile" >"$T/corr.txt" ||
    fail "correct: $(cat "$T/corr.txt")"
grep -q "score now 100.0" "$T/corr.txt" || fail "correct output: $(cat "$T/corr.txt")"
assert_eq "answer now" "2" "$(bm_psql "SELECT points FROM evaluation_answers WHERE evaluation_id = $CLEAN AND item_code = 'G2'")"
assert_eq "original kept" "1|2|rev1|photo shows a smile" \
    "$(bm_psql "SELECT old_points || '|' || new_points || '|' || changed_by || '|' || reason FROM evaluation_answer_changes WHERE evaluation_id = $CLEAN")"
[ "$before" != "$(scores)" ] || fail "a correction of an approved evaluation did not move its rollup"
check_rollups
bm review show "$CLEAN" --format csv >"$T/show.csv" || fail "review show"
assert_eq "show: answer with original" "G2,2,2,1," "$(csv_row "$T/show.csv" 1 G2)"
expect_fail 2 "give either --points P or --na" bm review correct "$CLEAN" --item G2 --reason x
expect_fail 2 'item "ZZ" is not in its questionnaire' bm review correct "$CLEAN" --item ZZ --na --reason x

# ----------------------------------------------------- appeals and rank
at=2026-11-15
bm rank --metric ms_score --at $at --format csv >"$T/rank1.csv" || fail "rank"
# B1 {100, 100, 100, 60.83}: 90.2, wide interval overlapping B2 {91.67 x3}.
assert_eq "B1 before" "1-2,1,B1,90.2,4" "$(csv_row "$T/rank1.csv" 3 B1 | cut -d, -f1-3,6-7)"
assert_eq "B2 before" "1-2,1,B2,91.7,3" "$(csv_row "$T/rank1.csv" 3 B2 | cut -d, -f1-3,6-7)"
expect_fail 1 "not of a branch in your scope" bm_as mgr_b1 appeal file "$B2M1" --items G2 --reason "not ours"
expect_fail 1 "permission denied" bm_as rev1 appeal file "$B1LOW" --items G2 --reason "reviewer may not"
bm_as mgr_b1 appeal file "$B1LOW" --items G2,K2 --reason "the shopper came during a fire drill" >"$T/appeal.txt" ||
    fail "appeal file: $(cat "$T/err.txt")"
APPEAL=$(sed -n 's/^appeal \([0-9]*\) filed.*/\1/p' "$T/appeal.txt")
[ -n "$APPEAL" ] || fail "no appeal id in: $(cat "$T/appeal.txt")"
expect_fail 2 "already has an open appeal" bm_as mgr_b1 appeal file "$B1LOW" --items G2 --reason again
expect_fail 1 "permission denied" bm_as mgr_b1 appeal answer "$APPEAL" --uphold --void --comment "self-service"
expect_fail 2 "--uphold needs either" bm_as hq1 appeal answer "$APPEAL" --uphold --comment x
bm_as hq1 appeal answer "$APPEAL" --uphold --void --comment "visit during an evacuation drill" >/dev/null ||
    fail "appeal answer: $(cat "$T/err.txt")"
assert_eq "voided" "voided" "$(bm_psql "SELECT review_status FROM evaluations WHERE id = $B1LOW")"
bm rank --metric ms_score --at $at --format csv >"$T/rank2.csv"
# B1 {100 x3} against B2 {91.67 x3}: neither varies, the pooled SD is 0
# and no test can be made (docs/metrics.md: rank ranges from tests), so
# three identical visits each are no verdict: both 1-2.
assert_eq "B1 after" "1-2,1,B1,100.0,3" "$(csv_row "$T/rank2.csv" 3 B1 | cut -d, -f1-3,6-7)"
assert_eq "B2 after" "1-2,1,B2,91.7,3" "$(csv_row "$T/rank2.csv" 3 B2 | cut -d, -f1-3,6-7)"
bm review show "$B1LOW" >"$T/show.txt"
grep -Eq "^$APPEAL +upheld +voided +G2,K2 +mgr_b1" "$T/show.txt" || fail "appeal not shown: $(cat "$T/show.txt")"
grep -q "approved -> voided" "$T/show.txt" || fail "void not in the review log"
check_rollups
# Upheld with a correction: B2's first visit G2 1 -> 2 (HQ may file too).
bm_as hq1 appeal file "$B2M1" --items G2 --reason "smile on camera" >"$T/appeal2.txt" || fail "hq file"
A2=$(sed -n 's/^appeal \([0-9]*\) filed.*/\1/p' "$T/appeal2.txt")
bm_as hq1 appeal answer "$A2" --uphold --correct G2=2 --comment "camera confirms" >/dev/null || fail "answer 2"
bm rank --metric ms_score --at $at --format csv >"$T/rank3.csv"
assert_eq "B2 after correction (91.67 * 2 + 100) / 3" "94.4" "$(csv_row "$T/rank3.csv" 3 B2 | cut -d, -f6)"
assert_eq "correction tied to the appeal" "$A2|1|2" \
    "$(bm_psql "SELECT appeal_id || '|' || old_points || '|' || new_points FROM evaluation_answer_changes WHERE evaluation_id = $B2M1")"
# After the window: approval 20 days ago, window 14 days.
bm_psql "UPDATE evaluation_reviews SET at = now() - interval '20 days' WHERE evaluation_id = $B1F1" >/dev/null
closed=$(bm_psql "SELECT to_char((at + interval '14 days') AT TIME ZONE 'Europe/Sofia', 'YYYY-MM-DD') FROM evaluation_reviews WHERE evaluation_id = $B1F1")
expect_fail 2 "appeal window of 14 days closed on $closed" bm_as mgr_b1 appeal file "$B1F1" --items G1 --reason late
bm_psql "UPDATE programme_settings SET appeal_days = 30" >/dev/null
bm_as mgr_b1 appeal file "$B1F1" --items G1 --reason "within 30 days" >/dev/null || fail "30-day window"
bm_as hq1 appeal answer "$(bm_psql "SELECT id FROM appeals WHERE evaluation_id = $B1F1")" --dismiss --comment "no grounds" >/dev/null ||
    fail "dismiss"
assert_eq "dismissed changes nothing" "approved" "$(bm_psql "SELECT review_status FROM evaluations WHERE id = $B1F1")"
bm appeal list --status all --format csv >"$T/appeals.csv" || fail "appeal list"
assert_eq "appeals listed" "3" "$(tr -d '\r' <"$T/appeals.csv" | tail -n +2 | grep -c .)"

# ---------------------------------------------------- hold, reject, approve
OCT1=$(add_eval W-B4-1 B4 2026-10-06T10:00:00Z S7 "$FULL" 2026-10-06T12:00:00Z)
OCT2=$(add_eval W-B4-2 B4 2026-10-07T10:00:00Z S8 "$MID" 2026-10-07T12:00:00Z)
before=$(scores)
bm_as rev1 review hold "$OCT1" --comment "ask the shopper" >/dev/null || fail "hold"
bm_as rev1 review reject "$OCT2" --comment "no receipt" >/dev/null || fail "reject"
assert_eq "on hold and rejected move no score" "$before" "$(scores)"
bm rank --metric ms_score --at 2026-10-15 --format csv >"$T/oct.csv"
assert_eq "B4 October empty" "0" "$(csv_row "$T/oct.csv" 3 B4 | cut -d, -f7)"
bm_as rev1 review approve "$OCT1" >/dev/null || fail "approve from hold"
[ "$before" != "$(scores)" ] || fail "approving did not move the score"
assert_eq "B4 October counted" "1|100.0" \
    "$(bm_psql "SELECT n || '|' || round(score_sum, 1) FROM rollup_scores r JOIN branches b ON b.id = r.outlet_id WHERE b.code = 'B4' AND period_kind = 'month' AND section = ''")"
expect_fail 2 "is rejected" bm_as rev1 review approve "$OCT2"
check_rollups
psql -X -q -d "$BM_DB" -c 'SELECT bm_rollups_rebuild()' >/dev/null || fail "rebuild"
check_rollups

# ---------------------------------------------------------------- ethics
expect_fail_sql() { # expect_fail_sql MESSAGE_PART SQL
    if bm_psql "$2" >/dev/null 2>"$T/err.txt"; then fail "accepted: $2"; fi
    grep -qF -- "$1" "$T/err.txt" || fail "expected \"$1\" in: $(cat "$T/err.txt")"
}
expect_fail_sql "needs recorded staff consent" "UPDATE evaluations SET staff_ref = 'EMP7' WHERE id = $B1F2"
bm_psql "INSERT INTO evaluations (branch_id, source_id, questionnaire_id, channel, competitor_outlet_id, visited_at)
         SELECT b.id, 'W-C1', q.id, 'visit', c.id, '2026-11-05T10:00:00Z'
           FROM branches b, questionnaires q, competitor_outlets c
          WHERE b.code = 'B1' AND q.code = 'STORE' AND c.code = 'C1'" >/dev/null
bm_psql "UPDATE programme_settings SET staff_consent = true" >/dev/null
bm_psql "UPDATE evaluations SET staff_ref = 'EMP7' WHERE id = $B1F2" >/dev/null || fail "staff_ref with consent"
expect_fail_sql "cannot carry staff_ref" "UPDATE evaluations SET staff_ref = 'EMP9' WHERE source_id = 'W-C1'"

# ------------------------------------------------------------- retention
bm_psql "UPDATE programme_settings SET retention_days = 30" >/dev/null
OLD=$(add_eval W-old B4 "$(bm_psql "SELECT to_char(now() - interval '100 days', 'YYYY-MM-DD\"T\"HH24:MI:SSOF')")" R1 "$MID")
NEW=$(add_eval W-new B4 "$(bm_psql "SELECT to_char(now() - interval '5 days', 'YYYY-MM-DD\"T\"HH24:MI:SSOF')")" R2 "$MID")
bm_as rev1 review approve "$OLD" "$NEW" >/dev/null || fail "approve old/new"
bm_psql "UPDATE evaluation_answers SET comment = 'no smile at the till' WHERE evaluation_id IN ($OLD, $NEW) AND item_code = 'G2';
         INSERT INTO evaluation_evidence (evaluation_id, kind, uri) VALUES ($OLD, 'photo', 'file:///e/old.jpg'), ($NEW, 'photo', 'file:///e/new.jpg');
         UPDATE evaluations SET staff_ref = 'EMP1' WHERE id IN ($OLD, $NEW);
         INSERT INTO survey_responses (branch_id, source_id, responded_at, nps, why)
         SELECT id, 'SV-old', now() - interval '400 days', 9, 'friendly staff' FROM branches WHERE code = 'B4';
         INSERT INTO survey_responses (branch_id, source_id, responded_at, nps, why)
         SELECT id, 'SV-new', now() - interval '3 days', 3, 'long queue' FROM branches WHERE code = 'B4';" >/dev/null
before=$(scores)
eval_before=$(bm_psql "SELECT string_agg(evaluation_id || ':' || overall, ',' ORDER BY evaluation_id) FROM evaluation_scores")
expect_fail 1 "permission denied" bm_as rev1 retention run
bm_as hq1 retention run >"$T/ret.txt" || fail "retention run: $(cat "$T/err.txt")"
grep -Eq "evaluation_answers.comment +1$" "$T/ret.txt" || fail "retention output: $(cat "$T/ret.txt")"
assert_eq "old comment gone, new kept" "|no smile at the till" \
    "$(bm_psql "SELECT string_agg(comment, '|' ORDER BY evaluation_id) FROM evaluation_answers WHERE evaluation_id IN ($OLD, $NEW) AND item_code = 'G2'")"
assert_eq "old evidence gone" "file:///e/new.jpg" "$(bm_psql "SELECT string_agg(uri, ',') FROM evaluation_evidence")"
assert_eq "old staff_ref gone" "$NEW" "$(bm_psql "SELECT string_agg(id::text, ',') FROM evaluations WHERE id IN ($OLD, $NEW) AND staff_ref IS NOT NULL")"
# The survey's global retention is the '*' row (30 days now): old 'why' cleared.
assert_eq "survey why" "SV-new:long queue,SV-old:" "$(bm_psql "SELECT string_agg(source_id || ':' || why, ',' ORDER BY source_id) FROM survey_responses")"
assert_eq "scores untouched" "$before" "$(scores)"
assert_eq "evaluation scores untouched" "$eval_before" \
    "$(bm_psql "SELECT string_agg(evaluation_id || ':' || overall, ',' ORDER BY evaluation_id) FROM evaluation_scores")"
assert_eq "points untouched" "1" "$(bm_psql "SELECT points FROM evaluation_answers WHERE evaluation_id = $OLD AND item_code = 'G2'")"
check_rollups
exit 0
