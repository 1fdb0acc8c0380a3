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

/* The two-sided 95% normal quantile, to double precision (qnorm(0.975));
 * every interval, test and document uses this one constant. */
#define BM_Z95 1.959963984540054
/* The level of every test: 5% two-sided (familywise for rank ranges, false
 * discovery rate for arrows shown together). */
#define BM_ALPHA 0.05

/* A point estimate with its interval and what a significance test needs.
 * has_ci == 0: no interval (n too small, or the method has none). */
typedef struct {
    int has_value;      /* 0: no data in the period */
    double value;
    double n;           /* sample size behind the value */
    int has_ci;
    double lo, hi;      /* 95% interval, valid when has_ci */
    double se;          /* the standard error the tests use (0: untestable) */
    double df;          /* its degrees of freedom (0: normal, known form) */
    double sd;          /* per-observation standard deviation (means), or
                         * sqrt(variance) of one answer (NPS, proportions) */
} bm_estimate_t;

/* Wilson score interval for x successes out of n (n > 0, 0 <= x <= n),
 * with normal quantile z.  Returns 0, or -1 when the input is outside
 * that domain (then *lo and *hi are untouched). */
int bm_wilson(double x, double n, double z, double *lo, double *hi);
/* The same with continuity correction (Newcombe 1998, method 4): the
 * interval the shares use.  Same contract as bm_wilson. */
int bm_wilson_cc(double x, double n, double z, double *lo, double *hi);

/* A proportion x/n with its continuity-corrected Wilson interval; se is
 * Agresti-Caffo's (x + 1) / (n + 2), which never collapses to 0 at x = 0
 * or x = n, for the comparisons of two shares. */
bm_estimate_t bm_est_proportion(double x, double n);

/* NPS in points (-100..100) from promoters, detractors and answers n, with
 * the score interval (the NPS values a trinomial score test does not
 * reject at 5%; Tango 1998); se is the adjusted-Wald one of Rocks (2016),
 * 3/4 promoter and 3/4 detractor added, sqrt(Var' / (n + 3)). */
bm_estimate_t bm_est_nps(double promoters, double detractors, double n);

/* Two-sided 95% Student t quantile for df > 0 degrees of freedom (exact,
 * fractional df allowed); df <= 0: the normal quantile. */
double bm_t95(double df);

/* Clamps the interval of e into [lo, hi] (for bounded scales such as
 * scores in percent: a t-interval does not know the scale ends). */
void bm_est_clamp(bm_estimate_t *e, double lo, double hi);

/* Mean from n, sum and sum of squares with a t-interval (needs n >= 2 for
 * an interval). */
bm_estimate_t bm_est_mean(double n, double sum, double sumsq);

/* The pooled within-group variance of several groups measured with the
 * same instrument (one-way ANOVA's mean square error): ss = sum of the
 * groups' squared deviations from their own means, df = sum of (n - 1). */
typedef struct {
    double ss, df;
} bm_pool_t;

/* Adds one group (n, sum, sumsq) to the pool (groups with n < 2 add no
 * degrees of freedom). */
void bm_pool_add(bm_pool_t *pool, double n, double sum, double sumsq);
/* The pooled standard deviation, 0 without degrees of freedom. */
double bm_pool_sd(const bm_pool_t *pool);

/* A mean with the pooled SD as a floor: sd = max(own sd, pooled sd), and
 * the t quantile of the pooled degrees of freedom, so that three visits
 * that happened to agree do not claim a 2-df certainty and a single visit
 * gets an (honestly wide) interval.  pool NULL or without df: bm_est_mean. */
bm_estimate_t bm_est_mean_pooled(double n, double sum, double sumsq, const bm_pool_t *pool);

/* A rate of rare events: k * x / n (x events over exposure n, e.g.
 * complaints per 1,000 entrants) with Garwood's exact Poisson interval
 * [chi2(.025; 2x) / 2, chi2(.975; 2x + 2) / 2] * k / n. */
bm_estimate_t bm_est_poisson_rate(double x, double n, double k);

/* A count of events x (n the opportunities, for the figure) with
 * Garwood's interval. */
bm_estimate_t bm_est_count(double x, double n);

/* A balance of two event counts, gained - lost (n = gained + lost): the
 * difference of two Poisson counts (Skellam), Var = gained + lost, normal
 * interval. */
