#!/bin/bash
# test_followup: the measured follow-up of done actions (docs/actions.md) on
# survey data with a known effect and a decoy.
#
# Data (inserted as the admin; the rollup triggers aggregate it): the
# metrics test's reference data (B1, B2, B3 in NORTH, B4 in SOUTH), 400
# survey answers per branch and month of 2025, each a promoter with
# probability pP, a detractor with 0.20, else passive (seeded):
#   every branch  pP = 0.40 until May, 0.55 from June: a chain-wide drift
#                 of +15 NPS points (the decoy);
#   B1 only       pP another +0.20 from June: a step of +20 NPS points.
# Actions, effective 2025-06-15 (June counts on neither side; 3 months each
# side: March-May against July-September):
#   on B1: the follow-up must find the step (+20 within its interval), not
#          step + drift (+35, what B1's own before/after shows);
#   on B2: drift only: "no detectable change", although B2's own change is
#          significant;
# each is compared with the region's branches WITHOUT a done action of their
# own on the metric in the window (B1 and B2 leave each other out: B1's step
# would make B2 look worse), i.e. with B3;
# and the cases without a verdict: not done, waiting (done today), thin
# data (no CSI answers; a huge --min-n), a count metric.
source "$(dirname "$0")/lib.sh"

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "migrate"; }
"$BM_TOOL" refdata load --db "$BM_DB" "$BM_SOURCE_DIR/tests/data/metrics/refdata.json" \
    >"$T/refdata.log" 2>&1 || { cat "$T/refdata.log"; fail "refdata load"; }
bm_psql "CREATE ROLE hq1 LOGIN IN ROLE branchmark_hq;
         CREATE ROLE reg_north LOGIN IN ROLE branchmark_regional;
         INSERT INTO access_scopes (role_name, region_id, branch_id)
         SELECT 'reg_north', id, NULL FROM regions WHERE code = 'NORTH';" >/dev/null
as_db() { echo "host=$PGHOST port=$PGPORT dbname=branchmark user=$1"; }
bm_as() { local who=$1; shift; "$BM_TOOL" "$@" --db "$(as_db "$who")"; }

note "inserting 4 x 12 x 400 survey answers (drift +15 for all from June 2025, step +20 at B1)"
bm_psql "SELECT setseed(0.17);
  INSERT INTO survey_responses (branch_id, source_id, responded_at, nps)
  SELECT id, code || '-' || m || '-' || i,
         make_timestamptz(2025, m, 1 + i % 27, 10 + i % 8, 0, 0, 'UTC'),
         CASE WHEN u < pp THEN 10 WHEN u < pp + 0.20 THEN 3 ELSE 8 END
    FROM (SELECT b.id, b.code, m, i, random() AS u,
                 0.40 + CASE WHEN m >= 6 THEN 0.15 ELSE 0 END
                      + CASE WHEN m >= 6 AND b.code = 'B1' THEN 0.20 ELSE 0 END AS pp
            FROM branches b, generate_series(1, 12) m, generate_series(1, 400) i) s" >/dev/null ||
    fail "inserting survey answers"

# open_done BRANCH METRIC EFFECTIVE: opens an action as HQ, marks it done
# as of EFFECTIVE; prints its id.
open_action() {
    bm_as hq1 action open --branch "$1" --metric "$2" --what "coach the greeting" --owner branch \
        --due 2025-07-01 --format csv | tr -d '\r' | awk -F, 'NR == 2 { print $1 }'
}
open_done() {
    local id
    id=$(open_action "$1" "$2") || fail "action open $1 $2"
    [ -n "$id" ] || fail "action open $1 $2 printed no id"
    bm_as hq1 action close "$id" --done --effective "$3" --comment "done" >/dev/null ||
        fail "action close $id"
    echo "$id"
}
A1=$(open_done B1 nps 2025-06-15)
A2=$(open_done B2 nps 2025-06-15)

# field ID TABLE KEY [ARGS...]: one value of the follow-up's JSON.
followup_json() { local id=$1; shift; bm_as hq1 action show "$id" --format json "$@"; }
field() {
    local id=$1 table=$2 key=$3 row=${4:-0}
    shift 4 || shift 3
    followup_json "$id" "$@" | python3 -c "
import json, sys
v = json.load(sys.stdin)['$table'][$row]['$key']
print('' if v is None else v)"
}
inside() { python3 -c "import sys; lo, x, hi = map(float, sys.argv[1:]); sys.exit(0 if lo <= x <= hi else 1)" "$@"; }

