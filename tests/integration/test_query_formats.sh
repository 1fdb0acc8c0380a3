#!/bin/bash
# test_query_formats: the query tool on a demo-like data set, in all three
# output formats.  Generated exports go through real agents and a real
# collector; then `branchmark rank` is run as table, CSV and JSON, and
# - the three formats must carry the same rows (branch, rank, value, n,
#   interval), the JSON must parse (PostgreSQL parses it here);
# - the values, which the tool reads from the incrementally kept rollups, must
#   equal NPS and conversion recomputed straight from the raw rows with SQL,
#   an independent path through the data;
# - unknown metric / region / format give exit code 2 with a message naming it.
source "$(dirname "$0")/lib.sh"

BRANCHES=(B001 B002 B003 B004 B005 B006)

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches ${#BRANCHES[@]} --regions 2 --competitors 2 --days 8 \
    --scale 0.15 --seed 11 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }

bm_pick_port CPORT
start_collector collector "$CPORT"
for b in "${BRANCHES[@]}"; do
    mkdir -p "$T/agents/$b"
    cp -r "$T/data/$b/inbox" "$T/agents/$b/inbox"
    start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$CPORT"
done
expected=$(awk 'NR > 1 { n += $3 } END { print n }' "$T/data/expected.tsv")
stored() {
    bm_psql "SELECT coalesce(sum(stored), 0) FROM ingest_batches"
}
wait_until "all $expected records are stored" 120 bash -c "[ \"\$(psql -X -A -t -d '$BM_DB' -c 'SELECT coalesce(sum(stored),0) FROM ingest_batches')\" = $expected ]"
note "stored $(stored) records"

# The newest day with data decides the month; the chain's zone cuts it.
tz=$(bm_psql "SELECT timezone FROM chain")
at=$(bm_psql "SELECT max((responded_at AT TIME ZONE '$tz')::date) FROM survey_responses")
note "month of $at in $tz"

bm() { "$BM_TOOL" "$@" --db "$BM_DB"; }

check_metric() {
    local metric=$1 truth_sql=$2
    bm rank --metric "$metric" --period month --at "$at" --format table >"$T/$metric.txt" || fail "rank $metric table failed"
    bm rank --metric "$metric" --period month --at "$at" --format csv >"$T/$metric.csv" || fail "rank $metric csv failed"
    bm rank --metric "$metric" --period month --at "$at" --format json >"$T/$metric.json" || fail "rank $metric json failed"

    # Branch rows of the CSV: rank,group,branch,name,region,value,n,ci_low,ci_high,low_n,...
    local csv
    csv=$(tr -d '\r' <"$T/$metric.csv" | awk -F, '$3 ~ /^B[0-9]+$/ { print $3 "|" $1 "|" $6 "|" $7 "|" $8 "|" $9 }' | sort)
    [ "$(echo "$csv" | wc -l)" = ${#BRANCHES[@]} ] || fail "$metric: CSV has not one row per branch: $csv"

    # The same fields from the JSON, parsed by PostgreSQL (fails on bad JSON).
    local json
    json=$(bm_psql "
        WITH doc AS (SELECT pg_read_file('$T/$metric.json')::json AS j)
        SELECT r->>'branch' || '|' || coalesce(r->>'rank', '') || '|' ||
               to_char((r->>'value')::numeric, 'FM999990.0') || '|' || (r->>'n') || '|' ||
               coalesce(to_char((r->>'ci_low')::numeric, 'FM999990.0'), '') || '|' ||
               coalesce(to_char((r->>'ci_high')::numeric, 'FM999990.0'), '')
          FROM doc, json_array_elements(doc.j->'ranking') r
         ORDER BY 1" 2>"$T/json.err") || { cat "$T/json.err"; head -c 600 "$T/$metric.json"; fail "$metric: JSON output does not parse as expected"; }
    assert_eq "$metric: CSV and JSON carry the same rows" "$csv" "$json"

    # Every CSV row appears in the aligned table with the same rank, value and n.
    local row b rank value n
    while IFS='|' read -r b rank value n _; do
        grep -Eq "^${rank:-[[:space:]]*}[[:space:]]+.*[[:space:]]$b[[:space:]].*[[:space:]]$value[[:space:]]+$n[[:space:]]" "$T/$metric.txt" ||
            fail "$metric: table has no row for $b with rank '$rank', value $value, n $n"
    done <<<"$csv"

    # The rollup-based values equal the raw recomputation.
    local truth
    truth=$(bm_psql "$truth_sql")
    local got
    got=$(echo "$csv" | awk -F'|' '{ print $1 "|" $3 "|" $4 }')
    assert_eq "$metric: values and n equal the recomputation from raw rows" "$truth" "$got"
}

month_of() { # SQL predicate: column falls in the month of $at in the chain's zone
    echo "date_trunc('month', $1 AT TIME ZONE '$tz') = date_trunc('month', DATE '$at')"
}

check_metric nps "
    SELECT b.code || '|' || to_char(round(100.0 * (count(*) FILTER (WHERE s.nps >= 9)
                                                   - count(*) FILTER (WHERE s.nps <= 6)) / count(*), 1), 'FM999990.0')
                  || '|' || count(*)
      FROM branches b JOIN survey_responses s ON s.branch_id = b.id
     WHERE s.nps IS NOT NULL AND $(month_of s.responded_at)
     GROUP BY b.code ORDER BY b.code"

check_metric conversion "
    WITH e AS (SELECT branch_id, sum(entrants) AS entrants FROM people_counts
                WHERE $(month_of interval_start) GROUP BY branch_id),
         r AS (SELECT branch_id, count(*) AS sales FROM receipts
                WHERE amount_minor > 0 AND $(month_of at) GROUP BY branch_id)
    SELECT b.code || '|' || to_char(round(100.0 * r.sales / e.entrants, 1), 'FM999990.0') || '|' || e.entrants
      FROM branches b JOIN e ON e.branch_id = b.id JOIN r ON r.branch_id = b.id
     ORDER BY b.code"

# Bad arguments: exit code 2 and a message naming the culprit.
expect_usage_error() {
    local what=$1
    shift
    local rc=0
    bm "$@" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
    assert_eq "$what: exit code" 2 "$rc"
    grep -q -- "$what" "$T/bad.err" || fail "error for $what does not name it: $(cat "$T/bad.err")"
}
expect_usage_error nosuchmetric rank --metric nosuchmetric
expect_usage_error NOWHERE rank --metric nps --region NOWHERE
expect_usage_error yaml rank --metric nps --format yaml

stop_all
note "PASS"
