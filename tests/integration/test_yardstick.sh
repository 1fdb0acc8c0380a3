#!/bin/bash
# test_yardstick: the chain as yardstick for scoped logins (issue 16 item 1,
# migration 011_yardstick.sql, docs/security.md) and the smaller holes of
# item 6, through the CLI and the API:
#   - a regional manager's chain line and the published regions' lines
#     equal HQ's figures of the same period, for every metric;
#   - its branches' chain-wide rank ranges (chain_positions) equal HQ's
#     chain-wide ranking, after `branchmark yardstick refresh`;
#   - a region with fewer than 3 branches is suppressed, and so is the
#     smallest published one that would let it be derived (complementary
#     suppression); a branch login's own region of 3 is suppressed too;
#   - no other region's branch code in any report, CLI or API, JSON or CSV;
#   - branch_versions is filtered, bm_scope_branch_ids answers only for the
#     caller's own name, pg_stat_user_tables and the positions table are
#     refused to scoped logins.
source "$(dirname "$0")/lib.sh"

BM_WEB=$BM_BUILD_DIR/collector/branchmark-web
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh)"

# 11 branches round-robin over 4 regions: three of 3, one (the fourth) of 2.
bm_load_generated 11 --regions 4 --competitors 4 --days 70 --scale 0.15 --seed 11 --end 2026-11-20
REGIONS=($(bm_psql "SELECT code FROM regions ORDER BY id"))
OWN=${REGIONS[0]}
own_codes=$(bm_psql "SELECT string_agg(b.code, ' ' ORDER BY b.code) FROM branches b JOIN regions r ON r.id = b.region_id WHERE r.code = '$OWN'")
other_codes=$(bm_psql "SELECT string_agg(b.code, ' ' ORDER BY b.code) FROM branches b JOIN regions r ON r.id = b.region_id WHERE r.code <> '$OWN'")
sizes=$(bm_psql "SELECT string_agg(n::text, ',' ORDER BY id) FROM (SELECT r.id, count(*) n FROM regions r JOIN branches b ON b.region_id = r.id GROUP BY r.id) x")
assert_eq "region sizes" "3,3,3,2" "$sizes"
note "own region $OWN ($own_codes); others: $other_codes"

HQ_PW=hq-yard-secret-1 REG_PW=reg-yard-secret-1 BR_PW=br-yard-secret-1
BM_USER_PASSWORD=$HQ_PW "$BM_TOOL" user add hq_yard --role hq --db "$BM_DB" >"$T/user.log" 2>&1 ||
    { cat "$T/user.log"; fail "user add hq_yard"; }
BM_USER_PASSWORD=$REG_PW "$BM_TOOL" user add reg_yard --role regional --region "$OWN" \
    --db "$BM_DB" >>"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add reg_yard"; }
BM_USER_PASSWORD=$BR_PW "$BM_TOOL" user add br_yard --role branch --branch B001 \
    --db "$BM_DB" >>"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add br_yard"; }
HQ_DB="$BM_DB user=hq_yard password=$HQ_PW"
REG_DB="$BM_DB user=reg_yard password=$REG_PW"
BR_DB="$BM_DB user=br_yard password=$BR_PW"
as() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# ------------------------------------------------ positions, as HQ computes them
"$BM_TOOL" yardstick refresh --db "$HQ_DB" >"$T/refresh.log" 2>&1 || { cat "$T/refresh.log"; fail "yardstick refresh as HQ"; }
grep -q "^nps month 2026-10: " "$T/refresh.log" || fail "refresh did not rank nps 2026-10: $(head -5 "$T/refresh.log")"
if "$BM_TOOL" yardstick refresh --db "$REG_DB" >"$T/refresh-reg.log" 2>&1; then
    fail "a regional login could store chain-wide positions"
fi

