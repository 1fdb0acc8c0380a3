#!/bin/bash
# demo.sh: the whole system end to end on one machine, from a fresh checkout.
#
#   ./scripts/demo.sh [--keep]
#
# Installs what is missing, builds into build/, starts a throwaway
# PostgreSQL in var/demo/pg (port 54320, Unix socket only), creates the
# schema, generates a month of exports for 12 branches in 3 regions and 6
# competitor outlets (fixed seed), loads the reference data, starts one
# collector and one agent per branch, waits until every export file is
# acknowledged, prints the per-branch summary, a regional ranking, a
# scorecard and the competitor gaps, starts the HQ dashboard (branchmark-web)
# and prints its URL and logins, then stops everything again (after Enter
# when run on a terminal).
# --keep leaves PostgreSQL and the dashboard running and prints how to
# connect.  BM_DEMO_WEB_PORT changes the dashboard's port (8480).
# Re-runnable: var/demo is wiped first.  Owns var/demo/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"

KEEP=0
for arg in "$@"; do
    case "$arg" in
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "demo.sh: unknown argument \"$arg\" (try --help)" >&2
        exit 2
        ;;
    esac
done

DEMO=$ROOT/var/demo
BUILD=$ROOT/build
PG_PORT=54320
COLLECTOR_EP=tcp://127.0.0.1:55550
WEB_PORT=${BM_DEMO_WEB_PORT:-8480}
BRANCHES=12
REGIONS=3
COMPETITORS=6
DAYS=30
SEED=42
DEADLINE_S=${BM_DEMO_DEADLINE:-900}

START_NS=$(date +%s%N)
elapsed() { echo $((($(date +%s%N) - START_NS) / 1000000)) | awk '{printf "%.1f s", $1 / 1000}'; }
step() { printf '\n== %s  [%s]\n' "$*" "$(elapsed)"; }
die() {
    echo "demo.sh: $*" >&2
    exit 1
}

declare -A PIDS=()
PG_UP=0
DONE_OK=0

