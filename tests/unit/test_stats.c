/* test_stats: the statistics behind the benchmarks (collector/report/stats.c),
 * the period calendar and metric estimates (collector/report/query.c) against
 * hand-computed values, and the CSV numbers of collector/render/output.c against
 * printf. */
#include "bm_test.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "competitors.h"
#include "dist.h"
#include "output.h"
#include "plan.h"
#include "rollup.h"
#include "stats.h"

#define NEAR(a, b, eps) (fabs((a) - (b)) <= (eps))

static void test_wilson(void)
{
    double lo, hi;
    CHECK(bm_wilson(8, 10, BM_Z95, &lo, &hi) == 0);
    CHECK(NEAR(lo, 0.490162, 1e-6));
    CHECK(NEAR(hi, 0.943318, 1e-6));
    CHECK(bm_wilson(0, 20, BM_Z95, &lo, &hi) == 0);
    CHECK(lo == 0);
    CHECK(NEAR(hi, 0.161125, 1e-6));
    CHECK(bm_wilson(45, 50, BM_Z95, &lo, &hi) == 0);
    CHECK(NEAR(lo, 0.786398, 1e-6) && NEAR(hi, 0.956524, 1e-6));
    CHECK(bm_wilson(11, 10, BM_Z95, &lo, &hi) == -1);
    CHECK(bm_wilson(1, 0, BM_Z95, &lo, &hi) == -1);

    /* Continuity-corrected (Newcombe 1998, method 4), by hand from
     * (2np + z^2 -+ 1 -+ z sqrt(z^2 -+ 2 - 1/n + 4p(nq +- 1))) / 2(n + z^2):
     * 8 of 10: r = 3.8415 - 2 - 0.1 + 3.2 * 3 = 11.3415 -> lower
     * (16 + 3.8415 - 1 - 1.96 * 3.3677) / 27.6829 = 0.44218; upper with
     * r = 8.9415: 0.96457.  0 of 1: [0, (0 + 3.8415 + 1 + 1.96 * 2.2) /
     * 9.6829] = [0, 0.94538]: one visitor who did not buy is no verdict. */
    CHECK(bm_wilson_cc(8, 10, BM_Z95, &lo, &hi) == 0);
    CHECK(NEAR(lo, 0.442181, 1e-6) && NEAR(hi, 0.964573, 1e-6));
    CHECK(bm_wilson_cc(0, 1, BM_Z95, &lo, &hi) == 0 && lo == 0 && NEAR(hi, 0.945379, 1e-6));
    CHECK(bm_wilson_cc(1, 1, BM_Z95, &lo, &hi) == 0 && NEAR(lo, 0.054621, 1e-6) && hi == 1);
    CHECK(bm_wilson_cc(11, 10, BM_Z95, &lo, &hi) == -1);

    bm_estimate_t e = bm_est_proportion(8, 10);
    CHECK(e.has_value && e.has_ci && NEAR(e.value, 0.8, 1e-12) && e.n == 10);
    CHECK(NEAR(e.lo, 0.442181, 1e-6));
    /* Agresti-Caffo se: (8 + 1) / 12 = .75, sqrt(.75 * .25 / 12) = .125. */
    CHECK(NEAR(e.se, 0.125, 1e-12));
    e = bm_est_proportion(0, 5);       /* never a zero standard error */
    CHECK(e.se > 0);
    e = bm_est_proportion(12, 10);     /* more purchases than entrants */
    CHECK(e.has_value && !e.has_ci);
    e = bm_est_proportion(0, 0);
    CHECK(!e.has_value);
}

static void test_nps(void)
{
    /* 50 promoters, 30 passives, 20 detractors: NPS 30.  The score
     * interval, recomputed independently (golden-section maximisation of
     * the constrained trinomial likelihood, then bisection on |z| = 1.96):
     * [13.9551, 44.3393]; the Wald one was [14.69, 45.31].  The tests' se
     * is the adjusted Wald one: pP' = 50.75 / 103, pD' = 20.75 / 103,
     * Var' = .69417 - .29126^2 = .60934, sqrt(.60934 / 103) = 7.6915. */
    bm_estimate_t e = bm_est_nps(50, 20, 100);
    CHECK(e.has_value && e.has_ci);
    CHECK(NEAR(e.value, 30.0, 1e-9));
    CHECK(NEAR(e.lo, 13.9551, 1e-3));
    CHECK(NEAR(e.hi, 44.3393, 1e-3));
    CHECK(NEAR(e.se, 7.691510, 1e-5));
    /* One promoter: the constrained MLE is pP = (1 + t) / 2, pD = (1 - t) / 2,
     * Var = 1 - t^2, z = sqrt((1 - t) / (1 + t)) <= 1.96 for t >=
     * (1 - z^2) / (1 + z^2) = -.586909: [-58.69, 100] (Wald: [100, 100]). */
    e = bm_est_nps(1, 0, 1);
    CHECK(NEAR(e.value, 100, 1e-9) && NEAR(e.lo, -58.6909, 1e-3) && e.hi == 100);
    CHECK(NEAR(e.se, 37.5, 1e-9));
    e = bm_est_nps(10, 0, 10);
    CHECK(e.hi == 100 && e.lo < 80);
    e = bm_est_nps(5, 6, 10);          /* impossible counts */
    CHECK(!e.has_value);
}

static void test_mean(void)
{
    /* 70, 80, 90: mean 80, sd 10, se 10/sqrt(3), t(2) = 4.303. */
    bm_estimate_t e = bm_est_mean(3, 240, 70 * 70 + 80 * 80 + 90 * 90);
    CHECK(e.has_ci && NEAR(e.value, 80, 1e-9) && NEAR(e.sd, 10, 1e-9));
    CHECK(NEAR(e.lo, 80 - 4.302653 * 10 / sqrt(3), 1e-5));
    CHECK(NEAR(e.hi, 80 + 4.302653 * 10 / sqrt(3), 1e-5));
    e = bm_est_mean(1, 75, 75 * 75);   /* one visit: a value, no interval */
    CHECK(e.has_value && !e.has_ci);
    /* Exact quantiles (tables of qt(.975, df)): no more 1.96 from df 30. */
    CHECK(NEAR(bm_t95(1), 12.706205, 1e-5) && NEAR(bm_t95(2), 4.302653, 1e-6));
    CHECK(NEAR(bm_t95(29), 2.045230, 1e-6) && NEAR(bm_t95(30), 2.042272, 1e-6));
    CHECK(NEAR(bm_t95(1000), 1.962339, 1e-6) && NEAR(bm_t95(0), BM_Z95, 1e-9));
    CHECK(bm_t95(2.7) < bm_t95(2) && bm_t95(2.7) > bm_t95(3));
    /* The t p-value inverts the quantile; df 1 is Cauchy: P(|T| > 1) = .5. */
    CHECK(NEAR(bm_t_p2(bm_t95(7), 7), 0.05, 1e-9) && NEAR(bm_t_p2(1, 1), 0.5, 1e-9));
    CHECK(NEAR(bm_norm_p2(BM_Z95), 0.05, 1e-12));
}

static void test_hist(void)
{
    uint32_t h[5] = {10, 10, 0, 0, 0};  /* width 5, bucket 4 = overflow */
    bm_estimate_t e = bm_est_hist_quantile(h, 5, 4, 5, 0.5);
    CHECK(e.has_value && NEAR(e.value, 5.0, 1e-9) && e.n == 20);
    e = bm_est_hist_quantile(h, 5, 4, 5, 0.9);
    CHECK(NEAR(e.value, 9.0, 1e-9));
    CHECK(e.has_ci && e.lo <= e.value && e.hi >= e.value && e.hi <= 10.0);
    uint32_t o[3] = {1, 1, 8};          /* mostly overflow: reported as its floor */
    e = bm_est_hist_quantile(o, 3, 2, 60, 0.9);
    CHECK(NEAR(e.value, 120, 1e-9));
    uint32_t few[3] = {2, 1, 0};
    e = bm_est_hist_quantile(few, 3, 2, 1, 0.5);
    CHECK(e.has_value && !e.has_ci);    /* n < 10: no interval */
    uint32_t none[3] = {0, 0, 0};
    e = bm_est_hist_quantile(none, 3, 2, 1, 0.5);
    CHECK(!e.has_value);
    /* Stored up to the highest non-empty bucket: the last one given is an
     * ordinary bucket unless it is the overflow. */
    e = bm_est_hist_quantile(o, 3, 720, 60, 0.9);
    CHECK(NEAR(e.value, 120 + 60 * (0.9 * 10 - 2) / 8, 1e-9));
    e = bm_est_hist_quantile(o, 3, 720, 60, 1.0);
    CHECK(NEAR(e.value, 180, 1e-9));
}

