/* rank: the ranking report (rank.h).  Owns the result it returns. */
#include "rank.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The estimates of one branch, and its slot among the entries to rank:
 * ranked ones fill the front, the others (no value, low n) the back. */
typedef struct {
    bm_estimate_t cur, prev;
    bm_test_t change;
} s_branch_t;

/* The pooled within-branch variance of the branches in scope, per period
 * (index 0 previous, 1 current): mystery-shopping scores only. */
static void s_pools(bm_report_ctx_t *ctx, const bm_q_grid_t *g, bm_pool_t pool[2])
{
    memset(pool, 0, 2 * sizeof *pool);
    for (int b = 0; b < ctx->ref->nbranches; b++)
        if (bm_report_ctx_in_scope(ctx, b))
            for (int p = 0; p < 2; p++)
                bm_q_pool_add(ctx->rq->metric, &pool[p], bm_q_cell(g, b, p));
}

/* Estimates every branch in scope; fills entries (ranked at the front,
 * *nranked of them; the others at the back, *nunranked). */
static int s_estimate_branches(bm_report_ctx_t *ctx, const bm_q_grid_t *g,
                               const bm_rank_result_t *res, s_branch_t *br,
                               bm_rank_entry_t *entries, size_t *nranked, size_t *nunranked,
                               bm_err_t *err)
{
    const bm_metric_t *m = ctx->rq->metric;
    size_t nb = bm_q_hist_buckets(g);
    int n = ctx->ref->nbranches;
    bm_pool_t pool[2];
    s_pools(ctx, g, pool);
    for (int b = 0; b < n; b++) {
        if (!bm_report_ctx_in_scope(ctx, b))
            continue;
        s_branch_t *x = &br[b];
        if (bm_q_estimate_pooled(m, bm_q_cell(g, b, 1), nb, &pool[1], &x->cur, err) < 0 ||
            bm_q_estimate_pooled(m, bm_q_cell(g, b, 0), nb, &pool[0], &x->prev, err) < 0)
            return -1;
        if (!res->status.partial)
            x->change = bm_q_change_test(m, bm_q_cell(g, b, 1), bm_q_cell(g, b, 0), &x->cur,
                                         &x->prev, res->min_n);
        bm_rank_entry_t *slot = (x->cur.has_value && !bm_low_sample(x->cur.n, res->min_n))
                                    ? &entries[(*nranked)++]
                                    : &entries[n - 1 - (*nunranked)++];
        slot->est = x->cur;
        slot->key = (size_t)b;
    }
    return 0;
}

/* Orders the entries: ranked best first, then the unranked in input
 * order (they were filled from the back), and turns them into rows. */
static int s_fill_rows(bm_rank_result_t *res, bm_rank_entry_t *entries, size_t ranked,
                       size_t unranked, int n, const s_branch_t *br)
{
    int rc = bm_rank_entries(entries, ranked, res->metric->higher_better);
    bm_rank_entry_t *tail = entries + n - unranked;
    for (size_t i = 0; i < unranked / 2; i++) {
        bm_rank_entry_t tmp = tail[i];
        tail[i] = tail[unranked - 1 - i];
        tail[unranked - 1 - i] = tmp;
    }
    for (size_t i = 0; i < ranked + unranked; i++) {
        const bm_rank_entry_t *en = i < ranked ? &entries[i] : &tail[i - ranked];
        bm_rank_row_t *row = &res->rows[res->nrows++];
        int b = (int)en->key;
        row->branch = b;
        row->ranked = i < ranked;
        if (row->ranked) {
            row->rank_lo = en->rank_lo;
            row->rank_hi = en->rank_hi;
            row->group = en->group;
            row->better = en->better;
            row->worse = en->worse;
        }
        row->cur = bm_figure(&en->est, res->min_n);
        row->prev = br[b].prev;
        row->change.test = br[b].change;
    }
    return rc;
}

