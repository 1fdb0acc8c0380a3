#!/bin/bash
# test_inbox_intake: the agent takes only finished files, and what it cannot
# take or the collector refuses shows where store IT looks (issue 14).
#  1. An exporter writes people_count_inplace.csv straight into the inbox
#     (one open file, no rename) and stalls 3 x inbox_settle twice: in the
#     middle of line 501 ("...,900,101,6" of "...,900,101,61") and between
#     lines 750 and 751.  All 1000 records are stored once, each with the
#     exact values written (compared in SQL), and the file is in done/ whole.
#     Again with an agent that cannot see the open writer (no lease): the
#     file is taken in the pause, then moved back and read again whole.
#  2. A 0-byte export is rejected as "empty export".
#  3. A record the collector refuses (unknown competitor outlet) puts its
#     file into rejected/ with the record and the collector's reason in the
#     .errors file; the file's good record is stored.
#  4. Receipts.CSV (wrong case), notes.txt and a dangling symbolic link are
#     listed by `status`, which exits 4 while they are there (0 after they
#     are removed); the agent logs each of them once, not at every scan.
source "$(dirname "$0")/lib.sh"
export TZ=UTC

SETTLE_MS=400
STALL=1.2 # 3 x inbox_settle

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 1 --regions 1 --competitors 1 --days 1 --scale 0.05 >/dev/null ||
    fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }

bm_pick_port CPORT
start_collector collector "$CPORT"
start_agent agent-B001 B001 "$T/agent" "tcp://127.0.0.1:$CPORT"
INBOX=$T/agent/inbox
CONF=$T/agent-B001.conf
# start_agent writes inbox_settle = 0 (every writer renames); this test is
# about writers that do not, so it sets a real settle time and reloads.
wait_until "the agent has started" 30 grep -q 'started: agent' "$T/agent-B001.log"
sed -i "s/^inbox_settle = 0\$/inbox_settle = ${SETTLE_MS}ms/" "$CONF"
grep -q "^inbox_settle = ${SETTLE_MS}ms\$" "$CONF" || fail "could not set inbox_settle in $CONF"
kill -HUP "${BM_PIDS[agent-B001]}"
wait_until "the agent has reloaded its configuration" 30 grep -q 'configuration reloaded' "$T/agent-B001.log"

# ------------------------------------------------ 1. an in-place writer

BASE=$(($(date +%s) - 20 * 3600))
# pc_line PREFIX I: line I of the export, values that differ from line to
# line (entrants always has two digits, so a cut line has a wrong value).
pc_line() {
    printf '%s-%04d,%(%Y-%m-%dT%H:%M:%SZ)T,900,%d,%d\n' "$1" "$2" $((BASE + $2 * 60)) \
        $((100 + $2 % 50)) $((10 + $2 % 90))
}
# inplace_writer PREFIX FILE [OWNER]: writes FILE in place through one open
# descriptor, with the two stalls; OWNER: chown the file right after it is
# created (the agent then does not own it).
inplace_writer() {
    local p=$1 f=$2 i l
    exec 7>"$f"
    [ -z "${3:-}" ] || chown "$3" "$f"
    echo "source_id,interval_start,interval_seconds,passers_by,entrants" >&7
    for ((i = 1; i <= 500; i++)); do pc_line "$p" $i >&7; done
    l=$(pc_line "$p" 501)
    printf '%s' "${l:0:${#l}-1}" >&7 # line 501 up to its last digit ...
    sleep "$STALL"                    # ... the exporter stalls mid-line ...
    printf '%s\n' "${l: -1}" >&7      # ... and goes on
    for ((i = 502; i <= 750; i++)); do pc_line "$p" $i >&7; done
    sleep "$STALL" # stalls between two lines
    for ((i = 751; i <= 1000; i++)); do pc_line "$p" $i >&7; done
    exec 7>&-
}

