-- 010_corrections: a record sent again with other content supersedes the
-- stored version, and the rollups follow exactly (issue 14, part 2).
--
-- What a version is.  Every raw row now carries the store system's own
-- version of the record (src_version: a revision number or updated_at in
-- epoch ms, NULL when the export has none) and a digest of the content the
-- agent sent (content_digest: 64 bits of SHA-256 of the record's kind
-- message, computed by the collector).  The collector (store.c) classifies
-- each staged record against the stored row of the same (branch, source_id),
-- whatever its time and partition:
--   same digest as the stored row or as any row of its history: duplicate;
--   else a version at least as new (src_version NULL counts as lowest, equal
--     versions go by arrival: the later arrival wins): supersedes;
--   else an older version arriving late: kept in record_history only.
-- Rows stored before this migration have no digest; their content is
-- compared column by column instead (children not included).
--
-- Design: supersede = move the old row to record_history and DELETE it, then
-- INSERT the new one, both in the batch's transaction.  The rollup triggers
-- of 002/008 become one function per kind with a sign argument, fired AFTER
-- INSERT (+1) and AFTER DELETE (-1) with the same transition-table name, so
-- subtracting is the very code that added (same expressions, same exact
-- numeric values), and rollup rows whose count falls to 0 are deleted (the
-- full recomputation has no row there; histogram arrays are trimmed of
-- trailing zeros for the same reason).  Why not UPDATE with OLD/NEW
-- transition tables: a correction may change the partition key (a receipt's
-- time), and 006's ON CONFLICT on (branch, source_id, time) cannot see the
-- old row in another partition; an UPDATE that moves rows across partitions
-- is a delete plus insert inside PostgreSQL anyway, and two code paths per
-- trigger (insert, update) would have to agree forever.
--
-- Evaluations are the exception: reviews, appeals, evidence and answer
-- changes reference evaluations(id), so a corrected evaluation is updated in
-- place (bm_supersede): its old version goes to record_history, it goes back
-- to review ('received', logged in evaluation_reviews; 004's status trigger
-- takes an approved contribution out of rollup_scores), its answers are
-- replaced by the new version's and it is re-scored.
--
-- The collector still may not DELETE or UPDATE raw rows itself: it calls
-- bm_supersede (SECURITY DEFINER), which always keeps the old version.

ALTER TABLE people_counts ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;
ALTER TABLE receipts ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;
ALTER TABLE queue_tickets ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;
ALTER TABLE phone_calls ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;
ALTER TABLE complaints ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;
ALTER TABLE survey_responses ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;
ALTER TABLE customer_changes ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;
ALTER TABLE evaluations ADD COLUMN src_version bigint, ADD COLUMN content_digest bigint;

-- How many records of a batch were new versions of stored records (applied
-- or kept as older), so that a resent batch is answered with it too.
ALTER TABLE ingest_batches ADD COLUMN corrected int NOT NULL DEFAULT 0 CHECK (corrected >= 0);

-- Every version that is not (any more) the stored one.
--   superseded: was stored, replaced by a newer version; by_* is the batch
--               that brought the newer one, at when it happened;
--   late:       arrived after a newer version and never replaced it; by_* is
--               its own batch, at when it arrived.
-- content is the version's row as JSON (with its CSI scores or answers).
CREATE TABLE record_history (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL,            -- the raw table
    branch_id      int NOT NULL REFERENCES branches(id),
    source_id      text NOT NULL,
    src_version    bigint,
    content_digest bigint,
    status         text NOT NULL CHECK (status IN ('superseded', 'late')),
    content        jsonb NOT NULL,
    stored_at      timestamptz,              -- superseded: when it had been stored
    at             timestamptz NOT NULL DEFAULT now(),
    by_stream      text NOT NULL,
    by_sequence    bigint NOT NULL
);
CREATE INDEX record_history_key ON record_history (kind, branch_id, source_id);

