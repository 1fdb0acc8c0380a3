#!/bin/bash
# test_reporting: the reporting schema of migration 015 (docs/reporting.md,
# issue 19 item 3), on generated data through real agents:
#   - as an HQ and as a regional login, reporting.branch_metrics_v1 and
#     reporting.region_metrics_v1 / chain_metrics_v1 give the same value, n,
#     interval and low_n as `branchmark rank --format json` for the same
#     metric and period (every metric of the catalogue, months and weeks);
#   - a regional login sees only its own region's branches and region line,
#     and no chain line; a branch login no region line;
#   - the contract: every column of reporting.contract_v1 exists with its
#     type, reporting.version() is 1, and only the hq, regional and branch
#     groups may read the schema.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (scripts/deps.sh)"

bm_load_generated 8 --regions 2 --competitors 2 --days 70 --scale 0.15 --seed 19 --end 2026-11-20
REGIONS=($(bm_psql "SELECT code FROM regions ORDER BY id"))
OWN=${REGIONS[0]}

HQ_PW=hq-rep-secret-1 REG_PW=reg-rep-secret-1 BR_PW=br-rep-secret-1
{
    BM_USER_PASSWORD=$HQ_PW "$BM_TOOL" user add hq_rep --role hq --db "$BM_DB" &&
    BM_USER_PASSWORD=$REG_PW "$BM_TOOL" user add reg_rep --role regional --region "$OWN" --db "$BM_DB" &&
    BM_USER_PASSWORD=$BR_PW "$BM_TOOL" user add br_rep --role branch --branch B001 --db "$BM_DB"
} >"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add"; }
HQ_DB="$BM_DB user=hq_rep password=$HQ_PW"
REG_DB="$BM_DB user=reg_rep password=$REG_PW"
BR_DB="$BM_DB user=br_rep password=$BR_PW"
as() { psql -X -A -t -q -v ON_ERROR_STOP=1 -F '|' -d "$1" -c "$2"; }

