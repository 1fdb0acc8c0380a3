-- 002_rollups: evaluation scores and the rollups every query reads.
--
-- The collector inserts raw rows with INSERT ... ON CONFLICT DO NOTHING, one
-- transaction per batch.  Statement-level AFTER INSERT triggers with
-- transition tables (only the rows really inserted, so a resent duplicate
-- adds nothing) upsert additive aggregates into the rollup tables in the same
-- transaction: the rollups are exactly as committed as the raw rows.
--
-- Keys: (branch_id, period_kind, period_start [, extra key]) where
-- period_kind is day | week (ISO, Monday) | month | quarter and period_start
-- is the first local date of the period in the chain's time zone
-- (chain.timezone; UTC until the chain is loaded).  Region and chain figures
-- are sums of branch rows of the same period; nothing reads raw history.
--
-- Sums are numeric so that adding in any order (incremental) gives exactly
-- the same result as a full recomputation (bm_full_* views); the integration
-- test compares the two with bm_rollups_check().  bm_rollups_rebuild()
-- recomputes everything from raw data (after a change of chain.timezone, or
-- a repair).  Definitions of the metrics: docs/metrics.md.

CREATE FUNCTION bm_chain_timezone() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT timezone FROM chain WHERE id = 1), 'UTC')
$$;

-- The four periods a moment belongs to, in time zone tz.
CREATE FUNCTION bm_periods(ts timestamptz, tz text)
RETURNS TABLE (period_kind text, period_start date)
LANGUAGE sql STABLE AS $$
    SELECT k.kind,
           CASE k.kind
               WHEN 'day' THEN l.t::date
               WHEN 'week' THEN date_trunc('week', l.t)::date
               WHEN 'month' THEN date_trunc('month', l.t)::date
               ELSE date_trunc('quarter', l.t)::date
           END
      FROM (SELECT ts AT TIME ZONE tz AS t) l,
           (VALUES ('day'), ('week'), ('month'), ('quarter')) k(kind)
$$;

-- Histogram buckets (the last bucket of each is the overflow):
--   queue_wait         5 s wide, 0..719 = [0 s, 3600 s), 720 = 1 h and more
--   call_answer_wait   1 s wide, 0..599 = 0..599 s,     600 = 10 min and more
--   complaint_resolve  1 h wide, 0..719 = [0 h, 720 h), 720 = 30 days and more
CREATE FUNCTION bm_bucket(seconds numeric, width numeric, overflow int) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT least(floor(greatest(seconds, 0) / width)::bigint, overflow)::int
$$;

---------------------------------------------------------------------------
-- Rollup tables
---------------------------------------------------------------------------

CREATE TABLE rollup_traffic (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL CHECK (period_kind IN ('day', 'week', 'month', 'quarter')),
    period_start date NOT NULL,
    intervals    bigint NOT NULL,        -- people-counter records
    passers_by   bigint NOT NULL,
    entrants     bigint NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start)
);

-- Sales are receipts with amount > 0; refunds (amount < 0) are kept apart
-- and do not count as a purchase; a zero amount counts as neither.
CREATE TABLE rollup_sales (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    currency     text NOT NULL,
    receipts     bigint NOT NULL,        -- all receipts
    sales        bigint NOT NULL,
    sales_minor  numeric NOT NULL,
    sales_minor_sq numeric NOT NULL,
    refunds      bigint NOT NULL,
    refunds_minor numeric NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start, currency)
);

CREATE TABLE rollup_queue (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    tickets      bigint NOT NULL,
    called       bigint NOT NULL,
    served       bigint NOT NULL,
    wait_sum     numeric NOT NULL,       -- seconds, issued -> called
    wait_sumsq   numeric NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start)
);

CREATE TABLE rollup_calls (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    calls        bigint NOT NULL,
    answered     bigint NOT NULL,
    abandoned    bigint NOT NULL,
    answer_wait_sum numeric NOT NULL,    -- seconds, answered calls
    PRIMARY KEY (branch_id, period_kind, period_start)
);