METRICS=($("$BM_TOOL" metrics --format csv | tr -d '\r' | awk -F, 'NR > 1 { print $1 }'))
# The aggregates table of a CSV report (scope,code,value,n,ci_low,ci_high,
# low_n,previous,change), one line per scope; arrows and q-values are
# adjusted over the tests shown together, which differ by design.
aggs() { awk -v RS='\r\n' -F, '/^scope,code,/ { on = 1; next } on && NF == 0 { on = 0 } on { print $1 "," $2 "," $3 "," $4 "," $5 "," $6 "," $7 "," $8 "," $9 }'; }
section() { awk -v RS='\r\n' -v h="$1" 'index($0, h) == 1 { on = 1; next } on && $0 == "" { on = 0 } on { print }'; }

checked=0
for m in "${METRICS[@]}"; do
    for p in month week; do
        "$BM_TOOL" rank --db "$HQ_DB" --metric "$m" --period "$p" --format csv >"$T/hq.csv" 2>"$T/err" ||
            fail "HQ rank $m $p: $(cat "$T/err")"
        "$BM_TOOL" rank --db "$REG_DB" --metric "$m" --period "$p" --format csv >"$T/reg.csv" 2>"$T/err" ||
            fail "regional rank $m $p: $(cat "$T/err")"
        hq_chain=$(aggs <"$T/hq.csv" | grep '^chain,')
        reg_chain=$(aggs <"$T/reg.csv" | grep '^chain,')
        assert_eq "$m $p: the regional manager's chain line is HQ's" "$hq_chain" "$reg_chain"
        for r in "${REGIONS[0]}" "${REGIONS[2]}"; do
            assert_eq "$m $p: region $r line" "$(aggs <"$T/hq.csv" | grep "^region,$r,")" \
                "$(aggs <"$T/reg.csv" | grep "^region,$r,")"
        done
        # REGIONS[3] has 2 branches: suppressed; REGIONS[1], the smallest
        # other (by id), would give it away as chain - the rest: suppressed.
        for r in "${REGIONS[1]}" "${REGIONS[3]}"; do
            assert_eq "$m $p: region $r suppressed" "region,$r,,,,,,," "$(aggs <"$T/reg.csv" | grep "^region,$r,")"
        done
        # Own branches' chain-wide ranges equal HQ's chain-wide ranking.
        ranked=$(section 'rank,group,branch,' <"$T/hq.csv" | awk -F, '$1 != "" { n++ } END { print n + 0 }')
        while IFS=, read -r br name crank of asof current; do
            want=$(section 'rank,group,branch,' <"$T/hq.csv" | awk -F, -v b="$br" '$3 == b { print $1 }')
            assert_eq "$m $p: $br chain-wide rank" "$want|$ranked|true" "$crank|$of|$current"
            checked=$((checked + 1))
        done < <(section 'branch,name,chain_rank,' <"$T/reg.csv")
    done
done
"$BM_TOOL" rank --db "$REG_DB" --metric nps --format json >"$T/reg.json"
grep -q 'your access is limited to part of the chain: the ranking covers' "$T/reg.json" ||
    fail "the regional report does not say what its lines are"
! grep -q 'figures and rankings cover only' "$T/reg.json" ||
    fail "the old note (chain = own region) is still there"
grep -q 'chain_positions: each of your branches' "$T/reg.json" || fail "no note on chain_positions"
[ "$checked" -gt 20 ] || fail "only $checked chain positions compared"
note "chain, region lines and $checked chain positions equal HQ's"

# A branch login: its own region of 3 has only 2 it cannot see: suppressed.
"$BM_TOOL" rank --db "$BR_DB" --metric nps --format csv >"$T/br.csv" 2>"$T/err" || fail "branch rank: $(cat "$T/err")"
assert_eq "branch login: own region suppressed" "region,$OWN,,,,,,," "$(aggs <"$T/br.csv" | grep "^region,$OWN,")"
"$BM_TOOL" rank --db "$HQ_DB" --metric nps --format csv >"$T/hq.csv"
assert_eq "branch login: chain line" "$(aggs <"$T/hq.csv" | grep '^chain,')" "$(aggs <"$T/br.csv" | grep '^chain,')"

