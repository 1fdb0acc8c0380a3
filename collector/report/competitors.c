/* competitors: own versus competitor scores (competitors.h), per channel and
 * over the channels both sides have, competitor outlets as clusters.  Owns
 * the gap rows and results it returns. */
#include "competitors.h"

#include "yardstick.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const bm_gap_channels[BM_GAP_CHANNELS] = {"visit", "call", "online"};

/* ---- the figures of one gap (pure) -------------------------------------- */

bm_estimate_t bm_gap_comp_estimate(const bm_gap_cell_t *cells, size_t ncells,
                                   const double w[BM_GAP_CHANNELS], int *clusters)
{
    bm_estimate_t e;
    memset(&e, 0, sizeof e);
    *clusters = 0;
    double nc[BM_GAP_CHANNELS] = {0}, sc[BM_GAP_CHANNELS] = {0}, qc[BM_GAP_CHANNELS] = {0};
    for (size_t i = 0; i < ncells; i++) {
        int c = cells[i].channel;
        assert(c >= 0 && c < BM_GAP_CHANNELS);
        if (!(w[c] > 0))
            continue;
        nc[c] += cells[i].n;
        sc[c] += cells[i].sum;
        qc[c] += cells[i].sumsq;
    }
    double value = 0, n = 0, mean[BM_GAP_CHANNELS] = {0};
    for (int c = 0; c < BM_GAP_CHANNELS; c++) {
        if (!(w[c] > 0))
            continue;
        if (!(nc[c] > 0))
            return e;       /* a weighted channel without evaluations */
        mean[c] = sc[c] / nc[c];
        value += w[c] * mean[c];
        n += nc[c];
    }
    if (!(n > 0))
        return e;
    e.has_value = 1;
    e.value = value;
    e.n = n;
    /* psi_g: outlet g's contribution to the estimate's deviation (its
     * linearisation); cells of one outlet are adjacent. */
    double ss = 0, psi = 0;
    int g = 0, outlet = 0;
    for (size_t i = 0; i < ncells; i++) {
        int c = cells[i].channel;
        if (!(w[c] > 0) || !(cells[i].n > 0))
            continue;
        if (g == 0 || cells[i].outlet != outlet) {
            ss += psi * psi;
            psi = 0;
            outlet = cells[i].outlet;
            g++;
        }
        psi += w[c] * (cells[i].sum - cells[i].n * mean[c]) / nc[c];
    }
    ss += psi * psi;
    *clusters = g;
    if (g < 2)
        return e;           /* one outlet: its visits say nothing of others */
    double v_iid = 0;
    for (int c = 0; c < BM_GAP_CHANNELS; c++)
        if (w[c] > 0 && nc[c] >= 2) {
            double s2 = (qc[c] - sc[c] * sc[c] / nc[c]) / (nc[c] - 1);
            v_iid += w[c] * w[c] * (s2 > 0 ? s2 : 0) / nc[c];
        }
    /* CR1: G/(G-1) is the whole small-sample factor for a mean (K = 1). */
    double v_cr = (double)g / (g - 1) * ss;
    double v = v_cr > v_iid ? v_cr : v_iid;
    e.se = sqrt(v);
    e.df = g - 1;
    e.sd = e.se * sqrt(n);
    double t = bm_t95(e.df);
    e.has_ci = 1;
    e.lo = e.value - t * e.se;
    e.hi = e.value + t * e.se;
    return e;
}

/* The gap from its two sides: the difference and its 95% Welch interval
 * (scores are percentages: a gap cannot pass +-100), with the
 * Welch-Satterthwaite df from the own side's n - 1 and the competitors'
 * G - 1. */
