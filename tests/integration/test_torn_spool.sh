#!/bin/bash
# test_torn_spool: a torn write at the end of the spool (docs/spool.md).
#
# The guarantee: a spool entry is only relied upon once it was synced, and
# the agent syncs before an inbox file leaves the inbox.  So an entry that
# can be torn (appended, not yet synced) always belongs to a file that is
# still in the inbox; its records were never "accepted".  After the cut the
# agent reads that file again from scratch, and the entries of it that
# survived are harmless (the collector acknowledges their records again as
# duplicates).  Entries of files that had left the inbox are kept whole.
#
# The test: collector down; an agent takes small files (they move to
# sending/), then is killed (SIGKILL) in the middle of taking a large file
# (the spool grows, the file is still in the inbox).  The last entry of the
# last segment is cut in half (a torn write).  The test checks that the
# torn entry came from the file still in the inbox, restarts the agent
# (which must log the cut) and the collector: every record of every file is
# stored exactly once and every file ends in done/.
source "$(dirname "$0")/lib.sh"

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 1 --regions 1 --competitors 1 --days 3 \
    --scale 0.5 --seed 41 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }

# Large receipts files (new source ids, real times): intake takes long
# enough to kill the agent in the middle.
mkdir -p "$T/big/B001/inbox"
src=$(ls "$T/data/B001/inbox"/receipts_* | head -n 1)
for k in 1 2 3 4; do
    awk -F, -v k="$k" 'NR == 1 { print; next }
        NR == 2 { for (i = 1; i <= 20000; i++) printf "RBIG%d-%06d,%s,%d.%02d,EUR\n", k, i, $2, i % 300, i % 100 }' \
        "$src" >"$T/big/B001/inbox/receipts_big$k.csv"
done
bm_expected_ids "$T/expected-small.tsv" "$T/data" B001
bm_expected_ids "$T/expected-big.tsv" "$T/big" B001

bm_pick_port CPORT
A=$T/agents/B001
mkdir -p "$A"
conf=("batch_records = 100" "ack_timeout = 3s" "backoff_min = 100ms" "segment_bytes = 64K" "spool_max_bytes = 64M")
start_agent agent-B001 B001 "$A" "tcp://127.0.0.1:$CPORT" "${conf[@]}"
bm_drop_files "$T/data/B001/inbox" "$A/inbox"
nsmall=$(ls "$T/data/B001/inbox" | wc -l)
wait_until "the small files are spooled (in sending/)" 30 bash -c "[ -z \"\$(ls '$A/inbox')\" ] && [ \$(ls '$A/sending' | grep -vc '\\.errors\$') -eq $nsmall ]"

# entries SEG: prints "offset length" of every whole entry of SEG.
entries() {
    local seg=$1 size off=0 len
    size=$(stat -c %s "$seg")
    while [ $((off + 28)) -le "$size" ]; do
        len=$(od -An -tu4 -j $((off + 4)) -N 4 "$seg" | tr -d ' ')
        [ $((off + 28 + len)) -le "$size" ] || break
        echo "$off $len"
        off=$((off + 28 + len))
    done
}
spool_bytes() { local n; n=$(du -sb "$A/spool" | cut -f1); echo "${n:-0}"; }
mid_intake() { [ -f "$A/inbox/$1" ] && [ "$(spool_bytes)" -gt "$2" ]; }
poll_fast() {
    local deadline=$((SECONDS + $1 * BM_SLOW))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.01
    done
}

last_seg() { ls "$A/spool"/seg-*.log | sort | tail -n 1; }
# Up to four attempts to catch the agent in the middle of a large file.  An
# attempt also does not count when the kill came just after the agent had
# started a new segment (the newest segment holds no whole entry yet, so
# there is no entry to tear).
caught=
for k in 1 2 3 4; do
    f=receipts_big$k.csv
    sb=$(spool_bytes)
    bm_drop_files "$T/big/B001/inbox" "$A/inbox" "$f"
    if poll_fast 20 mid_intake "$f" "$sb"; then
        kill9_proc agent-B001
        if [ -f "$A/inbox/$f" ] && [ -n "$(entries "$(last_seg)" | tail -n 1)" ]; then
            caught=$f
            break
        fi
    else
        kill9_proc agent-B001
    fi
    note "attempt $k: $f was taken whole before the kill, or the newest segment had no whole entry; again"
    restart_proc agent-B001
    # The restarted agent first takes what is left of $f: the next attempt
    # must find it busy with its own file, not with this one.
    wait_until "the restarted agent has taken $f" 60 bash -c "[ ! -e '$A/inbox/$f' ]"
done
[ -n "$caught" ] || fail "could not kill the agent in the middle of a large file in 4 attempts"
note "agent killed while taking $caught"

seg=$(last_seg)
last=$(entries "$seg" | tail -n 1)
[ -n "$last" ] || fail "no whole entry in $seg"
read -r off len <<<"$last"
origin=$(tail -c +$((off + 29)) "$seg" | head -c 200 | grep -a -o '[0-9]\{20\}_receipts_big[0-9]*\.csv' | head -n 1)
assert_eq "file of the last spool entry" "$caught" "${origin#*_}"
[ -f "$A/inbox/$caught" ] || fail "$caught left the inbox"
cut=$((off + 28 + len / 2))
size=$(stat -c %s "$seg")
truncate -s "$cut" "$seg"
note "cut $(basename "$seg") from $size to $cut bytes (mid-payload of the entry at offset $off)"
# The inbox file the torn entry came from stays byte-identical.
cmp -s "$A/inbox/$caught" "$T/big/B001/inbox/$caught" || fail "$caught in the inbox was changed"

restart_proc agent-B001
logged() { grep -q 'cutting torn tail' "$T/agent-B001.log" && grep -q 'torn write' "$T/agent-B001.log"; }
wait_until "the agent logs the cut" 30 logged
grep 'torn' "$T/agent-B001.log" | sed 's/^/    /'
start_collector collector "$CPORT"

# Every file dropped so far: the small ones and the large ones up to $caught.
ndone=$nsmall
: >"$T/expected-ids.tsv"
cat "$T/expected-small.tsv" >>"$T/expected-ids.tsv"
for k in 1 2 3 4; do
    ndone=$((ndone + 1))
    awk -F"\t" -v p="RBIG$k-" "index(\$3, p) == 1" "$T/expected-big.tsv" >>"$T/expected-ids.tsv"
    [ "receipts_big$k.csv" = "$caught" ] && break
done
wait_until "agent-B001 delivered all $ndone files" 60 bm_delivered agent-B001 "$A" "$ndone"
bm_assert_exactly_once "$T/expected-ids.tsv"
note "records acknowledged again as duplicates: $(bm_psql "SELECT sum(duplicates) FROM ingest_batches")"
stop_all
