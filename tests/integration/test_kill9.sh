#!/bin/bash
# test_kill9: SIGKILL of agents and of the collector at moments chosen by
# watching progress, over several cycles, while data flows:
#   intake     an agent while it is taking inbox files (some taken, some not)
#   inflight   an agent while its batches are being stored (the ledger grows,
#              its spool still holds unacknowledged entries)
#   afteracks  an agent right after files of it were finished (moved to done/)
#   collector  the collector while its database session is inside a batch
#              transaction (pg_stat_activity shows an open transaction)
# Each killed process is restarted at once.  At the end every record of
# every generated file must be stored exactly once (by source id), every
# file must be in done/ once, and every spool empty.
source "$(dirname "$0")/lib.sh"

BRANCHES=(B001 B002)
CYCLES=(intake collector inflight afteracks collector intake inflight collector afteracks collector)
NCHUNK=${#CYCLES[@]}

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 2 --regions 1 --competitors 1 --days 8 \
    --scale 1 --seed 23 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
# One large receipts file per branch for each "intake" cycle, so that an
# agent can be caught in the middle of a file (its spool grows while the file
# is still in the inbox).  Source ids are new; times come from a real file.
bigfile() { # bigfile BRANCH CYCLE
    local src
    src=$(ls "$T/data/$1/inbox"/receipts_* | head -n 1)
    awk -F, -v b="$1" -v c="$2" 'NR == 1 { print; next }
        NR == 2 { for (i = 1; i <= 8000; i++) printf "RBIG-%s-%d-%06d,%s,%d.%02d,EUR\n", b, c, i, $2, i % 300, i % 100 }' \
        "$src" >"$T/big/$1/inbox/receipts_big$2.csv"
}
for b in "${BRANCHES[@]}"; do
    mkdir -p "$T/big/$b/inbox"
    for ((c = 0; c < NCHUNK; c++)); do
        [ "${CYCLES[$c]}" = intake ] && bigfile "$b" "$c"
    done
done
bm_expected_ids "$T/expected-ids.tsv" "$T/data" "${BRANCHES[@]}"
bm_expected_ids "$T/expected-big.tsv" "$T/big" "${BRANCHES[@]}"
cat "$T/expected-big.tsv" >>"$T/expected-ids.tsv"
note "generated $(wc -l <"$T/expected-ids.tsv") records"

# The files of each branch, dealt round-robin into one chunk per cycle.
for b in "${BRANCHES[@]}"; do
    ls "$T/data/$b/inbox" >"$T/files-$b.txt"
    for ((i = 0; i < NCHUNK; i++)); do
        mkdir -p "$T/chunks/$b/$i"
        awk -v n="$NCHUNK" -v i="$i" 'NR % n == i' "$T/files-$b.txt" | while read -r f; do
            cp "$T/data/$b/inbox/$f" "$T/chunks/$b/$i/"
        done
        if [ -f "$T/big/$b/inbox/receipts_big$i.csv" ]; then
            cp "$T/big/$b/inbox/receipts_big$i.csv" "$T/chunks/$b/$i/"
            echo "receipts_big$i.csv" >>"$T/files-big-$b.txt"
        fi
    done
    cat "$T/files-big-$b.txt" >>"$T/files-$b.txt"
done

bm_pick_port CPORT
start_collector collector "$CPORT"
for b in "${BRANCHES[@]}"; do
    mkdir -p "$T/agents/$b"
    # Small batches: many transactions and acks to kill in the middle of.
    start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$CPORT" \
        "batch_records = 40" "send_window = 4" "ack_timeout = 3s" "backoff_min = 100ms"
done

batches() { bm_psql "SELECT count(*) FROM ingest_batches"; }
files_in() { find "$1" -type f 2>/dev/null | wc -l; }
# in_xact: the collector's session is inside a transaction right now.
in_xact() {
    [ "$(bm_psql "SELECT count(*) FROM pg_stat_activity WHERE datname = 'branchmark'
        AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND xact_start IS NOT NULL")" -gt 0 ]
}
# poll_fast TIMEOUT_S COMMAND...: like wait_until but tighter and without
# failing: returns 1 when the moment was missed.
poll_fast() {
    local deadline=$((SECONDS + $1 * BM_SLOW))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.02
    done
}
spool_bytes() { local n; n=$(du -sb "$T/agents/$1/spool" 2>/dev/null | cut -f1); echo "${n:-0}"; }
intake_half() { # the large file is being spooled but has not left the inbox
    [ -f "$T/agents/$1/inbox/receipts_big$2.csv" ] && [ "$(spool_bytes "$1")" -gt "$3" ]
}
inflight() {
    [ "$(batches)" -gt "$2" ] && [ "$(bm_agent_json "agent-$1" spool_entries)" -gt 0 ] 2>/dev/null
}
acked_more() { [ "$(files_in "$T/agents/$1/done")" -gt "$2" ]; }

hits=0
for ((c = 0; c < NCHUNK; c++)); do
    what=${CYCLES[$c]}
    b=${BRANCHES[$((c % ${#BRANCHES[@]}))]}
    base=$(batches)
    done0=$(files_in "$T/agents/$b/done")
    sb0=$(spool_bytes "$b")
    for x in "${BRANCHES[@]}"; do
        bm_drop_files "$T/chunks/$x/$c" "$T/agents/$x/inbox"
    done
    case $what in
    intake) poll_fast 10 intake_half "$b" "$c" "$sb0" && r=hit || r=missed; victim=agent-$b ;;
    inflight) poll_fast 10 inflight "$b" "$base" && r=hit || r=missed; victim=agent-$b ;;
    afteracks) poll_fast 10 acked_more "$b" "$done0" && r=hit || r=missed; victim=agent-$b ;;
    collector) poll_fast 10 in_xact && r=hit || r=missed; victim=collector ;;
    esac
    kill9_proc "$victim"
    [ $r = hit ] && hits=$((hits + 1))
    note "cycle $c: kill -9 $victim ($what: $r; ledger $base -> $(batches) batches)"
    restart_proc "$victim"
done
# Most kills must have landed where intended, or the test proves little.
[ $hits -ge $((NCHUNK / 2)) ] || fail "only $hits of $NCHUNK kills hit their moment"

for b in "${BRANCHES[@]}"; do
    n=$(wc -l <"$T/files-$b.txt")
    wait_until "agent-$b delivered all $n files" 90 bm_delivered "agent-$b" "$T/agents/$b" "$n"
    got=$(cd "$T/agents/$b/done" && find . -type f -printf '%f\n' | sed -E 's/^[0-9]{20}_//' | sort)
    assert_eq "$b: files in done/ (each once)" "$(sort "$T/files-$b.txt")" "$got"
done
bm_assert_exactly_once "$T/expected-ids.tsv"
note "ledger: $(bm_psql "SELECT count(*) || ' batches, ' || sum(duplicates) || ' duplicate records acknowledged again' FROM ingest_batches")"
stop_all
