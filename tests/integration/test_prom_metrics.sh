#!/bin/bash
# test_prom_metrics: the Prometheus metrics of every process during an
# e2e-style run (docs/operations.md): three real agents deliver generated
# exports through a real collector (with metrics_listen) into a real
# PostgreSQL, and branchmark-web runs against the same database.  Every
# page is parsed with python3-prometheus-client's text-format parser
# (tests/python/prom_check.py, which also checks HELP/TYPE, _total and the
# histograms) and its counters are compared with what was sent and what
# SQL finds stored:
#  1. before any agent: the listener answers, counters are 0, 404/405;
#  2. after delivery: records stored per kind = rows per raw table, batches
#     = ledger rows, acks = batches, group commits hold every batch,
#     connected agents = 3; each agent's textfile parses, spool depth 0,
#     connected;
#  3. a file sent again -> receipt duplicates = its lines; an evaluation
#     with an unknown item -> evaluation rejected = 1 (= the ledger);
#  4. an agent's key revoked while connected -> revoked_key cut-off >= 1,
#     that agent's textfile shows refused and a spool depth of 1;
#  5. branchmark-web: logins ok/denied/throttled, lock-outs, sessions and
#     requests per endpoint and status;
#  6. SIGTERM: agents, web and collector exit 0 with the listener up; then
#     connected agents fell to 0, the listener's port is closed and the
#     textfiles say running 0.
# With BM_VALGRIND=1 the agents and the collector run under valgrind;
# BM_PROM_SAMPLES=DIR keeps a page of each kind there.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
CHECK=$BM_SOURCE_DIR/tests/python/prom_check.py
BM_WEB=$BM_BUILD_DIR/collector/branchmark-web
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh)"
[ -x "$BM_WEB" ] || fail "$BM_WEB is not built"
"$PY" -c 'import prometheus_client.parser' 2>/dev/null ||
    fail "Debian's python3-prometheus-client is not installed (scripts/deps.sh)"
BRANCHES=(B001 B002 B003)

# prom FILE CHECK...: prom_check.py on a scraped page (fails the test).
prom() { "$PY" "$CHECK" "$@" || fail "metrics check failed on $1: ${*:2}"; }
# prom_ok FILE CHECK...: the same as a condition (for wait_until).
prom_ok() { "$PY" "$CHECK" "$@" 2>/dev/null; }
# scrape URL FILE: GET URL into FILE, checks status and Content-Type.
scrape() {
    local code
    code=$(curl -s -o "$2" -D "$2.head" -w '%{http_code}' "$1") || return 1
    [ "$code" = 200 ] || return 1
    grep -qi '^content-type: text/plain; version=0.0.4' "$2.head"
}
# scrape_ok URL FILE CHECK...: scrape, then the checks; a condition.
scrape_ok() { scrape "$1" "$2" && prom_ok "$2" "${@:3}"; }

bm_load_refdata --branches 3 --regions 2 --competitors 2 --days 2 --scale 0.2 --seed 7
for b in "${BRANCHES[@]}"; do
    mkdir -p "$T/agents/$b"
    cp -r "$T/data/$b/inbox" "$T/agents/$b/inbox"
done
total=$(awk 'NR > 1 { n += $3 } END { print n }' "$T/data/expected.tsv")
note "generated $total records"

bm_pick_port CPORT
bm_pick_port MPORT
start_collector collector "$CPORT" "metrics_listen = 127.0.0.1:$MPORT"
M=http://127.0.0.1:$MPORT/metrics
wait_until "the collector serves /metrics" 30 scrape "$M" "$T/m0.txt"

# ------------------------------------------------------------ 1. empty

prom "$T/m0.txt" 'branchmark_collector_records_total{kind="receipt",result="stored"}==0' \
    'branchmark_collector_batches_total{result="stored"}==0' \
    'branchmark_collector_connected_agents==0' \
    'branchmark_collector_ack_latency_seconds_count==0'
wait_until "the collector is connected to the database" 30 \
    scrape_ok "$M" "$T/m0.txt" 'branchmark_collector_database_connected==1' \
    'branchmark_collector_refdata_entries{kind="branches"}==3'
assert_eq "GET /other on the metrics listener" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/other")"
assert_eq "POST /metrics" 405 "$(curl -s -o /dev/null -w '%{http_code}' -d x "$M")"

# ------------------------------------------------------------ 2. delivery

for b in "${BRANCHES[@]}"; do
    start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$CPORT" "batch_records = 100"
