-- 006_scale: chain-scale queries and time-partitioned raw tables (issue 6).
--
-- 1. Covering indexes for the query tool.  `branchmark rank` reads one or
--    two periods of one rollup table for every branch (chain) or for the
--    branches of one region.  A region goes through the primary key
--    (branch_id = ANY (...)); the chain reads every row of the period, which
--    the old (period_kind, period_start) indexes found but then fetched from
--    one heap page per branch.  These indexes hold the summed columns too, so
--    the chain read is an index-only scan over a few hundred contiguous index
--    pages.  They replace the old period indexes (same leading columns).
--    Cost on the write side: the summed columns are indexed, so an upsert of
--    a rollup row is no longer a HOT update and writes two more index entries
--    (period- and branch-keyed); rollups are upserted once per (branch,
--    period[, bucket]) per batch, not per record.  Index-only scans need the
--    visibility map: autovacuum keeps closed periods all-visible.
--
-- 2. Raw record tables partitioned by month of the record's own time (see
--    the second half of this file and docs/scaling.md).
--
-- Applied in one transaction by the migration runner (no CONCURRENTLY here;
-- on a large existing database build the indexes by hand with CREATE INDEX
-- CONCURRENTLY first, under the same names: IF NOT EXISTS then skips them).

CREATE INDEX IF NOT EXISTS rollup_traffic_period_cover ON rollup_traffic
    (period_kind, period_start, branch_id) INCLUDE (passers_by, entrants);
CREATE INDEX IF NOT EXISTS rollup_sales_period_cover ON rollup_sales
    (period_kind, period_start, branch_id, currency) INCLUDE (sales, sales_minor, sales_minor_sq);
CREATE INDEX IF NOT EXISTS rollup_queue_period_cover ON rollup_queue
    (period_kind, period_start, branch_id) INCLUDE (tickets, called, wait_sum, wait_sumsq);
CREATE INDEX IF NOT EXISTS rollup_calls_period_cover ON rollup_calls
    (period_kind, period_start, branch_id) INCLUDE (calls, abandoned);
CREATE INDEX IF NOT EXISTS rollup_complaints_period_cover ON rollup_complaints
    (period_kind, period_start, branch_id) INCLUDE (complaints, open);
CREATE INDEX IF NOT EXISTS rollup_customers_period_cover ON rollup_customers
    (period_kind, period_start, branch_id) INCLUDE (gained, lost);
CREATE INDEX IF NOT EXISTS rollup_surveys_period_cover ON rollup_surveys
    (period_kind, period_start, branch_id, segment)
    INCLUDE (nps_n, promoters, detractors, csi_n, csi_sum, csi_sumsq);
CREATE INDEX IF NOT EXISTS rollup_hist_period_cover ON rollup_hist
    (period_kind, period_start, measure, branch_id, bucket) INCLUDE (n);
CREATE INDEX IF NOT EXISTS rollup_scores_period_cover ON rollup_scores
    (period_kind, period_start, outlet_kind, outlet_id)
    INCLUDE (channel, segment, section, n, score_sum, score_sumsq);

