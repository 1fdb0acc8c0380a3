#!/bin/bash
# test_golden_reports: every report of a demo-like chain, in all three
# formats, for the chain and each region (and as a regional manager), byte
# for byte against outputs recorded from the code before the collector was
# split into rooms (issue 13).  The data are generated with a fixed seed and
# end date and delivered through real agents and a real collector, so the
# figures are the same on every run and every day.
#
# Each tests/data/golden/<group>.out holds, per invocation, a "### args"
# line, the command's stdout, its stderr and its exit code.  A difference
# fails with the first lines of the diff.  After a change that is meant to
# alter a report, record the new outputs with
#   BM_GOLDEN_RECORD=1 ctest --test-dir build -R test_golden_reports
# and commit them with the reason.
source "$(dirname "$0")/lib.sh"

GOLDEN=$BM_SOURCE_DIR/tests/data/golden
bm_load_generated 12 --regions 3 --competitors 6 --days 100 --scale 0.15 --seed 42 \
    --end 2026-11-20
note "stored $BM_LOADED records"

REGIONS=($(bm_psql "SELECT code FROM regions ORDER BY code"))
BRANCHES=($(bm_psql "SELECT code FROM branches WHERE active ORDER BY code"))
METRICS=($("$BM_TOOL" metrics --format csv | tr -d '\r' | awk -F, 'NR > 1 { print $1 }'))
[ ${#REGIONS[@]} = 3 ] && [ ${#BRANCHES[@]} = 12 ] && [ ${#METRICS[@]} -ge 10 ] ||
    fail "unexpected reference data: ${#REGIONS[@]} regions, ${#BRANCHES[@]} branches, ${#METRICS[@]} metrics"

REG_PW=golden-reg-pw-1
BM_USER_PASSWORD=$REG_PW "$BM_TOOL" user add golden_reg --role regional --region "${REGIONS[0]}" \
    --db "$BM_DB" >"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add golden_reg"; }
REG_DB="$BM_DB user=golden_reg password=$REG_PW"

mkdir -p "$T/golden"
OUT=

# run DB ARGS...: appends one invocation (args, stdout, stderr, exit code)
# to $OUT.
run() {
    local db=$1 rc=0
    shift
    printf '### %s\n' "$*" >>"$OUT"
    # --db first, so that an option left without its value stays so.
    "$BM_TOOL" "$1" --db "$db" "${@:2}" >>"$OUT" 2>"$T/stderr" || rc=$?
    sed 's/^/stderr: /' "$T/stderr" >>"$OUT"
    printf '### exit %d\n' "$rc" >>"$OUT"
}

# formats DB ARGS...: run in table, csv and json.
formats() {
    local db=$1 f
    shift
    for f in table csv json; do run "$db" "$@" --format "$f"; done
}

group() { OUT=$T/golden/$1.out; : >"$OUT"; }

group metrics
formats "$BM_DB" metrics

group summary
formats "$BM_DB" summary
for r in "${REGIONS[@]}"; do formats "$BM_DB" summary --region "$r"; done
formats "$REG_DB" summary

group rank
for m in "${METRICS[@]}"; do
    formats "$BM_DB" rank --metric "$m"
    for r in "${REGIONS[@]}"; do formats "$BM_DB" rank --metric "$m" --region "$r"; done
done
for p in week quarter; do
    for m in ms_score nps wait_p90 complaints_per_1000; do
        formats "$BM_DB" rank --metric "$m" --period "$p"
    done
done
formats "$BM_DB" rank --metric ms_score --channel call --region "${REGIONS[1]}"
formats "$BM_DB" rank --metric ms_score --section GREET
formats "$BM_DB" rank --metric nps --segment loyalty --last
formats "$BM_DB" rank --metric calls_answered_share --target-s 30 --min-n 5
formats "$BM_DB" rank --metric conversion --at 2026-10-15 --period week
formats "$REG_DB" rank --metric nps
formats "$REG_DB" rank --metric ms_score --region "${REGIONS[0]}"

group scorecard
for b in "${BRANCHES[@]}"; do formats "$BM_DB" scorecard "$b"; done
formats "$BM_DB" scorecard --branch B001 --period week --periods 8
formats "$BM_DB" scorecard B002 --period quarter --periods 2 --radius-km 50
formats "$REG_DB" scorecard "$(bm_psql "SELECT b.code FROM branches b JOIN regions r ON r.id = b.region_id WHERE r.code = '${REGIONS[0]}' ORDER BY 1 LIMIT 1")"

group competitors
formats "$BM_DB" competitors
for r in "${REGIONS[@]}"; do formats "$BM_DB" competitors --region "$r"; done
formats "$BM_DB" competitors --branch B003 --period month
formats "$BM_DB" competitors --radius-km 25 --channel visit
formats "$REG_DB" competitors

group alerts
formats "$BM_DB" alerts
for r in "${REGIONS[@]}"; do formats "$BM_DB" alerts --region "$r"; done
formats "$BM_DB" alerts --period week
formats "$BM_DB" alerts --period week --min-n 3 --region "${REGIONS[2]}"
formats "$REG_DB" alerts --period week

# The messages for bad arguments are part of the output too.
group errors
run "$BM_DB" rank
run "$BM_DB" rank --metric nope
run "$BM_DB" rank --metric nps --region NOWHERE
run "$BM_DB" rank --metric nps --format xml
run "$BM_DB" rank --metric nps --period year
run "$BM_DB" rank --metric nps --at 2026-02-30
run "$BM_DB" rank --metric nps --at 2026-01-01 --last
run "$BM_DB" rank --metric nps --channel call
run "$BM_DB" rank --metric conversion --segment x
run "$BM_DB" rank --metric nps --target-s 10
run "$BM_DB" rank --metric nps --min-n 0
run "$BM_DB" rank --metric nps --bogus 1
run "$BM_DB" rank --metric nps extra
run "$BM_DB" rank --metric
run "$BM_DB" rank --last=1 --metric nps
run "$BM_DB" scorecard
run "$BM_DB" scorecard B001 --branch B002
run "$BM_DB" scorecard B999
run "$BM_DB" scorecard B001 --periods 30
run "$BM_DB" competitors --radius-km -1
run "$BM_DB" alerts --segment x
run "$BM_DB" summary --period month
run "$REG_DB" scorecard "$(bm_psql "SELECT b.code FROM branches b JOIN regions r ON r.id = b.region_id WHERE r.code <> '${REGIONS[0]}' ORDER BY 1 LIMIT 1")"
run "$BM_DB" rank --help
run "$BM_DB" scorecard --help

if [ "${BM_GOLDEN_RECORD:-0}" = 1 ]; then
    mkdir -p "$GOLDEN"
    cp "$T"/golden/*.out "$GOLDEN"/
    note "recorded $(ls "$GOLDEN" | wc -l) golden files into $GOLDEN"
    exit 0
fi

count=0
for f in "$T"/golden/*.out; do
    name=$(basename "$f")
    [ -f "$GOLDEN/$name" ] || fail "no recorded output tests/data/golden/$name (record with BM_GOLDEN_RECORD=1)"
    if ! cmp -s "$GOLDEN/$name" "$f"; then
        diff -u "$GOLDEN/$name" "$f" | head -n 60
        fail "$name differs from the recorded output"
    fi
    count=$((count + $(grep -c '^### exit' "$f")))
done
[ $count -ge 300 ] || fail "only $count invocations compared"
note "$count report invocations byte-identical to tests/data/golden/"