static void s_gap_figures(bm_gap_row_t *row, bm_estimate_t a, bm_estimate_t b, double min_n)
{
    bm_est_clamp(&a, 0, 100);
    bm_est_clamp(&b, 0, 100);
    row->own = a;
    row->comp = b;
    if (a.has_value && b.has_value) {
        row->has_gap = 1;
        row->gap = a.value - b.value;
        if (a.n >= 2 && b.has_ci) {
            double v1 = a.se * a.se, v0 = b.se * b.se;
            double se = sqrt(v1 + v0);
            double df = se > 0 ? (v1 + v0) * (v1 + v0) / (v1 * v1 / a.df + v0 * v0 / b.df)
                               : 1e9;
            double tq = bm_t95(df);
            row->has_ci = 1;
            row->gap_lo = fmax(row->gap - tq * se, -100);
            row->gap_hi = fmin(row->gap + tq * se, 100);
        }
    }
    row->low_n = a.n < min_n || b.n < min_n;
    /* No verdict from a side flagged too small (n = 2 against 20), nor from
     * a competitor side of one outlet. */
    if (row->has_ci && !row->low_n)
        row->significant.test = bm_test_diff(&a, &b);
}

unsigned bm_gap_key_rows(const bm_q_agg_t own[BM_GAP_CHANNELS], const bm_gap_cell_t *cells,
                         size_t ncells, double min_n, bm_gap_cell_t *scratch,
                         bm_gap_row_t out[BM_GAP_CHANNELS + 1])
{
    double comp_n[BM_GAP_CHANNELS] = {0};
    for (size_t i = 0; i < ncells; i++)
        comp_n[cells[i].channel] += cells[i].n;
    unsigned filled = 0, common = 0;
    double own_common = 0;
    for (int c = 0; c < BM_GAP_CHANNELS; c++) {
        bm_gap_row_t *row = &out[1 + c];
        memset(row, 0, sizeof *row);
        if (own[c].n > 0 && comp_n[c] > 0) {
            common |= 1u << c;
            own_common += own[c].n;
        }
        if (!(own[c].n > 0) && !(comp_n[c] > 0))
            continue;
        double w[BM_GAP_CHANNELS] = {0};
        w[c] = 1;
        size_t k = 0;
        for (size_t i = 0; i < ncells; i++)
            if (cells[i].channel == c)
                scratch[k++] = cells[i];
        row->channels = 1u << c;
        s_gap_figures(row, bm_est_mean(own[c].n, own[c].sum, own[c].sumsq),
                      bm_gap_comp_estimate(scratch, k, w, &row->comp_outlets), min_n);
        filled |= 1u << (1 + c);
    }
    memset(&out[0], 0, sizeof out[0]);
    if (common & (common - 1)) {     /* two or more channels on both sides */
        double w[BM_GAP_CHANNELS] = {0}, n = 0, sum = 0, sumsq = 0;
        for (int c = 0; c < BM_GAP_CHANNELS; c++)
            if (common & (1u << c)) {
                w[c] = own[c].n / own_common;
                n += own[c].n;
                sum += own[c].sum;
                sumsq += own[c].sumsq;
            }
        out[0].channels = common;
        s_gap_figures(&out[0], bm_est_mean(n, sum, sumsq),
                      bm_gap_comp_estimate(cells, ncells, w, &out[0].comp_outlets), min_n);
        filled |= 1u;
    }
    return filled;
}

/* ---- reading and scoping ------------------------------------------------ */

/* What the gap rows of one scope are computed from: the period's scores
 * per outlet, channel and section (key "channel|section", split on load)
 * of own and competitor outlets, sorted by outlet, and the keys (index 0
 * = the overall score, then the sections of either side, sorted). */
typedef struct {
    bm_q_bd_row_t *own, *comp;
    int no, nc;
    int *rk_o, *rk_c;           /* per row: key index * BM_GAP_CHANNELS + channel, -1 */
    int *at_o, *at_c;           /* rows of outlet e: [at[e], at[e + 1]) */
    const char *keys[BM_Q_MAX_KEYS + 1];
    int nk;
    bm_q_agg_t *ao;             /* [key * BM_GAP_CHANNELS + channel]: the scope's own sums */
    bm_gap_cell_t *cells;       /* the scope's competitor cells, grouped by outlet */
    int *cell_k;                /* their key index */
    size_t ncells;
    bm_gap_cell_t *kcells, *scratch;    /* one key's cells; bm_gap_key_rows' room */
    bm_gap_row_t *krows;        /* [key * (BM_GAP_CHANNELS + 1)] */
    unsigned *kmask;            /* per key: the krows filled */
    double min_n;
    int64_t cur;                /* the period */
    const char *channel;        /* the request's --channel, "" any */
} s_gapdata_t;

