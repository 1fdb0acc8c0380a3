/* rollup: reference data for reports and reading rollups into grids of
 * additive aggregates and keyed breakdowns.  Owns the grids and reference
 * arrays it returns.  Reads rollup tables only (see
 * collector/schema/migrations/002_rollups.sql); every statement is
 * parameterised. */
#include "rollup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_time.h"
#include "db.h"
#include "rollup_sql.h"

/* ---- reference data ----------------------------------------------------- */

/* Bounded copy; no snprintf: reference data copies 30,000 strings. */
static void s_copy(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static const bm_q_outlet_t *s_sort_base;

static int s_cmp_by_id(const void *a, const void *b)
{
    int x = s_sort_base[*(const int *)a].id, y = s_sort_base[*(const int *)b].id;
    return x < y ? -1 : x > y;
}

static int *s_id_order(const bm_q_outlet_t *o, int n)
{
    int *idx = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!idx)
        return NULL;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    s_sort_base = o;
    qsort(idx, (size_t)n, sizeof(int), s_cmp_by_id);
    return idx;
}

/* Index of the outlet with database id `id`, or -1. */
static int s_find_id(const bm_q_outlet_t *o, const int *order, int n, int id)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int v = o[order[mid]].id;
        if (v == id)
            return order[mid];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int s_region_index(const bm_q_ref_t *ref, int region_id)
{
    for (int i = 0; i < ref->nregions; i++)
        if (ref->regions[i].id == region_id)
            return i;
    return -1;
}

/* $1 = a region code, or NULL for every region. */
static int s_load_outlets(PGconn *conn, bm_q_ref_t *ref, const char *sql, const char *region,
                          int competitors, bm_err_t *err)
{
    const char *v[1] = {region};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, competitors ? "reading competitor outlets" : "reading branches",
                         err);
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    if (n > BM_Q_MAX_OUTLETS) {
        PQclear(res);
        return bm_err_set(err, "more than %d %s", BM_Q_MAX_OUTLETS,
                          competitors ? "competitor outlets" : "branches");
    }
    bm_q_outlet_t *o = calloc((size_t)(n ? n : 1), sizeof *o);
    if (!o) {
        PQclear(res);
        return bm_err_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        o[i].id = atoi(PQgetvalue(res, i, 0));
        s_copy(o[i].code, sizeof o[i].code, PQgetvalue(res, i, 1));
        s_copy(o[i].name, sizeof o[i].name, PQgetvalue(res, i, 2));
        s_copy(o[i].brand, sizeof o[i].brand, PQgetvalue(res, i, 3));
        o[i].region = s_region_index(ref, atoi(PQgetvalue(res, i, 4)));
        o[i].has_geo = !PQgetisnull(res, i, 5) && !PQgetisnull(res, i, 6);
        if (o[i].has_geo) {
            o[i].lat = strtod(PQgetvalue(res, i, 5), NULL);
            o[i].lon = strtod(PQgetvalue(res, i, 6), NULL);
        }
    }
    PQclear(res);
    if (competitors) {
        ref->competitors = o;
        ref->ncompetitors = n;
        ref->competitor_by_id = s_id_order(o, n);
        if (!ref->competitor_by_id)
            return bm_err_set(err, "out of memory");
    } else {
        ref->branches = o;
        ref->nbranches = n;
        ref->branch_by_id = s_id_order(o, n);
        if (!ref->branch_by_id)
            return bm_err_set(err, "out of memory");
    }
    return 0;
}

