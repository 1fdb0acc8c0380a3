#!/bin/bash
# test_pg_restart: PostgreSQL is stopped (first "-m immediate", a crash, then
# "-m fast") and started again while three agents send.  The collector must
# not acknowledge what it could not commit (answers "unavailable"), must
# reconnect by itself, and at the end every record is stored exactly once
# (by source id).
source "$(dirname "$0")/lib.sh"

BRANCHES=(B001 B002 B003)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 3 --regions 1 --competitors 1 --days 6 \
    --scale 1 --seed 31 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
bm_expected_ids "$T/expected-ids.tsv" "$T/data" "${BRANCHES[@]}"
note "generated $(wc -l <"$T/expected-ids.tsv") records"

pg_ctl_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$PGBIN/pg_ctl" "$@"; else "$PGBIN/pg_ctl" "$@"; fi
}
collector_db() { grep -Eo '"database_connected": *(true|false)' "$T/collector.status.json" 2>/dev/null | grep -Eo '(true|false)$'; }
db_down() { [ "$(collector_db)" = false ]; }
db_up() { [ "$(collector_db)" = true ]; }
batches() { bm_psql "SELECT count(*) FROM ingest_batches" 2>/dev/null; }
grew() { [ "$(batches)" -gt "$1" ]; }
unavailable_seen() { grep -q 'temporarily unavailable' "$T/agent-$1.log"; }

bm_pick_port CPORT
start_collector collector "$CPORT" "stats_interval = 1s"
for b in "${BRANCHES[@]}"; do
    mkdir -p "$T/agents/$b"
    start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$CPORT" \
        "batch_records = 25" "send_window = 4" "ack_timeout = 5s" "backoff_min = 100ms"
done
wait_until "the collector is connected to the database" 30 db_up

# The files of each branch in stages: receipts (odd, even) go in while
# PostgreSQL is up, queue tickets (odd, even) while it is down, the rest at
# the end.
for b in "${BRANCHES[@]}"; do
    for st in up1 down1 up2 down2 rest; do mkdir -p "$T/stage/$st/$b"; done
    i=0
    for f in "$T/data/$b/inbox"/*; do
        i=$((i + 1))
        case "$(basename "$f")" in
        receipts*) st=up$((i % 2 + 1)) ;;
        queue*) st=down$((i % 2 + 1)) ;;
        *) st=rest ;;
        esac
        cp "$f" "$T/stage/$st/$b/"
    done
done

n=0
for mode in immediate fast; do
    n=$((n + 1))
    for b in "${BRANCHES[@]}"; do
        bm_drop_files "$T/stage/up$n/$b" "$T/agents/$b/inbox"
    done
    base=$(batches)
    wait_until "batches are being stored" 30 grew "$base"
    note "stopping PostgreSQL (-m $mode) at $(batches) batches"
    pg_ctl_as_pg -D "$T/pg/data" -m "$mode" -w -t 60 stop >/dev/null || fail "pg_ctl stop -m $mode failed"
    wait_until "the collector reports the database down" 30 db_down
    for b in "${BRANCHES[@]}"; do
        bm_drop_files "$T/stage/down$n/$b" "$T/agents/$b/inbox"
    done
    # Agents are answered "unavailable" and keep their data.
    wait_until "an agent was told the database is unavailable" 30 unavailable_seen B00$n
    "$BM_PG_SH" start "$T/pg" "$BM_PG_PORT" >/dev/null || fail "could not start PostgreSQL again"
    wait_until "the collector reconnects to the database" 60 db_up
    note "PostgreSQL is back; $(batches) batches"
done
for b in "${BRANCHES[@]}"; do
    bm_drop_files "$T/stage/rest/$b" "$T/agents/$b/inbox"
done
for b in "${BRANCHES[@]}"; do
    total=$(ls "$T/data/$b/inbox" | wc -l)
    wait_until "agent-$b delivered all $total files" 90 bm_delivered "agent-$b" "$T/agents/$b" "$total"
done
bm_assert_exactly_once "$T/expected-ids.tsv"
grep -q 'db_reconnects' "$T/collector.status.json" || fail "no db_reconnects in the collector status"
stop_all
