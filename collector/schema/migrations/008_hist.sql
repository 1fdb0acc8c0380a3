-- 008_hist: one rollup_hist row per histogram instead of one per bucket.
--
-- Why: the quantile metrics (wait_p50, wait_p90, complaint_resolve_median)
-- read rollup_hist, which held one row per (branch, period, measure, bucket):
-- 25 rows per branch and month in typical data, up to 721.  A chain-wide
-- month was 500,000 rows to read and ship (213 ms warm for 10,000 branches),
-- and every batch upserted one row per bucket it touched.  Now a histogram is
-- one row whose `counts` array holds the count of bucket k at counts[k + 1]
-- (PostgreSQL arrays start at 1), dense up to the highest non-empty bucket;
-- `n` is the sum of the counts.  Rows shrink 25-721 times on both sides.
--
-- Owns: bm_hist_dense(), bm_hist_add(), bm_hist_upsert(), the new shape of rollup_hist and of
-- bm_full_rollup_hist, and the histogram part of the three rollup triggers.
-- Row-level security policies and grants stay on the table (it is altered
-- in place, not recreated).

-- The dense counts array of (bucket, count) pairs: element k + 1 is the sum
-- of the counts of bucket k, zero where none; length = highest bucket + 1.
CREATE FUNCTION bm_hist_dense(buckets int[], counts bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(coalesce(s.c, 0) ORDER BY g.i)
      FROM generate_series(0, (SELECT max(b) FROM unnest(buckets) b)) g(i)
      LEFT JOIN (SELECT u.b, sum(u.c)::bigint AS c
                   FROM unnest(buckets, counts) u(b, c) GROUP BY u.b) s ON s.b = g.i
$$;

-- Element-wise sum of two counts arrays of any lengths (NULL = empty).
CREATE FUNCTION bm_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i)
      FROM generate_series(1, greatest(cardinality(a), cardinality(b))) i
$$;

-- The data, converted in place.
CREATE TEMPORARY TABLE bm_hist_convert ON COMMIT DROP AS
SELECT branch_id, period_kind, period_start, measure, sum(n)::bigint AS n,
       bm_hist_dense(array_agg(bucket), array_agg(n)) AS counts
  FROM rollup_hist
 GROUP BY 1, 2, 3, 4;

DELETE FROM rollup_hist;
-- Dropping bucket drops the primary key and the covering indexes of 006.
ALTER TABLE rollup_hist DROP COLUMN bucket, DROP COLUMN n;
ALTER TABLE rollup_hist ADD COLUMN n bigint NOT NULL, ADD COLUMN counts bigint[] NOT NULL,
    ADD PRIMARY KEY (branch_id, period_kind, period_start, measure);
-- Chain-wide reads (one period, every branch).  No INCLUDE (counts): an
-- index tuple cannot hold a 721-element array, and the heap rows are few.
CREATE INDEX rollup_hist_period ON rollup_hist (period_kind, period_start, measure, branch_id);
INSERT INTO rollup_hist (branch_id, period_kind, period_start, measure, n, counts)
SELECT branch_id, period_kind, period_start, measure, n, counts FROM bm_hist_convert;

-- The full recomputation keeps its per-bucket form under a new name and is
-- folded into arrays on top, so bm_rollups_check / bm_rollups_rebuild (which
-- compare and copy `bm_full_<table>` with SELECT *) work unchanged.
ALTER VIEW bm_full_rollup_hist RENAME TO bm_full_rollup_hist_buckets;
CREATE VIEW bm_full_rollup_hist (branch_id, period_kind, period_start, measure, n, counts) AS
SELECT branch_id, period_kind, period_start, measure, sum(n)::bigint,
       bm_hist_dense(array_agg(bucket), array_agg(n))
  FROM bm_full_rollup_hist_buckets
 GROUP BY 1, 2, 3, 4;

-- Adds one measure's (branch, period kind, period start, bucket, count)
-- rows, given as parallel arrays, to the stored histograms: summed per
-- histogram into one array each and upserted.  The three rollup triggers
-- below call it with their transition table's rows.
CREATE FUNCTION bm_hist_upsert(m text, branch_ids int[], kinds text[], starts date[],
                               buckets int[], counts bigint[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO rollup_hist AS r (branch_id, period_kind, period_start, measure, n, counts)
    SELECT u.branch_id, u.period_kind, u.period_start, m, sum(u.c)::bigint,
           bm_hist_dense(array_agg(u.b), array_agg(u.c))
      FROM unnest(branch_ids, kinds, starts, buckets, counts)
           u(branch_id, period_kind, period_start, b, c)
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (branch_id, period_kind, period_start, measure) DO UPDATE
       SET n = r.n + EXCLUDED.n, counts = bm_hist_add(r.counts, EXCLUDED.counts)
$$;
REVOKE ALL ON FUNCTION bm_hist_upsert(text, int[], text[], date[], int[], bigint[]) FROM PUBLIC;

-- The triggers: the other rollups as in 002; the histogram part now counts
-- per bucket and hands the rows to bm_hist_upsert.
CREATE OR REPLACE FUNCTION bm_rollup_queue_tickets() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
    PERFORM bm_hist_upsert('queue_wait', array_agg(s.branch_id), array_agg(s.period_kind),
                           array_agg(s.period_start), array_agg(s.b), array_agg(s.c))
      FROM (SELECT n.branch_id, p.period_kind, p.period_start,
                   bm_bucket(extract(epoch FROM n.called_at - n.issued_at), 5, 720) AS b,
                   count(*) AS c
              FROM new_rows n, bm_periods(n.issued_at, tz) p
             WHERE n.called_at IS NOT NULL
             GROUP BY 1, 2, 3, 4) s;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_phone_calls() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
    PERFORM bm_hist_upsert('call_answer_wait', array_agg(s.branch_id), array_agg(s.period_kind),
                           array_agg(s.period_start), array_agg(s.b), array_agg(s.c))
      FROM (SELECT n.branch_id, p.period_kind, p.period_start,
                   bm_bucket(n.wait_seconds, 1, 600) AS b, count(*) AS c
              FROM new_rows n, bm_periods(n.ring_start, tz) p
             WHERE n.answered
             GROUP BY 1, 2, 3, 4) s;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bm_rollup_complaints() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
    PERFORM bm_hist_upsert('complaint_resolve', array_agg(s.branch_id), array_agg(s.period_kind),
                           array_agg(s.period_start), array_agg(s.b), array_agg(s.c))
      FROM (SELECT n.branch_id, p.period_kind, p.period_start,
                   bm_bucket(extract(epoch FROM n.resolved_at - n.received_at_src), 3600, 720)
                       AS b,
                   count(*) AS c
              FROM new_rows n, bm_periods(n.received_at_src, tz) p
             WHERE n.resolved_at IS NOT NULL
             GROUP BY 1, 2, 3, 4) s;
    RETURN NULL;
END $$;