-- History holds whole evaluations (shopper identity too): HQ and reviewers
-- only, like evaluations' hidden columns in 004.
GRANT SELECT ON record_history TO branchmark_hq, branchmark_reviewer;
GRANT SELECT, INSERT ON record_history TO branchmark_collector;
GRANT USAGE ON SEQUENCE record_history_id_seq TO branchmark_collector;

---------------------------------------------------------------------------
-- Rollups with a sign: one trigger function per kind for INSERT and DELETE
---------------------------------------------------------------------------

-- The array without its trailing zeros ('{}' when all are zero).
CREATE FUNCTION bm_hist_trim(a bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(a[1:(SELECT max(i) FROM generate_subscripts(a, 1) i WHERE a[i] <> 0)],
                    '{}'::bigint[])
$$;

-- 008's upsert, for negative counts too: arrays are trimmed, and a
-- histogram whose n falls to 0 is deleted (the full recomputation has none).
CREATE OR REPLACE FUNCTION bm_hist_upsert(m text, branch_ids int[], kinds text[], starts date[],
                                          buckets int[], counts bigint[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO rollup_hist AS r (branch_id, period_kind, period_start, measure, n, counts)
    SELECT u.branch_id, u.period_kind, u.period_start, m, sum(u.c)::bigint,
           bm_hist_dense(array_agg(u.b), array_agg(u.c))
      FROM unnest(branch_ids, kinds, starts, buckets, counts)
           u(branch_id, period_kind, period_start, b, c)
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start, measure) DO UPDATE
       SET n = r.n + EXCLUDED.n, counts = bm_hist_trim(bm_hist_add(r.counts, EXCLUDED.counts));
    DELETE FROM rollup_hist r
     USING (SELECT DISTINCT * FROM unnest(branch_ids, kinds, starts)) k(b, pk, ps)
     WHERE r.measure = m AND r.branch_id = k.b AND r.period_kind = k.pk
       AND r.period_start = k.ps AND r.n = 0;
$$;
REVOKE ALL ON FUNCTION bm_hist_upsert(text, int[], text[], date[], int[], bigint[]) FROM PUBLIC;

-- The sign of a rollup trigger from its first argument (TG_ARGV[0]): -1 for
-- the delete triggers, +1 otherwise.
CREATE FUNCTION bm_trigger_sign(arg text) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN arg = '-1' THEN -1 ELSE 1 END
$$;

CREATE OR REPLACE FUNCTION bm_rollup_people_counts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
    sg int := bm_trigger_sign(TG_ARGV[0]);
BEGIN
    INSERT INTO rollup_traffic AS r
    SELECT n.branch_id, p.period_kind, p.period_start, sg * count(*),
           sg * sum(n.passers_by), sg * sum(n.entrants)
      FROM changed_rows n, bm_periods(n.interval_start, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET intervals = r.intervals + EXCLUDED.intervals,
           passers_by = r.passers_by + EXCLUDED.passers_by,
           entrants = r.entrants + EXCLUDED.entrants;
    IF sg < 0 THEN
        DELETE FROM rollup_traffic r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start
                  FROM changed_rows n, bm_periods(n.interval_start, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start)
             = (k.branch_id, k.period_kind, k.period_start) AND r.intervals = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_receipts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
    sg int := bm_trigger_sign(TG_ARGV[0]);
BEGIN
    INSERT INTO rollup_sales AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.currency, sg * count(*),
           sg * count(*) FILTER (WHERE n.amount_minor > 0),
           sg * coalesce(sum(n.amount_minor::numeric) FILTER (WHERE n.amount_minor > 0), 0),
           sg * coalesce(sum(n.amount_minor::numeric ^ 2) FILTER (WHERE n.amount_minor > 0), 0),
           sg * count(*) FILTER (WHERE n.amount_minor < 0),
           sg * coalesce(sum(n.amount_minor::numeric) FILTER (WHERE n.amount_minor < 0), 0)
      FROM changed_rows n, bm_periods(n.at, tz) p
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (branch_id, period_kind, period_start, currency) DO UPDATE
       SET receipts = r.receipts + EXCLUDED.receipts,
           sales = r.sales + EXCLUDED.sales,
           sales_minor = r.sales_minor + EXCLUDED.sales_minor,
           sales_minor_sq = r.sales_minor_sq + EXCLUDED.sales_minor_sq,
           refunds = r.refunds + EXCLUDED.refunds,
           refunds_minor = r.refunds_minor + EXCLUDED.refunds_minor;
    IF sg < 0 THEN
        DELETE FROM rollup_sales r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start, n.currency
                  FROM changed_rows n, bm_periods(n.at, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start, r.currency)
             = (k.branch_id, k.period_kind, k.period_start, k.currency) AND r.receipts = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_queue_tickets() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
    sg int := bm_trigger_sign(TG_ARGV[0]);
BEGIN
    INSERT INTO rollup_queue AS r
    SELECT n.branch_id, p.period_kind, p.period_start, sg * count(*),
           sg * count(n.called_at), sg * count(n.served_at),
           sg * coalesce(sum(extract(epoch FROM n.called_at - n.issued_at)), 0),
           sg * coalesce(sum(extract(epoch FROM n.called_at - n.issued_at) ^ 2), 0)
      FROM changed_rows n, bm_periods(n.issued_at, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET tickets = r.tickets + EXCLUDED.tickets,
           called = r.called + EXCLUDED.called,
           served = r.served + EXCLUDED.served,
           wait_sum = r.wait_sum + EXCLUDED.wait_sum,
           wait_sumsq = r.wait_sumsq + EXCLUDED.wait_sumsq;
    IF sg < 0 THEN
        DELETE FROM rollup_queue r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start
                  FROM changed_rows n, bm_periods(n.issued_at, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start)
             = (k.branch_id, k.period_kind, k.period_start) AND r.tickets = 0;
    END IF;
    PERFORM bm_hist_upsert('queue_wait', array_agg(s.branch_id), array_agg(s.period_kind),
                           array_agg(s.period_start), array_agg(s.b), array_agg(sg * s.c))
      FROM (SELECT n.branch_id, p.period_kind, p.period_start,
                   bm_bucket(extract(epoch FROM n.called_at - n.issued_at), 5, 720) AS b,
                   count(*) AS c
              FROM changed_rows n, bm_periods(n.issued_at, tz) p
             WHERE n.called_at IS NOT NULL
             GROUP BY 1, 2, 3, 4) s;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_phone_calls() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
    sg int := bm_trigger_sign(TG_ARGV[0]);
BEGIN
    INSERT INTO rollup_calls AS r
    SELECT n.branch_id, p.period_kind, p.period_start, sg * count(*),
           sg * count(*) FILTER (WHERE n.answered), sg * count(*) FILTER (WHERE NOT n.answered),
           sg * coalesce(sum(n.wait_seconds::numeric) FILTER (WHERE n.answered), 0)
      FROM changed_rows n, bm_periods(n.ring_start, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET calls = r.calls + EXCLUDED.calls,
           answered = r.answered + EXCLUDED.answered,
           abandoned = r.abandoned + EXCLUDED.abandoned,
           answer_wait_sum = r.answer_wait_sum + EXCLUDED.answer_wait_sum;
    IF sg < 0 THEN
        DELETE FROM rollup_calls r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start
                  FROM changed_rows n, bm_periods(n.ring_start, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start)
             = (k.branch_id, k.period_kind, k.period_start) AND r.calls = 0;
    END IF;
    PERFORM bm_hist_upsert('call_answer_wait', array_agg(s.branch_id), array_agg(s.period_kind),
                           array_agg(s.period_start), array_agg(s.b), array_agg(sg * s.c))
      FROM (SELECT n.branch_id, p.period_kind, p.period_start,
                   bm_bucket(n.wait_seconds, 1, 600) AS b, count(*) AS c
              FROM changed_rows n, bm_periods(n.ring_start, tz) p
             WHERE n.answered
             GROUP BY 1, 2, 3, 4) s;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_complaints() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
    sg int := bm_trigger_sign(TG_ARGV[0]);
BEGIN
    INSERT INTO rollup_complaints AS r
    SELECT n.branch_id, p.period_kind, p.period_start, sg * count(*),
           sg * count(n.resolved_at), sg * count(*) FILTER (WHERE n.resolved_at IS NULL),
           sg * coalesce(sum(extract(epoch FROM n.resolved_at - n.received_at_src) / 3600), 0),
           sg * coalesce(sum((extract(epoch FROM n.resolved_at - n.received_at_src) / 3600) ^ 2), 0)
      FROM changed_rows n, bm_periods(n.received_at_src, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET complaints = r.complaints + EXCLUDED.complaints,
           resolved = r.resolved + EXCLUDED.resolved,
           open = r.open + EXCLUDED.open,
           resolve_hours_sum = r.resolve_hours_sum + EXCLUDED.resolve_hours_sum,
           resolve_hours_sumsq = r.resolve_hours_sumsq + EXCLUDED.resolve_hours_sumsq;
    INSERT INTO rollup_complaint_causes AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.category, n.contact_point,
           sg * count(*), sg * count(*) FILTER (WHERE n.resolved_at IS NULL)
      FROM changed_rows n, bm_periods(n.received_at_src, tz) p
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (branch_id, period_kind, period_start, category, contact_point) DO UPDATE
       SET complaints = r.complaints + EXCLUDED.complaints,
           open = r.open + EXCLUDED.open;
    IF sg < 0 THEN
        DELETE FROM rollup_complaints r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start
                  FROM changed_rows n, bm_periods(n.received_at_src, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start)
             = (k.branch_id, k.period_kind, k.period_start) AND r.complaints = 0;
        DELETE FROM rollup_complaint_causes r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start, n.category,
                       n.contact_point
                  FROM changed_rows n, bm_periods(n.received_at_src, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start, r.category, r.contact_point)
             = (k.branch_id, k.period_kind, k.period_start, k.category, k.contact_point)
           AND r.complaints = 0;
    END IF;
    PERFORM bm_hist_upsert('complaint_resolve', array_agg(s.branch_id), array_agg(s.period_kind),
                           array_agg(s.period_start), array_agg(s.b), array_agg(sg * s.c))
      FROM (SELECT n.branch_id, p.period_kind, p.period_start,
                   bm_bucket(extract(epoch FROM n.resolved_at - n.received_at_src), 3600, 720)
                       AS b,
                   count(*) AS c
              FROM changed_rows n, bm_periods(n.received_at_src, tz) p
             WHERE n.resolved_at IS NOT NULL
             GROUP BY 1, 2, 3, 4) s;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_survey_responses() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
    sg int := bm_trigger_sign(TG_ARGV[0]);
BEGIN
    INSERT INTO rollup_surveys AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.segment, sg * count(*),
           sg * count(n.nps), sg * count(*) FILTER (WHERE n.nps >= 9),
           sg * count(*) FILTER (WHERE n.nps BETWEEN 7 AND 8),
           sg * count(*) FILTER (WHERE n.nps <= 6),
           sg * count(n.csi), sg * coalesce(sum(n.csi::numeric), 0),
           sg * coalesce(sum(n.csi::numeric ^ 2), 0)
      FROM changed_rows n, bm_periods(n.responded_at, tz) p
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (branch_id, period_kind, period_start, segment) DO UPDATE
       SET responses = r.responses + EXCLUDED.responses,
           nps_n = r.nps_n + EXCLUDED.nps_n,
           promoters = r.promoters + EXCLUDED.promoters,
           passives = r.passives + EXCLUDED.passives,
           detractors = r.detractors + EXCLUDED.detractors,
           csi_n = r.csi_n + EXCLUDED.csi_n,
           csi_sum = r.csi_sum + EXCLUDED.csi_sum,
           csi_sumsq = r.csi_sumsq + EXCLUDED.csi_sumsq;
    IF sg < 0 THEN
        DELETE FROM rollup_surveys r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start, n.segment
                  FROM changed_rows n, bm_periods(n.responded_at, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start, r.segment)
             = (k.branch_id, k.period_kind, k.period_start, k.segment) AND r.responses = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_customer_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
    sg int := bm_trigger_sign(TG_ARGV[0]);
BEGIN
    INSERT INTO rollup_customers AS r
    SELECT n.branch_id, p.period_kind, p.period_start,
           sg * count(*) FILTER (WHERE n.kind = 'gained'),
           sg * count(*) FILTER (WHERE n.kind = 'lost')
      FROM changed_rows n, bm_periods(n.at, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET gained = r.gained + EXCLUDED.gained, lost = r.lost + EXCLUDED.lost;
    INSERT INTO rollup_lost_reasons AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.reason, sg * count(*)
      FROM changed_rows n, bm_periods(n.at, tz) p
     WHERE n.kind = 'lost'
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (branch_id, period_kind, period_start, reason) DO UPDATE
       SET lost = r.lost + EXCLUDED.lost;
    IF sg < 0 THEN
        DELETE FROM rollup_customers r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start
                  FROM changed_rows n, bm_periods(n.at, tz) p) k
         WHERE (r.branch_id, r.period_kind, r.period_start)
             = (k.branch_id, k.period_kind, k.period_start) AND r.gained = 0 AND r.lost = 0;
        DELETE FROM rollup_lost_reasons r
         USING (SELECT DISTINCT n.branch_id, p.period_kind, p.period_start, n.reason
                  FROM changed_rows n, bm_periods(n.at, tz) p WHERE n.kind = 'lost') k
         WHERE (r.branch_id, r.period_kind, r.period_start, r.reason)
             = (k.branch_id, k.period_kind, k.period_start, k.reason) AND r.lost = 0;
    END IF;
    RETURN NULL;
END $$;

-- The triggers again, on the transition-table name both directions share.
DO $$
DECLARE
    t text;
    f text;
BEGIN
    FOR t, f IN VALUES ('people_counts', 'bm_rollup_people_counts'),
                       ('receipts', 'bm_rollup_receipts'),
                       ('queue_tickets', 'bm_rollup_queue_tickets'),
                       ('phone_calls', 'bm_rollup_phone_calls'),
                       ('complaints', 'bm_rollup_complaints'),
                       ('survey_responses', 'bm_rollup_survey_responses'),
                       ('customer_changes', 'bm_rollup_customer_changes') LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_rollup', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %I(''1'')', t || '_rollup', t, f);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %I(''-1'')', t || '_unroll', t, f);
    END LOOP;
END $$;

---------------------------------------------------------------------------
-- Superseding
---------------------------------------------------------------------------

-- A corrected evaluation, in place (see the header): old version to the
-- history, back to review, parent columns from the new version v (the
-- collector's staging row as JSON), old answers out, re-scored.  The
-- collector then inserts the new version's answers (002's trigger re-scores
-- again).
CREATE FUNCTION bm_evaluation_supersede(v jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    eid bigint := (v->>'cur_id')::bigint;
    nv evaluations := jsonb_populate_record(NULL::evaluations, v);
    st text;
BEGIN
    INSERT INTO record_history (kind, branch_id, source_id, src_version, content_digest, status,
                                content, stored_at, by_stream, by_sequence)
    SELECT 'evaluations', e.branch_id, e.source_id, e.src_version, e.content_digest,
           'superseded', to_jsonb(e) || jsonb_build_object('answers',
               (SELECT coalesce(jsonb_agg(to_jsonb(a) - 'evaluation_id' - 'questionnaire_id'
                                          ORDER BY a.item_code), '[]')
                  FROM evaluation_answers a WHERE a.evaluation_id = e.id)),
           e.received_at, v->>'by_stream', (v->>'by_sequence')::bigint
      FROM evaluations e WHERE e.id = eid;
    SELECT review_status INTO st FROM evaluations WHERE id = eid FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'evaluation % to correct does not exist', eid;
    END IF;
    IF st <> 'received' THEN
        UPDATE evaluations SET review_status = 'received' WHERE id = eid;
        INSERT INTO evaluation_reviews (evaluation_id, old_status, new_status, reviewer, comment)
        VALUES (eid, st, 'received', session_user,
                format('corrected by the source (batch %s/%s): back to review',
                       v->>'by_stream', v->>'by_sequence'));
    END IF;
    DELETE FROM evaluation_answers WHERE evaluation_id = eid;
    UPDATE evaluations
       SET questionnaire_id = nv.questionnaire_id, channel = nv.channel,
           scenario = nv.scenario, shopper_segment = nv.shopper_segment,
           outlet_branch_id = nv.outlet_branch_id, competitor_outlet_id = nv.competitor_outlet_id,
           visited_at = nv.visited_at, submitted_at = nv.submitted_at,
           shopper_ref = nv.shopper_ref, src_version = nv.src_version,
           content_digest = nv.content_digest, received_at = now()
     WHERE id = eid;
    PERFORM bm_score_evaluations(ARRAY[eid]);
END $$;

-- Supersedes stored rows of raw table tbl: versions is a JSON array of the
-- collector's staging rows of the new versions, each with branch_id,
-- source_id, cur_id (the stored row's id), by_stream and by_sequence (the
-- new version's batch).  Partitioned kinds: every stored row of the
-- (branch, source_id) (one, unless 006 stored a re-export with another time
-- before 010) goes to record_history and is deleted
-- (the delete triggers subtract it; the collector then inserts the new
-- row).  Evaluations: bm_evaluation_supersede.  Returns how many rows were
-- superseded.  Fails when tbl is not a raw record table.
CREATE FUNCTION bm_supersede(tbl text, versions jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v jsonb;
    n int;
BEGIN
    IF versions IS NULL OR jsonb_array_length(versions) = 0 THEN
        RETURN 0;
    END IF;
    IF tbl = 'evaluations' THEN
        FOR v IN SELECT * FROM jsonb_array_elements(versions) LOOP
            PERFORM bm_evaluation_supersede(v);
        END LOOP;
        RETURN jsonb_array_length(versions);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM bm_partitioned_tables WHERE table_name = tbl) THEN
        RAISE EXCEPTION 'table "%" is not a record table', tbl;
    END IF;
    -- Survey responses carry their CSI scores along (the cascade of 006
    -- deletes them at the end of the statement, after this read).
    EXECUTE format($q$
        WITH u AS (SELECT * FROM jsonb_to_recordset($1) AS u(branch_id int, source_id text,
                                                             by_stream text, by_sequence bigint)),
        d AS (DELETE FROM %I r USING u WHERE r.branch_id = u.branch_id
                                         AND r.source_id = u.source_id
              RETURNING r.*, u.by_stream AS bm_by_stream, u.by_sequence AS bm_by_sequence)
        INSERT INTO record_history (kind, branch_id, source_id, src_version, content_digest,
                                    status, content, stored_at, by_stream, by_sequence)
        SELECT %L, d.branch_id, d.source_id, d.src_version, d.content_digest, 'superseded',
               to_jsonb(d) - 'bm_by_stream' - 'bm_by_sequence' || %s,
               d.received_at, d.bm_by_stream, d.bm_by_sequence FROM d$q$,
        tbl, tbl,
        CASE WHEN tbl = 'survey_responses' THEN
            $c$jsonb_build_object('csi_scores', (SELECT coalesce(jsonb_agg(to_jsonb(c)
                 - 'response_id' ORDER BY c.item), '[]') FROM survey_csi_scores c
                 WHERE c.response_id = d.id))$c$
        ELSE '''{}''::jsonb' END)
    USING versions;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION bm_supersede(text, jsonb), bm_evaluation_supersede(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_supersede(text, jsonb) TO branchmark_collector;
