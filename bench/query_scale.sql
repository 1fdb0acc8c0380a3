-- query_scale.sql: fills a migrated database with 10,000 branches in 50
-- regions (unless it already has them) and the rollup tables with a year of
-- data, for timing `branchmark rank` at chain scale (bench/perf.sh --only
-- query; ~1-2 minutes for 10,000 branches on a quiet 2-CPU machine).
--
-- Shortcut (docs/performance.md): rows are written straight into the
-- rollups, which are all that the queries read; no raw rows exist, so
-- bm_rollups_check() would not agree.  Written: week, month and quarter rows
-- of traffic, sales, queue, calls and surveys (3 segments), and month and
-- quarter rows of the queue-wait histogram (25 buckets of 5 s), for the 13
-- months up to the current one.  Day rows are left out (a year of them for
-- 10,000 branches is ~100 million histogram rows); month ranks never read
-- them.  Values are random but plausible; the branch's id shifts its level
-- so that rankings are not all ties.  Rows are inserted period by
-- period, as incremental rollups are in production (a period's rows sit
-- close together on disk).
\set ON_ERROR_STOP on
SET synchronous_commit = off;

-- Reference data: when the database has fewer than :branches branches
-- (default 10,000; psql -v branches=N), the chain, 50 regions R01..R50 and
-- branches Q00001.. are generated here (spread evenly over the regions), so
-- the whole data set is one psql run with no bm-loadgen / refdata load step.
\if :{?branches}
\else
\set branches 10000
\endif
INSERT INTO chain (id, code, name, timezone) VALUES (1, 'SCALE', 'Scale test chain', 'UTC')
ON CONFLICT (id) DO NOTHING;
INSERT INTO regions (code, name)
SELECT format('R%s', lpad(r::text, 2, '0')), format('Region %s', r)
  FROM generate_series(1, 50) r
ON CONFLICT (code) DO NOTHING;
INSERT INTO branches (code, name, region_id, latitude, longitude)
SELECT format('Q%s', lpad(i::text, 5, '0')), format('Scale branch %s', i),
       (SELECT id FROM regions ORDER BY code OFFSET (i % 50) LIMIT 1),
       45 + (i % 100) / 10.0, 5 + (i / 100) / 10.0
  FROM generate_series(1, greatest(0, :branches - (SELECT count(*) FROM branches))) i
ON CONFLICT (code) DO NOTHING;

CREATE TEMP TABLE periods AS
SELECT 'month'::text AS period_kind, d::date AS period_start
  FROM generate_series(date_trunc('month', now()) - interval '12 months',
                       date_trunc('month', now()), interval '1 month') d
UNION ALL
SELECT 'quarter', d::date
  FROM generate_series(date_trunc('quarter', now()) - interval '12 months',
                       date_trunc('quarter', now()), interval '3 months') d
UNION ALL
SELECT 'week', d::date
  FROM generate_series(date_trunc('week', now()) - interval '52 weeks',
                       date_trunc('week', now()), interval '1 week') d;

-- Scale of a period relative to a month.
CREATE TEMP TABLE p AS
SELECT period_kind, period_start,
       CASE period_kind WHEN 'week' THEN 0.23 WHEN 'month' THEN 1.0 ELSE 3.0 END AS f
  FROM periods;

INSERT INTO rollup_traffic
SELECT b.id, p.period_kind, p.period_start, (2880 * p.f)::bigint,
       (60000 * p.f * (0.8 + random() * 0.4))::bigint, (9000 * p.f * (0.8 + random() * 0.4))::bigint
  FROM branches b, p
 ORDER BY p.period_start, b.id;

INSERT INTO rollup_sales
SELECT b.id, p.period_kind, p.period_start, 'EUR', s.n + s.n / 20, s.n,
       s.n * 4500, s.n * 4500.0 * 4500 * 1.3, s.n / 20, -(s.n / 20) * 2000
  FROM branches b, p, LATERAL (SELECT (3000 * p.f * (0.7 + random() * 0.6))::bigint AS n) s
 ORDER BY p.period_start, b.id;

INSERT INTO rollup_queue
SELECT b.id, p.period_kind, p.period_start, q.n, q.n * 9 / 10, q.n * 9 / 10,
       q.n * 9 / 10 * q.w, q.n * 9 / 10 * q.w * q.w * 1.5
  FROM branches b, p,
       LATERAL (SELECT (4000 * p.f)::bigint AS n, 60 + (b.id % 97) + random() * 30 AS w) q
 ORDER BY p.period_start, b.id;

INSERT INTO rollup_calls
SELECT b.id, p.period_kind, p.period_start, c.n, c.n * 8 / 10, c.n - c.n * 8 / 10,
       c.n * 8 / 10 * (10 + random() * 20)
  FROM branches b, p, LATERAL (SELECT (900 * p.f)::bigint AS n) c
 ORDER BY p.period_start, b.id;

INSERT INTO rollup_surveys
SELECT b.id, p.period_kind, p.period_start, seg, v.n, v.n, v.pro, v.n - v.pro - v.det, v.det,
       0, 0, 0
  FROM branches b, p, unnest(ARRAY['', 'retail', 'business']) seg,
       LATERAL (SELECT (120 * p.f)::bigint AS n,
                       (120 * p.f * (0.3 + (b.id % 41) / 100.0 + random() * 0.1))::bigint AS pro,
                       (120 * p.f * (0.1 + random() * 0.1))::bigint AS det) v
 ORDER BY p.period_start, b.id;

-- One row per histogram (008_hist.sql): 25 buckets of counts.
INSERT INTO rollup_hist (branch_id, period_kind, period_start, measure, n, counts)
SELECT h.id, h.period_kind, h.period_start, 'queue_wait', sum(h.c), array_agg(h.c ORDER BY h.k)
  FROM (SELECT b.id, p.period_kind, p.period_start, k,
               greatest(1, (4000 * p.f / 25 * (1.5 - abs(k - 12 - (b.id % 7)) / 20.0)))::bigint AS c
          FROM branches b, p, generate_series(0, 24) k
         WHERE p.period_kind <> 'week') h
 GROUP BY h.period_start, h.id, h.period_kind
 ORDER BY h.period_start, h.id;

-- VACUUM sets the visibility map: the covering indexes of 006_scale.sql
-- then answer without touching the heap (autovacuum does this in production).
VACUUM ANALYZE;
