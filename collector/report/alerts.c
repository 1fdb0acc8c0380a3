/* alerts: the early-warning report (alerts.h).  Owns the result it
 * returns. */
#include "alerts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NP (BM_ALERT_BASELINE_PERIODS + 1)

/* The breakdowns the likely causes are read from, over the baseline and
 * the current period. */
typedef struct {
    bm_q_bd_row_t *rows[3];
    int n[3];
} s_causes_t;

static void s_causes_free(s_causes_t *c)
{
    for (int k = 0; k < 3; k++)
        free(c->rows[k]);
}

static int s_causes_load(bm_report_ctx_t *ctx, int64_t first, s_causes_t *c, bm_err_t *err)
{
    static const bm_breakdown_t what[3] = {BM_BD_SECTIONS, BM_BD_COMPLAINT_CATEGORY,
                                           BM_BD_CONTACT_POINT};
    memset(c, 0, sizeof *c);
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    for (int k = 0; k < 3; k++)
        if ((c->n[k] = bm_q_breakdown(ctx->conn, ctx->ref, what[k], ctx->rq->period, first, S_NP,
                                      &f, &c->rows[k], err)) < 0)
            return -1;
    return 0;
}

/* The largest moves of one breakdown for branch b (worst first): score
 * drops for sections, count increases over the baseline's mean otherwise. */
static void s_causes_of(const s_causes_t *c, bm_cause_kind_t kind, const bm_q_ref_t *ref, int b,
                        bm_alert_t *a)
{
    const bm_q_bd_row_t *rows = c->rows[kind];
    int n = c->n[kind], scores = kind == BM_CAUSE_SECTION;
    const char *keys[BM_Q_MAX_KEYS];
    double delta[BM_Q_MAX_KEYS];
    int nk = bm_q_bd_keys(rows, n, keys, BM_Q_MAX_KEYS);
    for (int k = 0; k < nk; k++) {
        bm_q_agg_t cur, base;
        bm_q_bd_sum(rows, n, ref, b, -1, 0, BM_ALERT_BASELINE_PERIODS, keys[k], &cur);
        memset(&base, 0, sizeof base);
        for (int p = 0; p < BM_ALERT_BASELINE_PERIODS; p++) {
            bm_q_agg_t x;
            bm_q_bd_sum(rows, n, ref, b, -1, 0, p, keys[k], &x);
            bm_q_agg_add(&base, &x, 0);
        }
        if (scores)   /* score drop (negative is worse) */
            delta[k] = cur.n > 0 && base.n > 0 ? cur.sum / cur.n - base.sum / base.n : 0;
        else          /* count increase per period, negated: negative is worse */
            delta[k] = -(cur.x - base.x / BM_ALERT_BASELINE_PERIODS);
    }
    for (int pick = 0; pick < BM_ALERT_MAX_CAUSES; pick++) {
        int best = -1;
        for (int k = 0; k < nk; k++)
            if (delta[k] < -1e-9 && (best < 0 || delta[k] < delta[best]))
                best = k;
        if (best < 0)
            break;
        bm_alert_cause_t *cause = &a->causes[a->ncauses++];
        cause->kind = kind;
        snprintf(cause->key, sizeof cause->key, "%s", keys[best]);
        cause->delta = scores ? delta[best] : -delta[best];
        delta[best] = 0;
    }
}

static bm_alert_t *s_alert_add(bm_alerts_result_t *res)
{
    if (res->nalerts == res->cap) {
        size_t cap = res->cap ? 2 * res->cap : 16;
        bm_alert_t *a = realloc(res->alerts, cap * sizeof *a);
        if (!a)
            return NULL;
        res->alerts = a;
        res->cap = cap;
    }
    bm_alert_t *a = &res->alerts[res->nalerts++];
    memset(a, 0, sizeof *a);
    return a;
}

/* Alerts of metric m for every branch in scope. */
static int s_metric_alerts(bm_report_ctx_t *ctx, const bm_metric_t *m, int64_t first,
                           const s_causes_t *causes, bm_alerts_result_t *res, bm_err_t *err)
{
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    bm_q_grid_t *g = bm_q_fetch(ctx->conn, ctx->ref, m, ctx->rq->period, first, S_NP, &f, err);
    if (!g)
        return -1;
    double min_n = bm_report_ctx_min_n(ctx, m);
    int rc = 0;
    for (int b = 0; rc == 0 && b < ctx->ref->nbranches; b++) {
        if (!bm_report_ctx_in_scope(ctx, b))
            continue;
        bm_q_agg_t base;
        memset(&base, 0, sizeof base);
        for (int p = 0; p < BM_ALERT_BASELINE_PERIODS; p++)
            bm_q_agg_add(&base, bm_q_cell(g, b, p), 0);
        bm_estimate_t ec, eb;
        if (bm_q_estimate(m, bm_q_cell(g, b, BM_ALERT_BASELINE_PERIODS), 0, &ec, NULL) < 0 ||
            bm_q_estimate(m, &base, 0, &eb, NULL) < 0)
            continue;   /* mixed currencies: avg_check has no single value */
        if (!ec.has_value || !eb.has_value || ec.n < min_n || eb.n < min_n)
            continue;
        double z;
        if (!bm_control_alert(ec.value, ec.n, eb.value, eb.sd, m->higher_better, &z))
            continue;
        bm_alert_t *a = s_alert_add(res);
        if (!a) {
            rc = bm_err_set(err, "out of memory");
            break;
        }
        a->branch = b;
        a->metric = m;
        a->cur = ec;
        a->base = eb;
        a->sigmas = z;
        s_causes_of(causes, BM_CAUSE_SECTION, ctx->ref, b, a);
        s_causes_of(causes, BM_CAUSE_COMPLAINT_CATEGORY, ctx->ref, b, a);
        s_causes_of(causes, BM_CAUSE_CONTACT_POINT, ctx->ref, b, a);
    }
    bm_q_grid_destroy(&g);
    return rc;
}

static int s_compute(bm_report_ctx_t *ctx, bm_alerts_result_t *res, bm_err_t *err)
{
    if (bm_report_ctx_period(ctx, NULL, &res->cur, err) < 0)
        return -1;
    int64_t first = bm_period_add(res->kind, res->cur, -BM_ALERT_BASELINE_PERIODS);
    s_causes_t causes;
    int rc = s_causes_load(ctx, first, &causes, err);
    for (const bm_metric_t *m = bm_metrics; rc == 0 && m->name; m++)
        if (m->family != BM_FAM_QUANTILE && m->family != BM_FAM_COUNT &&
            m->family != BM_FAM_BALANCE)   /* no per-observation SD, no limit */
            rc = s_metric_alerts(ctx, m, first, &causes, res, err);
    s_causes_free(&causes);
    return rc;
}

int bm_alerts_compute(bm_report_ctx_t *ctx, bm_alerts_result_t **out, bm_err_t *err)
{
    bm_alerts_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    res->kind = ctx->rq->period;
    if (s_compute(ctx, res, err) < 0) {
        bm_alerts_result_destroy(&res);
        return BM_REPORT_FAILED;
    }
    res->ref = bm_report_ctx_take_ref(ctx);
    *out = res;
    return BM_REPORT_OK;
}

void bm_alerts_result_destroy(bm_alerts_result_t **res_p)
{
    bm_alerts_result_t *res = *res_p;
    if (!res)
        return;
    bm_q_ref_destroy(&res->ref);
    free(res->alerts);
    free(res);
    *res_p = NULL;
}