-- By the period in which the complaint was received; resolution figures
-- are those of the complaints received in the period.
CREATE TABLE rollup_complaints (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    complaints   bigint NOT NULL,
    resolved     bigint NOT NULL,
    open         bigint NOT NULL,
    resolve_hours_sum numeric NOT NULL,
    resolve_hours_sumsq numeric NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start)
);

CREATE TABLE rollup_complaint_causes (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    category     text NOT NULL,
    contact_point text NOT NULL,
    complaints   bigint NOT NULL,
    open         bigint NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start, category, contact_point)
);

-- Keyed by the respondent's segment ('' = none given).
CREATE TABLE rollup_surveys (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    segment      text NOT NULL,
    responses    bigint NOT NULL,
    nps_n        bigint NOT NULL,
    promoters    bigint NOT NULL,        -- 9..10
    passives     bigint NOT NULL,        -- 7..8
    detractors   bigint NOT NULL,        -- 0..6
    csi_n        bigint NOT NULL,
    csi_sum      numeric NOT NULL,
    csi_sumsq    numeric NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start, segment)
);

CREATE TABLE rollup_customers (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    gained       bigint NOT NULL,
    lost         bigint NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start)
);

CREATE TABLE rollup_lost_reasons (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    reason       text NOT NULL,
    lost         bigint NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start, reason)
);

CREATE TABLE rollup_hist (
    branch_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    measure      text NOT NULL CHECK (measure IN ('queue_wait', 'call_answer_wait', 'complaint_resolve')),
    bucket       int NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (branch_id, period_kind, period_start, measure, bucket)
);

-- Scores of one evaluation (percent, 0..100).  overall NULL: no section had
-- applicable points.  Outlet is the evaluated branch or competitor outlet.
CREATE TABLE evaluation_scores (
    evaluation_id bigint PRIMARY KEY REFERENCES evaluations(id) ON DELETE CASCADE,
    outlet_kind   text NOT NULL CHECK (outlet_kind IN ('branch', 'competitor')),
    outlet_id     int NOT NULL,
    channel       text NOT NULL,
    segment       text NOT NULL,
    visited_at    timestamptz NOT NULL,
    overall       numeric,
    zeroed        boolean NOT NULL        -- a zero_total critical item failed
);

CREATE TABLE evaluation_section_scores (
    evaluation_id  bigint NOT NULL REFERENCES evaluation_scores(evaluation_id) ON DELETE CASCADE,
    section_code   text NOT NULL,
    section_weight numeric NOT NULL,
    earned         numeric NOT NULL,
    possible       numeric NOT NULL,
    score          numeric,               -- NULL: nothing applicable
    critical_failed boolean NOT NULL,
    PRIMARY KEY (evaluation_id, section_code)
);

-- section '' is the overall score.  n counts evaluations with a score.
CREATE TABLE rollup_scores (
    outlet_kind  text NOT NULL,
    outlet_id    int NOT NULL,
    period_kind  text NOT NULL,
    period_start date NOT NULL,
    channel      text NOT NULL,
    segment      text NOT NULL,
    section      text NOT NULL,
    n            bigint NOT NULL,
    score_sum    numeric NOT NULL,
    score_sumsq  numeric NOT NULL,
    PRIMARY KEY (outlet_kind, outlet_id, period_kind, period_start, channel, segment, section)
);

CREATE INDEX rollup_traffic_period ON rollup_traffic (period_kind, period_start);
CREATE INDEX rollup_sales_period ON rollup_sales (period_kind, period_start);
CREATE INDEX rollup_queue_period ON rollup_queue (period_kind, period_start);
CREATE INDEX rollup_calls_period ON rollup_calls (period_kind, period_start);
CREATE INDEX rollup_complaints_period ON rollup_complaints (period_kind, period_start);
CREATE INDEX rollup_complaint_causes_period ON rollup_complaint_causes (period_kind, period_start);
CREATE INDEX rollup_surveys_period ON rollup_surveys (period_kind, period_start);
CREATE INDEX rollup_customers_period ON rollup_customers (period_kind, period_start);
CREATE INDEX rollup_lost_reasons_period ON rollup_lost_reasons (period_kind, period_start);
CREATE INDEX rollup_hist_period ON rollup_hist (period_kind, period_start, measure);
CREATE INDEX rollup_scores_period ON rollup_scores (period_kind, period_start);

