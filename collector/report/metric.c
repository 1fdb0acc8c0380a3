/* metric: the metrics catalogue (what each metric reads from the rollups and
 * how it is estimated) and the estimates with their intervals and change
 * tests.  Owns only constant tables. */
#include "metric.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_sql.h"

/* ---- metrics catalogue -------------------------------------------------- */

const bm_metric_t bm_metrics[] = {
    {"ms_score", "%", 1, BM_FAM_MEAN, "evaluations", 3, 1, 0, NULL, 0,
     S_LATEST("rollup_scores") " AND outlet_kind = 'branch'",
     "SELECT outlet_id, period_start::text, sum(n), 0, 0, sum(score_sum), sum(score_sumsq), ''"
     " FROM rollup_scores WHERE outlet_kind = $8 AND " S_RANGE_OUTLET("")
     " AND ($4 = '' OR channel = $4) AND ($5 = '' OR segment = $5) AND section = $6"
     " GROUP BY period_start, outlet_id",
     "mystery-shopping score: mean of the evaluations' overall (or --section) scores", NULL},
    {"nps", "points", 1, BM_FAM_NPS, "survey answers", 30, 1, 0, NULL, 0,
     S_LATEST("rollup_surveys"),
     "SELECT branch_id, period_start::text, sum(nps_n), sum(promoters), sum(detractors), 0, 0, ''"
     " FROM rollup_surveys WHERE " S_RANGE("") " AND ($5 = '' OR segment = $5)"
     " GROUP BY period_start, branch_id",
     "net promoter score: % promoters (9-10) minus % detractors (0-6)",
     "SELECT period_start::text, sum(nps_n), sum(promoters), sum(detractors), 0, 0, ''"
     " FROM rollup_surveys WHERE " S_TOTALS_RANGE " AND ($5 = '' OR segment = $5)"
     " GROUP BY period_start"},
    {"csi", "index", 1, BM_FAM_MEAN, "survey answers", 30, 1, 0, NULL, 0,
     S_LATEST("rollup_surveys"),
     "SELECT branch_id, period_start::text, sum(csi_n), 0, 0, sum(csi_sum), sum(csi_sumsq), ''"
     " FROM rollup_surveys WHERE " S_RANGE("") " AND ($5 = '' OR segment = $5)"
     " GROUP BY period_start, branch_id",
     "customer satisfaction index 0-100: mean of the responses' CSI",
     "SELECT period_start::text, sum(csi_n), 0, 0, sum(csi_sum), sum(csi_sumsq), ''"
     " FROM rollup_surveys WHERE " S_TOTALS_RANGE " AND ($5 = '' OR segment = $5)"
     " GROUP BY period_start"},
    {"capture_rate", "%", 1, BM_FAM_PROPORTION, "passers-by", 30, 1, 0, NULL, 0,
     S_LATEST("rollup_traffic"),
     "SELECT branch_id, period_start::text, passers_by, entrants, 0, 0, 0, ''"
     " FROM rollup_traffic WHERE " S_RANGE(""),
     "entrants / passers-by (passers-by count everyone passing, incl. those who entered)", NULL},
    {"conversion", "%", 1, BM_FAM_PROPORTION, "entrants", 30, 1, 0, NULL, 0,
     S_LATEST("rollup_traffic"),
     "SELECT t.branch_id, t.period_start::text, t.entrants, coalesce(s.sales, 0), 0, 0, 0, ''"
     " FROM rollup_traffic t LEFT JOIN (SELECT branch_id, period_start, sum(sales) AS sales"
     "   FROM rollup_sales WHERE " S_RANGE("") " GROUP BY 1, 2) s"
     " ON s.branch_id = t.branch_id AND s.period_start = t.period_start"
     " WHERE " S_RANGE("t."),
     "sales receipts / entrants", NULL},
    {"avg_check", "currency", 1, BM_FAM_MEAN, "sales", 30, 2, 0, NULL, 0,
     S_LATEST("rollup_sales"),
     "SELECT branch_id, period_start::text, sales, 0, 0, sales_minor, sales_minor_sq, currency"
     " FROM rollup_sales WHERE " S_RANGE("") " AND sales > 0",
     "mean amount of a sales receipt (refunds excluded), one currency", NULL},
    {"wait_p50", "s", 0, BM_FAM_QUANTILE, "called tickets", 30, 0, 0.5, "queue_wait", 5,
     S_LATEST("rollup_queue"),
     "SELECT branch_id, period_start::text, counts FROM rollup_hist"
     " WHERE measure = 'queue_wait' AND " S_RANGE(""),
     "median queue wait, ticket issued -> called (5 s buckets)", NULL},
    {"wait_p90", "s", 0, BM_FAM_QUANTILE, "called tickets", 30, 0, 0.9, "queue_wait", 5,
     S_LATEST("rollup_queue"),
     "SELECT branch_id, period_start::text, counts FROM rollup_hist"
     " WHERE measure = 'queue_wait' AND " S_RANGE(""),
     "90th percentile of the queue wait, issued -> called (5 s buckets)", NULL},
    {"calls_answered_share", "%", 1, BM_FAM_PROPORTION, "calls", 30, 1, 0, NULL, 0,
     S_LATEST("rollup_calls"),
     "SELECT c.branch_id, c.period_start::text, c.calls, coalesce(h.x, 0), 0, 0, 0, ''"
     " FROM rollup_calls c LEFT JOIN (SELECT branch_id, period_start,"
     "   (SELECT sum(k) FROM unnest(counts[1:$7 + 1]) k) AS x"
     "   FROM rollup_hist WHERE measure = 'call_answer_wait' AND " S_RANGE("") ") h"
     " ON h.branch_id = c.branch_id AND h.period_start = c.period_start"
     " WHERE " S_RANGE("c."),
     "calls answered within the target (default 20 s) / all calls", NULL},
    {"calls_abandoned_share", "%", 0, BM_FAM_PROPORTION, "calls", 30, 1, 0, NULL, 0,
     S_LATEST("rollup_calls"),
     "SELECT branch_id, period_start::text, calls, abandoned, 0, 0, 0, ''"
     " FROM rollup_calls WHERE " S_RANGE(""),
     "calls never answered / all calls", NULL},
    {"complaints_per_1000", "per 1000", 0, BM_FAM_RATE1000, "entrants", 30, 2, 0, NULL, 0,
     S_LATEST("rollup_complaints"),
     "SELECT t.branch_id, t.period_start::text, t.entrants, coalesce(c.complaints, 0), 0, 0, 0, ''"
     " FROM rollup_traffic t LEFT JOIN rollup_complaints c ON c.branch_id = t.branch_id"
     " AND c.period_kind = t.period_kind AND c.period_start = t.period_start"
     " WHERE " S_RANGE("t."),
     "complaints received per 1,000 entrants", NULL},
    {"complaint_resolve_median", "h", 0, BM_FAM_QUANTILE, "resolved complaints", 30, 1, 0.5,
     "complaint_resolve", 1, S_LATEST("rollup_complaints"),
     "SELECT branch_id, period_start::text, counts FROM rollup_hist"
     " WHERE measure = 'complaint_resolve' AND " S_RANGE(""),
     "median hours from receipt to resolution of the complaints received (1 h buckets)", NULL},
    {"complaints_open", "count", 0, BM_FAM_COUNT, "complaints", 30, 0, 0, NULL, 0,
     S_LATEST("rollup_complaints"),
     "SELECT branch_id, period_start::text, complaints, open, 0, 0, 0, ''"
     " FROM rollup_complaints WHERE " S_RANGE(""),
     "complaints received in the period and still open", NULL},
    {"customer_balance", "count", 1, BM_FAM_BALANCE, "customer changes", 30, 0, 0, NULL, 0,
     S_LATEST("rollup_customers"),
     "SELECT branch_id, period_start::text, gained + lost, gained - lost, 0, 0, 0, ''"
     " FROM rollup_customers WHERE " S_RANGE(""),
     "customers gained minus customers lost", NULL},
    {NULL, NULL, 0, 0, NULL, 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL},
};