static bm_estimate_t s_est(double v, double lo, double hi)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    e.has_value = e.has_ci = 1;
    e.value = v;
    e.lo = lo;
    e.hi = hi;
    e.n = 10;
    return e;
}

/* An estimate with a normal standard error (df 0). */
static bm_estimate_t s_est_se(double v, double se)
{
    bm_estimate_t e = s_est(v, v - BM_Z95 * se, v + BM_Z95 * se);
    e.se = se;
    return e;
}

static void test_ties(void)
{
    /* The case where overlap-with-the-leader and the tests disagree:
     * A 4, B 2, C 0, each se 1 (intervals A [2.04, 5.96], B [0.04, 3.96],
     * C [-1.96, 1.96]).  The old rule put A and B in group 1 (overlap) and
     * C alone at rank 3 ("C is last": C's interval misses A's only).
     * Pairwise: A-B and B-C z = 2 / sqrt 2 = 1.414, p = .157; A-C z =
     * 4 / sqrt 2 = 2.828, p = .00468.  Holm over m = 3: .00468 <= .05/3
     * rejects, then .157 > .05/2 stops.  Only "A above C" holds, so
     * A 1..(3 - 1) = 1-2, B 1-3, C (1 + 1)..3 = 2-3. */
    bm_rank_entry_t r[4];
    memset(r, 0, sizeof r);
    r[0].est = s_est_se(0, 1);      /* C */
    r[1].est = s_est_se(4, 1);      /* A */
    r[2].est = s_est_se(2, 1);      /* B */
    /* r[3]: no data */
    for (size_t i = 0; i < 4; i++)
        r[i].key = i;
    CHECK(bm_rank_entries(r, 4, 1) == 0);
    CHECK(r[0].key == 1 && r[0].rank_lo == 1 && r[0].rank_hi == 2 && r[0].worse == 1);
    CHECK(r[1].key == 2 && r[1].rank_lo == 1 && r[1].rank_hi == 3);
    CHECK(r[2].key == 0 && r[2].rank_lo == 2 && r[2].rank_hi == 3 && r[2].better == 1);
    CHECK(r[0].group == 1 && r[1].group == 2 && r[2].group == 3);
    CHECK(r[3].key == 3 && r[3].rank_lo == 0);

    /* Lower is better (waiting times): 30 s (se 2) against 120 (se 10)
     * and 130 (se 3): z = 90 / 10.2 and 100 / 3.6, both p < 1e-9; 120 vs
     * 130: z = .96, p = .34.  The fast one alone at 1, the others 2-3. */
    bm_rank_entry_t w[3];
    memset(w, 0, sizeof w);
    w[0].est = s_est_se(120, 10);
    w[1].est = s_est_se(30, 2);
    w[2].est = s_est_se(130, 3);
    for (size_t i = 0; i < 3; i++)
        w[i].key = i;
    bm_rank_entries(w, 3, 0);
    CHECK(w[0].key == 1 && w[0].rank_lo == 1 && w[0].rank_hi == 1);
    CHECK(w[1].key == 0 && w[1].rank_lo == 2 && w[1].rank_hi == 3);
    CHECK(w[2].key == 2 && w[2].rank_lo == 2 && w[2].rank_hi == 3);

    /* Without a standard error nothing is a verdict: all share 1-3. */
    bm_rank_entry_t c[3];
    memset(c, 0, sizeof c);
    for (size_t i = 0; i < 3; i++) {
        c[i].est.has_value = 1;
        c[i].est.value = i == 2 ? 5 : 7;
        c[i].key = i;
    }
    bm_rank_entries(c, 3, 1);
    CHECK(c[0].rank_lo == 1 && c[0].rank_hi == 3 && c[2].rank_lo == 1 && c[2].rank_hi == 3);

    /* Consistency by construction on a larger random set: every range
     * holds its position, and ranges are ordered like the positions. */
    bm_rank_entry_t big[40];
    memset(big, 0, sizeof big);
    for (size_t i = 0; i < 40; i++) {
        big[i].est = s_est_se((double)((i * 37) % 40), 1.0 + (double)(i % 5));
        big[i].key = i;
    }
    bm_rank_entries(big, 40, 1);
    for (int i = 0; i < 40; i++) {
        CHECK(big[i].rank_lo <= i + 1 && big[i].rank_hi >= i + 1);
        if (i)
            CHECK(big[i].est.value <= big[i - 1].est.value);
    }
}

static void test_bh(void)
{
    /* p = .01, .04, .03, .005 (m = 4).  Sorted .005, .01, .03, .04:
     * p * m / rank = .02, .02, .04, .04; running minimum from the top:
     * q = .02, .02, .04, .04.  In input order: .02, .04, .04, .02.  All
     * four are discoveries at 5%, where Bonferroni (.05 / 4 = .0125)
     * would keep only .005 and .01. */
    double p[4] = {0.01, 0.04, 0.03, 0.005}, q[4];
    CHECK(bm_bh_adjust(p, 4, q) == 0);
    CHECK(NEAR(q[0], 0.02, 1e-12) && NEAR(q[1], 0.04, 1e-12));
    CHECK(NEAR(q[2], 0.04, 1e-12) && NEAR(q[3], 0.02, 1e-12));
    /* A set with one large p: .001, .2, .9 (m = 3): q = .003, .3, .9. */
    double p2[3] = {0.9, 0.001, 0.2};
    CHECK(bm_bh_adjust(p2, 3, p2) == 0);
    CHECK(NEAR(p2[0], 0.9, 1e-12) && NEAR(p2[1], 0.003, 1e-12) && NEAR(p2[2], 0.3, 1e-12));

    /* Verdicts: an untested one is skipped (q 1, no arrow) and does not
     * count in m.  p .04 alone would pass; with .03 (m = 2) q = .04, .04:
     * both pass; with m = 3 by .6 added: q = .06, .06, .6: none. */
    bm_verdict_t a = {{1, 1, 0.04}, 0, 0}, b = {{1, -1, 0.03}, 0, 0}, u = {{0, 0, 1}, 0, 0};
    bm_verdict_t *v[3] = {&a, &u, &b};
    CHECK(bm_verdicts_adjust(v, 3) == 2);
    CHECK(a.arrow == 1 && b.arrow == -1 && u.arrow == 0 && u.q == 1);
    CHECK(NEAR(a.q, 0.04, 1e-12) && NEAR(b.q, 0.04, 1e-12));
    bm_verdict_t c = {{1, 1, 0.6}, 0, 0};
    bm_verdict_t *v3[4] = {&a, &b, &c, NULL};
    CHECK(bm_verdicts_adjust(v3, 4) == 3);
    CHECK(a.arrow == 0 && b.arrow == 0 && NEAR(a.q, 0.06, 1e-12));
}

static void test_changes(void)
{
    CHECK(bm_change_proportion(60, 100, 40, 100) == 1);
    CHECK(bm_change_proportion(40, 100, 60, 100) == -1);
    CHECK(bm_change_proportion(52, 100, 48, 100) == 0);
    CHECK(bm_change_proportion(1, 0, 1, 10) == 0);
    /* 60/100 vs 40/100: pooled .5, se sqrt(.25 * .02) = .0707, z = 2.828,
     * p = .00468. */
    bm_test_t t = bm_test_proportion(60, 100, 40, 100);
    CHECK(t.tested && t.dir == 1 && NEAR(t.p, 0.004678, 1e-6));

    bm_estimate_t a = bm_est_nps(70, 10, 200), b = bm_est_nps(40, 30, 200);
    CHECK(bm_change_nps(&a, &b) == 1 && bm_change_nps(&b, &a) == -1);
    bm_estimate_t c = bm_est_nps(42, 30, 200);
    CHECK(bm_change_nps(&c, &b) == 0);
    /* Two promoters against two detractors the day before: 100 vs -100
     * with adjusted se 32.86 each: z = 200 / 46.5 = 4.3 -- a real
     * change; but 2 promoters against 1 passive (0): z = 100 / 44 = 2.27,
     * p = .023 -- significant alone, yet both sides are far below the
     * minimum of 30 answers, and the report does not test them
     * (bm_q_change_test, below). */
    bm_estimate_t n2 = bm_est_nps(2, 0, 2), n1 = bm_est_nps(0, 0, 1);
    CHECK(bm_test_diff(&n2, &n1).tested && bm_test_diff(&n2, &n1).p < 0.05);

    /* Means 80 vs 70, sd 5, n 30: t = 10 / sqrt(25/30 * 2) = 7.7. */
    bm_estimate_t m1 = bm_est_mean(30, 80 * 30, 30 * (80 * 80 + 25 * 29.0 / 30));
    bm_estimate_t m0 = bm_est_mean(30, 70 * 30, 30 * (70 * 70 + 25 * 29.0 / 30));
    CHECK(NEAR(m1.sd, 5, 1e-6));
    CHECK(bm_change_welch(&m1, &m0) == 1 && bm_change_welch(&m0, &m1) == -1);
    /* Three visits each, 80 vs 75 with sd 10: not significant. */
    bm_estimate_t s1 = bm_est_mean(3, 240, 70 * 70 + 80 * 80 + 90 * 90);
    bm_estimate_t s0 = bm_est_mean(3, 225, 65 * 65 + 75 * 75 + 85 * 85);
    CHECK(bm_change_welch(&s1, &s0) == 0);
}

