#!/bin/bash
# test_e2e: three agents (three branches in two regions) send generated
# exports through a real collector into a real PostgreSQL.  Afterwards the
# database must hold exactly those records: the counts per branch and kind
# equal the generator's expected.tsv, and every field of every record equals
# the file it came from (the files are loaded into temporary tables and
# compared with EXCEPT in both directions).  Every inbox file must be in
# done/, nothing in rejected/ or deadletter/, and every spool empty.
# With BM_VALGRIND=1 agents and collector run under valgrind memcheck.
source "$(dirname "$0")/lib.sh"

BRANCHES=(B001 B002 B003)

bm_pg_start
"$BM_TOOL" migrate --db "$BM_DB" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log"; fail "branchmark migrate failed"; }

"$BM_DATAGEN" --out "$T/data" --branches 3 --regions 2 --competitors 2 --days 3 \
    --scale 0.3 --seed 7 >/dev/null || fail "bm-datagen failed"
"$BM_TOOL" refdata load --db "$BM_DB" "$T/data/refdata.json" >"$T/refdata.log" 2>&1 ||
    { cat "$T/refdata.log"; fail "branchmark refdata load failed"; }

# The files as generated, kept aside for the comparison.
for b in "${BRANCHES[@]}"; do
    mkdir -p "$T/agents/$b"
    cp -r "$T/data/$b/inbox" "$T/agents/$b/inbox"
    (cd "$T/data/$b/inbox" && ls) >"$T/files-$b.txt"
done
total=$(awk 'NR > 1 { n += $3 } END { print n }' "$T/data/expected.tsv")
note "generated $total records in $(cat "$T"/files-*.txt | wc -l) files"

bm_pick_port CPORT
start_collector collector "$CPORT"
for b in "${BRANCHES[@]}"; do
    # Small batches, so that each file spans several batches and acks.
    start_agent "agent-$b" "$b" "$T/agents/$b" "tcp://127.0.0.1:$CPORT" "batch_records = 100"
done

done_count() { find "$T/agents/$1/done" -type f 2>/dev/null | wc -l; }
spool_entries() {
    "$BM_AGENT" status -c "$T/agent-$1.conf" --json 2>/dev/null |
        grep -Eo '"spool_entries": *[0-9]+' | grep -Eo '[0-9]+$'
}
all_done() {
    local b
    for b in "${BRANCHES[@]}"; do
        [ "$(done_count "$b")" -eq "$(wc -l <"$T/files-$b.txt")" ] || return 1
        [ "$(spool_entries "$b")" = 0 ] || return 1
    done
}
wait_until "every file is in done/ and every spool is empty" 120 all_done
note "all files acknowledged"

# ----------------------------------------------------------------- files

for b in "${BRANCHES[@]}"; do
    a=$T/agents/$b
    [ -z "$(find "$a/inbox" -type f 2>/dev/null)" ] || fail "$b: files left in inbox/: $(ls "$a/inbox")"
    # done/ names are "<20-digit sequence>_<inbox name>" (docs/agent.md).
    got=$(cd "$a/done" && find . -type f -printf '%f\n' | sed -E 's/^[0-9]{20}_//' | sort)
    assert_eq "$b: files in done/" "$(sort "$T/files-$b.txt")" "$got"
    [ -z "$(find "$a/rejected" -type f 2>/dev/null)" ] || fail "$b: files in rejected/: $(ls "$a/rejected")"
    [ -z "$(find "$a/deadletter" -type f 2>/dev/null)" ] || fail "$b: files in deadletter/: $(ls "$a/deadletter")"
done

# ----------------------------------------------------------------- counts