cleanup() {
    local rc=$?
    set +e
    # Agents first, then the collector, so nothing is left half-sent.
    local name
    # With --keep the dashboard stays up beside PostgreSQL.
    if [ $KEEP -eq 1 ] && [ $DONE_OK -eq 1 ]; then
        unset 'PIDS[web]'
    fi
    for name in "${!PIDS[@]}"; do
        [ "$name" = collector ] || kill -TERM "${PIDS[$name]}" 2>/dev/null
    done
    for name in "${!PIDS[@]}"; do
        [ "$name" = collector ] || wait "${PIDS[$name]}" 2>/dev/null
    done
    if [ -n "${PIDS[collector]:-}" ]; then
        kill -TERM "${PIDS[collector]}" 2>/dev/null
        wait "${PIDS[collector]}" 2>/dev/null
    fi
    if [ $DONE_OK -eq 0 ]; then
        echo >&2
        echo "demo.sh: FAILED after $(elapsed); logs are in $DEMO/logs/" >&2
        for f in "$DEMO"/logs/collector.log "$DEMO"/logs/agent-B001.log; do
            [ -f "$f" ] || continue
            echo "----- last lines of $f -----" >&2
            tail -n 15 "$f" >&2
        done
    fi
    if [ $PG_UP -eq 1 ]; then
        if [ $KEEP -eq 1 ] && [ $DONE_OK -eq 1 ]; then
            :
        else
            "$ROOT/scripts/pg.sh" stop "$DEMO/pg" >/dev/null 2>&1
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ set up

step "checking packages (scripts/deps.sh)"
"$ROOT/scripts/deps.sh"

step "building into build/"
mkdir -p "$BUILD"
if ! "$ROOT/scripts/build.sh" "$BUILD" >"$BUILD/demo-build.log" 2>&1; then
    tail -n 40 "$BUILD/demo-build.log" >&2
    die "build failed (full log: $BUILD/demo-build.log)"
fi
AGENT=$BUILD/agent/branchmark-agent
COLLECTOR=$BUILD/collector/branchmark-collector
BM=$BUILD/collector/branchmark
WEB=$BUILD/collector/branchmark-web
DATAGEN=$BUILD/bench/bm-datagen

step "starting PostgreSQL in var/demo/pg (port $PG_PORT)"
# A previous run (--keep, or interrupted) may have left its server running.
"$ROOT/scripts/pg.sh" stop "$DEMO/pg" >/dev/null 2>&1 || true
if (exec 3<>/dev/tcp/127.0.0.1/${COLLECTOR_EP##*:}) 2>/dev/null; then
    die "something already listens on $COLLECTOR_EP (a collector from an earlier demo?); stop it first"
fi
rm -rf "$DEMO"
mkdir -p "$DEMO/logs" "$DEMO/agents"
"$ROOT/scripts/pg.sh" start "$DEMO/pg" "$PG_PORT"
PG_UP=1
export PGHOST=$DEMO/pg/sock PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=postgres
# pg.sh's cluster trusts every local connection: any local user could log
# in as the superuser.  Even for the demo, only the OS user running it may
# be the superuser (peer, mapped to postgres); everyone else, the collector
# included, needs a password (SCRAM).
printf 'demo %s postgres\n' "$(id -un)" >"$DEMO/pg/data/pg_ident.conf"
printf 'local all postgres peer map=demo\nlocal all all scram-sha-256\n' >"$DEMO/pg/data/pg_hba.conf"
psql -X -q -v ON_ERROR_STOP=1 -c 'SELECT pg_reload_conf()' >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -c 'SELECT 1' >/dev/null ||
    die "cannot connect as postgres through peer authentication after tightening pg_hba.conf"
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE branchmark' >/dev/null
export PGDATABASE=branchmark
DB="host=$DEMO/pg/sock port=$PG_PORT dbname=branchmark user=postgres"

step "creating the schema (branchmark migrate)"
"$BM" migrate --db "$DB"

step "generating $DAYS days of exports for $BRANCHES branches, $REGIONS regions, $COMPETITORS competitors"
"$DATAGEN" --out "$DEMO/data" --branches $BRANCHES --regions $REGIONS \
    --competitors $COMPETITORS --days $DAYS --seed $SEED

step "loading reference data (branchmark refdata load)"
"$BM" refdata load --db "$DB" "$DEMO/data/refdata.json"

# ----------------------------------------------------------------- run

step "security: CURVE keys, enrolled agents, a least-privilege collector login (docs/security.md)"
mkdir -p "$DEMO/keys"
chmod 700 "$DEMO/keys"
"$BM" keygen --out "$DEMO/keys/collector" >/dev/null
# The collector's own login: ingest only.  Its password is never on a
# command line nor in the config: the collector reads it from a passfile
# (mode 0600) named by PGPASSFILE.
COLLECTOR_PW=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
BM_USER_PASSWORD=$COLLECTOR_PW "$BM" user add bm_collector --role collector --db "$DB"
(umask 077 && printf '%s:%s:branchmark:bm_collector:%s\n' "$DEMO/pg/sock" "$PG_PORT" "$COLLECTOR_PW" \
    >"$DEMO/collector.pgpass")
COLLECTOR_DB="host=$DEMO/pg/sock port=$PG_PORT dbname=branchmark user=bm_collector"

step "starting the collector on $COLLECTOR_EP"
cat >"$DEMO/collector.conf" <<EOF
# Written by scripts/demo.sh.
listen = $COLLECTOR_EP
database = "$COLLECTOR_DB"
migrate_on_start = false
curve_secret_key_file = $DEMO/keys/collector.key
status_file = $DEMO/collector.status.json
log_level = info
EOF
PGPASSFILE=$DEMO/collector.pgpass "$COLLECTOR" -c "$DEMO/collector.conf" >"$DEMO/logs/collector.log" 2>&1 &
PIDS[collector]=$!

CODES=()
TOTAL_FILES=0
for dir in "$DEMO"/data/B*/; do
    code=$(basename "$dir")
    CODES+=("$code")
    mkdir -p "$DEMO/agents/$code"
    mv "$dir/inbox" "$DEMO/agents/$code/inbox"
    TOTAL_FILES=$((TOTAL_FILES + $(find "$DEMO/agents/$code/inbox" -type f | wc -l)))
    "$BM" keygen --out "$DEMO/keys/agent-$code" >/dev/null
    "$BM" agent enroll --agent "agent-$code" --branch "$code" --key "$DEMO/keys/agent-$code.pub" \
        --db "$DB" >/dev/null
    cat >"$DEMO/agents/$code.conf" <<EOF
# Written by scripts/demo.sh.
agent_id = agent-$code
branch = $code
collector = $COLLECTOR_EP
data_dir = $DEMO/agents/$code
inbox_settle = 0
scan_interval = 500ms
log_level = info
curve_secret_key_file = $DEMO/keys/agent-$code.key
collector_public_key = $DEMO/keys/collector.pub
EOF
done
TOTAL_RECORDS=$(awk 'NR > 1 { n += $3 } END { print n }' "$DEMO/data/expected.tsv")

step "starting ${#CODES[@]} agents ($TOTAL_FILES files, $TOTAL_RECORDS records in their inboxes)"
for code in "${CODES[@]}"; do
    "$AGENT" -c "$DEMO/agents/$code.conf" >"$DEMO/logs/agent-$code.log" 2>&1 &
    PIDS[agent-$code]=$!
done

# One number from an agent's status.json ("key": N).
status_num() {
    grep -Eo "\"$2\": *[0-9]+" "$DEMO/agents/$1/status.json" 2>/dev/null | grep -Eo '[0-9]+$' || echo -1
}

step "waiting until every file is acknowledged (deadline ${DEADLINE_S} s)"
wait_start=$SECONDS
last_print=-100
while :; do
    for name in "${!PIDS[@]}"; do
        kill -0 "${PIDS[$name]}" 2>/dev/null || die "$name exited unexpectedly (log: $DEMO/logs/)"
    done
    done_files=0 rejected_files=0 inbox_files=0 spooled=0
    for code in "${CODES[@]}"; do
        a=$DEMO/agents/$code
        n=$(find "$a/done" -type f 2>/dev/null | wc -l)
        done_files=$((done_files + n))
        n=$(find "$a/rejected" -type f ! -name '*.errors' 2>/dev/null | wc -l)
        rejected_files=$((rejected_files + n))
        n=$(find "$a/inbox" -type f 2>/dev/null | wc -l)
        inbox_files=$((inbox_files + n))
        s=$(status_num "$code" spool_entries)
        [ "$s" -lt 0 ] && s=1
        spooled=$((spooled + s))
    done
    finished=$((done_files + rejected_files))
    if [ $((SECONDS - last_print)) -ge 2 ] || { [ $finished -ge "$TOTAL_FILES" ] && [ $spooled -eq 0 ]; }; then
        printf '   %4d s  files done %d/%d, rejected %d, still in inboxes %d; batches waiting for an ack %d\n' \
            $((SECONDS - wait_start)) "$done_files" "$TOTAL_FILES" "$rejected_files" "$inbox_files" "$spooled"
        last_print=$SECONDS
    fi
    if [ $finished -ge "$TOTAL_FILES" ] && [ $spooled -eq 0 ]; then
        break
    fi
    if [ $((SECONDS - wait_start)) -ge "$DEADLINE_S" ]; then
        die "not finished after $DEADLINE_S s"
    fi
    sleep 0.5
done
[ "$rejected_files" -eq 0 ] || echo "   note: $rejected_files file(s) had bad lines; see var/demo/agents/*/rejected/*.errors"

# Stored records against what the generator wrote.
stored=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -c "SELECT coalesce(sum(stored), 0) FROM ingest_batches")
echo "   records stored: $stored of $TOTAL_RECORDS generated"
if [ "$stored" != "$TOTAL_RECORDS" ] && [ "$rejected_files" -eq 0 ]; then
    echo "   WARNING: the database does not hold every generated record (see $DEMO/logs/)"
fi

step "stopping agents and collector (SIGTERM)"
for code in "${CODES[@]}"; do
    kill -TERM "${PIDS[agent-$code]}"
done
for code in "${CODES[@]}"; do
    rc=0
    wait "${PIDS[agent-$code]}" || rc=$?
    unset "PIDS[agent-$code]"
    [ $rc -eq 0 ] || echo "   warning: agent $code exited with status $rc"
done
kill -TERM "${PIDS[collector]}"
rc=0
wait "${PIDS[collector]}" || rc=$?
unset "PIDS[collector]"
[ $rc -eq 0 ] || echo "   warning: the collector exited with status $rc"

# ----------------------------------------------------------------- report

HELP=$("$BM" --help 2>&1 || true)
has_cmd() { grep -Eq "^  $1 " <<<"$HELP"; }
# Runs a report command if the tool has it and it works; a note otherwise.
report() {
    local title=$1 cmd=$2
    shift 2
    step "$title"
    echo "\$ branchmark $cmd $*"
    if ! has_cmd "$cmd"; then
        echo "(skipped: this build of branchmark has no \"$cmd\" command)"
        return 0
    fi
    local rc=0
    "$BM" "$cmd" --db "$DB" "$@" || rc=$?
    [ $rc -eq 0 ] || echo "(branchmark $cmd exited with status $rc)"
}

# refdata.json lists the chain's code first, then the regions'.
FIRST_REGION=$(grep -Eo '"code": *"[^"]*"' "$DEMO/data/refdata.json" | sed -n '2s/.*: *"\(.*\)"/\1/p')
# The data ends yesterday: the month holding yesterday is the last month
# with data (named explicitly with --at rather than left to the default).
LAST_DAY=$(date -u -d yesterday +%Y-%m-%d)
LAST_MONTH=${LAST_DAY%-*}

# ---------------------------------------------------- evaluation workflow
# Shopper evaluations arrive 'received' and count only once approved
# (docs/workflow.md).  A reviewer approves the unflagged ones, rejects one
# flagged, holds one and leaves a few pending; a branch's appeal is upheld.
if has_cmd review; then
    step "evaluation workflow: review, approve, appeal (docs/workflow.md)"
    q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
    echo "\$ branchmark review list --limit 6   (flags are computed when listed)"
    "$BM" review list --limit 6 --db "$DB" || echo "(review list failed)"
    echo "\$ branchmark review approve --unflagged"
    "$BM" review approve --unflagged --comment "checked, no flags" --db "$DB" || echo "(approve failed)"
    mapfile -t FLAGGED < <(q "SELECT id FROM evaluations WHERE review_status = 'received' ORDER BY id")
    n=${#FLAGGED[@]}
    if [ "$n" -ge 2 ]; then
        "$BM" review reject "${FLAGGED[0]}" --comment "receipt does not match the visit" --db "$DB"
        "$BM" review hold "${FLAGGED[1]}" --comment "asked the shopper for the photos" --db "$DB"
    fi
    if [ "$n" -gt 5 ]; then
        # Flagged, but checked one by one and found fine; three stay pending.
        "$BM" review approve "${FLAGGED[@]:2:$((n - 5))}" --comment "flag checked" --db "$DB" >/dev/null &&
            echo "approved $((n - 5)) flagged evaluation(s) after a check; 3 stay pending"
    fi
    # The appeal: the weakest approved visit of the month in the first region
    # (of a branch that stays ranked without it, when there is one).
    read -r AP_EVAL AP_BRANCH AP_ITEM < <(q "SELECT e.id, b.code, coalesce((SELECT a.item_code
            FROM evaluation_answers a JOIN questionnaire_items i ON i.questionnaire_id = a.questionnaire_id
             AND i.code = a.item_code WHERE a.evaluation_id = e.id AND a.points < i.max_points
           ORDER BY i.position LIMIT 1), (SELECT min(item_code) FROM evaluation_answers WHERE evaluation_id = e.id))
          FROM evaluations e JOIN branches b ON b.id = e.outlet_branch_id JOIN regions r ON r.id = b.region_id
          JOIN evaluation_scores s ON s.evaluation_id = e.id
         WHERE e.review_status = 'approved' AND r.code = '$FIRST_REGION' AND s.overall IS NOT NULL
           AND to_char(e.visited_at, 'YYYY-MM') = '$LAST_MONTH'
         ORDER BY (SELECT count(*) FROM evaluations e2 WHERE e2.outlet_branch_id = e.outlet_branch_id
                      AND e2.review_status = 'approved'
                      AND to_char(e2.visited_at, 'YYYY-MM') = '$LAST_MONTH') >= 4 DESC,
                  s.overall, e.id LIMIT 1" | tr '|' ' ')
    if [ -n "${AP_EVAL:-}" ]; then
        rank_line() {
            "$BM" rank --region "$FIRST_REGION" --metric ms_score --period month --at "$LAST_DAY" \
                --format csv --db "$DB" | tr -d '\r' | awk -F, -v b="$AP_BRANCH" \
                '$3 == b { printf "rank %s, ms_score %s (n %s)\n", ($1 == "" ? "-" : $1), $6, $7 }'
        }
        echo "before the appeal, $AP_BRANCH: $(rank_line)"
        echo "\$ branchmark appeal file $AP_EVAL --items $AP_ITEM --reason ..."
        AP_OUT=$("$BM" appeal file "$AP_EVAL" --items "$AP_ITEM" \
                     --reason "the visit fell in a fire drill" --db "$DB") || AP_OUT=""
        echo "$AP_OUT"
        AP_ID=$(sed -n 's/^appeal \([0-9]*\) filed.*/\1/p' <<<"$AP_OUT")
        if [ -n "$AP_ID" ]; then
            echo "\$ branchmark appeal answer $AP_ID --uphold --void --comment ..."
            "$BM" appeal answer "$AP_ID" --uphold --void --comment "drill confirmed by the log" --db "$DB"
            echo "after the appeal,  $AP_BRANCH: $(rank_line)"
        fi
    fi
    echo "\$ branchmark review list   (pending: received and on hold)"
    "$BM" review list --db "$DB" | head -12
fi

report "per-branch summary" summary
# The last complete month (--last): the running one is partial, and a
# partial period is marked and never tested (docs/metrics.md).
COMPLETE_MONTH=$(date -u -d "$(date -u +%Y-%m-01) -1 day" +%Y-%m)
report "ranking in region $FIRST_REGION on the mystery-shopping score, last complete month ($COMPLETE_MONTH)" \
    rank --region "$FIRST_REGION" --metric ms_score --period month --last
report "scorecard of B001" scorecard B001
report "branches against competitors" competitors

# ------------------------------------------------------ chain yardstick
# Regional and branch logins see the real chain line and each own branch's
# chain-wide rank range (docs/security.md, migration 011); the ranges are
# computed by an HQ-level login with the report's own rule and stored.
step "chain-wide rank positions for scoped logins (branchmark yardstick refresh)"
"$BM" yardstick refresh --db "$DB" | grep -E '^(ms_score|nps) month' || true

# ------------------------------------------------------------- dashboard
# The HQ dashboard: branchmark-web serves the page and the JSON API; people
# log in with their own PostgreSQL users, so row-level security decides what
# each sees (docs/api.md).  An HQ login and a regional manager's login of
# the first region; PostgreSQL checks their passwords (SCRAM, pg_hba.conf
# above).
step "starting the HQ dashboard (branchmark-web on 127.0.0.1:$WEB_PORT)"
if (exec 3<>/dev/tcp/127.0.0.1/$WEB_PORT) 2>/dev/null; then
    die "something already listens on 127.0.0.1:$WEB_PORT (a dashboard from an earlier demo --keep?); stop it first"
fi
if ! "$ROOT/scripts/web-vendor.sh" "$BUILD" >"$DEMO/logs/web-vendor.log" 2>&1; then
    tail -n 20 "$DEMO/logs/web-vendor.log" >&2
    die "scripts/web-vendor.sh failed (log: $DEMO/logs/web-vendor.log)"
fi
REGIONAL_USER=demo_${FIRST_REGION,,}
HQ_PW=$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')
REG_PW=$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')
BM_USER_PASSWORD=$HQ_PW "$BM" user add demo_hq --role hq --db "$DB" >/dev/null
BM_USER_PASSWORD=$REG_PW "$BM" user add "$REGIONAL_USER" --role regional --region "$FIRST_REGION" \
    --db "$DB" >/dev/null
(umask 077 && printf 'demo_hq %s\n%s %s\n' "$HQ_PW" "$REGIONAL_USER" "$REG_PW" >"$DEMO/web-logins.txt")
cat >"$DEMO/web.conf" <<EOF
# Written by scripts/demo.sh; every key: branchmark-web --help.
database = "host=$DEMO/pg/sock port=$PG_PORT dbname=branchmark"
listen_address = 127.0.0.1
port = $WEB_PORT
static_dir = $BUILD/web
log_level = info
EOF
"$WEB" -c "$DEMO/web.conf" >"$DEMO/logs/web.log" 2>&1 &
PIDS[web]=$!
WEB_URL=http://127.0.0.1:$WEB_PORT
web_up() { curl -fsS "$WEB_URL/api/health" >/dev/null 2>&1; }
for _ in $(seq 1 100); do
    web_up && break
    kill -0 "${PIDS[web]}" 2>/dev/null || die "branchmark-web exited (log: $DEMO/logs/web.log)"
    sleep 0.1
done
web_up || die "branchmark-web does not answer on $WEB_URL (log: $DEMO/logs/web.log)"
# The API answers what the CLI prints: the regional manager logs in and
# fetches the region's ranking, as the page does.
echo "\$ curl '$WEB_URL/api/rank?metric=ms_score&period=month&last=1&format=csv'   (as $REGIONAL_USER)"
COOKIES=$DEMO/web-cookies.txt
curl -fsS -c "$COOKIES" -H 'Content-Type: application/json' \
    -d "{\"user\": \"$REGIONAL_USER\", \"password\": \"$REG_PW\"}" "$WEB_URL/api/login" >/dev/null ||
    die "logging in to the dashboard as $REGIONAL_USER failed (log: $DEMO/logs/web.log)"
curl -fsS -b "$COOKIES" "$WEB_URL/api/rank?metric=ms_score&period=month&last=1&format=csv" ||
    die "the dashboard's ranking API failed (log: $DEMO/logs/web.log)"
rm -f "$COOKIES"
cat <<EOF

Dashboard: $WEB_URL/
  log in as demo_hq (password $HQ_PW) to see the whole chain,
  or as $REGIONAL_USER (password $REG_PW) to see region $FIRST_REGION only
  (the logins are also in $DEMO/web-logins.txt)
EOF

step "closing the loop: an action from the first alert, marked done, and its follow-up (docs/actions.md)"
# A month of data has no six earlier months to compare with: days do.
ALERT=$("$BM" alerts --period day --db "$DB" --format csv | tr -d '\r' | awk -F, 'NR == 2 { print $1 "," $3; exit }')
if [ -n "$ALERT" ]; then
    A_BRANCH=${ALERT%%,*}
    A_METRIC=${ALERT#*,}
    A_DUE=$(psql -X -A -t -q -d "$DB" -c "SELECT (now() AT TIME ZONE bm_chain_timezone())::date + 14")
    A_EFF=$(psql -X -A -t -q -d "$DB" -c "SELECT (now() AT TIME ZONE bm_chain_timezone())::date - $DAYS / 2")
    A_ID=$("$BM" action open --db "$DB" --branch "$A_BRANCH" --metric "$A_METRIC" --owner branch --period week \
           --what "coach the team on the alert's likely causes" --due "$A_DUE" --source alert \
           --format csv | tr -d '\r' | awk -F, 'NR == 2 { print $1 }')
    "$BM" action update "$A_ID" --db "$DB" --status in_progress --comment "team briefed" >/dev/null
    "$BM" action close "$A_ID" --db "$DB" --done --effective "$A_EFF" --comment "coaching done" >/dev/null
    "$BM" action show "$A_ID" --db "$DB" --periods 2
else
    echo "(no alert in the demo data: no action opened)"
fi

DONE_OK=1
step "done"
echo "elapsed: $(elapsed)"
if [ $KEEP -eq 1 ]; then
    cat <<EOF
PostgreSQL and the dashboard keep running (--keep):
    dashboard  $WEB_URL/   (logins in $DEMO/web-logins.txt)
    psql "host=$DEMO/pg/sock port=$PG_PORT dbname=branchmark user=postgres"
    $BM summary --db "host=$DEMO/pg/sock port=$PG_PORT dbname=branchmark user=postgres"
Stop them with:
    kill ${PIDS[web]}; ./scripts/pg.sh stop var/demo/pg
EOF
elif [ -t 0 ] && [ -t 1 ]; then
    echo "The dashboard stays up at $WEB_URL/ until you press Enter (or run with --keep)."
    read -r _ || true
fi
