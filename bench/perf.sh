#!/bin/bash
# perf.sh: the performance benchmarks of issue 6 in one command.
#
#   bench/perf.sh [--quick] [--only ingest|agents|slowlink|query] [--build DIR]
#                 [--work DIR] [--port N] [--profile] [--huge-pages]
#
# Starts its own PostgreSQL (scripts/pg.sh: fsync and synchronous_commit on),
# builds the binaries (RelWithDebInfo in build-perf/ unless --build is given),
# and runs:
#   ingest    COPY baselines (binary, text, binary without rollup triggers) and
#             bm-loadgen against a collector with the same rows; prints
#             e2e rec/s, baselines, the ratio (target >= 0.7), ack latency,
#             collector VmHWM and CPU seconds, and per-table row counts.
#   agents    10,000 simulated agents connected at once, every record acked,
#             rows == sent, collector VmHWM < 256 MiB.
#   slowlink  one real branchmark-agent behind bm-delay-relay (250 ms RTT):
#             records/s delivered (target >= 5,000) and a backlog drain.
#   query     10,000 branches in 50 regions, a year of rollups; p50/p95 of
#             `branchmark rank` for a region and the chain (target p95 < 50 ms).
# --huge-pages (root): the query part runs the whole commands a second time
# with PostgreSQL's shared buffers in huge pages (80 x 2 MB reserved through
# /proc/sys/vm/nr_hugepages and given back afterwards).
# --profile records the ingest run system-wide with `perf record -e cpu-clock
# -g -a` (collector, PostgreSQL backend, load generator) into $WORK/perf.data
# and prints the top entries by process and by symbol.
# BM_COLLECTOR_ENV="NAME=VALUE ..." runs the collectors with that extra
# environment (LD_PRELOAD=..., GLIBC_TUNABLES=..., MALLOC_CONF=...).
# --quick scales every size down (a smoke run of ~2 minutes).  Collectors run
# with allow_plaintext = true on loopback (no CURVE).  Results: a table on
# stdout and $WORK/results.txt.  Exit status 0 when every target passed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=$ROOT/build-perf
WORK=/tmp/bm-perf
PORT=54610
QUICK=0
PROFILE=0
HUGE=0
ONLY=all
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --only) ONLY=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --work) WORK=$2; shift ;;
    --port) PORT=$2; shift ;;
    --profile) PROFILE=1 ;;
    --huge-pages) HUGE=1 ;;
    -h|--help) sed -n '2,/^set -uo pipefail/{/^set/d;p}' "$0"; exit 0 ;;
    *) echo "perf.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$ONLY" in all|ingest|agents|slowlink|query) ;; *) echo "perf.sh: --only: ingest|agents|slowlink|query" >&2; exit 2 ;; esac

if [ $QUICK = 1 ]; then
    INGEST_RECORDS=200000 INGEST_AGENTS=20 MANY_AGENTS=2000 MANY_RECORDS=40000
    SLOW_SCALE=10 SLOW_BRANCHES=1 QUERY_BRANCHES=2000 QUERY_RUNS=20
else
    INGEST_RECORDS=500000 INGEST_AGENTS=50 MANY_AGENTS=10000 MANY_RECORDS=200000
    SLOW_SCALE=20 SLOW_BRANCHES=1 QUERY_BRANCHES=10000 QUERY_RUNS=30
fi
BATCH=1000
WINDOW=8

PGBIN=/usr/lib/postgresql/15/bin
RESULTS=()
FAILS=0
say() { echo "[perf +${SECONDS}s] $*" >&2; }
result() { # result NAME VALUE [TARGET STATUS]
    RESULTS+=("$(printf '%-44s %-22s %-14s %s' "$1" "$2" "${3:-}" "${4:-}")")
    [ "${4:-}" = FAIL ] && FAILS=$((FAILS + 1))
    return 0
}
kv() { # kv KEY LINE: the value of key=value in LINE
    sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" <<<"$2" | head -n 1
}