# run_inplace PREFIX NAME [OWNER]: the writer, then every record is stored
# once with its values, and the file is in done/ whole.
run_inplace() {
    local p=$1 name=$2 i t0 f
    for ((i = 1; i <= 1000; i++)); do pc_line "$p" $i; done |
        awk -F, '{ print $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' >"$T/$p.expected"
    note "in-place writer of $name: 1000 lines, stalls of ${STALL} s (inbox_settle ${SETTLE_MS} ms)"
    t0=$SECONDS
    inplace_writer "$p" "$INBOX/$name" "${3:-}" || fail "the in-place writer failed"
    note "writer finished after $((SECONDS - t0)) s"
    inplace_done() {
        [ -z "$(find "$INBOX" "$T/agent/sending" -name "*$name*" 2>/dev/null)" ] &&
            [ -n "$(find "$T/agent/done" -name "*_$name")" ] &&
            [ "$(bm_psql "SELECT count(*) FROM people_counts WHERE source_id LIKE '$p-%'")" = 1000 ]
    }
    wait_until "$name is stored and in done/" 60 inplace_done
    note "stored and in done/ after $((SECONDS - t0)) s"
    bm_psql "SELECT source_id, to_char(interval_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    interval_seconds, passers_by, entrants
             FROM people_counts WHERE source_id LIKE '$p-%' ORDER BY source_id" -F $'\t' >"$T/$p.stored"
    if ! diff -q "$T/$p.expected" "$T/$p.stored" >/dev/null; then
        diff "$T/$p.expected" "$T/$p.stored" | head -n 10 >&2
        fail "stored people counts of $name differ from what the exporter wrote"
    fi
    assert_eq "line 501 of $name stored whole" "$p-0501 61" \
        "$(bm_psql "SELECT source_id || ' ' || entrants FROM people_counts WHERE source_id = '$p-0501'")"
    assert_eq "files of $name in done/" 1 "$(find "$T/agent/done" -name "*_$name" | wc -l)"
    f=$(find "$T/agent/done" -name "*_$name")
    assert_eq "lines of $name in done/" 1001 "$(wc -l <"$f")"
    [ -z "$(find "$T/agent/rejected" -name "*$name*")" ] || fail "part of $name was rejected"
    note "$name: 1000 of 1000 records stored once with their exact values; the agent's words:"
    grep "$name" "$T/agent-B001.log" | sed -E 's/^.*msg="(.*)"$/    \1/' >&2
}

# 1a. The writer keeps its file open: the agent sees that (a read lease).
run_inplace IP people_count_inplace.csv

# 1b. Without the lease (the agent does not own the file and has no
# CAP_LEASE) only the time rules and the watch on taken files apply: the
# file is taken during the pause between lines, written to in sending/,
# moved back to the inbox and read again whole.
printf '#!/bin/sh\nexec setpriv --bounding-set=-lease -- "%s" "$@"\n' "$BM_AGENT" >"$T/agent-nolease"
chmod +x "$T/agent-nolease"
stop_proc agent-B001 || fail "the agent did not stop cleanly"
BM_AGENT=$T/agent-nolease
restart_proc agent-B001
wait_until "the agent runs again" 30 agent_status agent-B001
run_inplace IQ people_count_nolease.csv nobody
note "records the collector acknowledged again as duplicates so far: $(bm_psql "SELECT coalesce(sum(duplicates), 0) FROM ingest_batches")"
if [ "${BM_VALGRIND:-0}" != 1 ]; then
    grep -q 'people_count_nolease.csv\\" was written to after it was taken' "$T/agent-B001.log" ||
        fail "the file was not taken during the pause between lines, so the watch was not tested"
fi

# ------------------------------------------------ 2. an empty export

: >"$INBOX/receipts_empty.csv"
empty_rejected() { [ -n "$(find "$T/agent/rejected" -name '*_receipts_empty.csv')" ]; }
wait_until "the empty export is rejected" 60 empty_rejected
eerr=$(find "$T/agent/rejected" -name '*_receipts_empty.csv').errors
[ -f "$eerr" ] || fail "no .errors beside the rejected empty export"
grep -q 'empty export' "$eerr" || fail "$(basename "$eerr") does not say 'empty export': $(cat "$eerr")"
note "empty export: $(cat "$eerr")"