---------------------------------------------------------------------------
-- Full recomputation from raw data (same columns as the tables)
---------------------------------------------------------------------------

CREATE VIEW bm_full_rollup_traffic (branch_id, period_kind, period_start, intervals, passers_by, entrants) AS
SELECT r.branch_id, p.period_kind, p.period_start, count(*)::bigint,
       sum(r.passers_by)::bigint, sum(r.entrants)::bigint
  FROM people_counts r, bm_periods(r.interval_start, bm_chain_timezone()) p
 GROUP BY 1, 2, 3;

CREATE VIEW bm_full_rollup_sales (branch_id, period_kind, period_start, currency, receipts, sales, sales_minor, sales_minor_sq, refunds, refunds_minor) AS
SELECT r.branch_id, p.period_kind, p.period_start, r.currency, count(*)::bigint,
       count(*) FILTER (WHERE r.amount_minor > 0),
       coalesce(sum(r.amount_minor::numeric) FILTER (WHERE r.amount_minor > 0), 0),
       coalesce(sum(r.amount_minor::numeric ^ 2) FILTER (WHERE r.amount_minor > 0), 0),
       count(*) FILTER (WHERE r.amount_minor < 0),
       coalesce(sum(r.amount_minor::numeric) FILTER (WHERE r.amount_minor < 0), 0)
  FROM receipts r, bm_periods(r.at, bm_chain_timezone()) p
 GROUP BY 1, 2, 3, 4;

CREATE VIEW bm_full_rollup_queue (branch_id, period_kind, period_start, tickets, called, served, wait_sum, wait_sumsq) AS
SELECT r.branch_id, p.period_kind, p.period_start, count(*)::bigint,
       count(r.called_at), count(r.served_at),
       coalesce(sum(extract(epoch FROM r.called_at - r.issued_at)), 0),
       coalesce(sum(extract(epoch FROM r.called_at - r.issued_at) ^ 2), 0)
  FROM queue_tickets r, bm_periods(r.issued_at, bm_chain_timezone()) p
 GROUP BY 1, 2, 3;

CREATE VIEW bm_full_rollup_calls (branch_id, period_kind, period_start, calls, answered, abandoned, answer_wait_sum) AS
SELECT r.branch_id, p.period_kind, p.period_start, count(*)::bigint,
       count(*) FILTER (WHERE r.answered), count(*) FILTER (WHERE NOT r.answered),
       coalesce(sum(r.wait_seconds::numeric) FILTER (WHERE r.answered), 0)
  FROM phone_calls r, bm_periods(r.ring_start, bm_chain_timezone()) p
 GROUP BY 1, 2, 3;

CREATE VIEW bm_full_rollup_complaints (branch_id, period_kind, period_start, complaints, resolved, open, resolve_hours_sum, resolve_hours_sumsq) AS
SELECT r.branch_id, p.period_kind, p.period_start, count(*)::bigint,
       count(r.resolved_at), count(*) FILTER (WHERE r.resolved_at IS NULL),
       coalesce(sum(extract(epoch FROM r.resolved_at - r.received_at_src) / 3600), 0),
       coalesce(sum((extract(epoch FROM r.resolved_at - r.received_at_src) / 3600) ^ 2), 0)
  FROM complaints r, bm_periods(r.received_at_src, bm_chain_timezone()) p
 GROUP BY 1, 2, 3;

CREATE VIEW bm_full_rollup_complaint_causes (branch_id, period_kind, period_start, category, contact_point, complaints, open) AS
SELECT r.branch_id, p.period_kind, p.period_start, r.category, r.contact_point,
       count(*)::bigint, count(*) FILTER (WHERE r.resolved_at IS NULL)
  FROM complaints r, bm_periods(r.received_at_src, bm_chain_timezone()) p
 GROUP BY 1, 2, 3, 4, 5;