# ------------------------------------------------------------------ setup
say "building $BUILD"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
fi
cmake --build "$BUILD" -j2 --target branchmark-collector branchmark branchmark-agent \
    bm-datagen bm-loadgen bm-copy-baseline bm-delay-relay bm-querybench >"$WORK.build.log" 2>&1 ||
    { tail -n 30 "$WORK.build.log"; exit 1; }
COLLECTOR=$BUILD/collector/branchmark-collector
TOOL=$BUILD/collector/branchmark
AGENT=$BUILD/agent/branchmark-agent
DATAGEN=$BUILD/bench/bm-datagen
LOADGEN=$BUILD/bench/bm-loadgen
BASELINE=$BUILD/bench/bm-copy-baseline
RELAY=$BUILD/bench/bm-delay-relay
QUERYBENCH=$BUILD/bench/bm-querybench

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"
# 10,000 agents need 10,000 connections on the collector's side too.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$ROOT/scripts/pg.sh" start "$WORK/pg" "$PORT" >/dev/null || exit 1
export PGHOST=$WORK/pg/sock PGPORT=$PORT PGUSER=postgres PGOPTIONS="-c client_min_messages=warning"
psqlq() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }
say "PostgreSQL on $PGHOST port $PORT: fsync=$(psqlq -d postgres -c 'show fsync'), synchronous_commit=$(psqlq -d postgres -c 'show synchronous_commit')"

# new_db NAME BRANCHES: creates, migrates and loads loadgen refdata.
new_db() {
    local name=$1 branches=$2
    psqlq -d postgres -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" || return 1
    "$TOOL" migrate --db "dbname=$name" >"$WORK/$name.migrate.log" 2>&1 || { cat "$WORK/$name.migrate.log"; return 1; }
    "$LOADGEN" --write-refdata "$WORK/refdata-$branches.json" --branches "$branches" --regions 50 >/dev/null || return 1
    "$TOOL" refdata load "$WORK/refdata-$branches.json" --db "dbname=$name" >"$WORK/$name.refdata.log" 2>&1 ||
        { tail -n 5 "$WORK/$name.refdata.log"; return 1; }
}

