/* scorecard: one branch's scorecard (scorecard.h).  Owns the result it
 * returns. */
#include "scorecard.h"

#include "yardstick.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The chain's value of metric m in period p: the sum of every visible
 * branch.  0 when it has none. */
static int s_chain_value(const bm_metric_t *m, const bm_q_grid_t *g, int nbranches, int p,
                         double *value)
{
    size_t nb = bm_q_hist_buckets(g);
    bm_q_agg_t chain;
    uint32_t *h = nb ? calloc(nb, sizeof *h) : NULL;
    memset(&chain, 0, sizeof chain);
    chain.hist = h;
    for (int x = 0; x < nbranches; x++)
        bm_q_agg_add(&chain, bm_q_cell(g, x, p), nb);
    bm_estimate_t ec;
    int ok = bm_q_estimate(m, &chain, nb, &ec, NULL) == 0 && ec.has_value;
    if (ok)
        *value = ec.value;
    free(h);
    return ok;
}

/* A scoped login's chain value of metric m in period cur: the whole
 * chain's, from the database's yardstick.  0 when suppressed or without
 * data; -1 with err on a database error. */
static int s_chain_yard(bm_report_ctx_t *ctx, const bm_metric_t *m, bm_period_kind_t kind,
                        int64_t cur, double *value, bm_err_t *err)
{
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    bm_yard_t *y = bm_yard_fetch(ctx->conn, ctx->ref, m, kind, cur, 1, &f, err);
    if (!y)
        return -1;
    bm_estimate_t ec;
    int ok = !bm_yard_suppressed(y, -1) &&
             bm_q_estimate(m, bm_yard_cell(y, -1, 0), y->nb, &ec, NULL) == 0 && ec.has_value;
    if (ok)
        *value = ec.value;
    bm_yard_destroy(&y);
    return ok;
}

/* One metric's row: current and previous estimate, the chain and the trend. */
static int s_metric_row(bm_report_ctx_t *ctx, bm_scorecard_result_t *res,
                        bm_scorecard_metric_t *row, bm_err_t *err)
{
    const bm_metric_t *m = row->metric;
    int b = res->branch, np = res->periods;
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    bm_q_grid_t *g = bm_q_fetch(ctx->conn, ctx->ref, m, res->kind, res->first, np, &f, err);
    if (!g)
        return -1;
    size_t nb = bm_q_hist_buckets(g);
    bm_estimate_t e;
    bm_err_t why;
    /* Every visible branch's within-branch spread, per period. */
    bm_pool_t *pool = calloc((size_t)np, sizeof *pool);
    if (!pool) {
        bm_q_grid_destroy(&g);
        return bm_err_set(err, "out of memory");
    }
    for (int x = 0; x < ctx->ref->nbranches; x++)
        for (int p = 0; p < np; p++)
            bm_q_pool_add(m, &pool[p], bm_q_cell(g, x, p));
    if (bm_q_estimate_pooled(m, bm_q_cell(g, b, np - 1), nb, &pool[np - 1], &e, &why) < 0 ||
        bm_q_estimate_pooled(m, bm_q_cell(g, b, np - 2), nb, &pool[np - 2], &row->prev, &why) <
            0) {
        free(pool);
        row->failed = 1;
        snprintf(row->error, sizeof row->error, "%s", why.msg);
        bm_q_grid_destroy(&g);
        return 0;
    }
    double min_n = bm_report_ctx_min_n(ctx, m);
    row->cur = bm_figure(&e, min_n);
    if (!res->status.partial)
        row->change.test = bm_q_change_test(m, bm_q_cell(g, b, np - 1), bm_q_cell(g, b, np - 2),
                                            &e, &row->prev, min_n);
    row->has_chain = ctx->scope_limited
                         ? s_chain_yard(ctx, m, res->kind, bm_period_add(res->kind, res->first,
                                                                          np - 1),
                                        &row->chain, err)
                         : s_chain_value(m, g, ctx->ref->nbranches, np - 1, &row->chain);
    if (row->has_chain < 0) {
        free(pool);
        bm_q_grid_destroy(&g);
        return -1;
    }
    for (int p = 0; p < np; p++)
        if (bm_q_estimate_pooled(m, bm_q_cell(g, b, p), nb, &pool[p], &row->trend[p], NULL) < 0)
            row->trend[p].has_value = 0;
    free(pool);
    bm_q_grid_destroy(&g);
    return 0;
}

