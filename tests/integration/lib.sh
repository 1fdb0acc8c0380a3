# lib.sh: shared helpers of the integration tests (sourced, bash).
#
# A test gets its own temporary directory ($T), its own PostgreSQL (socket
# in $T/pg/sock, database "branchmark"), free TCP ports for collectors, and
# a cleanup trap that stops every process it started, stops PostgreSQL and
# removes $T (kept when the test failed and BM_KEEP=1).
#
# Environment:
#   BM_BUILD_DIR   build tree with the binaries (ctest sets it; default build/)
#   BM_SOURCE_DIR  source tree (ctest sets it; default: this checkout)
#   BM_TEST_TMP    parent of the per-test directory (default $BM_BUILD_DIR/test-tmp)
#   BM_VALGRIND=1  run agents and collectors under valgrind memcheck; any
#                  valgrind error fails the test
#   BM_KEEP=1      keep the directory of a failed test for inspection
#
# Functions: fail, note, wait_until, bm_psql, bm_pick_port, start_collector,
# start_agent, stop_proc, stop_all, agent_status, assert_eq.
set -euo pipefail

BM_SOURCE_DIR=${BM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
BM_BUILD_DIR=${BM_BUILD_DIR:-$BM_SOURCE_DIR/build}
BM_AGENT=$BM_BUILD_DIR/agent/branchmark-agent
BM_COLLECTOR=$BM_BUILD_DIR/collector/branchmark-collector
BM_TOOL=$BM_BUILD_DIR/collector/branchmark
BM_DATAGEN=$BM_BUILD_DIR/bench/bm-datagen
BM_SENDRAW=$BM_BUILD_DIR/tests/bm-sendraw
BM_PG_SH=$BM_SOURCE_DIR/scripts/pg.sh

TEST_NAME=$(basename "$0" .sh)
# Valgrind slows the programs down by an order of magnitude; deadlines grow
# with it.
if [ "${BM_VALGRIND:-0}" = 1 ]; then
    BM_SLOW=8
else
    BM_SLOW=1
fi

declare -A BM_PIDS=()        # name -> pid of every process we started
declare -A BM_STOPPED=()     # name -> 1 once stop_proc has reaped it
BM_FAILED=0
BM_PG_STARTED=0

note() { echo "[$TEST_NAME +${SECONDS}s] $*"; }

# fail MESSAGE: prints and ends the test with status 1 (the trap cleans up).
fail() {
    echo "[$TEST_NAME] FAIL: $*" >&2
    BM_FAILED=1
    exit 1
}

assert_eq() { # assert_eq DESCRIPTION EXPECTED ACTUAL
    if [ "$2" != "$3" ]; then
        fail "$1: expected \"$2\", got \"$3\""
    fi
}

for bin in "$BM_AGENT" "$BM_COLLECTOR" "$BM_TOOL" "$BM_DATAGEN" "$BM_SENDRAW"; do
    [ -x "$bin" ] || { echo "[$TEST_NAME] FAIL: $bin is not built (BM_BUILD_DIR=$BM_BUILD_DIR)" >&2; exit 1; }
done

mkdir -p "${BM_TEST_TMP:-$BM_BUILD_DIR/test-tmp}"
T=$(mktemp -d "${BM_TEST_TMP:-$BM_BUILD_DIR/test-tmp}/$TEST_NAME.XXXXXX")
T=$(cd "$T" && pwd -P)
chmod 755 "$T"   # PostgreSQL runs as the postgres user and must reach $T/pg
note "working in $T"

# wait_until DESCRIPTION TIMEOUT_S COMMAND...: polls COMMAND (every 0.2 s)
# until it succeeds; fails the test when TIMEOUT_S (times BM_SLOW) passes.
wait_until() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout * BM_SLOW))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "timed out after $((timeout * BM_SLOW)) s waiting until $what"
        fi
        bm_check_alive
        sleep 0.2
    done
}

# A process that died while we wait is a failure now, not a timeout later.
bm_check_alive() {
    local name
    for name in "${!BM_PIDS[@]}"; do
        [ -n "${BM_STOPPED[$name]:-}" ] && continue
        if ! kill -0 "${BM_PIDS[$name]}" 2>/dev/null; then
            BM_STOPPED[$name]=1
            local rc=0
            wait "${BM_PIDS[$name]}" || rc=$?
            fail "$name exited unexpectedly (status $rc); log: $T/$name.log"
        fi
    done
}

# bm_pick_port VAR: sets VAR to a TCP port in 55000-55999 that nothing
# listens on, and holds a lock on it (flock, released when this test and
# the processes it started are gone), so parallel tests never share one.
bm_pick_port() {
    local var=$1 p fd tries=0
    mkdir -p /tmp/bm-test-ports
    while [ $tries -lt 500 ]; do
        tries=$((tries + 1))
        p=$((55000 + RANDOM % 1000))
        exec {fd}>"/tmp/bm-test-ports/$p.lock"
        if flock -n "$fd"; then
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                printf -v "$var" '%s' "$p"
                return 0
            fi
        fi
        exec {fd}>&-
    done
    fail "no free TCP port in 55000-55999"
}

# ---------------------------------------------------------------- PostgreSQL

bm_pg_start() {
    local port
    bm_pick_port port
    BM_PG_PORT=$port
    "$BM_PG_SH" start "$T/pg" "$BM_PG_PORT" >/dev/null || fail "could not start PostgreSQL"
    BM_PG_STARTED=1
    export PGHOST=$T/pg/sock PGPORT=$BM_PG_PORT PGUSER=postgres
    PGDATABASE=postgres psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE branchmark' >/dev/null ||
        fail "could not create database branchmark"
    export PGDATABASE=branchmark
    BM_DB="host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark user=postgres"
}

