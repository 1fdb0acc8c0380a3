#!/bin/bash
# test_actions: action plans (docs/actions.md) through the CLI and the API
# as each role, on a real PostgreSQL with real login roles and passwords.
#
#   HQ (hq1) opens anywhere; the NORTH regional manager (reg_n) opens and
#   changes actions of NORTH only, and cannot see or change SOUTH's (B4);
#   the B1 branch manager (mgr_b1) sees B1's actions, may start, finish and
#   comment them, but not open, drop, re-open or re-date them.
#   The trail holds every change with who, when, from, to and the comment;
#   the list puts overdue actions first; CLI and API bodies are equal (cmp).
# Reference data: the metrics test's (B1, B2, B3 in NORTH, B4 in SOUTH).
source "$(dirname "$0")/lib.sh"

BM_WEB=$BM_BUILD_DIR/collector/branchmark-web
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh)"
bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "migrate"; }
"$BM_TOOL" refdata load --db "$BM_DB" "$BM_SOURCE_DIR/tests/data/metrics/refdata.json" \
    >"$T/refdata.log" 2>&1 || { cat "$T/refdata.log"; fail "refdata load"; }
PW=actions-secret-1
for u in "hq1 --role hq" "reg_n --role regional --region NORTH" "reg_s --role regional --region SOUTH" \
         "mgr_b1 --role branch --branch B1"; do
    # shellcheck disable=SC2086
    BM_USER_PASSWORD=$PW "$BM_TOOL" user add $u --db "$BM_DB" >>"$T/user.log" 2>&1 ||
        { cat "$T/user.log"; fail "user add $u"; }
done
printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$T/pg/data/pg_hba.conf"
bm_psql "SELECT pg_reload_conf()" >/dev/null
WEB_DB="host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark"
export PGPASSWORD=$PW
as_db() { echo "$WEB_DB user=$1"; }
bm_as() { local who=$1; shift; "$BM_TOOL" "$@" --db "$(as_db "$who")"; }
# expect_fail RC TEXT COMMAND...: COMMAND exits RC and says TEXT on stderr.
expect_fail() {
    local want_rc=$1 want=$2 rc=0
    shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
    assert_eq "exit code of $*" "$want_rc" "$rc"
    grep -qF -- "$want" "$T/err.txt" || fail "$*: expected \"$want\" in: $(cat "$T/err.txt")"
}
id_of() { tr -d '\r' | awk -F, 'NR == 2 { print $1 }'; }
csv_col() { tr -d '\r' | awk -F, -v c="$1" 'NR > 1 { printf "%s%s", sep, $c; sep = " " } END { print "" }'; }

# ------------------------------------------------------------ CLI: open
TODAY=$(bm_psql "SELECT (now() AT TIME ZONE bm_chain_timezone())::date")
PAST=$(bm_psql "SELECT (now() AT TIME ZONE bm_chain_timezone())::date - 10")
SOON=$(bm_psql "SELECT (now() AT TIME ZONE bm_chain_timezone())::date + 20")
A1=$(bm_as reg_n action open --branch B1 --metric ms_score --section GREET --what "greet within 10 s" \
     --owner branch --due "$SOON" --target "GREET >= 80" --source alert --source-ref "nps 2026-11" \
     --comment "from the alert" --format csv | id_of) || fail "regional open B1"
A2=$(bm_as hq1 action open --branch B2 --metric complaints_per_1000 --category waiting \
     --contact-point checkout --what "second till at peak" --owner regional --due "$PAST" \
     --format csv | id_of) || fail "HQ open B2"
A3=$(bm_as hq1 action open --branch B4 --metric nps --what "call back detractors" --owner branch \
     --due "$PAST" --source scorecard --format csv | id_of) || fail "HQ open B4"
[ -n "$A1" ] && [ -n "$A2" ] && [ -n "$A3" ] || fail "open printed no ids: '$A1' '$A2' '$A3'"
note "opened $A1 (B1), $A2 (B2, overdue), $A3 (B4, SOUTH, overdue)"

expect_fail 2 'unknown branch "B4"' bm_as reg_n action open --branch B4 --metric nps --what x \
    --owner branch --due "$SOON"
expect_fail 1 "permission denied" bm_as mgr_b1 action open --branch B1 --metric nps --what x \
    --owner branch --due "$SOON"
expect_fail 2 'unknown metric "nope"' bm_as hq1 action open --branch B1 --metric nope --what x \
    --owner branch --due "$SOON"
expect_fail 2 "--section applies to ms_score only" bm_as hq1 action open --branch B1 --metric nps \
    --section GREET --what x --owner branch --due "$SOON"
