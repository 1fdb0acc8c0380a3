/* stats: intervals, significance tests, tie groups and control limits for
 * the benchmarks.  Pure functions over aggregates; owns no state.  See
 * stats.h for the contracts and docs/metrics.md for the definitions. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

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

int bm_wilson_cc(double x, double n, double z, double *lo, double *hi)
{
    if (!(n > 0) || !(x >= 0) || x > n || !(z > 0))
        return -1;
    /* Newcombe (1998), "Two-sided confidence intervals for the single
     * proportion", Statistics in Medicine 17:857-872, method 4. */
    double p = x / n, q = 1.0 - p, z2 = z * z, d = 2.0 * (n + z2);
    double l = 0, h = 1;
    if (x > 0) {
        double r = z2 - 2.0 - 1.0 / n + 4.0 * p * (n * q + 1.0);
        l = (2.0 * n * p + z2 - 1.0 - z * sqrt(r > 0 ? r : 0)) / d;
    }
    if (x < n) {
        double r = z2 + 2.0 - 1.0 / n + 4.0 * p * (n * q - 1.0);
        h = (2.0 * n * p + z2 + 1.0 + z * sqrt(r > 0 ? r : 0)) / d;
    }
    *lo = l < 0 ? 0 : l;
    *hi = h > 1 ? 1 : h;
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
        /* Agresti & Caffo (2000): one success and one failure added to
         * each sample give a difference test that holds at small n and at
         * 0% or 100%, where p(1 - p) / n is 0. */
        double pt = (x + 1.0) / (n + 2.0);
        e.se = sqrt(pt * (1.0 - pt) / (n + 2.0));
        e.has_ci = bm_wilson_cc(x, n, BM_Z95, &e.lo, &e.hi) == 0;
    }
    return e;
}

/* The trinomial log-likelihood of promoters P, detractors D, passives O
 * at pP = a, pD = a - theta (0 log 0 = 0; -inf outside the simplex). */
static double s_nps_loglik(double P, double D, double O, double a, double theta)
{
    double b = a - theta, c = 1.0 - a - b;
    if (a < 0 || b < 0 || c < 0)
        return -INFINITY;
    double l = 0;
    if (P > 0)
        l += a > 0 ? P * log(a) : -INFINITY;
    if (D > 0)
        l += b > 0 ? D * log(b) : -INFINITY;
    if (O > 0)
        l += c > 0 ? O * log(c) : -INFINITY;
    return l;
}

/* The score statistic of H0: NPS = theta (proportions, -1..1): the
 * likelihood maximised under the constraint (the stationary point solves
 * 2n a^2 - B a + P theta (1 + theta) = 0, B = P(1 + 3 theta) + D(1 + theta)
 * + 2 O theta; the simplex corners stand in when counts are zero), then
 * z = (NPS^ - theta) / sqrt(Var_theta / n), Var_theta = pP + pD - theta^2. */
static double s_nps_score(double P, double D, double n, double theta)
{
    double O = n - P - D;
    double B = P * (1 + 3 * theta) + D * (1 + theta) + 2 * O * theta;
    double disc = B * B - 8.0 * n * P * theta * (1 + theta);
    double lo = theta > 0 ? theta : 0, hi = (1 + theta) / 2;
    double cand[4] = {lo, hi, lo, hi};
    if (disc >= 0) {
        cand[2] = (B - sqrt(disc)) / (4 * n);
        cand[3] = (B + sqrt(disc)) / (4 * n);
    }
    double best = lo, bl = -INFINITY;
    for (int i = 0; i < 4; i++) {
        double a = cand[i] < lo ? lo : (cand[i] > hi ? hi : cand[i]);
        double l = s_nps_loglik(P, D, O, a, theta);
        if (l > bl) {
            bl = l;
            best = a;
        }
    }
    double var = 2 * best - theta - theta * theta;
    double d = (P - D) / n - theta;
    if (!(var > 1e-15))
        return d == 0 ? 0 : (d > 0 ? INFINITY : -INFINITY);
    return d / sqrt(var / n);
}

/* The theta between `inside` (|z| <= z95) and `outside` where the score
 * statistic crosses the critical value. */
static double s_nps_bound(double P, double D, double n, double inside, double outside)
{
    for (int i = 0; i < 60; i++) {
        double mid = 0.5 * (inside + outside);
        if (fabs(s_nps_score(P, D, n, mid)) <= BM_Z95)
            inside = mid;
        else
            outside = mid;
    }
    return inside;
}