static int s_branch_rows(bm_report_ctx_t *ctx, const bm_q_grid_t *g, bm_rank_result_t *res,
                         bm_err_t *err)
{
    int n = ctx->ref->nbranches;
    size_t cap = (size_t)(n ? n : 1);
    bm_rank_entry_t *entries = calloc(cap, sizeof *entries);
    s_branch_t *br = calloc(cap, sizeof *br);
    res->rows = calloc(cap, sizeof *res->rows);
    int rc = -1;
    if (!entries || !br || !res->rows) {
        bm_err_set(err, "out of memory");
    } else {
        size_t ranked = 0, unranked = 0;
        rc = s_estimate_branches(ctx, g, res, br, entries, &ranked, &unranked, err);
        if (rc == 0 && s_fill_rows(res, entries, ranked, unranked, n, br) < 0)
            rc = bm_err_set(err, "out of memory");
    }
    free(entries);
    free(br);
    return rc;
}

/* The aggregate line of region r (-1: the chain, from the server's totals)
 * over the two periods. */
static int s_scope_row(bm_report_ctx_t *ctx, const bm_q_grid_t *g, int r, bm_rank_result_t *res,
                       bm_err_t *err)
{
    const bm_metric_t *m = res->metric;
    size_t nb = bm_q_hist_buckets(g);
    bm_q_agg_t a[2];
    uint32_t *h = nb ? calloc(2 * nb, sizeof *h) : NULL;
    memset(a, 0, sizeof a);
    if (h) {
        a[0].hist = h;
        a[1].hist = h + nb;
    }
    for (int b = 0; r >= 0 && b < ctx->ref->nbranches; b++)
        if (ctx->ref->branches[b].region == r)
            for (int p = 0; p < 2; p++)
                bm_q_agg_add(&a[p], bm_q_cell(g, b, p), nb);
    for (int p = 0; r < 0 && p < 2; p++)
        bm_q_agg_add(&a[p], bm_q_total(g, p), nb);
    bm_estimate_t ec, ep;
    int ok = bm_q_estimate(m, &a[1], nb, &ec, err) == 0 &&
             bm_q_estimate(m, &a[0], nb, &ep, err) == 0;
    if (ok) {
        bm_rank_scope_t *s = &res->scopes[res->nscopes++];
        s->is_chain = r < 0;
        s->code = r < 0 ? ctx->ref->chain_code : ctx->ref->regions[r].code;
        s->cur = bm_figure(&ec, res->min_n);
        s->prev = ep;
        if (!res->status.partial)
            s->change.test = bm_q_change_test(m, &a[1], &a[0], &ec, &ep, res->min_n);
    }
    free(h);
    return ok ? 0 : -1;
}

/* The aggregate line of the chain (r < 0) or region r from the database's
 * yardstick: the whole chain's sums, or a suppressed line. */
static int s_yard_row(bm_report_ctx_t *ctx, const bm_yard_t *y, int r, bm_rank_result_t *res,
                      bm_err_t *err)
{
    const bm_metric_t *m = res->metric;
    bm_rank_scope_t *s = &res->scopes[res->nscopes++];
    s->is_chain = r < 0;
    s->code = r < 0 ? ctx->ref->chain_code : ctx->ref->regions[r].code;
    if ((s->suppressed = bm_yard_suppressed(y, r)))
        return 0;
    bm_estimate_t ec, ep;
    if (bm_q_estimate(m, bm_yard_cell(y, r, 1), y->nb, &ec, err) < 0 ||
        bm_q_estimate(m, bm_yard_cell(y, r, 0), y->nb, &ep, err) < 0)
        return -1;
    s->cur = bm_figure(&ec, res->min_n);
    s->prev = ep;
    if (!res->status.partial)
        s->change.test = bm_q_change_test(m, bm_yard_cell(y, r, 1), bm_yard_cell(y, r, 0), &ec,
                                          &ep, res->min_n);
    return 0;
}

/* A scoped login's chain-wide positions: stored runs cover the unfiltered
 * ranking with the metric's default minimum n only. */
static int s_positions(bm_report_ctx_t *ctx, const bm_yard_t *y, bm_rank_result_t *res,
                       bm_err_t *err)
{
    const bm_request_t *rq = ctx->rq;
    if (rq->channel || rq->segment || rq->section || rq->target_s != 20 ||
        res->min_n != res->metric->default_min_n) {
        res->pos_state = BM_POS_FILTERED;
        return 0;
    }
    if (bm_yard_positions(ctx->conn, ctx->ref, res->metric, res->kind, res->cur,
                          &res->positions, err) < 0)
        return -1;
    res->pos_state = res->positions.found ? BM_POS_OK : BM_POS_NO_RUN;
    if (res->positions.found && !bm_yard_suppressed(y, -1))
        res->pos_stale = bm_yard_cell(y, -1, 1)->n != res->positions.chain_n;
    return 0;
}