expect_fail 2 "--owner" bm_as hq1 action open --branch B1 --metric nps --what x --owner boss --due "$SOON"
expect_fail 2 "--due" bm_as hq1 action open --branch B1 --metric nps --what x --owner branch --due 2026-02-30
expect_fail 2 "--what" bm_as hq1 action open --branch B1 --metric nps --what "" --owner branch --due "$SOON"
expect_fail 2 'unknown option "--colour"' bm_as hq1 action open --colour red

# ------------------------------------------------------------ scope (RLS)
assert_eq "HQ sees all (overdue first)" "$A2 $A3 $A1" "$(bm_as hq1 action list --format csv | csv_col 1)"
assert_eq "NORTH sees its own" "$A2 $A1" "$(bm_as reg_n action list --format csv | csv_col 1)"
assert_eq "SOUTH sees its own" "$A3" "$(bm_as reg_s action list --format csv | csv_col 1)"
assert_eq "B1's manager sees B1's" "$A1" "$(bm_as mgr_b1 action list --format csv | csv_col 1)"
assert_eq "overdue only" "$A2 $A3" "$(bm_as hq1 action list --overdue --format csv | csv_col 1)"
assert_eq "days overdue" "10 10" "$(bm_as hq1 action list --overdue --format csv | csv_col 14)"
assert_eq "by branch" "$A2" "$(bm_as hq1 action list --branch B2 --format csv | csv_col 1)"
expect_fail 2 'unknown branch "B4"' bm_as reg_n action list --branch B4
expect_fail 2 "action $A3 does not exist" bm_as reg_n action show "$A3"
expect_fail 2 "action $A3 does not exist" bm_as reg_n action update "$A3" --comment "sneaky"
expect_fail 2 "action $A3 does not exist" bm_as reg_n action close "$A3" --dropped
# Nor directly in SQL: RLS hides the rows, the functions are the only writers.
assert_eq "reg_n SELECT of SOUTH's action" 0 \
    "$(psql -X -A -t -q -d "$(as_db reg_n)" -c "SELECT count(*) FROM actions WHERE id = $A3")"
psql -X -q -d "$(as_db hq1)" -c "UPDATE actions SET status = 'done' WHERE id = $A1" >/dev/null 2>&1 &&
    fail "HQ updated actions directly, bypassing the trail"

# ------------------------------------------------------------ changes, trail
expect_fail 1 "permission denied" bm_as mgr_b1 action close "$A1" --dropped
expect_fail 1 "permission denied" bm_as mgr_b1 action update "$A1" --due "$PAST"
bm_as mgr_b1 action update "$A1" --status in_progress --comment "team briefed" >/dev/null ||
    fail "branch starts its action"
bm_as reg_n action update "$A1" --due "$TODAY" --target "GREET >= 85" --comment "tighter" >/dev/null ||
    fail "regional re-dates"
expect_fail 2 "nothing to change" bm_as mgr_b1 action update "$A1"
bm_as mgr_b1 action close "$A1" --done --comment "greeting coached" >/dev/null || fail "branch finishes"
expect_fail 2 "is done; it cannot be changed" bm_as hq1 action update "$A1" --comment "late"
bm_as hq1 action close "$A3" --dropped --comment "store refit instead" >/dev/null || fail "HQ drops"
expect_fail 2 "exactly one of --done and --dropped" bm_as hq1 action close "$A2"

bm_as hq1 action show "$A1" --format csv >"$T/show.csv" || fail "action show"
trail=$(tr -d '\r' <"$T/show.csv" | awk 'BEGIN { RS = ""; ORS = "\n" } NR == 2' |
        awk -F, 'NR > 1 { printf "%s%s:%s>%s:%s", sep, $2, $3, $4, $6; sep = " | " } END { print "" }')
assert_eq "trail (actor:from>to:comment)" \
    "reg_n:>open:from the alert | mgr_b1:open>in_progress:team briefed | reg_n:in_progress>in_progress:tighter | mgr_b1:in_progress>done:greeting coached" \
    "$trail"
changes=$(bm_psql "SELECT string_agg(change, ' / ' ORDER BY id) FROM action_events WHERE action_id = $A1 AND change <> ''")
assert_eq "trail changes" "due $SOON -> $TODAY; target \"GREET >= 80\" -> \"GREET >= 85\" / effective $TODAY" "$changes"
assert_eq "every event has a time" 0 "$(bm_psql "SELECT count(*) FROM action_events WHERE at IS NULL")"
assert_eq "status after all" "done open dropped" \
    "$(bm_psql "SELECT string_agg(status, ' ' ORDER BY id) FROM actions")"