bm_estimate_t bm_est_nps(double promoters, double detractors, double n)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!(n > 0) || promoters < 0 || detractors < 0 || promoters + detractors > n)
        return e;
    double pp = promoters / n, pd = detractors / n;
    double var = pp + pd - (pp - pd) * (pp - pd);
    double v = pp - pd;
    e.has_value = 1;
    e.n = n;
    e.value = v * 100.0;
    e.sd = sqrt(var > 0 ? var : 0) * 100.0;
    /* The score interval: every NPS theta that a score test at 5% does
     * not reject (the construction of Wilson's interval, for the
     * difference of two proportions of one trinomial: Tango 1998, with
     * passives in the place of concordant pairs).  It keeps its coverage
     * where the Wald interval collapses (one answer: [100, 100]) and
     * where the adjusted Wald of Rocks (2016) falls to 75% (n = 1 at
     * NPS 70; see the coverage test). */
    e.has_ci = 1;
    e.lo = v <= -1 ? -1 : s_nps_bound(promoters, detractors, n, v, -1);
    e.hi = v >= 1 ? 1 : s_nps_bound(promoters, detractors, n, v, 1);
    e.lo *= 100.0;
    e.hi *= 100.0;
    /* The standard error the tests use: the adjusted Wald one (3/4
     * promoter and 3/4 detractor added, Rocks 2016), never 0. */
    double na = n + 3.0;
    double ap = (promoters + 0.75) / na, ad = (detractors + 0.75) / na;
    e.se = sqrt((ap + ad - (ap - ad) * (ap - ad)) / na) * 100.0;
    return e;
}

double bm_t95(double df)
{
    return bm_t_crit(0.05, df);
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
        e.df = n - 1;
        double t = bm_t95(n - 1);
        e.has_ci = 1;
        e.lo = e.value - t * e.se;
        e.hi = e.value + t * e.se;
    }
    return e;
}

void bm_pool_add(bm_pool_t *pool, double n, double sum, double sumsq)
{
    if (!(n >= 2))
        return;
    double ss = sumsq - sum * sum / n;
    pool->ss += ss > 0 ? ss : 0;
    pool->df += n - 1;
}

double bm_pool_sd(const bm_pool_t *pool)
{
    return pool && pool->df > 0 ? sqrt(pool->ss / pool->df) : 0;
}

bm_estimate_t bm_est_mean_pooled(double n, double sum, double sumsq, const bm_pool_t *pool)
{
    bm_estimate_t e = bm_est_mean(n, sum, sumsq);
    double sp = bm_pool_sd(pool);
    if (!e.has_value || !(sp > 0))
        return e;
    /* Evaluations of one questionnaire and channel share an instrument:
     * the within-branch spread of all branches (pool->df degrees of
     * freedom) is a far better estimate of one branch's spread than its
     * own 2 df at n = 3 (one-way ANOVA's common-variance interval).  The
     * own SD still wins when larger, so a branch that really varies more
     * is not made to look precise. */
    e.sd = e.sd > sp ? e.sd : sp;
    e.se = e.sd / sqrt(n);
    e.df = pool->df;
    double t = bm_t95(e.df);
    e.has_ci = 1;
    e.lo = e.value - t * e.se;
    e.hi = e.value + t * e.se;
    return e;
}

/* Garwood (1936) exact Poisson limits for x observed events. */
static void s_garwood(double x, double *lo, double *hi)
{
    *lo = x > 0 ? bm_gamma_quantile(x, BM_ALPHA / 2) : 0;
    *hi = bm_gamma_quantile(x + 1.0, 1.0 - BM_ALPHA / 2);
}

bm_estimate_t bm_est_poisson_rate(double x, double n, double k)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!(n > 0) || !(x >= 0))
        return e;
    e.has_value = 1;
    e.n = n;
    e.value = k * x / n;
    double lo, hi;
    s_garwood(x, &lo, &hi);
    e.has_ci = 1;
    e.lo = k * lo / n;
    e.hi = k * hi / n;
    /* The rate's standard error for comparisons: sqrt(x + 1/2) / n keeps a
     * branch with no event comparable (Anscombe's 3/8 is similar). */
    e.se = k * sqrt(x + 0.5) / n;
    e.sd = k * sqrt(x / n);     /* per unit of exposure: Var = rate */
    return e;
}

