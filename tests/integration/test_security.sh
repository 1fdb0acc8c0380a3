#!/bin/bash
# test_security: only enrolled agents get in, each writes only its own
# branch, a regional manager sees only its region (docs/security.md).
#  1. The collector runs as a least-privilege login (branchmark user add
#     --role collector) and an enrolled agent's data (all eight kinds, so
#     every rollup trigger runs) is stored through it.
#  2. Refused, nothing written, a `security:` log line and a counter each:
#     an agent whose key is not enrolled; a plaintext client (no reply at
#     all); a valid key sending another branch's envelope; a valid key
#     claiming another agent id; a key revoked while its agent is connected
#     (cut off within 10 s, measured) and refused again on reconnect.
#  3. A secret key file with mode 0644 stops collector and agent at start.
#  4. A regional login sees its region's branches only (raw rows, rollups,
#     `branchmark scorecard`); the collector login cannot read access_scopes
#     nor change reference data.
source "$(dirname "$0")/lib.sh"

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 3 --regions 2 --competitors 1 --days 1 --scale 0.05 >/dev/null ||
    fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }
# B001 and B003 are in NORTH, B002 in SOUTH.
assert_eq "regions of the generated branches" "B001 NORTH,B002 SOUTH,B003 NORTH" \
    "$(bm_psql "SELECT string_agg(b.code || ' ' || r.code, ',' ORDER BY b.code) FROM branches b JOIN regions r ON r.id = b.region_id")"

# ------------------------------------------------------- users

BM_USER_PASSWORD=ingest-secret-1 "$BM_TOOL" user add bm_ingest --role collector --db "$BM_DB" \
    >"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add bm_ingest"; }
echo north-secret-1 | "$BM_TOOL" user add north_mgr --role regional --region NORTH --db "$BM_DB" \
    >>"$T/user.log" 2>&1 || { cat "$T/user.log"; fail "user add north_mgr"; }
if grep -q "secret-1" "$T/user.log"; then fail "a password was printed"; fi
"$BM_TOOL" user list --db "$BM_DB" >"$T/users.txt" || fail "user list"
grep -Eq '^north_mgr +regional +NORTH' "$T/users.txt" || fail "user list: $(cat "$T/users.txt")"
grep -Eq '^bm_ingest +collector' "$T/users.txt" || fail "user list: $(cat "$T/users.txt")"
rc=0
BM_USER_PASSWORD=whatever-1 "$BM_TOOL" user add x_mgr --role regional --db "$BM_DB" >/dev/null 2>&1 || rc=$?
assert_eq "regional without --region is a usage error" 2 "$rc"

ADMIN_DB=$BM_DB
INGEST_DB="host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark user=bm_ingest"
NORTH_DB="host=$T/pg/sock port=$BM_PG_PORT dbname=branchmark user=north_mgr"

# ------------------------------------------------------- 3. key file modes

bm_keypair collector
cp "$T/keys/collector.key" "$T/keys/loose.key"
chmod 644 "$T/keys/loose.key"
cat >"$T/loose.conf" <<EOF
listen = tcp://127.0.0.1:1
database = "$INGEST_DB"
curve_secret_key_file = $T/keys/loose.key
EOF
rc=0
timeout 20 "$BM_COLLECTOR" -c "$T/loose.conf" >"$T/loose.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "collector with a 0644 key: exit status $rc"
grep -q 'secret key file .*loose.key.* is readable by others (mode 0644); chmod 600 it' "$T/loose.log" ||
    fail "collector with a 0644 key: $(cat "$T/loose.log")"
note "collector refuses a 0644 secret key: $(grep -o 'secret key file.*it' "$T/loose.log" | head -n 1)"

# ------------------------------------------------------- 1. collector as bm_ingest

bm_pick_port CPORT
EP=tcp://127.0.0.1:$CPORT
bm_enroll rawtest B001   # as the admin: the collector's login may not enroll
BM_DB=$INGEST_DB start_collector collector "$CPORT" "migrate_on_start = false" "stats_interval = 1s"
BM_DB=$ADMIN_DB
grep -q 'CURVE on' "$T/collector.log" || fail "the collector did not start with CURVE"