COLL_PID=
# start_collector NAME DB PORT [EXTRA_CONFIG_LINES]: a collector on tcp://127.0.0.1:PORT.
start_collector() {
    local name=$1 db=$2 port=$3
    cat >"$WORK/$name.conf" <<EOF
listen = tcp://127.0.0.1:$port
database = "host=$PGHOST port=$PGPORT dbname=$db user=postgres"
allow_plaintext = true
status_file = $WORK/$name.status.json
stats_interval = 10s
log_level = warn
${4:-}
EOF
    # BM_COLLECTOR_ENV="NAME=VALUE ...": extra environment of the collector
    # (e.g. LD_PRELOAD of another malloc, GLIBC_TUNABLES); env execs, so
    # COLL_PID is still the collector's.
    # shellcheck disable=SC2086
    env ${BM_COLLECTOR_ENV:-} "$COLLECTOR" -c "$WORK/$name.conf" >"$WORK/$name.log" 2>&1 &
    COLL_PID=$!
    PIDS+=("$COLL_PID")
    local i
    for ((i = 0; i < 150; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$COLL_PID" 2>/dev/null || { cat "$WORK/$name.log"; return 1; }
        sleep 0.2
    done
    return 1
}
stop_collector() {
    kill -TERM "$COLL_PID" 2>/dev/null
    wait "$COLL_PID" 2>/dev/null
}
# group_stats NAME: "groups/batches = mean" from the collector's status file
# (written at shutdown): how many batches shared a transaction.
group_stats() {
    local f=$WORK/$1.status.json g b
    g=$(tr -d ' \n' <"$f" 2>/dev/null | sed -n 's/.*"group_commit":{"batches":\([0-9]*\),"groups":\([0-9]*\)}.*/\2/p')
    b=$(tr -d ' \n' <"$f" 2>/dev/null | sed -n 's/.*"group_commit":{"batches":\([0-9]*\),"groups":\([0-9]*\)}.*/\1/p')
    awk -v g="${g:-0}" -v b="${b:-0}" 'BEGIN { printf "%d groups, %.1f batches each", g, (g > 0 ? b / g : 0) }'
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# proc_cpu PID: user+system CPU seconds so far.
proc_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
proc_hwm_mib() {
    awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}
# Sum of CPU seconds of all postgres processes (backends come and go; this
# counts the live ones, which include the collector's backend).
pg_cpu() {
    local s=0 p
    for p in $(pgrep -u postgres -f "postgres" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        s=$(awk -v s="$s" -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", s + ($14 + $15) / hz }' "/proc/$p/stat")
    done
    echo "$s"
}

# verify_counts DB LINE: compares count(*) per raw table with loadgen's sent_*.
verify_counts() {
    local db=$1 line=$2 ok=PASS k t want got detail=""
    for k in people_count:people_counts receipt:receipts queue_ticket:queue_tickets \
             phone_call:phone_calls complaint:complaints survey:survey_responses \
             customer_change:customer_changes; do
        want=$(kv "sent_${k%%:*}" "$line")
        t=${k#*:}
        got=$(psqlq -d "$db" -c "SELECT count(*) FROM $t")
        detail+="$t=$got/$want "
        [ "$want" = "$got" ] || ok=FAIL
    done
    echo "$ok $detail"
}

# ------------------------------------------------------------------ ingest
run_ingest() {
    say "ingest: $INGEST_RECORDS records, $INGEST_AGENTS agents, batch $BATCH, window $WINDOW"
    new_db bm_baseline "$INGEST_AGENTS" || return 1
    new_db bm_ingest "$INGEST_AGENTS" || return 1
    local common="--agents $INGEST_AGENTS --records $INGEST_RECORDS --batch $BATCH --prefix ING"
    local mode line bin_rate=0
    for mode in binary text notrigger; do
        line=$("$BASELINE" --db "dbname=bm_baseline" --truncate --mode "$mode" $common) ||
            { say "baseline $mode failed: $line"; result "COPY baseline $mode" "failed" "" FAIL; continue; }
        say "$line"
        result "COPY baseline $mode (rows/s)" "$(kv rows_per_s "$line")" "" "$(kv result "$line")"
        [ "$mode" = binary ] && bin_rate=$(kv rows_per_s "$line")
    done
    psqlq -d postgres -c "DROP DATABASE bm_baseline" >/dev/null

    start_collector collector-ingest bm_ingest 54611 || { result "ingest collector" "did not start" "" FAIL; return 1; }
    local cpu0 pg0
    cpu0=$(proc_cpu "$COLL_PID")
    pg0=$(pg_cpu)
    local perf_pid=
    if [ $PROFILE = 1 ]; then
        perf record -e cpu-clock -F 499 -g -a -o "$WORK/perf.data" >"$WORK/perf-record.log" 2>&1 &
        perf_pid=$!
    fi
    line=$("$LOADGEN" --endpoint tcp://127.0.0.1:54611 $common --window "$WINDOW" --label ingest)
    local rc=$?
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"; wait "$perf_pid"
        perf report -i "$WORK/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12 >"$WORK/perf-comm.txt"
        perf report -i "$WORK/perf.data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 60 >"$WORK/perf-sym.txt"
        say "profile by process:"; cat "$WORK/perf-comm.txt" >&2
        say "profile by symbol (top 60): $WORK/perf-sym.txt"
    fi
    say "$line"
    local cpu1 pg1 hwm
    cpu1=$(proc_cpu "$COLL_PID")
    pg1=$(pg_cpu)
    hwm=$(proc_hwm_mib "$COLL_PID")
    stop_collector
    result "group commit (transactions)" "$(group_stats collector-ingest)"
    result "load average 1/5/15 min after e2e" "$(loadavg)"
    local e2e
    e2e=$(kv rec_per_s "$line")
    result "end-to-end, $INGEST_AGENTS agents (rec/s)" "${e2e:-?}" "all acked" "$([ $rc = 0 ] && echo PASS || echo FAIL)"
    local ratio
    ratio=$(awk -v a="${e2e:-0}" -v b="$bin_rate" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    result "ratio e2e / binary COPY baseline" "$ratio" ">= 0.7" "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.7 ? "PASS" : "FAIL") }')"
    result "ack latency p50 / p99 (ms)" "$(kv ack_p50_ms "$line") / $(kv ack_p99_ms "$line")"
    result "collector VmHWM (MiB)" "$hwm"
    result "collector CPU (s)" "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')"
    result "postgres CPU, all processes (s)" "$(awk -v a="$pg0" -v b="$pg1" 'BEGIN { printf "%.2f", b - a }')"
    local v
    v=$(verify_counts bm_ingest "$line")
    say "rows verified: $v"
    result "PostgreSQL rows == sent (per table)" "${v%% *}" "exact" "${v%% *}"
}

# ------------------------------------------------------------------ agents
run_agents() {
    say "agents: $MANY_AGENTS agents at once, $MANY_RECORDS records"
    new_db bm_agents "$MANY_AGENTS" || return 1
    start_collector collector-agents bm_agents 54612 "max_agents = $MANY_AGENTS" ||
        { result "agents collector" "did not start" "" FAIL; return 1; }
    # Two load generator processes of N/2 agents each (one process would need
    # 2 descriptors per agent, beyond the usual hard limit of open files);
    # each connects 2,500 agents at a time (the collector listens with a
    # backlog of 4,096, listen_backlog; the kernel caps it at somaxconn);
    # source ports 20000-29999: outside the kernel's ephemeral range
    # (32768-60999), which 20,000 connections would exhaust for everything
    # else on the machine, and apart from the ports integration tests bind
    # (31000-31999, tests/integration/lib.sh bm_pick_port).
    local half=$((MANY_AGENTS / 2)) recs=$((MANY_RECORDS / 2)) batch
    batch=$((recs / half / 2)); [ $batch -lt 1 ] && batch=1
    local p rc=0 lines=() pids=()
    for p in 0 1; do
        "$LOADGEN" --endpoint tcp://127.0.0.1:54612 --agents "$half" --first-agent $((p * half)) \
            --branches "$MANY_AGENTS" --records "$recs" --batch "$batch" --window 2 --io-threads 1 --connect-step 2500 --source-port-base $((20000 + p * half)) \
            --prefix MANY --label "agents-$p" --timeout-s 300 >"$WORK/loadgen-agents-$p.out" &
        pids+=($!)
    done
    for p in 0 1; do wait "${pids[$p]}" || rc=1; lines+=("$(cat "$WORK/loadgen-agents-$p.out")"); say "${lines[$p]}"; done
    local hwm
    hwm=$(proc_hwm_mib "$COLL_PID")
    stop_collector
    result "$MANY_AGENTS agents: group commit" "$(group_stats collector-agents)"
    result "$MANY_AGENTS agents: load average 1/5/15" "$(loadavg)"
    local acked total rate
    acked=$(( $(kv acked_batches "${lines[0]}") + $(kv acked_batches "${lines[1]}") ))
    total=$(( $(kv batches "${lines[0]}") + $(kv batches "${lines[1]}") ))
    rate=$(awk -v a="$(kv rec_per_s "${lines[0]}")" -v b="$(kv rec_per_s "${lines[1]}")" 'BEGIN { printf "%.0f", a + b }')
    result "$MANY_AGENTS agents: all connected + acked" "$acked/$total batches" "every record" "$([ $rc = 0 ] && echo PASS || echo FAIL)"
    result "$MANY_AGENTS agents: rec/s (sum of 2 procs)" "$rate"
    result "$MANY_AGENTS agents: connect all (s)" "$(kv connect_s "${lines[0]}") / $(kv connect_s "${lines[1]}")"
    result "$MANY_AGENTS agents: ack p50 / p99 (ms)" "$(kv ack_p50_ms "${lines[0]}") / $(kv ack_p99_ms "${lines[0]}")"
    result "$MANY_AGENTS agents: collector VmHWM (MiB)" "$hwm" "< 256" "$(awk -v h="$hwm" 'BEGIN { print (h + 0 > 0 && h < 256 ? "PASS" : "FAIL") }')"
    # Rows: the two processes' sent_* added up.
    local k sum=""
    for k in people_count receipt queue_ticket phone_call complaint survey customer_change; do
        sum+=" sent_$k=$(( $(kv "sent_$k" "${lines[0]}") + $(kv "sent_$k" "${lines[1]}") ))"
    done
    local v
    v=$(verify_counts bm_agents "x$sum")
    say "rows verified: $v"
    result "$MANY_AGENTS agents: rows == sent" "${v%% *}" "exact" "${v%% *}"
    psqlq -d postgres -c "DROP DATABASE bm_agents" >/dev/null 2>&1
}


# ------------------------------------------------------------------ slowlink
# agent_json NAME FIELD: a numeric field of the agent's status.
agent_json() {
    "$AGENT" status -c "$WORK/$1.conf" --json 2>/dev/null | grep -Eo "\"$2\": *[0-9]+" | head -n 1 | sed -E 's/.*: *//'
}
write_agent_conf() { # write_agent_conf NAME DIR ENDPOINT
    mkdir -p "$2/inbox"
    cat >"$WORK/$1.conf" <<EOF
agent_id = $1
branch = B001
collector = $3
data_dir = $2
inbox_settle = 0
scan_interval = 200ms
batch_records = 1000
send_window = 128
ack_timeout = 30s
heartbeat_interval = 5s
backoff_min = 100ms
backoff_max = 1s
spool_max_bytes = 2G
log_level = warn
EOF
}
# wait_acked NAME N TIMEOUT: until the agent acknowledged N records; prints seconds.
wait_acked() {
    local t0 deadline=$((SECONDS + $3)) got
    t0=$(date +%s.%N)
    while :; do
        got=$(agent_json "$1" records_acked)
        [ "${got:-0}" -ge "$2" ] && break
        [ $SECONDS -ge $deadline ] && { say "$1: only ${got:-0} of $2 records acknowledged"; echo -1; return 1; }
        sleep 0.1
    done
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
}
run_slowlink() {
    say "slowlink: one agent behind a 250 ms RTT relay"
    psqlq -d postgres -c "DROP DATABASE IF EXISTS bm_slow" -c "CREATE DATABASE bm_slow" || return 1
    "$TOOL" migrate --db "dbname=bm_slow" >/dev/null 2>&1 || return 1
    "$DATAGEN" --out "$WORK/slowdata" --branches 1 --regions 1 --competitors 1 --days 30 \
        --scale "$SLOW_SCALE" --seed 5 >/dev/null || return 1
    "$TOOL" refdata load "$WORK/slowdata/refdata.json" --db "dbname=bm_slow" >/dev/null 2>&1 || return 1
    local total days=30
    total=$(awk -F'\t' 'NR > 1 { s += $3 } END { print s }' "$WORK/slowdata/expected.tsv")
    start_collector collector-slow bm_slow 54613 || return 1
    "$RELAY" --listen 54614 --target 127.0.0.1:54613 --delay-ms 125 >"$WORK/relay.log" 2>&1 &
    local relay=$!
    PIDS+=("$relay")
    # Live: inbox pre-filled, agent started, clock until every record is acked.
    write_agent_conf agent-live "$WORK/agent-live" tcp://127.0.0.1:54614
    cp "$WORK/slowdata/B001/inbox/"* "$WORK/agent-live/inbox/"
    "$AGENT" -c "$WORK/agent-live.conf" >"$WORK/agent-live.log" 2>&1 &
    local ag=$!
    local secs
    secs=$(wait_acked agent-live "$total" 600)
    kill -TERM $ag; wait $ag
    local live_rate
    live_rate=$(awk -v n="$total" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    say "slowlink live: $total records in $secs s through the relay"
    result "slow link 250 ms RTT: records/s" "$live_rate" ">= 5000" "$(awk -v r="$live_rate" 'BEGIN { print (r >= 5000 ? "PASS" : "FAIL") }')"
    # Backlog: the collector is down while the agent spools everything,
    # then started; clock until the spool is drained.
    stop_collector
    psqlq -d bm_slow -c "TRUNCATE ingest_batches, people_counts, receipts, queue_tickets, phone_calls, complaints, survey_responses, customer_changes, evaluations, agents CASCADE" >/dev/null 2>&1
    write_agent_conf agent-drain "$WORK/agent-drain" tcp://127.0.0.1:54614
    cp "$WORK/slowdata/B001/inbox/"* "$WORK/agent-drain/inbox/"
    "$AGENT" -c "$WORK/agent-drain.conf" >"$WORK/agent-drain.log" 2>&1 &
    ag=$!
    local deadline=$((SECONDS + 300))
    until [ -z "$(ls "$WORK/agent-drain/inbox")" ] && [ "$(agent_json agent-drain records_spooled)" = "$total" ]; do
        [ $SECONDS -ge $deadline ] && { say "agent did not spool the backlog"; break; }
        sleep 0.2
    done
    say "backlog of $total records spooled while the collector is down; starting it"
    start_collector collector-slow bm_slow 54613 || return 1
    secs=$(wait_acked agent-drain "$total" 600)
    kill -TERM $ag; wait $ag
    stop_collector
    kill -TERM $relay; wait $relay 2>/dev/null
    local drain arrival ratio
    drain=$(awk -v n="$total" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    # The live (arrival) rate of a branch: its records per day spread over
    # the day, times 10 for the busiest hour.
    arrival=$(awk -v n="$total" -v d="$days" 'BEGIN { printf "%.3f", n / d / 86400 * 10 }')
    ratio=$(awk -v a="$drain" -v b="$arrival" 'BEGIN { printf "%.0f", (b > 0 ? a / b : 0) }')
    result "backlog drain (rec/s, after outage)" "$drain"
    result "branch arrival rate, peak hour (rec/s)" "$arrival"
    result "drain / peak arrival" "${ratio}x" ">= 20x" "$(awk -v r="$ratio" 'BEGIN { print (r >= 20 ? "PASS" : "FAIL") }')"
    result "drain / delivered live rate" "$(awk -v a="$drain" -v b="$live_rate" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')x"
    local stored
    stored=$(psqlq -d bm_slow -c "SELECT (SELECT count(*) FROM people_counts) + (SELECT count(*) FROM receipts) + (SELECT count(*) FROM queue_tickets) + (SELECT count(*) FROM phone_calls) + (SELECT count(*) FROM complaints) + (SELECT count(*) FROM survey_responses) + (SELECT count(*) FROM customer_changes) + (SELECT count(*) FROM evaluations)")
    result "backlog: rows == generated" "$stored/$total" "exact" "$([ "$stored" = "$total" ] && echo PASS || echo FAIL)"
}

# time_ranks LABEL AT LOG FULL: rank nps / wait_p90 for region R07 and the
# chain, month AT: whole command (process start to exit) and server-side
# time from the statement log LOG, QUERY_RUNS runs each; FULL=1 adds the
# same command on one persistent connection (bm-querybench).
time_ranks() {
    local label=$1 at=$2 log=$3 full=$4 metric scope i a b
    for metric in nps wait_p90; do
        for scope in region chain; do
            local args=(rank --metric "$metric" --period month --at "$at" --db "dbname=bm_query" --format csv)
            [ $scope = region ] && args=("${args[@]:0:${#args[@]}-2}" --region R07 --format csv)
            "$TOOL" "${args[@]}" >"$WORK/rank-$metric-$scope.csv" 2>"$WORK/rank-$metric-$scope.err" ||
                { result "${label}rank $metric $scope" "failed: $(head -c 120 "$WORK/rank-$metric-$scope.err")" "" FAIL; continue; }
            local n0 times=() server=()
            for ((i = 0; i < QUERY_RUNS; i++)); do
                n0=$(wc -l <"$log")
                a=$(date +%s%N)
                "$TOOL" "${args[@]}" >/dev/null 2>&1
                b=$(date +%s%N)
                times+=($(((b - a) / 1000)))
                server+=($(tail -n +$((n0 + 1)) "$log" |
                    awk '/duration: / { for (k = 1; k < NF; k++) if ($k == "duration:") s += $(k + 1) }
                         END { printf "%d", s * 1000 }'))
            done
            local stats sstats rows
            # Nearest-rank percentiles of the wall time of the whole command
            # (process start, connect, reference data, query, output) and of
            # the server-side time of the same runs.
            stats=$(printf '%s\n' "${times[@]}" | pct)
            sstats=$(printf '%s\n' "${server[@]}" | pct)
            rows=$(($(grep -c '' "$WORK/rank-$metric-$scope.csv") - 1))
            result "${label}rank $metric $scope ($rows rows) p50/p95 ms" "${stats% *} / ${stats#* }" "p95 < 50" \
                "$(awk -v p="${stats#* }" 'BEGIN { print (p < 50 ? "PASS" : "FAIL") }')"
            result "  server-side p50/p95 ms" "${sstats% *} / ${sstats#* }"
            [ "$full" = 1 ] || continue
            # The same command on one persistent connection (bm-querybench:
            # the code path of branchmark-web, or the CLI behind a pooler),
            # with glibc's default malloc and with malloc tunables that keep
            # freed memory (no page faults re-mapping it on every run).
            local qb qbt
            qb=$("$QUERYBENCH" --db "dbname=bm_query" --runs "$QUERY_RUNS" -- "${args[@]}" 2>&1)
            qbt=$(GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=268435456 \
                  "$QUERYBENCH" --db "dbname=bm_query" --runs "$QUERY_RUNS" -- "${args[@]}" 2>&1)
            result "  one connection p50/p95 ms" "$(kv p50_ms " $qb") / $(kv p95_ms " $qb")" "p95 < 50" \
                "$(awk -v p="$(kv p95_ms " $qb")" 'BEGIN { print (p != "" && p < 50 ? "PASS" : "FAIL") }')"
            result "  one connection, malloc tunables p50/p95" "$(kv p50_ms " $qbt") / $(kv p95_ms " $qbt")" "p95 < 50" \
                "$(awk -v p="$(kv p95_ms " $qbt")" 'BEGIN { print (p != "" && p < 50 ? "PASS" : "FAIL") }')"
            # JSON, what the dashboard asks for (same connection, tunables).
            args[${#args[@]} - 1]=json
            qbt=$(GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=268435456 \
                  "$QUERYBENCH" --db "dbname=bm_query" --runs "$QUERY_RUNS" -- "${args[@]}" 2>&1)
            result "  one connection, tunables, json p50/p95" "$(kv p50_ms " $qbt") / $(kv p95_ms " $qbt")" "p95 < 50" \
                "$(awk -v p="$(kv p95_ms " $qbt")" 'BEGIN { print (p != "" && p < 50 ? "PASS" : "FAIL") }')"
        done
    done
}

# ------------------------------------------------------------------ query
run_query() {
    say "query: $QUERY_BRANCHES branches in 50 regions, a year of rollups"
    # query_scale.sql generates the branches itself (no refdata load).
    psqlq -d postgres -c "DROP DATABASE IF EXISTS bm_query" -c "CREATE DATABASE bm_query" || return 1
    "$TOOL" migrate --db "dbname=bm_query" >"$WORK/bm_query.migrate.log" 2>&1 ||
        { cat "$WORK/bm_query.migrate.log"; return 1; }
    local t0=$SECONDS
    psqlq -d bm_query -v branches="$QUERY_BRANCHES" -f "$ROOT/bench/query_scale.sql" >"$WORK/query_fill.log" 2>&1 ||
        { tail -n 5 "$WORK/query_fill.log"; result "query data" "fill failed" "" FAIL; return 1; }
    say "data generated in $((SECONDS - t0)) s: $(psqlq -d bm_query -c "SELECT count(*) FROM branches") branches, $(psqlq -d bm_query -c "SELECT count(*) FROM rollup_hist") rollup_hist rows, database $(psqlq -d bm_query -c "SELECT pg_size_pretty(pg_database_size('bm_query'))")"
    # Server-side time: every statement of the tool's session is logged with
    # its duration (parse, bind, execute, including sending the rows); the
    # sum per run is the time spent inside PostgreSQL.
    psqlq -d postgres -c "ALTER DATABASE bm_query SET log_min_duration_statement = 0" || return 1
    local log=$WORK/pg/data/server.log
    local scope metric at
    pct() { sort -n | awk '{ v[NR] = $1 }
        END { i50 = int(NR * 0.50 + 0.999); i95 = int(NR * 0.95 + 0.999);
              printf "%.1f %.1f", v[i50] / 1000, v[i95] / 1000 }'; }
    # The floor of any command on this machine: starting the process (36
    # shared libraries: libpq, libzmq, OpenSSL, ...) without touching the
    # database, and the load average while the runs go on.
    local i a b floor=()
    for ((i = 0; i < QUERY_RUNS; i++)); do
        a=$(date +%s%N)
        "$TOOL" metrics >/dev/null 2>&1
        b=$(date +%s%N)
        floor+=($(((b - a) / 1000)))
    done
    local fl
    fl=$(printf '%s\n' "${floor[@]}" | pct)
    result "process start (branchmark metrics) p50/p95 ms" "${fl% *} / ${fl#* }"
    result "load average before the query runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
    at=$(psqlq -d bm_query -c "SELECT to_char(date_trunc('month', now() - interval '1 month'), 'YYYY-MM-DD')")
    time_ranks "" "$at" "$log" 1
    if [ $HUGE = 1 ]; then
        # The same whole commands with shared buffers in 2 MB pages: a new
        # backend (one per CLI run) then maps them with a few hundred page
        # faults instead of one per 4 KiB page it reads.
        local had
        had=$(cat /proc/sys/vm/nr_hugepages)
        if echo $((had + 80)) >/proc/sys/vm/nr_hugepages 2>/dev/null &&
            [ "$(cat /proc/sys/vm/nr_hugepages)" -ge $((had + 72)) ] &&
            psqlq -d postgres -c "ALTER SYSTEM SET huge_pages = 'on'" &&
            "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null &&
            "$ROOT/scripts/pg.sh" start "$WORK/pg" "$PORT" >/dev/null; then
            say "PostgreSQL restarted with huge_pages = on ($((had + 80)) pages of 2 MB reserved)"
            # Warm the buffer cache again after the restart.
            "$TOOL" rank --metric wait_p90 --period month --at "$at" --db "dbname=bm_query" >/dev/null 2>&1
            "$TOOL" rank --metric nps --period month --at "$at" --db "dbname=bm_query" >/dev/null 2>&1
            time_ranks "huge pages: " "$at" "$log" 0
        else
            result "huge pages" "could not reserve them" "" ""
        fi
        psqlq -d postgres -c "ALTER SYSTEM RESET huge_pages" >/dev/null
        "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null
        echo "$had" >/proc/sys/vm/nr_hugepages 2>/dev/null
        "$ROOT/scripts/pg.sh" start "$WORK/pg" "$PORT" >/dev/null || return 1
    fi
    result "load average after the query runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
    psqlq -d postgres -c "ALTER DATABASE bm_query RESET log_min_duration_statement" >/dev/null
}

# ------------------------------------------------------------------ main
{
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
    echo "PostgreSQL $(psqlq -d postgres -c 'show server_version'), synchronous_commit=on, fsync=on; collectors: allow_plaintext = true (loopback, no CURVE)"
} >"$WORK/machine.txt"
[ "$ONLY" = all ] || [ "$ONLY" = ingest ] && run_ingest
[ "$ONLY" = all ] || [ "$ONLY" = agents ] && run_agents
if [ "$ONLY" = all ] || [ "$ONLY" = slowlink ]; then
    declare -F run_slowlink >/dev/null && run_slowlink
fi
if [ "$ONLY" = all ] || [ "$ONLY" = query ]; then
    declare -F run_query >/dev/null && run_query
fi

{
    echo
    echo "=== branchmark performance ($( [ $QUICK = 1 ] && echo quick || echo full ) run, $(date -u +%FT%TZ), ${SECONDS} s)"
    cat "$WORK/machine.txt"
    printf '%-44s %-22s %-14s %s\n' "measure" "value" "target" "result"
    for r in "${RESULTS[@]}"; do echo "$r"; done
    [ $FAILS = 0 ] && echo "ALL TARGETS PASSED" || echo "$FAILS TARGET(S) FAILED"
} | tee "$WORK/results.txt"
[ $FAILS = 0 ]
