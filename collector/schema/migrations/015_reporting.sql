-- 015_reporting: the `reporting` schema, a versioned read-only contract for
-- BI tools (Grafana, Metabase, Power BI) that log in with a person's own
-- role (docs/reporting.md; issue 19 item 3).
--
-- Owns: schema reporting, reporting.version(), the statistics functions
-- reporting.* (ports of collector/report/stats.c and dist.c), the views
-- reporting.branch_aggregates_v1, reporting.branch_metrics_v1,
-- reporting.region_metrics_v1, reporting.chain_metrics_v1 and
-- reporting.contract_v1, and the helper reporting.scope_regions().
--
-- Why the views cannot leak:
-- - Every view is WITH (security_invoker = true): the rollups are read with
--   the caller's privileges and under the caller's row-level security
--   (003, 007, 011), not the owner's (the admin, who is not subject to RLS).
--   A regional login sees its region's branches only, a branch login its
--   branch; nothing here widens that.
-- - Aggregate lines are sums of the rows the caller sees.  A region line
--   is shown only to unscoped logins (HQ, reviewer) and to a regional login
--   for its own region, where the sum of its rows is the whole region; a
--   chain line only to unscoped logins (a scoped login's sum would be its
--   scope, not the chain; its chain figures come from the yardstick, 011).
--   reporting.scope_regions() tells a caller only its own scope, like
--   bm_scope_branch_ids.
-- - USAGE and SELECT/EXECUTE go to the hq, regional and branch groups
--   only; PUBLIC has nothing (the collector reads no rollups).
--
-- The contract: version 1 is the set of *_v1 views with the columns and
-- types listed in reporting.contract_v1 (tests/integration/test_reporting.sh
-- fails when a column disappears or changes type).  A later migration may
-- add views (_v2) or functions, never change or drop a _v1 column;
-- reporting.version() returns the newest contract version.

CREATE SCHEMA reporting;
COMMENT ON SCHEMA reporting IS
    'Branchmark reporting contract for BI tools (docs/reporting.md); views *_v1 are stable';

CREATE FUNCTION reporting.version() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1 $$;

---------------------------------------------------------------------------
-- Statistics: line-by-line ports of report/stats.c and report/dist.c, in
-- float8 as in C, so that the figures equal the CLI's to the displayed
-- decimals.  PostgreSQL raises an error where C silently underflows to 0,
-- hence the guards on exp(); lgamma (not in PostgreSQL 15) is Lanczos'.
---------------------------------------------------------------------------

CREATE FUNCTION reporting.z95() RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1.959964::float8 $$;