static int s_metric_rows(bm_report_ctx_t *ctx, bm_scorecard_result_t *res, bm_err_t *err)
{
    size_t n = 0;
    while (bm_metrics[n].name)
        n++;
    res->metrics = calloc(n, sizeof *res->metrics);
    if (!res->metrics)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        bm_scorecard_metric_t *row = &res->metrics[res->nmetrics++];
        row->metric = &bm_metrics[i];
        row->trend = calloc((size_t)res->periods, sizeof *row->trend);
        if (!row->trend)
            return bm_err_set(err, "out of memory");
        if (s_metric_row(ctx, res, row, err) < 0)
            return -1;
    }
    return 0;
}

/* The pooled within-branch variance of one section over every branch of
 * the breakdown, per period (0 previous, 1 current). */
static void s_section_pool(const bm_q_bd_row_t *rows, int n, const bm_q_ref_t *ref,
                           const char *key, bm_pool_t pool[2])
{
    memset(pool, 0, 2 * sizeof *pool);
    for (int x = 0; x < ref->nbranches; x++)
        for (int p = 0; p < 2; p++) {
            bm_q_agg_t a;
            bm_q_bd_sum(rows, n, ref, x, -1, 0, p, key, &a);
            bm_pool_add(&pool[p], a.n, a.sum, a.sumsq);
        }
}

/* Section scores of the branch, current against previous period. */
static int s_section_rows(bm_report_ctx_t *ctx, bm_scorecard_result_t *res, bm_err_t *err)
{
    bm_q_bd_row_t *rows;
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    int64_t prev = bm_period_add(res->kind, res->cur, -1);
    int n = bm_q_breakdown(ctx->conn, ctx->ref, BM_BD_SECTIONS, res->kind, prev, 2, &f, &rows,
                           err);
    if (n < 0)
        return -1;
    res->section_min_n = bm_report_ctx_min_n(ctx, bm_metric_find("ms_score"));
    const char *keys[BM_Q_MAX_KEYS];
    int nk = bm_q_bd_keys(rows, n, keys, BM_Q_MAX_KEYS);
    bm_q_keys_sort(keys, nk);
    res->sections = calloc((size_t)(nk ? nk : 1), sizeof *res->sections);
    for (int k = 0; res->sections && k < nk; k++) {
        bm_q_agg_t a1, a0;
        bm_q_bd_sum(rows, n, ctx->ref, res->branch, -1, 0, 1, keys[k], &a1);
        bm_q_bd_sum(rows, n, ctx->ref, res->branch, -1, 0, 0, keys[k], &a0);
        if (a1.n == 0 && a0.n == 0)
            continue;
        bm_pool_t pool[2];
        s_section_pool(rows, n, ctx->ref, keys[k], pool);
        bm_estimate_t e1 = bm_est_mean_pooled(a1.n, a1.sum, a1.sumsq, &pool[1]);
        bm_estimate_t e0 = bm_est_mean_pooled(a0.n, a0.sum, a0.sumsq, &pool[0]);
        bm_est_clamp(&e1, 0, 100);
        bm_est_clamp(&e0, 0, 100);
        bm_scorecard_section_t *s = &res->sections[res->nsections++];
        snprintf(s->section, sizeof s->section, "%s", keys[k]);
        s->cur = bm_figure(&e1, res->section_min_n);
        s->prev = e0;
        if (!res->status.partial && !bm_low_sample(e1.n, res->section_min_n) &&
            !bm_low_sample(e0.n, res->section_min_n))
            s->change.test = bm_test_diff(&e1, &e0);
    }
    free(rows);
    return res->sections ? 0 : bm_err_set(err, "out of memory");
}

/* A count breakdown of the branch (complaint causes, lost reasons):
 * current and previous period counts of every key with any. */