static void s_gapdata_free(s_gapdata_t *d)
{
    free(d->own);
    free(d->comp);
    free(d->rk_o);
    free(d->rk_c);
    free(d->at_o);
    free(d->at_c);
    free(d->ao);
    free(d->cells);
    free(d->cell_k);
    free(d->kcells);
    free(d->scratch);
    free(d->krows);
    free(d->kmask);
}

static int s_row_cmp(const void *a, const void *b)
{
    const bm_q_bd_row_t *x = a, *y = b;
    return x->entity < y->entity ? -1 : x->entity > y->entity ? 1 : strcmp(x->key, y->key);
}

/* Sorts rows by outlet, splits each key into channel and section (the
 * section then starts after the channel's terminating NUL) and fills
 * at[0..nent]. */
static void s_rows_prepare(bm_q_bd_row_t *rows, int n, int *at, int nent)
{
    qsort(rows, (size_t)n, sizeof *rows, s_row_cmp);
    for (int i = 0; i < n; i++) {
        char *bar = strchr(rows[i].key, '|');
        if (bar)
            *bar = '\0';
        else        /* cannot happen (the statement always writes one): no
                     * channel, the row is left out */
            rows[i].key[0] = rows[i].key[1] = '\0';
    }
    memset(at, 0, (size_t)(nent + 1) * sizeof *at);
    for (int i = 0; i < n; i++)
        at[rows[i].entity + 1]++;
    for (int e = 0; e < nent; e++)
        at[e + 1] += at[e];
}

static const char *s_row_section(const bm_q_bd_row_t *row)
{
    return row->key + strlen(row->key) + 1;
}

static int s_channel_index(const char *name)
{
    for (int c = 0; c < BM_GAP_CHANNELS; c++)
        if (!strcmp(name, bm_gap_channels[c]))
            return c;
    return -1;
}

/* Keys: "" (overall) first, then every section of either side, sorted;
 * then each row's key and channel. */
static void s_gapdata_keys(s_gapdata_t *d)
{
    d->keys[0] = "";
    d->nk = 1;
    for (int i = 0; i < d->no + d->nc; i++) {
        const char *k = s_row_section(i < d->no ? &d->own[i] : &d->comp[i - d->no]);
        int seen = !k[0];
        for (int j = 1; j < d->nk && !seen; j++)
            seen = !strcmp(d->keys[j], k);
        if (!seen && d->nk <= BM_Q_MAX_KEYS)
            d->keys[d->nk++] = k;
    }
    bm_q_keys_sort(d->keys + 1, d->nk - 1);
    for (int i = 0; i < d->no + d->nc; i++) {
        const bm_q_bd_row_t *row = i < d->no ? &d->own[i] : &d->comp[i - d->no];
        int *rk = i < d->no ? &d->rk_o[i] : &d->rk_c[i - d->no];
        const char *sec = s_row_section(row);
        int c = s_channel_index(row->key), k = -1;
        for (int j = 0; j < d->nk && k < 0; j++)
            if (!strcmp(d->keys[j], sec))
                k = j;
        *rk = c < 0 || k < 0 ? -1 : k * BM_GAP_CHANNELS + c;
    }
}