# ------------------------------------------------ 3. a record the collector refuses

gen=$(find "$T/data/B001/inbox" -name 'evaluations*.jsonl' | head -n 1)
line=$(head -n 1 "$gen")
[ -n "$line" ] || fail "bm-datagen wrote no evaluation"
{
    sed -E 's/"source_id":"[^"]*"/"source_id":"REF-E-2"/' <<<"$line"
    sed -E 's/"source_id":"[^"]*"/"source_id":"REF-E-1"/; s/"outlet":\{[^}]*\}/"outlet":{"competitor":"NOSUCH"}/' <<<"$line"
} >"$INBOX/.evaluations_refused.jsonl.part"
mv "$INBOX/.evaluations_refused.jsonl.part" "$INBOX/evaluations_refused.jsonl"
refused_rejected() {
    local f
    f=$(find "$T/agent/rejected" -name '*_evaluations_refused.jsonl')
    [ -n "$f" ] && [ -f "$f.errors" ]
}
wait_until "the file with a refused record is in rejected/" 60 refused_rejected
rerr=$(find "$T/agent/rejected" -name '*_evaluations_refused.jsonl').errors
note "refused: $(cat "$rerr")"
grep -q 'record "REF-E-1": refused by the collector: .*NOSUCH' "$rerr" ||
    fail "$(basename "$rerr") does not name REF-E-1 and the collector's reason: $(cat "$rerr")"
assert_eq "lines in the .errors of the refused file" 1 "$(grep -c . "$rerr")"
assert_eq "stored evaluations of that file" "REF-E-2" \
    "$(bm_psql "SELECT string_agg(source_id, ',') FROM evaluations WHERE source_id LIKE 'REF-E-%'")"
grep -q '"source_id":"REF-E-1"' "$T"/agent/deadletter/*.jsonl || fail "REF-E-1 is not in deadletter/"

# ------------------------------------------------ 4. stuck files

printf 'source_id,at,amount,currency\n' >"$INBOX/Receipts.CSV"
printf 'hello\n' >"$INBOX/notes.txt"
ln -s "$T/no-such-export.csv" "$INBOX/receipts_link.csv"
status_stuck() {
    local rc=0
    agent_status agent-B001 >"$T/status.out" 2>&1 || rc=$?
    [ $rc -eq 4 ] && grep -q 'Receipts.CSV' "$T/status.out" && grep -q 'notes.txt' "$T/status.out" &&
        grep -q 'receipts_link.csv' "$T/status.out"
}
wait_until "status lists the three stuck files and exits 4" 30 status_stuck
note "status while files are stuck:"
sed 's/^/    /' "$T/status.out"
grep -q 'rename it to "receipts.csv"' "$T/status.out" || fail "status does not suggest the right-case name"
grep -q 'does not exist' "$T/status.out" || fail "status does not say the link points nowhere"
assert_eq "files_stuck" 3 "$(bm_agent_json agent-B001 files_stuck)"
# Many scans later (a file dropped now is taken, sent and finished), each
# stuck file is still logged once.
bm_drop_files "$T/data/B001/inbox" "$INBOX" 'receipts_*.csv'
gen_done() { [ -n "$(find "$T/agent/done" -name '*_receipts_2*.csv')" ]; }
wait_until "a later file is finished" 60 gen_done
for n in Receipts.CSV notes.txt receipts_link.csv; do
    assert_eq "log lines about $n" 1 "$(grep -c "inbox file \\\\\"$n\\\\\" cannot be taken" "$T/agent-B001.log")"
done
rm -f "$INBOX/Receipts.CSV" "$INBOX/notes.txt" "$INBOX/receipts_link.csv"
status_ok() { agent_status agent-B001 >/dev/null 2>&1; }
wait_until "status exits 0 once the stuck files are gone" 30 status_ok
assert_eq "files_stuck after clean-up" 0 "$(bm_agent_json agent-B001 files_stuck)"

stop_all
note "collector and agent stopped cleanly"