mkdir -p "$T/a1"
cp -r "$T/data/B001/inbox" "$T/a1/inbox"
nfiles=$(ls "$T/a1/inbox" | wc -l)
start_agent agent-B001 B001 "$T/a1" "$EP"
wait_until "agent-B001 delivered its $nfiles files" 60 bm_delivered agent-B001 "$T/a1" "$nfiles"
bm_expected_ids "$T/b001.ids" "$T/data" B001
exp=$(wc -l <"$T/b001.ids")
got=$(bm_psql "SELECT (SELECT count(*) FROM people_counts) + (SELECT count(*) FROM receipts) + (SELECT count(*) FROM queue_tickets) + (SELECT count(*) FROM phone_calls) + (SELECT count(*) FROM complaints) + (SELECT count(*) FROM survey_responses) + (SELECT count(*) FROM customer_changes) + (SELECT count(*) FROM evaluations)")
[ "$exp" -gt 0 ] || fail "no expected records for B001"
assert_eq "records stored through the least-privilege collector" "$exp" "$got"
assert_eq "rollups are maintained under the collector role" 0 \
    "$(bm_psql "SELECT coalesce(sum(only_incremental + only_full), 0) FROM bm_rollups_check()")"
[ "$(bm_psql "SELECT count(*) FROM evaluation_scores")" -gt 0 ] || fail "no evaluation was scored"

# ------------------------------------------------------- 2. refusals

# agent_state NAME: the agent's connection state ("agent status" exits 3
# when refused, so its status is not used).
agent_state() {
    local out
    out=$("$BM_AGENT" status -c "$T/$1.conf" --json 2>/dev/null) || true
    grep -Eo '"state": *"[a-z]+"' <<<"$out" | head -n 1 | sed -E 's/^[^:]*: *//; s/"//g'
}
agent_text() { "$BM_AGENT" status -c "$T/$1.conf" 2>&1 || true; }

count_all() {
    bm_psql "SELECT (SELECT count(*) FROM receipts) + (SELECT count(*) FROM ingest_batches)"
}
before=$(count_all)

# a. a key that is not enrolled
mkdir -p "$T/rogue/inbox"
cp "$T/data/B001/inbox"/receipts_* "$T/rogue/inbox/"
BM_ENROLL=0 start_agent agent-rogue B001 "$T/rogue" "$EP"
rogue_refused() { [ "$(agent_state agent-rogue)" = refused ]; }
wait_until "the unenrolled agent is refused" 30 rogue_refused
agent_text agent-rogue | grep -q "collector refused this agent's key (not enrolled or revoked)" ||
    fail "unenrolled agent's status: $(agent_text agent-rogue)"
grep -q "security: refused key .* not enrolled or revoked" "$T/collector.log" ||
    fail "no security log line for the unenrolled key"
note "unenrolled key: refused at the handshake"

# b. a plaintext client gets no reply at all
out=$("$BM_SENDRAW" --endpoint "$EP" --case good --plain --timeout-ms 2000 2>&1) || true
assert_eq "plaintext client" "result=timeout" "$out"

# c. a valid key (rawtest of B001) sending B002's envelope, or another agent id
out=$("$BM_SENDRAW" --endpoint "$EP" --case good --branch B002 --source-id RAW-SEC-1 2>&1) || true
grep -Eq '^result=error code=ERROR_FORBIDDEN .*may not write branch .*B002' <<<"$out" ||
    fail "wrong branch: $out"
out=$("$BM_SENDRAW" --endpoint "$EP" --case good --agent agent-B001 --source-id RAW-SEC-2 2>&1) || true
grep -Eq '^result=error code=ERROR_FORBIDDEN .*agent_id' <<<"$out" || fail "wrong agent id: $out"
# (logfmt escapes the quotes of the message)
grep -qF 'security: agent \"rawtest\" may not write branch \"B002\"' "$T/collector.log" ||
    fail "no security log line for the wrong branch"
note "valid key, other branch / other agent id: ERROR_FORBIDDEN"
assert_eq "nothing written by refused peers" "$before" "$(count_all)"