# Stale positions: new data for the chain make them "not current".
bm_psql "UPDATE rollup_surveys SET nps_n = nps_n + 1, detractors = detractors + 1 WHERE branch_id = (SELECT id FROM branches WHERE code = 'B002') AND period_kind = 'month' AND period_start = '2026-10-01' AND segment = (SELECT min(segment) FROM rollup_surveys WHERE branch_id = (SELECT id FROM branches WHERE code = 'B002') AND period_kind = 'month' AND period_start = '2026-10-01')" >/dev/null
"$BM_TOOL" rank --db "$REG_DB" --metric nps --at 2026-10-15 --format csv >"$T/stale.csv"
section 'branch,name,chain_rank,' <"$T/stale.csv" | grep -q ',false$' || fail "a stale position is shown as current: $(cat "$T/stale.csv")"
"$BM_TOOL" rank --db "$REG_DB" --metric nps --at 2026-10-15 --format json >"$T/stale.json"
grep -q 'not current: the chain' "$T/stale.json" || fail "no note on stale positions"

# ------------------------------------------------ nothing of another region
scan() { # scan WHAT FILE: no branch code of another region in FILE
    local c
    for c in $other_codes; do
        if grep -qw "$c" "$2"; then fail "$1: names $c of another region: $(grep -w "$c" "$2" | head -3)"; fi
    done
}
: >"$T/all-cli.out"
for f in csv json table; do
    for m in "${METRICS[@]}"; do "$BM_TOOL" rank --db "$REG_DB" --metric "$m" --format "$f" >>"$T/all-cli.out"; done
    "$BM_TOOL" competitors --db "$REG_DB" --format "$f" >>"$T/all-cli.out"
    "$BM_TOOL" alerts --db "$REG_DB" --format "$f" >>"$T/all-cli.out"
    "$BM_TOOL" summary --db "$REG_DB" --format "$f" >>"$T/all-cli.out"
    for b in $own_codes; do "$BM_TOOL" scorecard --db "$REG_DB" "$b" --format "$f" >>"$T/all-cli.out"; done
done
scan "CLI reports" "$T/all-cli.out"

# ------------------------------------------------ the database, directly
assert_eq "bm_yardstick: no rows of suppressed regions" "" \
    "$(as "$REG_DB" "SELECT code FROM bm_yardstick('nps', 'month', '2026-10-01', '2026-10-01', '', '', '', 20) WHERE code IN ('${REGIONS[1]}', '${REGIONS[3]}')")"
assert_eq "bm_yardstick: chain and two regions" "chain region region" \
    "$(as "$REG_DB" "SELECT string_agg(scope, ' ' ORDER BY scope) FROM bm_yardstick('nps', 'month', '2026-10-01', '2026-10-01', '', '', '', 20)")"
as "$REG_DB" "SELECT * FROM bm_yardstick('x; DROP TABLE branches', 'month', '2026-10-01', '2026-10-01', '', '', '', 20)" >/dev/null 2>"$T/err" &&
    fail "bm_yardstick accepted an unknown metric"
grep -q 'unknown metric' "$T/err" || fail "unknown metric: $(cat "$T/err")"
assert_eq "positions: own branches only" "$own_codes" \
    "$(as "$REG_DB" "SELECT string_agg(branch, ' ' ORDER BY branch) FROM bm_yardstick_positions('nps', 'month', '2026-10-01')")"
as "$REG_DB" "SELECT count(*) FROM yardstick_positions" >/dev/null 2>&1 && fail "a regional login reads yardstick_positions"
as "$HQ_DB" "SELECT * FROM bm_yardstick('nps', 'month', '2026-10-01', '2026-10-01', '', '', '', 20)" >/dev/null 2>&1 &&
    note "(HQ may call bm_yardstick)" || true