static bm_q_ref_t *s_ref_load(PGconn *conn, const char *region, bm_err_t *err)
{
    bm_q_ref_t *ref = calloc(1, sizeof *ref);
    if (!ref) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    PGresult *res = PQexec(conn, "SELECT code, timezone FROM chain WHERE id = 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading the chain", err);
        goto fail;
    }
    if (PQntuples(res) == 1) {
        s_copy(ref->chain_code, sizeof ref->chain_code, PQgetvalue(res, 0, 0));
        s_copy(ref->timezone, sizeof ref->timezone, PQgetvalue(res, 0, 1));
    } else {
        s_copy(ref->chain_code, sizeof ref->chain_code, "CHAIN");
        s_copy(ref->timezone, sizeof ref->timezone, "UTC");
    }
    PQclear(res);
    res = PQexec(conn, "SELECT id, code, name FROM regions ORDER BY code");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading regions", err);
        goto fail;
    }
    ref->nregions = PQntuples(res);
    if (ref->nregions > BM_Q_MAX_REGIONS) {
        bm_err_set(err, "more than %d regions", BM_Q_MAX_REGIONS);
        goto fail;
    }
    ref->regions = calloc((size_t)(ref->nregions ? ref->nregions : 1), sizeof *ref->regions);
    if (!ref->regions) {
        bm_err_set(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < ref->nregions; i++) {
        ref->regions[i].id = atoi(PQgetvalue(res, i, 0));
        s_copy(ref->regions[i].code, sizeof ref->regions[i].code, PQgetvalue(res, i, 1));
        s_copy(ref->regions[i].name, sizeof ref->regions[i].name, PQgetvalue(res, i, 2));
    }
    PQclear(res);
    res = NULL;
    if (s_load_outlets(conn, ref,
                       "SELECT id, code, name, '', region_id, latitude, longitude"
                       " FROM branches WHERE active AND ($1::text IS NULL OR region_id ="
                       " (SELECT id FROM regions WHERE code = $1)) ORDER BY code",
                       region, 0, err) < 0 ||
        s_load_outlets(conn, ref,
                       "SELECT id, code, name, brand, region_id, latitude, longitude"
                       " FROM competitor_outlets WHERE active AND ($1::text IS NULL OR"
                       " region_id = (SELECT id FROM regions WHERE code = $1)) ORDER BY code",
                       region, 1, err) < 0)
        goto fail;
    return ref;
fail:
    PQclear(res);
    bm_q_ref_destroy(&ref);
    return NULL;
}

bm_q_ref_t *bm_q_ref_load(PGconn *conn, bm_err_t *err)
{
    return s_ref_load(conn, NULL, err);
}

bm_q_ref_t *bm_q_ref_load_region(PGconn *conn, const char *region, bm_err_t *err)
{
    return s_ref_load(conn, region, err);
}

void bm_q_ref_destroy(bm_q_ref_t **ref_p)
{
    if (!ref_p || !*ref_p)
        return;
    bm_q_ref_t *r = *ref_p;
    free(r->regions);
    free(r->branches);
    free(r->competitors);
    free(r->branch_by_id);
    free(r->competitor_by_id);
    free(r);
    *ref_p = NULL;
}

static int s_find_code(const bm_q_outlet_t *o, int n, const char *code)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(o[i].code, code))
            return i;
    return -1;
}

int bm_q_ref_branch(const bm_q_ref_t *ref, const char *code)
{
    return s_find_code(ref->branches, ref->nbranches, code);
}

int bm_q_ref_competitor(const bm_q_ref_t *ref, const char *code)
{
    return s_find_code(ref->competitors, ref->ncompetitors, code);
}

int bm_q_ref_region(const bm_q_ref_t *ref, const char *code)
{
    for (int i = 0; i < ref->nregions; i++)
        if (!strcmp(ref->regions[i].code, code))
            return i;
    return -1;
}

/* ---- grids -------------------------------------------------------------- */

static size_t s_hist_need(const PGresult *res, int col, size_t nb);

#define S_MAX_GRID_BYTES (256u * 1024u * 1024u)

struct bm_q_grid {
    int nent, nper;
    size_t nb;                  /* histogram buckets per cell, 0 if none */
    bm_q_agg_t *cells;
    uint32_t *hist_pool;
    bm_q_agg_t *totals;         /* nper chain totals */
    uint32_t *totals_hist;
    bm_q_agg_t empty;
};

void bm_q_grid_destroy(bm_q_grid_t **grid_p)
{
    if (!grid_p || !*grid_p)
        return;
    free((*grid_p)->cells);
    free((*grid_p)->hist_pool);
    free((*grid_p)->totals);
    free((*grid_p)->totals_hist);
    free(*grid_p);
    *grid_p = NULL;
}

const bm_q_agg_t *bm_q_cell(const bm_q_grid_t *g, int e, int p)
{
    if (e < 0 || e >= g->nent || p < 0 || p >= g->nper)
        return &g->empty;
    return &g->cells[(size_t)e * (size_t)g->nper + (size_t)p];
}

