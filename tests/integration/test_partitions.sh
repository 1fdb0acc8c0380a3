#!/bin/bash
# test_partitions: the raw record tables are partitioned by month (migration
# 006_scale; docs/scaling.md).  Through a real agent and collector:
#  - receipts spanning four months land in their month's partition, and one
#    eight years old (the collector accepts it: clock_max_age) in the default
#    partition;
#  - the same export dropped again (a resend of identical records) stores
#    nothing new in any partition: every record is acked as a duplicate;
#  - `partition create` makes months ahead; creating the old record's month
#    moves it out of the default partition;
#  - `partition detach --before` detaches (does not drop) the old months, and
#    `rank` and `summary`, which read the rollups, answer exactly as before;
#  - a time far outside every month (2099, written straight into the table)
#    lands in the default partition;
#  - documented behaviour: a record re-exported under the same source id but
#    with a different time is a second row (the key is (branch, source id,
#    time)).
source "$(dirname "$0")/lib.sh"

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_TOOL" refdata load --db "$BM_DB" "$BM_SOURCE_DIR/tests/data/refdata/demo-small.json" \
    >"$T/refdata.log" 2>&1 || { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
assert_eq "record tables partitioned" 7 \
    "$(bm_psql "SELECT count(*) FROM pg_partitioned_table p JOIN bm_partitioned_tables t
                 ON p.partrelid = to_regclass(t.table_name) AND p.partdefid <> 0")"

# Receipts: 12 per month for the three months before this one and 12 this
# month (an hour ago at the latest), plus one eight years old.  Expected
# partition per record from its own time.
now=$(date -u +%s)
month_start() { date -u -d "$(date -u -d "@$now" +%Y-%m-01) $1 month" +%s; }
{
    echo "source_id,at,amount,currency"
    for k in -3 -2 -1; do
        base=$(month_start "$k")
        for i in $(seq 1 12); do
            echo "R$((k + 3))-$i,$(date -u -d "@$((base + i * 86400 + 3600))" +%Y-%m-%dT%H:%M:%SZ),$((10 + i)).50,EUR"
        done
    done
    for i in $(seq 1 12); do
        echo "R3-$i,$(date -u -d "@$((now - 3600 - i * 60))" +%Y-%m-%dT%H:%M:%SZ),$((20 + i)).25,EUR"
    done
    old=$((now - 8 * 365 * 86400))
    echo "ROLD-1,$(date -u -d "@$old" +%Y-%m-%dT%H:%M:%SZ),99.00,EUR"
} >"$T/receipts_months.csv"
awk -F, 'NR > 1 { print $1 "\t" $2 }' "$T/receipts_months.csv" | while IFS=$'\t' read -r id at; do
    echo "$id receipts_p$(date -u -d "$at" +%Y%m)"
done | sed 's/^\(ROLD-1\) .*/\1 receipts_default/' | sort >"$T/expected-parts.txt"

# The migration made this month, the one before and three ahead; a backfill
# of older months gets its partitions first (else they would go to the
# default partition, as the eight-year-old record does).
for k in -3 -2; do
    bm_psql "SELECT bm_partition_create('receipts', '$(date -u -d "@$(month_start "$k")" +%Y-%m-%d)')" \
        >/dev/null || fail "bm_partition_create failed"
done

bm_pick_port PORT
start_collector collector "$PORT" "clock_max_age = 80000h"
start_agent agent-B001 B001 "$T/agents/B001" "tcp://127.0.0.1:$PORT" "batch_records = 10" \
    "clock_max_age = 80000h"
mkdir -p "$T/drop"
cp "$T/receipts_months.csv" "$T/drop/receipts_months.csv"
bm_drop_files "$T/drop" "$T/agents/B001/inbox"
wait_until "B001 delivered its receipts" 60 bm_delivered agent-B001 "$T/agents/B001" 1
assert_eq "receipts stored" 49 "$(bm_psql "SELECT count(*) FROM receipts")"
bm_psql "SELECT source_id || ' ' || tableoid::regclass FROM receipts ORDER BY 1" | sort >"$T/actual-parts.txt"
diff -u "$T/expected-parts.txt" "$T/actual-parts.txt" || fail "records are not in their month's partition"
note "49 receipts in $(cut -d' ' -f2 "$T/actual-parts.txt" | sort -u | wc -l) partitions"

# A resend of identical records (the same export dropped again): nothing new
# anywhere, every record acked as a duplicate.
dups_before=$(bm_psql "SELECT coalesce(sum(duplicates), 0) FROM ingest_batches")
cp "$T/receipts_months.csv" "$T/drop/receipts_months.csv"
mv "$T/drop/receipts_months.csv" "$T/drop/receipts_again.csv"
bm_drop_files "$T/drop" "$T/agents/B001/inbox"
wait_until "B001 delivered the resend" 60 bm_delivered agent-B001 "$T/agents/B001" 2
assert_eq "no new receipt after the resend" 49 "$(bm_psql "SELECT count(*) FROM receipts")"
assert_eq "resent records acked as duplicates" 49 \
    "$(($(bm_psql "SELECT coalesce(sum(duplicates), 0) FROM ingest_batches") - dups_before))"
bm_psql "SELECT source_id || ' ' || tableoid::regclass FROM receipts ORDER BY 1" | sort >"$T/actual-parts2.txt"
diff -u "$T/expected-parts.txt" "$T/actual-parts2.txt" || fail "partitions changed after the resend"
bm_psql "SELECT * FROM bm_rollups_check() WHERE only_incremental + only_full > 0" >"$T/check1.txt"
[ -s "$T/check1.txt" ] && { cat "$T/check1.txt"; fail "rollups differ from a full recomputation"; }

