#!/bin/bash
# test_web_api: branchmark-web's JSON API against a real PostgreSQL with
# generated chain data delivered by real agents (docs/api.md).
#  1. Anonymous: /api/health answers 200; every data endpoint answers 401;
#     a wrong password, an unknown user and a superuser get 401 (PostgreSQL
#     checks the passwords: pg_hba is switched to scram-sha-256 for them).
#  2. For metrics, rank (chain and region), scorecard, competitors and
#     alerts the API body is byte for byte the CLI's output for the same
#     options run as the same role (cmp), as HQ and as a regional manager;
#     CSV too for one endpoint.
#  3. A regional manager sees nothing of another region through any
#     endpoint: scorecard -> 400 unknown branch, rankings, pickers, alerts
#     and competitor gaps hold only its own region's branches.
#  4. Bad parameters get 400 with a message naming the parameter; static
#     files are served, path traversal is not; a body over the cap gets 413;
#     logout ends the session; SIGTERM stops the server cleanly (and, with
#     BM_VALGRIND=1, without leaks).
source "$(dirname "$0")/lib.sh"

BM_WEB=$BM_BUILD_DIR/collector/branchmark-web
[ -x "$BM_WEB" ] || fail "$BM_WEB is not built"
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh)"
BRANCHES=(B001 B002 B003 B004)

bm_load_generated ${#BRANCHES[@]} --regions 2 --competitors 2 --days 8 --scale 0.1 --seed 7
assert_eq "regions of the generated branches" "B001 NORTH,B002 SOUTH,B003 NORTH,B004 SOUTH" \
    "$(bm_psql "SELECT string_agg(b.code || ' ' || r.code, ',' ORDER BY b.code) FROM branches b JOIN regions r ON r.id = b.region_id")"
note "stored $BM_LOADED records"

# ------------------------------------------------------- users, passwords

HQ_PW=hq-web-secret-1
NORTH_PW=north-web-secret-1
BM_USER_PASSWORD=$HQ_PW "$BM_TOOL" user add hq_web --role hq --db "$BM_DB" >"$T/user.log" 2>&1 ||
    { cat "$T/user.log"; fail "user add hq_web"; }
BM_USER_PASSWORD=$NORTH_PW "$BM_TOOL" user add north_web --role regional --region NORTH \
    --db "$BM_DB" >>"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add north_web"; }
# lib.sh's cluster trusts every local connection; make PostgreSQL check the
# passwords of everyone but the admin.
printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$T/pg/data/pg_hba.conf"
bm_psql "SELECT pg_reload_conf()" >/dev/null
WEB_DB="host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark"
if PGPASSWORD=wrong psql -X -d "$WEB_DB user=north_web" -c 'SELECT 1' >/dev/null 2>&1; then
    fail "PostgreSQL accepts a wrong password: the test would prove nothing"
fi

# ------------------------------------------------------- the server

mkdir -p "$T/static/assets" "$T/static/.hidden"
echo '<!doctype html><title>branchmark test page</title>' >"$T/static/index.html"
echo 'console.log("app");' >"$T/static/assets/app.js"
echo 'TOP-SECRET-OUTSIDE' >"$T/secret.txt"
echo 'HIDDEN-FILE' >"$T/static/.hidden/x.txt"
bm_pick_port WPORT
cat >"$T/web.conf" <<EOF
database = "$WEB_DB"
listen_address = 127.0.0.1
port = $WPORT
static_dir = $T/static
max_sessions = 8
max_failed_logins = 5
log_level = info
EOF
bm_run_bg web "$BM_WEB" -c "$T/web.conf"
URL=http://127.0.0.1:$WPORT
wait_until "branchmark-web answers /api/health" 30 curl -sf "$URL/api/health"