# e. hostile envelopes from an authenticated peer: future-dated, replayed
out=$("$BM_SENDRAW" --endpoint "$EP" --case good --sent-ahead-s 86400 --source-id RAW-SEC-3 2>&1) || true
grep -Eq '^result=error code=ERROR_INVALID_ENVELOPE .*in the future' <<<"$out" || fail "future-dated: $out"
S=0123456789abcdef0123456789abcdef
out=$("$BM_SENDRAW" --endpoint "$EP" --case good --stream $S --seq 7 --source-id RAW-SEC-4 2>&1) || true
grep -Eq '^result=ack stored=1 ' <<<"$out" || fail "first use of a sequence: $out"
out=$("$BM_SENDRAW" --endpoint "$EP" --case resend --stream fedcba9876543210fedcba9876543210 --seq 1 --source-id RAW-SEC-6 2>&1) || true
grep -Eq '^result=ack .*batch_duplicate=1' <<<"$(sed -n 2p <<<"$out")" || fail "legitimate resend: $out"
out=$("$BM_SENDRAW" --endpoint "$EP" --case good --stream $S --seq 7 --source-id RAW-SEC-5 2>&1) || true
grep -Eq '^result=error code=ERROR_INVALID_ENVELOPE .*sequence 7 of stream .* already used for different content' <<<"$out" ||
    fail "replayed sequence: $out"
assert_eq "stored from the hostile envelopes" "1|0|0" \
    "$(bm_psql "SELECT count(*) FILTER (WHERE source_id = 'RAW-SEC-4'), count(*) FILTER (WHERE source_id = 'RAW-SEC-5'), count(*) FILTER (WHERE source_id = 'RAW-SEC-3') FROM receipts")"
note "future-dated and replayed envelopes refused; a same-content resend is acknowledged"

# d. revocation of a connected agent: cut off within 10 s
mkdir -p "$T/a3"
start_agent agent-B003 B003 "$T/a3" "$EP"
a3_connected() { [ "$(agent_state agent-B003)" = connected ]; }
wait_until "agent-B003 is connected" 30 a3_connected
"$BM_TOOL" agent revoke --agent agent-B003 --db "$BM_DB" >/dev/null || fail "agent revoke"
t0=$(date +%s%N)
a3_refused() { [ "$(agent_state agent-B003)" = refused ]; }
wait_until "the revoked agent is cut off" 10 a3_refused
ms=$((($(date +%s%N) - t0) / 1000000))
note "revoked agent cut off after $ms ms"
[ $ms -le 10000 ] || fail "cut-off took $ms ms"
grep -qF 'security: agent key revoked (agent \"agent-B003\"' "$T/collector.log" ||
    fail "no security log line for the revoked key"
# Data dropped after the revocation is not stored.
cp "$T/data/B003/inbox"/receipts_* "$T/a3/inbox/"
b3=$(bm_psql "SELECT count(*) FROM receipts r JOIN branches b ON b.id = r.branch_id WHERE b.code = 'B003'")
assert_eq "B003 receipts before" 0 "$b3"
# ... and on reconnect the handshake itself is refused.
stop_proc agent-B003 || fail "agent-B003 did not stop cleanly"
restart_proc agent-B003
# (the handshake refusal is logged after the restart marker of its log)
a3_auth_refused() {
    sed -n '/^----- restarted at/,$p' "$T/agent-B003.log" |
        grep -q "refused this agent's key (not enrolled or revoked); retrying" &&
        grep -F "security: refused key $(cat "$T/keys/agent-B003.pub") " "$T/collector.log" |
        grep -q 'not enrolled or revoked'
}
wait_until "the revoked agent is refused at the handshake on reconnect" 30 a3_auth_refused
assert_eq "nothing stored for the revoked agent" 0 \
    "$(bm_psql "SELECT count(*) FROM receipts r JOIN branches b ON b.id = r.branch_id WHERE b.code = 'B003'")"
"$BM_TOOL" agent list --db "$BM_DB" | grep -E '^agent-B003 ' | grep -vq ' - *$' ||
    fail "agent list does not show the revocation"

# counters in the status file
sec_counter() {
    grep -Eo "\"$1\": *[0-9]+" "$T/collector.status.json" | grep -Eo '[0-9]+$'
}
hostile_counter() {
    tr -d ' \n' <"$T/collector.status.json" | grep -Eo '"hostile_envelopes":\{[^}]*\}' |
        grep -Eo "\"$1\":[0-9]+" | grep -Eo '[0-9]+$'
}
counters_seen() {
    [ "$(sec_counter handshakes_refused)" -ge 2 ] && [ "$(sec_counter revoked_key)" -ge 1 ] &&
        [ "$(sec_counter wrong_branch)" -ge 1 ] && [ "$(sec_counter wrong_agent)" -ge 1 ] &&
        [ "$(hostile_counter future_dated)" = 1 ] && [ "$(hostile_counter replayed)" = 1 ]
}
wait_until "the security counters are in the status file" 10 counters_seen
note "security counters: $(tr -d ' \n' <"$T/collector.status.json" | grep -Eo '"(security|hostile_envelopes)":\{[^}]*\}' | tr '\n' ' ')"