# ------------------------------------------------ the contract
assert_eq "reporting.version()" "1" "$(as "$HQ_DB" "SELECT reporting.version()")"
missing=$(bm_psql "SELECT c.view_name || '.' || c.column_name || ' ' || c.data_type || ' (found: '
                          || coalesce(format_type(a.atttypid, a.atttypmod), 'none') || ')'
                     FROM reporting.contract_v1 c
                     LEFT JOIN pg_attribute a ON a.attrelid = ('reporting.' || c.view_name)::regclass
                      AND a.attname = c.column_name AND NOT a.attisdropped
                    WHERE a.attname IS NULL OR format_type(a.atttypid, a.atttypmod) <> c.data_type
                       OR a.attnum <> c.position")
assert_eq "contract_v1 columns missing or changed" "" "$missing"
views=$(bm_psql "SELECT count(DISTINCT view_name) FROM reporting.contract_v1")
assert_eq "views in contract_v1" "5" "$views"
# Nobody but the people's groups: not PUBLIC, not the collector, not the reviewer.
grantees=$(bm_psql "SELECT string_agg(DISTINCT grantee, ',' ORDER BY grantee)
                      FROM information_schema.role_table_grants WHERE table_schema = 'reporting'
                       AND grantee <> current_user")
assert_eq "who may read the reporting views" "branchmark_branch,branchmark_hq,branchmark_regional" "$grantees"
for v in branch_metrics_v1 region_metrics_v1 chain_metrics_v1 branch_aggregates_v1; do
    assert_eq "$v is security_invoker" "{security_invoker=true}" \
        "$(bm_psql "SELECT reloptions FROM pg_class WHERE oid = 'reporting.$v'::regclass")"
done
BM_USER_PASSWORD=col-rep-secret-1 "$BM_TOOL" user add col_rep --role collector --db "$BM_DB" >>"$T/user.log" 2>&1 ||
    fail "user add col_rep"
if as "$BM_DB user=col_rep password=col-rep-secret-1" "SELECT count(*) FROM reporting.branch_metrics_v1" >"$T/col.out" 2>&1; then
    fail "the collector role can read reporting views"
fi

# ------------------------------------------------ scope
reg_branches=$(as "$REG_DB" "SELECT string_agg(DISTINCT region, ',') FROM reporting.branch_metrics_v1")
assert_eq "regional login: branches of its own region only" "$OWN" "$reg_branches"
assert_eq "regional login: region lines" "$OWN" \
    "$(as "$REG_DB" "SELECT string_agg(DISTINCT region, ',') FROM reporting.region_metrics_v1")"
assert_eq "regional login: no chain line" "0" "$(as "$REG_DB" "SELECT count(*) FROM reporting.chain_metrics_v1")"
assert_eq "branch login: its branch only" "B001" \
    "$(as "$BR_DB" "SELECT string_agg(DISTINCT branch, ',') FROM reporting.branch_metrics_v1")"
assert_eq "branch login: no region line" "0" "$(as "$BR_DB" "SELECT count(*) FROM reporting.region_metrics_v1")"
assert_eq "HQ: every region" "$(IFS=,; echo "${REGIONS[*]}")" \
    "$(as "$HQ_DB" "SELECT string_agg(DISTINCT region, ',' ORDER BY region) FROM reporting.region_metrics_v1")"

# ------------------------------------------------ the same numbers as the CLI
# One line per figure: [code, value, n, ci_low, ci_high, low_n], numbers
# normalised by jq (63.0 and 63 are one number), rounded as the CLI rounds
# (half away from zero at the metric's decimals).
norm='map(if type == "number" then . + 0 else . end) | tostring'
cli_rows() { jq -r ".ranking[] | select(.value != null) | [.branch, .value, .n, .ci_low, .ci_high, .low_n] | $norm" "$1" | sort; }
cli_aggs() { jq -r ".aggregates[] | select(.scope == \"$2\" and .value != null) | [.code, .value, .n, .ci_low, .ci_high, .low_n] | $norm" "$1" | sort; }
r() { echo "round(($1)::numeric, decimals)"; }
view_rows() { # view_rows DB VIEW CODE-EXPR METRIC KIND START
    as "$1" "SELECT json_build_array($3, $(r value), n, $(r ci_low), $(r ci_high), low_n)
               FROM reporting.$2 WHERE metric = '$4' AND period_kind = '$5' AND period_start = '$6'
                AND value IS NOT NULL" | jq -r "$norm" | sort
}
METRICS=($("$BM_TOOL" metrics --format csv | tr -d '\r' | awk -F, 'NR > 1 { print $1 }'))
checked=0
for m in "${METRICS[@]}"; do
    for p in month week; do
        for who in hq reg; do
            if [ $who = hq ]; then db=$HQ_DB; else db=$REG_DB; fi
            "$BM_TOOL" rank --db "$db" --metric "$m" --period "$p" --format json >"$T/rank.json" 2>"$T/err" ||
                fail "$who rank $m $p: $(cat "$T/err")"
            start=$(jq -r '.period[0].start' "$T/rank.json")
            want=$(cli_rows "$T/rank.json")
            [ -n "$want" ] || fail "$who $m $p: the CLI ranked nothing"
            assert_eq "$who $m $p $start: branch figures" "$want" \
                "$(view_rows "$db" branch_metrics_v1 branch "$m" "$p" "$start")"
            if [ $who = hq ]; then
                assert_eq "$who $m $p $start: region lines" "$(cli_aggs "$T/rank.json" region)" \
                    "$(view_rows "$db" region_metrics_v1 region "$m" "$p" "$start")"
                assert_eq "$who $m $p $start: chain line" "$(cli_aggs "$T/rank.json" chain)" \
                    "$(view_rows "$db" chain_metrics_v1 "'ACME'" "$m" "$p" "$start" |
                       sed "s/\"ACME\"/\"$(jq -r '.aggregates[0].code' "$T/rank.json")\"/")"
            else
                assert_eq "$who $m $p $start: own region line" \
                    "$(cli_aggs "$T/rank.json" region | grep "^\[\"$OWN\"")" \
                    "$(view_rows "$db" region_metrics_v1 region "$m" "$p" "$start")"
            fi
            checked=$((checked + 1))
        done
    done
done
note "$checked rankings equal the views (${#METRICS[@]} metrics, month and week, HQ and regional)"
note "PASS"