CREATE VIEW bm_full_rollup_surveys (branch_id, period_kind, period_start, segment, responses, nps_n, promoters, passives, detractors, csi_n, csi_sum, csi_sumsq) AS
SELECT r.branch_id, p.period_kind, p.period_start, r.segment, count(*)::bigint,
       count(r.nps), count(*) FILTER (WHERE r.nps >= 9),
       count(*) FILTER (WHERE r.nps BETWEEN 7 AND 8), count(*) FILTER (WHERE r.nps <= 6),
       count(r.csi), coalesce(sum(r.csi::numeric), 0), coalesce(sum(r.csi::numeric ^ 2), 0)
  FROM survey_responses r, bm_periods(r.responded_at, bm_chain_timezone()) p
 GROUP BY 1, 2, 3, 4;

CREATE VIEW bm_full_rollup_customers (branch_id, period_kind, period_start, gained, lost) AS
SELECT r.branch_id, p.period_kind, p.period_start,
       count(*) FILTER (WHERE r.kind = 'gained'), count(*) FILTER (WHERE r.kind = 'lost')
  FROM customer_changes r, bm_periods(r.at, bm_chain_timezone()) p
 GROUP BY 1, 2, 3;

CREATE VIEW bm_full_rollup_lost_reasons (branch_id, period_kind, period_start, reason, lost) AS
SELECT r.branch_id, p.period_kind, p.period_start, r.reason, count(*)::bigint
  FROM customer_changes r, bm_periods(r.at, bm_chain_timezone()) p
 WHERE r.kind = 'lost'
 GROUP BY 1, 2, 3, 4;

CREATE VIEW bm_full_rollup_hist (branch_id, period_kind, period_start, measure, bucket, n) AS
SELECT r.branch_id, p.period_kind, p.period_start, 'queue_wait'::text,
       bm_bucket(extract(epoch FROM r.called_at - r.issued_at), 5, 720), count(*)::bigint
  FROM queue_tickets r, bm_periods(r.issued_at, bm_chain_timezone()) p
 WHERE r.called_at IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT r.branch_id, p.period_kind, p.period_start, 'call_answer_wait',
       bm_bucket(r.wait_seconds, 1, 600), count(*)
  FROM phone_calls r, bm_periods(r.ring_start, bm_chain_timezone()) p
 WHERE r.answered
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT r.branch_id, p.period_kind, p.period_start, 'complaint_resolve',
       bm_bucket(extract(epoch FROM r.resolved_at - r.received_at_src), 3600, 720), count(*)
  FROM complaints r, bm_periods(r.received_at_src, bm_chain_timezone()) p
 WHERE r.resolved_at IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5;

---------------------------------------------------------------------------
-- Evaluation scoring (docs/metrics.md, "Mystery-shopping score")
---------------------------------------------------------------------------

-- Section scores of the given evaluations from all their answers.  Items
-- without an answer row count as not applicable.  numeric arithmetic, so the
-- result does not depend on the order rows are read in.
CREATE FUNCTION bm_section_scores(ids bigint[])
RETURNS TABLE (evaluation_id bigint, section_code text, section_weight numeric,
               earned numeric, possible numeric, score numeric,
               critical_failed boolean, zero_total boolean)
LANGUAGE sql STABLE AS $$
    SELECT g.evaluation_id, g.code, g.weight, g.earned, g.possible,
           CASE WHEN g.possible = 0 THEN NULL
                WHEN g.failed AND g.critical_rule = 'cap'
                    THEN least(least(100 * g.earned / g.possible, 100), g.cap_percent::numeric)
                WHEN g.failed THEN 0
                ELSE least(100 * g.earned / g.possible, 100)
           END,
           g.failed,
           g.failed AND g.critical_rule = 'zero_total'
      FROM (SELECT a.evaluation_id, s.code, s.weight::numeric AS weight,
                   s.critical_rule, s.cap_percent,
                   coalesce(sum(i.weight::numeric * a.points::numeric)
                            FILTER (WHERE a.points IS NOT NULL), 0) AS earned,
                   coalesce(sum(i.weight::numeric * i.max_points::numeric)
                            FILTER (WHERE a.points IS NOT NULL AND NOT i.bonus), 0) AS possible,
                   coalesce(bool_or(i.critical AND a.points IS NOT NULL
                                    AND a.points < i.max_points), false) AS failed
              FROM evaluation_answers a
              JOIN questionnaire_items i
                ON i.questionnaire_id = a.questionnaire_id AND i.code = a.item_code
              JOIN questionnaire_sections s ON s.id = i.section_id
             WHERE a.evaluation_id = ANY (ids)
             GROUP BY a.evaluation_id, s.id) g