# agent with a 0644 key refuses to start
cp "$T/keys/agent-B001.key" "$T/keys/loose-agent.key"
chmod 644 "$T/keys/loose-agent.key"
sed -e "s|^data_dir = .*|data_dir = $T/loose-agent|" \
    -e "s|^curve_secret_key_file = .*|curve_secret_key_file = $T/keys/loose-agent.key|" \
    "$T/agent-B001.conf" >"$T/loose-agent.conf"
rc=0
timeout 20 "$BM_AGENT" -c "$T/loose-agent.conf" >"$T/loose-agent.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "agent with a 0644 key: exit status $rc"
grep -q 'is readable by others (mode 0644); chmod 600 it' "$T/loose-agent.log" ||
    fail "agent with a 0644 key: $(cat "$T/loose-agent.log")"

# ------------------------------------------------------- 4. row-level security

# B002 data, written by the admin (the owner is not subject to RLS).
bm_psql "INSERT INTO receipts (branch_id, source_id, at, amount_minor, currency)
         SELECT id, 'SOUTH-1', now() - interval '1 hour', 1234, 'EUR' FROM branches WHERE code = 'B002'" >/dev/null
north() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$NORTH_DB" -c "$1"; }
assert_eq "regional: other region's raw rows" 0 \
    "$(north "SELECT count(*) FROM receipts WHERE source_id = 'SOUTH-1'")"
[ "$(north "SELECT count(*) FROM receipts")" -gt 0 ] || fail "regional: sees none of its own receipts"
assert_eq "regional: branches it knows" "B001,B003" "$(north "SELECT string_agg(code, ',' ORDER BY code) FROM branches")"
b2=$(bm_psql "SELECT id FROM branches WHERE code = 'B002'")
[ "$(bm_psql "SELECT count(*) FROM rollup_sales WHERE branch_id = $b2")" -gt 0 ] || fail "no B002 rollups"
assert_eq "regional: other region's rollups" 0 "$(north "SELECT count(*) FROM rollup_sales WHERE branch_id = $b2")"
rc=0
"$BM_TOOL" scorecard B002 --db "$NORTH_DB" >"$T/sc-other.txt" 2>&1 || rc=$?
assert_eq "regional: scorecard of another region's branch exits" 2 "$rc"
grep -q 'unknown branch "B002"' "$T/sc-other.txt" || fail "scorecard B002: $(cat "$T/sc-other.txt")"
"$BM_TOOL" scorecard B001 --db "$NORTH_DB" >"$T/sc-own.txt" 2>&1 ||
    fail "regional: scorecard B001 failed: $(cat "$T/sc-own.txt")"
"$BM_TOOL" rank --metric conversion --db "$NORTH_DB" >"$T/rank.txt" 2>&1 || fail "regional: rank failed: $(cat "$T/rank.txt")"
if grep -q B002 "$T/rank.txt"; then fail "regional: rank shows B002"; fi
for cmd in competitors alerts summary; do
    "$BM_TOOL" $cmd --db "$NORTH_DB" >"$T/$cmd.txt" 2>&1 || fail "regional: $cmd failed: $(cat "$T/$cmd.txt")"
    if grep -q B002 "$T/$cmd.txt"; then fail "regional: $cmd shows B002"; fi
done
rc=0
north "SELECT count(*) FROM access_scopes" >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "regional: could read access_scopes"
note "regional manager: own region only"

ingest() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$INGEST_DB" -c "$1"; }
for sql in "SELECT count(*) FROM access_scopes" "UPDATE branches SET name = 'x'" \
    "DELETE FROM receipts" "SELECT count(*) FROM rollup_sales" "INSERT INTO agent_keys VALUES ('x', 'y', 1)"; do
    rc=0
    out=$(ingest "$sql" 2>&1) || rc=$?
    [ $rc -ne 0 ] || fail "collector role could run: $sql"
    grep -q "permission denied" <<<"$out" || fail "collector role: $sql: $out"
done
note "collector role: denied what it does not need"

"$BM_TOOL" user remove north_mgr --db "$BM_DB" >/dev/null || fail "user remove"
rc=0
"$BM_TOOL" user remove postgres --db "$BM_DB" >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "user remove accepted a role that is not a branchmark user"

stop_all
note "all processes stopped cleanly"