done
nfiles() { find "$T/agents/$1/$2" -type f 2>/dev/null | wc -l; }
delivered() {
    local b
    for b in "${BRANCHES[@]}"; do
        [ "$(nfiles "$b" done)" -eq "$(ls "$T/data/$b/inbox" | wc -l)" ] || return 1
        [ "$(bm_agent_json "agent-$b" spool_entries)" = 0 ] || return 1
    done
}
wait_until "every file is in done/ and every spool is empty" 120 delivered
assert_eq "stored records (ledger)" "$total" "$(bm_psql "SELECT sum(stored) FROM ingest_batches")"

# Rows per raw table, as the checks of branchmark_collector_records_total.
kind_checks() {
    local result=$1
    bm_psql "SELECT k || '=' || n FROM (VALUES
        ('people_count', (SELECT count(*) FROM people_counts)),
        ('receipt', (SELECT count(*) FROM receipts)),
        ('queue_ticket', (SELECT count(*) FROM queue_tickets)),
        ('phone_call', (SELECT count(*) FROM phone_calls)),
        ('complaint', (SELECT count(*) FROM complaints)),
        ('survey', (SELECT count(*) FROM survey_responses)),
        ('customer_change', (SELECT count(*) FROM customer_changes)),
        ('evaluation', (SELECT count(*) FROM evaluations))) v(k, n)" |
        sed -E "s/^([a-z_]+)=([0-9]+)$/branchmark_collector_records_total{kind=\"\1\",result=\"$result\"}==\2/"
}
mapfile -t STORED < <(kind_checks stored)
[ "${#STORED[@]}" -eq 8 ] || fail "expected 8 record kinds, got ${#STORED[@]}"
batches=$(bm_psql "SELECT count(*) FROM ingest_batches")
# The snapshot is published at the end of the receiver's poll round that
# sent the last ack: wait for it, then check everything on one page.
wait_until "the collector's counters include every batch" 10 \
    scrape_ok "$M" "$T/m1.txt" "branchmark_collector_batches_total{result=\"stored\"}==$batches"
dup_batches=$(prom "$T/m1.txt" 'branchmark_collector_batches_total{result="duplicate"}')
prom "$T/m1.txt" "${STORED[@]}" \
    'branchmark_collector_records_total{kind="receipt",result="duplicate"}==0' \
    'branchmark_collector_records_total{kind="evaluation",result="rejected"}==0' \
    "branchmark_collector_ack_latency_seconds_count==$((batches + dup_batches))" \
    "branchmark_collector_group_commit_batches_sum==$((batches + dup_batches))" \
    'branchmark_collector_group_commit_batches_count>=1' \
    'branchmark_collector_connected_agents==3' \
    'branchmark_collector_zap_handshakes_total{result="accepted"}>=3' \
    'branchmark_collector_zap_handshakes_total{result="refused"}==0' \
    'branchmark_collector_security_refusals_total{reason="revoked_key"}==0' \
    'branchmark_collector_database_reconnects_total==0' \
    'branchmark_collector_errors_total{code="internal"}==0' \
    'branchmark_collector_curve_enabled==1'
note "collector: $batches batches, $total records, $dup_batches resent batches"

for b in "${BRANCHES[@]}"; do
    f=$T/agents/$b/branchmark-agent.prom
    [ -f "$f" ] || fail "$b: no textfile $f"
    [ ! -e "$f.tmp" ] || fail "$b: $f.tmp left behind"
    n=$(awk -v b="$b" '$1 == b { n += $3 } END { print n }' "$T/data/expected.tsv")
    # status.json said so, but it may be the one from before the first file
    # (both files are written at most once a second, together): wait for it.
    wait_until "$b's textfile shows everything acknowledged" 10 prom_ok "$f" \
        "branchmark_agent_records_total{result=\"acknowledged\"}==$n"
    prom "$f" 'branchmark_agent_spool_entries==0' 'branchmark_agent_oldest_unsent_age_seconds==0' \
        'branchmark_agent_connection_state{state="connected"}==1' \
        'branchmark_agent_connection_state{state="refused"}==0' \
        'branchmark_agent_files_stuck==0' 'branchmark_agent_running==1' \
        "branchmark_agent_records_total{result=\"acknowledged\"}==$n" \
        "branchmark_agent_records_total{result=\"spooled\"}==$n" \
        "branchmark_agent_info{agent_id=\"agent-$b\",branch=\"$b\",stream_id=\"$(bm_agent_json "agent-$b" stream_id)\"}==1" \
        'branchmark_agent_last_ack_timestamp_seconds>0'
