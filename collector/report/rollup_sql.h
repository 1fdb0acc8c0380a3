/* rollup_sql: the fragments shared by the statements of the metrics
 * catalogue (metric.c) and of the breakdowns (rollup.c).  Private to
 * report/. */
#ifndef BM_ROLLUP_SQL_H
#define BM_ROLLUP_SQL_H

/* Parameters of every metric statement (typed, so unused ones are fine):
 * $1 period kind, $2 first period start, $3 last period start, $4 channel,
 * $5 segment, $6 section, $7 answer target seconds, $8 outlet kind,
 * $9 the outlet ids to read (int[]; NULL = all: a region's rows are then
 * picked by the server, through the rollup's primary key, instead of the
 * whole chain being shipped and filtered here).  Statements are planned
 * with their parameter values (unnamed statements), so "$9 IS NULL" folds
 * away.  Columns: id, period_start, n, x, y, sum, sumsq, currency
 * (histograms: id, period_start, counts: the bucket counts as an int8
 * array, one row per histogram, see 008_hist.sql).  Grouping is by the date
 * (period_start, id), the order of the covering indexes of 006_scale.sql,
 * never by the text column: no sort. */
#define S_IDS(col) " AND ($9::int[] IS NULL OR " col " = ANY ($9::int[]))"
#define S_RANGE(t) t "period_kind = $1 AND " t "period_start BETWEEN $2 AND $3" S_IDS(t "branch_id")
#define S_RANGE_OUTLET(t) \
    t "period_kind = $1 AND " t "period_start BETWEEN $2 AND $3" S_IDS(t "outlet_id")

/* The rows of every active branch in the range (totals_sql). */
#define S_TOTALS_RANGE \
    "period_kind = $1 AND period_start BETWEEN $2 AND $3" \
    " AND branch_id IN (SELECT id FROM branches WHERE active)"

#define S_LATEST(table) "SELECT max(period_start)::text FROM " table " WHERE period_kind = $1"

#endif
