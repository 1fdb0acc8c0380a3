#!/bin/bash
# test_group_commit: the store's group commit keeps exactly-once exact.
# bm-storegroup (tests/tools/bm_storegroup.c) calls bm_store_group on a
# migrated database with two branches: a source id carried by two batches
# of one group is stored once (the second batch acks it as a duplicate); a
# group whose one record and one batch the database refuses falls back to
# one transaction per batch, so the good batch is stored and only the bad
# record / bad batch fail; resends and replays are recognised; the rollups
# equal their full recomputation afterwards.
source "$(dirname "$0")/lib.sh"

BM_STOREGROUP=$BM_BUILD_DIR/tests/bm-storegroup
[ -x "$BM_STOREGROUP" ] || fail "$BM_STOREGROUP is not built (BM_BUILD_DIR=$BM_BUILD_DIR)"
bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 2 --regions 1 --competitors 1 --days 1 --scale 0.01 >/dev/null ||
    fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
if [ "${BM_VALGRIND:-0}" = 1 ]; then
    run=(valgrind --quiet --leak-check=full --error-exitcode=99)
else
    run=()
fi
rc=0
"${run[@]}" "$BM_STOREGROUP" --db "$BM_DB" >"$T/storegroup.log" 2>&1 || rc=$?
sed 's/^/    /' "$T/storegroup.log"
[ $rc = 0 ] || fail "bm-storegroup found a problem (exit status $rc)"
note "group commit: dedupe across batches, per-batch fallback, resends and replays hold"