# bm_psql SQL [psql args...]: runs SQL, prints unaligned tuples only.
bm_psql() {
    local sql=$1
    shift
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$BM_DB" -c "$sql" "$@"
}

# ---------------------------------------------------------------- processes

# bm_run_bg NAME COMMAND...: starts COMMAND in the background with its output
# in $T/NAME.log, under valgrind when BM_VALGRIND=1.
bm_run_bg() {
    local name=$1
    shift
    if [ "${BM_VALGRIND:-0}" = 1 ]; then
        valgrind --quiet --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
            --error-exitcode=99 --log-file="$T/$name.valgrind" "$@" >"$T/$name.log" 2>&1 &
    else
        "$@" >"$T/$name.log" 2>&1 &
    fi
    BM_PIDS[$name]=$!
}

# start_collector NAME PORT [extra config lines...]: writes $T/NAME.conf and
# starts a collector listening on tcp://127.0.0.1:PORT.
start_collector() {
    local name=$1 port=$2
    shift 2
    {
        echo "listen = tcp://127.0.0.1:$port"
        echo "database = \"$BM_DB\""
        echo "status_file = $T/$name.status.json"
        echo "log_level = info"
        local line
        for line in "$@"; do echo "$line"; done
    } >"$T/$name.conf"
    bm_run_bg "$name" "$BM_COLLECTOR" -c "$T/$name.conf"
    wait_until "$name listens on port $port" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}

# start_agent NAME BRANCH DATA_DIR ENDPOINT [extra config lines...]: writes
# $T/NAME.conf and starts an agent.
start_agent() {
    local name=$1 branch=$2 dir=$3 endpoint=$4
    shift 4
    mkdir -p "$dir"
    {
        echo "agent_id = $name"
        echo "branch = $branch"
        echo "collector = $endpoint"
        echo "data_dir = $dir"
        echo "inbox_settle = 0"
        echo "scan_interval = 200ms"
        echo "heartbeat_interval = 1s"
        echo "backoff_max = 2s"
        echo "log_level = info"
        local line
        for line in "$@"; do echo "$line"; done
    } >"$T/$name.conf"
    bm_run_bg "$name" "$BM_AGENT" -c "$T/$name.conf"
}

# agent_status NAME: the agent's own status report.
agent_status() {
    "$BM_AGENT" status -c "$T/$1.conf"
}

# stop_proc NAME: SIGTERM, wait (at most 30 s times BM_SLOW, then SIGKILL),
# and check that it exited cleanly (status 0; under valgrind 99 means
# valgrind found errors).  Returns non-zero on an unclean exit.
stop_proc() {
    local name=$1 pid=${BM_PIDS[$1]} rc=0 i
    [ -n "${BM_STOPPED[$name]:-}" ] && return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150 * BM_SLOW; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "[$TEST_NAME] $name did not stop on SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    BM_STOPPED[$name]=1
    if [ $rc -eq 99 ] && [ "${BM_VALGRIND:-0}" = 1 ]; then
        echo "[$TEST_NAME] valgrind found errors in $name:" >&2
        cat "$T/$name.valgrind" >&2
        return 1
    fi
    if [ $rc -ne 0 ]; then
        echo "[$TEST_NAME] $name exited with status $rc on SIGTERM; last lines of its log:" >&2
        tail -n 20 "$T/$name.log" >&2 || true
        return 1
    fi
    if [ "${BM_VALGRIND:-0}" = 1 ] && [ -s "$T/$name.valgrind" ]; then
        echo "[$TEST_NAME] valgrind reported on $name:" >&2
        cat "$T/$name.valgrind" >&2
        return 1
    fi
    return 0
}

# stop_all: stops every process (agents first), failing the test if any
# did not exit cleanly.
stop_all() {
    local name bad=0
    for name in "${!BM_PIDS[@]}"; do
        case "$name" in collector*) continue ;; esac
        stop_proc "$name" || bad=1
    done
    for name in "${!BM_PIDS[@]}"; do
        stop_proc "$name" || bad=1
    done
    [ $bad -eq 0 ] || fail "a process did not shut down cleanly"
}

bm_cleanup() {
    local rc=$?
    set +e
    [ $rc -ne 0 ] && BM_FAILED=1
    local name
    for name in "${!BM_PIDS[@]}"; do
        [ -n "${BM_STOPPED[$name]:-}" ] && continue
        kill -TERM "${BM_PIDS[$name]}" 2>/dev/null
    done
    for name in "${!BM_PIDS[@]}"; do
        [ -n "${BM_STOPPED[$name]:-}" ] && continue
        local i
        for ((i = 0; i < 50 * BM_SLOW; i++)); do
            kill -0 "${BM_PIDS[$name]}" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "${BM_PIDS[$name]}" 2>/dev/null
        wait "${BM_PIDS[$name]}" 2>/dev/null
    done
    if [ $BM_FAILED -eq 1 ]; then
        for name in "${!BM_PIDS[@]}"; do
            if [ -f "$T/$name.log" ]; then
                echo "----- last lines of $name.log -----" >&2
                tail -n 15 "$T/$name.log" >&2
            fi
        done
    fi
    [ $BM_PG_STARTED -eq 1 ] && "$BM_PG_SH" stop "$T/pg" >/dev/null 2>&1
    if [ $BM_FAILED -eq 1 ] && [ "${BM_KEEP:-0}" = 1 ]; then
        echo "[$TEST_NAME] kept $T for inspection" >&2
    else
        rm -rf "$T"
    fi
    if [ $BM_FAILED -eq 0 ]; then
        note "PASS"
    fi
    exit $rc
}
trap bm_cleanup EXIT
trap 'exit 130' INT TERM