followup_json "$A1" >"$T/a1.json" || fail "action show $A1"
note "B1: $(python3 -c "
import json; v = json.load(open('$T/a1.json'))
e = v['effect'][0]; b, c = v['followup']
print('effect %s [%s, %s] %s; branch %s -> %s (n %s, %s); versus %s -> %s (n %s, %s)' % (
  e['effect'], e['effect_low'], e['effect_high'], e['verdict'], b['before'], b['after'],
  b['before_n'], b['after_n'], c['before'], c['after'], c['before_n'], c['after_n']))")"
read -r verdict eff lo hi blo bhi bn an cn can per_b per_a <<<"$(python3 -c "
import json; v = json.load(open('$T/a1.json'))
e = v['effect'][0]; b, c = v['followup']
print(e['verdict'], e['effect'], e['effect_low'], e['effect_high'], b['change_low'], b['change_high'],
      b['before_n'], b['after_n'], c['before_n'], c['after_n'], e['periods_before'], e['periods_after'])")"
assert_eq "B1 verdict" improved "$verdict"
inside "$lo" 20 "$hi" || fail "B1: the step (+20) is not inside the effect's interval [$lo, $hi]"
inside "$lo" 35 "$hi" && fail "B1: step + drift (+35) is inside the effect's interval [$lo, $hi]: the drift was credited"
inside "$blo" 35 "$bhi" || fail "B1's own change interval [$blo, $bhi] should hold step + drift (35)"
assert_eq "B1 n before/after (3 months x 400)" "1200 1200" "$bn $an"
# B2 has a done action of its own on nps in the window: left out of the
# comparison, which is B3 alone.
assert_eq "versus n before/after (B3 only)" "1200 1200" "$cn $can"
assert_eq "periods before/after" "3 3" "$per_b $per_a"

read -r verdict lo hi blo <<<"$(followup_json "$A2" | python3 -c "
import json, sys; v = json.load(sys.stdin); e = v['effect'][0]; b = v['followup'][0]
print(e['verdict'], e['effect_low'], e['effect_high'], b['change_low'])")"
assert_eq "B2 (drift only) verdict" no_detectable_change "$verdict"
inside "$lo" 0 "$hi" || fail "B2: 0 is not inside the effect's interval [$lo, $hi]"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)" "$blo" ||
    fail "B2's own change should be significant (the drift), low end $blo"

# Against the chain (B3, and B4 of SOUTH, which drifts too; B2 is left out):
# the same verdict.
assert_eq "B1 against the chain" improved "$(field "$A1" effect verdict 0 --versus chain)"
assert_eq "comparison set (chain)" "chain without the branch (2 branches)" \
    "$(field "$A1" followup scope 1 --versus chain)"
# A regional manager sees the same follow-up (its region is the comparison).
assert_eq "as the regional manager" improved \
    "$(bm_as reg_north action show "$A1" --format json | python3 -c "import json,sys; print(json.load(sys.stdin)['effect'][0]['verdict'])")"

# ---------------------------------------------------- no verdict, and why
A3=$(open_action B3 nps)
assert_eq "open action" not_done "$(field "$A3" effect verdict)"
TODAY=$(bm_psql "SELECT (now() AT TIME ZONE bm_chain_timezone())::date")
A4=$(open_done B3 nps "$TODAY")
assert_eq "done today" waiting "$(field "$A4" effect verdict)"
A5=$(open_done B1 csi 2025-06-15)
assert_eq "no CSI answers" too_little_data "$(field "$A5" effect verdict)"
assert_eq "huge --min-n" too_little_data "$(field "$A1" effect verdict 0 --min-n 100000)"
A6=$(open_done B1 customer_balance 2025-06-15)
assert_eq "a count" not_testable "$(field "$A6" effect verdict)"

# Refusals: a future effective date, an unknown action, bad options.
A7=$(open_action B1 nps)
rc=0; bm_as hq1 action close "$A7" --done --effective 2099-01-01 2>"$T/err" || rc=$?
assert_eq "future effective date: exit" 2 "$rc"
grep -q "in the future" "$T/err" || fail "future effective date: $(cat "$T/err")"
rc=0; bm_as hq1 action show 999999 2>"$T/err" || rc=$?
assert_eq "unknown action: exit" 2 "$rc"
grep -q "action 999999 does not exist" "$T/err" || fail "unknown action: $(cat "$T/err")"
rc=0; bm_as hq1 action show "$A1" --versus moon 2>"$T/err" || rc=$?
assert_eq "bad --versus: exit" 2 "$rc"