const bm_q_agg_t *bm_q_total(const bm_q_grid_t *g, int p)
{
    if (p < 0 || p >= g->nper)
        return &g->empty;
    return &g->totals[p];
}

size_t bm_q_hist_buckets(const bm_q_grid_t *g)
{
    return g->nb;
}

void bm_q_agg_add(bm_q_agg_t *acc, const bm_q_agg_t *a, size_t nb)
{
    acc->n += a->n;
    acc->x += a->x;
    acc->y += a->y;
    acc->sum += a->sum;
    acc->sumsq += a->sumsq;
    /* Histogram cells filled by bm_q_fetch carry their count in n: an empty
     * one adds nothing (a chain of 10,000 branches x 721 buckets). */
    if (acc->hist && a->hist && a->n != 0)
        for (size_t i = 0; i < nb; i++)
            acc->hist[i] += a->hist[i];
    if (a->mixed_currency)
        acc->mixed_currency = 1;
    if (a->currency[0]) {
        if (!acc->currency[0])
            memcpy(acc->currency, a->currency, sizeof acc->currency);
        else if (strcmp(acc->currency, a->currency))
            acc->mixed_currency = 1;
    }
}

/* The 9 typed parameters of every rollup statement (see bm_metrics). */
#define S_NPARAMS 9
typedef struct {
    char kind[16], from[16], to[16], target[16];
    const char *values[S_NPARAMS];
} s_params_t;

/* text, date, date, text, text, text, int4, text, int4[] */
static const Oid s_param_types[S_NPARAMS] = {25, 1082, 1082, 25, 25, 25, 23, 25, 1007};

static void s_params_init(s_params_t *p, bm_period_kind_t kind, int64_t first, int64_t last,
                          const bm_q_filter_t *f)
{
    snprintf(p->kind, sizeof p->kind, "%s", bm_period_name(kind));
    bm_date_format(first, p->from, sizeof p->from);
    bm_date_format(last, p->to, sizeof p->to);
    snprintf(p->target, sizeof p->target, "%d", f ? f->answer_target_s : 20);
    p->values[0] = p->kind;
    p->values[1] = p->from;
    p->values[2] = p->to;
    p->values[3] = f && f->channel ? f->channel : "";
    p->values[4] = f && f->segment ? f->segment : "";
    p->values[5] = f && f->section ? f->section : "";
    p->values[6] = p->target;
    p->values[7] = f && f->competitors ? "competitor" : "branch";
    p->values[8] = NULL;
}

/* The period starts of a fetch as "YYYY-MM-DD": rows are matched by
 * comparing text, not by parsing 20,000 dates of a chain-wide read. */
typedef struct {
    int nper;
    char (*starts)[11];
} s_periods_t;

static int s_periods_init(s_periods_t *ps, bm_period_kind_t kind, int64_t first, int nper)
{
    ps->nper = nper;
    ps->starts = malloc((size_t)nper * sizeof *ps->starts);
    if (!ps->starts)
        return -1;
    for (int p = 0; p < nper; p++)
        bm_date_format(bm_period_add(kind, first, p), ps->starts[p], sizeof ps->starts[p]);
    return 0;
}

static int s_periods_find(const s_periods_t *ps, const char *date)
{
    for (int p = 0; p < ps->nper; p++)
        if (!strcmp(ps->starts[p], date))
            return p;
    return -1;
}

static int s_entity_index(const bm_q_ref_t *ref, int competitors, int id)
{
    return competitors ? s_find_id(ref->competitors, ref->competitor_by_id, ref->ncompetitors, id)
                       : s_find_id(ref->branches, ref->branch_by_id, ref->nbranches, id);
}

/* "{id,id,...}" of the active branches (or competitor outlets) of region r,
 * malloc'd; NULL when out of memory.  At most BM_Q_MAX_OUTLETS ids of at
 * most 11 characters each. */