# req NAME [curl args...] URL: body in $T/NAME.body, headers in
# $T/NAME.head; prints the status code.
req() {
    local name=$1
    shift
    curl -s -o "$T/$name.body" -D "$T/$name.head" -w '%{http_code}' "$@"
}
# expect STATUS NAME [curl args...] URL
expect() {
    local want=$1 name=$2 got
    shift 2
    got=$(req "$name" "$@")
    [ "$got" = "$want" ] || fail "$name: expected HTTP $want, got $got: $(head -c 400 "$T/$name.body")"
}
# expect_error STATUS TEXT NAME [curl args...] URL: and the JSON error names TEXT.
expect_error() {
    local want=$1 text=$2 name=$3
    shift 3
    expect "$want" "$name" "$@"
    local msg
    msg=$(json_of "$name" "j->>'error'") || fail "$name: body is not JSON: $(cat "$T/$name.body")"
    [ -n "$msg" ] || fail "$name: no JSON error: $(cat "$T/$name.body")"
    grep -qF -- "$text" <<<"$msg" || fail "$name: error does not name $text: $msg"
}
# jq-free JSON reading: PostgreSQL parses the body (fails on bad JSON).
json_of() { # json_of NAME SQL-EXPRESSION-ON-j
    bm_psql "SELECT $2 FROM (SELECT pg_read_file('$T/$1.body')::json AS j) x"
}

# ------------------------------------------------------- 1. anonymous

expect 200 health "$URL/api/health"
# Anonymous callers learn that the service is up, not how many use it.
assert_eq "health" "ok|ok|true" "$(json_of health "j->>'status' || '|' || (j->>'db') || '|' || (j->'sessions' IS NULL)")"
for ep in metrics "rank?metric=nps" "scorecard?branch=B001" competitors alerts regions branches me; do
    expect_error 401 "not logged in" "anon" "$URL/api/$ep"
done
expect_error 401 "session expired or unknown" anon-bad -H "Authorization: Bearer $(printf '%064d' 7)" "$URL/api/metrics"
login() { # login NAME USER PASSWORD [curl args]
    local name=$1 user=$2 pw=$3
    shift 3
    req "$name" -X POST -H 'Content-Type: application/json' \
        --data-binary "{\"user\": \"$user\", \"password\": \"$pw\"}" "$@" "$URL/api/login"
}
assert_eq "wrong password" 401 "$(login bad-pw north_web wrong-password)"
assert_eq "unknown user" 401 "$(login bad-user nobody_here "$NORTH_PW")"
assert_eq "superuser" 401 "$(login super postgres anything)"
grep -q '"error": "login failed' "$T/bad-pw.body" || fail "wrong password body: $(cat "$T/bad-pw.body")"
expect_error 400 'are required' login-empty -X POST -H 'Content-Type: application/json' --data-binary '{"user": "x"}' "$URL/api/login"
head -c 5000 /dev/zero | tr '\0' 'a' >"$T/big.txt"
expect_error 413 "larger than" login-big -X POST -H 'Content-Type: application/json' --data-binary @"$T/big.txt" "$URL/api/login"
expect_error 405 "not allowed" login-get "$URL/api/login"
expect_error 404 "unknown endpoint" nosuch "$URL/api/nosuch"

# ------------------------------------------------------- 2. logins

assert_eq "HQ login (JSON)" 200 "$(login hq hq_web "$HQ_PW" -c "$T/hq.jar")"
grep -qi '^Set-Cookie: bm_session=[0-9a-f]\{64\}; HttpOnly; SameSite=Strict; Path=/' "$T/hq.head" ||
    fail "login cookie: $(grep -i set-cookie "$T/hq.head")"
assert_eq "login body" "hq_web|64|1800" "$(json_of hq "(j->>'user') || '|' || length(j->>'token') || '|' || (j->>'expires_in')")"
HQ=(-b "$T/hq.jar")
got=$(req north -X POST --data-urlencode "user=north_web" --data-urlencode "password=$NORTH_PW" "$URL/api/login")
assert_eq "regional login (form)" 200 "$got"
NORTH=(-H "Authorization: Bearer $(json_of north "j->>'token'")")
expect 200 me-north "${NORTH[@]}" "$URL/api/me"
assert_eq "me (regional)" 'north_web|["NORTH"]' "$(json_of me-north "(j->>'user') || '|' || (j->'regions')::jsonb::text")"

# ------------------------------------------------------- 3. API = CLI, byte for byte

