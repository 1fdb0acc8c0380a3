/* yardstick: reading the chain's aggregates and the caller's stored rank
 * positions (yardstick.h).  Owns the structures it returns; every
 * statement is parameterised. */
#include "yardstick.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* Columns of bm_yardstick(): scope, code, period_start, branches, n, x, y,
 * sum, sumsq, currency, counts. */
#define S_COL_NUMS 4
#define S_COL_COUNTS 10

void bm_yard_destroy(bm_yard_t **yard_p)
{
    if (!yard_p || !*yard_p)
        return;
    bm_yard_t *y = *yard_p;
    free(y->region_suppressed);
    free(y->chain);
    free(y->regions);
    free(y->hist_pool);
    free(y);
    *yard_p = NULL;
}

static bm_yard_t *s_new(int nregions, int nper, size_t nb)
{
    size_t ncells = (size_t)(nregions + 1) * (size_t)nper;
    bm_yard_t *y = calloc(1, sizeof *y);
    if (!y || !(y->region_suppressed = calloc((size_t)nregions + 1, sizeof(int))) ||
        !(y->chain = calloc((size_t)nper, sizeof *y->chain)) ||
        !(y->regions = calloc((size_t)(nregions ? nregions : 1) * (size_t)nper,
                              sizeof *y->regions)) ||
        (nb && !(y->hist_pool = calloc(ncells * nb, sizeof(uint32_t))))) {
        bm_yard_destroy(&y);
        return NULL;
    }
    y->nper = nper;
    y->nregions = nregions;
    y->nb = nb;
    for (int p = 0; nb && p < nper; p++)
        y->chain[p].hist = y->hist_pool + (size_t)p * nb;
    for (size_t i = 0; nb && i < (size_t)nregions * (size_t)nper; i++)
        y->regions[i].hist = y->hist_pool + ((size_t)nper + i) * nb;
    return y;
}

const bm_q_agg_t *bm_yard_cell(const bm_yard_t *y, int r, int p)
{
    static const bm_q_agg_t empty;
    if (p < 0 || p >= y->nper || r >= y->nregions)
        return &empty;
    return r < 0 ? &y->chain[p] : &y->regions[(size_t)r * (size_t)y->nper + (size_t)p];
}

int bm_yard_suppressed(const bm_yard_t *y, int r)
{
    return r < 0 ? y->chain_suppressed : (r < y->nregions && y->region_suppressed[r]);
}

/* Which groups are suppressed for the caller (bm_yardstick_suppressed). */
static int s_read_suppressed(PGconn *conn, const bm_q_ref_t *ref, bm_yard_t *y, bm_err_t *err)
{
    PGresult *res = PQexec(conn, "SELECT scope, code FROM bm_yardstick_suppressed()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading the chain's suppressed figures", err);
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        if (!strcmp(PQgetvalue(res, i, 0), "chain")) {
            y->chain_suppressed = 1;
        } else {
            int r = bm_q_ref_region(ref, PQgetvalue(res, i, 1));
            if (r >= 0)
                y->region_suppressed[r] = 1;
        }
    }
    PQclear(res);
    return 0;
}

static void s_fill(bm_yard_t *y, const bm_q_ref_t *ref, PGresult *res, bm_period_kind_t kind,
                   int64_t first)
{
    for (int i = 0; i < PQntuples(res); i++) {
        int chain = !strcmp(PQgetvalue(res, i, 0), "chain");
        int r = chain ? -1 : bm_q_ref_region(ref, PQgetvalue(res, i, 1));
        int p = bm_period_index(kind, first, y->nper, PQgetvalue(res, i, 2));
        if ((!chain && r < 0) || p < 0)
            continue;
        bm_q_agg_t *a = (bm_q_agg_t *)bm_yard_cell(y, r, p);
        bm_q_agg_parse(a, res, i, y->nb ? S_COL_COUNTS : S_COL_NUMS, y->nb);
        /* The server says "*" for sums over more than one currency. */
        if (!strcmp(a->currency, "*"))
            a->mixed_currency = 1;
    }
}

bm_yard_t *bm_yard_fetch(PGconn *conn, const bm_q_ref_t *ref, const bm_metric_t *m,
                         bm_period_kind_t kind, int64_t first, int nper,
                         const bm_q_filter_t *f, bm_err_t *err)
{
    if (nper < 1 || nper > 120) {
        bm_err_set(err, "%d periods: out of range 1..120", nper);
        return NULL;
    }
    char from[16], to[16], target[16];
    bm_date_format(first, from, sizeof from);
    bm_date_format(bm_period_add(kind, first, nper - 1), to, sizeof to);
    snprintf(target, sizeof target, "%d", f ? f->answer_target_s : 20);
    const char *v[8] = {m->name, bm_period_name(kind), from, to,
                        f && f->channel ? f->channel : "", f && f->segment ? f->segment : "",
                        f && f->section ? f->section : "", target};
    PGresult *res = PQexecParams(conn,
                                 "SELECT scope, code, period_start::text, branches, n, x, y, sum,"
                                 " sumsq, currency, counts FROM bm_yardstick($1, $2, $3::date,"
                                 " $4::date, $5, $6, $7, $8::int)",
                                 8, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char what[96];
        snprintf(what, sizeof what, "reading the chain's figures of %s", m->name);
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return NULL;
    }
    size_t nb = m->family == BM_FAM_QUANTILE ? bm_q_hist_need(res, S_COL_COUNTS) : 0;
    bm_yard_t *y = s_new(ref->nregions, nper, nb);
    if (!y) {
        bm_err_set(err, "out of memory");
    } else {
        s_fill(y, ref, res, kind, first);
        if (s_read_suppressed(conn, ref, y, err) < 0)
            bm_yard_destroy(&y);
    }
    PQclear(res);
    return y;
}

void bm_yard_positions_free(bm_yard_positions_t *p)
{
    free(p->rows);
    memset(p, 0, sizeof *p);
}

int bm_yard_positions(PGconn *conn, const bm_q_ref_t *ref, const bm_metric_t *m,
                      bm_period_kind_t kind, int64_t start, bm_yard_positions_t *out,
                      bm_err_t *err)
{
    memset(out, 0, sizeof *out);
    char day[16];
    bm_date_format(start, day, sizeof day);
    const char *v[3] = {m->name, bm_period_name(kind), day};
    PGresult *res = PQexecParams(
        conn,
        "SELECT branch, rank_lo, rank_hi, ranked, min_n, chain_n,"
        " to_char(computed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"')"
        " FROM bm_yardstick_positions($1, $2, $3::date)",
        3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading the chain-wide positions", err);
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    if (n > 0 && !(out->rows = calloc((size_t)n, sizeof *out->rows))) {
        PQclear(res);
        return bm_err_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        bm_yard_pos_t *row = &out->rows[out->nrows++];
        row->branch = bm_q_ref_branch(ref, PQgetvalue(res, i, 0));
        row->ranked = !PQgetisnull(res, i, 1);
        if (row->ranked) {
            row->rank_lo = atoi(PQgetvalue(res, i, 1));
            row->rank_hi = atoi(PQgetvalue(res, i, 2));
        }
        if (i == 0) {
            out->found = 1;
            out->ranked = atoi(PQgetvalue(res, i, 3));
            out->min_n = strtod(PQgetvalue(res, i, 4), NULL);
            out->chain_n = strtod(PQgetvalue(res, i, 5), NULL);
            snprintf(out->computed_at, sizeof out->computed_at, "%s", PQgetvalue(res, i, 6));
        }
    }
    PQclear(res);
    return 0;
}