bm_estimate_t bm_est_count(double x, double n)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!(n > 0) || !(x >= 0))
        return e;
    e.has_value = 1;
    e.n = n;
    e.value = x;
    s_garwood(x, &e.lo, &e.hi);
    e.has_ci = 1;
    e.se = sqrt(x + 0.5);
    return e;
}

bm_estimate_t bm_est_balance(double balance, double n)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    if (!(n > 0))
        return e;
    e.has_value = 1;
    e.n = n;
    e.value = balance;
    e.se = sqrt(n);
    e.has_ci = 1;
    e.lo = balance - BM_Z95 * e.se;
    e.hi = balance + BM_Z95 * e.se;
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
        /* The interval is the normal approximation of the rank's
         * binomial spread mapped through the histogram; its half-width
         * over z is the estimate's standard error (as in Price and
         * Bonett's test of two medians). */
        e.se = (e.hi - e.lo) / (2.0 * BM_Z95);
    }
    return e;
}

bm_test_t bm_test_proportion(double x1, double n1, double x0, double n0)
{
    bm_test_t t = {0, 0, 1.0};
    if (!(n1 > 0) || !(n0 > 0) || x1 < 0 || x0 < 0 || x1 > n1 || x0 > n0)
        return t;
    double p1 = x1 / n1, p0 = x0 / n0;
    double p = (x1 + x0) / (n1 + n0);
    double se = sqrt(p * (1.0 - p) * (1.0 / n1 + 1.0 / n0));
    if (!(se > 0))
        return t;
    double z = (p1 - p0) / se;
    t.tested = 1;
    t.dir = z > 0 ? 1 : (z < 0 ? -1 : 0);
    t.p = bm_norm_p2(z);
    return t;
}

bm_test_t bm_test_diff(const bm_estimate_t *a, const bm_estimate_t *b)
{
    bm_test_t t = {0, 0, 1.0};
    if (!a->has_value || !b->has_value || !(a->se > 0) || !(b->se > 0))
        return t;
    double v1 = a->se * a->se, v0 = b->se * b->se;
    double z = (a->value - b->value) / sqrt(v1 + v0);
    double df = 0;
    if (a->df > 0 && b->df > 0)     /* Welch-Satterthwaite */
        df = (v1 + v0) * (v1 + v0) / (v1 * v1 / a->df + v0 * v0 / b->df);
    t.tested = 1;
    t.dir = z > 0 ? 1 : (z < 0 ? -1 : 0);
    t.p = bm_t_p2(z, df);
    return t;
}

static int s_dir95(bm_test_t t)
{
    return t.tested && t.p < BM_ALPHA ? t.dir : 0;
}

int bm_change_proportion(double x1, double n1, double x0, double n0)
{
    return s_dir95(bm_test_proportion(x1, n1, x0, n0));
}

int bm_change_nps(const bm_estimate_t *cur, const bm_estimate_t *prev)
{
    return s_dir95(bm_test_diff(cur, prev));
}

int bm_change_welch(const bm_estimate_t *cur, const bm_estimate_t *prev)
{
    if (cur->n < 2 || prev->n < 2)
        return 0;
    return s_dir95(bm_test_diff(cur, prev));
}

static const double *s_bh_p;

static int s_bh_cmp(const void *a, const void *b)
{
    double x = s_bh_p[*(const size_t *)a], y = s_bh_p[*(const size_t *)b];
    return x < y ? -1 : (x > y ? 1 : 0);
}

int bm_bh_adjust(const double *p, size_t m, double *q)
{
    if (m == 0)
        return 0;
    size_t *idx = malloc(m * sizeof *idx);
    double *out = malloc(m * sizeof *out);
    if (!idx || !out) {
        free(idx);
        free(out);
        return -1;
    }
    for (size_t i = 0; i < m; i++)
        idx[i] = i;
    s_bh_p = p;
    qsort(idx, m, sizeof *idx, s_bh_cmp);
    /* Step-up: from the largest p down, the running minimum of p * m / i. */
    double run = 1.0;
    for (size_t r = m; r >= 1; r--) {
        double v = p[idx[r - 1]] * (double)m / (double)r;
        if (v < run)
            run = v;
        out[idx[r - 1]] = run;
    }
    memcpy(q, out, m * sizeof *q);
    free(idx);
    free(out);
    return 0;
}

