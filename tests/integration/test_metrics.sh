#!/bin/bash
# test_metrics: the benchmark figures against hand-computed values, and the
# incremental rollups against a full recomputation.
#
# A real PostgreSQL gets the schema (branchmark migrate) and a small chain
# (tests/data/metrics/refdata.json: 4 branches in 2 regions, 3 competitor
# outlets, one questionnaire with a zero_section, a cap 50% and a zero_total
# section).  tests/data/metrics/records.sql holds hand-made raw records, one
# self-contained INSERT ... SELECT ... ON CONFLICT DO NOTHING unit per line,
# the way the collector writes, so the rollup triggers fire.
#
# 1. The lines in file order, 10 per transaction: every formula is checked
#    (scores with N/A, bonus, critical items under each rule; NPS, Wilson and
#    t intervals; ties; low n; an empty period; the chain's time zone;
#    percentiles from histograms; competitor gaps; alerts) through the
#    `branchmark` commands in table, CSV and JSON.
# 2. The same lines shuffled, a third of them repeated, in transactions of
#    random size, into a second database: the rollups must equal a full
#    recomputation from raw data (bm_rollups_check) and the first database's
#    rollups row for row.  BM_SEED fixes the shuffle.
source "$(dirname "$0")/lib.sh"

DATA=$BM_SOURCE_DIR/tests/data/metrics

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 ||
    { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_TOOL" refdata load --db "$BM_DB" "$DATA/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }

# run_lines DB PER_TX FILE: runs the SQL lines of FILE, PER_TX lines per
# transaction (0: a random 1..12 per transaction).
run_lines() {
    local db=$1 per=$2 file=$3
    awk -v per="$per" -v seed="${BM_SEED:-1}" '
        BEGIN { srand(seed + 7); n = 0; size = per ? per : 1 + int(rand() * 12) }
        /^--/ || /^$/ { next }
        { if (n == 0) print "BEGIN;"; print; n++
          if (n >= size) { print "COMMIT;"; n = 0; size = per ? per : 1 + int(rand() * 12) } }
        END { if (n > 0) print "COMMIT;" }' "$file" |
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f - >"$T/load.log" 2>&1 ||
        { cat "$T/load.log"; fail "loading $file into $db failed"; }
}

bm() { "$BM_TOOL" "$@" --db "$BM_DB"; }

# csv_row FILE KEY_COLUMN KEY: the CSV line (CR stripped) whose column equals KEY.
csv_row() {
    tr -d '\r' <"$1" | awk -F, -v c="$2" -v k="$3" '$c == k { print; exit }'
}

run_lines "$BM_DB" 10 "$DATA/records.sql"
# Evaluations arrive 'received' and count once approved (docs/workflow.md);
# here every one is approved, as a reviewer would.
approve_all() { psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "UPDATE evaluations SET review_status = 'approved'" >/dev/null || fail "approving in $1"; }
approve_all "$BM_DB"
note "loaded $(grep -vc '^--' "$DATA/records.sql") record lines"