/* The low-n gate of the reports' change tests (metric.c): B004's two
 * visits, 90 and 92 after 50 and 52 the month before, differ by
 * t = 40 / 1.41 = 28 with df 2 -- "significant" -- but 2 < 3 visits:
 * no test, no arrow.  With three visits each the test is made. */
static void test_low_n_arrow(void)
{
    const bm_metric_t *m = bm_metric_find("ms_score");
    bm_q_agg_t cur, prev;
    memset(&cur, 0, sizeof cur);
    memset(&prev, 0, sizeof prev);
    cur.n = 2, cur.sum = 182, cur.sumsq = 90 * 90 + 92 * 92;
    prev.n = 2, prev.sum = 102, prev.sumsq = 50 * 50 + 52 * 52;
    bm_estimate_t ec, ep;
    CHECK(bm_q_estimate(m, &cur, 0, &ec, NULL) == 0 && bm_q_estimate(m, &prev, 0, &ep, NULL) == 0);
    CHECK(bm_test_diff(&ec, &ep).tested && bm_test_diff(&ec, &ep).p < 0.05);
    bm_test_t t = bm_q_change_test(m, &cur, &prev, &ec, &ep, 3);
    CHECK(!t.tested);
    cur.n = 3, cur.sum = 273, cur.sumsq = 90 * 90 + 92 * 92 + 91 * 91;
    prev.n = 3, prev.sum = 153, prev.sumsq = 50 * 50 + 52 * 52 + 51 * 51;
    CHECK(bm_q_estimate(m, &cur, 0, &ec, NULL) == 0 && bm_q_estimate(m, &prev, 0, &ep, NULL) == 0);
    t = bm_q_change_test(m, &cur, &prev, &ec, &ep, 3);
    CHECK(t.tested && t.dir == 1 && t.p < 0.001);
    /* Counts are never tested (they scale with size and period). */
    m = bm_metric_find("customer_balance");
    cur.n = 200, cur.x = 100, prev.n = 200, prev.x = -100;
    CHECK(bm_q_estimate(m, &cur, 0, &ec, NULL) == 0 && bm_q_estimate(m, &prev, 0, &ep, NULL) == 0);
    CHECK(!bm_q_change_test(m, &cur, &prev, &ec, &ep, 30).tested);
}

static void test_pooled_and_poisson(void)
{
    /* Three branches, one questionnaire: {70, 80, 90} ss 200, {60, 60, 62}
     * ss 2.667, {50, 100} ss 1250: pooled ss 1452.67 over df 5, sd
     * sqrt(290.533) = 17.04504.  The agreeing three visits {60, 60, 62} had
     * an own sd of 1.155 (interval +-2.87 with t(2)); with the floor sd
     * 17.045, se 9.841, t(5) = 2.570582: +-25.30. */
    bm_pool_t pool = {0, 0};
    bm_pool_add(&pool, 3, 240, 70 * 70 + 80 * 80 + 90 * 90);
    bm_pool_add(&pool, 3, 182, 60 * 60 + 60 * 60 + 62 * 62);
    bm_pool_add(&pool, 2, 150, 50 * 50 + 100 * 100);
    bm_pool_add(&pool, 1, 75, 75 * 75);      /* one visit: no df */
    CHECK(NEAR(pool.df, 5, 1e-12) && NEAR(bm_pool_sd(&pool), 17.045040, 1e-5));
    bm_estimate_t e = bm_est_mean_pooled(3, 182, 60 * 60 + 60 * 60 + 62 * 62, &pool);
    CHECK(e.has_ci && NEAR(e.sd, 17.045040, 1e-5) && e.df == 5);
    CHECK(NEAR(e.hi - e.value, 2.570582 * 17.045040 / sqrt(3), 1e-4));
    /* A single visit gets an interval from the pool: 75 -+ 2.5706 * 17.04. */
    e = bm_est_mean_pooled(1, 75, 75 * 75, &pool);
    CHECK(e.has_ci && NEAR(e.lo, 75 - 2.570582 * 17.045040, 1e-4));
    /* The own sd wins when larger: {50, 100} sd 35.36 > 17.04. */
    e = bm_est_mean_pooled(2, 150, 50 * 50 + 100 * 100, &pool);
    CHECK(NEAR(e.sd, 35.355339, 1e-5));

    /* Garwood limits (tables of chi2 / 2): 0 events [0, 3.6889], 1 event
     * [0.02532, 5.5716], 5 events [1.6235, 11.6683].  7 complaints over
     * 2,000 entrants: 3.5 per 1,000, chi2(14; .025) / 4 = 5.6287 / 4 and
     * chi2(16; .975) / 4 = 28.8454 / 4: [1.4072, 7.2114]. */
    bm_estimate_t r0 = bm_est_poisson_rate(0, 1000, 1000);
    CHECK(r0.has_ci && r0.lo == 0 && NEAR(r0.hi, 3.688879, 1e-5));
    bm_estimate_t r1 = bm_est_count(1, 1);
    CHECK(NEAR(r1.lo, 0.025318, 1e-5) && NEAR(r1.hi, 5.571643, 1e-5));
    bm_estimate_t r5 = bm_est_count(5, 10);
    CHECK(NEAR(r5.lo, 1.623486, 1e-5) && NEAR(r5.hi, 11.668332, 1e-5));
    bm_estimate_t r7 = bm_est_poisson_rate(7, 2000, 1000);
    CHECK(NEAR(r7.value, 3.5, 1e-12) && NEAR(r7.lo, 1.40717, 1e-4) && NEAR(r7.hi, 7.21135, 5e-4));
    /* Customer balance +125 of 700 changes vs +102 of 650: se sqrt 700 and
     * sqrt 650, z = 23 / 36.74 = .63: not a verdict (issue 15, item 6). */
    bm_estimate_t b1 = bm_est_balance(125, 700), b2 = bm_est_balance(102, 650);
    CHECK(bm_test_diff(&b1, &b2).tested && bm_test_diff(&b1, &b2).p > 0.5);
}

static void test_period_complete(void)
{
    int64_t nov, dec4;
    CHECK(bm_date_parse("2026-11-01", &nov, NULL) == 0);
    CHECK(bm_date_parse("2026-12-04", &dec4, NULL) == 0);
    int covered;
    /* On 4 December, November (30 days) is complete, December has begun
     * 4 of its 31 days (the 4th included): partial. */
    CHECK(bm_period_complete(nov, 30, dec4, &covered) == 1 && covered == 30);
    CHECK(bm_period_complete(nov + 30, 31, dec4, &covered) == 0 && covered == 4);
    /* The last day of a period is still inside it. */
    CHECK(bm_period_complete(nov, 30, nov + 29, &covered) == 0 && covered == 30);
    CHECK(bm_period_complete(nov, 30, nov - 3, &covered) == 0 && covered == 0);
}

