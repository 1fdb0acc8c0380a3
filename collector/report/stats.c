/* stats: intervals, significance tests, tie groups and control limits for
 * the benchmarks.  Pure functions over aggregates; owns no state.  See
 * stats.h for the contracts and docs/metrics.md for the definitions. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Two-sided 95% quantiles of Student's t, df = 1..29. */
static const double s_t95_table[30] = {
    0.0,    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
    2.228, 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093,
    2.086, 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045,
};

int bm_wilson(double x, double n, double z, double *lo, double *hi)
{
    if (!(n > 0) || !(x >= 0) || x > n || !(z > 0))
        return -1;
    double p = x / n;
    double z2 = z * z;
    double denom = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / denom;
    double half = z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
    double l = centre - half, h = centre + half;
    /* Rounding can push the bounds a hair past the data at p = 0 or 1. */
    *lo = l < 0 ? 0 : (x == 0 ? 0 : l);
    *hi = h > 1 ? 1 : (x == n ? 1 : h);
    return 0;
}

bm_estimate_t bm_est_proportion(double x, double n)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!(n > 0))
        return e;
    e.has_value = 1;
    e.n = n;
    e.value = x / n;
    if (x >= 0 && x <= n) {
        double p = e.value;
        e.sd = sqrt(p * (1.0 - p));
        e.se = e.sd / sqrt(n);
        e.has_ci = bm_wilson(x, n, BM_Z95, &e.lo, &e.hi) == 0;
    }
    return e;
}

bm_estimate_t bm_est_nps(double promoters, double detractors, double n)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!(n > 0) || promoters < 0 || detractors < 0 || promoters + detractors > n)
        return e;
    double pp = promoters / n, pd = detractors / n;
    double var = pp + pd - (pp - pd) * (pp - pd);
    if (var < 0)
        var = 0;
    e.has_value = 1;
    e.n = n;
    e.value = (pp - pd) * 100.0;
    e.sd = sqrt(var) * 100.0;
    e.se = e.sd / sqrt(n);
    e.has_ci = 1;
    e.lo = e.value - BM_Z95 * e.se;
    e.hi = e.value + BM_Z95 * e.se;
    if (e.lo < -100)
        e.lo = -100;
    if (e.hi > 100)
        e.hi = 100;
    return e;
}

double bm_t95(double df)
{
    if (!(df >= 1))
        return s_t95_table[1];
    if (df >= 30)
        return BM_Z95;
    return s_t95_table[(int)df];
}

bm_estimate_t bm_est_mean(double n, double sum, double sumsq)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!(n > 0))
        return e;
    e.has_value = 1;
    e.n = n;
    e.value = sum / n;
    if (n >= 2) {
        double ss = sumsq - sum * sum / n;
        if (ss < 0)     /* cancellation when all values are equal */
            ss = 0;
        e.sd = sqrt(ss / (n - 1));
        e.se = e.sd / sqrt(n);
        double t = bm_t95(n - 1);
        e.has_ci = 1;
        e.lo = e.value - t * e.se;
        e.hi = e.value + t * e.se;
    }
    return e;
}

void bm_est_clamp(bm_estimate_t *e, double lo, double hi)
{
    if (!e->has_ci)
        return;
    if (e->lo < lo)
        e->lo = lo;
    if (e->hi > hi)
        e->hi = hi;
}

/* The value at continuous rank r (0..n) of the histogram; interpolates
 * linearly inside a bucket, the overflow bucket reports its lower bound. */
static double s_hist_at_rank(const uint32_t *counts, size_t nb, size_t overflow,
                             double width, double r)
{
    double before = 0;
    size_t last_nonempty = 0;
    for (size_t i = 0; i < nb; i++) {
        if (!counts[i])
            continue;
        last_nonempty = i;
        double c = counts[i];
        if (r <= before + c) {
            if (i == overflow)
                return (double)i * width;
            double frac = (r - before) / c;
            if (frac < 0)
                frac = 0;
            return ((double)i + frac) * width;
        }
        before += c;
    }
    if (last_nonempty == overflow)
        return (double)last_nonempty * width;
    return ((double)last_nonempty + 1.0) * width;
}

bm_estimate_t bm_est_hist_quantile(const uint32_t *counts, size_t nb, size_t overflow,
                                   double width, double q)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!counts || nb == 0 || !(width > 0) || q < 0 || q > 1)
        return e;
    double n = 0;
    for (size_t i = 0; i < nb; i++)
        n += counts[i];
    if (n <= 0)
        return e;
    e.has_value = 1;
    e.n = n;
    e.value = s_hist_at_rank(counts, nb, overflow, width, q * n);
    if (n >= 10) {
        double half = BM_Z95 * sqrt(n * q * (1.0 - q));
        double rl = floor(q * n - half), rh = ceil(q * n + half);
        if (rl < 0)
            rl = 0;
        if (rh > n)
            rh = n;
        e.has_ci = 1;
        e.lo = s_hist_at_rank(counts, nb, overflow, width, rl);
        e.hi = s_hist_at_rank(counts, nb, overflow, width, rh);
        if (e.lo > e.value)
            e.lo = e.value;
        if (e.hi < e.value)
            e.hi = e.value;
        /* No standard error: changes are judged by disjoint intervals. */
    }
    return e;
}

