/* competitors: own versus competitor scores (competitors.h).  Owns the gap
 * rows and results it returns. */
#include "competitors.h"

#include "yardstick.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What the gap rows of one scope are computed from: the period's section
 * breakdowns and overall grids of own and competitor outlets, and the
 * keys (index 0 = overall, then the sections of either side, sorted). */
typedef struct {
    bm_q_bd_row_t *own, *comp;
    int no, nc;
    bm_q_grid_t *go, *gc;
    const char *keys[BM_Q_MAX_KEYS + 1];
    int nk;
    bm_q_agg_t *ao, *ac;        /* per key: the scope's own and competitors' sums */
    double min_n;
    int64_t cur;                /* the period */
} s_gapdata_t;

static void s_gapdata_free(s_gapdata_t *d)
{
    free(d->own);
    free(d->comp);
    bm_q_grid_destroy(&d->go);
    bm_q_grid_destroy(&d->gc);
    free(d->ao);
    free(d->ac);
}

/* Keys: "" (overall) first, then every section of either side, sorted. */
static void s_gapdata_keys(s_gapdata_t *d)
{
    const char *k1[BM_Q_MAX_KEYS], *k2[BM_Q_MAX_KEYS];
    int n1 = bm_q_bd_keys(d->own, d->no, k1, BM_Q_MAX_KEYS);
    int n2 = bm_q_bd_keys(d->comp, d->nc, k2, BM_Q_MAX_KEYS);
    d->keys[0] = "";
    d->nk = 1;
    for (int i = 0; i < n1 + n2 && d->nk <= BM_Q_MAX_KEYS; i++) {
        const char *k = i < n1 ? k1[i] : k2[i - n1];
        int seen = 0;
        for (int j = 1; j < d->nk && !seen; j++)
            seen = !strcmp(d->keys[j], k);
        if (!seen)
            d->keys[d->nk++] = k;
    }
    bm_q_keys_sort(d->keys + 1, d->nk - 1);
}

static int s_gapdata_load(bm_report_ctx_t *ctx, int64_t cur, s_gapdata_t *d, bm_err_t *err)
{
    memset(d, 0, sizeof *d);
    d->cur = cur;
    bm_q_filter_t fo = bm_report_ctx_filter(ctx, 0), fc = bm_report_ctx_filter(ctx, 1);
    fo.section = fc.section = "";
    const bm_metric_t *ms = bm_metric_find("ms_score");
    bm_period_kind_t kind = ctx->rq->period;
    d->min_n = bm_report_ctx_min_n(ctx, ms);
    if ((d->no = bm_q_breakdown(ctx->conn, ctx->ref, BM_BD_SECTIONS, kind, cur, 1, &fo, &d->own,
                                err)) < 0)
        return -1;
    if ((d->nc = bm_q_breakdown(ctx->conn, ctx->ref, BM_BD_SECTIONS, kind, cur, 1, &fc,
                                &d->comp, err)) < 0 ||
        !(d->go = bm_q_fetch(ctx->conn, ctx->ref, ms, kind, cur, 1, &fo, err)) ||
        !(d->gc = bm_q_fetch(ctx->conn, ctx->ref, ms, kind, cur, 1, &fc, err)))
        return -1;
    s_gapdata_keys(d);
    d->ao = calloc((size_t)d->nk, sizeof *d->ao);
    d->ac = calloc((size_t)d->nk, sizeof *d->ac);
    if (!d->ao || !d->ac)
        return bm_err_set(err, "out of memory");
    return 0;
}

static bm_gap_row_t *s_gaps_add(bm_gaps_t *gaps)
{
    if (gaps->nrows == gaps->cap) {
        size_t cap = gaps->cap ? 2 * gaps->cap : 64;
        bm_gap_row_t *rows = realloc(gaps->rows, cap * sizeof *rows);
        if (!rows)
            return NULL;
        gaps->rows = rows;
        gaps->cap = cap;
    }
    bm_gap_row_t *row = &gaps->rows[gaps->nrows++];
    memset(row, 0, sizeof *row);
    return row;
}

/* The gap of one key: own and competitors' means, the difference and its
 * 95% Welch interval (scores are percentages: a gap cannot pass +-100). */