int bm_verdicts_adjust(bm_verdict_t **v, size_t n)
{
    size_t m = 0;
    double *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        if (v[i]) {
            v[i]->q = 1.0;
            v[i]->arrow = 0;
            if (p && v[i]->test.tested)
                p[m++] = v[i]->test.p;
        }
    if (!p || bm_bh_adjust(p, m, p) < 0) {
        free(p);
        return -1;
    }
    for (size_t i = 0, k = 0; i < n; i++)
        if (v[i] && v[i]->test.tested) {
            v[i]->q = p[k++];
            v[i]->arrow = v[i]->q <= BM_ALPHA ? v[i]->test.dir : 0;
        }
    free(p);
    return (int)m;
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

/* One pairwise comparison: i is ahead of j in the sorted order. */
typedef struct {
    double p;
    unsigned i, j;
} s_pair_t;

static int s_pair_cmp(const void *a, const void *b)
{
    double x = ((const s_pair_t *)a)->p, y = ((const s_pair_t *)b)->p;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* The p-value that i (ahead) is better than j, 1 when untestable or when
 * the difference is not in i's favour (equal values). */
static double s_pair_p(const bm_rank_entry_t *i, const bm_rank_entry_t *j)
{
    bm_test_t t = bm_test_diff(&i->est, &j->est);
    int want = s_higher_better ? 1 : -1;
    return t.tested && t.dir == want ? t.p : 1.0;
}

static void s_mark(bm_rank_entry_t *e, unsigned i, unsigned j)
{
    e[i].worse++;
    e[j].better++;
}

/* Holm (1979) step-down over all k(k-1)/2 pairs: the r-th smallest p is
 * rejected while p_(r) <= alpha / (m - r + 1). */
static int s_holm(bm_rank_entry_t *e, size_t k)
{
    size_t m = k * (k - 1) / 2, np = 0;
    s_pair_t *pairs = malloc((m ? m : 1) * sizeof *pairs);
    if (!pairs)
        return -1;
    for (unsigned i = 0; i < k; i++)
        for (unsigned j = i + 1; j < k; j++) {
            double p = s_pair_p(&e[i], &e[j]);
            if (p < BM_ALPHA)       /* larger ones can never be rejected */
                pairs[np++] = (s_pair_t){p, i, j};
        }
    qsort(pairs, np, sizeof *pairs, s_pair_cmp);
    for (size_t r = 0; r < np && pairs[r].p <= BM_ALPHA / (double)(m - r); r++)
        s_mark(e, pairs[r].i, pairs[r].j);
    free(pairs);
    return 0;
}

/* Bonferroni over all pairs, for chain-scale rankings: no pair list. */
static void s_bonferroni(bm_rank_entry_t *e, size_t k)
{
    double m = (double)k * (double)(k - 1) / 2.0;
    for (unsigned i = 0; i < k; i++)
        for (unsigned j = i + 1; j < k; j++)
            if (s_pair_p(&e[i], &e[j]) <= BM_ALPHA / m)
                s_mark(e, i, j);
}

int bm_rank_entries(bm_rank_entry_t *entries, size_t count, int higher_better)
{
    if (!entries || count == 0)
        return 0;
    s_higher_better = higher_better;
    qsort(entries, count, sizeof *entries, s_rank_cmp);
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        entries[i].better = entries[i].worse = 0;
        entries[i].rank_lo = entries[i].rank_hi = entries[i].group = 0;
        if (entries[i].est.has_value)
            k++;
    }
    int rc = 0;
    if (k > BM_RANK_HOLM_MAX)
        s_bonferroni(entries, k);
    else
        rc = s_holm(entries, k);
    int group = 0;
    for (size_t i = 0; i < k; i++) {
        bm_rank_entry_t *x = &entries[i];
        x->rank_lo = rc < 0 ? 1 : 1 + x->better;
        x->rank_hi = rc < 0 ? (int)k : (int)k - x->worse;
        if (i == 0 || x->rank_lo != x[-1].rank_lo || x->rank_hi != x[-1].rank_hi)
            group++;
        x->group = group;
    }
    return rc;
}

int bm_period_complete(int64_t start, int days, int64_t today, int *covered)
{
    int64_t c = today - start + 1;
    if (c < 0)
        c = 0;
    if (c > days)
        c = days;
    if (covered)
        *covered = (int)c;
    return today >= start + days;
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