# ---------------------------------------------------------------- scoring
score() { # score EVALUATION_SOURCE_ID: overall rounded to 4 places, zeroed
    bm_psql "SELECT coalesce(round(s.overall, 4)::text, 'null') || '|' || s.zeroed
               FROM evaluation_scores s JOIN evaluations e ON e.id = s.evaluation_id
              WHERE e.source_id = '$1'"
}
section() { # section EVALUATION_SOURCE_ID SECTION: score, critical_failed
    bm_psql "SELECT coalesce(round(s.score, 4)::text, 'null') || '|' || s.critical_failed
               FROM evaluation_section_scores s JOIN evaluations e ON e.id = s.evaluation_id
              WHERE e.source_id = '$1' AND s.section_code = '$2'"
}
# E1: bonus G3 pushes GREET to 4/3, capped at 100%; C2 N/A leaves CLEAN 1/1.
assert_eq "E1 overall" "100.0000|false" "$(score E1)"
assert_eq "E1 GREET (bonus, capped)" "100.0000|false" "$(section E1 GREET)"
# E2: K1 2 of 4 is a failed critical item under cap 50: raw (2*2+2)/(2*4+2)
# = 60% -> 50%; GREET 2/3; CLEAN 1/2; overall (66.667 + 2*50 + 50) / 4.
assert_eq "E2 KNOW (cap rule)" "50.0000|true" "$(section E2 KNOW)"
assert_eq "E2 GREET" "66.6667|false" "$(section E2 GREET)"
assert_eq "E2 overall" "54.1667|false" "$(score E2)"
# E3: G1 failed under zero_section: GREET 0; KNOW (8+1)/10; overall (0+180+100)/4.
assert_eq "E3 GREET (zero_section)" "0.0000|true" "$(section E3 GREET)"
assert_eq "E3 overall" "70.0000|false" "$(score E3)"
# E4: C1 failed under zero_total: the whole evaluation scores 0.
assert_eq "E4 overall (zero_total)" "0.0000|true" "$(score E4)"
# E5: G2 and K2 N/A are out of both earned and possible.
assert_eq "E5 overall (N/A)" "100.0000|false" "$(score E5)"
assert_eq "E5 KNOW (N/A)" "100.0000|false" "$(section E5 KNOW)"
# E6: only KNOW answered: the overall is KNOW's.
assert_eq "E6 overall (one section)" "100.0000|false" "$(score E6)"
# E7: G1 N/A and a bonus: nothing applicable, no score, not counted.
assert_eq "E7 overall (nothing applicable)" "null|false" "$(score E7)"
assert_eq "E7 GREET" "null|false" "$(section E7 GREET)"
# CE4 at a competitor: GREET (1+1)/3 only.
assert_eq "CE4 overall" "66.6667|false" "$(score CE4)"