static void s_gap_figures(bm_gap_row_t *row, const bm_q_agg_t *own, const bm_q_agg_t *comp,
                          double min_n)
{
    bm_estimate_t a = bm_est_mean(own->n, own->sum, own->sumsq);
    bm_estimate_t b = bm_est_mean(comp->n, comp->sum, comp->sumsq);
    bm_est_clamp(&a, 0, 100);
    bm_est_clamp(&b, 0, 100);
    row->own = a;
    row->comp = b;
    if (a.has_value && b.has_value) {
        row->has_gap = 1;
        row->gap = a.value - b.value;
        if (a.n >= 2 && b.n >= 2) {
            double v1 = a.se * a.se, v0 = b.se * b.se;
            double se = sqrt(v1 + v0);
            double df = se > 0 ? (v1 + v0) * (v1 + v0) /
                                     (v1 * v1 / (a.n - 1) + v0 * v0 / (b.n - 1))
                               : 1e9;
            double tq = bm_t95(df);
            row->has_ci = 1;
            row->gap_lo = fmax(row->gap - tq * se, -100);
            row->gap_hi = fmin(row->gap + tq * se, 100);
        }
    }
    row->low_n = a.n < min_n || b.n < min_n;
    /* No verdict from a side flagged too small (n = 2 against 20). */
    if (row->has_ci && !row->low_n)
        row->significant.test = bm_test_diff(&a, &b);
}

/* Rows of one scope: one per key with data on either side.  `proto`
 * carries the scope and versus fields. */
static int s_gap_rows(const s_gapdata_t *d, const bm_gap_row_t *proto, bm_gaps_t *gaps,
                      bm_err_t *err)
{
    for (int k = 0; k < d->nk; k++) {
        if (d->ao[k].n == 0 && d->ac[k].n == 0)
            continue;
        bm_gap_row_t *row = s_gaps_add(gaps);
        if (!row)
            return bm_err_set(err, "out of memory");
        *row = *proto;
        snprintf(row->section, sizeof row->section, "%s", d->keys[k]);
        s_gap_figures(row, &d->ao[k], &d->ac[k], d->min_n);
    }
    return 0;
}

/* Branch b against the competitor outlets of its region, or within the
 * radius when both have coordinates. */
static int s_branch_gaps(bm_report_ctx_t *ctx, s_gapdata_t *d, int b, bm_gaps_t *gaps,
                         bm_err_t *err)
{
    const bm_q_ref_t *ref = ctx->ref;
    const bm_q_outlet_t *br = &ref->branches[b];
    double radius = ctx->rq->radius_km;
    bm_gap_row_t proto;
    memset(&proto, 0, sizeof proto);
    memset(d->ao, 0, (size_t)d->nk * sizeof *d->ao);
    memset(d->ac, 0, (size_t)d->nk * sizeof *d->ac);
    int by_radius = radius > 0 && br->has_geo;
    for (int x = 0; x < ref->ncompetitors; x++) {
        const bm_q_outlet_t *co = &ref->competitors[x];
        int in = by_radius ? co->has_geo &&
                                 bm_haversine_km(br->lat, br->lon, co->lat, co->lon) <= radius
                           : co->region == br->region;
        if (!in)
            continue;
        proto.outlets++;
        bm_q_agg_add(&d->ac[0], bm_q_cell(d->gc, x, 0), 0);
        for (int k = 1; k < d->nk; k++) {
            bm_q_agg_t s;
            bm_q_bd_sum(d->comp, d->nc, ref, x, -1, 1, 0, d->keys[k], &s);
            bm_q_agg_add(&d->ac[k], &s, 0);
        }
    }
    bm_q_agg_add(&d->ao[0], bm_q_cell(d->go, b, 0), 0);
    for (int k = 1; k < d->nk; k++)
        bm_q_bd_sum(d->own, d->no, ref, b, -1, 0, 0, d->keys[k], &d->ao[k]);
    proto.scope = BM_GAP_BRANCH;
    proto.index = b;
    proto.versus = by_radius ? BM_GAP_VS_RADIUS : BM_GAP_VS_REGION;
    proto.versus_region = br->region;
    proto.radius_km = radius;
    return s_gap_rows(d, &proto, gaps, err);
}

/* A scoped login's own side of the chain row: the whole chain's sums from
 * the database's yardstick (yardstick.h), overall and per section; *hidden
 * when the chain is suppressed for the caller.  0, or -1 with err. */
static int s_chain_yard(bm_report_ctx_t *ctx, s_gapdata_t *d, int *hidden, bm_err_t *err)
{
    const bm_metric_t *ms = bm_metric_find("ms_score");
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    for (int k = 0; k < d->nk; k++) {
        f.section = d->keys[k];
        bm_yard_t *y = bm_yard_fetch(ctx->conn, ctx->ref, ms, ctx->rq->period, d->cur, 1, &f,
                                     err);
        if (!y)
            return -1;
        *hidden = bm_yard_suppressed(y, -1);
        d->ao[k] = *bm_yard_cell(y, -1, 0);     /* means: no histogram to share */
        bm_yard_destroy(&y);
    }
    return 0;
}