-- The same columns keyed by branch first: a region's rows (branch_id =
-- ANY (the region's ids)) as an index-only scan.  Without these the planner
-- prefers filtering the whole period through the indexes above (cheaper by
-- its default random_page_cost, 10x slower in fact) over the primary key.
CREATE INDEX IF NOT EXISTS rollup_traffic_branch_cover ON rollup_traffic
    (branch_id, period_kind, period_start) INCLUDE (passers_by, entrants);
CREATE INDEX IF NOT EXISTS rollup_sales_branch_cover ON rollup_sales
    (branch_id, period_kind, period_start, currency) INCLUDE (sales, sales_minor, sales_minor_sq);
CREATE INDEX IF NOT EXISTS rollup_queue_branch_cover ON rollup_queue
    (branch_id, period_kind, period_start) INCLUDE (tickets, called, wait_sum, wait_sumsq);
CREATE INDEX IF NOT EXISTS rollup_calls_branch_cover ON rollup_calls
    (branch_id, period_kind, period_start) INCLUDE (calls, abandoned);
CREATE INDEX IF NOT EXISTS rollup_complaints_branch_cover ON rollup_complaints
    (branch_id, period_kind, period_start) INCLUDE (complaints, open);
CREATE INDEX IF NOT EXISTS rollup_customers_branch_cover ON rollup_customers
    (branch_id, period_kind, period_start) INCLUDE (gained, lost);
CREATE INDEX IF NOT EXISTS rollup_surveys_branch_cover ON rollup_surveys
    (branch_id, period_kind, period_start, segment)
    INCLUDE (nps_n, promoters, detractors, csi_n, csi_sum, csi_sumsq);
CREATE INDEX IF NOT EXISTS rollup_hist_branch_cover ON rollup_hist
    (branch_id, period_kind, period_start, measure, bucket) INCLUDE (n);
CREATE INDEX IF NOT EXISTS rollup_scores_outlet_cover ON rollup_scores
    (outlet_kind, outlet_id, period_kind, period_start)
    INCLUDE (channel, segment, section, n, score_sum, score_sumsq);

DROP INDEX IF EXISTS rollup_traffic_period;
DROP INDEX IF EXISTS rollup_sales_period;
DROP INDEX IF EXISTS rollup_queue_period;
DROP INDEX IF EXISTS rollup_calls_period;
DROP INDEX IF EXISTS rollup_complaints_period;
DROP INDEX IF EXISTS rollup_customers_period;
DROP INDEX IF EXISTS rollup_surveys_period;
DROP INDEX IF EXISTS rollup_hist_period;
DROP INDEX IF EXISTS rollup_scores_period;

-- ---------------------------------------------------------------------------
-- 2. Raw record tables partitioned by month (declarative RANGE partitioning
--    on the record's own time), plus a DEFAULT partition per table so that no
--    record is ever refused for lack of a partition (a record 40 years out
--    lands there; `branchmark partition create` later moves such rows into
--    their month when it creates it).
--
-- Deduplication.  A unique index of a partitioned table must contain the
-- partition key, so (branch_id, source_id) becomes (branch_id, source_id,
-- <time>) and the collector's INSERT says ON CONFLICT DO NOTHING (no target).
-- Every resend by an agent carries the identical record, hence the same time,
-- hence the same partition and key: resends are dropped exactly as before,
-- across partitions too (also after a later `partition create` moved rows out
-- of the default partition).  A store system that re-exports a record under
-- the same source id with a DIFFERENT time now gets a second row (before: the
-- re-export was dropped); survey responses are the exception: the collector
-- drops staged responses whose source id is already stored, whatever the time
-- (store.c), so they stay unique per source id.  docs/scaling.md discusses
-- the alternative (a small unpartitioned key table) should exact source-id
-- uniqueness across re-exports ever be required.
--
-- Evaluations stay unpartitioned: a few per branch and month (no volume to
-- speak of), and five tables reference evaluations(id) by foreign key, which
-- a partitioned table could only serve as (id, visited_at).
--
-- The conversion is generic: the triggers, row-level-security flags and
-- policies, grants (table and column), owner, indexes, unique and foreign
-- keys of each table are read from the catalogue and recreated on the new
-- partitioned table, so trigger functions replaced by an earlier migration
-- (005) carry over.  Views over the tables are dropped and recreated with
-- their definition, options, owner and grants; policies of other tables that
-- name the table (survey_csi_scores' "response_id IN (SELECT id FROM
-- survey_responses)") likewise.  The one foreign key INTO a raw table,
-- survey_csi_scores.response_id -> survey_responses(id) ON DELETE CASCADE,
-- cannot point at a partitioned table's (id) alone; it becomes a statement
-- trigger that deletes a removed response's CSI scores (the same cascade;
-- the collector only inserts scores for responses it has just stored).
-- Rows are copied in one INSERT ... SELECT before the indexes are built.
-- ---------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS bm_partitioned_tables (
    table_name  text PRIMARY KEY,
    time_column text NOT NULL
);
INSERT INTO bm_partitioned_tables (table_name, time_column) VALUES
    ('people_counts', 'interval_start'),
    ('receipts', 'at'),
    ('queue_tickets', 'issued_at'),
    ('phone_calls', 'ring_start'),
    ('complaints', 'received_at_src'),
    ('survey_responses', 'responded_at'),
    ('customer_changes', 'at')
ON CONFLICT (table_name) DO NOTHING;

-- The partition of `parent` for the month of `for_month` (UTC bounds),
-- e.g. receipts_p202611.  Creates it if missing and returns true; false when
-- it already existed.  Rows of that month sitting in the default partition
-- are moved into it (the default partition is detached for that moment:
-- PostgreSQL refuses a new partition whose range the default still holds).
-- Moving rows fires no rollup trigger (those are statement triggers of the
-- parent), so rollups are untouched.  Fails with an error when `parent` is
-- not a partitioned raw table.
CREATE OR REPLACE FUNCTION bm_partition_create(parent text, for_month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    tc text;
    m date := date_trunc('month', for_month)::date;
    part text := parent || '_p' || to_char(for_month, 'YYYYMM');
    def text := parent || '_default';
    lo timestamptz := m::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    waiting boolean;
BEGIN
    SELECT time_column INTO tc FROM bm_partitioned_tables WHERE table_name = parent;
    IF tc IS NULL THEN
        RAISE EXCEPTION 'table "%" is not a partitioned record table', parent;
    END IF;
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)', def, tc, tc)
        INTO waiting USING lo, hi;
    IF NOT waiting THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       part, parent, lo, hi);
        RETURN true;
    END IF;
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, def);
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   part, parent, lo, hi);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *)'
                   ' INSERT INTO %I SELECT * FROM moved', def, tc, tc, part) USING lo, hi;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I DEFAULT', parent, def);
    RETURN true;
