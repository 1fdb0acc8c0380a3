/* stats: the statistics behind every benchmark figure (pure C, no I/O).
 *
 * Intervals are 95% two-sided unless a function says otherwise.  Inputs are
 * additive aggregates (counts, sums, sums of squares, histogram buckets) as
 * the rollup tables keep them, so the same code serves a branch, a region
 * and the chain.  Definitions and their sources: docs/metrics.md. */
#ifndef BM_STATS_H
#define BM_STATS_H

#include <stddef.h>
#include <stdint.h>

#define BM_Z95 1.959963984540054

/* A point estimate with its interval and what a significance test needs.
 * has_ci == 0: no interval (n too small, or the method has none). */
typedef struct {
    int has_value;      /* 0: no data in the period */
    double value;
    double n;           /* sample size behind the value */
    int has_ci;
    double lo, hi;      /* 95% interval, valid when has_ci */
    double se;          /* standard error of value (0 if unknown) */
    double sd;          /* per-observation standard deviation (means), or
                         * sqrt(variance) of one answer (NPS, proportions) */
} bm_estimate_t;

/* Wilson score interval for x successes out of n (n > 0, 0 <= x <= n),
 * with normal quantile z.  Returns 0, or -1 when the input is outside
 * that domain (then *lo and *hi are untouched). */
int bm_wilson(double x, double n, double z, double *lo, double *hi);

/* A proportion x/n with its Wilson interval. */
bm_estimate_t bm_est_proportion(double x, double n);

/* NPS in points (-100..100) from promoters, detractors and answers n:
 * Var = pP + pD - (pP - pD)^2 of one answer scored +1/0/-1, and
 * CI = NPS +- 1.96 * sqrt(Var / n) * 100, clamped to -100..100. */
bm_estimate_t bm_est_nps(double promoters, double detractors, double n);

/* Two-sided 95% Student t quantile for df degrees of freedom: a table up to
 * df 29, 1.96 beyond (and for non-integer df, the next lower integer's). */
double bm_t95(double df);

/* Clamps the interval of e into [lo, hi] (for bounded scales such as
 * scores in percent: a t-interval does not know the scale ends). */
void bm_est_clamp(bm_estimate_t *e, double lo, double hi);

/* Mean from n, sum and sum of squares with a t-interval (needs n >= 2 for
 * an interval). */
bm_estimate_t bm_est_mean(double n, double sum, double sumsq);

/* Quantile q (0..1) from a histogram of nb buckets of the given width,
 * bucket i covering [i*width, (i+1)*width).  Bucket `overflow` is
 * [overflow*width, inf) and is reported as its lower bound; counts may stop
 * before it (nb <= overflow: histograms are stored up to their highest
 * non-empty bucket), the buckets after nb being empty.  Linear
 * interpolation inside a bucket.  The interval is distribution free (order
 * statistics): ranks n*q -+ 1.96*sqrt(n*q*(1-q)), needs n >= 10. */
bm_estimate_t bm_est_hist_quantile(const uint32_t *counts, size_t nb, size_t overflow,
                                   double width, double q);

/* Significance of the change from a previous to a current estimate at 95%.
 * Returns +1 (significantly up), -1 (significantly down) or 0. */
int bm_change_proportion(double x1, double n1, double x0, double n0);
int bm_change_nps(const bm_estimate_t *cur, const bm_estimate_t *prev);
int bm_change_welch(const bm_estimate_t *cur, const bm_estimate_t *prev);
/* For estimates with intervals but no test: significant when the two 95%
 * intervals do not overlap (conservative). */
int bm_change_disjoint(const bm_estimate_t *cur, const bm_estimate_t *prev);

/* One entry to rank. */
typedef struct {
    bm_estimate_t est;
    size_t key;             /* the caller's index, carried through the sort */
    int rank_lo, rank_hi;   /* out: rank range, 1-based (equal = no tie) */
    int group;              /* out: tie group number, 1-based */
} bm_rank_entry_t;

/* Sorts entries best first (higher_better decides) and assigns rank ranges:
 * the best not yet grouped entry leads a group, and the following entries
 * whose 95% intervals overlap the leader's join it, until the first one
 * that does not.  Entries without an interval join only on an exactly equal
 * value; entries without a value go last with rank 0.  Stable for equal
 * values (keeps input order). */
void bm_rank_entries(bm_rank_entry_t *entries, size_t count, int higher_better);

/* 1 when n is below the minimum sample (a figure to mark, not hide). */
int bm_low_sample(double n, double min_n);

/* Early warning (Shewhart control chart): returns 1 when the current value
 * is worse than the baseline by more than 3 standard errors, where the
 * standard error is the baseline's per-observation deviation over
 * sqrt(current n).  *z_out (may be NULL) gets the signed distance in
 * standard errors (negative = worse). */
int bm_control_alert(double current, double current_n, double baseline,
                     double baseline_sd, int higher_better, double *z_out);

/* Great-circle distance in km between two WGS84 points (haversine). */
double bm_haversine_km(double lat1, double lon1, double lat2, double lon2);

#endif