/* Region r (-1: the chain) against the competitors of the region (all). */
static int s_region_gaps(bm_report_ctx_t *ctx, s_gapdata_t *d, int r, bm_gaps_t *gaps,
                         bm_err_t *err)
{
    const bm_q_ref_t *ref = ctx->ref;
    bm_gap_row_t proto;
    memset(&proto, 0, sizeof proto);
    memset(d->ao, 0, (size_t)d->nk * sizeof *d->ao);
    memset(d->ac, 0, (size_t)d->nk * sizeof *d->ac);
    for (int x = 0; x < ref->ncompetitors; x++)
        if (r < 0 || ref->competitors[x].region == r) {
            proto.outlets++;
            bm_q_agg_add(&d->ac[0], bm_q_cell(d->gc, x, 0), 0);
        }
    for (int b = 0; b < ref->nbranches; b++)
        if (r < 0 || ref->branches[b].region == r)
            bm_q_agg_add(&d->ao[0], bm_q_cell(d->go, b, 0), 0);
    for (int k = 1; k < d->nk; k++) {
        bm_q_bd_sum(d->own, d->no, ref, -1, r, 0, 0, d->keys[k], &d->ao[k]);
        bm_q_bd_sum(d->comp, d->nc, ref, -1, r, 1, 0, d->keys[k], &d->ac[k]);
    }
    int hidden = 0;
    if (r < 0 && ctx->scope_limited && s_chain_yard(ctx, d, &hidden, err) < 0)
        return -1;
    if (hidden)
        return 0;
    proto.scope = r < 0 ? BM_GAP_CHAIN : BM_GAP_REGION;
    proto.index = r;
    proto.versus = r < 0 ? BM_GAP_VS_ALL : BM_GAP_VS_REGION;
    proto.versus_region = r;
    return s_gap_rows(d, &proto, gaps, err);
}

int bm_gaps_compute(bm_report_ctx_t *ctx, int64_t cur, int only_branch, bm_gaps_t *gaps,
                    bm_err_t *err)
{
    s_gapdata_t d;
    int rc = s_gapdata_load(ctx, cur, &d, err);
    for (int b = 0; rc == 0 && b < ctx->ref->nbranches; b++) {
        if (only_branch >= 0 ? b != only_branch
                             : (!bm_report_ctx_in_scope(ctx, b) ||
                                (ctx->branch >= 0 && b != ctx->branch)))
            continue;
        rc = s_branch_gaps(ctx, &d, b, gaps, err);
    }
    /* Regions, then the chain. */
    for (int i = 0; rc == 0 && only_branch < 0 && ctx->branch < 0 && i <= ctx->ref->nregions;
         i++) {
        int r = i < ctx->ref->nregions ? i : -1;
        if (r >= 0 && ctx->region >= 0 && r != ctx->region)
            continue;
        rc = s_region_gaps(ctx, &d, r, gaps, err);
    }
    s_gapdata_free(&d);
    return rc;
}

void bm_gaps_free(bm_gaps_t *gaps)
{
    free(gaps->rows);
    memset(gaps, 0, sizeof *gaps);
}

/* Benjamini-Hochberg over the gap table's tests. */
static int s_adjust(bm_competitors_result_t *res, bm_err_t *err)
{
    size_t n = res->gaps.nrows;
    bm_verdict_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return bm_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = &res->gaps.rows[i].significant;
    res->ntests = bm_verdicts_adjust(v, n);
    free(v);
    return res->ntests < 0 ? bm_err_set(err, "out of memory") : 0;
}

int bm_competitors_compute(bm_report_ctx_t *ctx, bm_competitors_result_t **out, bm_err_t *err)
{
    bm_competitors_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    const bm_metric_t *ms = bm_metric_find("ms_score");
    res->kind = ctx->rq->period;
    res->min_n = bm_report_ctx_min_n(ctx, ms);
    if (bm_report_ctx_period_st(ctx, ms, &res->cur, &res->status, err) < 0 ||
        bm_gaps_compute(ctx, res->cur, -1, &res->gaps, err) < 0 ||
        s_adjust(res, err) < 0) {
        bm_competitors_result_destroy(&res);
        return BM_REPORT_FAILED;
    }
    res->ref = bm_report_ctx_take_ref(ctx);
    *out = res;
    return BM_REPORT_OK;
}

void bm_competitors_result_destroy(bm_competitors_result_t **res_p)
{
    bm_competitors_result_t *res = *res_p;
    if (!res)
        return;
    bm_q_ref_destroy(&res->ref);
    bm_gaps_free(&res->gaps);
    free(res);
    *res_p = NULL;
}
