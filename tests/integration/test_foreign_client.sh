#!/bin/bash
# test_foreign_client: a client that is not our agent (Python protobuf +
# pyzmq, CURVE) sends the hostile cases of issue 14 part 5 to a real
# collector with a real PostgreSQL (tests/python/foreign_client.py): NUL
# bytes in source_id and agent_id, bytes that are not UTF-8 in stream_id and
# source_id, sequence 2^63, sent_at = INT64_MIN, a batch split into two
# chunks, an unknown record kind.  Each reply must parse as protobuf (so as
# UTF-8), carry the right code and name the field; good records around the
# hostile one are stored exactly once (SQL); the collector keeps serving and
# stops cleanly.  The Python code is generated from proto/ at test time
# (protoc --python_out into $T).  Needs Debian's python3-protobuf,
# protobuf-compiler and python3-zmq (scripts/deps.sh); exit 77 (skipped)
# without them.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! command -v protoc >/dev/null 2>&1 || ! "$PY" -c 'import google.protobuf, zmq' 2>/dev/null; then
    note "SKIPPED: needs protoc, python3-protobuf and python3-zmq (scripts/deps.sh installs them)"
    exit 77
fi

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }
"$BM_DATAGEN" --out "$T/data" --branches 1 --regions 1 --competitors 1 --days 1 --scale 0.05 >/dev/null ||
    fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }

mkdir -p "$T/py"
protoc --python_out="$T/py" -I "$BM_SOURCE_DIR/proto" "$BM_SOURCE_DIR/proto/branchmark.proto" ||
    fail "protoc --python_out failed"

bm_pick_port CPORT
# start_collector enrolls the key pair $T/keys/rawtest for B001 (lib.sh).
start_collector collector "$CPORT"
[ -f "$T/keys/rawtest.enrolled" ] || fail "the client key rawtest was not enrolled"

PYTHONPATH="$T/py" "$PY" "$BM_SOURCE_DIR/tests/python/foreign_client.py" \
    --endpoint "tcp://127.0.0.1:$CPORT" --secret "$T/keys/rawtest.key" \
    --server "$T/keys/collector.pub" --db "$BM_DB" --agent rawtest --branch B001 \
    >"$T/client.log" 2>&1 || { cat "$T/client.log"; fail "the foreign client failed"; }
sed 's/^/    /' "$T/client.log"
bm_check_alive

# Nothing but the good records: 2 + 2 + 2 + 2 + 1, each once.
assert_eq "receipts stored" 9 "$(bm_psql "SELECT count(*) FROM receipts")"
assert_eq "receipts stored twice" 0 \
    "$(bm_psql "SELECT count(*) FROM (SELECT source_id FROM receipts GROUP BY 1 HAVING count(*) > 1) d")"
assert_eq "ledger: stored, rejected" "9 4" \
    "$(bm_psql "SELECT sum(stored) || ' ' || sum(rejected) FROM ingest_batches")"
grep -q '"malformed": 2' "$T/collector.status.json" 2>/dev/null ||
    note "status file not written yet (it is at stop)"

stop_all
note "collector stopped cleanly"
