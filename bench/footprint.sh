#!/bin/bash
# footprint.sh: memory and CPU of one branch agent (not a test; run by hand).
#
#   bench/footprint.sh [--records N] [--idle S]
#
# 1. idle: an agent with an empty inbox and no collector, for S seconds
#    (default 10): VmRSS, VmHWM and CPU seconds (utime + stime from
#    /proc/PID/stat) used in that time;
# 2. intake: about N generated records (default 1,000,000) dropped into the
#    inbox with the collector down, until every file is in the spool;
# 3. drain: the collector starts; measured from then until the spool is
#    empty (peak RSS reset through /proc/PID/clear_refs before).
# Prints the figures and PASS/FAIL against the target: RSS < 8 MiB in every
# phase.  BM_BUILD_DIR picks the build (default build/, RelWithDebInfo).
RECORDS=1000000
IDLE=10
while [ $# -gt 0 ]; do
    case $1 in
    --records) RECORDS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "footprint.sh: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
    esac
done
case "$RECORDS$IDLE" in *[!0-9]*) echo "footprint.sh: --records and --idle take numbers" >&2; exit 2 ;; esac
TARGET_KB=$((8 * 1024))

export BM_SOURCE_DIR=${BM_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd -P)}
# shellcheck source=../tests/integration/lib.sh
source "$BM_SOURCE_DIR/tests/integration/lib.sh"

TICK=$(getconf CLK_TCK)
kb() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
secs() { awk -v t="$1" -v h="$TICK" 'BEGIN { printf "%.2f", t / h }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f MiB", k / 1024 }'; }
# sample PID: updates MAXRSS with the current VmRSS.
sample() {
    local r
    r=$(kb "$1" VmRSS) || return 0
    [ -n "$r" ] && [ "$r" -gt "$MAXRSS" ] && MAXRSS=$r
    return 0
}

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
# About 376 records per day at scale 1 for one branch; few large files
# (30 days, each kind one file a day) rather than many small ones.
days=30
scale=$(awk -v n="$RECORDS" -v d=$days 'BEGIN { s = n / 376 / d; if (s < 0.01) s = 0.01; if (s > 100) s = 100; printf "%.2f", s }')
"$BM_DATAGEN" --out "$T/data" --branches 1 --regions 1 --competitors 2 --days $days \
    --scale "$scale" --seed 5 >"$T/datagen.log" || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
total=$(awk 'NR > 1 { n += $3 } END { print n }' "$T/data/expected.tsv")
nfiles=$(ls "$T/data/B001/inbox" | wc -l)
note "generated $total records in $nfiles files"

bm_pick_port CPORT
A=$T/agents/B001
mkdir -p "$A"
start_agent agent-B001 B001 "$A" "tcp://127.0.0.1:$CPORT" "spool_max_bytes = 4G" "segment_bytes = 16M"
PID=${BM_PIDS[agent-B001]}
running() { [ "$(bm_agent_json agent-B001 pid)" = "$PID" ]; }
wait_until "the agent runs" 30 running

# ---- idle
note "idle for $IDLE s"
c0=$(cpu_ticks "$PID")
MAXRSS=0
end=$((SECONDS + IDLE))
while [ $SECONDS -lt $end ]; do sample "$PID"; sleep 0.5; done
idle_cpu=$(($(cpu_ticks "$PID") - c0))
idle_rss=$MAXRSS
idle_hwm=$(kb "$PID" VmHWM)
idle_anon=$(kb "$PID" RssAnon) idle_file=$(kb "$PID" RssFile)

# ---- intake (collector down)
echo 5 >"/proc/$PID/clear_refs" 2>/dev/null || true
c0=$(cpu_ticks "$PID")
t0=$(date +%s.%N)
MAXRSS=0
bm_drop_files "$T/data/B001/inbox" "$A/inbox"
taken() { sample "$PID"; [ -z "$(ls "$A/inbox")" ]; }
wait_until "every file is spooled" 600 taken
intake_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
intake_cpu=$(($(cpu_ticks "$PID") - c0))
intake_rss=$MAXRSS
intake_hwm=$(kb "$PID" VmHWM)
spool_mb=$(du -sm "$A/spool" | cut -f1)
entries=$(bm_agent_json agent-B001 spool_entries)
note "spooled: $entries entries, $spool_mb MB"

# ---- drain
echo 5 >"/proc/$PID/clear_refs" 2>/dev/null || true
c0=$(cpu_ticks "$PID")
MAXRSS=0
t0=$(date +%s.%N)
start_collector collector "$CPORT"
drained() { sample "$PID"; [ "$(bm_agent_json agent-B001 spool_entries)" = 0 ]; }
wait_until "the spool is empty" 900 drained
drain_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
drain_cpu=$(($(cpu_ticks "$PID") - c0))
drain_rss=$MAXRSS
drain_hwm=$(kb "$PID" VmHWM)
drain_anon=$(kb "$PID" RssAnon) drain_file=$(kb "$PID" RssFile)
threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$PID/status")
stored=$(bm_psql "SELECT coalesce(sum(stored), 0) FROM ingest_batches")
stop_all

verdict=PASS
for v in "$idle_hwm" "$intake_hwm" "$drain_hwm"; do [ "$v" -lt $TARGET_KB ] || verdict=FAIL; done
echo
echo "footprint of branchmark-agent ($BM_AGENT; $threads threads)"
printf '  %-8s %-14s %-14s %-12s %s\n' phase "max VmRSS" "VmHWM" "CPU s" "wall"
printf '  %-8s %-14s %-14s %-12s %s\n' idle "$(mib "$idle_rss")" "$(mib "$idle_hwm")" "$(secs "$idle_cpu")" "${IDLE} s"
printf '  %-8s %-14s %-14s %-12s %s\n' intake "$(mib "$intake_rss")" "$(mib "$intake_hwm")" "$(secs "$intake_cpu")" "$intake_s s ($total records, $nfiles files, spool $spool_mb MB)"
printf '  %-8s %-14s %-14s %-12s %s\n' drain "$(mib "$drain_rss")" "$(mib "$drain_hwm")" "$(secs "$drain_cpu")" "$drain_s s ($entries batches; $stored records stored)"
echo "  resident at the end of idle: $(mib "$idle_anon") anonymous (heap, stacks) + $(mib "$idle_file") file-backed (shared libraries)"
echo "  resident at the end of drain: $(mib "$drain_anon") anonymous + $(mib "$drain_file") file-backed"
echo "  target: RSS < 8 MiB in every phase: $verdict"
[ $verdict = PASS ]