# same ROLE PASSWORD NAME "QUERY" CLI-ARGS...: the API body for QUERY equals
# `branchmark CLI-ARGS --format json` run as ROLE.
same() {
    local role=$1 pw=$2 name=$3 query=$4 auth
    shift 4
    if [ "$role" = hq_web ]; then auth=("${HQ[@]}"); else auth=("${NORTH[@]}"); fi
    expect 200 "$name" "${auth[@]}" "$URL/api/$query"
    local fmt=(--format json)
    case "$query" in *format=*) fmt=() ;; esac
    local db=(--db "$WEB_DB user=$role")
    [ "$1" = metrics ] && db=()   # needs no database
    PGPASSWORD=$pw "$BM_TOOL" "$@" "${fmt[@]}" "${db[@]}" >"$T/$name.cli" 2>"$T/$name.err" ||
        fail "$name: branchmark $* failed: $(cat "$T/$name.err")"
    cmp "$T/$name.body" "$T/$name.cli" || fail "$name: API body differs from branchmark $*"
    [ -s "$T/$name.body" ] || fail "$name: empty body"
}
at=$(bm_psql "SELECT max((responded_at AT TIME ZONE (SELECT timezone FROM chain))::date) FROM survey_responses")
for who in hq_web:$HQ_PW north_web:$NORTH_PW; do
    role=${who%%:*} pw=${who#*:}
    same "$role" "$pw" "$role-rank" "rank?metric=nps" rank --metric nps
    same "$role" "$pw" "$role-scorecard" "scorecard?branch=B001&periods=3" scorecard B001 --periods 3
    # The data are 8 days up to today: the running month, asked for by
    # --at (the default is the last complete month, where few branches
    # have evaluations yet).
    same "$role" "$pw" "$role-competitors" "competitors?period=month&at=$at" competitors --period month --at "$at"
    same "$role" "$pw" "$role-alerts" "alerts?period=week" alerts --period week
done
same hq_web "$HQ_PW" hq_web-metrics "metrics" metrics
same hq_web "$HQ_PW" hq_web-rank-north "rank?metric=conversion&region=NORTH&period=week&at=$at" \
    rank --metric conversion --region NORTH --period week --at "$at"
same north_web "$NORTH_PW" north_web-rank-min "rank?metric=ms_score&min-n=1&last" rank --metric ms_score --min-n 1 --last
same north_web "$NORTH_PW" north_web-competitors-b "competitors?branch=B003&period=month" competitors --branch B003 --period month
same hq_web "$HQ_PW" hq-rank-csv "rank?metric=nps&format=csv" rank --metric nps --format csv
grep -qi '^Content-Type: text/csv' "$T/hq-rank-csv.head" || fail "CSV content type: $(cat "$T/hq-rank-csv.head")"
grep -qi '^Content-Disposition: attachment; filename="rank.csv"' "$T/hq-rank-csv.head" || fail "CSV disposition"
# The scorecard carries the numeric trend: one row per metric and period.
assert_eq "trend rows of ms_score (3 periods)" 3 \
    "$(json_of hq_web-scorecard "(SELECT count(*) FROM json_array_elements(j->'trend') t WHERE t->>'metric' = 'ms_score')")"
[ "$(json_of hq_web-scorecard "(SELECT count(*) FROM json_array_elements(j->'trend') t WHERE (t->>'n')::int > 0 AND t->>'value' IS NOT NULL)")" -gt 0 ] ||
    fail "the scorecard trend has no value"
note "API bodies equal the CLI's for metrics, rank, scorecard, competitors, alerts (HQ and regional) and CSV"

# ------------------------------------------------------- 4. regional isolation

expect_error 400 'unknown branch "B002"' north-sc-south "${NORTH[@]}" "$URL/api/scorecard?branch=B002"
regions_of() { # regions_of NAME TABLE FIELD
    json_of "$1" "coalesce((SELECT string_agg(DISTINCT r->>'$3', ',') FROM json_array_elements(j->'$2') r), '')"
}
assert_eq "HQ ranking spans both regions" "NORTH,SOUTH" "$(regions_of hq_web-rank ranking region)"
assert_eq "regional ranking: own region only" "NORTH" "$(regions_of north_web-rank ranking region)"
# RLS makes the regional manager's "chain" line their region: the report says so.
limited_note() { json_of "$1" "(SELECT count(*) FROM json_array_elements_text(j->'notes') n WHERE n LIKE '%access is limited%')"; }
assert_eq "regional ranking notes the limited scope" 1 "$(limited_note north_web-rank)"
assert_eq "regional scorecard notes the limited scope" 1 "$(limited_note north_web-scorecard)"
assert_eq "HQ ranking has no scope note" 0 "$(limited_note hq_web-rank)"
expect 200 north-rank-south "${NORTH[@]}" "$URL/api/rank?metric=nps&region=SOUTH"
assert_eq "regional ranking of the other region" 0 "$(json_of north-rank-south "json_array_length(j->'ranking')")"
expect 200 br-hq "${HQ[@]}" "$URL/api/branches"
expect 200 br-north "${NORTH[@]}" "$URL/api/branches"
assert_eq "branches (HQ)" "B001,B002,B003,B004" "$(json_of br-hq "(SELECT string_agg(b->>'code', ',') FROM json_array_elements(j) b)")"
assert_eq "branches (regional)" "B001,B003" "$(json_of br-north "(SELECT string_agg(b->>'code', ',') FROM json_array_elements(j) b)")"
expect 200 br-north-south "${NORTH[@]}" "$URL/api/branches?region=SOUTH"
assert_eq "branches of the other region (regional)" "[]" "$(tr -d ' \n' <"$T/br-north-south.body")"
expect 200 rg-hq "${HQ[@]}" "$URL/api/regions"
expect 200 rg-north "${NORTH[@]}" "$URL/api/regions"
assert_eq "regions (HQ)" "NORTH,SOUTH" "$(json_of rg-hq "(SELECT string_agg(r->>'code', ',') FROM json_array_elements(j) r)")"
assert_eq "regions (regional)" "NORTH" "$(json_of rg-north "(SELECT string_agg(r->>'code', ',') FROM json_array_elements(j) r)")"
scopes_of() { # branch scopes of the competitor gaps
    json_of "$1" "coalesce((SELECT string_agg(DISTINCT r->>'scope', ',') FROM json_array_elements(j->'competitor_gaps') r WHERE r->>'scope' LIKE 'branch %'), '')"
}
assert_eq "competitor gaps (HQ)" "branch B001,branch B002,branch B003,branch B004" "$(scopes_of hq_web-competitors)"
assert_eq "competitor gaps (regional)" "branch B001,branch B003" "$(scopes_of north_web-competitors)"
for name in north_web-alerts north_web-rank-min; do
    got=$(regions_of "$name" "$(case $name in *alerts) echo alerts ;; *) echo ranking ;; esac)" region)
    case "$got" in "" | NORTH) ;; *) fail "$name shows regions $got" ;; esac