static void test_low_sample_and_alerts(void)
{
    CHECK(bm_low_sample(2, 3) == 1);
    CHECK(bm_low_sample(3, 3) == 0);
    CHECK(bm_low_sample(29, 30) == 1);
    double z;
    /* Baseline 80 sd 10; 9 visits: se 3.33, limit 70. */
    CHECK(bm_control_alert(70, 9, 80, 10, 1, &z) == 0 && NEAR(z, -3, 1e-9));
    CHECK(bm_control_alert(69, 9, 80, 10, 1, &z) == 1 && z < -3);
    CHECK(bm_control_alert(91, 9, 80, 10, 1, &z) == 0 && z > 3);
    /* Lower is better: a rise is the bad news. */
    CHECK(bm_control_alert(91, 9, 80, 10, 0, &z) == 1);
    CHECK(bm_control_alert(50, 9, 80, 0, 1, &z) == 0);   /* no spread, no limit */
}

static void test_geo_and_periods(void)
{
    CHECK(NEAR(bm_haversine_km(42.6977, 23.3219, 42.1354, 24.7453), 132.522, 0.01));
    CHECK(bm_haversine_km(10, 10, 10, 10) == 0);

    int64_t d;
    char buf[32];
    CHECK(bm_date_parse("2026-11-18", &d, NULL) == 0);
    CHECK(!strcmp(bm_date_format(bm_period_start(BM_PERIOD_WEEK, d), buf, sizeof buf),
                  "2026-11-16"));
    CHECK(!strcmp(bm_date_format(bm_period_start(BM_PERIOD_MONTH, d), buf, sizeof buf),
                  "2026-11-01"));
    CHECK(!strcmp(bm_date_format(bm_period_start(BM_PERIOD_QUARTER, d), buf, sizeof buf),
                  "2026-10-01"));
    int64_t q = bm_period_start(BM_PERIOD_QUARTER, d);
    CHECK(!strcmp(bm_date_format(bm_period_add(BM_PERIOD_QUARTER, q, 1), buf, sizeof buf),
                  "2027-01-01"));
    CHECK(!strcmp(bm_date_format(bm_period_add(BM_PERIOD_MONTH, q, -10), buf, sizeof buf),
                  "2025-12-01"));
    CHECK(!strcmp(bm_period_label(BM_PERIOD_WEEK, bm_period_start(BM_PERIOD_WEEK, d), buf,
                                  sizeof buf), "2026-W47"));
    CHECK(!strcmp(bm_period_label(BM_PERIOD_QUARTER, q, buf, sizeof buf), "2026-Q4"));
    bm_err_t err;
    CHECK(bm_date_parse("2026-02-30", &d, &err) == -1 && strstr(err.msg, "no such day"));
    CHECK(bm_date_parse("2026-2-3", &d, &err) == -1);
    bm_period_kind_t k;
    CHECK(bm_period_parse("year", &k, &err) == -1 && strstr(err.msg, "unknown period \"year\""));
}

static void test_metric_estimates(void)
{
    bm_err_t err;
    CHECK(bm_metric_find("nope") == NULL);
    const bm_metric_t *m = bm_metric_find("capture_rate");
    CHECK(m && m->higher_better && m->family == BM_FAM_PROPORTION);
    bm_q_agg_t a;
    memset(&a, 0, sizeof a);
    a.n = 400;
    a.x = 100;
    bm_estimate_t e;
    CHECK(bm_q_estimate(m, &a, 0, &e, &err) == 0 && NEAR(e.value, 25, 1e-9) && e.has_ci);

    m = bm_metric_find("avg_check");
    memset(&a, 0, sizeof a);
    a.n = 2;
    a.sum = 3000;               /* 10.00 + 20.00 EUR */
    a.sumsq = 1000.0 * 1000 + 2000.0 * 2000;
    memcpy(a.currency, "EUR", 4);
    CHECK(bm_q_estimate(m, &a, 0, &e, &err) == 0 && NEAR(e.value, 15.0, 1e-9));
    bm_q_agg_t b;
    memset(&b, 0, sizeof b);
    b.n = 1;
    b.sum = 500;
    memcpy(b.currency, "USD", 4);
    bm_q_agg_add(&a, &b, 0);
    CHECK(bm_q_estimate(m, &a, 0, &e, &err) == -1 && strstr(err.msg, "more than one currency"));

    bm_format_t f;
    CHECK(bm_format_parse("xml", &f, &err) == -1 && strstr(err.msg, "unknown format \"xml\""));
}

/* The one rounding rule (bm_format_fixed): half away from zero on the
 * decimal value, ties within a few ulps counted as ties, never "-0". */
static void test_rounding(void)
{
    static const struct {
        double v;
        int d;
        const char *want;
    } cases[] = {
        {-5.55, 1, "-5.6"},  {5.55, 1, "5.6"},    {4.35, 1, "4.4"},    {-4.35, 1, "-4.4"},
        {0.125, 2, "0.13"},  {-0.125, 2, "-0.13"}, {2.675, 2, "2.68"},  {1.005, 2, "1.01"},
        {17.125, 2, "17.13"}, {0.005, 2, "0.01"}, {-0.005, 2, "-0.01"}, {0.375, 2, "0.38"},
        {2.5, 0, "3"},       {-2.5, 0, "-3"},     {0.5, 0, "1"},       {1.5, 0, "2"},
        {-0.5, 0, "-1"},     {0.4999, 0, "0"},    {-0.4, 0, "0"},      {-0.04, 1, "0.0"},
        {-0.0, 1, "0.0"},    {0, 0, "0"},         {-0.05, 1, "-0.1"},  {99.95, 1, "100.0"},
        {-99.95, 1, "-100.0"}, {999999999.5, 0, "1000000000"}, {1e9, 0, "1000000000"},
        {12345678.125, 2, "12345678.13"}, {4503599627370495.5, 0, "4503599627370496"},
        {1e15 + 0.5, 0, "1000000000000001"},
        /* above 2^53 once scaled: the exact value is rounded as a decimal */
        {1e15 + 0.25, 1, "1000000000000000.3"}, {-1e15 - 0.25, 1, "-1000000000000000.3"},
        {1e15 + 0.125, 1, "1000000000000000.1"}, {9999999999999999.0, 1, "10000000000000000.0"},
        {1e20, 2, "100000000000000000000.00"}, {-1e15, 0, "-1000000000000000"},
        /* not ties: plain nearest */
        {0.30000000000000004, 1, "0.3"}, {4.500000000000004, 0, "5"}, {1.0049, 2, "1.00"},
        {123.456789, 6, "123.456789"}, {0.1234567895, 9, "0.123456790"}, {7, 12, "7.000000000"},
        {-3.14159, -1, "-3"},
    };
    char buf[BM_FIXED_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = bm_format_fixed(cases[i].v, cases[i].d, buf, sizeof buf);
        CHECK_STR(buf, cases[i].want);
        CHECK(n == (int)strlen(cases[i].want));
    }
    /* Arithmetic artefacts: a mean of 5.5 and 5.6 is a tie at 1 decimal. */
    bm_format_fixed((5.5 + 5.6) / 2, 1, buf, sizeof buf);
    CHECK_STR(buf, "5.6");
    bm_format_fixed(-(0.1 + 0.2) * 5 - 0.0, 0, buf, sizeof buf);    /* -1.5000000000000002 */
    CHECK_STR(buf, "-2");
    /* snprintf semantics: truncated, NUL-terminated, full length returned */
    char small[4];
    CHECK(bm_format_fixed(-1234.5, 1, small, sizeof small) == 7);
    CHECK_STR(small, "-12");
    CHECK(bm_format_fixed(NAN, 1, buf, sizeof buf) == 0 && buf[0] == '\0');
    CHECK(bm_format_fixed(1.7976931348623157e308, 9, buf, sizeof buf) == 319);
    /* Away from ties it is printf's (correctly rounded) result. */
    uint64_t x = 88172645463325252ull;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * 2 * pow(10.0, (double)(x % 14) - 4.0);
        int d = (int)(x % 10);
        double ax = fabs(v) * pow(10.0, d);
        if (fabs(ax - floor(ax) - 0.5) < 1e-9 * (ax > 1 ? ax : 1))
            continue;
        char want[BM_FIXED_MAX];
        snprintf(want, sizeof want, "%.*f", d, round(ax) == 0 ? 0.0 : v);
        bm_format_fixed(v, d, buf, sizeof buf);
        if (strcmp(buf, want) && bad++ < 3)
            fprintf(stderr, "fixed: %.17g with %d decimals: got %s, want %s\n", v, d, buf, want);
    }
    CHECK(bad == 0);
}