static int s_gapdata_load(bm_report_ctx_t *ctx, int64_t cur, s_gapdata_t *d, bm_err_t *err)
{
    memset(d, 0, sizeof *d);
    d->cur = cur;
    bm_q_filter_t fo = bm_report_ctx_filter(ctx, 0), fc = bm_report_ctx_filter(ctx, 1);
    fo.section = fc.section = "";
    d->channel = fo.channel;
    const bm_metric_t *ms = bm_metric_find("ms_score");
    bm_period_kind_t kind = ctx->rq->period;
    d->min_n = bm_report_ctx_min_n(ctx, ms);
    const bm_q_ref_t *ref = ctx->ref;
    if ((d->no = bm_q_breakdown(ctx->conn, ref, BM_BD_CHANNEL_SECTIONS, kind, cur, 1, &fo,
                                &d->own, err)) < 0 ||
        (d->nc = bm_q_breakdown(ctx->conn, ref, BM_BD_CHANNEL_SECTIONS, kind, cur, 1, &fc,
                                &d->comp, err)) < 0)
        return -1;
    size_t nc1 = (size_t)(d->nc ? d->nc : 1);
    d->rk_o = malloc((size_t)(d->no ? d->no : 1) * sizeof *d->rk_o);
    d->rk_c = malloc(nc1 * sizeof *d->rk_c);
    d->at_o = malloc((size_t)(ref->nbranches + 1) * sizeof *d->at_o);
    d->at_c = malloc((size_t)(ref->ncompetitors + 1) * sizeof *d->at_c);
    d->cells = malloc(nc1 * sizeof *d->cells);
    d->cell_k = malloc(nc1 * sizeof *d->cell_k);
    d->kcells = malloc(nc1 * sizeof *d->kcells);
    d->scratch = malloc(nc1 * sizeof *d->scratch);
    if (!d->rk_o || !d->rk_c || !d->at_o || !d->at_c || !d->cells || !d->cell_k ||
        !d->kcells || !d->scratch)
        return bm_err_set(err, "out of memory");
    s_rows_prepare(d->own, d->no, d->at_o, ref->nbranches);
    s_rows_prepare(d->comp, d->nc, d->at_c, ref->ncompetitors);
    s_gapdata_keys(d);
    d->ao = calloc((size_t)d->nk * BM_GAP_CHANNELS, sizeof *d->ao);
    d->krows = calloc((size_t)d->nk * (BM_GAP_CHANNELS + 1), sizeof *d->krows);
    d->kmask = calloc((size_t)d->nk, sizeof *d->kmask);
    if (!d->ao || !d->krows || !d->kmask)
        return bm_err_set(err, "out of memory");
    return 0;
}

/* Starts a scope: no own sums, no competitor cells. */
static void s_scope_reset(s_gapdata_t *d)
{
    memset(d->ao, 0, (size_t)d->nk * BM_GAP_CHANNELS * sizeof *d->ao);
    d->ncells = 0;
}

/* Adds own branch b's rows to the scope's sums. */
static void s_scope_own(s_gapdata_t *d, int b)
{
    for (int i = d->at_o[b]; i < d->at_o[b + 1]; i++)
        if (d->rk_o[i] >= 0) {
            bm_q_agg_t *a = &d->ao[d->rk_o[i]];
            a->n += d->own[i].n;
            a->sum += d->own[i].sum;
            a->sumsq += d->own[i].sumsq;
        }
}

/* Adds competitor outlet x's rows to the scope's cells (grouped by
 * outlet, as they are added outlet by outlet). */