done

cp "$T/agents/B001/branchmark-agent.prom" "$T/a1.prom"

# ------------------------------------------- 3. duplicates and a refusal

src=$(ls "$T/data/B001/inbox"/receipts_* | head -n 1)
nrec=$(($(wc -l <"$src") - 1))
cp "$src" "$T/again.csv"
bm_drop_files "$T" "$T/agents/B001/inbox" again.csv
mv "$T/agents/B001/inbox/again.csv" "$T/agents/B001/inbox/receipts_20990101.csv"
# One evaluation answering an item its questionnaire does not have: the
# agent cannot know, the collector refuses it (docs/collector.md, step 4).
head -n 1 "$T/data/B002/inbox"/evaluations_* |
    sed -E 's/"source_id":"[^"]*"/"source_id":"E-METRICS-1"/; s/"item":"G1"/"item":"X9"/' >"$T/bad.jsonl"
grep -q '"item":"X9"' "$T/bad.jsonl" || fail "could not make the refused evaluation"
cp "$T/bad.jsonl" "$T/agents/B002/inbox/.evaluations_20990101.jsonl.part"
mv "$T/agents/B002/inbox/.evaluations_20990101.jsonl.part" "$T/agents/B002/inbox/evaluations_20990101.jsonl"
dup_and_reject_done() {
    [ "$(nfiles B001 done)" -eq $(($(ls "$T/data/B001/inbox" | wc -l) + 1)) ] &&
        [ "$(find "$T/agents/B002/rejected" -name '*evaluations_20990101.jsonl' | wc -l)" -eq 1 ] &&
        [ "$(bm_agent_json agent-B001 spool_entries)" = 0 ] &&
        [ "$(bm_agent_json agent-B002 spool_entries)" = 0 ]
}
wait_until "the resent file is done and the refused evaluation rejected" 60 dup_and_reject_done
assert_eq "ledger: duplicates, rejected" "$nrec 1" \
    "$(bm_psql "SELECT sum(duplicates) || ' ' || sum(rejected) FROM ingest_batches")"
batches=$(bm_psql "SELECT count(*) FROM ingest_batches")
wait_until "the collector's counters include the new batches" 10 \
    scrape_ok "$M" "$T/m2.txt" "branchmark_collector_batches_total{result=\"stored\"}==$batches"
mapfile -t STORED < <(kind_checks stored)
prom "$T/m2.txt" "${STORED[@]}" \
    "branchmark_collector_records_total{kind=\"receipt\",result=\"duplicate\"}==$nrec" \
    'branchmark_collector_records_total{kind="evaluation",result="rejected"}==1' \
    'branchmark_collector_records_total{kind="receipt",result="rejected"}==0'
wait_until "B002's textfile shows the refused record" 10 prom_ok "$T/agents/B002/branchmark-agent.prom" \
    'branchmark_agent_records_total{result="refused"}==1'
prom "$T/agents/B002/branchmark-agent.prom" 'branchmark_agent_records_total{result="refused"}==1' \
    'branchmark_agent_records_total{result="deadlettered"}==1' 'branchmark_agent_spool_entries==0'
note "duplicates ($nrec receipts) and the refused evaluation are counted"

# ------------------------------------------- 4. a revoked key is cut off

"$BM_TOOL" agent revoke --agent agent-B003 --db "$BM_DB" >"$T/revoke.log" 2>&1 ||
    { cat "$T/revoke.log"; fail "agent revoke"; }
# Its next heartbeat (every second) after the key check's cache (3 s) is
# refused; only then is a new file sent, which must wait in the spool.
wait_until "the revoked agent is cut off" 60 \
    scrape_ok "$M" "$T/m3.txt" 'branchmark_collector_security_refusals_total{reason="revoked_key"}>=1'
src=$(ls "$T/data/B003/inbox"/calls_* | head -n 1)
sed -E '2,$ s/^([^,]*),/\1-again,/' "$src" >"$T/calls.csv"
bm_drop_files "$T" "$T/agents/B003/inbox" calls.csv
mv "$T/agents/B003/inbox/calls.csv" "$T/agents/B003/inbox/calls_20990101.csv"
wait_until "agent-B003's textfile shows it refused" 30 prom_ok "$T/agents/B003/branchmark-agent.prom" \
    'branchmark_agent_connection_state{state="refused"}==1' 'branchmark_agent_spool_entries==1'