done
for f in "$T"/north_web-*.body "$T"/br-north*.body "$T"/rg-north.body "$T"/me-north.body; do
    if grep -Eq '"B00[24]"|branch B00[24]' "$f"; then fail "$(basename "$f") shows a SOUTH branch"; fi
done
note "the regional manager sees no SOUTH branch through any endpoint"

# ------------------------------------------------------- 5. bad parameters

expect_error 400 '"foo"' bad-param "${HQ[@]}" "$URL/api/rank?metric=nps&foo=1"
expect_error 400 '"db"' bad-db "${HQ[@]}" "$URL/api/rank?metric=nps&db=host=elsewhere"
expect_error 400 'period "year"' bad-period "${HQ[@]}" "$URL/api/rank?metric=nps&period=year"
expect_error 400 'metric "nosuch"' bad-metric "${HQ[@]}" "$URL/api/rank?metric=nosuch"
expect_error 400 '--metric is required' no-metric "${HQ[@]}" "$URL/api/rank"
expect_error 400 '--min-n: "abc"' bad-number "${HQ[@]}" "$URL/api/rank?metric=nps&min-n=abc"
expect_error 400 '--periods: "99"' bad-periods "${HQ[@]}" "$URL/api/scorecard?branch=B001&periods=99"
expect_error 400 'date "2026-02-30"' bad-date "${HQ[@]}" "$URL/api/alerts?at=2026-02-30"
expect_error 400 'region "MARS"' bad-region "${HQ[@]}" "$URL/api/competitors?region=MARS"
expect_error 400 'region "MARS"' bad-region-picker "${HQ[@]}" "$URL/api/branches?region=MARS"
expect_error 400 '"last"' bad-flag "${HQ[@]}" "$URL/api/alerts?last=maybe"
expect_error 400 'format "xml"' bad-format "${HQ[@]}" "$URL/api/metrics?format=xml"
expect_error 400 '"metric" given more than once' dup "${HQ[@]}" "$URL/api/rank?metric=nps&metric=csi"
expect_error 400 'branch code is required' no-branch "${HQ[@]}" "$URL/api/scorecard"