const bm_metric_t *bm_metric_find(const char *name)
{
    for (const bm_metric_t *m = bm_metrics; m->name; m++)
        if (!strcmp(m->name, name))
            return m;
    return NULL;
}

int bm_currency_digits(const char *c)
{
    if (!strcmp(c, "JPY") || !strcmp(c, "KRW"))
        return 0;
    if (!strcmp(c, "BHD") || !strcmp(c, "KWD") || !strcmp(c, "OMR") || !strcmp(c, "TND"))
        return 3;
    return 2;
}

/* ---- estimates ---------------------------------------------------------- */

static void s_scale(bm_estimate_t *e, double k)
{
    e->value *= k;
    e->lo *= k;
    e->hi *= k;
    e->se *= k;
    e->sd *= k;
}

int bm_metric_pools(const bm_metric_t *m)
{
    return m->family == BM_FAM_MEAN && !strcmp(m->sample, "evaluations");
}

void bm_q_pool_add(const bm_metric_t *m, bm_pool_t *pool, const bm_q_agg_t *a)
{
    if (bm_metric_pools(m))
        bm_pool_add(pool, a->n, a->sum, a->sumsq);
}

int bm_q_estimate(const bm_metric_t *m, const bm_q_agg_t *a, size_t nb, bm_estimate_t *out,
                  bm_err_t *err)
{
    return bm_q_estimate_pooled(m, a, nb, NULL, out, err);
}