counts=$(bm_psql "
SELECT b.code, k.kind, (CASE k.kind
    WHEN 'people_count'    THEN (SELECT count(*) FROM people_counts x WHERE x.branch_id = b.id)
    WHEN 'receipt'         THEN (SELECT count(*) FROM receipts x WHERE x.branch_id = b.id)
    WHEN 'queue_ticket'    THEN (SELECT count(*) FROM queue_tickets x WHERE x.branch_id = b.id)
    WHEN 'phone_call'      THEN (SELECT count(*) FROM phone_calls x WHERE x.branch_id = b.id)
    WHEN 'complaint'       THEN (SELECT count(*) FROM complaints x WHERE x.branch_id = b.id)
    WHEN 'survey'          THEN (SELECT count(*) FROM survey_responses x WHERE x.branch_id = b.id)
    WHEN 'customer_change' THEN (SELECT count(*) FROM customer_changes x WHERE x.branch_id = b.id)
    WHEN 'evaluation'      THEN (SELECT count(*) FROM evaluations x WHERE x.branch_id = b.id)
  END)
FROM branches b
CROSS JOIN unnest(ARRAY['people_count','receipt','queue_ticket','phone_call','complaint',
                        'survey','customer_change','evaluation']) WITH ORDINALITY AS k(kind, pos)
ORDER BY b.code, k.pos" -F $'\t')
assert_eq "record counts per branch and kind (database vs expected.tsv)" \
    "$(tail -n +2 "$T/data/expected.tsv")" "$counts"
stored=$(bm_psql "SELECT coalesce(sum(stored), 0) || ' ' || coalesce(sum(duplicates), 0) || ' ' || coalesce(sum(rejected), 0) FROM ingest_batches")
assert_eq "ingest ledger: stored, duplicates, rejected" "$total 0 0" "$stored"

# ------------------------------------------------- field-by-field comparison

# Loads every file into temporary tables (psql \copy on the client side;
# JSON lines are read as whole lines) and prints, per kind, the number of
# rows only in the files and only in the database.
sql=$T/compare.sql
cat >"$sql" <<'EOF'
\set ON_ERROR_STOP 1
CREATE TEMP TABLE s_people (source_id text, interval_start text, interval_seconds text, passers_by text, entrants text);
CREATE TEMP TABLE s_receipts (source_id text, at text, amount text, currency text);
CREATE TEMP TABLE s_queue (source_id text, issued_at text, called_at text, served_at text, service_point text);
CREATE TEMP TABLE s_calls (source_id text, ring_start text, answered text, wait_seconds text);
CREATE TEMP TABLE s_complaints (source_id text, received_at text, category text, contact_point text, channel text, resolved_at text);
CREATE TEMP TABLE s_customers (source_id text, at text, kind text, reason text, segment text);
CREATE TEMP TABLE s_lines (line text);
CREATE TEMP TABLE f_people (branch text, LIKE s_people);
CREATE TEMP TABLE f_receipts (branch text, LIKE s_receipts);
CREATE TEMP TABLE f_queue (branch text, LIKE s_queue);
CREATE TEMP TABLE f_calls (branch text, LIKE s_calls);
CREATE TEMP TABLE f_complaints (branch text, LIKE s_complaints);
CREATE TEMP TABLE f_customers (branch text, LIKE s_customers);
CREATE TEMP TABLE f_surveys (branch text, j jsonb);
CREATE TEMP TABLE f_evals (branch text, j jsonb);
EOF
for b in "${BRANCHES[@]}"; do
    while read -r f; do
        path=$(find "$T/agents/$b/done" -type f -name "*_$f" | head -n 1)
        [ -f "$path" ] || fail "$b: $f is not in done/"
        case "$f" in
        people_count*) tbl=people ;; receipts*) tbl=receipts ;; queue*) tbl=queue ;;
        calls*) tbl=calls ;; complaints*) tbl=complaints ;; customers*) tbl=customers ;;
        surveys*) tbl=surveys ;; evaluations*) tbl=evals ;;
        *) fail "unexpected file $f" ;;
        esac
        if [ "$tbl" = surveys ] || [ "$tbl" = evals ]; then
            echo "\\copy s_lines FROM '$path' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
            echo "INSERT INTO f_$tbl SELECT '$b', line::jsonb FROM s_lines WHERE line <> ''; TRUNCATE s_lines;"
        else
            echo "\\copy s_$tbl FROM '$path' WITH (FORMAT csv, HEADER true)"
            echo "INSERT INTO f_$tbl SELECT '$b', * FROM s_$tbl; TRUNCATE s_$tbl;"
        fi
    done <"$T/files-$b.txt"