int bm_change_proportion(double x1, double n1, double x0, double n0)
{
    if (!(n1 > 0) || !(n0 > 0) || x1 < 0 || x0 < 0 || x1 > n1 || x0 > n0)
        return 0;
    double p1 = x1 / n1, p0 = x0 / n0;
    double p = (x1 + x0) / (n1 + n0);
    double se = sqrt(p * (1.0 - p) * (1.0 / n1 + 1.0 / n0));
    if (!(se > 0))
        return 0;
    double z = (p1 - p0) / se;
    if (z > BM_Z95)
        return 1;
    if (z < -BM_Z95)
        return -1;
    return 0;
}

int bm_change_nps(const bm_estimate_t *cur, const bm_estimate_t *prev)
{
    if (!cur->has_value || !prev->has_value)
        return 0;
    double se = sqrt(cur->se * cur->se + prev->se * prev->se);
    if (!(se > 0))
        return 0;
    double z = (cur->value - prev->value) / se;
    return z > BM_Z95 ? 1 : (z < -BM_Z95 ? -1 : 0);
}

int bm_change_welch(const bm_estimate_t *cur, const bm_estimate_t *prev)
{
    if (!cur->has_value || !prev->has_value || cur->n < 2 || prev->n < 2)
        return 0;
    double v1 = cur->se * cur->se, v0 = prev->se * prev->se;
    double se = sqrt(v1 + v0);
    if (!(se > 0))
        return 0;
    double t = (cur->value - prev->value) / se;
    double df = (v1 + v0) * (v1 + v0) /
                (v1 * v1 / (cur->n - 1) + v0 * v0 / (prev->n - 1));
    double crit = bm_t95(df);
    return t > crit ? 1 : (t < -crit ? -1 : 0);
}

int bm_change_disjoint(const bm_estimate_t *cur, const bm_estimate_t *prev)
{
    if (!cur->has_ci || !prev->has_ci)
        return 0;
    if (cur->lo > prev->hi)
        return 1;
    if (cur->hi < prev->lo)
        return -1;
    return 0;
}

static int s_higher_better;

/* Best first; entries without a value last; equal values keep input order
 * (the key breaks the tie, qsort is not stable). */
static int s_rank_cmp(const void *a, const void *b)
{
    const bm_rank_entry_t *x = a, *y = b;
    if (x->est.has_value != y->est.has_value)
        return x->est.has_value ? -1 : 1;
    if (x->est.has_value && x->est.value != y->est.value) {
        int better = x->est.value > y->est.value;
        if (!s_higher_better)
            better = !better;
        return better ? -1 : 1;
    }
    return x->key < y->key ? -1 : (x->key > y->key ? 1 : 0);
}

static int s_overlap(const bm_estimate_t *a, const bm_estimate_t *b)
{
    if (a->value == b->value)
        return 1;
    if (!a->has_ci || !b->has_ci)
        return 0;
    return a->lo <= b->hi && b->lo <= a->hi;
}

void bm_rank_entries(bm_rank_entry_t *entries, size_t count, int higher_better)
{
    if (!entries || count == 0)
        return;
    s_higher_better = higher_better;
    qsort(entries, count, sizeof *entries, s_rank_cmp);
    int group = 0;
    size_t i = 0;
    while (i < count) {
        if (!entries[i].est.has_value) {
            entries[i].rank_lo = entries[i].rank_hi = 0;
            entries[i].group = 0;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < count && entries[j].est.has_value &&
               s_overlap(&entries[i].est, &entries[j].est))
            j++;
        group++;
        for (size_t k = i; k < j; k++) {
            entries[k].rank_lo = (int)i + 1;
            entries[k].rank_hi = (int)j;
            entries[k].group = group;
        }
        i = j;
    }
}

int bm_low_sample(double n, double min_n)
{
    return n < min_n;
}

int bm_control_alert(double current, double current_n, double baseline,
                     double baseline_sd, int higher_better, double *z_out)
{
    if (z_out)
        *z_out = 0;
    if (!(current_n > 0))
        return 0;
    double se = baseline_sd / sqrt(current_n);
    double delta = current - baseline;
    if (!higher_better)
        delta = -delta;
    if (!(se > 0))
        return 0;   /* a baseline without spread has no control limit */
    double z = delta / se;
    if (z_out)
        *z_out = z;
    return z < -3.0;
}

double bm_haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    const double r = 6371.0088;   /* mean Earth radius, km */
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1)
        a = 1;
    return 2.0 * r * asin(sqrt(a));
}