int bm_q_estimate_pooled(const bm_metric_t *m, const bm_q_agg_t *a, size_t nb,
                         const bm_pool_t *pool, bm_estimate_t *out, bm_err_t *err)
{
    memset(out, 0, sizeof *out);
    switch (m->family) {
    case BM_FAM_PROPORTION:
        *out = bm_est_proportion(a->x, a->n);
        s_scale(out, 100.0);
        break;
    case BM_FAM_RATE1000:
        *out = bm_est_poisson_rate(a->x, a->n, 1000.0);
        break;
    case BM_FAM_NPS:
        *out = bm_est_nps(a->x, a->y, a->n);
        break;
    case BM_FAM_MEAN:
        if (a->mixed_currency)
            return bm_err_set(err, "%s: receipts are in more than one currency; "
                                   "the chain must use one currency", m->name);
        *out = bm_metric_pools(m) ? bm_est_mean_pooled(a->n, a->sum, a->sumsq, pool)
                                  : bm_est_mean(a->n, a->sum, a->sumsq);
        if (!strcmp(m->unit, "%") || !strcmp(m->unit, "index"))
            bm_est_clamp(out, 0, 100);     /* scores live on 0..100 */
        if (a->currency[0])
            s_scale(out, pow(10.0, -bm_currency_digits(a->currency)));
        break;
    case BM_FAM_QUANTILE:
        if (a->hist)
            *out = bm_est_hist_quantile(a->hist, nb, bm_metric_hist_overflow(m), m->bucket_width,
                                        m->quantile);
        break;
    case BM_FAM_COUNT:
        *out = bm_est_count(a->x, a->n);
        break;
    case BM_FAM_BALANCE:
        *out = bm_est_balance(a->x, a->n);
        break;
    }
    return 0;
}

bm_test_t bm_q_change_test(const bm_metric_t *m, const bm_q_agg_t *cur, const bm_q_agg_t *prev,
                           const bm_estimate_t *ce, const bm_estimate_t *pe, double min_n)
{
    bm_test_t none = {0, 0, 1.0};
    if (!ce->has_value || !pe->has_value || bm_low_sample(ce->n, min_n) ||
        bm_low_sample(pe->n, min_n))
        return none;
    switch (m->family) {
    case BM_FAM_PROPORTION:
    case BM_FAM_RATE1000:
        return bm_test_proportion(cur->x, cur->n, prev->x, prev->n);
    case BM_FAM_NPS:
    case BM_FAM_MEAN:
    case BM_FAM_QUANTILE:
        return bm_test_diff(ce, pe);
    case BM_FAM_COUNT:
    case BM_FAM_BALANCE:
    default:
        /* Counts grow with a branch's size and the period's length; a
         * change of a count is not a change of service. */
        return none;
    }
}

/* bm_bucket's last argument in 002_rollups.sql. */
size_t bm_metric_hist_overflow(const bm_metric_t *m)
{
    return m->measure && !strcmp(m->measure, "call_answer_wait") ? 600 : BM_HIST_BUCKETS - 1;
}

bm_figure_t bm_figure(const bm_estimate_t *e, double min_n)
{
    bm_figure_t f;
    f.est = *e;
    f.low_n = !e->has_value || bm_low_sample(e->n, min_n);
    return f;
}

const char *bm_metric_interval_name(bm_family_t f)
{
    switch (f) {
    case BM_FAM_PROPORTION:
        return "Wilson, continuity-corrected";
    case BM_FAM_RATE1000:
    case BM_FAM_COUNT:
        return "Garwood (exact Poisson)";
    case BM_FAM_NPS:
        return "adjusted Wald (Rocks 2016)";
    case BM_FAM_MEAN:
        return "Student t (evaluations: pooled within-branch SD floor)";
    case BM_FAM_QUANTILE:
        return "order statistics";
    case BM_FAM_BALANCE:
        return "normal, Var = gained + lost (Skellam)";
    default:
        return "none";
    }
}
