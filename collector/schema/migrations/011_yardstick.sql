-- 011_yardstick: the chain as yardstick for scoped logins, aggregates only;
-- and the smaller holes of issue 16 item 6 (docs/security.md).
--
-- A regional manager or a branch login sees, for every metric and period,
-- the chain's figure and every region's figure, and the chain-wide rank
-- range of each of its own branches, but no other region's branch codes,
-- names, values or counts.  Row-level security (003) keeps hiding every
-- branch row outside the caller's scope; what is new is a small set of
-- SECURITY DEFINER functions that return sums, never rows:
--
--   bm_yardstick(metric, kind, first, last, channel, segment, section,
--                target_s)          the additive sums (n, x, y, sum, sumsq,
--                                   histogram counts) per period of the
--                                   chain and of each region that is not
--                                   suppressed
--   bm_yardstick_suppressed()       which regions (and whether the chain)
--                                   are suppressed for the caller
--   bm_yardstick_positions(metric, kind, start)
--                                   the stored chain-wide rank range of the
--                                   caller's own branches only
--
-- Why this leaks nothing beyond those aggregates:
-- - The functions are owned by branchmark_yardstick, a NOLOGIN role that
--   may read the rollups, branches and regions (SELECT, and an RLS policy
--   of its own) and nothing else, and writes nothing; search_path is fixed;
--   EXECUTE is revoked from PUBLIC and granted to branchmark_regional and
--   branchmark_branch only.  No argument reaches SQL text: a metric name
--   picks one of the constant statements below (an unknown one is an
--   error), the values are bound with USING.
-- - The caller is session_user (inside a SECURITY DEFINER function
--   current_user is the owner); its branches come from
--   bm_scope_branch_ids(session_user).
-- - Minimum group size: a group's figure is published only when it
--   contains no active branch outside the caller's scope (it is the
--   caller's own) or at least bm_yardstick_min_branches() = 3 of them, so a
--   region of one or two branches does not reveal them, and a branch login
--   in a region of three does not learn the other two as a pair either.
--   The rule counts active branches, not branches with data in the period:
--   a pattern that depends only on the reference data is the same for
--   every metric, period, period kind and filter, so no combination of
--   calls (a month minus its days, all segments minus one) isolates a
--   suppressed group; a suppressed group's data are only ever seen summed.
-- - Complementary suppression: the chain minus the published regions is
--   the sum of the suppressed ones.  When that sum covers fewer than 3
--   branches outside the caller's scope, the smallest published regions
--   are suppressed as well until it covers 3; when no region is left to
--   add, the chain is suppressed too.  So every figure the caller can
--   derive by subtracting published ones covers at least 3 branches it
--   cannot see (or none).
-- - Rank positions: the statistics (estimates, pairwise tests, Holm) exist
--   once, in C (collector/report/stats.c).  Rather than a second copy in
--   PL/pgSQL (or a C extension inside the server), an HQ login computes the
--   chain-wide ranking with that code (`branchmark yardstick refresh`) and
--   stores each branch's range in yardstick_positions, which only HQ may
--   write and nobody scoped may read; bm_yardstick_positions returns the
--   caller's own branches' rows and the number ranked, and with them the
--   chain's n at refresh time, so that a report can tell a stale position
--   (the live chain n differs) from a current one.
-- - The branch-level statements below are the same text as the catalogue's
--   in collector/report/metric.c ($1 kind ... $9 ids, bound the same way);
--   the unit test test_yardstick_sql checks that every metric's statement there
--   appears here verbatim, so the yardstick cannot drift from the report.
--
-- Accepted, documented in docs/security.md: planner statistics in pg_class
-- (reltuples, relpages) and EXPLAIN's estimates show the chain's approximate
-- row counts per table; ids of the raw tables come from chain-wide
-- sequences, so the gaps between the ids of a branch's own rows count the
-- chain's records in between.  Both are volumes of the whole chain, no
-- region's or branch's figures.
--
-- Owns: branchmark_yardstick, bm_yardstick*, yardstick_runs,
-- yardstick_positions; replaces bm_scope_branch_ids and bm_scope_limited
-- (own name only); RLS on branch_versions; revokes the per-table
-- statistics views from PUBLIC.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'branchmark_yardstick') THEN
        CREATE ROLE branchmark_yardstick NOLOGIN;
    END IF;
    -- ALTER ... OWNER TO needs membership of the new owner (a superuser
    -- has it; a CREATEROLE admin grants it to itself).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'branchmark_yardstick', 'MEMBER') THEN
        EXECUTE format('GRANT branchmark_yardstick TO %I', current_user);
    END IF;