static char *s_region_ids(const bm_q_ref_t *ref, int competitors, int r)
{
    const bm_q_outlet_t *o = competitors ? ref->competitors : ref->branches;
    int n = competitors ? ref->ncompetitors : ref->nbranches;
    size_t cap = (size_t)n * 12 + 3, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[len++] = '{';
    for (int i = 0; i < n; i++)
        if (o[i].region == r)
            len += (size_t)snprintf(buf + len, cap - len, "%s%d", len > 1 ? "," : "", o[i].id);
    buf[len++] = '}';
    buf[len] = '\0';
    return buf;
}

/* A result number: whole numbers (counts, sums of counts) without strtod. */
static double s_num(const char *s)
{
    const char *p = s + (*s == '-');
    uint64_t v = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9' && n < 18) {
        v = v * 10 + (uint64_t)(*p++ - '0');
        n++;
    }
    if (*p || n == 0)
        return strtod(s, NULL);
    return *s == '-' ? -(double)v : (double)v;
}

/* The number of elements of a counts array in text form, "{4,0,7}". */
static size_t s_hist_len(const char *s)
{
    if (s[0] != '{' || s[1] == '}' || !s[1])
        return 0;
    size_t n = 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

static void s_hist_bump(uint32_t *hist, size_t b, uint64_t v)
{
    uint64_t sum = (uint64_t)hist[b] + v;
    hist[b] = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

/* hist[0..nb-1] (and also[], unless NULL) += the counts array
 * "{c0,c1,...}" (counts past nb go into the last bucket; counts saturate at
 * UINT32_MAX).  Returns their sum.  Parsing stops at anything but digits
 * and commas: the server writes these arrays, never NULL elements. */
static double s_hist_add_text(uint32_t *hist, uint32_t *also, size_t nb, const char *s)
{
    double total = 0;
    size_t i = 0;
    if (*s++ != '{')
        return 0;
    while (*s >= '0' && *s <= '9') {
        uint64_t v = 0;
        while (*s >= '0' && *s <= '9' && v < UINT64_MAX / 10 - 9)
            v = v * 10 + (uint64_t)(*s++ - '0');
        s_hist_bump(hist, i < nb ? i : nb - 1, v);
        if (also)
            s_hist_bump(also, i < nb ? i : nb - 1, v);
        total += (double)v;
        i++;
        if (*s != ',')
            break;
        s++;
    }
    return total;
}

/* One result row of a metric statement (columns from `col`) into a and,
 * unless NULL, into also (a chain total): parsed once for both. */
static void s_add_row(bm_q_agg_t *a, bm_q_agg_t *also, PGresult *res, int r, int col, size_t nb)
{
    if (nb) {
        /* n carries the count: lets bm_q_agg_add skip empty histograms. */
        double n = s_hist_add_text(a->hist, also ? also->hist : NULL, nb, PQgetvalue(res, r, col));
        a->n += n;
        if (also)
            also->n += n;
        return;
    }
    bm_q_agg_t row;
    memset(&row, 0, sizeof row);
    row.n = s_num(PQgetvalue(res, r, col));
    row.x = s_num(PQgetvalue(res, r, col + 1));
    row.y = s_num(PQgetvalue(res, r, col + 2));
    row.sum = s_num(PQgetvalue(res, r, col + 3));
    row.sumsq = s_num(PQgetvalue(res, r, col + 4));
    s_copy(row.currency, sizeof row.currency, PQgetvalue(res, r, col + 5));
    bm_q_agg_add(a, &row, 0);
    if (also)
        bm_q_agg_add(also, &row, 0);
}

void bm_q_agg_parse(bm_q_agg_t *a, PGresult *res, int r, int col, size_t nb)
{
    s_add_row(a, NULL, res, r, col, nb);
}

size_t bm_q_hist_need(const PGresult *res, int col)
{
    return s_hist_need(res, col, 0);
}

/* The chain totals per period over every active outlet: what a region
 * query needs for its "chain" line without reading the other regions' rows.
 * Summed by the server, except histograms: one counts array per outlet and
 * period, summed by s_totals_add (adding arrays element-wise in SQL costs
 * more than shipping them).  Returns the result or NULL with err. */
static PGresult *s_totals_exec(PGconn *conn, const bm_metric_t *m, int competitors,
                               s_params_t *p, bm_err_t *err)
{
    /* One table, not a UNION ALL of both picked by $8: the planner cannot
     * size a union and probed the rollup's primary key 10,000 times (46 ms)
     * instead of one hash join (13 ms). */
    const char *outlets = competitors
                              ? " WHERE q.id IN (SELECT id FROM competitor_outlets WHERE active)"
                              : " WHERE q.id IN (SELECT id FROM branches WHERE active)";
    char sql[4096];
    int len = m->totals_sql && !competitors
                  ? snprintf(sql, sizeof sql, "%s", m->totals_sql)
              : m->family == BM_FAM_QUANTILE
                  ? snprintf(sql, sizeof sql, "SELECT q.ps, q.counts FROM (%s) q(id, ps, counts)%s",
                             m->sql, outlets)
                  : snprintf(sql, sizeof sql,
                             "SELECT q.ps, sum(q.n), sum(q.x), sum(q.y), sum(q.s), sum(q.ss),"
                             " q.cur FROM (%s) q(id, ps, n, x, y, s, ss, cur)%s"
                             " GROUP BY q.ps, q.cur", m->sql, outlets);
    if (len < 0 || (size_t)len >= sizeof sql) {
        bm_err_set(err, "%s: statement too long", m->name);
        return NULL;
    }
    p->values[8] = NULL;
    PGresult *res = PQexecParams(conn, sql, S_NPARAMS, s_param_types, p->values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char what[96];
        snprintf(what, sizeof what, "reading chain totals of %s", m->name);
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return NULL;
    }
    return res;
}

static void s_totals_add(bm_q_grid_t *g, PGresult *res, const s_periods_t *ps)
{
    for (int r = 0; r < PQntuples(res); r++) {
        int pi = s_periods_find(ps, PQgetvalue(res, r, 0));
        if (pi >= 0)
            s_add_row(&g->totals[pi], NULL, res, r, 1, g->nb);
    }
}

/* The grid for nent x nper cells with nb histogram buckets each, or NULL
 * (out of memory).  calloc'd, so a region's grid only touches the pages of
 * its outlets. */
static bm_q_grid_t *s_grid_new(int nent, int nper, size_t nb)
{
    size_t ncells = (size_t)(nent ? nent : 1) * (size_t)nper;
    bm_q_grid_t *g = calloc(1, sizeof *g);
    if (!g || !(g->cells = calloc(ncells, sizeof *g->cells)) ||
        !(g->totals = calloc((size_t)nper, sizeof *g->totals)) ||
        (nb && !(g->hist_pool = calloc(ncells * nb, sizeof(uint32_t)))) ||
        (nb && !(g->totals_hist = calloc((size_t)nper * nb, sizeof(uint32_t))))) {
        bm_q_grid_destroy(&g);
        return NULL;
    }
    g->nent = nent;
    g->nper = nper;
    g->nb = nb;
    for (size_t i = 0; nb && i < ncells; i++)
        g->cells[i].hist = g->hist_pool + i * nb;
    for (int i = 0; nb && i < nper; i++)
        g->totals[i].hist = g->totals_hist + (size_t)i * nb;
    return g;
}

/* Histogram buckets a grid needs for the counts arrays in column col of
 * res: the longest array (arrays stop at their highest non-empty bucket,
 * so a typical month needs 20-100 of the 721), at least 1. */
static size_t s_hist_need(const PGresult *res, int col, size_t nb)
{
    for (int r = 0; res && r < PQntuples(res); r++) {
        size_t len = s_hist_len(PQgetvalue(res, r, col));
        if (len > nb)
            nb = len;
    }
    return nb > BM_HIST_BUCKETS ? BM_HIST_BUCKETS : nb ? nb : 1;
}

bm_q_grid_t *bm_q_fetch(PGconn *conn, const bm_q_ref_t *ref, const bm_metric_t *m,
                        bm_period_kind_t kind, int64_t first, int nper,
                        const bm_q_filter_t *filter, bm_err_t *err)
{
    int competitors = filter && filter->competitors;
    int nent = competitors ? ref->ncompetitors : ref->nbranches;
    if (nper < 1 || nper > 120) {
        bm_err_set(err, "%d periods: out of range 1..120", nper);
        return NULL;
    }
    int region = -1;
    if (filter && filter->region && filter->region[0] &&
        (region = bm_q_ref_region(ref, filter->region)) < 0) {
        bm_err_set(err, "unknown region \"%s\"", filter->region);
        return NULL;
    }
    size_t ncells = (size_t)(nent ? nent : 1) * (size_t)nper;
    int quantile = m->family == BM_FAM_QUANTILE;
    if (ncells * (sizeof(bm_q_agg_t) + (quantile ? sizeof(uint32_t) : 0)) > S_MAX_GRID_BYTES) {
        bm_err_set(err, "%d outlets x %d periods is too large a query; ask for fewer periods",
                   nent, nper);
        return NULL;
    }

    s_params_t p;
    s_params_init(&p, kind, first, bm_period_add(kind, first, nper - 1), filter);
    s_periods_t ps;
    char *ids = NULL;
    if (s_periods_init(&ps, kind, first, nper) < 0) {
        bm_err_set(err, "out of memory");
        return NULL;
    }
    if (region >= 0 && !(ids = s_region_ids(ref, competitors, region))) {
        free(ps.starts);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    p.values[8] = ids;
    PGresult *res = PQexecParams(conn, m->sql, S_NPARAMS, s_param_types, p.values, NULL, NULL, 0);
    free(ids);
    PGresult *tot = NULL;
    bm_q_grid_t *g = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char what[96];
        snprintf(what, sizeof what, "reading rollups of %s", m->name);
        bm_db_result_err(res, conn, what, err);
        goto done;
    }
    if (region >= 0 && !(tot = s_totals_exec(conn, m, competitors, &p, err)))
        goto done;
    /* Histogram cells are sized by the data, hence allocated only now. */
    size_t nb = quantile ? s_hist_need(tot, 1, s_hist_need(res, 2, 0)) : 0;
    if (ncells * (sizeof(bm_q_agg_t) + nb * sizeof(uint32_t)) > S_MAX_GRID_BYTES) {
        bm_err_set(err, "%d outlets x %d periods x %zu histogram buckets is too large a query; "
                        "ask for fewer periods", nent, nper, nb);
        goto done;
    }
    if (!(g = s_grid_new(nent, nper, nb))) {
        bm_err_set(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int e = s_entity_index(ref, competitors, atoi(PQgetvalue(res, r, 0)));
        int pi = s_periods_find(&ps, PQgetvalue(res, r, 1));
        if (e < 0 || pi < 0)
            continue;       /* an inactive branch, or outside the range */
        s_add_row(&g->cells[(size_t)e * (size_t)nper + (size_t)pi],
                  region < 0 ? &g->totals[pi] : NULL, res, r, 2, nb);
    }
    if (tot)
        s_totals_add(g, tot, &ps);
done:
    PQclear(res);
    PQclear(tot);
    free(ps.starts);
    return g;
}

int bm_q_latest(PGconn *conn, const bm_metric_t *m, bm_period_kind_t kind, int64_t *start,
                bm_err_t *err)
{
    const char *v[1] = {bm_period_name(kind)};
    PGresult *res = PQexecParams(conn, m->latest_sql, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "finding the latest period", err);
        PQclear(res);
        return -1;
    }
    int found = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
                bm_date_parse(PQgetvalue(res, 0, 0), start, NULL) == 0;
    PQclear(res);
    return found;
}

/* ---- breakdowns --------------------------------------------------------- */

static const char *const s_bd_sql[] = {
    [BM_BD_SECTIONS] =
        "SELECT outlet_id, period_start::text, section, sum(n), 0, sum(score_sum), sum(score_sumsq)"
        " FROM rollup_scores WHERE outlet_kind = $8 AND " S_RANGE_OUTLET("")
        " AND section <> '' AND ($4 = '' OR channel = $4) AND ($5 = '' OR segment = $5)"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    [BM_BD_COMPLAINT_CATEGORY] =
        "SELECT branch_id, period_start::text, category, sum(complaints), sum(complaints), 0, 0"
        " FROM rollup_complaint_causes WHERE " S_RANGE("") " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    [BM_BD_CONTACT_POINT] =
        "SELECT branch_id, period_start::text, contact_point, sum(complaints), sum(complaints), 0, 0"
        " FROM rollup_complaint_causes WHERE " S_RANGE("") " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    [BM_BD_LOST_REASON] =
        "SELECT branch_id, period_start::text, reason, sum(lost), sum(lost), 0, 0"
        " FROM rollup_lost_reasons WHERE " S_RANGE("") " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    /* Section codes match [A-Za-z0-9_.-]{1,32} (001_core.sql), so '|'
     * cannot occur in one; channels are visit, call or online. */
    [BM_BD_CHANNEL_SECTIONS] =
        "SELECT outlet_id, period_start::text, channel || '|' || section, sum(n), 0,"
        " sum(score_sum), sum(score_sumsq)"
        " FROM rollup_scores WHERE outlet_kind = $8 AND " S_RANGE_OUTLET("")
        " AND ($4 = '' OR channel = $4) AND ($5 = '' OR segment = $5)"
        " GROUP BY outlet_id, period_start, channel, section ORDER BY 1, 2, 3",
};

int bm_q_breakdown(PGconn *conn, const bm_q_ref_t *ref, bm_breakdown_t what,
                   bm_period_kind_t kind, int64_t first, int nper,
                   const bm_q_filter_t *filter, bm_q_bd_row_t **rows, bm_err_t *err)
{
    *rows = NULL;
    int competitors = (what == BM_BD_SECTIONS || what == BM_BD_CHANNEL_SECTIONS) && filter &&
                      filter->competitors;
    s_params_t p;
    s_params_init(&p, kind, first, bm_period_add(kind, first, nper - 1), filter);
    PGresult *res = PQexecParams(conn, s_bd_sql[what], S_NPARAMS, s_param_types, p.values, NULL,
                                 NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading a breakdown", err);
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    if (n > BM_Q_MAX_BD_ROWS) {
        PQclear(res);
        return bm_err_set(err, "breakdown has more than %d rows; ask for fewer periods",
                          BM_Q_MAX_BD_ROWS);
    }
    bm_q_bd_row_t *out = calloc((size_t)(n ? n : 1), sizeof *out);
    if (!out) {
        PQclear(res);
        return bm_err_set(err, "out of memory");
    }
    int k = 0;
    for (int r = 0; r < n; r++) {
        int e = s_entity_index(ref, competitors, atoi(PQgetvalue(res, r, 0)));
        int pi = bm_period_index(kind, first, nper, PQgetvalue(res, r, 1));
        if (e < 0 || pi < 0)
            continue;
        out[k].entity = e;
        out[k].period = pi;
        s_copy(out[k].key, sizeof out[k].key, PQgetvalue(res, r, 2));
        out[k].n = strtod(PQgetvalue(res, r, 3), NULL);
        out[k].x = strtod(PQgetvalue(res, r, 4), NULL);
        out[k].sum = strtod(PQgetvalue(res, r, 5), NULL);
        out[k].sumsq = strtod(PQgetvalue(res, r, 6), NULL);
        k++;
    }
    PQclear(res);
    *rows = out;
    return k;
}

void bm_q_bd_sum(const bm_q_bd_row_t *rows, int nrows, const bm_q_ref_t *ref, int e, int r,
                 int competitors, int p, const char *key, bm_q_agg_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < nrows; i++) {
        const bm_q_bd_row_t *row = &rows[i];
        if (strcmp(row->key, key) || (p >= 0 && row->period != p))
            continue;
        if (e >= 0 && row->entity != e)
            continue;
        if (e < 0 && r >= 0) {
            int reg = competitors ? ref->competitors[row->entity].region
                                  : ref->branches[row->entity].region;
            if (reg != r)
                continue;
        }
        out->n += row->n;
        out->x += row->x;
        out->sum += row->sum;
        out->sumsq += row->sumsq;
    }
}

int bm_q_bd_keys(const bm_q_bd_row_t *rows, int nrows, const char **keys, int cap)
{
    int n = 0;
    for (int i = 0; i < nrows; i++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = !strcmp(keys[k], rows[i].key);
        if (!seen && n < cap)
            keys[n++] = rows[i].key;
    }
    return n;
}

static int s_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void bm_q_keys_sort(const char **keys, int n)
{
    qsort(keys, (size_t)n, sizeof *keys, s_key_cmp);
}