# ------------------------------------------------------ incremental == full
check_rollups() { # check_rollups DB
    local bad
    bad=$(psql -X -A -t -q -d "$1" -c \
        "SELECT string_agg(rollup || ':' || only_incremental || '/' || only_full, ' ')
           FROM bm_rollups_check() WHERE only_incremental <> 0 OR only_full <> 0")
    [ -z "$bad" ] || fail "rollups differ from a full recomputation in $1: $bad"
}
check_rollups "$BM_DB"

# ------------------------------------------------------------------- rank
at=2026-11-15
bm rank --metric ms_score --at $at --format csv >"$T/ms.csv" || fail "rank ms_score failed"
# Pooled within-branch SD (docs/metrics.md): B1 {100, 54.17, 70} ss 1083.7,
# B2 {0, 100, 100} ss 6666.7, B4 {100 x3} ss 0 (B3's single visit adds no
# df): 7750.4 over df 6, sd 35.94.  B4 100, se 35.94/sqrt 3 = 20.75,
# t(6) = 2.4469 -> [49.2, 100]; B1 74.72 -> [23.9, 125.5] clamped to 100;
# B2's own sd 57.7 is larger than the pool's and wins: 66.7 -+ 2.4469 *
# 33.3 -> [0, 100] after clamping.  Pairwise tests: no
# pair differs (B4 - B2 = 33.3, se 29.3): ranks 1-3.  B3 has one
# evaluation: listed, low_n, not ranked, and now with an interval from the
# pool, 100 - 2.4469 * 35.94 = 12.1.  B1 was 100 in October; the drop is
# not significant, so no arrow.  Last column: change_q (BH-adjusted p).
assert_eq "ms_score B4" "1-3,1,B4,Plovdiv,SOUTH,100.0,3,49.2,100.0,false,,,," "$(csv_row "$T/ms.csv" 3 B4)"
assert_eq "ms_score B1" "1-3,1,B1,Sofia Center,NORTH,74.7,3,23.9,100.0,false,100.0,-25.3,," "$(csv_row "$T/ms.csv" 3 B1)"
assert_eq "ms_score B2" "1-3,1,B2,Sofia East,NORTH,66.7,3,0.0,100.0,false,,,," "$(csv_row "$T/ms.csv" 3 B2)"
assert_eq "ms_score B3 (low n)" ",,B3,Pernik,NORTH,100.0,1,12.1,100.0,true,,,," "$(csv_row "$T/ms.csv" 3 B3)"
# Chain: 10 scored evaluations, mean 824.1667/10.
assert_eq "ms_score chain" "82.4" "$(csv_row "$T/ms.csv" 1 chain | cut -d, -f3)"
assert_eq "ms_score chain n" "10" "$(csv_row "$T/ms.csv" 1 chain | cut -d, -f4)"

# NPS, score intervals (recomputed independently: the constrained trinomial
# likelihood maximised numerically, bisection on |z| = 1.96): B4 45
# promoters of 50 -> 90 [76.4, 95.7].  B1 20 P, 10 D of 40 -> 25 [-1.9,
# 48.2]; October 8 P, 20 D of 40 -> -30; the rise is significant: adjusted-
# Wald se's (Rocks 2016) sqrt(.67848 / 43) = 12.56 and sqrt(.60817 / 43) =
# 11.89 points, z = 55 / 17.30 = 3.18, p = .00147.  The ranking shows three
# tests (B1, region NORTH 45 P 30 D of 85 against the same October: z =
# 47.6 / 15.39 = 3.09, p = .00198; the chain, p < 1e-6).  BH: NORTH's q =
# .00198 * 3/3, B1's q = min(.00198, .00147 * 3/2) = .0020: arrow "+".
# B3 20 P, 15 D of 35 -> 14.3 [-18.3, 44.0].  Pairwise (Holm over 3):
# B4 above B1 (z = 65 / 15.1) and B3; B1 - B3 not: ranks 1, 2-3, 2-3.
# B2 has 10 answers (< 30): not ranked.
bm rank --metric nps --at $at --format csv >"$T/nps.csv" || fail "rank nps failed"
assert_eq "nps B4" "1,1,B4,Plovdiv,SOUTH,90.0,50,76.4,95.7,false,,,," "$(csv_row "$T/nps.csv" 3 B4)"
assert_eq "nps B1" "2-3,2,B1,Sofia Center,NORTH,25.0,40,-1.9,48.2,false,-30.0,55.0,+,0.0020" "$(csv_row "$T/nps.csv" 3 B1)"
assert_eq "nps B3" "2-3,2,B3,Pernik,NORTH,14.3,35,-18.3,44.0,false,,,," "$(csv_row "$T/nps.csv" 3 B3)"
# B2 5 P, 5 D of 10: 0 [-52.7, 52.7].
assert_eq "nps B2 (low n)" ",,B2,Sofia East,NORTH,0.0,10,-52.7,52.7,true,,,," "$(csv_row "$T/nps.csv" 3 B2)"
# --min-n 10 lets B2 in; only B4 is significantly above it.
bm rank --metric nps --at $at --min-n 10 --format csv >"$T/nps10.csv"
assert_eq "nps B2 with --min-n 10" "2-4,2,B2,Sofia East,NORTH,0.0,10,-52.7,52.7,false,,,," "$(csv_row "$T/nps10.csv" 3 B2)"
# Segment "family": the even-numbered half of B1's answers: 10 P, 5 D of 20.
bm rank --metric nps --at $at --segment family --format csv >"$T/nps-family.csv"
assert_eq "nps B1 family" ",,B1,Sofia Center,NORTH,25.0,20,-12.9,56.0,true,,,," "$(csv_row "$T/nps-family.csv" 3 B1)"

# Capture rate, continuity-corrected Wilson: B1 300 of 1600 entrants /
# passers-by [16.88, 20.77]; B2 200 of 1000 [17.59, 22.64].  Both changes
# are large (z = 5.3 and 4.9): BH q < .00005 -> change_q 0.0000.
# The people-counter interval at 2026-10-31T22:30Z is 00:30 on 1 November in
# Sofia: it counts in November, the one at 21:30Z in October.
bm rank --metric capture_rate --region NORTH --at $at --format csv >"$T/cap.csv"
assert_eq "capture B2" "1-2,1,B2,Sofia East,NORTH,20.0,1000,17.6,22.6,false,30.0,-10.0,-,0.0000" "$(csv_row "$T/cap.csv" 3 B2)"
assert_eq "capture B1" "1-2,1,B1,Sofia Center,NORTH,18.8,1600,16.9,20.8,false,10.0,8.8,+,0.0000" "$(csv_row "$T/cap.csv" 3 B1)"
assert_eq "capture rows in NORTH" "3" "$(tr -d '\r' <"$T/cap.csv" | awk -F, 'NF == 14 && $5 == "NORTH"' | wc -l)"

# Channel: B1's two visits (E1 100, E2 54.17); the call is out.  The
# interval's lower end comes from the visits' pooled SD (5.7).
bm rank --metric ms_score --channel visit --at $at --format csv >"$T/visit.csv"
assert_eq "ms_score visit B1" ",,B1,Sofia Center,NORTH,77.1,2,5.7,100.0,true,100.0,-22.9,," "$(csv_row "$T/visit.csv" 3 B1)"
# Section: KNOW of B1: 100, 50, 90.
bm rank --metric ms_score --section KNOW --at $at --format csv >"$T/know.csv"
assert_eq "KNOW B1" "80.0" "$(csv_row "$T/know.csv" 3 B1 | cut -d, -f6)"

# An empty period: every branch listed with n 0, none ranked.
bm rank --metric nps --at 2026-12-15 --format csv >"$T/empty.csv" || fail "rank of an empty period failed"
assert_eq "empty period rows" "4" "$(tr -d '\r' <"$T/empty.csv" | awk -F, 'NF == 14 && $3 ~ /^B/ && $1 == "" && $7 == 0' | wc -l)"

# Table format: aligned, rank ranges, the arrow as a real arrow.
bm rank --metric nps --at $at >"$T/nps.txt" || fail "rank table failed"
grep -Eq '^rank +group +branch' "$T/nps.txt" || fail "table has no header: $(cat "$T/nps.txt")"
grep -Eq '^2-3 .* B1 .*25\.0 .* 55\.0 +↑' "$T/nps.txt" || fail "table row of B1 wrong: $(cat "$T/nps.txt")"
# JSON: valid (PostgreSQL parses it), numbers as numbers, the arrow as "up".
bm rank --metric nps --at $at --format json >"$T/nps.json" || fail "rank json failed"
# (psql interpolates :'j' only in input it reads, not in -c.)
json() { echo "SELECT $1 FROM (SELECT :'j'::jsonb AS j) x" | psql -X -A -t -q -d "$BM_DB" -v j="$(cat "$T/nps.json")" -f -; }
assert_eq "json rows" "4" "$(json "jsonb_array_length(j->'ranking')")"
assert_eq "json B1" '{"n": 40, "rank": "2-3", "arrow": "up", "value": 25.0, "branch": "B1", "ci_low": -1.9}' \
    "$(json "(SELECT jsonb_build_object('rank', r->'rank', 'branch', r->'branch', 'value', r->'value', 'n', r->'n', 'ci_low', r->'ci_low', 'arrow', r->'arrow') FROM jsonb_array_elements(j->'ranking') r WHERE r->>'branch' = 'B1')")"
assert_eq "json low_n B2" "true" "$(json "(SELECT r->>'low_n' FROM jsonb_array_elements(j->'ranking') r WHERE r->>'branch' = 'B2')")"

# ---------------------------------------------------------------- scorecard
bm scorecard B1 --at $at --format csv >"$T/card.csv" || fail "scorecard failed"
metric() { csv_row "$T/card.csv" 1 "$1" | cut -d, -f3-8; }
# value, n, ci_low, ci_high, low_n, previous
# Means: exact t quantiles, t(39) = 2.0227 and t(59) = 2.0010 (1.96 before).
assert_eq "csi" "70.0,40,64.4,75.6,false,60.0" "$(metric csi)"
# Shares: continuity-corrected Wilson, 60 / 300 -> [15.72, 25.07].
assert_eq "conversion (60 sales / 300 entrants)" "20.0,300,15.7,25.1,false,0.0" "$(metric conversion)"
assert_eq "avg_check (refunds excluded)" "13.05,60,12.60,13.50,false," "$(metric avg_check)"
# Waits i*10 s, i = 1..40, in 5 s buckets: median rank 20 ends the 200-205 s bucket.
assert_eq "wait_p50" "205,40,135,275,false," "$(metric wait_p50)"
assert_eq "wait_p90" "365,40,325,405,false," "$(metric wait_p90)"
# 30 / 50 -> [45.20, 73.27]; 10 / 50 -> [10.50, 34.14].
assert_eq "calls answered in 20 s" "60.0,50,45.2,73.3,false," "$(metric calls_answered_share)"
assert_eq "calls abandoned" "20.0,50,10.5,34.1,false," "$(metric calls_abandoned_share)"
# 3 complaints, Garwood [0.6187, 8.7673] events / 300 entrants * 1000.
assert_eq "complaints per 1000 entrants" "10.00,300,2.06,29.22,false,0.00" "$(metric complaints_per_1000)"
# Resolved after 2 h and 5 h, 1 h buckets: rank 1 of 2 ends the 2-3 h bucket.
assert_eq "complaint resolution median" "3.0,2,,,true," "$(metric complaint_resolve_median)"
# 1 open complaint: Garwood [0.025, 5.57]; balance 3 of 7 changes: 3 +-
# 1.96 sqrt 7 = [-2.2, 8.2] (whole numbers as the count is shown).
assert_eq "complaints open" "1,3,0,6,true," "$(metric complaints_open)"
assert_eq "customer balance (5 - 2)" "3,7,-2,8,true," "$(metric customer_balance)"
assert_eq "ms_score trend" "- - - - 100.0 74.7" "$(csv_row "$T/card.csv" 1 ms_score | cut -d, -f11)"
assert_eq "section GREET (100, 66.67, 0)" "GREET,55.6,3" "$(csv_row "$T/card.csv" 1 GREET | cut -d, -f1-3)"
assert_eq "complaint category staff" "staff,2,0,2" "$(csv_row "$T/card.csv" 1 staff)"
assert_eq "lost reason price" "price,1,0,1" "$(csv_row "$T/card.csv" 1 price)"
bm rank --metric calls_answered_share --target-s 30 --at $at --format csv >"$T/calls30.csv"
assert_eq "calls answered in 30 s" "80.0" "$(csv_row "$T/calls30.csv" 3 B1 | cut -d, -f6)"

# -------------------------------------------------------------- competitors
# B1's visits {100, 54.17} and call {70} against NORTH's competitors'
# visits {54.17, 70} (C1) and {66.67} (C2): per channel (issue 15), visits
# 77.1 against 63.6 (3 visits at 2 outlets), gap 13.5; the call has no
# competitor side (the old "(overall)" pooled it: 74.7, gap 11.1).  Within
# 2 km only C1: 62.1, gap 15.0, one outlet, so no interval.
bm competitors --period month --at $at --format csv >"$T/comp.csv" || fail "competitors failed"
assert_eq "B1 vs region (visits)" "branch B1,region NORTH (2 outlets),(overall),visit,77.1,2,63.6,3,2,13.5" \
    "$(tr -d '\r' <"$T/comp.csv" | grep '^branch B1,.*(overall),visit,' | cut -d, -f1-10)"
assert_eq "B1 vs region (calls)" "branch B1,region NORTH (2 outlets),(overall),call,70.0,1,,0,0," \
    "$(tr -d '\r' <"$T/comp.csv" | grep '^branch B1,.*(overall),call,' | cut -d, -f1-10)"
# The chain: own visits 83.8 (n 9; the call is apart) against all
# outlets' visits {54.17, 70}, {66.67}, {100} = 72.7, gap 11.1.
assert_eq "chain vs all" "chain TESTCHAIN,all competitors (3 outlets),(overall),visit,83.8,9,72.7,4,3,11.1" \
    "$(tr -d '\r' <"$T/comp.csv" | grep '^chain .*(overall),visit,' | cut -d, -f1-10)"
bm competitors --branch B1 --radius-km 2 --period month --at $at --format csv >"$T/comp2.csv"
assert_eq "B1 within 2 km" "branch B1,within 2 km (1 outlet),(overall),visit,77.1,2,62.1,2,1,15.0,," \
    "$(tr -d '\r' <"$T/comp2.csv" | grep '(overall),visit,' | cut -d, -f1-12)"

# ------------------------------------------------------------------- alerts
# B2's capture rate: 30% in each of May..October, 20% of 1000 in November:
# 10 points below, se sqrt(.3*.7/1000) = 1.45 points: -6.9 sigma.
bm alerts --at $at --format csv >"$T/alerts.csv" || fail "alerts failed"
assert_eq "alert B2 capture" "B2,NORTH,capture_rate,20.0,1000,30.0,6000,-6.9,complaint categories: rude +3.0; contact points: door +3.0" \
    "$(csv_row "$T/alerts.csv" 3 capture_rate)"
assert_eq "alert count" "1" "$(tr -d '\r' <"$T/alerts.csv" | tail -n +2 | grep -c .)"

# ---------------------------------------------------------------- summary
bm summary --format csv >"$T/summary.csv" || fail "summary failed"
assert_eq "summary B1" "B1,NORTH,3,62,42,50,3,80,7,6,87.4,false,-2.5,80,false" "$(csv_row "$T/summary.csv" 1 B1)"

# ------------------------------------------------------------------ errors
expect_usage() { # expect_usage MESSAGE_PART ARGS...
    local want=$1 rc=0
    shift
    "$BM_TOOL" "$@" --db "$BM_DB" >"$T/err.out" 2>"$T/err.txt" || rc=$?
    assert_eq "exit code of branchmark $*" 2 "$rc"
    grep -qF "$want" "$T/err.txt" || fail "branchmark $*: expected \"$want\" in: $(cat "$T/err.txt")"
}
expect_usage 'unknown metric "foo" (try: branchmark metrics)' rank --metric foo
expect_usage 'unknown region "MARS"' rank --metric nps --region MARS
expect_usage 'unknown branch "B9"' scorecard B9
expect_usage 'unknown period "year"' rank --metric nps --period year
expect_usage 'unknown format "xml"' rank --metric nps --format xml
expect_usage 'invalid date "2026-02-30": no such day' rank --metric nps --at 2026-02-30
expect_usage 'unknown channel "fax"' rank --metric ms_score --channel fax
rc=0
"$BM_TOOL" rank --metric nps --db "host=$T/nowhere dbname=x" >/dev/null 2>"$T/err.txt" || rc=$?
assert_eq "exit code without a database" 1 "$rc"

# ------------------------------------------- random order, duplicates, twice
seed=${BM_SEED:-$RANDOM}
note "shuffling with BM_SEED=$seed"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE shuffled' >/dev/null || fail "createdb"
DB2="host=$PGHOST port=$PGPORT dbname=shuffled user=postgres"
"$BM_TOOL" migrate --db "$DB2" >"$T/migrate2.log" 2>&1 || { cat "$T/migrate2.log"; fail "migrate 2"; }
"$BM_TOOL" refdata load --db "$DB2" "$DATA/refdata.json" >"$T/refdata2.log" 2>&1 ||
    { cat "$T/refdata2.log"; fail "refdata load 2"; }
grep -v '^--' "$DATA/records.sql" |
    awk -v seed="$seed" 'BEGIN { srand(seed) }
        { printf "%.9f\t%s\n", rand(), $0; if (rand() < 0.35) printf "%.9f\t%s\n", rand(), $0 }' |
    sort -n | cut -f2- >"$T/shuffled.sql"
BM_SEED=$seed run_lines "$DB2" 0 "$T/shuffled.sql"
approve_all "$DB2"
check_rollups "$DB2"
for t in rollup_traffic rollup_sales rollup_queue rollup_calls rollup_complaints \
         rollup_complaint_causes rollup_surveys rollup_customers rollup_lost_reasons \
         rollup_hist rollup_scores; do
    q="COPY (SELECT * FROM $t r ORDER BY r) TO STDOUT"
    psql -X -q -d "$BM_DB" -c "$q" >"$T/a.$t"
    psql -X -q -d "$DB2" -c "$q" >"$T/b.$t"
    cmp -s "$T/a.$t" "$T/b.$t" || fail "$t differs between file order and shuffled order (BM_SEED=$seed)"
    [ -s "$T/a.$t" ] || fail "$t is empty"
done
# And a rebuild from raw data changes nothing.
psql -X -q -d "$DB2" -c 'SELECT bm_rollups_rebuild()' >/dev/null || fail "bm_rollups_rebuild failed"
psql -X -q -d "$DB2" -c "COPY (SELECT * FROM rollup_scores r ORDER BY r) TO STDOUT" >"$T/c.rollup_scores"
cmp -s "$T/a.rollup_scores" "$T/c.rollup_scores" || fail "rollup_scores differ after bm_rollups_rebuild"
exit 0