assert_eq "branch_versions filtered" "$own_codes" \
    "$(as "$REG_DB" "SELECT string_agg(DISTINCT b.code, ' ' ORDER BY b.code) FROM branch_versions v JOIN branches b ON b.id = v.branch_id")"
assert_eq "branch_versions rows of another region" "0" "$(as "$REG_DB" "SELECT count(*) FROM branch_versions WHERE region_id <> (SELECT id FROM regions WHERE code = '$OWN')")"
assert_eq "bm_scope_branch_ids of another login" "0" "$(as "$REG_DB" "SELECT count(*) FROM bm_scope_branch_ids('br_yard')")"
assert_eq "bm_scope_branch_ids of the own login" "3" "$(as "$REG_DB" "SELECT count(*) FROM bm_scope_branch_ids('reg_yard')")"
assert_eq "bm_scope_limited of another login" "f" "$(as "$BR_DB" "SELECT bm_scope_limited('reg_yard')")"
as "$REG_DB" "SELECT sum(n_live_tup) FROM pg_stat_user_tables" >/dev/null 2>&1 && fail "a regional login reads pg_stat_user_tables"
as "$REG_DB" "SELECT pg_stat_get_live_tuples('receipts'::regclass)" >/dev/null 2>&1 && fail "a regional login reads pg_stat_get_live_tuples"
as "$HQ_DB" "SELECT count(*) FROM pg_stat_user_tables" >/dev/null || fail "HQ cannot read pg_stat_user_tables"

# ------------------------------------------------ the API
if [ -x "$BM_WEB" ]; then
    printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$T/pg/data/pg_hba.conf"
    bm_psql "SELECT pg_reload_conf()" >/dev/null
    bm_pick_port WPORT
    mkdir -p "$T/static"
    echo '<!doctype html><title>t</title>' >"$T/static/index.html"
    cat >"$T/web.conf" <<EOC
database = "host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark"
listen_address = 127.0.0.1
port = $WPORT
static_dir = $T/static
log_level = info
EOC
    bm_run_bg web "$BM_WEB" -c "$T/web.conf"
    URL=http://127.0.0.1:$WPORT
    wait_until "branchmark-web answers /api/health" 30 curl -sf "$URL/api/health"
    curl -sf -c "$T/jar" -H 'Content-Type: application/json' \
        --data-binary "{\"user\": \"reg_yard\", \"password\": \"$REG_PW\"}" "$URL/api/login" >/dev/null ||
        fail "API login as reg_yard"
    : >"$T/all-api.out"
    for ep in me regions branches metrics competitors alerts "competitors?format=csv" "alerts?format=csv"; do
        curl -sf -b "$T/jar" "$URL/api/$ep" >>"$T/all-api.out" || fail "GET /api/$ep"
    done
    for m in "${METRICS[@]}"; do
        for f in json csv; do
            curl -sf -b "$T/jar" "$URL/api/rank?metric=$m&format=$f" >>"$T/all-api.out" || fail "GET /api/rank $m"
        done
    done
    for b in $own_codes; do
        curl -sf -b "$T/jar" "$URL/api/scorecard?branch=$b" >>"$T/all-api.out" || fail "GET /api/scorecard $b"
    done
    scan "API responses" "$T/all-api.out"
    curl -sf -b "$T/jar" "$URL/api/rank?metric=nps&period=month&at=2026-11-15&format=csv" >"$T/api.csv"
    "$BM_TOOL" rank --db "$REG_DB" --metric nps --period month --at 2026-11-15 --format csv >"$T/cli.csv"
    cmp -s "$T/api.csv" "$T/cli.csv" || fail "API and CLI differ for the regional rank: $(diff "$T/cli.csv" "$T/api.csv" | head)"
    stop_proc web || fail "branchmark-web did not stop cleanly"
fi
note "ok"