prom "$T/m3.txt" 'branchmark_collector_errors_total{code="forbidden"}>=1'
note "revoked key: cut off and counted"

# ------------------------------------------------------------ 5. the web

PW=prom-web-secret-1
BM_USER_PASSWORD=$PW "$BM_TOOL" user add prom_web --role hq --db "$BM_DB" >"$T/user.log" 2>&1 ||
    { cat "$T/user.log"; fail "user add prom_web"; }
printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$T/pg/data/pg_hba.conf"
bm_psql "SELECT pg_reload_conf()" >/dev/null
bm_pick_port WPORT
cat >"$T/web.conf" <<EOF
database = "host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark"
listen_address = 127.0.0.1
port = $WPORT
static_dir = $T
max_failed_logins = 3
log_level = info
EOF
bm_run_bg web "$BM_WEB" -c "$T/web.conf"
W=http://127.0.0.1:$WPORT
wait_until "branchmark-web answers /api/health" 30 curl -sf "$W/api/health"
login() {
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"user\": \"prom_web\", \"password\": \"$1\"}" "$W/api/login"
}
assert_eq "good login" 200 "$(login "$PW")"
for i in 1 2 3; do assert_eq "wrong login $i" 401 "$(login wrong-$i)"; done
assert_eq "login during the lock-out" 429 "$(login "$PW")"
assert_eq "an unknown API path" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$W/api/nothing")"
scrape "$W/metrics" "$T/w1.txt" || fail "branchmark-web /metrics: $(cat "$T/w1.txt")"
prom "$T/w1.txt" 'branchmark_web_logins_total{result="ok"}==1' \
    'branchmark_web_logins_total{result="denied"}==3' \
    'branchmark_web_logins_total{result="throttled"}==1' \
    'branchmark_web_logins_total{result="unavailable"}==0' \
    'branchmark_web_login_lockouts_total>=1' 'branchmark_web_sessions==1' \
    'branchmark_web_requests_total{endpoint="/api/login",status="200"}==1' \
    'branchmark_web_requests_total{endpoint="/api/login",status="401"}==3' \
    'branchmark_web_requests_total{endpoint="/api/login",status="429"}==1' \
    'branchmark_web_requests_total{endpoint="unknown",status="404"}==1' \
    'branchmark_web_requests_total{endpoint="/api/health",status="200"}>=1' \
    'branchmark_web_database_up==1'
scrape "$W/metrics" "$T/w2.txt" || fail "branchmark-web /metrics (second scrape)"
prom "$T/w2.txt" 'branchmark_web_requests_total{endpoint="/metrics",status="200"}==1'
assert_eq "POST /metrics on the web" 405 "$(curl -s -o /dev/null -w '%{http_code}' -d x "$W/metrics")"
note "web: logins, lock-outs, sessions and requests are counted"

# ------------------------------------------------------------ 6. shutdown

for b in "${BRANCHES[@]}"; do stop_proc "agent-$b" || fail "agent-$b did not stop cleanly"; done
wait_until "connected agents fall to 0" 30 scrape_ok "$M" "$T/m4.txt" 'branchmark_collector_connected_agents==0'
stop_proc web || fail "branchmark-web did not stop cleanly"
stop_proc collector || fail "the collector did not stop cleanly with the metrics listener"
grep -q 'msg="stopped"' "$T/collector.log" || fail "the collector did not log stopped"
if curl -s -o /dev/null "$M"; then fail "the metrics port still answers after the collector stopped"; fi
for b in "${BRANCHES[@]}"; do
    prom "$T/agents/$b/branchmark-agent.prom" 'branchmark_agent_running==0' \
        'branchmark_agent_connection_state{state="disconnected"}==1'
done
note "sample of the collector's page:"
grep -E '^branchmark_collector_(records_total\{kind="receipt"|batches_total|connected_agents|ack_latency_seconds_count)' \
    "$T/m2.txt" | sed 's/^/    /'
# BM_PROM_SAMPLES=DIR keeps the pages (docs/operations.md shows them).
if [ -n "${BM_PROM_SAMPLES:-}" ]; then
    mkdir -p "$BM_PROM_SAMPLES"
    cp "$T/m2.txt" "$BM_PROM_SAMPLES/collector.txt"
    cp "$T/w2.txt" "$BM_PROM_SAMPLES/web.txt"
    cp "$T/a1.prom" "$BM_PROM_SAMPLES/agent.prom"
fi