/* A scoped login: the chain and every region, whatever --region says (the
 * point is the yardstick), from the database's aggregates. */
static int s_yard_rows(bm_report_ctx_t *ctx, bm_rank_result_t *res, bm_err_t *err)
{
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    bm_yard_t *y = bm_yard_fetch(ctx->conn, ctx->ref, res->metric, res->kind, res->prev, 2, &f,
                                 err);
    int rc = y ? 0 : -1;
    for (int r = -1; rc == 0 && r < ctx->ref->nregions; r++)
        rc = s_yard_row(ctx, y, r, res, err);
    if (rc == 0)
        rc = s_positions(ctx, y, res, err);
    res->yardstick = 1;
    bm_yard_destroy(&y);
    return rc;
}

static int s_scope_rows(bm_report_ctx_t *ctx, const bm_q_grid_t *g, bm_rank_result_t *res,
                        bm_err_t *err)
{
    res->scopes = calloc((size_t)ctx->ref->nregions + 1, sizeof *res->scopes);
    if (!res->scopes)
        return bm_err_set(err, "out of memory");
    if (ctx->scope_limited)
        return s_yard_rows(ctx, res, err);
    for (int r = -1; r < ctx->ref->nregions; r++) {
        if (r >= 0 && ctx->region >= 0 && r != ctx->region)
            continue;
        if (s_scope_row(ctx, g, r, res, err) < 0)
            return -1;
    }
    return 0;
}

/* Benjamini-Hochberg over every change test the ranking shows. */
static int s_adjust(bm_rank_result_t *res, bm_err_t *err)
{
    size_t n = res->nrows + res->nscopes;
    bm_verdict_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < res->nrows; i++)
        v[i] = &res->rows[i].change;
    for (size_t i = 0; i < res->nscopes; i++)
        v[res->nrows + i] = &res->scopes[i].change;
    res->ntests = bm_verdicts_adjust(v, n);
    free(v);
    return res->ntests < 0 ? bm_err_set(err, "out of memory") : 0;
}

int bm_rank_compute(bm_report_ctx_t *ctx, bm_rank_result_t **out, bm_err_t *err)
{
    const bm_request_t *rq = ctx->rq;
    bm_rank_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    res->metric = rq->metric;
    res->kind = rq->period;
    res->region = ctx->region;
    if ((res->has_channel = rq->channel != NULL))
        snprintf(res->channel, sizeof res->channel, "%s", rq->channel);
    if ((res->has_segment = rq->segment != NULL))
        snprintf(res->segment, sizeof res->segment, "%s", rq->segment);
    res->min_n = bm_report_ctx_min_n(ctx, rq->metric);
    bm_q_grid_t *g = NULL;
    int ok = bm_report_ctx_period_st(ctx, rq->metric, &res->cur, &res->status, err) == 0;
    if (ok) {
        res->prev = bm_period_add(rq->period, res->cur, -1);
        bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
        f.region = rq->region;      /* read only the region's rows (and chain totals) */
        g = bm_q_fetch(ctx->conn, ctx->ref, rq->metric, rq->period, res->prev, 2, &f, err);
        ok = g && s_branch_rows(ctx, g, res, err) == 0 && s_scope_rows(ctx, g, res, err) == 0 &&
             s_adjust(res, err) == 0;
    }
    bm_q_grid_destroy(&g);
    if (!ok) {
        bm_rank_result_destroy(&res);
        return BM_REPORT_FAILED;
    }
    res->ref = bm_report_ctx_take_ref(ctx);
    *out = res;
    return BM_REPORT_OK;
}

void bm_rank_result_destroy(bm_rank_result_t **res_p)
{
    bm_rank_result_t *res = *res_p;
    if (!res)
        return;
    bm_q_ref_destroy(&res->ref);
    free(res->rows);
    free(res->scopes);
    bm_yard_positions_free(&res->positions);
    free(res);
    *res_p = NULL;
}