# Months ahead, and the old record's month (it leaves the default partition).
"$BM_TOOL" partition create --ahead 6 --db "$BM_DB" >"$T/create.log" 2>&1 ||
    { cat "$T/create.log"; fail "partition create failed"; }
ahead=$(date -u -d "$(date -u -d "@$now" +%Y-%m-01) 6 month" +%Y%m)
assert_eq "partitions 6 months ahead" 7 \
    "$(bm_psql "SELECT count(*) FROM bm_partitioned_tables WHERE to_regclass(table_name || '_p$ahead') IS NOT NULL")"
old_month=$(date -u -d "@$old" +%Y-%m-01)
bm_psql "SELECT bm_partition_create('receipts', '$old_month')" >/dev/null || fail "bm_partition_create failed"
assert_eq "old record moved out of the default partition" \
    "receipts_p$(date -u -d "@$old" +%Y%m)" "$(bm_psql "SELECT tableoid::regclass FROM receipts WHERE source_id = 'ROLD-1'")"
"$BM_TOOL" partition list --table receipts --exact --format csv --db "$BM_DB" >"$T/list1.raw" ||
    fail "partition list failed"
tr -d '\r' <"$T/list1.raw" >"$T/list1.csv"  # CSV lines end in CRLF
grep -q "^receipts,receipts_p$(date -u -d "@$old" +%Y%m),$old_month,.*,1,attached$" "$T/list1.csv" ||
    { cat "$T/list1.csv"; fail "partition list does not show the old month with its record"; }

# Detach the old months; the rollups (rank, summary) answer as before.
m2=$(date -u -d "@$(month_start -2)" +%Y-%m-%d)
m1=$(date -u -d "@$(month_start -1)" +%Y-%m-%d)
queries() {
    "$BM_TOOL" rank --metric avg_check --period month --at "$m2" --min-n 1 --format csv --db "$BM_DB"
    "$BM_TOOL" rank --metric avg_check --period quarter --at "$m2" --min-n 1 --format csv --db "$BM_DB"
    "$BM_TOOL" rank --metric avg_check --period month --at "$m1" --min-n 1 --region NORTH --format csv --db "$BM_DB"
    "$BM_TOOL" summary --format csv --db "$BM_DB"
}
queries >"$T/before.csv" 2>&1 || { cat "$T/before.csv"; fail "queries failed before the detach"; }
grep -q ",B001," "$T/before.csv" || { cat "$T/before.csv"; fail "rank shows no B001 before the detach"; }
before_m=$(date -u -d "@$(month_start -1)" +%Y-%m)
"$BM_TOOL" partition detach --before "$before_m" --format csv --db "$BM_DB" >"$T/detach.raw" 2>&1 ||
    { cat "$T/detach.raw"; fail "partition detach failed"; }
tr -d '\r' <"$T/detach.raw" >"$T/detach.csv"
# The two old months of receipts and the eight-year-old one (empty monthly
# partitions of other tables are detached too).
assert_eq "receipts partitions detached" 3 "$(grep -c '^receipts,' "$T/detach.csv")"
assert_eq "receipts left attached" 24 "$(bm_psql "SELECT count(*) FROM receipts")"
assert_eq "detached partition kept with its rows" 12 \
    "$(bm_psql "SELECT count(*) FROM receipts_p$(date -u -d "@$(month_start -3)" +%Y%m)")"
"$BM_TOOL" partition list --table receipts --format csv --db "$BM_DB" | tr -d '\r' >"$T/list2.csv"
assert_eq "detached partitions listed as detached" 3 "$(grep -c ',detached$' "$T/list2.csv")"
queries >"$T/after.csv" 2>&1 || { cat "$T/after.csv"; fail "queries failed after the detach"; }
diff -u "$T/before.csv" "$T/after.csv" || fail "rank/summary changed after the detach"
note "detached 3 receipts partitions; rank and summary unchanged"

# A time no monthly partition covers goes to the default partition.
bm_psql "INSERT INTO receipts (branch_id, source_id, at, amount_minor, currency)
         SELECT id, 'RFAR-1', '2099-06-01T00:00:00Z', 100, 'EUR' FROM branches WHERE code = 'B001'" ||
    fail "insert of a far-future receipt failed"
assert_eq "far-future record in the default partition" receipts_default \
    "$(bm_psql "SELECT tableoid::regclass FROM receipts WHERE source_id = 'RFAR-1'")"

# The same source id re-exported with another time is a correction since
# 010: the stored row (in another partition or not) is found by (branch,
# source_id) and superseded, the old version kept in record_history.
printf 'source_id,at,amount,currency\nR3-1,%s,21.25,EUR\n' \
    "$(date -u -d "@$((now - 7200))" +%Y-%m-%dT%H:%M:%SZ)" >"$T/drop/receipts_reexport.csv"
bm_drop_files "$T/drop" "$T/agents/B001/inbox" "receipts_reexport.csv"
wait_until "B001 delivered the re-export" 60 bm_delivered agent-B001 "$T/agents/B001" 3
assert_eq "re-export with another time supersedes the stored row" "1 2125" \
    "$(bm_psql "SELECT count(*), max(amount_minor) FROM receipts WHERE source_id = 'R3-1'" | tr '|' ' ')"
assert_eq "the old version of R3-1 is in the history" 1 \
    "$(bm_psql "SELECT count(*) FROM record_history WHERE source_id = 'R3-1' AND status = 'superseded'")"

bm_check_alive collector agent-B001
note "ok"