static void s_scope_comp(s_gapdata_t *d, int x)
{
    for (int i = d->at_c[x]; i < d->at_c[x + 1]; i++)
        if (d->rk_c[i] >= 0) {
            const bm_q_bd_row_t *row = &d->comp[i];
            d->cell_k[d->ncells] = d->rk_c[i] / BM_GAP_CHANNELS;
            d->cells[d->ncells++] = (bm_gap_cell_t){.outlet = x,
                                                    .channel = d->rk_c[i] % BM_GAP_CHANNELS,
                                                    .n = row->n,
                                                    .sum = row->sum,
                                                    .sumsq = row->sumsq};
        }
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

/* Rows of one scope from its sums and cells: first the channels both
 * sides have (overall, then sections), then each channel alone.  `proto`
 * carries the scope and versus fields. */
static int s_gap_rows(s_gapdata_t *d, const bm_gap_row_t *proto, bm_gaps_t *gaps,
                      bm_err_t *err)
{
    for (int k = 0; k < d->nk; k++) {
        size_t n = 0;
        for (size_t i = 0; i < d->ncells; i++)
            if (d->cell_k[i] == k)
                d->kcells[n++] = d->cells[i];
        d->kmask[k] = bm_gap_key_rows(&d->ao[k * BM_GAP_CHANNELS], d->kcells, n, d->min_n,
                                      d->scratch, &d->krows[k * (BM_GAP_CHANNELS + 1)]);
    }
    for (int block = 0; block <= BM_GAP_CHANNELS; block++)
        for (int k = 0; k < d->nk; k++) {
            if (!(d->kmask[k] & (1u << block)))
                continue;
            bm_gap_row_t *row = s_gaps_add(gaps);
            if (!row)
                return bm_err_set(err, "out of memory");
            const bm_gap_row_t *fig = &d->krows[k * (BM_GAP_CHANNELS + 1) + block];
            *row = *proto;
            snprintf(row->section, sizeof row->section, "%s", d->keys[k]);
            row->channels = fig->channels;
            row->own = fig->own;
            row->comp = fig->comp;
            row->comp_outlets = fig->comp_outlets;
            row->has_gap = fig->has_gap;
            row->gap = fig->gap;
            row->has_ci = fig->has_ci;
            row->gap_lo = fig->gap_lo;
            row->gap_hi = fig->gap_hi;
            row->significant = fig->significant;
            row->low_n = fig->low_n;
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
    s_scope_reset(d);
    int by_radius = radius > 0 && br->has_geo;
    for (int x = 0; x < ref->ncompetitors; x++) {
        const bm_q_outlet_t *co = &ref->competitors[x];
        int in = by_radius ? co->has_geo &&
                                 bm_haversine_km(br->lat, br->lon, co->lat, co->lon) <= radius
                           : co->region == br->region;
        if (!in)
            continue;
        proto.outlets++;
        s_scope_comp(d, x);
    }
    s_scope_own(d, b);
    proto.scope = BM_GAP_BRANCH;
    proto.index = b;
    proto.versus = by_radius ? BM_GAP_VS_RADIUS : BM_GAP_VS_REGION;
    proto.versus_region = br->region;
    proto.radius_km = radius;
    return s_gap_rows(d, &proto, gaps, err);
}

/* A scoped login's own side of the chain row: the whole chain's sums from
 * the database's yardstick (yardstick.h), per section and channel; *hidden
 * when the chain is suppressed for the caller.  0, or -1 with err. */
static int s_chain_yard(bm_report_ctx_t *ctx, s_gapdata_t *d, int *hidden, bm_err_t *err)
{
    const bm_metric_t *ms = bm_metric_find("ms_score");
    bm_q_filter_t f = bm_report_ctx_filter(ctx, 0);
    for (int k = 0; k < d->nk; k++)
        for (int c = 0; c < BM_GAP_CHANNELS; c++) {
            bm_q_agg_t *a = &d->ao[k * BM_GAP_CHANNELS + c];
            memset(a, 0, sizeof *a);
            if (d->channel[0] && strcmp(d->channel, bm_gap_channels[c]))
                continue;
            f.section = d->keys[k];
            f.channel = bm_gap_channels[c];
            bm_yard_t *y = bm_yard_fetch(ctx->conn, ctx->ref, ms, ctx->rq->period, d->cur, 1,
                                         &f, err);
            if (!y)
                return -1;
            *hidden = bm_yard_suppressed(y, -1);
            *a = *bm_yard_cell(y, -1, 0);       /* means: no histogram to share */
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
    s_scope_reset(d);
    for (int x = 0; x < ref->ncompetitors; x++)
        if (r < 0 || ref->competitors[x].region == r) {
            proto.outlets++;
            s_scope_comp(d, x);
        }
    for (int b = 0; b < ref->nbranches; b++)
        if (r < 0 || ref->branches[b].region == r)
            s_scope_own(d, b);
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