/* The cells of a one-column report printed in fmt, one string. */
static char *s_print_one(double v, int d, bm_format_t fmt)
{
    static const char *const cols[] = {"v"};
    bm_table_t *t = bm_table_new("t", 1, cols);
    bm_report_t *r = bm_report_new();
    char *text = NULL;
    size_t len = 0;
    if (t && r && bm_table_add_row(t) == 0) {
        bm_table_set_num(t, 0, v, d);
        bm_report_add(r, &t);
        FILE *out = open_memstream(&text, &len);
        if (out) {
            CHECK(bm_report_print(r, fmt, out) == 0);
            fclose(out);
        }
    }
    bm_table_destroy(&t);
    bm_report_destroy(&r);
    return text;
}

/* Table, CSV and JSON print the same digits for the same value (the
 * finding of issue 15: CSV -5.5, JSON -5.6). */
static void test_formats_agree(void)
{
    static const struct {
        double v;
        int d;
        const char *fixed, *json;
    } cases[] = {
        {-5.55, 1, "-5.6", "-5.6"}, {0.125, 2, "0.13", "0.13"}, {2.5, 0, "3", "3.0"},
        {-0.04, 1, "0.0", "0.0"},   {45.25, 1, "45.3", "45.3"}, {100, 1, "100.0", "100.0"},
        {0.00005, 4, "0.0001", "0.0001"}, {123456789012.5, 0, "123456789013", "123456789013.0"},
        {1e15 + 0.25, 1, "1000000000000000.3", "1000000000000000.3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[128];
        char *csv = s_print_one(cases[i].v, cases[i].d, BM_FMT_CSV);
        snprintf(want, sizeof want, "v\r\n%s\r\n", cases[i].fixed);
        CHECK_STR(csv, want);
        char *json = s_print_one(cases[i].v, cases[i].d, BM_FMT_JSON);
        snprintf(want, sizeof want, "[\n  {\n    \"v\": %s\n  }\n]\n", cases[i].json);
        CHECK_STR(json, want);
        char *table = s_print_one(cases[i].v, cases[i].d, BM_FMT_TABLE);
        CHECK(table && strstr(table, cases[i].fixed) != NULL);
        free(csv);
        free(json);
        free(table);
    }
}

/* CSV output: every number as bm_format_fixed writes it, fields quoted. */
static void test_csv_output(void)
{
    static const char *const cols[] = {"v", "name"};
    double values[4000];
    int n = 0;
    uint64_t x = 88172645463325252ull;      /* xorshift: reproducible values */
    for (int i = 0; i < 3000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double mag = pow(10.0, (double)(x % 12) - 3.0);
        values[n++] = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * 2 * mag;
    }
    const double special[] = {0.125, 0.375, -0.125, 2.5, -2.5, 0.005, 1.005, -0.0004, -0.04,
                              999999999.5, 1e9, 1e15, -1e15, 0, -0.0, 0.5, 1.5, 4.35, 17.125};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        values[n++] = special[i];
    for (int d = 0; d <= 6; d += 1) {
        bm_table_t *t = bm_table_new("t", 2, cols);
        CHECK(t != NULL);
        for (int i = 0; i < n; i++) {
            bm_table_add_row(t);
            bm_table_set_num(t, 0, values[i], d);
            bm_table_set_text(t, 1, i == 0 ? "a,\"b\"" : "plain");
        }
        bm_report_t *r = bm_report_new();
        CHECK(r && bm_report_add(r, &t) == 0);
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        CHECK(out && bm_report_print(r, BM_FMT_CSV, out) == 0);
        fclose(out);
        char *line = strtok(text, "\n");      /* header */
        CHECK(line && !strcmp(line, "v,name\r"));
        int bad = 0;
        for (int i = 0; i < n; i++) {
            line = strtok(NULL, "\n");
            char want[BM_FIXED_MAX + 32], num[BM_FIXED_MAX];
            bm_format_fixed(values[i], d, num, sizeof num);
            snprintf(want, sizeof want, "%s,%s\r", num, i == 0 ? "\"a,\"\"b\"\"\"" : "plain");
            if (!line || strcmp(line, want)) {
                if (bad++ < 3)
                    fprintf(stderr, "csv: %.17g with %d decimals: got \"%s\", want \"%s\"\n",
                            values[i], d, line ? line : "(none)", want);
            }
        }
        CHECK(bad == 0);
        free(text);
        bm_report_destroy(&r);
    }
}

/* JSON output: the layout byte for byte what jansson's json_dumpf gave
 * for the same report (the writer replaced it; the API's format must not
 * change), and the numbers those of the one rounding rule: jansson's
 * "%.12g" would cut digits, so tables with numbers are compared as parsed
 * values (each number the double of bm_format_fixed's digits) and tables
 * without them byte for byte. */
static json_t *s_ref_table(const char *const *cols, int ncols, int rows, const double *v,
                           int with_num)
{
    json_t *arr = json_array();
    for (int r = 0; r < rows; r++) {
        json_t *o = json_object();
        for (int c = 0; c < ncols; c++) {
            json_t *x;
            char num[BM_FIXED_MAX];
            switch (c) {
            case 0: x = json_string(r % 3 ? "B\"1\\\x01\t\u00e9/" : "plain"); break;
            case 1:
                bm_format_fixed(v[r], r % 7, num, sizeof num);      /* 0..6 decimals */
                x = with_num ? json_real(strtod(num, NULL)) : json_null();
                break;
            case 2: x = json_integer((json_int_t)(v[r] * 1000)); break;
            case 3: x = r % 4 ? json_string(v[r] > 0 ? "up" : "down") : json_null(); break;
            case 4: x = json_boolean(r % 2); break;
            default: x = json_null(); break;
            }
            json_object_set_new(o, cols[c], x);
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static bm_table_t *s_out_table(const char *name, const char *const *cols, int ncols, int rows,
                               const double *v, int with_num)
{
    bm_table_t *t = bm_table_new(name, ncols, cols);
    for (int r = 0; t && r < rows; r++) {
        bm_table_add_row(t);
        bm_table_set_text(t, 0, r % 3 ? "B\"1\\\x01\t\u00e9/" : "plain");
        if (with_num)
            bm_table_set_num(t, 1, v[r], r % 7);
        bm_table_set_int(t, 2, (long long)(v[r] * 1000));
        if (r % 4)
            bm_table_set_arrow(t, 3, v[r] > 0 ? 1 : -1);
        bm_table_set_bool(t, 4, r % 2);
    }
    return t;
}

static char *s_render(const bm_report_t *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(out && bm_report_print(r, BM_FMT_JSON, out) == 0);
    fclose(out);
    return text;
}

/* got is want: byte for byte (with_num 0) or as parsed JSON values. */
static void s_json_same(const char *got, json_t *ref, int with_num, const char *what, int rows)
{
    char *want = json_dumps(ref, JSON_INDENT(2) | JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER);
    int ok;
    if (with_num) {
        json_error_t jerr;
        json_t *parsed = got ? json_loads(got, 0, &jerr) : NULL;
        ok = parsed && json_equal(parsed, ref);
        json_decref(parsed);
    } else {
        ok = got && want && !strncmp(got, want, strlen(want)) && !strcmp(got + strlen(want), "\n");
    }
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "%s, %d rows, numbers %d: got\n%.400s\nwant\n%.400s\n", what, rows,
                with_num, got ? got : "(null)", want ? want : "(null)");
    free(want);
}

static void test_json_output(void)
{
    static const char *const cols[] = {"name", "value", "n", "arrow", "low_n", "empty"};
    double v[301];                          /* 300 rows, and 300 from v + 1 */
    uint64_t x = 2463534242ull;
    for (int i = 0; i < 301; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * pow(10.0, (double)(x % 30) - 12);
    }
    v[0] = 1e20, v[1] = -3e-7, v[2] = 0, v[3] = 887, v[4] = 1e15 + 0.25, v[5] = 123456789012.5;
    v[6] = -0.004, v[7] = 0.0001, v[8] = 99999.99999, v[9] = 999999999.6, v[10] = -12.5;
    v[11] = 0.00049, v[12] = 123456.123456, v[13] = 45.25, v[14] = 100, v[15] = -1e-4;
    const int sizes[] = {0, 1, 300};
    for (int k = 0; k < 3 * 2; k++) {
        int rows = sizes[k / 2], with_num = k % 2;
        /* one table, no notes: a bare array */
        bm_report_t *r = bm_report_new();
        bm_table_t *t = s_out_table("ranking", cols, 6, rows, v, with_num);
        CHECK(r && t && bm_report_add(r, &t) == 0);
        char *got = s_render(r);
        json_t *ref = s_ref_table(cols, 6, rows, v, with_num);
        s_json_same(got, ref, with_num, "json", rows);
        free(got);
        json_decref(ref);
        /* two tables and notes: an object */
        t = s_out_table("second", cols, 6, rows, v + 1, with_num);
        CHECK(t && bm_report_add(r, &t) == 0);
        bm_report_note(r, "note \"one\"\n");
        bm_report_note(r, "two");
        got = s_render(r);
        ref = json_object();
        json_object_set_new(ref, "ranking", s_ref_table(cols, 6, rows, v, with_num));
        json_object_set_new(ref, "second", s_ref_table(cols, 6, rows, v + 1, with_num));
        json_t *notes = json_array();
        json_array_append_new(notes, json_string("note \"one\"\n"));
        json_array_append_new(notes, json_string("two"));
        json_object_set_new(ref, "notes", notes);
        s_json_same(got, ref, with_num, "json report", rows);
        free(got);
        json_decref(ref);
        bm_report_destroy(&r);
    }
}

/* ---- coverage simulation ------------------------------------------------
 * For each interval family, draws from known parameters at n = 1, 2, 3, 5,
 * 10, 30 and counts how often the 95% interval holds the truth.  Seeded
 * (splitmix64), so the table is the same on every run; printed to the
 * test log.  An interval that keeps its promise covers ~95%; the check is
 * >= 92.5% (4,000 draws: the binomial standard error of a 95% coverage is
 * 0.34%).  Discrete data at n = 1 or 2 leave few possible intervals: the
 * NPS at 50 (P .6, D .1) with 2 answers has an exact coverage of 93.0%
 * (only D+D and passive+D miss, .01 + .06), which a 93% bar would fail
 * on sampling noise alone. */
#define S_DRAWS 4000

static uint64_t s_rng = 0x15u;

static double s_unif(void)
{
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static int s_binom(int n, double p)
{
    int x = 0;
    for (int i = 0; i < n; i++)
        x += s_unif() < p;
    return x;
}

static int s_poisson(double mu)
{
    /* Knuth's product method, fine for mu <= 30. */
    double l = exp(-mu), prod = s_unif();
    int k = 0;
    while (prod > l) {
        prod *= s_unif();
        k++;
    }
    return k;
}

/* A mystery-shopping score: 10 equally weighted yes/no items, each met
 * with probability p (true mean 100p, sd 100 sqrt(p(1-p)/10)). */
static double s_score(double p)
{
    return 10.0 * s_binom(10, p);
}

static const int s_ns[6] = {1, 2, 3, 5, 10, 30};

static double s_cover_prop(double p, int n)
{
    int hit = 0;
    for (int d = 0; d < S_DRAWS; d++) {
        bm_estimate_t e = bm_est_proportion(s_binom(n, p), n);
        hit += e.has_ci && e.lo <= p && p <= e.hi;
    }
    return (double)hit / S_DRAWS;
}

static double s_cover_nps(double pp, double pd, int n)
{
    int hit = 0;
    double truth = 100.0 * (pp - pd);
    for (int d = 0; d < S_DRAWS; d++) {
        int np = 0, nd = 0;
        for (int i = 0; i < n; i++) {
            double u = s_unif();
            np += u < pp;
            nd += u >= pp && u < pp + pd;
        }
        bm_estimate_t e = bm_est_nps(np, nd, n);
        hit += e.has_ci && e.lo <= truth && truth <= e.hi;
    }
    return (double)hit / S_DRAWS;
}

/* The branch of interest has n visits with items met at p; 11 other
 * branches of the same questionnaire have 4 visits each at p_other (the
 * pool).  p == p_other: the common-variance case the floor is made for. */
static double s_cover_mean(double p, double p_other, int n)
{
    int hit = 0;
    double truth = 100.0 * p;
    for (int d = 0; d < S_DRAWS; d++) {
        bm_pool_t pool = {0, 0};
        for (int b = 0; b < 11; b++) {
            double sum = 0, sq = 0;
            for (int i = 0; i < 4; i++) {
                double x = s_score(p_other);
                sum += x;
                sq += x * x;
            }
            bm_pool_add(&pool, 4, sum, sq);
        }
        double sum = 0, sq = 0;
        for (int i = 0; i < n; i++) {
            double x = s_score(p);
            sum += x;
            sq += x * x;
        }
        bm_pool_add(&pool, n, sum, sq);
        bm_estimate_t e = bm_est_mean_pooled(n, sum, sq, &pool);
        bm_est_clamp(&e, 0, 100);
        hit += e.has_ci && e.lo <= truth && truth <= e.hi;
    }
    return (double)hit / S_DRAWS;
}

/* Rare events: mu expected events over an exposure of 1,000. */
static double s_cover_poisson(double mu)
{
    int hit = 0;
    for (int d = 0; d < S_DRAWS; d++) {
        bm_estimate_t e = bm_est_poisson_rate(s_poisson(mu), 1000, 1000);
        hit += e.has_ci && e.lo <= mu && mu <= e.hi;
    }
    return (double)hit / S_DRAWS;
}

typedef double (*s_cover_fn)(const double *par, int n);

static double s_c_prop(const double *par, int n) { return s_cover_prop(par[0], n); }
static double s_c_nps(const double *par, int n) { return s_cover_nps(par[0], par[1], n); }
static double s_c_mean(const double *par, int n) { return s_cover_mean(par[0], par[1], n); }
static double s_c_pois(const double *par, int n) { return s_cover_poisson(par[0] * n); }

static void test_coverage(void)
{
    static const struct {
        const char *family, *params;
        s_cover_fn fn;
        double par[2];
        int checked;    /* 0: shown for information (outside the model) */
    } cases[] = {
        {"share, Wilson cc", "p = .05", s_c_prop, {0.05, 0}, 1},
        {"share, Wilson cc", "p = .25", s_c_prop, {0.25, 0}, 1},
        {"share, Wilson cc", "p = .50", s_c_prop, {0.50, 0}, 1},
        {"share, Wilson cc", "p = .80", s_c_prop, {0.80, 0}, 1},
        {"NPS, score (Tango)", "P .50 D .20 (30)", s_c_nps, {0.50, 0.20}, 1},
        {"NPS, score (Tango)", "P .30 D .30 (0)", s_c_nps, {0.30, 0.30}, 1},
        {"NPS, score (Tango)", "P .60 D .10 (50)", s_c_nps, {0.60, 0.10}, 1},
        {"NPS, score (Tango)", "P .75 D .05 (70)", s_c_nps, {0.75, 0.05}, 1},
        {"score, pooled floor", "70, pool at 70", s_c_mean, {0.70, 0.70}, 1},
        {"score, pooled floor", "85, pool at 85", s_c_mean, {0.85, 0.85}, 1},
        {"score, pooled floor", "50, pool at 85", s_c_mean, {0.50, 0.85}, 0},
        {"rate, Garwood", "mu = 1 x n", s_c_pois, {1.0, 0}, 1},
        {"rate, Garwood", "mu = .2 x n", s_c_pois, {0.2, 0}, 1},
    };
    printf("coverage of the 95%% intervals, %d seeded draws per cell\n", S_DRAWS);
    printf("%-20s %-18s", "family", "truth");
    for (int k = 0; k < 6; k++)
        printf("  n=%-4d", s_ns[k]);
    printf("\n");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        printf("%-20s %-18s", cases[c].family, cases[c].params);
        for (int k = 0; k < 6; k++) {
            double cov = cases[c].fn(cases[c].par, s_ns[k]);
            printf("  %5.1f%%", 100.0 * cov);
            if (cases[c].checked && cov < 0.925) {
                fprintf(stderr, "coverage %s %s n=%d: %.3f < 0.925\n", cases[c].family,
                        cases[c].params, s_ns[k], cov);
                bm_test_failures++;
            }
        }
        printf("%s\n", cases[c].checked ? "" : "  (heteroscedastic, not checked)");
    }
}

/* ---- visit planning (report/plan.c) --------------------------------- */

static double s_normal(void)
{
    double u1 = s_unif(), u2 = s_unif();
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Sizing: n = max(3, ceil((t(df) * max(s_i, s_p) / h)^2)). */
static void test_plan_size(void)
{
    bm_plan_branch_t b[12];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 12; i++) {
        b[i].df = 3;
        b[i].ss = 3 * 15.0 * 15.0;       /* s_i = 15 */
    }
    b[1].ss = 3 * 25.0 * 25.0;           /* varies more: its own SD wins */
    b[2].done = 10;
    b[2].planned = 5;
    double sp = 0, df = 0;
    bm_plan_target_t tg = {5.0, 3, 15.0};
    bm_plan_size(b, 12, &tg, &sp, &df);
    double pool = sqrt((11 * 3 * 225.0 + 3 * 625.0) / 36);
    CHECK(fabs(sp - pool) < 1e-9 && df == 36);
    double t = bm_t95(36);
    int want = (int)ceil(pow(t * pool / 5.0, 2));
    CHECK(b[0].needed == want && b[0].to_plan == want);
    CHECK(fabs(b[0].sd - pool) < 1e-9 && fabs(b[1].sd - 25) < 1e-9);
    CHECK(b[1].needed == (int)ceil(pow(t * 25 / 5.0, 2)));
    CHECK(b[2].to_plan == want - 15);
    /* A wide target: the minimum sample, and the df of the small plan. */
    tg.half_width = 60;
    bm_plan_size(b, 12, &tg, &sp, &df);
    CHECK(b[0].needed == 3 && b[2].to_plan == 0 && df == 24);
    /* No branch with 2 visits: the prior SD with the normal quantile. */
    memset(b, 0, sizeof b);
    tg.half_width = 5;
    bm_plan_size(b, 3, &tg, &sp, &df);
    CHECK(df == 0 && sp == 15 && b[0].needed == (int)ceil(pow(BM_Z95 * 3, 2)));
    /* A target no chain can pay for is capped, and says so. */
    tg.half_width = 0.1;
    bm_plan_size(b, 1, &tg, &sp, &df);
    CHECK(b[0].needed == BM_PLAN_MAX_N && b[0].capped);
}

/* Following the plan brings the intervals to the target: 12 branches whose
 * visits score N(mean_i, 15); a basis of 3 periods of 4 visits; then the
 * planned period with the planned visits, estimated as the ranking does
 * (pooled floor over that period).  Printed to the test log. */
static void test_plan_follow(void)
{
    const int nb = 12, reps = 300;
    double sum_hw = 0, worst = 0;
    int met = 0, total = 0;
    for (int rep = 0; rep < reps; rep++) {
        bm_plan_branch_t b[12];
        memset(b, 0, sizeof b);
        for (int i = 0; i < nb; i++)
            for (int p = 0; p < 3; p++) {
                double sum = 0, sq = 0;
                for (int k = 0; k < 4; k++) {
                    double x = 60 + 2 * i + 15 * s_normal();
                    sum += x;
                    sq += x * x;
                }
                bm_pool_t one = {0, 0};
                bm_pool_add(&one, 4, sum, sq);
                b[i].ss += one.ss;
                b[i].df += one.df;
            }
        bm_plan_target_t tg = {5.0, 3, 15.0};
        bm_plan_size(b, (size_t)nb, &tg, NULL, NULL);
        double sum[12], sq[12];
        bm_pool_t pool = {0, 0};
        for (int i = 0; i < nb; i++) {
            sum[i] = sq[i] = 0;
            for (int k = 0; k < b[i].needed; k++) {
                double x = 60 + 2 * i + 15 * s_normal();
                sum[i] += x;
                sq[i] += x * x;
            }
            bm_pool_add(&pool, b[i].needed, sum[i], sq[i]);
        }
        for (int i = 0; i < nb; i++) {
            bm_estimate_t e = bm_est_mean_pooled(b[i].needed, sum[i], sq[i], &pool);
            double hw = (e.hi - e.lo) / 2;
            sum_hw += hw;
            worst = hw > worst ? hw : worst;
            met += hw <= 5.0;
            total++;
        }
    }
    double mean_hw = sum_hw / total;
    printf("plan: target half-width 5.0, sd 15: mean %.2f, %.1f%% of branches at or below "
           "5.0, worst %.2f (%d branch-periods)\n", mean_hw, 100.0 * met / total, worst, total);
    CHECK(mean_hw <= 5.0 && mean_hw >= 4.3);
    /* Sized from an estimated SD, the target holds on average, not for
     * each branch: a basis SD low by chance plans too few (Browne 1995's
     * upper confidence limit of the SD would buy an assurance). */
    CHECK(met >= total / 2);
}

/* No shopper at one outlet twice within lockout days (windows included),
 * also against the visits seen before. */
static int s_lockout_kept(const bm_plan_visit_t *v, size_t n, const bm_plan_visit_t *seen,
                          size_t nseen, int lockout)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i + nseen; j++) {
            const bm_plan_visit_t *w = j < nseen ? &seen[j] : &v[j - nseen];
            if (v[i].shopper < 0 || w->shopper != v[i].shopper || w->outlet != v[i].outlet ||
                w->competitor != v[i].competitor)
                continue;
            int64_t gap = w->day > v[i].day + v[i].window ? w->day - (v[i].day + v[i].window)
                        : v[i].day > w->day + w->window ? v[i].day - (w->day + w->window) : 0;
            if (gap < lockout)
                return 0;
        }
    return 1;
}

/* Allocation: lock-out, spread over weekdays/weekends and bands, shares. */
static void test_plan_allocate(void)
{
    int64_t dec;
    CHECK(bm_date_parse("2026-12-01", &dec, NULL) == 0);
    bm_plan_rules_t rules = {.first_day = dec, .days = 31, .from_day = dec, .lockout_days = 30,
                             .surprise_share = 0.25, .surprise_window = 7,
                             .competitor_share = 0.2, .ncompetitors = 2, .nshoppers = 60};
    int to_plan[3] = {35, 8, 0};
    /* shopper 0 visited branch 0 on 25 November: locked out until 25 December */
    bm_plan_visit_t seen[1] = {{.competitor = 0, .outlet = 0, .day = dec - 6, .shopper = 0}};
    bm_plan_visit_t *v = NULL;
    size_t n = 0;
    bm_err_t err;
    CHECK_OR_RETURN(bm_plan_allocate(to_plan, 3, &rules, seen, 1, &v, &n, &err) == 0);
    size_t comp = 0;
    int per[3] = {0}, weekend[3] = {0}, bands[4] = {0}, surprise[3] = {0}, bad = 0;
    for (size_t i = 0; i < n; i++) {
        int dow = (int)(((v[i].day + 3) % 7 + 7) % 7) + 1;
        CHECK(v[i].day >= dec && v[i].day + v[i].window < dec + 31);
        CHECK(v[i].shopper >= 0);
        bands[v[i].band]++;
        if (v[i].competitor) {
            comp++;
            continue;
        }
        per[v[i].outlet]++;
        weekend[v[i].outlet] += dow >= 6;
        surprise[v[i].outlet] += v[i].surprise;
        if (v[i].outlet == 0 && v[i].shopper == 0 && v[i].day < dec + 24)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(s_lockout_kept(v, n, seen, 1, 30));
    CHECK(per[0] == 35 && per[1] == 8 && per[2] == 0);
    CHECK(comp == (size_t)lround(43 * 0.2 / 0.8));
    CHECK(weekend[0] == 10 && weekend[1] == 2);     /* round(k * 2 / 7) */
    CHECK(surprise[0] == 8 && surprise[1] == 2);    /* floor(k / 4) */
    CHECK(bands[BM_BAND_ANY] == 0 && bands[1] > 10 && bands[2] > 10 && bands[3] > 10);
    free(v);
    /* Too few shoppers for the lock-out: the rest is left without one. */
    rules.nshoppers = 10;
    rules.competitor_share = 0;
    CHECK_OR_RETURN(bm_plan_allocate(to_plan, 3, &rules, NULL, 0, &v, &n, &err) == 0);
    int unstaffed = 0;
    for (size_t i = 0; i < n; i++)
        unstaffed += v[i].shopper < 0;
    CHECK(n == 43 && unstaffed >= 20 && unstaffed <= 25);
    CHECK(s_lockout_kept(v, n, NULL, 0, 30));
    free(v);
    /* A period already over has no day left. */
    rules.from_day = dec + 31;
    CHECK(bm_plan_allocate(to_plan, 3, &rules, NULL, 0, &v, &n, &err) == -1);
    CHECK_ERR(err, "no day of the period is left");
    free(v);
}

/* A cell of outlet o, channel c from its scores. */
static bm_gap_cell_t s_cell(int o, int c, const double *v, int n)
{
    bm_gap_cell_t cell = {.outlet = o, .channel = c};
    for (int i = 0; i < n; i++) {
        cell.n += 1;
        cell.sum += v[i];
        cell.sumsq += v[i] * v[i];
    }
    return cell;
}

static bm_q_agg_t s_sums(const double *v, int n)
{
    bm_gap_cell_t c = s_cell(0, 0, v, n);
    bm_q_agg_t a;
    memset(&a, 0, sizeof a);
    a.n = c.n;
    a.sum = c.sum;
    a.sumsq = c.sumsq;
    return a;
}

/* Competitor visits clustered by outlet (docs/metrics.md, "Competitor
 * gaps"), by hand. */
static void test_gap_clustered(void)
{
    const double w1[BM_GAP_CHANNELS] = {1, 0, 0};
    /* A {60, 70}, B {80, 90, 100}, C {75, 85}: mean 560/7 = 80; psi =
     * (130 - 160)/7, (270 - 240)/7, 0: V = 3/2 * 1800/49 = 55.10, se 7.4231
     * with df 2 (t 4.3027): [48.06, 111.94].  Independent visits would
     * claim se sqrt(175/7) = 5 with df 6. */
    const double a[] = {60, 70}, b[] = {80, 90, 100}, c[] = {75, 85};
    bm_gap_cell_t cells[] = {s_cell(0, 0, a, 2), s_cell(1, 0, b, 3), s_cell(2, 0, c, 2)};
    int g = 0;
    bm_estimate_t e = bm_gap_comp_estimate(cells, 3, w1, &g);
    CHECK(g == 3 && e.has_value && e.has_ci && e.n == 7);
    CHECK(NEAR(e.value, 80, 1e-12));
    CHECK(NEAR(e.se, 7.4230749, 1e-6));
    CHECK(e.df == 2);
    CHECK(NEAR(e.lo, 48.061087, 1e-5) && NEAR(e.hi, 111.938913, 1e-5));
    /* Two outlets with the same mean: the cluster-robust variance is 0;
     * the independent-visit one is the floor: s^2 = 1000/3 over 4 visits,
     * se 9.1287, df 1. */
    const double d[] = {60, 100}, f[] = {70, 90};
    bm_gap_cell_t same[] = {s_cell(4, 0, d, 2), s_cell(9, 0, f, 2)};
    e = bm_gap_comp_estimate(same, 2, w1, &g);
    CHECK(g == 2 && NEAR(e.se, 9.1287093, 1e-6) && e.df == 1);
    /* One outlet: a value, no interval, nothing to test with. */
    e = bm_gap_comp_estimate(cells + 1, 1, w1, &g);
    CHECK(g == 1 && e.has_value && NEAR(e.value, 90, 1e-12) && !e.has_ci && e.se == 0);
    /* Cells of other channels do not count for visits. */
    bm_gap_cell_t other[] = {s_cell(0, 1, a, 2), s_cell(0, 0, b, 3)};
    e = bm_gap_comp_estimate(other, 2, w1, &g);
    CHECK(g == 1 && e.n == 3 && NEAR(e.value, 90, 1e-12));
}

/* Own calls against competitor visits: the old overall and the new rows. */
static void test_gap_channels(void)
{
    /* Own visits {70, 80, 90}, calls {40, 50, 60}; competitors visits only,
     * X {70, 80}, Y {75, 85}.  The old "(overall)" pooled everything:
     * own 390/6 = 65 against 77.5, gap -12.5 (own looks worse).  Like with
     * like: visits 80 against 77.5, gap +2.5; calls have no competitor
     * side; no row over common channels (only one). */
    const double ov[] = {70, 80, 90}, oc[] = {40, 50, 60}, x[] = {70, 80}, y[] = {75, 85};
    bm_q_agg_t own[BM_GAP_CHANNELS];
    memset(own, 0, sizeof own);
    own[0] = s_sums(ov, 3);
    own[1] = s_sums(oc, 3);
    bm_gap_cell_t cells[] = {s_cell(0, 0, x, 2), s_cell(1, 0, y, 2)}, scratch[2];
    bm_gap_row_t out[BM_GAP_CHANNELS + 1];
    unsigned m = bm_gap_key_rows(own, cells, 2, 3, scratch, out);
    CHECK(m == (1u << 1 | 1u << 2));
    const bm_gap_row_t *v = &out[1], *c = &out[2];
    CHECK(v->channels == 1u && v->has_gap && NEAR(v->gap, 2.5, 1e-12));
    CHECK(v->own.n == 3 && v->comp.n == 4 && v->comp_outlets == 2 && !v->low_n);
    /* Competitors: psi = -+5/4, V_cr = 2 * 3.125 = 6.25 below the
     * independent 41.67/4 = 10.42 (se 3.2275, df 1); own se^2 100/3, df 2:
     * gap se 6.6144, Welch-Satterthwaite df 2.882. */
    CHECK(NEAR(v->comp.se, sqrt(125.0 / 12), 1e-9) && v->comp.df == 1);
    CHECK(v->has_ci && v->significant.test.tested);
    double tq = bm_t95(2.88235294117647);
    CHECK(NEAR(v->gap_lo, 2.5 - tq * 6.6143783, 1e-5));
    CHECK(NEAR(v->gap_hi, 2.5 + tq * 6.6143783, 1e-5));
    CHECK(c->channels == 2u && c->own.n == 3 && NEAR(c->own.value, 50, 1e-12));
    CHECK(!c->comp.has_value && !c->has_gap && c->low_n && !c->significant.test.tested);

    /* Both channels on both sides: own visits {70, 80, 90}, one call {50}
     * (weights 3/4, 1/4); competitors X visits {70, 80} + call {60}, Y
     * visits {75, 85} + calls {40, 50}.  Pooled, competitors were
     * 460/7 = 65.7 (gap 6.8); at the own channel mix they are
     * .75 * 77.5 + .25 * 50 = 70.625, own 290/4 = 72.5: gap 1.875.
     * psi = -+(.75 * 1.25 - .25 * 10/3) = -+0.1042: V_cr = 0.0434; the
     * independent floor .5625 * 41.67/4 + .0625 * 100/3 = 7.9427 wins. */
    const double one[] = {50}, xc[] = {60}, yc[] = {40, 50};
    own[1] = s_sums(one, 1);
    bm_gap_cell_t both[] = {s_cell(0, 0, x, 2), s_cell(0, 1, xc, 1), s_cell(1, 0, y, 2),
                            s_cell(1, 1, yc, 2)},
                  room[4];
    m = bm_gap_key_rows(own, both, 4, 3, room, out);
    CHECK(m == (1u | 1u << 1 | 1u << 2));
    const bm_gap_row_t *all = &out[0];
    CHECK(all->channels == 3u && all->own.n == 4 && all->comp.n == 7);
    CHECK(NEAR(all->own.value, 72.5, 1e-12) && NEAR(all->comp.value, 70.625, 1e-12));
    CHECK(NEAR(all->gap, 1.875, 1e-12) && all->comp_outlets == 2);
    CHECK(NEAR(all->comp.se, 2.8182811, 1e-6) && all->comp.df == 1 && all->has_ci);
    /* The call row alone: own n = 1 is low-n, no interval, no test. */
    CHECK(out[2].low_n && !out[2].has_ci && !out[2].significant.test.tested);
    /* Competitors of one outlet: gaps, but no interval and no test. */
    m = bm_gap_key_rows(own, both, 2, 3, room, out);
    CHECK(out[1].has_gap && out[1].comp_outlets == 1 && !out[1].has_ci);
    CHECK(!out[1].significant.test.tested);
}

int main(void)
{
    test_wilson();
    test_nps();
    test_mean();
    test_hist();
    test_ties();
    test_bh();
    test_gap_clustered();
    test_gap_channels();
    test_changes();
    test_low_n_arrow();
    test_pooled_and_poisson();
    test_period_complete();
    test_coverage();
    test_low_sample_and_alerts();
    test_geo_and_periods();
    test_metric_estimates();
    test_plan_size();
    test_plan_follow();
    test_plan_allocate();
    test_rounding();
    test_formats_agree();
    test_csv_output();
    test_json_output();
    if (bm_test_failures) {
        fprintf(stderr, "test_stats: %d check(s) failed\n", bm_test_failures);
        return 1;
    }
    printf("test_stats: all checks passed\n");
    return 0;
}