# ------------------------------------------------------------ the API
bm_pick_port WPORT
cat >"$T/web.conf" <<EOF
database = "$WEB_DB"
listen_address = 127.0.0.1
port = $WPORT
static_dir = $T
log_level = info
EOF
bm_run_bg web "$BM_WEB" -c "$T/web.conf"
URL=http://127.0.0.1:$WPORT
wait_until "branchmark-web answers /api/health" 30 curl -sf "$URL/api/health"
login() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -c "$T/$1.jar" -H 'Content-Type: application/json' \
           --data-binary "{\"user\": \"$1\", \"password\": \"$PW\"}" "$URL/api/login")
    assert_eq "login $1" 200 "$code"
}
for u in hq1 reg_n mgr_b1; do login "$u"; done
# api USER NAME [curl args...] URL: body in $T/NAME.body; prints the status.
api() { local u=$1 n=$2; shift 2; curl -s -b "$T/$u.jar" -o "$T/$n.body" -w '%{http_code}' "$@"; }
post() { local u=$1 n=$2 path=$3 body=$4; api "$u" "$n" -H 'Content-Type: application/json' --data-binary "$body" "$URL$path"; }

assert_eq "API list as reg_n" 200 "$(api reg_n list-n "$URL/api/actions?status=all")"
bm_as reg_n action list --status all --format json >"$T/cli-list-n.json"
cmp "$T/list-n.body" "$T/cli-list-n.json" || fail "API and CLI action lists differ for reg_n"
assert_eq "API followup as hq1" 200 "$(api hq1 fu "$URL/api/followup?action=$A1")"
bm_as hq1 action show "$A1" --format json >"$T/cli-fu.json"
cmp "$T/fu.body" "$T/cli-fu.json" || fail "API and CLI follow-ups differ"
assert_eq "API followup of another region" 400 "$(api reg_n fu-s "$URL/api/followup?action=$A3")"
grep -q "does not exist" "$T/fu-s.body" || fail "followup of another region: $(cat "$T/fu-s.body")"
assert_eq "API list CSV" 200 "$(api hq1 list-csv "$URL/api/actions?overdue=true&format=csv")"
assert_eq "bad status" 400 "$(api hq1 bad-status "$URL/api/actions?status=maybe")"

assert_eq "API open as reg_n" 200 "$(post reg_n open-n /api/action/open \
    "{\"branch\": \"B3\", \"metric\": \"nps\", \"what\": \"smile\", \"owner\": \"branch\", \"due\": \"$SOON\", \"source\": \"alert\"}")"
A4=$(python3 -c "import json; print(json.load(open('$T/open-n.body'))['id'])")
assert_eq "API open of another region" 400 "$(post reg_n open-s /api/action/open \
    "{\"branch\": \"B4\", \"metric\": \"nps\", \"what\": \"x\", \"owner\": \"branch\", \"due\": \"$SOON\"}")"
grep -q 'unknown branch' "$T/open-s.body" || fail "open of another region: $(cat "$T/open-s.body")"
assert_eq "API open as branch" 403 "$(post mgr_b1 open-b /api/action/open \
    "{\"branch\": \"B1\", \"metric\": \"nps\", \"what\": \"x\", \"owner\": \"branch\", \"due\": \"$SOON\"}")"
assert_eq "API unknown field" 400 "$(post hq1 open-x /api/action/open '{"colour": "red"}')"
assert_eq "API not JSON" 400 "$(post hq1 open-j /api/action/open 'branch=B1')"
assert_eq "API update" 200 "$(post reg_n upd /api/action/update "{\"id\": $A4, \"status\": \"in_progress\", \"comment\": \"on it\"}")"
assert_eq "API close" 200 "$(post hq1 close /api/action/update "{\"id\": \"$A4\", \"status\": \"dropped\", \"comment\": \"merged\"}")"
assert_eq "API change of another region" 400 "$(post reg_n upd-s /api/action/update "{\"id\": $A3, \"comment\": \"x\"}")"
assert_eq "API trail" "reg_n:open:|reg_n:in_progress:on it|hq1:dropped:merged" \
    "$(bm_psql "SELECT string_agg(actor || ':' || new_status || ':' || comment, '|' ORDER BY id) FROM action_events WHERE action_id = $A4")"
assert_eq "cross-site POST" 403 "$(api hq1 csrf -H 'Origin: http://evil.example' -H 'Content-Type: application/json' \
    --data-binary "{\"id\": $A2, \"comment\": \"x\"}" "$URL/api/action/update")"
stop_all