END $$;

---------------------------------------------------------------------------
-- Item 6: a role's scope is told only to that role
---------------------------------------------------------------------------
-- Before, any scoped login could ask bm_scope_branch_ids('another_login')
-- and learn another region's branch ids.  Now a name other than the
-- session's own login gives nothing (policies pass current_user, which
-- is the login itself; after SET ROLE to a group it is a role without a
-- scope, so nothing is visible, as before).
CREATE OR REPLACE FUNCTION bm_scope_branch_ids(who name) RETURNS SETOF int
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT b.id FROM access_scopes s JOIN branches b
        ON b.id = s.branch_id OR b.region_id = s.region_id
     WHERE s.role_name = who AND who = session_user
$$;

CREATE OR REPLACE FUNCTION bm_scope_limited(who name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM access_scopes WHERE role_name = who AND who = session_user)
$$;

-- branch_versions held every branch's name, region and coordinates for
-- every reader.
ALTER TABLE branch_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON branch_versions TO branchmark_collector, branchmark_hq,
    branchmark_reviewer USING (true);
CREATE POLICY scoped_read ON branch_versions FOR SELECT TO branchmark_regional,
    branchmark_branch USING (branch_id IN (SELECT bm_scope_branch_ids(current_user)));

-- pg_stat_user_tables and its kin count every table's rows (inserted, live,
-- scanned) for anyone: the chain's exact volumes, live.  Revoked from
-- PUBLIC, kept for HQ, reviewers and monitoring (pg_read_all_stats).  Only
-- a superuser may change pg_catalog; a non-superuser admin gets a notice
-- and the step is left to a superuser (docs/security.md).
DO $$
DECLARE
    v text;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'not a superuser: the pg_stat_*_tables views stay readable by every role (docs/security.md)';
        RETURN;
    END IF;
    FOREACH v IN ARRAY ARRAY['pg_stat_all_tables', 'pg_stat_user_tables', 'pg_stat_sys_tables',
            'pg_stat_xact_all_tables', 'pg_stat_xact_user_tables', 'pg_stat_xact_sys_tables',
            'pg_statio_all_tables', 'pg_statio_user_tables', 'pg_statio_sys_tables',
            'pg_stat_all_indexes', 'pg_stat_user_indexes', 'pg_statio_all_indexes',
            'pg_statio_user_indexes', 'pg_statio_all_sequences', 'pg_statio_user_sequences'] LOOP
        EXECUTE format('REVOKE SELECT ON pg_catalog.%I FROM PUBLIC', v);
        EXECUTE format('GRANT SELECT ON pg_catalog.%I TO pg_read_all_stats, branchmark_hq, '
                       'branchmark_reviewer', v);
    END LOOP;
    -- The functions behind them, so the numbers cannot be read directly.
    FOREACH v IN ARRAY ARRAY['pg_stat_get_live_tuples', 'pg_stat_get_dead_tuples',
            'pg_stat_get_tuples_inserted', 'pg_stat_get_tuples_updated',
            'pg_stat_get_tuples_deleted', 'pg_stat_get_tuples_hot_updated',
            'pg_stat_get_tuples_returned', 'pg_stat_get_tuples_fetched',
            'pg_stat_get_numscans', 'pg_stat_get_ins_since_vacuum',
            'pg_stat_get_mod_since_analyze', 'pg_stat_get_blocks_fetched',
            'pg_stat_get_blocks_hit', 'pg_stat_get_xact_tuples_inserted',
            'pg_stat_get_xact_tuples_updated', 'pg_stat_get_xact_tuples_deleted',
            'pg_stat_get_xact_tuples_returned', 'pg_stat_get_xact_tuples_fetched',
            'pg_stat_get_xact_numscans'] LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION pg_catalog.%I(oid) FROM PUBLIC', v);
        EXECUTE format('GRANT EXECUTE ON FUNCTION pg_catalog.%I(oid) TO pg_read_all_stats, '
                       'branchmark_hq, branchmark_reviewer', v);
    END LOOP;