bm_estimate_t bm_est_balance(double balance, double n);

/* Quantile q (0..1) from a histogram of nb buckets of the given width,
 * bucket i covering [i*width, (i+1)*width).  Bucket `overflow` is
 * [overflow*width, inf) and is reported as its lower bound; counts may stop
 * before it (nb <= overflow: histograms are stored up to their highest
 * non-empty bucket), the buckets after nb being empty.  Linear
 * interpolation inside a bucket.  The interval is distribution free (order
 * statistics): ranks n*q -+ 1.96*sqrt(n*q*(1-q)), needs n >= 10; se is
 * its half-width / 1.96 (for tests). */
bm_estimate_t bm_est_hist_quantile(const uint32_t *counts, size_t nb, size_t overflow,
                                   double width, double q);

/* The outcome of one two-sided test: tested 0 when it cannot be made (no
 * data, no standard error); dir +1 / -1 is the sign of the difference. */
typedef struct {
    int tested;
    int dir;
    double p;
} bm_test_t;

/* Two proportions x1/n1 against x0/n0, z-test with the pooled proportion. */
bm_test_t bm_test_proportion(double x1, double n1, double x0, double n0);
/* a - b from their standard errors: z, or Welch's t with the
 * Welch-Satterthwaite degrees of freedom when both have df > 0. */
bm_test_t bm_test_diff(const bm_estimate_t *a, const bm_estimate_t *b);

/* Significance of the change from a previous to a current estimate at 95%
 * (unadjusted).  Returns +1 (significantly up), -1 (significantly down)
 * or 0. */
int bm_change_proportion(double x1, double n1, double x0, double n0);
int bm_change_nps(const bm_estimate_t *cur, const bm_estimate_t *prev);
int bm_change_welch(const bm_estimate_t *cur, const bm_estimate_t *prev);

/* Benjamini-Hochberg (1995) adjusted p-values ("q-values") of m tests:
 * q_(i) = min over j >= i of p_(j) * m / j, capped at 1.  A test is a
 * discovery at false discovery rate alpha when q <= alpha.  p and q may be
 * the same array.  Returns 0, -1 when memory runs out (q untouched). */
int bm_bh_adjust(const double *p, size_t m, double *q);

/* A change or gap as a report shows it: its test, the Benjamini-Hochberg
 * q-value over the tests shown together, and the arrow that survives. */
typedef struct {
    bm_test_t test;
    double q;               /* 1 when untested */
    int arrow;              /* +1 / -1 when q <= BM_ALPHA, else 0 */
} bm_verdict_t;

/* Adjusts the n verdicts shown together (pointers, any may be NULL): q by
 * Benjamini-Hochberg over the tested ones, arrow = dir when q <= alpha.
 * Returns the number of tests, or -1 when memory runs out (then every
 * arrow is 0). */
int bm_verdicts_adjust(bm_verdict_t **v, size_t n);

/* One entry to rank. */
typedef struct {
    bm_estimate_t est;
    size_t key;             /* the caller's index, carried through the sort */
    int rank_lo, rank_hi;   /* out: rank range, 1-based (equal = no tie) */
    int group;              /* out: 1-based number of the distinct rank range */
    int better, worse;      /* out: entries significantly better / worse */
} bm_rank_entry_t;

/* Sorts entries best first (higher_better decides) and assigns rank ranges
 * from pairwise tests (bm_test_diff) of every pair, Holm-adjusted
 * (familywise 5% over all pairs; beyond BM_RANK_HOLM_MAX entries the
 * Bonferroni bound, which Holm only improves on): an entry's range is
 * 1 + (entries significantly better) .. count - (entries significantly
 * worse), so it always holds its position and "A above B" is a test.
 * Entries without a standard error are never significantly different.
 * Entries without a value go last with rank 0.  Stable for equal values
 * (keeps input order).  Returns 0, -1 when memory runs out (then the
 * ranges are the widest, 1..count). */
#define BM_RANK_HOLM_MAX 2048
int bm_rank_entries(bm_rank_entry_t *entries, size_t count, int higher_better);

/* Whether the period [start, start + days) is complete on day `today`
 * (days since 1970-01-01): it is partial while today falls inside it (or
 * before it).  *covered gets the days of it that have begun (today
 * included), at most days. */
int bm_period_complete(int64_t start, int days, int64_t today, int *covered);

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