done >>"$sql"
cat >>"$sql" <<'EOF'
CREATE TEMP VIEW file_rows AS
  SELECT 'people_count' AS kind, row(branch, source_id, interval_start::timestamptz, interval_seconds::int,
         passers_by::int, entrants::int)::text AS r FROM f_people
  UNION ALL SELECT 'receipt', row(branch, source_id, at::timestamptz, (amount::numeric * 100)::bigint, currency)::text FROM f_receipts
  UNION ALL SELECT 'queue_ticket', row(branch, source_id, issued_at::timestamptz, called_at::timestamptz,
         served_at::timestamptz, service_point)::text FROM f_queue
  UNION ALL SELECT 'phone_call', row(branch, source_id, ring_start::timestamptz, answered::boolean, wait_seconds::int)::text FROM f_calls
  UNION ALL SELECT 'complaint', row(branch, source_id, received_at::timestamptz, category, contact_point, channel,
         resolved_at::timestamptz)::text FROM f_complaints
  UNION ALL SELECT 'customer_change', row(branch, source_id, at::timestamptz, kind, coalesce(reason, ''), coalesce(segment, ''))::text FROM f_customers
  UNION ALL SELECT 'survey', row(branch, j->>'source_id', (j->>'responded_at')::timestamptz, (j->>'nps')::smallint,
         coalesce(j->>'why', ''), coalesce(j->>'segment', ''), coalesce(j->>'channel', ''))::text FROM f_surveys
  UNION ALL SELECT 'survey_csi', row(s.branch, s.j->>'source_id', c.key, c.value::text::smallint,
         coalesce((s.j->>'csi_scale')::smallint, 5))::text FROM f_surveys s, jsonb_each(s.j->'csi') c
  UNION ALL SELECT 'evaluation', row(branch, j->>'source_id', j->>'questionnaire', (j->>'version')::int, j->>'channel',
         coalesce(j->>'scenario', ''), coalesce(j->>'shopper_segment', ''),
         CASE WHEN j->'outlet' ? 'branch' THEN 'branch' ELSE 'competitor' END,
         coalesce(j->'outlet'->>'branch', j->'outlet'->>'competitor'),
         (j->>'visited_at')::timestamptz, (j->>'submitted_at')::timestamptz, coalesce(j->>'shopper', ''))::text FROM f_evals
  UNION ALL SELECT 'evaluation_answer', row(e.branch, e.j->>'source_id', a->>'item',
         CASE WHEN (a->>'na')::boolean THEN NULL ELSE (a->>'points')::float8 END,
         coalesce(a->>'comment', ''))::text FROM f_evals e, jsonb_array_elements(e.j->'answers') a;
CREATE TEMP VIEW db_rows AS
  SELECT 'people_count' AS kind, row(b.code, x.source_id, x.interval_start, x.interval_seconds, x.passers_by, x.entrants)::text AS r
    FROM people_counts x JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'receipt', row(b.code, x.source_id, x.at, x.amount_minor, x.currency)::text
    FROM receipts x JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'queue_ticket', row(b.code, x.source_id, x.issued_at, x.called_at, x.served_at, x.service_point)::text
    FROM queue_tickets x JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'phone_call', row(b.code, x.source_id, x.ring_start, x.answered, x.wait_seconds)::text
    FROM phone_calls x JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'complaint', row(b.code, x.source_id, x.received_at_src, x.category, x.contact_point, x.channel, x.resolved_at)::text
    FROM complaints x JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'customer_change', row(b.code, x.source_id, x.at, x.kind, x.reason, x.segment)::text
    FROM customer_changes x JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'survey', row(b.code, x.source_id, x.responded_at, x.nps, x.why, x.segment, x.survey_channel)::text
    FROM survey_responses x JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'survey_csi', row(b.code, x.source_id, c.item, c.score, c.scale_max)::text
    FROM survey_csi_scores c JOIN survey_responses x ON x.id = c.response_id JOIN branches b ON b.id = x.branch_id
  UNION ALL SELECT 'evaluation', row(b.code, x.source_id, q.code, q.version, x.channel, x.scenario, x.shopper_segment,
         CASE WHEN x.outlet_branch_id IS NOT NULL THEN 'branch' ELSE 'competitor' END,
         coalesce(ob.code, co.code), x.visited_at, x.submitted_at, x.shopper_ref)::text
    FROM evaluations x JOIN branches b ON b.id = x.branch_id JOIN questionnaires q ON q.id = x.questionnaire_id
    LEFT JOIN branches ob ON ob.id = x.outlet_branch_id LEFT JOIN competitor_outlets co ON co.id = x.competitor_outlet_id
  UNION ALL SELECT 'evaluation_answer', row(b.code, x.source_id, a.item_code, a.points, a.comment)::text
    FROM evaluation_answers a JOIN evaluations x ON x.id = a.evaluation_id JOIN branches b ON b.id = x.branch_id;