END $$;

---------------------------------------------------------------------------
-- The yardstick's owner: reads rollups and reference data, nothing else
---------------------------------------------------------------------------

GRANT USAGE ON SCHEMA public TO branchmark_yardstick;
GRANT SELECT ON chain, regions, branches, rollup_traffic, rollup_sales, rollup_calls, rollup_complaints,
    rollup_surveys, rollup_customers, rollup_hist, rollup_scores TO branchmark_yardstick;
GRANT EXECUTE ON FUNCTION bm_scope_branch_ids(name) TO branchmark_yardstick;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['branches', 'rollup_traffic', 'rollup_sales', 'rollup_calls',
            'rollup_complaints', 'rollup_surveys', 'rollup_customers', 'rollup_hist',
            'rollup_scores'] LOOP
        EXECUTE format('CREATE POLICY yardstick_read ON %I FOR SELECT TO branchmark_yardstick '
                       'USING (true)', t);
    END LOOP;
END $$;

-- The minimum number of branches outside the caller's scope behind any
-- published figure.
CREATE FUNCTION bm_yardstick_min_branches() RETURNS int
LANGUAGE sql IMMUTABLE AS $$ SELECT 3 $$;

-- The statement of one metric, verbatim from the catalogue in
-- collector/report/metric.c (the `sql` of each entry): per (branch, period)
-- aggregates, $1 kind, $2 first, $3 last, $4 channel, $5 segment, $6
-- section, $7 answer target seconds, $8 outlet kind, $9 ids (NULL: all).
-- Quantile metrics give (id, period_start, counts).  NULL: unknown metric.
CREATE FUNCTION bm_yardstick_sql(metric text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $f$
SELECT CASE metric
WHEN 'ms_score' THEN $q$SELECT outlet_id, period_start::text, sum(n), 0, 0, sum(score_sum), sum(score_sumsq), '' FROM rollup_scores WHERE outlet_kind = $8 AND period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR outlet_id = ANY ($9::int[])) AND ($4 = '' OR channel = $4) AND ($5 = '' OR segment = $5) AND section = $6 GROUP BY period_start, outlet_id$q$
WHEN 'nps' THEN $q$SELECT branch_id, period_start::text, sum(nps_n), sum(promoters), sum(detractors), 0, 0, '' FROM rollup_surveys WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[])) AND ($5 = '' OR segment = $5) GROUP BY period_start, branch_id$q$
WHEN 'csi' THEN $q$SELECT branch_id, period_start::text, sum(csi_n), 0, 0, sum(csi_sum), sum(csi_sumsq), '' FROM rollup_surveys WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[])) AND ($5 = '' OR segment = $5) GROUP BY period_start, branch_id$q$
WHEN 'capture_rate' THEN $q$SELECT branch_id, period_start::text, passers_by, entrants, 0, 0, 0, '' FROM rollup_traffic WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))$q$
WHEN 'conversion' THEN $q$SELECT t.branch_id, t.period_start::text, t.entrants, coalesce(s.sales, 0), 0, 0, 0, '' FROM rollup_traffic t LEFT JOIN (SELECT branch_id, period_start, sum(sales) AS sales   FROM rollup_sales WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[])) GROUP BY 1, 2) s ON s.branch_id = t.branch_id AND s.period_start = t.period_start WHERE t.period_kind = $1 AND t.period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR t.branch_id = ANY ($9::int[]))$q$
WHEN 'avg_check' THEN $q$SELECT branch_id, period_start::text, sales, 0, 0, sales_minor, sales_minor_sq, currency FROM rollup_sales WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[])) AND sales > 0$q$
WHEN 'wait_p50' THEN $q$SELECT branch_id, period_start::text, counts FROM rollup_hist WHERE measure = 'queue_wait' AND period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))$q$
WHEN 'wait_p90' THEN $q$SELECT branch_id, period_start::text, counts FROM rollup_hist WHERE measure = 'queue_wait' AND period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))$q$
WHEN 'calls_answered_share' THEN $q$SELECT c.branch_id, c.period_start::text, c.calls, coalesce(h.x, 0), 0, 0, 0, '' FROM rollup_calls c LEFT JOIN (SELECT branch_id, period_start,   (SELECT sum(k) FROM unnest(counts[1:$7 + 1]) k) AS x   FROM rollup_hist WHERE measure = 'call_answer_wait' AND period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))) h ON h.branch_id = c.branch_id AND h.period_start = c.period_start WHERE c.period_kind = $1 AND c.period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR c.branch_id = ANY ($9::int[]))$q$
WHEN 'calls_abandoned_share' THEN $q$SELECT branch_id, period_start::text, calls, abandoned, 0, 0, 0, '' FROM rollup_calls WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))$q$
WHEN 'complaints_per_1000' THEN $q$SELECT t.branch_id, t.period_start::text, t.entrants, coalesce(c.complaints, 0), 0, 0, 0, '' FROM rollup_traffic t LEFT JOIN rollup_complaints c ON c.branch_id = t.branch_id AND c.period_kind = t.period_kind AND c.period_start = t.period_start WHERE t.period_kind = $1 AND t.period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR t.branch_id = ANY ($9::int[]))$q$
WHEN 'complaint_resolve_median' THEN $q$SELECT branch_id, period_start::text, counts FROM rollup_hist WHERE measure = 'complaint_resolve' AND period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))$q$
WHEN 'complaints_open' THEN $q$SELECT branch_id, period_start::text, complaints, open, 0, 0, 0, '' FROM rollup_complaints WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))$q$
WHEN 'customer_balance' THEN $q$SELECT branch_id, period_start::text, gained + lost, gained - lost, 0, 0, 0, '' FROM rollup_customers WHERE period_kind = $1 AND period_start BETWEEN $2 AND $3 AND ($9::int[] IS NULL OR branch_id = ANY ($9::int[]))$q$
END
$f$;