END $$;

-- Creates the partitions of every raw table from this month to `ahead`
-- months ahead (UTC).  Returns how many were created.  Run daily (see
-- `branchmark partition create --ahead N` and docs/scaling.md).
CREATE OR REPLACE FUNCTION bm_partitions_ensure(ahead int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    k int;
    n int := 0;
BEGIN
    IF ahead < 0 OR ahead > 120 THEN
        RAISE EXCEPTION 'months ahead: % is out of range 0..120', ahead;
    END IF;
    FOR t IN SELECT table_name FROM bm_partitioned_tables ORDER BY table_name LOOP
        FOR k IN 0..ahead LOOP
            IF bm_partition_create(t, (date_trunc('month', now() AT TIME ZONE 'UTC')
                                       + make_interval(months => k))::date) THEN
                n := n + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN n;
END $$;

-- Only the owner (the admin who migrates) manages partitions.
REVOKE ALL ON FUNCTION bm_partition_create(text, date) FROM PUBLIC;
REVOKE ALL ON FUNCTION bm_partitions_ensure(int) FROM PUBLIC;

-- The cascade that replaces survey_csi_scores' foreign key (see above).
CREATE OR REPLACE FUNCTION bm_survey_csi_cascade() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM survey_csi_scores WHERE response_id IN (SELECT id FROM bm_old_responses);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION bm_survey_csi_cascade() FROM PUBLIC;

DO $convert$
DECLARE
    t text;
    tc text;
    tmp text;
    rel oid;
    r record;
    views jsonb := '[]'::jsonb;
    other_policies jsonb := '[]'::jsonb;
    v jsonb;
    trigs text[];
    idxs text[];
    fks text[];
    uniqs jsonb;
    pols jsonb;
    acls jsonb;
    colacls jsonb;
    rls boolean;
    force_rls boolean;
    owner_name name;
    seqs jsonb;
    def text;
    cols text;
    roles text;
BEGIN
    -- Views and other tables' policies over any of the tables go first, all
    -- of them (a view may read several raw tables).
    FOR r IN
        SELECT c.oid, c.relname, c.reloptions, c.relacl, pg_get_userbyid(c.relowner) AS owner
          FROM pg_class c
         WHERE c.relkind = 'v' AND c.oid IN (
               SELECT w.ev_class FROM pg_depend d
                 JOIN pg_rewrite w ON w.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
                WHERE d.refobjid IN (SELECT to_regclass(table_name) FROM bm_partitioned_tables))
         ORDER BY c.oid
    LOOP
        views := views || jsonb_build_array(jsonb_build_object(
            'name', r.relname, 'def', pg_get_viewdef(r.oid), 'owner', r.owner,
            'options', coalesce(array_to_string(r.reloptions, ', '), ''),
            'acl', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'grantee', CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                        'priv', a.privilege_type, 'grant', a.is_grantable)), '[]'::jsonb)
                      FROM aclexplode(r.relacl) a WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = r.oid))));
    END LOOP;
    FOR r IN
        SELECT p.oid, p.polname, p.polrelid::regclass::text AS tbl, p.polpermissive,
               p.polcmd, p.polroles, pg_get_expr(p.polqual, p.polrelid) AS qual,
               pg_get_expr(p.polwithcheck, p.polrelid) AS wcheck
          FROM pg_policy p
         WHERE p.oid IN (SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_policy'::regclass
                           AND d.refobjid IN (SELECT to_regclass(table_name) FROM bm_partitioned_tables))
           AND p.polrelid NOT IN (SELECT to_regclass(table_name) FROM bm_partitioned_tables)
         ORDER BY p.oid
    LOOP
        other_policies := other_policies || jsonb_build_array(to_jsonb(r));
    END LOOP;
    FOR v IN SELECT * FROM jsonb_array_elements(views) LOOP
        EXECUTE format('DROP VIEW %I', v->>'name');
    END LOOP;
    FOR v IN SELECT * FROM jsonb_array_elements(other_policies) LOOP
        EXECUTE format('DROP POLICY %I ON %s', v->>'polname', v->>'tbl');
    END LOOP;
    -- The foreign key into survey_responses (see the header).
    FOR r IN SELECT conname, conrelid::regclass::text AS tbl FROM pg_constraint
              WHERE contype = 'f' AND confrelid IN (SELECT to_regclass(table_name) FROM bm_partitioned_tables)
    LOOP
        IF r.tbl <> 'survey_csi_scores' THEN
            RAISE EXCEPTION 'cannot partition: foreign key % of % references a record table', r.conname, r.tbl;
        END IF;
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
    END LOOP;

    FOR t, tc IN SELECT table_name, time_column FROM bm_partitioned_tables ORDER BY table_name LOOP
        rel := to_regclass(quote_ident(t));
        IF (SELECT relkind FROM pg_class WHERE oid = rel) = 'p' THEN
            CONTINUE;       -- already partitioned
        END IF;
        tmp := t || '_partitioned';
        SELECT coalesce(array_agg(pg_get_triggerdef(oid) ORDER BY tgname), '{}') INTO trigs
          FROM pg_trigger WHERE tgrelid = rel AND NOT tgisinternal;
        SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid), '{}') INTO idxs
          FROM pg_index i WHERE i.indrelid = rel
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = rel);
        SELECT coalesce(array_agg(format('ALTER TABLE %I ADD CONSTRAINT %I %s', t, conname,
                                         pg_get_constraintdef(oid)) ORDER BY conname), '{}') INTO fks
          FROM pg_constraint WHERE conrelid = rel AND contype = 'f';
        SELECT coalesce(jsonb_agg(jsonb_build_object('name', c.conname, 'kind', c.contype,
                   'cols', (SELECT array_agg(a.attname::text ORDER BY k.ord)
                              FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
                              JOIN pg_attribute a ON a.attrelid = rel AND a.attnum = k.num))), '[]')
          INTO uniqs FROM pg_constraint c WHERE c.conrelid = rel AND c.contype IN ('p', 'u');
        SELECT coalesce(jsonb_agg(jsonb_build_object('name', p.polname, 'permissive', p.polpermissive,
                   'cmd', p.polcmd, 'roles', p.polroles, 'qual', pg_get_expr(p.polqual, p.polrelid),
                   'wcheck', pg_get_expr(p.polwithcheck, p.polrelid))), '[]')
          INTO pols FROM pg_policy p WHERE p.polrelid = rel;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'grantee', CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                   'priv', a.privilege_type, 'grant', a.is_grantable)), '[]')
          INTO acls FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = rel AND a.grantee <> c.relowner;
        SELECT coalesce(jsonb_agg(jsonb_build_object('col', at.attname,
                   'grantee', CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                   'priv', a.privilege_type, 'grant', a.is_grantable)), '[]')
          INTO colacls FROM pg_attribute at, aclexplode(at.attacl) a
         WHERE at.attrelid = rel AND at.attnum > 0 AND NOT at.attisdropped AND at.attacl IS NOT NULL;
        SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner)
          INTO rls, force_rls, owner_name FROM pg_class WHERE oid = rel;
        SELECT coalesce(jsonb_agg(jsonb_build_object('col', a.attname,
                   'seq', pg_get_serial_sequence(quote_ident(t), a.attname))), '[]')
          INTO seqs FROM pg_attribute a
         WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
           AND pg_get_serial_sequence(quote_ident(t), a.attname) IS NOT NULL;

        -- The new table, its default partition, a partition per month that
        -- has rows (within 5 years back, 1 ahead), and this month .. +3.
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                       ' INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)'
                       ' PARTITION BY RANGE (%I)', tmp, t, tc);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', tmp);
        FOR r IN EXECUTE format(
            'SELECT DISTINCT date_trunc(''month'', %I AT TIME ZONE ''UTC'')::date AS m FROM %I'
            ' UNION SELECT (date_trunc(''month'', now() AT TIME ZONE ''UTC'') + make_interval(months => k))::date'
            '   FROM generate_series(-1, 3) k', tc, t)
        LOOP
            IF r.m >= (now() - interval '5 years')::date AND r.m <= (now() + interval '1 year')::date THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               t || '_p' || to_char(r.m, 'YYYYMM'), tmp,
                               r.m::timestamp AT TIME ZONE 'UTC',
                               (r.m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            END IF;
        END LOOP;
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', tmp, t);

        FOR v IN SELECT * FROM jsonb_array_elements(seqs) LOOP
            EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', v->>'seq');
        END LOOP;
        EXECUTE format('DROP TABLE %I', t);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', tmp, t);
        FOR v IN SELECT * FROM jsonb_array_elements(seqs) LOOP
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %I.%I', v->>'seq', t, v->>'col');
        END LOOP;

        -- Keys: the time column joins every primary and unique key.
        FOR v IN SELECT * FROM jsonb_array_elements(uniqs) LOOP
            SELECT string_agg(quote_ident(c), ', ') INTO cols
              FROM jsonb_array_elements_text(v->'cols') c;
            IF NOT (v->'cols') ? tc THEN
                cols := cols || ', ' || quote_ident(tc);
            END IF;
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s (%s)', t, v->>'name',
                           CASE v->>'kind' WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, cols);
        END LOOP;
        FOREACH def IN ARRAY idxs LOOP
            EXECUTE def;
        END LOOP;
        FOREACH def IN ARRAY fks LOOP
            EXECUTE def;
        END LOOP;
        FOREACH def IN ARRAY trigs LOOP
            EXECUTE def;
        END LOOP;
        IF rls THEN
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        END IF;
        IF force_rls THEN
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        END IF;
        FOR v IN SELECT * FROM jsonb_array_elements(pols) LOOP
            SELECT string_agg(CASE x::oid WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x::oid)) END, ', ')
              INTO roles FROM jsonb_array_elements_text(v->'roles') x;
            EXECUTE format('CREATE POLICY %I ON %I AS %s FOR %s TO %s%s%s', v->>'name', t,
                           CASE WHEN (v->>'permissive')::boolean THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                           CASE v->>'cmd' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                           roles,
                           CASE WHEN v->>'qual' IS NULL THEN '' ELSE ' USING (' || (v->>'qual') || ')' END,
                           CASE WHEN v->>'wcheck' IS NULL THEN '' ELSE ' WITH CHECK (' || (v->>'wcheck') || ')' END);
        END LOOP;
        FOR v IN SELECT * FROM jsonb_array_elements(acls) LOOP
            EXECUTE format('GRANT %s ON %I TO %s%s', v->>'priv', t, v->>'grantee',
                           CASE WHEN (v->>'grant')::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
        FOR v IN SELECT * FROM jsonb_array_elements(colacls) LOOP
            EXECUTE format('GRANT %s (%I) ON %I TO %s%s', v->>'priv', v->>'col', t, v->>'grantee',
                           CASE WHEN (v->>'grant')::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
        IF owner_name <> current_user THEN
            EXECUTE format('ALTER TABLE %I OWNER TO %I', t, owner_name);
        END IF;
    END LOOP;

    FOR v IN SELECT * FROM jsonb_array_elements(views) LOOP
        EXECUTE format('CREATE VIEW %I%s AS %s', v->>'name',
                       CASE WHEN v->>'options' = '' THEN '' ELSE ' WITH (' || (v->>'options') || ')' END,
                       v->>'def');
        IF v->>'owner' <> current_user THEN
            EXECUTE format('ALTER VIEW %I OWNER TO %I', v->>'name', v->>'owner');
        END IF;
        FOR r IN SELECT * FROM jsonb_to_recordset(v->'acl') AS x(grantee text, priv text, "grant" boolean) LOOP
            EXECUTE format('GRANT %s ON %I TO %s%s', r.priv, v->>'name', r.grantee,
                           CASE WHEN r."grant" THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END LOOP;
    FOR r IN SELECT * FROM jsonb_to_recordset(other_policies)
                 AS x(polname text, tbl text, polpermissive boolean, polcmd text, polroles oid[],
                      qual text, wcheck text)
    LOOP
        SELECT string_agg(CASE x WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x)) END, ', ')
          INTO roles FROM unnest(r.polroles) x;
        EXECUTE format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', r.polname, r.tbl,
                       CASE WHEN r.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                       CASE r.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                            WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                       roles,
                       CASE WHEN r.qual IS NULL THEN '' ELSE ' USING (' || r.qual || ')' END,
                       CASE WHEN r.wcheck IS NULL THEN '' ELSE ' WITH CHECK (' || r.wcheck || ')' END);
    END LOOP;
END $convert$;

DROP TRIGGER IF EXISTS survey_responses_csi_cascade ON survey_responses;
CREATE TRIGGER survey_responses_csi_cascade AFTER DELETE ON survey_responses
    REFERENCING OLD TABLE AS bm_old_responses FOR EACH STATEMENT
    EXECUTE FUNCTION bm_survey_csi_cascade();