$$;

-- Overall score per evaluation: weighted mean of the section scores over
-- sections with applicable points; 0 when a zero_total critical item failed.
CREATE FUNCTION bm_overall_scores(ids bigint[])
RETURNS TABLE (evaluation_id bigint, overall numeric, zeroed boolean)
LANGUAGE sql STABLE AS $$
    SELECT s.evaluation_id,
           CASE WHEN bool_or(s.zero_total) THEN 0::numeric
                ELSE sum(s.section_weight * s.score) FILTER (WHERE s.score IS NOT NULL)
                     / nullif(sum(s.section_weight) FILTER (WHERE s.score IS NOT NULL), 0)
           END,
           bool_or(s.zero_total)
      FROM bm_section_scores(ids) s
     GROUP BY s.evaluation_id
$$;

-- Score rollup rows of the given evaluations' current scores.
CREATE FUNCTION bm_score_rollup_rows(ids bigint[], tz text)
RETURNS TABLE (outlet_kind text, outlet_id int, period_kind text, period_start date,
               channel text, segment text, section text,
               n bigint, score_sum numeric, score_sumsq numeric)
LANGUAGE sql STABLE AS $$
    SELECT e.outlet_kind, e.outlet_id, p.period_kind, p.period_start, e.channel,
           e.segment, x.section, count(*), sum(x.score), sum(x.score ^ 2)
      FROM evaluation_scores e
      CROSS JOIN LATERAL bm_periods(e.visited_at, tz) p
      CROSS JOIN LATERAL (
            SELECT '' AS section, e.overall AS score WHERE e.overall IS NOT NULL
            UNION ALL
            SELECT ss.section_code, ss.score FROM evaluation_section_scores ss
             WHERE ss.evaluation_id = e.evaluation_id AND ss.score IS NOT NULL) x
     WHERE e.evaluation_id = ANY (ids)
     GROUP BY 1, 2, 3, 4, 5, 6, 7
$$;

