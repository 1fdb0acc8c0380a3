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
#   BM_CURVE=0     start collectors with allow_plaintext = true and agents
#                  without keys (default: CURVE, see below)
#   BM_ENROLL=0    (for one start_agent call) give the agent a key pair but
#                  do not enroll it
#
# CURVE (docs/security.md): every collector of a test uses the key pair
# $T/keys/collector.{key,pub}; start_agent gives each agent its own pair
# $T/keys/NAME.{key,pub} and enrolls it for the agent's branch (once, with
# `branchmark agent enroll`, so the reference data must be loaded first);
# start_collector enrolls $T/keys/rawtest for branch B001 when it exists
# and exports BM_SENDRAW_CURVE_SECRET/SERVER, so bm-sendraw connects as
# agent "rawtest" of B001 unless given --plain or other keys.
#
# Functions: fail, note, wait_until, bm_psql, bm_pick_port, start_collector,
# start_agent, stop_proc, stop_all, agent_status, assert_eq; at the end,
# reliability helpers and bm_load_generated (a database filled with generated
# chain data through real agents).
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

# bm_pick_port VAR: sets VAR to a TCP port in 31000-31999 that nothing
# listens on, and holds a lock on it (flock, released when this test and
# the processes it started are gone), so parallel tests never share one.
bm_pick_port() {
    local var=$1 p fd tries=0
    mkdir -p /tmp/bm-test-ports
    while [ $tries -lt 500 ]; do
        tries=$((tries + 1))
        # Below the kernel's ephemeral range (32768-60999): a port in it can
        # be taken by any outgoing connection (or an agent's connect to a
        # stopped collector can connect to itself), and bind then fails;
        # bench/perf.sh uses source ports 20000-29999.
        p=$((31000 + RANDOM % 1000))
        exec {fd}>"/tmp/bm-test-ports/$p.lock"
        if flock -n "$fd"; then
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                printf -v "$var" '%s' "$p"
                return 0
            fi
        fi
        exec {fd}>&-
    done
    fail "no free TCP port in 31000-31999"
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

# bm_keypair NAME: creates $T/keys/NAME.key and NAME.pub once.
bm_keypair() {
    mkdir -p "$T/keys"
    [ -f "$T/keys/$1.key" ] ||
        "$BM_TOOL" keygen --out "$T/keys/$1" >/dev/null || fail "keygen $1 failed"
}

# bm_enroll NAME BRANCH: creates NAME's key pair and enrolls it for BRANCH
# once.  A failure (unknown branch, no schema yet) is noted, not fatal: the
# agent is then refused, which is what such a test expects.
bm_enroll() {
    local name=$1 branch=$2
    bm_keypair "$name"
    [ -f "$T/keys/$name.enrolled" ] && return 0
    if "$BM_TOOL" agent enroll --db "$BM_DB" --agent "$name" --branch "$branch" \
        --key "$T/keys/$name.pub" >"$T/keys/$name.enroll.log" 2>&1; then
        touch "$T/keys/$name.enrolled"
    else
        note "could not enroll $name for $branch: $(tail -n 1 "$T/keys/$name.enroll.log")"
    fi
}

# start_collector NAME PORT [extra config lines...]: writes $T/NAME.conf and
# starts a collector listening on tcp://127.0.0.1:PORT.
start_collector() {
    local name=$1 port=$2
    shift 2
    if [ "${BM_CURVE:-1}" = 1 ]; then
        bm_keypair collector
        if [ "$(bm_psql "SELECT count(*) FROM branches WHERE code = 'B001'" 2>/dev/null)" = 1 ]; then
            bm_enroll rawtest B001
        fi
        export BM_SENDRAW_CURVE_SECRET=$T/keys/rawtest.key BM_SENDRAW_CURVE_SERVER=$T/keys/collector.pub
    fi
    {
        echo "listen = tcp://127.0.0.1:$port"
        echo "database = \"$BM_DB\""
        echo "status_file = $T/$name.status.json"
        echo "log_level = info"
        if [ "${BM_CURVE:-1}" = 1 ]; then
            echo "curve_secret_key_file = $T/keys/collector.key"
        else
            echo "allow_plaintext = true"
        fi
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
    if [ "${BM_CURVE:-1}" = 1 ]; then
        bm_keypair collector
        if [ "${BM_ENROLL:-1}" = 1 ]; then
            bm_enroll "$name" "$branch"
        else
            bm_keypair "$name"
        fi
    fi
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
        if [ "${BM_CURVE:-1}" = 1 ]; then
            echo "curve_secret_key_file = $T/keys/$name.key"
            echo "collector_public_key = $T/keys/collector.pub"
        fi
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

# ------------------------------------------- reliability helpers (h7)
#
# kill9_proc NAME: SIGKILL, reap, and mark the process as stopped.
# restart_proc NAME: starts NAME again with its config file ($T/NAME.conf),
#   appending to its log; a collector is waited for until it listens.
# bm_expected_ids OUT DIR BRANCH...: writes OUT (branch, kind, source_id; tab
#   separated) from the generated exports in DIR/<branch>/inbox.
# bm_count_ids EXPECTED: prints "expected stored missing duplicated extra
#   ledger" comparing every (branch, kind, source_id) of EXPECTED with the
#   database: missing = expected but not stored, duplicated = stored more
#   than once (or expected once and stored twice), extra = stored but never
#   produced, ledger = sum of ingest_batches.stored.
# bm_assert_exactly_once EXPECTED: fails the test unless every record is
#   stored exactly once and the ledger agrees.

kill9_proc() {
    local name=$1 pid=${BM_PIDS[$1]}
    [ -n "${BM_STOPPED[$name]:-}" ] && return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    BM_STOPPED[$name]=1
}

restart_proc() {
    local name=$1 bin=$BM_AGENT port
    case "$name" in collector*) bin=$BM_COLLECTOR ;; esac
    unset "BM_STOPPED[$name]"
    echo "----- restarted at $(date -u +%FT%T.%3NZ) -----" >>"$T/$name.log"
    if [ "${BM_VALGRIND:-0}" = 1 ]; then
        valgrind --quiet --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
            --error-exitcode=99 --log-file="$T/$name.valgrind.%p" "$bin" -c "$T/$name.conf" >>"$T/$name.log" 2>&1 &
    else
        "$bin" -c "$T/$name.conf" >>"$T/$name.log" 2>&1 &
    fi
    BM_PIDS[$name]=$!
    if [ "$bin" = "$BM_COLLECTOR" ]; then
        port=$(sed -n 's/^listen = tcp:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$T/$name.conf" | head -n 1)
        wait_until "$name listens on port $port" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
    fi
}

bm_expected_ids() {
    local out=$1 dir=$2 b f kind
    shift 2
    : >"$out"
    for b in "$@"; do
        for f in "$dir/$b/inbox"/*; do
            case "$(basename "$f")" in
            people_count*) kind=people_count ;; receipts*) kind=receipt ;; queue*) kind=queue_ticket ;;
            calls*) kind=phone_call ;; complaints*) kind=complaint ;; customers*) kind=customer_change ;;
            surveys*) kind=survey ;; evaluations*) kind=evaluation ;;
            *) fail "bm_expected_ids: unexpected file $f" ;;
            esac
            case "$f" in
            *.jsonl)
                awk -v b="$b" -v k="$kind" -v f="$f" '
                    $0 == "" { next }
                    match($0, /"source_id":"[^"]*"/) { print b "\t" k "\t" substr($0, RSTART + 13, RLENGTH - 14); next }
                    { print "no source_id in " f ":" NR > "/dev/stderr"; exit 1 }' "$f" >>"$out" ;;
            *)
                awk -F, -v b="$b" -v k="$kind" 'NR > 1 && $0 != "" { print b "\t" k "\t" $1 }' "$f" >>"$out" ;;
            esac || fail "bm_expected_ids: could not read $f"
        done
    done
}

bm_count_ids() {
    local expected=$1
    psql -X -A -t -q -F ' ' -v ON_ERROR_STOP=1 -d "$BM_DB" <<EOF
CREATE TEMP TABLE exp_ids (branch text, kind text, source_id text);
\\copy exp_ids FROM '$expected'
CREATE TEMP TABLE db_ids AS
  SELECT b.code AS branch, x.kind, x.source_id FROM (
              SELECT branch_id, 'people_count' AS kind, source_id FROM people_counts
    UNION ALL SELECT branch_id, 'receipt', source_id FROM receipts
    UNION ALL SELECT branch_id, 'queue_ticket', source_id FROM queue_tickets
    UNION ALL SELECT branch_id, 'phone_call', source_id FROM phone_calls
    UNION ALL SELECT branch_id, 'complaint', source_id FROM complaints
    UNION ALL SELECT branch_id, 'survey', source_id FROM survey_responses
    UNION ALL SELECT branch_id, 'customer_change', source_id FROM customer_changes
    UNION ALL SELECT branch_id, 'evaluation', source_id FROM evaluations) x
  JOIN branches b ON b.id = x.branch_id;
SELECT (SELECT count(*) FROM exp_ids),
       (SELECT count(*) FROM db_ids),
       (SELECT count(*) FROM (SELECT * FROM exp_ids EXCEPT ALL SELECT * FROM db_ids) m),
       (SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM db_ids GROUP BY branch, kind, source_id HAVING count(*) > 1) d),
       (SELECT count(*) FROM (SELECT DISTINCT * FROM db_ids EXCEPT SELECT * FROM exp_ids) e),
       (SELECT coalesce(sum(stored), 0) FROM ingest_batches);
EOF
}

bm_assert_exactly_once() {
    local r n
    r=$(bm_count_ids "$1") || fail "exactly-once check: SQL failed: $r"
    n=$(awk '{ print $1 }' <<<"$r")
    note "exactly once: expected stored missing duplicated extra ledger: $r"
    [ "$n" -gt 0 ] || fail "exactly-once check: the expected list $1 is empty"
    assert_eq "records: expected stored missing duplicated extra ledger" "$n $n 0 0 0 $n" "$r"
}

# bm_agent_json NAME FIELD: one number, boolean or (unquoted) string field
# of the agent's status (--json), empty when unavailable.
bm_agent_json() {
    "$BM_AGENT" status -c "$T/$1.conf" --json 2>/dev/null |
        grep -Eo "\"$2\": *(\"[^\"]*\"|[a-z0-9]+)" | head -n 1 | sed -E 's/^[^:]*: *//; s/"//g'
}

# bm_drop_files SRC INBOX [PATTERN]: puts the files of SRC (matching the
# shell PATTERN, default all) into INBOX the way store systems should: copy
# to a dot-file, then rename, so the agent never sees a half-written file.
bm_drop_files() {
    local src=$1 inbox=$2 pat=${3:-*} f n
    mkdir -p "$inbox"
    for f in "$src"/$pat; do
        [ -f "$f" ] || continue
        n=$(basename "$f")
        cp "$f" "$inbox/.$n.part" && mv "$inbox/.$n.part" "$inbox/$n"
    done
}

# bm_delivered NAME DATA_DIR NFILES: true once NFILES files are in done/ of
# DATA_DIR, the inbox and sending/ are empty and the agent's spool has no
# unacknowledged entry.
bm_delivered() {
    local name=$1 dir=$2 nfiles=$3
    [ "$(find "$dir/done" -type f 2>/dev/null | wc -l)" -eq "$nfiles" ] || return 1
    [ -z "$(find "$dir/inbox" "$dir/sending" -type f 2>/dev/null)" ] || return 1
    [ "$(bm_agent_json "$name" spool_entries)" = 0 ]
}

# ------------------------------------------- generated chain data (hw-api)
#
# bm_load_refdata DATAGEN-ARGS...: starts PostgreSQL, creates the schema and
# loads the reference data bm-datagen writes for DATAGEN-ARGS into $T/data
# (no records: for tests that send their own).
bm_load_refdata() {
    bm_pg_start
    "$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
    "$BM_DATAGEN" --out "$T/data" "$@" >/dev/null || fail "bm-datagen failed"
    "$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
        { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
}

# bm_load_generated NBRANCHES DATAGEN-ARGS...: starts PostgreSQL and fills
# it the real way: migrate, bm-datagen --branches NBRANCHES DATAGEN-ARGS
# into $T/data, refdata load, one collector and one agent per branch (B001,
# B002, ...) until every record is stored; then stops them and approves the
# evaluations (they count only once approved, docs/workflow.md).  Sets
# BM_LOADED to the number of records.
bm_load_generated() {
    local n=$1 b i port
    shift
    bm_pg_start
    "$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
    "$BM_DATAGEN" --out "$T/data" --branches "$n" "$@" >/dev/null || fail "bm-datagen failed"
    "$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
        { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
    bm_pick_port port
    start_collector collector "$port"
    for ((i = 1; i <= n; i++)); do
        printf -v b 'B%03d' "$i"
        mkdir -p "$T/agents/$b"
        cp -r "$T/data/$b/inbox" "$T/agents/$b/inbox"
        start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$port"
    done
    BM_LOADED=$(awk 'NR > 1 { n += $3 } END { print n }' "$T/data/expected.tsv")
    bm_all_stored() { [ "$(bm_psql "SELECT coalesce(sum(stored), 0) FROM ingest_batches")" = "$BM_LOADED" ]; }
    wait_until "all $BM_LOADED records are stored" 120 bm_all_stored
    stop_all
    bm_psql "UPDATE evaluations SET review_status = 'approved'" >/dev/null || fail "approving the evaluations"
}