# ------------------------------------------------------- 6. static files

expect 200 index "$URL/"
grep -q 'branchmark test page' "$T/index.body" || fail "index.html not served"
grep -qi '^Content-Type: text/html' "$T/index.head" || fail "index content type"
# The page may load only its own files and must not be framed elsewhere.
grep -qi "^Content-Security-Policy: default-src 'self'.*frame-ancestors 'none'" "$T/index.head" ||
    fail "no Content-Security-Policy on the page: $(cat "$T/index.head")"
grep -qi '^X-Content-Type-Options: nosniff' "$T/index.head" || fail "no X-Content-Type-Options: nosniff"
expect 200 js "$URL/assets/app.js"
grep -qi '^Content-Type: text/javascript' "$T/js.head" || fail "js content type"
expect 404 missing "$URL/assets/none.js"
for path in "/../secret.txt" "/assets/../../secret.txt" "/assets/%2e%2e/%2e%2e/secret.txt" \
    "/%2e%2e/secret.txt" "/assets/..%2f..%2fsecret.txt" "/.hidden/x.txt" "/assets/" "//etc/passwd"; do
    got=$(req trav --path-as-is "$URL$path")
    case "$got" in 400 | 404) ;; *) fail "GET $path: HTTP $got" ;; esac
    if grep -q 'SECRET\|HIDDEN\|root:' "$T/trav.body"; then fail "GET $path leaked a file"; fi
done
expect_error 405 "not allowed" post-static -X POST "$URL/index.html"
note "static files served; traversal refused"

# ------------------------------------------------------- 7. logout, health, shutdown

# Guessing passwords (from a fresh address, 127.0.0.2: the failures above
# count against 127.0.0.1): after max_failed_logins (5) failures in a
# minute the address and the account are locked, and even the right
# password gets 429 without the database being asked; another account's
# good login from that address does not unlock it (tests/integration/
# test_web_guard.sh drives this harder).
for i in 1 2 3 4 5; do
    assert_eq "failed login $i" 401 "$(login guess-$i north_web "guess-$i" --interface 127.0.0.2)"
done
assert_eq "login after 5 failures" 429 "$(login guess-6 north_web "$NORTH_PW" --interface 127.0.0.2)"
grep -q 'too many failed logins for this address; try again in [0-9]* s' "$T/guess-6.body" ||
    fail "throttled login: $(cat "$T/guess-6.body")"
grep -qi '^Retry-After: [0-9]' "$T/guess-6.head" || fail "no Retry-After on 429: $(cat "$T/guess-6.head")"
assert_eq "other account, same address" 429 "$(login guess-7 hq_web "$HQ_PW" --interface 127.0.0.2)"

expect 204 logout -X POST "${NORTH[@]}" "$URL/api/logout"
expect_error 401 "session expired or unknown" after-logout "${NORTH[@]}" "$URL/api/metrics"
expect 200 health2 "${HQ[@]}" "$URL/api/health"
[ "$(json_of health2 "(j->>'requests')::int > 50 AND (j->>'errors_4xx')::int > 20 AND (j->>'sessions')::int = 1")" = t ] ||
    fail "health counters: $(cat "$T/health2.body")"
stop_proc web || fail "branchmark-web did not stop cleanly"
if grep -qF -e "$HQ_PW" -e "$NORTH_PW" "$T/web.log"; then fail "a password is in the log"; fi
grep -q 'level=info .*comp=http msg="request" method=GET path="/api/rank" status=200 user=hq_web' "$T/web.log" ||
    fail "no access log line: $(tail -n 3 "$T/web.log")"
note "PASS"
