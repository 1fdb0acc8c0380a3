/* metric: the metrics catalogue and the estimate of one aggregate.
 *
 * A metric's aggregate is additive (counts, sums, sums of squares,
 * histogram buckets), so a region or the chain is the sum of its branches.
 * bm_q_estimate turns an aggregate into a value with n and a 95% interval
 * in the metric's display unit (percent for shares); bm_q_change_est tests
 * the change between two periods.  Definitions: docs/metrics.md. */
#ifndef BM_METRIC_H
#define BM_METRIC_H

#include <stddef.h>
#include <stdint.h>

#include "bm_err.h"
#include "stats.h"

typedef enum {
    BM_FAM_PROPORTION,   /* x / n, Wilson */
    BM_FAM_NPS,          /* x promoters, y detractors, n answers */
    BM_FAM_MEAN,         /* n, sum, sumsq, t-interval */
    BM_FAM_QUANTILE,     /* histogram */
    BM_FAM_COUNT,        /* x events, Garwood */
    BM_FAM_RATE1000,     /* 1000 * x / n, Garwood on x */
    BM_FAM_BALANCE,      /* x = gained - lost, n = gained + lost, Skellam */
} bm_family_t;

typedef struct {
    const char *name;
    const char *unit;
    int higher_better;
    bm_family_t family;
    const char *sample;         /* what n counts */
    double default_min_n;
    int decimals;
    double quantile;            /* BM_FAM_QUANTILE */
    const char *measure;        /* histogram measure */
    double bucket_width;        /* in the display unit */
    const char *latest_sql;     /* max(period_start) with data, $1 = kind */
    const char *sql;            /* per (id, period_start) aggregates */
    const char *description;
    /* The chain totals per period of the active branches (id, ps, n, x, y,
     * sum, sumsq, currency without the id), for metrics whose `sql` groups
     * rows per branch: summing them directly skips a per-branch grouping
     * of the whole chain.  NULL: the totals are summed over `sql`. */
    const char *totals_sql;
} bm_metric_t;

/* The catalogue, terminated by name == NULL. */
extern const bm_metric_t bm_metrics[];
const bm_metric_t *bm_metric_find(const char *name);

/* The figures of one entity in one period. */
typedef struct {
    double n, x, y, sum, sumsq;
    uint32_t *hist;             /* nb buckets, BM_FAM_QUANTILE only */
    char currency[4];           /* avg_check: "" none yet */
    int mixed_currency;
} bm_q_agg_t;

/* Histograms have at most this many buckets (queue waits and complaint
 * resolution times: 0..720 minutes or hours, the last one the overflow). */
#define BM_HIST_BUCKETS 721
/* The overflow bucket of a quantile metric's histogram. */
size_t bm_metric_hist_overflow(const bm_metric_t *m);

/* Value, n and interval in the display unit.  -1 with err only for
 * avg_check over several currencies. */
int bm_q_estimate(const bm_metric_t *m, const bm_q_agg_t *a, size_t nb,
                  bm_estimate_t *out, bm_err_t *err);
/* The same, with the pooled within-branch variance of the comparison set
 * for mystery-shopping scores (bm_est_mean_pooled); pool may be NULL. */
int bm_q_estimate_pooled(const bm_metric_t *m, const bm_q_agg_t *a, size_t nb,
                         const bm_pool_t *pool, bm_estimate_t *out, bm_err_t *err);
/* Whether the metric's means borrow the pooled within-branch SD. */
int bm_metric_pools(const bm_metric_t *m);
/* Adds the aggregate of one branch to the pool of its comparison set. */
void bm_q_pool_add(const bm_metric_t *m, bm_pool_t *pool, const bm_q_agg_t *a);

/* The test of the change from prev to cur, given the two estimates
 * bm_q_estimate made of them (every caller has them already; a quantile
 * estimate walks the whole histogram).  Untested (no arrow can follow)
 * when either side has n below min_n: a change of a sample flagged too
 * small is no verdict. */
bm_test_t bm_q_change_test(const bm_metric_t *m, const bm_q_agg_t *cur, const bm_q_agg_t *prev,
                           const bm_estimate_t *cur_est, const bm_estimate_t *prev_est,
                           double min_n);
/* The name of the interval method of a metric family ("Wilson", ...). */
const char *bm_metric_interval_name(bm_family_t f);

/* An estimate as a report shows it: with the low-sample mark that its n
 * earns against the minimum in force (no value at all counts as low). */
typedef struct {
    bm_estimate_t est;
    int low_n;
} bm_figure_t;

bm_figure_t bm_figure(const bm_estimate_t *e, double min_n);

/* Divides minor units of the aggregate's currency for display (2 digits by
 * default; 0 JPY, KRW; 3 BHD, KWD, OMR, TND). */
int bm_currency_digits(const char *currency);

#endif