CREATE FUNCTION reporting.s_exp(v float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v < -700 THEN 0::float8 ELSE exp(v) END
$$;

-- log Gamma(x), x > 0: Lanczos (g = 7, 9 coefficients), relative error
-- about 1e-15, with the reflection formula below 0.5.
CREATE FUNCTION reporting.lgamma(x float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    c float8[] := ARRAY[0.99999999999980993, 676.5203681218851, -1259.1392167224028,
                        771.32342877765313, -176.61502916214059, 12.507343278686905,
                        -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
    a float8;
    t float8;
    y float8 := x;
BEGIN
    IF y < 0.5 THEN
        RETURN ln(pi() / abs(sin(pi() * y))) - reporting.lgamma(1 - y);
    END IF;
    y := y - 1;
    a := c[1];
    t := y + 7.5;
    FOR i IN 1..8 LOOP
        a := a + c[i + 1] / (y + i);
    END LOOP;
    RETURN 0.5 * ln(2 * pi()) + (y + 0.5) * ln(t) - t + ln(a);
END $$;

-- Continued fraction of the incomplete beta (dist.c s_betacf).
CREATE FUNCTION reporting.s_betacf(a float8, b float8, x float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    tiny float8 := 1e-300;
    qab float8 := a + b; qap float8 := a + 1; qam float8 := a - 1;
    c float8 := 1; d float8; h float8; aa float8; del float8; m2 int;
BEGIN
    d := 1 - qab * x / qap;
    IF abs(d) < tiny THEN d := tiny; END IF;
    d := 1 / d;
    h := d;
    FOR m IN 1..1000 LOOP
        m2 := 2 * m;
        aa := m * (b - m) * x / ((qam + m2) * (a + m2));
        d := 1 + aa * d; IF abs(d) < tiny THEN d := tiny; END IF;
        c := 1 + aa / c; IF abs(c) < tiny THEN c := tiny; END IF;
        d := 1 / d;
        h := h * d * c;
        aa := -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d := 1 + aa * d; IF abs(d) < tiny THEN d := tiny; END IF;
        c := 1 + aa / c; IF abs(c) < tiny THEN c := tiny; END IF;
        d := 1 / d;
        del := d * c;
        h := h * del;
        EXIT WHEN abs(del - 1) < 1e-15;
    END LOOP;
    RETURN h;
END $$;

CREATE FUNCTION reporting.ibeta(a float8, b float8, x float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    bt float8;
BEGIN
    IF x <= 0 THEN RETURN 0; END IF;
    IF x >= 1 THEN RETURN 1; END IF;
    bt := reporting.s_exp(reporting.lgamma(a + b) - reporting.lgamma(a) - reporting.lgamma(b)
                          + a * ln(x) + b * ln(1 - x));
    IF x < (a + 1) / (a + b + 2) THEN
        RETURN CASE WHEN bt = 0 THEN 0 ELSE bt * reporting.s_betacf(a, b, x) / a END;
    END IF;
    RETURN CASE WHEN bt = 0 THEN 1 ELSE 1 - bt * reporting.s_betacf(b, a, 1 - x) / b END;
END $$;

-- Two-sided p of Student's t (dist.c bm_t_p2), df > 0 finite.
CREATE FUNCTION reporting.t_p2(t float8, df float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT reporting.ibeta(df / 2, 0.5, df / (df + t * t))
$$;

-- The 97.5% quantile of t with df degrees of freedom (dist.c bm_t_crit,
-- same bracket and bisection).  Beyond 1e7 df C uses the normal
-- distribution (erfc, not in PostgreSQL 15): z95 here, 1.5e-8 apart.
CREATE FUNCTION reporting.t95(df float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lo float8 := 0; hi float8 := 2; mid float8;
BEGIN
    IF df > 1e7 THEN RETURN reporting.z95(); END IF;
    WHILE reporting.t_p2(hi, df) > 0.05 AND hi < 1e12 LOOP
        hi := hi * 2;
    END LOOP;
    FOR i IN 1..200 LOOP
        EXIT WHEN NOT (hi - lo > 1e-12 * hi);
        mid := 0.5 * (lo + hi);
        IF reporting.t_p2(mid, df) > 0.05 THEN lo := mid; ELSE hi := mid; END IF;
    END LOOP;
    RETURN 0.5 * (lo + hi);
END $$;

-- Regularised lower incomplete gamma P(a, x) (dist.c bm_gamma_p).
CREATE FUNCTION reporting.gamma_p(a float8, x float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    tiny float8 := 1e-300;
    gln float8; ap float8; s float8; del float8;
    b float8; c float8; d float8; h float8; an float8;
BEGIN
    IF NOT (x > 0) THEN RETURN 0; END IF;
    gln := reporting.lgamma(a);
    IF x < a + 1 THEN
        ap := a; s := 1 / a; del := s;
        FOR n IN 0..9999 LOOP
            ap := ap + 1;
            del := del * x / ap;
            s := s + del;
            EXIT WHEN abs(del) < abs(s) * 1e-15;
        END LOOP;
        RETURN reporting.s_exp(ln(s) - x + a * ln(x) - gln);
    END IF;
    b := x + 1 - a; c := 1 / tiny; d := 1 / b; h := d;
    FOR i IN 1..9999 LOOP
        an := -i * (i - a);
        b := b + 2;
        d := an * d + b; IF abs(d) < tiny THEN d := tiny; END IF;
        c := b + an / c; IF abs(c) < tiny THEN c := tiny; END IF;
        d := 1 / d;
        del := d * c;
        h := h * del;
        EXIT WHEN abs(del - 1) < 1e-15;
    END LOOP;
    RETURN 1 - reporting.s_exp(-x + a * ln(x) - gln + ln(h));
END $$;

CREATE FUNCTION reporting.gamma_quantile(a float8, p float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lo float8 := 0; hi float8 := a + 10 * sqrt(a) + 10; mid float8;
BEGIN
    WHILE reporting.gamma_p(a, hi) < p AND hi < 1e300 LOOP
        hi := hi * 2;
    END LOOP;
    FOR i IN 1..200 LOOP
        EXIT WHEN NOT (hi - lo > 1e-12 * greatest(hi, 1));
        mid := 0.5 * (lo + hi);
        IF reporting.gamma_p(a, mid) < p THEN lo := mid; ELSE hi := mid; END IF;
    END LOOP;
    RETURN 0.5 * (lo + hi);
END $$;

-- Garwood (1936) exact Poisson limits on x events (stats.c s_garwood).
CREATE FUNCTION reporting.garwood_lo(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN x > 0 THEN reporting.gamma_quantile(x, 0.025) ELSE 0 END
$$;
CREATE FUNCTION reporting.garwood_hi(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT reporting.gamma_quantile(x + 1, 0.975)
$$;

-- Wilson score interval with continuity correction, Newcombe (1998)
-- method 4 (stats.c bm_wilson_cc), as proportions 0..1; NULL when x is
-- outside 0..n.
CREATE FUNCTION reporting.wilson_cc(x float8, n float8, OUT lo float8, OUT hi float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    z float8 := reporting.z95();
    p float8; q float8; z2 float8; d float8; r float8;
BEGIN
    IF NOT (n > 0) OR NOT (x >= 0) OR x > n THEN RETURN; END IF;
    p := x / n; q := 1 - p; z2 := z * z; d := 2 * (n + z2);
    lo := 0; hi := 1;
    IF x > 0 THEN
        r := z2 - 2 - 1 / n + 4 * p * (n * q + 1);
        lo := (2 * n * p + z2 - 1 - z * sqrt(greatest(r, 0))) / d;
    END IF;
    IF x < n THEN
        r := z2 + 2 - 1 / n + 4 * p * (n * q - 1);
        hi := (2 * n * p + z2 + 1 + z * sqrt(greatest(r, 0))) / d;
    END IF;
    lo := greatest(lo, 0);
    hi := least(hi, 1);
END $$;

-- The NPS score statistic of H0: NPS = theta (stats.c s_nps_score).
CREATE FUNCTION reporting.s_nps_score(p float8, d float8, n float8, theta float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    o float8 := n - p - d;
    b float8 := p * (1 + 3 * theta) + d * (1 + theta) + 2 * o * theta;
    disc float8;
    lo float8 := greatest(theta, 0);
    hi float8 := (1 + theta) / 2;
    cand float8[];
    best float8; bl float8 := '-Infinity'; a float8; l float8; pb float8; pc float8;
    v float8; dd float8;
BEGIN
    disc := b * b - 8 * n * p * theta * (1 + theta);
    cand := ARRAY[lo, hi, lo, hi];
    IF disc >= 0 THEN
        cand[3] := (b - sqrt(disc)) / (4 * n);
        cand[4] := (b + sqrt(disc)) / (4 * n);
    END IF;
    best := lo;
    FOR i IN 1..4 LOOP
        a := least(greatest(cand[i], lo), hi);
        -- s_nps_loglik(P, D, O, a, theta)
        pb := a - theta; pc := 1 - a - pb;
        IF a < 0 OR pb < 0 OR pc < 0 THEN
            l := '-Infinity';
        ELSE
            l := 0;
            IF p > 0 THEN l := l + CASE WHEN a > 0 THEN p * ln(a) ELSE '-Infinity' END; END IF;
            IF d > 0 THEN l := l + CASE WHEN pb > 0 THEN d * ln(pb) ELSE '-Infinity' END; END IF;
            IF o > 0 THEN l := l + CASE WHEN pc > 0 THEN o * ln(pc) ELSE '-Infinity' END; END IF;
        END IF;
        IF l > bl THEN bl := l; best := a; END IF;
    END LOOP;
    v := 2 * best - theta - theta * theta;
    dd := (p - d) / n - theta;
    IF NOT (v > 1e-15) THEN
        RETURN CASE WHEN dd = 0 THEN 0 WHEN dd > 0 THEN 'Infinity'::float8 ELSE '-Infinity'::float8 END;
    END IF;
    RETURN dd / sqrt(v / n);
END $$;

-- The NPS score interval in points (-100..100), stats.c bm_est_nps.
CREATE FUNCTION reporting.nps_interval(p float8, d float8, n float8, OUT lo float8, OUT hi float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v float8; ins float8; outs float8; mid float8;
BEGIN
    IF NOT (n > 0) OR p < 0 OR d < 0 OR p + d > n THEN RETURN; END IF;
    v := p / n - d / n;
    FOR side IN 0..1 LOOP
        IF (side = 0 AND v <= -1) OR (side = 1 AND v >= 1) THEN
            mid := CASE WHEN side = 0 THEN -1 ELSE 1 END;
        ELSE
            ins := v; outs := CASE WHEN side = 0 THEN -1 ELSE 1 END;
            FOR i IN 1..60 LOOP
                mid := 0.5 * (ins + outs);
                IF abs(reporting.s_nps_score(p, d, n, mid)) <= reporting.z95() THEN
                    ins := mid;
                ELSE
                    outs := mid;
                END IF;
            END LOOP;
            mid := ins;
        END IF;
        IF side = 0 THEN lo := mid * 100; ELSE hi := mid * 100; END IF;
    END LOOP;
END $$;

-- The value at continuous rank r of a histogram (stats.c s_hist_at_rank);
-- counts[1] is bucket 0; overflow is the 0-based overflow bucket.
CREATE FUNCTION reporting.hist_at_rank(counts bigint[], overflow int, width float8, r float8)
RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    before float8 := 0; last_nonempty int := 0; c float8; frac float8;
BEGIN
    FOR i IN 0..coalesce(array_length(counts, 1), 0) - 1 LOOP
        CONTINUE WHEN coalesce(counts[i + 1], 0) = 0;
        last_nonempty := i;
        c := counts[i + 1];
        IF r <= before + c THEN
            IF i = overflow THEN RETURN i * width; END IF;
            frac := greatest((r - before) / c, 0);
            RETURN (i + frac) * width;
        END IF;
        before := before + c;
    END LOOP;
    IF last_nonempty = overflow THEN RETURN last_nonempty * width; END IF;
    RETURN (last_nonempty + 1) * width;
END $$;

---------------------------------------------------------------------------
-- The catalogue's constants (report/metric.c) for the metrics of v1.
---------------------------------------------------------------------------

CREATE VIEW reporting.metrics_v1 WITH (security_invoker = true) AS
SELECT * FROM (VALUES
    ('ms_score', '%', true, 'mean', 'evaluations', 3, 1, 'Student t, pooled within-branch SD floor'),
    ('nps', 'points', true, 'nps', 'survey answers', 30, 1, 'score interval (Tango/Wilson construction)'),
    ('csi', 'index', true, 'mean', 'survey answers', 30, 1, 'Student t'),
    ('capture_rate', '%', true, 'proportion', 'passers-by', 30, 1, 'Wilson, continuity-corrected'),
    ('conversion', '%', true, 'proportion', 'entrants', 30, 1, 'Wilson, continuity-corrected'),
    ('avg_check', 'currency', true, 'mean', 'sales', 30, 2, 'Student t'),
    ('wait_p50', 's', false, 'quantile', 'called tickets', 30, 0, 'order statistics'),
    ('wait_p90', 's', false, 'quantile', 'called tickets', 30, 0, 'order statistics'),
    ('calls_answered_share', '%', true, 'proportion', 'calls', 30, 1, 'Wilson, continuity-corrected'),
    ('calls_abandoned_share', '%', false, 'proportion', 'calls', 30, 1, 'Wilson, continuity-corrected'),
    ('complaints_per_1000', 'per 1000', false, 'rate1000', 'entrants', 30, 2, 'Garwood (exact Poisson) on complaints'),
    ('complaint_resolve_median', 'h', false, 'quantile', 'resolved complaints', 30, 1, 'order statistics'),
    ('complaints_open', 'count', false, 'count', 'complaints', 30, 0, 'Garwood (exact Poisson)'),
    ('customer_balance', 'count', true, 'balance', 'customer changes', 30, 0, 'normal, Var = gained + lost')
) AS m(metric, unit, higher_better, family, n_counts, min_n, decimals, interval_method);

---------------------------------------------------------------------------
-- Per branch and period: the additive aggregates the CLI reads (metric.c's
-- statements with no channel, segment or section filter and the answer
-- target of 20 s), for the caller's visible active branches.
-- n, x, y, sum, sumsq as in bm_q_agg_t; counts: histogram buckets
-- (quantile metrics; counts[1] = bucket 0); currencies: avg_check's.
---------------------------------------------------------------------------

CREATE VIEW reporting.branch_aggregates_v1 WITH (security_invoker = true) AS
WITH a AS (
    SELECT 'ms_score' AS metric, outlet_id AS branch_id, period_kind, period_start,
           sum(n)::float8 AS n, 0::float8 AS x, 0::float8 AS y,
           sum(score_sum)::float8 AS sum, sum(score_sumsq)::float8 AS sumsq,
           NULL::bigint[] AS counts, NULL::text[] AS currencies
      FROM rollup_scores WHERE outlet_kind = 'branch' AND section = ''
     GROUP BY outlet_id, period_kind, period_start
    UNION ALL
    SELECT 'nps', branch_id, period_kind, period_start, sum(nps_n), sum(promoters), sum(detractors),
           0, 0, NULL, NULL
      FROM rollup_surveys GROUP BY branch_id, period_kind, period_start
    UNION ALL
    SELECT 'csi', branch_id, period_kind, period_start, sum(csi_n), 0, 0, sum(csi_sum), sum(csi_sumsq),
           NULL, NULL
      FROM rollup_surveys GROUP BY branch_id, period_kind, period_start
    UNION ALL
    SELECT 'capture_rate', branch_id, period_kind, period_start, passers_by, entrants, 0, 0, 0, NULL, NULL
      FROM rollup_traffic
    UNION ALL
    SELECT 'conversion', t.branch_id, t.period_kind, t.period_start, t.entrants, coalesce(s.sales, 0),
           0, 0, 0, NULL, NULL
      FROM rollup_traffic t LEFT JOIN (SELECT branch_id, period_kind, period_start, sum(sales) AS sales
                                         FROM rollup_sales GROUP BY 1, 2, 3) s
        ON s.branch_id = t.branch_id AND s.period_kind = t.period_kind AND s.period_start = t.period_start
    UNION ALL
    SELECT 'avg_check', branch_id, period_kind, period_start, sum(sales), 0, 0, sum(sales_minor),
           sum(sales_minor_sq), NULL, array_agg(DISTINCT currency)
      FROM rollup_sales WHERE sales > 0 GROUP BY branch_id, period_kind, period_start
    UNION ALL
    SELECT q.metric, h.branch_id, h.period_kind, h.period_start, 0, 0, 0, 0, 0, h.counts, NULL
      FROM rollup_hist h CROSS JOIN (VALUES ('wait_p50'), ('wait_p90')) q(metric)
     WHERE h.measure = 'queue_wait'
    UNION ALL
    SELECT 'complaint_resolve_median', branch_id, period_kind, period_start, 0, 0, 0, 0, 0, counts, NULL
      FROM rollup_hist WHERE measure = 'complaint_resolve'
    UNION ALL
    SELECT 'calls_answered_share', c.branch_id, c.period_kind, c.period_start, c.calls,
           coalesce((SELECT sum(k) FROM unnest(h.counts[1:21]) k), 0), 0, 0, 0, NULL, NULL
      FROM rollup_calls c LEFT JOIN rollup_hist h ON h.measure = 'call_answer_wait'
       AND h.branch_id = c.branch_id AND h.period_kind = c.period_kind AND h.period_start = c.period_start
    UNION ALL
    SELECT 'calls_abandoned_share', branch_id, period_kind, period_start, calls, abandoned, 0, 0, 0, NULL, NULL
      FROM rollup_calls
    UNION ALL
    SELECT 'complaints_per_1000', t.branch_id, t.period_kind, t.period_start, t.entrants,
           coalesce(c.complaints, 0), 0, 0, 0, NULL, NULL
      FROM rollup_traffic t LEFT JOIN rollup_complaints c ON c.branch_id = t.branch_id
       AND c.period_kind = t.period_kind AND c.period_start = t.period_start
    UNION ALL
    SELECT 'complaints_open', branch_id, period_kind, period_start, complaints, open, 0, 0, 0, NULL, NULL
      FROM rollup_complaints
    UNION ALL
    SELECT 'customer_balance', branch_id, period_kind, period_start, gained + lost, gained - lost,
           0, 0, 0, NULL, NULL
      FROM rollup_customers
)
SELECT a.metric, a.period_kind, a.period_start, b.code AS branch, b.name AS branch_name,
       r.code AS region, a.branch_id, b.region_id,
       CASE WHEN a.counts IS NULL THEN a.n
            ELSE (SELECT coalesce(sum(k), 0) FROM unnest(a.counts) k) END::float8 AS n,
       a.x, a.y, a.sum, a.sumsq, a.counts, a.currencies
  FROM a JOIN branches b ON b.id = a.branch_id AND b.active
  JOIN regions r ON r.id = b.region_id;

---------------------------------------------------------------------------
-- One aggregate -> value and 95% interval in the display unit
-- (metric.c bm_q_estimate_pooled).  pool_ss, pool_df: the pooled
-- within-branch sums of squares of the comparison set (ms_score only;
-- NULL for aggregate lines, which keep their own SD).
---------------------------------------------------------------------------

CREATE FUNCTION reporting.estimate(metric text, n float8, x float8, y float8, sum float8,
                                   sumsq float8, counts bigint[], currencies text[],
                                   pool_ss float8, pool_df float8,
                                   OUT value float8, OUT ci_low float8, OUT ci_high float8)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    ss float8; sd float8 := 0; sp float8 := 0; t float8; df float8; k float8;
    ov int; q float8; half float8; rl float8; rh float8; w float8; nn float8;
BEGIN
    IF metric IN ('wait_p50', 'wait_p90', 'complaint_resolve_median') THEN
        IF counts IS NULL THEN RETURN; END IF;
        nn := (SELECT coalesce(sum(c), 0) FROM unnest(counts) c);
        IF NOT (nn > 0) THEN RETURN; END IF;
        q := CASE metric WHEN 'wait_p90' THEN 0.9 ELSE 0.5 END;
        w := CASE metric WHEN 'complaint_resolve_median' THEN 1 ELSE 5 END;
        ov := 720;
        value := reporting.hist_at_rank(counts, ov, w, q * nn);
        IF nn >= 10 THEN
            half := reporting.z95() * sqrt(nn * q * (1 - q));
            rl := greatest(floor(q * nn - half), 0);
            rh := least(ceil(q * nn + half), nn);
            ci_low := least(reporting.hist_at_rank(counts, ov, w, rl), value);
            ci_high := greatest(reporting.hist_at_rank(counts, ov, w, rh), value);
        END IF;
        RETURN;
    END IF;
    IF NOT (n > 0) THEN RETURN; END IF;
    CASE metric
    WHEN 'capture_rate', 'conversion', 'calls_answered_share', 'calls_abandoned_share' THEN
        value := x / n * 100;
        SELECT w.lo * 100, w.hi * 100 INTO ci_low, ci_high FROM reporting.wilson_cc(x, n) w;
    WHEN 'nps' THEN
        IF x < 0 OR y < 0 OR x + y > n THEN RETURN; END IF;
        value := (x / n - y / n) * 100;
        SELECT i.lo, i.hi INTO ci_low, ci_high FROM reporting.nps_interval(x, y, n) i;
    WHEN 'complaints_per_1000' THEN
        IF NOT (x >= 0) THEN RETURN; END IF;
        value := 1000 * x / n;
        ci_low := 1000 * reporting.garwood_lo(x) / n;
        ci_high := 1000 * reporting.garwood_hi(x) / n;
    WHEN 'complaints_open' THEN
        IF NOT (x >= 0) THEN RETURN; END IF;
        value := x;
        ci_low := reporting.garwood_lo(x);
        ci_high := reporting.garwood_hi(x);
    WHEN 'customer_balance' THEN
        value := x;
        ci_low := x - reporting.z95() * sqrt(n);
        ci_high := x + reporting.z95() * sqrt(n);
    WHEN 'ms_score', 'csi', 'avg_check' THEN
        IF array_length(currencies, 1) > 1 THEN RETURN; END IF;   -- the CLI refuses
        value := sum / n;
        IF n >= 2 THEN
            ss := greatest(sumsq - sum * sum / n, 0);
            sd := sqrt(ss / (n - 1));
            df := n - 1;
        END IF;
        IF metric = 'ms_score' AND pool_df > 0 THEN
            sp := sqrt(pool_ss / pool_df);
        END IF;
        IF sp > 0 THEN
            sd := greatest(sd, sp);
            df := pool_df;
        END IF;
        IF df IS NOT NULL THEN
            t := reporting.t95(df);
            ci_low := value - t * (sd / sqrt(n));
            ci_high := value + t * (sd / sqrt(n));
        END IF;
        IF metric <> 'avg_check' THEN
            ci_low := greatest(ci_low, 0);
            ci_high := least(ci_high, 100);
        ELSE
            k := power(10::float8, -CASE WHEN currencies[1] IN ('JPY', 'KRW') THEN 0
                                         WHEN currencies[1] IN ('BHD', 'KWD', 'OMR', 'TND') THEN 3
                                         ELSE 2 END);
            value := value * k; ci_low := ci_low * k; ci_high := ci_high * k;
        END IF;
    ELSE
        RETURN;
    END CASE;
END $$;

---------------------------------------------------------------------------
-- The contract views
---------------------------------------------------------------------------

-- Per branch: the figure of the ranking and the scorecard.  ms_score's
-- interval borrows the pooled within-branch SD of the branches the caller
-- sees in the same period (= `branchmark rank` without --region).
CREATE VIEW reporting.branch_metrics_v1 WITH (security_invoker = true) AS
WITH p AS (
    SELECT a.*,
           sum(CASE WHEN a.n >= 2 THEN greatest(a.sumsq - a.sum * a.sum / a.n, 0) ELSE 0 END)
               OVER w AS pool_ss,
           sum(CASE WHEN a.n >= 2 THEN a.n - 1 ELSE 0 END) OVER w AS pool_df
      FROM reporting.branch_aggregates_v1 a
    WINDOW w AS (PARTITION BY a.metric, a.period_kind, a.period_start)
)
SELECT p.metric, p.period_kind, p.period_start, p.branch, p.branch_name, p.region,
       m.unit, e.value, p.n::bigint AS n, e.ci_low, e.ci_high,
       (e.value IS NULL OR p.n < m.min_n) AS low_n, m.min_n, m.decimals,
       p.x, p.y, p.sum, p.sumsq,
       CASE WHEN p.metric = 'ms_score' THEN p.pool_ss END AS pool_ss,
       CASE WHEN p.metric = 'ms_score' THEN p.pool_df END AS pool_df
  FROM p JOIN reporting.metrics_v1 m ON m.metric = p.metric
  CROSS JOIN LATERAL reporting.estimate(p.metric, p.n, p.x, p.y, p.sum, p.sumsq, p.counts,
                                        p.currencies, p.pool_ss, p.pool_df) e;

-- The regions whose whole set of branches the caller sees: every region
-- for an unscoped login, its own for a regional one, none for a branch
-- login.  Answers only for session_user (like bm_scope_branch_ids).
CREATE FUNCTION reporting.scope_regions() RETURNS SETOF int
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id FROM regions r
     WHERE NOT EXISTS (SELECT 1 FROM access_scopes WHERE role_name = session_user)
        OR r.id IN (SELECT region_id FROM access_scopes
                     WHERE role_name = session_user AND region_id IS NOT NULL)
$$;
REVOKE ALL ON FUNCTION reporting.scope_regions() FROM PUBLIC;

-- The concatenation of the branches' currency lists (NULL ones skipped).
CREATE AGGREGATE reporting.s_array_cat(anycompatiblearray) (
    SFUNC = array_cat, STYPE = anycompatiblearray
);

CREATE VIEW reporting.region_metrics_v1 WITH (security_invoker = true) AS
WITH s AS (
    SELECT a.metric, a.period_kind, a.period_start, a.region, a.region_id,
           sum(a.n) AS n, sum(a.x) AS x, sum(a.y) AS y, sum(a.sum) AS sum, sum(a.sumsq) AS sumsq,
           (SELECT array_agg(DISTINCT c) FROM unnest(reporting.s_array_cat(a.currencies)) c) AS currencies
      FROM reporting.branch_aggregates_v1 a
     WHERE a.region_id IN (SELECT reporting.scope_regions())
     GROUP BY 1, 2, 3, 4, 5
), h AS (
    SELECT a.metric, a.period_kind, a.period_start, a.region_id, array_agg(c ORDER BY i) AS counts
      FROM (SELECT a.metric, a.period_kind, a.period_start, a.region_id, u.i, sum(u.c)::bigint AS c
              FROM reporting.branch_aggregates_v1 a, unnest(a.counts) WITH ORDINALITY u(c, i)
             WHERE a.counts IS NOT NULL AND a.region_id IN (SELECT reporting.scope_regions())
             GROUP BY 1, 2, 3, 4, 5) a
     GROUP BY 1, 2, 3, 4
)
SELECT s.metric, s.period_kind, s.period_start, s.region, m.unit, e.value, s.n::bigint AS n,
       e.ci_low, e.ci_high, (e.value IS NULL OR s.n < m.min_n) AS low_n, m.min_n, m.decimals,
       s.x, s.y, s.sum, s.sumsq
  FROM s JOIN reporting.metrics_v1 m ON m.metric = s.metric
  LEFT JOIN h ON h.metric = s.metric AND h.period_kind = s.period_kind
   AND h.period_start = s.period_start AND h.region_id = s.region_id
  CROSS JOIN LATERAL reporting.estimate(s.metric, s.n, s.x, s.y, s.sum, s.sumsq, h.counts,
                                        s.currencies, NULL::float8, NULL::float8) e;

CREATE VIEW reporting.chain_metrics_v1 WITH (security_invoker = true) AS
WITH s AS (
    SELECT a.metric, a.period_kind, a.period_start,
           sum(a.n) AS n, sum(a.x) AS x, sum(a.y) AS y, sum(a.sum) AS sum, sum(a.sumsq) AS sumsq,
           (SELECT array_agg(DISTINCT c) FROM unnest(reporting.s_array_cat(a.currencies)) c) AS currencies
      FROM reporting.branch_aggregates_v1 a
     WHERE NOT bm_scope_limited(session_user)
     GROUP BY 1, 2, 3
), h AS (
    SELECT a.metric, a.period_kind, a.period_start, array_agg(c ORDER BY i) AS counts
      FROM (SELECT a.metric, a.period_kind, a.period_start, u.i, sum(u.c)::bigint AS c
              FROM reporting.branch_aggregates_v1 a, unnest(a.counts) WITH ORDINALITY u(c, i)
             WHERE a.counts IS NOT NULL GROUP BY 1, 2, 3, 4) a
     GROUP BY 1, 2, 3
)
SELECT s.metric, s.period_kind, s.period_start, m.unit, e.value, s.n::bigint AS n,
       e.ci_low, e.ci_high, (e.value IS NULL OR s.n < m.min_n) AS low_n, m.min_n, m.decimals,
       s.x, s.y, s.sum, s.sumsq
  FROM s JOIN reporting.metrics_v1 m ON m.metric = s.metric
  LEFT JOIN h ON h.metric = s.metric AND h.period_kind = s.period_kind
   AND h.period_start = s.period_start
  CROSS JOIN LATERAL reporting.estimate(s.metric, s.n, s.x, s.y, s.sum, s.sumsq, h.counts,
                                        s.currencies, NULL::float8, NULL::float8) e;

-- The contract of version 1: every column of every _v1 view with its type
-- (format_type).  Append-only: a later migration adds rows for new views,
-- never changes these; the test compares it with the catalogue.
CREATE VIEW reporting.contract_v1 WITH (security_invoker = true) AS
SELECT * FROM (VALUES
    ('metrics_v1', 1, 'metric', 'text'), ('metrics_v1', 2, 'unit', 'text'),
    ('metrics_v1', 3, 'higher_better', 'boolean'), ('metrics_v1', 4, 'family', 'text'),
    ('metrics_v1', 5, 'n_counts', 'text'), ('metrics_v1', 6, 'min_n', 'integer'),
    ('metrics_v1', 7, 'decimals', 'integer'), ('metrics_v1', 8, 'interval_method', 'text'),
    ('branch_aggregates_v1', 1, 'metric', 'text'), ('branch_aggregates_v1', 2, 'period_kind', 'text'),
    ('branch_aggregates_v1', 3, 'period_start', 'date'), ('branch_aggregates_v1', 4, 'branch', 'text'),
    ('branch_aggregates_v1', 5, 'branch_name', 'text'), ('branch_aggregates_v1', 6, 'region', 'text'),
    ('branch_aggregates_v1', 7, 'branch_id', 'integer'), ('branch_aggregates_v1', 8, 'region_id', 'integer'),
    ('branch_aggregates_v1', 9, 'n', 'double precision'), ('branch_aggregates_v1', 10, 'x', 'double precision'),
    ('branch_aggregates_v1', 11, 'y', 'double precision'), ('branch_aggregates_v1', 12, 'sum', 'double precision'),
    ('branch_aggregates_v1', 13, 'sumsq', 'double precision'), ('branch_aggregates_v1', 14, 'counts', 'bigint[]'),
    ('branch_aggregates_v1', 15, 'currencies', 'text[]'),
    ('branch_metrics_v1', 1, 'metric', 'text'), ('branch_metrics_v1', 2, 'period_kind', 'text'),
    ('branch_metrics_v1', 3, 'period_start', 'date'), ('branch_metrics_v1', 4, 'branch', 'text'),
    ('branch_metrics_v1', 5, 'branch_name', 'text'), ('branch_metrics_v1', 6, 'region', 'text'),
    ('branch_metrics_v1', 7, 'unit', 'text'), ('branch_metrics_v1', 8, 'value', 'double precision'),
    ('branch_metrics_v1', 9, 'n', 'bigint'), ('branch_metrics_v1', 10, 'ci_low', 'double precision'),
    ('branch_metrics_v1', 11, 'ci_high', 'double precision'), ('branch_metrics_v1', 12, 'low_n', 'boolean'),
    ('branch_metrics_v1', 13, 'min_n', 'integer'), ('branch_metrics_v1', 14, 'decimals', 'integer'),
    ('branch_metrics_v1', 15, 'x', 'double precision'), ('branch_metrics_v1', 16, 'y', 'double precision'),
    ('branch_metrics_v1', 17, 'sum', 'double precision'), ('branch_metrics_v1', 18, 'sumsq', 'double precision'),
    ('branch_metrics_v1', 19, 'pool_ss', 'double precision'), ('branch_metrics_v1', 20, 'pool_df', 'double precision'),
    ('region_metrics_v1', 1, 'metric', 'text'), ('region_metrics_v1', 2, 'period_kind', 'text'),
    ('region_metrics_v1', 3, 'period_start', 'date'), ('region_metrics_v1', 4, 'region', 'text'),
    ('region_metrics_v1', 5, 'unit', 'text'), ('region_metrics_v1', 6, 'value', 'double precision'),
    ('region_metrics_v1', 7, 'n', 'bigint'), ('region_metrics_v1', 8, 'ci_low', 'double precision'),
    ('region_metrics_v1', 9, 'ci_high', 'double precision'), ('region_metrics_v1', 10, 'low_n', 'boolean'),
    ('region_metrics_v1', 11, 'min_n', 'integer'), ('region_metrics_v1', 12, 'decimals', 'integer'),
    ('region_metrics_v1', 13, 'x', 'double precision'), ('region_metrics_v1', 14, 'y', 'double precision'),
    ('region_metrics_v1', 15, 'sum', 'double precision'), ('region_metrics_v1', 16, 'sumsq', 'double precision'),
    ('chain_metrics_v1', 1, 'metric', 'text'), ('chain_metrics_v1', 2, 'period_kind', 'text'),
    ('chain_metrics_v1', 3, 'period_start', 'date'), ('chain_metrics_v1', 4, 'unit', 'text'),
    ('chain_metrics_v1', 5, 'value', 'double precision'), ('chain_metrics_v1', 6, 'n', 'bigint'),
    ('chain_metrics_v1', 7, 'ci_low', 'double precision'), ('chain_metrics_v1', 8, 'ci_high', 'double precision'),
    ('chain_metrics_v1', 9, 'low_n', 'boolean'), ('chain_metrics_v1', 10, 'min_n', 'integer'),
    ('chain_metrics_v1', 11, 'decimals', 'integer'), ('chain_metrics_v1', 12, 'x', 'double precision'),
    ('chain_metrics_v1', 13, 'y', 'double precision'), ('chain_metrics_v1', 14, 'sum', 'double precision'),
    ('chain_metrics_v1', 15, 'sumsq', 'double precision')
) AS c(view_name, position, column_name, data_type);

---------------------------------------------------------------------------
-- Grants: the people's group roles only.
---------------------------------------------------------------------------
REVOKE ALL ON SCHEMA reporting FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA reporting FROM PUBLIC;
GRANT USAGE ON SCHEMA reporting TO branchmark_hq, branchmark_regional, branchmark_branch;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting
    TO branchmark_hq, branchmark_regional, branchmark_branch;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA reporting
    TO branchmark_hq, branchmark_regional, branchmark_branch;