-- The groups suppressed for the caller (see the header): region ids, and
-- whether the chain is.  Depends on the reference data only.
CREATE FUNCTION bm_yardstick_hidden(own int[], OUT regions int[], OUT chain boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k constant int := bm_yardstick_min_branches();
    g record;
    hidden_others bigint := 0;
    all_others bigint := 0;
BEGIN
    regions := '{}';
    -- First the groups too small by themselves.
    FOR g IN SELECT r.id, count(b.id) FILTER (WHERE NOT b.id = ANY (own)) AS others
               FROM regions r LEFT JOIN branches b ON b.region_id = r.id AND b.active
              GROUP BY r.id LOOP
        all_others := all_others + g.others;
        IF g.others > 0 AND g.others < k THEN
            regions := regions || g.id;
            hidden_others := hidden_others + g.others;
        END IF;
    END LOOP;
    chain := all_others > 0 AND all_others < k;
    -- Then the smallest published ones, until the suppressed together
    -- cover k branches the caller cannot see.
    IF hidden_others > 0 AND hidden_others < k THEN
        FOR g IN SELECT r.id, count(b.id) FILTER (WHERE NOT b.id = ANY (own)) AS others
                   FROM regions r JOIN branches b ON b.region_id = r.id AND b.active
                  WHERE NOT r.id = ANY (regions)
                  GROUP BY r.id HAVING count(b.id) FILTER (WHERE NOT b.id = ANY (own)) > 0
                  ORDER BY 2, r.id LOOP
            EXIT WHEN hidden_others >= k;
            regions := regions || g.id;
            hidden_others := hidden_others + g.others;
        END LOOP;
        IF hidden_others < k THEN
            chain := true;
        END IF;
    END IF;
END $$;

-- What a report marks as suppressed: scope 'chain' or 'region' with its code.
CREATE FUNCTION bm_yardstick_suppressed() RETURNS TABLE (scope text, code text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    h record;
BEGIN
    h := bm_yardstick_hidden(ARRAY(SELECT bm_scope_branch_ids(session_user)));
    RETURN QUERY SELECT 'region'::text, r.code FROM regions r WHERE r.id = ANY (h.regions)
                 ORDER BY r.code;
    IF h.chain THEN
        RETURN QUERY SELECT 'chain'::text, c.code FROM chain c;
    END IF;
END $$;

-- The chain's and the published regions' sums per period of one metric
-- (see the header).  Columns as the report's aggregates: n, x, y, sum,
-- sumsq, currency ('*': more than one), counts (histograms, element-wise
-- sums); branches = the group's active branches.  Suppressed groups have
-- no rows.  At most 120 periods, as the report reads.
CREATE FUNCTION bm_yardstick(metric text, kind text, first date, last date, channel text,
                             segment text, section text, target_s int)
RETURNS TABLE (scope text, code text, period_start date, branches bigint, n numeric,
               x numeric, y numeric, sum numeric, sumsq numeric, currency text,
               counts bigint[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    stmt text := bm_yardstick_sql(metric);
    h record;
    quantile boolean := metric IN ('wait_p50', 'wait_p90', 'complaint_resolve_median');
BEGIN
    IF stmt IS NULL THEN
        RAISE EXCEPTION 'unknown metric "%"', metric;
    END IF;
    IF kind IS NULL OR kind NOT IN ('day', 'week', 'month', 'quarter') THEN
        RAISE EXCEPTION 'unknown period kind "%"', kind;
    END IF;
    IF first IS NULL OR last IS NULL OR last < first OR last - first > 120 * 92 THEN
        RAISE EXCEPTION 'period range % .. % is empty or too long', first, last;
    END IF;
    h := bm_yardstick_hidden(ARRAY(SELECT bm_scope_branch_ids(session_user)));
    IF quantile THEN
        RETURN QUERY EXECUTE format(
            'WITH q AS (SELECT q.id, q.ps::date AS ps, q.counts FROM (%s) q(id, ps, counts)),'
            ' t AS (SELECT b.region_id, q.ps, u.i, u.c FROM q JOIN branches b ON b.id = q.id'
            '        AND b.active, unnest(q.counts) WITH ORDINALITY u(c, i)),'
            ' s AS (SELECT region_id, ps, i, sum(c)::bigint AS c, grouping(region_id) AS g'
            '        FROM t GROUP BY GROUPING SETS ((ps, region_id, i), (ps, i))),'
            ' a AS (SELECT region_id, ps, g, array_agg(c ORDER BY i) AS counts FROM s'
            '        GROUP BY region_id, ps, g)'
            ' SELECT CASE WHEN a.g = 1 THEN ''chain'' ELSE ''region'' END,'
            '        CASE WHEN a.g = 1 THEN (SELECT code FROM chain WHERE id = 1) ELSE r.code END,'
            '        a.ps, (SELECT count(*) FROM branches b WHERE b.active'
            '                 AND (a.g = 1 OR b.region_id = a.region_id)),'
            '        (SELECT sum(v) FROM unnest(a.counts) v)::numeric, 0::numeric, 0::numeric,'
            '        0::numeric, 0::numeric, ''''::text, a.counts'
            '   FROM a LEFT JOIN regions r ON r.id = a.region_id'
            '  WHERE (a.g = 1 AND NOT $10) OR (a.g = 0 AND NOT a.region_id = ANY ($11))'
            '  ORDER BY a.g DESC, r.code, a.ps', stmt)
        USING kind, first, last, coalesce(channel, ''), coalesce(segment, ''),
              coalesce(section, ''), coalesce(target_s, 20), 'branch', NULL::int[],
              h.chain, h.regions;
    ELSE
        RETURN QUERY EXECUTE format(
            'WITH q AS (SELECT q.id, q.ps::date AS ps, q.n, q.x, q.y, q.s, q.ss, q.cur'
            '             FROM (%s) q(id, ps, n, x, y, s, ss, cur)),'
            ' a AS (SELECT b.region_id, q.ps, grouping(b.region_id) AS g, sum(q.n) AS n,'
            '              sum(q.x) AS x, sum(q.y) AS y, sum(q.s) AS s, sum(q.ss) AS ss,'
            '              CASE WHEN count(DISTINCT nullif(q.cur, '''')) > 1 THEN ''*'''
            '                   ELSE coalesce(max(nullif(q.cur, '''')), '''') END AS cur'
            '         FROM q JOIN branches b ON b.id = q.id AND b.active'
            '        GROUP BY GROUPING SETS ((q.ps, b.region_id), (q.ps)))'
            ' SELECT CASE WHEN a.g = 1 THEN ''chain'' ELSE ''region'' END,'
            '        CASE WHEN a.g = 1 THEN (SELECT code FROM chain WHERE id = 1) ELSE r.code END,'
            '        a.ps, (SELECT count(*) FROM branches b WHERE b.active'
            '                 AND (a.g = 1 OR b.region_id = a.region_id)),'
            '        a.n::numeric, a.x::numeric, a.y::numeric, a.s::numeric, a.ss::numeric,'
            '        a.cur, NULL::bigint[]'
            '   FROM a LEFT JOIN regions r ON r.id = a.region_id'
            '  WHERE (a.g = 1 AND NOT $10) OR (a.g = 0 AND NOT a.region_id = ANY ($11))'
            '  ORDER BY a.g DESC, r.code, a.ps', stmt)
        USING kind, first, last, coalesce(channel, ''), coalesce(segment, ''),
              coalesce(section, ''), coalesce(target_s, 20), 'branch', NULL::int[],
              h.chain, h.regions;
    END IF;
END $$;

---------------------------------------------------------------------------
-- Chain-wide rank positions, computed by HQ with the report's own code
---------------------------------------------------------------------------

-- One ranking of the whole chain (default filters, the metric's default
-- minimum n unless min_n says otherwise), as `branchmark yardstick
-- refresh` computed it.
CREATE TABLE yardstick_runs (
    metric       text NOT NULL CHECK (bm_yardstick_sql(metric) IS NOT NULL),
    period_kind  text NOT NULL CHECK (period_kind IN ('day', 'week', 'month', 'quarter')),
    period_start date NOT NULL,
    min_n        numeric NOT NULL,
    chain_n      numeric NOT NULL,       -- the chain line's n it was computed from
    ranked       int NOT NULL CHECK (ranked >= 0),
    computed_at  timestamptz NOT NULL DEFAULT now(),
    computed_by  name NOT NULL DEFAULT session_user,
    PRIMARY KEY (metric, period_kind, period_start)
);

-- The rank range of every ranked branch of a run.
CREATE TABLE yardstick_positions (
    metric       text NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    branch_id    int NOT NULL REFERENCES branches(id),
    rank_lo      int NOT NULL,
    rank_hi      int NOT NULL,
    PRIMARY KEY (metric, period_kind, period_start, branch_id),
    FOREIGN KEY (metric, period_kind, period_start) REFERENCES yardstick_runs ON DELETE CASCADE,
    CHECK (1 <= rank_lo AND rank_lo <= rank_hi)
);

-- HQ computes and writes the rankings; reviewers read them; scoped roles
-- only through bm_yardstick_positions.
GRANT SELECT, INSERT, DELETE ON yardstick_runs, yardstick_positions TO branchmark_hq;
GRANT SELECT ON yardstick_runs, yardstick_positions TO branchmark_reviewer, branchmark_yardstick;

-- The caller's own active branches with their stored chain-wide range in
-- the run of (metric, kind, start): rank NULL = not ranked there (low n or
-- no data).  No rows when there is no such run.
CREATE FUNCTION bm_yardstick_positions(metric text, kind text, start date)
RETURNS TABLE (branch text, rank_lo int, rank_hi int, ranked int, min_n numeric,
               chain_n numeric, computed_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT b.code, p.rank_lo, p.rank_hi, r.ranked, r.min_n, r.chain_n, r.computed_at
      FROM yardstick_runs r
      JOIN branches b ON b.active AND b.id IN (SELECT bm_scope_branch_ids(session_user))
      LEFT JOIN yardstick_positions p ON p.metric = r.metric AND p.period_kind = r.period_kind
            AND p.period_start = r.period_start AND p.branch_id = b.id
     WHERE r.metric = $1 AND r.period_kind = $2 AND r.period_start = $3
     ORDER BY b.code
$$;

-- Owned by the yardstick role, callable by the scoped groups only.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['bm_yardstick_min_branches()', 'bm_yardstick_sql(text)',
            'bm_yardstick_hidden(int[])', 'bm_yardstick_suppressed()',
            'bm_yardstick(text, text, date, date, text, text, text, int)',
            'bm_yardstick_positions(text, text, date)'] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO branchmark_yardstick', f);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    FOREACH f IN ARRAY ARRAY['bm_yardstick_suppressed()',
            'bm_yardstick(text, text, date, date, text, text, text, int)',
            'bm_yardstick_positions(text, text, date)'] LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO branchmark_regional, branchmark_branch', f);
    END LOOP;
END $$;
-- The CHECK of yardstick_runs calls bm_yardstick_sql as the inserting role.
GRANT EXECUTE ON FUNCTION bm_yardstick_sql(text) TO branchmark_hq;