-- (Re)scores evaluations: takes their old contribution out of rollup_scores
-- (an evaluation whose answers arrive in several statements is re-scored
-- from all its answers), stores the new scores and adds them back.
CREATE FUNCTION bm_score_evaluations(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    UPDATE rollup_scores r
       SET n = r.n - o.n, score_sum = r.score_sum - o.score_sum,
           score_sumsq = r.score_sumsq - o.score_sumsq
      FROM bm_score_rollup_rows(ids, tz) o
     WHERE r.outlet_kind = o.outlet_kind AND r.outlet_id = o.outlet_id
       AND r.period_kind = o.period_kind AND r.period_start = o.period_start
       AND r.channel = o.channel AND r.segment = o.segment AND r.section = o.section;
    DELETE FROM rollup_scores WHERE n = 0;
    DELETE FROM evaluation_scores WHERE evaluation_id = ANY (ids);

    INSERT INTO evaluation_scores
    SELECT e.id,
           CASE WHEN e.outlet_branch_id IS NOT NULL THEN 'branch' ELSE 'competitor' END,
           coalesce(e.outlet_branch_id, e.competitor_outlet_id),
           e.channel, e.shopper_segment, e.visited_at, o.overall, o.zeroed
      FROM evaluations e JOIN bm_overall_scores(ids) o ON o.evaluation_id = e.id;
    INSERT INTO evaluation_section_scores
    SELECT s.evaluation_id, s.section_code, s.section_weight, s.earned, s.possible,
           s.score, s.critical_failed
      FROM bm_section_scores(ids) s;

    INSERT INTO rollup_scores AS r
    SELECT * FROM bm_score_rollup_rows(ids, tz)
     ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (outlet_kind, outlet_id, period_kind, period_start, channel, segment, section)
        DO UPDATE SET n = r.n + EXCLUDED.n, score_sum = r.score_sum + EXCLUDED.score_sum,
                      score_sumsq = r.score_sumsq + EXCLUDED.score_sumsq;
END $$;

CREATE VIEW bm_full_rollup_scores (outlet_kind, outlet_id, period_kind, period_start, channel, segment, section, n, score_sum, score_sumsq) AS
WITH ids AS (SELECT array_agg(id) AS a FROM evaluations),
     ov AS (SELECT o.* FROM ids, bm_overall_scores(ids.a) o),
     se AS (SELECT s.* FROM ids, bm_section_scores(ids.a) s),
     x AS (SELECT ov.evaluation_id, '' AS section, ov.overall AS score FROM ov
            WHERE ov.overall IS NOT NULL
           UNION ALL
           SELECT se.evaluation_id, se.section_code, se.score FROM se
            WHERE se.score IS NOT NULL)
SELECT CASE WHEN e.outlet_branch_id IS NOT NULL THEN 'branch' ELSE 'competitor' END,
       coalesce(e.outlet_branch_id, e.competitor_outlet_id), p.period_kind, p.period_start,
       e.channel, e.shopper_segment, x.section, count(*), sum(x.score), sum(x.score ^ 2)
  FROM x JOIN evaluations e ON e.id = x.evaluation_id,
       bm_periods(e.visited_at, bm_chain_timezone()) p
 GROUP BY 1, 2, 3, 4, 5, 6, 7;

---------------------------------------------------------------------------
-- Incremental maintenance: statement-level triggers on the raw tables
---------------------------------------------------------------------------

CREATE FUNCTION bm_rollup_people_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    INSERT INTO rollup_traffic AS r
    SELECT n.branch_id, p.period_kind, p.period_start, count(*),
           sum(n.passers_by), sum(n.entrants)
      FROM new_rows n, bm_periods(n.interval_start, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET intervals = r.intervals + EXCLUDED.intervals,
           passers_by = r.passers_by + EXCLUDED.passers_by,
           entrants = r.entrants + EXCLUDED.entrants;
    RETURN NULL;
END $$;

CREATE FUNCTION bm_rollup_receipts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    INSERT INTO rollup_sales AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.currency, count(*),
           count(*) FILTER (WHERE n.amount_minor > 0),
           coalesce(sum(n.amount_minor::numeric) FILTER (WHERE n.amount_minor > 0), 0),
           coalesce(sum(n.amount_minor::numeric ^ 2) FILTER (WHERE n.amount_minor > 0), 0),
           count(*) FILTER (WHERE n.amount_minor < 0),
           coalesce(sum(n.amount_minor::numeric) FILTER (WHERE n.amount_minor < 0), 0)
      FROM new_rows n, bm_periods(n.at, tz) p
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (branch_id, period_kind, period_start, currency) DO UPDATE
       SET receipts = r.receipts + EXCLUDED.receipts,
           sales = r.sales + EXCLUDED.sales,
           sales_minor = r.sales_minor + EXCLUDED.sales_minor,
           sales_minor_sq = r.sales_minor_sq + EXCLUDED.sales_minor_sq,
           refunds = r.refunds + EXCLUDED.refunds,
           refunds_minor = r.refunds_minor + EXCLUDED.refunds_minor;
    RETURN NULL;
END $$;

CREATE FUNCTION bm_rollup_queue_tickets() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    INSERT INTO rollup_queue AS r
    SELECT n.branch_id, p.period_kind, p.period_start, count(*),
           count(n.called_at), count(n.served_at),
           coalesce(sum(extract(epoch FROM n.called_at - n.issued_at)), 0),
           coalesce(sum(extract(epoch FROM n.called_at - n.issued_at) ^ 2), 0)
      FROM new_rows n, bm_periods(n.issued_at, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET tickets = r.tickets + EXCLUDED.tickets,
           called = r.called + EXCLUDED.called,
           served = r.served + EXCLUDED.served,
           wait_sum = r.wait_sum + EXCLUDED.wait_sum,
           wait_sumsq = r.wait_sumsq + EXCLUDED.wait_sumsq;
    INSERT INTO rollup_hist AS r
    SELECT n.branch_id, p.period_kind, p.period_start, 'queue_wait',
           bm_bucket(extract(epoch FROM n.called_at - n.issued_at), 5, 720), count(*)
      FROM new_rows n, bm_periods(n.issued_at, tz) p
     WHERE n.called_at IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (branch_id, period_kind, period_start, measure, bucket) DO UPDATE
       SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION bm_rollup_phone_calls() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    INSERT INTO rollup_calls AS r
    SELECT n.branch_id, p.period_kind, p.period_start, count(*),
           count(*) FILTER (WHERE n.answered), count(*) FILTER (WHERE NOT n.answered),
           coalesce(sum(n.wait_seconds::numeric) FILTER (WHERE n.answered), 0)
      FROM new_rows n, bm_periods(n.ring_start, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET calls = r.calls + EXCLUDED.calls,
           answered = r.answered + EXCLUDED.answered,
           abandoned = r.abandoned + EXCLUDED.abandoned,
           answer_wait_sum = r.answer_wait_sum + EXCLUDED.answer_wait_sum;
    INSERT INTO rollup_hist AS r
    SELECT n.branch_id, p.period_kind, p.period_start, 'call_answer_wait',
           bm_bucket(n.wait_seconds, 1, 600), count(*)
      FROM new_rows n, bm_periods(n.ring_start, tz) p
     WHERE n.answered
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (branch_id, period_kind, period_start, measure, bucket) DO UPDATE
       SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION bm_rollup_complaints() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    INSERT INTO rollup_complaints AS r
    SELECT n.branch_id, p.period_kind, p.period_start, count(*),
           count(n.resolved_at), count(*) FILTER (WHERE n.resolved_at IS NULL),
           coalesce(sum(extract(epoch FROM n.resolved_at - n.received_at_src) / 3600), 0),
           coalesce(sum((extract(epoch FROM n.resolved_at - n.received_at_src) / 3600) ^ 2), 0)
      FROM new_rows n, bm_periods(n.received_at_src, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET complaints = r.complaints + EXCLUDED.complaints,
           resolved = r.resolved + EXCLUDED.resolved,
           open = r.open + EXCLUDED.open,
           resolve_hours_sum = r.resolve_hours_sum + EXCLUDED.resolve_hours_sum,
           resolve_hours_sumsq = r.resolve_hours_sumsq + EXCLUDED.resolve_hours_sumsq;
    INSERT INTO rollup_complaint_causes AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.category, n.contact_point,
           count(*), count(*) FILTER (WHERE n.resolved_at IS NULL)
      FROM new_rows n, bm_periods(n.received_at_src, tz) p
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (branch_id, period_kind, period_start, category, contact_point) DO UPDATE
       SET complaints = r.complaints + EXCLUDED.complaints,
           open = r.open + EXCLUDED.open;
    INSERT INTO rollup_hist AS r
    SELECT n.branch_id, p.period_kind, p.period_start, 'complaint_resolve',
           bm_bucket(extract(epoch FROM n.resolved_at - n.received_at_src), 3600, 720), count(*)
      FROM new_rows n, bm_periods(n.received_at_src, tz) p
     WHERE n.resolved_at IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (branch_id, period_kind, period_start, measure, bucket) DO UPDATE
       SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION bm_rollup_survey_responses() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    INSERT INTO rollup_surveys AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.segment, count(*),
           count(n.nps), count(*) FILTER (WHERE n.nps >= 9),
           count(*) FILTER (WHERE n.nps BETWEEN 7 AND 8), count(*) FILTER (WHERE n.nps <= 6),
           count(n.csi), coalesce(sum(n.csi::numeric), 0), coalesce(sum(n.csi::numeric ^ 2), 0)
      FROM new_rows n, bm_periods(n.responded_at, tz) p
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
    RETURN NULL;
END $$;

CREATE FUNCTION bm_rollup_customer_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    INSERT INTO rollup_customers AS r
    SELECT n.branch_id, p.period_kind, p.period_start,
           count(*) FILTER (WHERE n.kind = 'gained'), count(*) FILTER (WHERE n.kind = 'lost')
      FROM new_rows n, bm_periods(n.at, tz) p
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start) DO UPDATE
       SET gained = r.gained + EXCLUDED.gained, lost = r.lost + EXCLUDED.lost;
    INSERT INTO rollup_lost_reasons AS r
    SELECT n.branch_id, p.period_kind, p.period_start, n.reason, count(*)
      FROM new_rows n, bm_periods(n.at, tz) p
     WHERE n.kind = 'lost'
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (branch_id, period_kind, period_start, reason) DO UPDATE
       SET lost = r.lost + EXCLUDED.lost;
    RETURN NULL;
END $$;

CREATE FUNCTION bm_rollup_evaluation_answers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bm_score_evaluations(ARRAY(SELECT DISTINCT evaluation_id FROM new_rows
                                        ORDER BY 1));
    RETURN NULL;
END $$;

CREATE TRIGGER people_counts_rollup AFTER INSERT ON people_counts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_people_counts();
CREATE TRIGGER receipts_rollup AFTER INSERT ON receipts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_receipts();
CREATE TRIGGER queue_tickets_rollup AFTER INSERT ON queue_tickets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_queue_tickets();
CREATE TRIGGER phone_calls_rollup AFTER INSERT ON phone_calls
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_phone_calls();
CREATE TRIGGER complaints_rollup AFTER INSERT ON complaints
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_complaints();
CREATE TRIGGER survey_responses_rollup AFTER INSERT ON survey_responses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_survey_responses();
CREATE TRIGGER customer_changes_rollup AFTER INSERT ON customer_changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_customer_changes();
CREATE TRIGGER evaluation_answers_rollup AFTER INSERT ON evaluation_answers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bm_rollup_evaluation_answers();

---------------------------------------------------------------------------
-- Checking and rebuilding
---------------------------------------------------------------------------

-- Rows that differ between each rollup table and its full recomputation
-- (both directions).  All zero <=> incremental == full.
CREATE FUNCTION bm_rollups_check()
RETURNS TABLE (rollup text, only_incremental bigint, only_full bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rollup_traffic', 'rollup_sales', 'rollup_queue',
            'rollup_calls', 'rollup_complaints', 'rollup_complaint_causes',
            'rollup_surveys', 'rollup_customers', 'rollup_lost_reasons',
            'rollup_hist', 'rollup_scores'] LOOP
        rollup := t;
        EXECUTE format('SELECT count(*) FROM (SELECT * FROM %I EXCEPT ALL SELECT * FROM %I) d',
                       t, 'bm_full_' || t) INTO only_incremental;
        EXECUTE format('SELECT count(*) FROM (SELECT * FROM %I EXCEPT ALL SELECT * FROM %I) d',
                       'bm_full_' || t, t) INTO only_full;
        RETURN NEXT;
    END LOOP;
END $$;

-- Recomputes every rollup and evaluation score from raw data.  Blocks
-- concurrent inserts while it runs (they wait, nothing is lost).
CREATE FUNCTION bm_rollups_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    LOCK TABLE people_counts, receipts, queue_tickets, phone_calls, complaints,
               survey_responses, customer_changes, evaluations, evaluation_answers
          IN SHARE MODE;
    FOREACH t IN ARRAY ARRAY['rollup_traffic', 'rollup_sales', 'rollup_queue',
            'rollup_calls', 'rollup_complaints', 'rollup_complaint_causes',
            'rollup_surveys', 'rollup_customers', 'rollup_lost_reasons',
            'rollup_hist'] LOOP
        EXECUTE format('DELETE FROM %I', t);
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, 'bm_full_' || t);
    END LOOP;
    DELETE FROM rollup_scores;
    DELETE FROM evaluation_scores;
    PERFORM bm_score_evaluations(ARRAY(SELECT id FROM evaluations ORDER BY id));
END $$;