static int s_count_rows(bm_report_ctx_t *ctx, bm_scorecard_result_t *res, bm_breakdown_t what,
                        bm_scorecard_counts_t slot, bm_err_t *err)
{
    bm_q_bd_row_t *rows;
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    int64_t prev = bm_period_add(res->kind, res->cur, -1);
    int n = bm_q_breakdown(ctx->conn, ctx->ref, what, res->kind, prev, 2, &f, &rows, err);
    if (n < 0)
        return -1;
    const char *keys[BM_Q_MAX_KEYS];
    int nk = bm_q_bd_keys(rows, n, keys, BM_Q_MAX_KEYS);
    bm_q_keys_sort(keys, nk);
    bm_scorecard_count_t *out = calloc((size_t)(nk ? nk : 1), sizeof *out);
    for (int k = 0; out && k < nk; k++) {
        bm_q_agg_t a1, a0;
        bm_q_bd_sum(rows, n, ctx->ref, res->branch, -1, 0, 1, keys[k], &a1);
        bm_q_bd_sum(rows, n, ctx->ref, res->branch, -1, 0, 0, keys[k], &a0);
        if (a1.x == 0 && a0.x == 0)
            continue;
        bm_scorecard_count_t *c = &out[res->ncounts[slot]++];
        snprintf(c->key, sizeof c->key, "%s", keys[k]);
        c->count = (long long)a1.x;
        c->previous = (long long)a0.x;
    }
    free(rows);
    res->counts[slot] = out;
    return out ? 0 : bm_err_set(err, "out of memory");
}

/* Benjamini-Hochberg over every test the scorecard shows: the metrics'
 * and sections' changes and the gaps' significance. */
static int s_adjust(bm_scorecard_result_t *res, bm_err_t *err)
{
    size_t n = res->nmetrics + res->nsections + res->gaps.nrows, k = 0;
    bm_verdict_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < res->nmetrics; i++)
        v[k++] = &res->metrics[i].change;
    for (size_t i = 0; i < res->nsections; i++)
        v[k++] = &res->sections[i].change;
    for (size_t i = 0; i < res->gaps.nrows; i++)
        v[k++] = &res->gaps.rows[i].significant;
    res->ntests = bm_verdicts_adjust(v, n);
    free(v);
    return res->ntests < 0 ? bm_err_set(err, "out of memory") : 0;
}

static int s_compute(bm_report_ctx_t *ctx, bm_scorecard_result_t *res, bm_err_t *err)
{
    if (bm_report_ctx_period_st(ctx, NULL, &res->cur, &res->status, err) < 0)
        return -1;
    res->first = bm_period_add(res->kind, res->cur, -(res->periods - 1));
    if (s_metric_rows(ctx, res, err) < 0 || s_section_rows(ctx, res, err) < 0 ||
        bm_gaps_compute(ctx, res->cur, res->branch, &res->gaps, err) < 0)
        return -1;
    if (s_count_rows(ctx, res, BM_BD_COMPLAINT_CATEGORY, BM_SC_COMPLAINT_CATEGORIES, err) < 0 ||
        s_count_rows(ctx, res, BM_BD_CONTACT_POINT, BM_SC_CONTACT_POINTS, err) < 0 ||
        s_count_rows(ctx, res, BM_BD_LOST_REASON, BM_SC_LOST_REASONS, err) < 0)
        return -1;
    return s_adjust(res, err);
}

int bm_scorecard_compute(bm_report_ctx_t *ctx, bm_scorecard_result_t **out, bm_err_t *err)
{
    bm_scorecard_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    res->branch = ctx->branch;
    res->kind = ctx->rq->period;
    res->periods = ctx->rq->periods;
    if (s_compute(ctx, res, err) < 0) {
        bm_scorecard_result_destroy(&res);
        return BM_REPORT_FAILED;
    }
    res->ref = bm_report_ctx_take_ref(ctx);
    *out = res;
    return BM_REPORT_OK;
}

void bm_scorecard_result_destroy(bm_scorecard_result_t **res_p)
{
    bm_scorecard_result_t *res = *res_p;
    if (!res)
        return;
    bm_q_ref_destroy(&res->ref);
    for (size_t i = 0; i < res->nmetrics; i++)
        free(res->metrics[i].trend);
    free(res->metrics);
    free(res->sections);
    bm_gaps_free(&res->gaps);
    for (int k = 0; k < BM_SC_NCOUNTS; k++)
        free(res->counts[k]);
    free(res);
    *res_p = NULL;
}