-- kind, rows in the files, only in the files, only in the database
SELECT f.kind, f.n,
       (SELECT count(*) FROM (SELECT r FROM file_rows WHERE kind = f.kind EXCEPT ALL SELECT r FROM db_rows WHERE kind = f.kind) d),
       (SELECT count(*) FROM (SELECT r FROM db_rows WHERE kind = f.kind EXCEPT ALL SELECT r FROM file_rows WHERE kind = f.kind) d)
  FROM (SELECT kind, count(*) AS n FROM file_rows GROUP BY kind) f ORDER BY f.kind;
EOF
result=$(psql -X -A -t -q -F ' ' -d "$BM_DB" -f "$sql" 2>&1) || { echo "$result"; fail "comparison SQL failed"; }
note "rows per kind: kind, in files, only in files, only in database:"
echo "$result" | sed 's/^/    /'
kinds=$(echo "$result" | awk '{ print $1 }' | tr '\n' ' ')
assert_eq "kinds compared" "complaint customer_change evaluation evaluation_answer people_count phone_call queue_ticket receipt survey survey_csi " "$kinds"
bad=$(echo "$result" | awk '$3 != 0 || $4 != 0')
if [ -n "$bad" ]; then
    psql -X -A -t -q -d "$BM_DB" -f "$sql" -c "SELECT 'only in files: ' || r FROM (SELECT kind, r FROM file_rows EXCEPT ALL SELECT kind, r FROM db_rows) d LIMIT 5" \
        -c "SELECT 'only in db:    ' || r FROM (SELECT kind, r FROM db_rows EXCEPT ALL SELECT kind, r FROM file_rows) d LIMIT 5" | tail -n 10 >&2
    fail "database and files differ: $bad"
fi

# The comparison must have covered the interesting cases.
cover=$(bm_psql "SELECT
  (SELECT count(*) FROM queue_tickets WHERE served_at IS NOT NULL) > 0,
  (SELECT count(*) FROM queue_tickets WHERE called_at IS NULL) > 0,
  (SELECT count(*) FROM evaluation_answers WHERE points IS NULL) > 0,
  (SELECT count(*) FROM evaluations WHERE competitor_outlet_id IS NOT NULL) > 0,
  (SELECT count(*) FROM survey_responses WHERE nps IS NOT NULL AND csi IS NOT NULL) > 0,
  (SELECT count(*) FROM survey_responses WHERE nps IS NULL) > 0,
  (SELECT count(*) FROM receipts WHERE amount_minor < 0) >= 0" -F ' ')
assert_eq "covered: served ticket, abandoned ticket, N/A answer, competitor evaluation, NPS+CSI survey, CSI-only survey" \
    "t t t t t t t" "$cover"
# CSI index of a response = mean over its items of (score-1)/(scale_max-1)*100.
csi_bad=$(bm_psql "SELECT count(*) FROM survey_responses s
  LEFT JOIN (SELECT response_id, avg((score - 1)::float8 / (scale_max - 1) * 100) AS v
               FROM survey_csi_scores GROUP BY response_id) c ON c.response_id = s.id
  WHERE (s.csi IS NULL) <> (c.v IS NULL) OR abs(s.csi - c.v) > 1e-9")
assert_eq "survey responses whose CSI index does not match their items" 0 "$csi_bad"

stop_all
note "agents and collector stopped cleanly"
