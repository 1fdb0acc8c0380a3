#!/bin/bash
# soak.sh: crash soak of the delivery guarantee (not a test; run by hand).
#
#   bench/soak.sh [--cycles N] [--seed S] [--branches N]
#
# A few agents send generated exports to one collector and a real
# PostgreSQL (tests/integration/lib.sh sets them up in a temporary
# directory).  N times (default 200) the loop drops the next few files into
# the inboxes, waits a random delay (0.05-1.5 s, drawn from the seed), kills
# an agent or the collector with SIGKILL and restarts it.  Afterwards it
# waits until everything is delivered and prints the records produced,
# stored, lost and duplicated (by branch, kind and source id, every record),
# the kills and the elapsed time.  Exits 1 if anything was lost or stored
# twice.  BM_BUILD_DIR picks the build (default build/).
CYCLES=200
SEED=1
NBRANCH=3
while [ $# -gt 0 ]; do
    case $1 in
    --cycles) CYCLES=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --branches) NBRANCH=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
    esac
done
case "$CYCLES$SEED$NBRANCH" in *[!0-9]*) echo "soak.sh: --cycles, --seed and --branches take numbers" >&2; exit 2 ;; esac
[ "$NBRANCH" -ge 1 ] && [ "$NBRANCH" -le 9 ] || { echo "soak.sh: --branches must be 1..9" >&2; exit 2; }

export BM_SOURCE_DIR=${BM_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd -P)}
# shellcheck source=../tests/integration/lib.sh
source "$BM_SOURCE_DIR/tests/integration/lib.sh"

T0=$SECONDS
RANDOM=$SEED
BRANCHES=()
for ((i = 1; i <= NBRANCH; i++)); do BRANCHES+=("$(printf 'B%03d' "$i")"); done

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
# About 13k records per branch and month at scale 1; enough files that new
# ones arrive during every cycle.
days=$((CYCLES / 5 + 10))
[ $days -le 365 ] || days=365
"$BM_DATAGEN" --out "$T/data" --branches "$NBRANCH" --regions 1 --competitors 2 --days "$days" \
    --scale 1 --seed "$SEED" >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
bm_expected_ids "$T/expected-ids.tsv" "$T/data" "${BRANCHES[@]}"
produced=$(wc -l <"$T/expected-ids.tsv")
note "generated $produced records for ${#BRANCHES[@]} branches over $days days; $CYCLES cycles, seed $SEED"

bm_pick_port CPORT
start_collector collector "$CPORT"
for b in "${BRANCHES[@]}"; do
    mkdir -p "$T/agents/$b"
    ls "$T/data/$b/inbox" >"$T/files-$b.txt"
    start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$CPORT" \
        "batch_records = 50" "send_window = 8" "ack_timeout = 3s" "backoff_min = 100ms"
done

declare -A KILLS=()
declare -A NEXT=()
for b in "${BRANCHES[@]}"; do NEXT[$b]=1; done
for ((c = 1; c <= CYCLES; c++)); do
    for b in "${BRANCHES[@]}"; do
        n=$(wc -l <"$T/files-$b.txt")
        per=$(((n + CYCLES - 1) / CYCLES))
        [ "${NEXT[$b]}" -le "$n" ] || continue
        sed -n "${NEXT[$b]},$((NEXT[$b] + per - 1))p" "$T/files-$b.txt" | while read -r f; do
            cp "$T/data/$b/inbox/$f" "$T/agents/$b/inbox/.$f.part" && mv "$T/agents/$b/inbox/.$f.part" "$T/agents/$b/inbox/$f"
        done
        NEXT[$b]=$((NEXT[$b] + per))
    done
    delay_ms=$((50 + RANDOM % 1451))
    pick=$((RANDOM % (NBRANCH + 1)))
    if [ $pick -eq $NBRANCH ]; then victim=collector; else victim=agent-${BRANCHES[$pick]}; fi
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    bm_check_alive
    kill9_proc "$victim"
    KILLS[$victim]=$((${KILLS[$victim]:-0} + 1))
    restart_proc "$victim"
    [ $((c % 20)) -eq 0 ] && note "cycle $c: $(bm_psql "SELECT count(*) FROM ingest_batches") batches stored so far"
done
# per x CYCLES >= the number of files: every file was dropped.
T_KILLS=$SECONDS
note "kills done; waiting for delivery"

delivered_all() {
    local b
    for b in "${BRANCHES[@]}"; do
        bm_delivered "agent-$b" "$T/agents/$b" "$(wc -l <"$T/files-$b.txt")" || return 1
    done
}
deadline=$((SECONDS + 300))
complete=yes
until delivered_all; do
    if [ $SECONDS -ge $deadline ]; then complete=no; break; fi
    bm_check_alive
    sleep 0.5
done
read -r exp stored missing dup extra ledger < <(bm_count_ids "$T/expected-ids.tsv")
again=$(bm_psql "SELECT coalesce(sum(duplicates), 0) FROM ingest_batches")
resent=$(bm_psql "SELECT count(*) FROM ingest_batches")
stop_all

echo
echo "soak: $CYCLES cycles, seed $SEED, ${#BRANCHES[@]} agents"
printf '  %-28s %s\n' "kills (SIGKILL)" "$(for k in "${!KILLS[@]}"; do printf '%s=%s ' "$k" "${KILLS[$k]}"; done)"
printf '  %-28s %s\n' "records produced" "$produced"
printf '  %-28s %s\n' "records stored" "$stored"
printf '  %-28s %s\n' "lost" "$missing"
printf '  %-28s %s\n' "duplicated" "$dup"
printf '  %-28s %s\n' "stored but never produced" "$extra"
printf '  %-28s %s\n' "ledger: stored / batches" "$ledger / $resent"
printf '  %-28s %s\n' "acknowledged again (dedup)" "$again"
printf '  %-28s %s\n' "all files delivered" "$complete"
printf '  %-28s %s s (kill loop %s s, drain %s s)\n' "elapsed" $((SECONDS - T0)) $((T_KILLS - T0)) $((SECONDS - T_KILLS))
if [ "$missing" != 0 ] || [ "$dup" != 0 ] || [ "$extra" != 0 ] || [ "$complete" != yes ]; then
    echo "soak: FAIL"
    BM_FAILED=1
    exit 1
fi
echo "soak: OK"
