/* plan: sizing and allocating mystery-shopping visits (plan.h).  Owns the
 * result it returns (reference data, rows, visits, shopper names). */
#include "plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "metric.h"
#include "stats.h"

/* ---- sizing ---------------------------------------------------------- */

static int s_needed(double sd, double t, const bm_plan_target_t *tg, int *capped)
{
    double n = ceil((t * sd / tg->half_width) * (t * sd / tg->half_width) - 1e-9);
    if (n < tg->min_n)
        n = tg->min_n;
    *capped = n > BM_PLAN_MAX_N;
    return *capped ? BM_PLAN_MAX_N : (int)n;
}

void bm_plan_size(bm_plan_branch_t *b, size_t n, const bm_plan_target_t *tg, double *pool_sd,
                  double *df_used)
{
    double ss = 0, df = 0;
    for (size_t i = 0; i < n; i++) {
        ss += b[i].ss;
        df += b[i].df;
    }
    double sp = df > 0 ? sqrt(ss / df) : 0;
    for (size_t i = 0; i < n; i++) {
        double own = b[i].df > 0 ? sqrt(b[i].ss / b[i].df) : 0;
        b[i].sd = df > 0 ? (own > sp ? own : sp) : tg->prior_sd;
    }
    /* The interval of the planned period has df = sum(n_i - 1) of that
     * period, not the basis's: iterate n -> df -> t -> n from the basis df
     * down until it holds (t only grows as df falls, so n only grows and
     * the loop ends; 50 rounds are far more than it takes). */
    double dfu = df;
    for (int round = 0; round < 50; round++) {
        double t = dfu > 0 ? bm_t95(dfu) : BM_Z95;
        double dft = 0;
        for (size_t i = 0; i < n; i++) {
            b[i].needed = s_needed(b[i].sd, t, tg, &b[i].capped);
            dft += b[i].needed - 1;
        }
        if (dfu <= 0 || dft >= dfu)
            break;
        dfu = dft;
    }
    for (size_t i = 0; i < n; i++) {
        double left = b[i].needed - b[i].done - b[i].planned;
        b[i].to_plan = left > 0 ? (int)ceil(left) : 0;
    }
    if (pool_sd)
        *pool_sd = df > 0 ? sp : tg->prior_sd;
    if (df_used)
        *df_used = dfu;
}

/* ---- allocation ------------------------------------------------------- */

const char *bm_band_name(bm_band_t band)
{
    static const char *const names[] = {"any", "morning", "midday", "evening"};
    return band >= BM_BAND_ANY && band <= BM_BAND_EVENING ? names[band] : "any";
}

/* ISO weekday of a day since 1970-01-01 (a Thursday): 1 Monday .. 7. */
static int s_isodow(int64_t day)
{
    int64_t w = (day + 3) % 7;
    return (int)(w < 0 ? w + 7 : w) + 1;
}

/* Whether shopper s may visit outlet (competitor, o) on [day, day + win]:
 * no other visit of s there whose days come within lockout of it. */
static int s_free(const bm_plan_visit_t *v, size_t nv, int competitor, int o, int s,
                  int64_t day, int win, int lockout)
{
    for (size_t i = 0; i < nv; i++) {
        if (v[i].shopper != s || v[i].outlet != o || v[i].competitor != competitor)
            continue;
        int64_t a0 = v[i].day, a1 = v[i].day + v[i].window;
        int64_t gap = a0 > day + win ? a0 - (day + win) : day > a1 ? day - a1 : 0;
        if (gap < lockout)
            return 0;
    }
    return 1;
}

typedef struct {
    int64_t *weekday, *weekend;
    int nweekday, nweekend;
    const bm_plan_rules_t *rules;
    int64_t last;                   /* last day of the period */
    bm_plan_visit_t *all;           /* seen + planned so far (lock-out) */
    size_t nall;
    int *load;                      /* visits per shopper in this plan */
} s_alloc_t;

/* The k visits of one outlet (serial: its place in the plan, for the
 * rotations), appended to a->all. */
static void s_outlet_visits(s_alloc_t *a, int competitor, int o, int k, int serial)
{
    const bm_plan_rules_t *r = a->rules;
    int kw = (int)lround(k * 2.0 / 7.0);
    if (k >= 3 && kw == 0)
        kw = 1;
    /* more visits than days: days repeat (another shopper, another band) */
    if (!a->nweekend)
        kw = 0;
    if (!a->nweekday)
        kw = k;
    /* The golden ratio spreads the outlets' offsets evenly (Weyl). */
    double off = fmod(serial * 0.6180339887498949, 1.0);
    for (int j = 0; j < k; j++) {
        int weekend = j < kw ? 1 : 0;
        int idx = weekend ? j : j - kw, cnt = weekend ? kw : k - kw;
        const int64_t *days = weekend ? a->weekend : a->weekday;
        int len = weekend ? a->nweekend : a->nweekday;
        if (!len) {
            days = weekend ? a->weekday : a->weekend;
            len = weekend ? a->nweekday : a->nweekend;
        }
        int64_t day = days[(int)((idx + off) * len / cnt) % len];
        bm_plan_visit_t *v = &a->all[a->nall];
        memset(v, 0, sizeof *v);
        v->competitor = competitor;
        v->outlet = o;
        v->day = day;
        v->band = (bm_band_t)(1 + (j + serial) % 3);
        /* every 1/share-th visit a surprise (deterministic, so the share
         * holds per outlet and not only on average) */
        v->surprise = floor((j + 1) * r->surprise_share) > floor(j * r->surprise_share);
        if (v->surprise) {
            int64_t w = r->surprise_window;
            v->window = (int)(day + w > a->last ? a->last - day : w);
        }
        v->shopper = -1;
        for (int t = 0; t < r->nshoppers; t++) {
            int s = (t + serial + j) % r->nshoppers;
            if ((v->shopper < 0 || a->load[s] < a->load[v->shopper]) &&
                s_free(a->all, a->nall, competitor, o, s, v->day, v->window, r->lockout_days))
                v->shopper = s;
        }
        if (v->shopper >= 0)
            a->load[v->shopper]++;
        a->nall++;
    }
}

/* The days of the period left to plan, weekdays and weekends apart. */
static int s_days(s_alloc_t *a, bm_err_t *err)
{
    const bm_plan_rules_t *r = a->rules;
    int64_t d0 = r->first_day > r->from_day ? r->first_day : r->from_day;
    a->last = r->first_day + r->days - 1;
    int n = d0 <= a->last ? (int)(a->last - d0 + 1) : 0;
    if (n == 0)
        return bm_err_set(err, "no day of the period is left to plan");
    a->weekday = calloc((size_t)n, sizeof *a->weekday);
    a->weekend = calloc((size_t)n, sizeof *a->weekend);
    if (!a->weekday || !a->weekend)
        return bm_err_set(err, "out of memory");
    for (int64_t d = d0; d <= a->last; d++) {
        if (s_isodow(d) >= 6)
            a->weekend[a->nweekend++] = d;
        else
            a->weekday[a->nweekday++] = d;
    }
    return 0;
}

int bm_plan_allocate(const int *to_plan, int nbranches, const bm_plan_rules_t *rules,
                     const bm_plan_visit_t *seen, size_t nseen, bm_plan_visit_t **out,
                     size_t *nout, bm_err_t *err)
{
    s_alloc_t a;
    memset(&a, 0, sizeof a);
    a.rules = rules;
    *out = NULL;
    *nout = 0;
    size_t total = 0;
    for (int b = 0; b < nbranches; b++)
        total += (size_t)to_plan[b];
    /* competitor visits: share c of all visits planned, c / (1 - c) of the
     * branches' ones, round-robin over the outlets */
    size_t ncomp = rules->ncompetitors > 0 && rules->competitor_share > 0
                       ? (size_t)lround((double)total * rules->competitor_share /
                                        (1.0 - rules->competitor_share))
                       : 0;
    int rc = s_days(&a, err);
    if (rc == 0) {
        a.all = calloc(nseen + total + ncomp + 1, sizeof *a.all);
        a.load = calloc((size_t)rules->nshoppers + 1, sizeof *a.load);
        if (!a.all || !a.load)
            rc = bm_err_set(err, "out of memory");
    }
    if (rc == 0) {
        if (nseen)
            memcpy(a.all, seen, nseen * sizeof *seen);
        a.nall = nseen;
        int serial = 0;
        for (int b = 0; b < nbranches; b++)
            if (to_plan[b] > 0)
                s_outlet_visits(&a, 0, b, to_plan[b], serial++);
        for (int c = 0; ncomp && c < rules->ncompetitors; c++) {
            int k = (int)(ncomp / (size_t)rules->ncompetitors) +
                    ((size_t)c < ncomp % (size_t)rules->ncompetitors);
            if (k > 0)
                s_outlet_visits(&a, 1, c, k, serial++);
        }
        *nout = a.nall - nseen;
        *out = malloc((*nout ? *nout : 1) * sizeof **out);
        if (!*out)
            rc = bm_err_set(err, "out of memory");
        else if (*nout)
            memcpy(*out, a.all + nseen, *nout * sizeof **out);
    }
    free(a.weekday);
    free(a.weekend);
    free(a.all);
    free(a.load);
    if (rc < 0)
        *nout = 0;
    return rc;
}

/* ---- the command: reading, sizing, allocating, writing ------------------ */

void bm_plan_request_init(bm_plan_request_t *rq)
{
    memset(rq, 0, sizeof *rq);
    rq->kind = BM_PERIOD_MONTH;
    rq->at = -1;
    rq->half_width = BM_PLAN_HALF_WIDTH;
    rq->basis_periods = 3;
    rq->competitor_share = 0.2;
    rq->surprise_share = 0.25;
    rq->surprise_window = 7;
}

void bm_plan_result_destroy(bm_plan_result_t **res_p)
{
    if (!res_p || !*res_p)
        return;
    bm_plan_result_t *r = *res_p;
    bm_q_ref_destroy(&r->ref);
    free(r->rows);
    free(r->visits);
    for (int i = 0; i < r->nshoppers; i++)
        free(r->shoppers[i]);
    free(r->shoppers);
    free(r);
    *res_p = NULL;
}

/* A parameterised query that must return rows; NULL with err. */
static PGresult *s_rows(PGconn *conn, const char *sql, int n, const char *const *v,
                        const char *what, bm_err_t *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Today in the chain's zone, and the lock-out of the defaults row. */
static int s_settings(PGconn *conn, bm_plan_result_t *r, int64_t *today, bm_err_t *err)
{
    const char *v[1] = {r->ref->timezone[0] ? r->ref->timezone : "UTC"};
    PGresult *res = s_rows(conn, "SELECT (now() AT TIME ZONE $1)::date::text,"
                                 " (SELECT lockout_days FROM programme_settings"
                                 "   WHERE questionnaire_code = '*')",
                           1, v, "reading today's date and the lock-out", err);
    if (!res)
        return -1;
    int ok = PQntuples(res) == 1 && bm_date_parse(PQgetvalue(res, 0, 0), today, err) == 0;
    r->lockout_days = ok && !PQgetisnull(res, 0, 1) ? atoi(PQgetvalue(res, 0, 1)) : 30;
    PQclear(res);
    return ok ? 0 : -1;
}

/* The basis (within-period squares per branch) and the target's approved
 * evaluations, from rollup_scores as the ranking reads them. */
static int s_basis(PGconn *conn, bm_plan_result_t *r, bm_err_t *err)
{
    const bm_metric_t *m = bm_metric_find("ms_score");
    bm_q_filter_t f;
    memset(&f, 0, sizeof f);
    f.channel = f.segment = f.section = "";
    f.answer_target_s = 20;
    int np = r->basis_periods + 1;
    bm_q_grid_t *g = bm_q_fetch(conn, r->ref, m, r->kind, r->basis_first, np, &f, err);
    if (!g)
        return -1;
    for (int b = 0; b < r->ref->nbranches; b++) {
        bm_plan_row_t *row = &r->rows[b];
        bm_pool_t pool = {0, 0};
        for (int p = 0; p < np - 1; p++) {
            const bm_q_agg_t *a = bm_q_cell(g, b, p);
            bm_pool_add(&pool, a->n, a->sum, a->sumsq);
            row->basis_n += a->n;
        }
        row->size.ss = pool.ss;
        row->size.df = pool.df;
        row->size.done = bm_q_cell(g, b, np - 1)->n;
    }
    bm_q_grid_destroy(&g);
    return 0;
}

/* The shoppers: the request's, or everyone with an evaluation in the last
 * 365 days (the programme's panel). */
static int s_shoppers(PGconn *conn, const bm_plan_request_t *rq, bm_plan_result_t *r,
                      bm_err_t *err)
{
    PGresult *res = NULL;
    int n = rq->nshoppers;
    if (!rq->shoppers) {
        res = s_rows(conn, "SELECT DISTINCT shopper_ref FROM evaluations WHERE shopper_ref <> ''"
                           " AND visited_at > now() - interval '365 days' ORDER BY 1 LIMIT 100000",
                     0, NULL, "reading the shoppers", err);
        if (!res)
            return -1;
        n = PQntuples(res);
    }
    r->shoppers = calloc((size_t)(n ? n : 1), sizeof *r->shoppers);
    int rc = r->shoppers ? 0 : bm_err_set(err, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        r->shoppers[i] = strdup(res ? PQgetvalue(res, i, 0) : rq->shoppers[i]);
        rc = r->shoppers[i] ? 0 : bm_err_set(err, "out of memory");
        r->nshoppers += rc == 0;
    }
    PQclear(res);
    if (rc == 0 && r->nshoppers == 0)
        rc = bm_err_set(err, "no shoppers: none has an evaluation in the last 365 days "
                             "(name them with --shoppers)");
    return rc;
}

static int s_shopper_index(const bm_plan_result_t *r, const char *name)
{
    for (int i = 0; i < r->nshoppers; i++)
        if (!strcmp(r->shoppers[i], name))
            return i;
    return -1;
}

/* Past evaluations and plans near the target period (for the lock-out),
 * and the plans still to come in it per branch (a planned day already
 * past is either done, and counted in `done`, or missed). */
static int s_seen(PGconn *conn, bm_plan_result_t *r, int64_t today, bm_plan_visit_t **seen,
                  size_t *nseen, bm_err_t *err)
{
    char d0[16], d1[16], lo[16], tz[72];
    bm_date_format(r->start, d0, sizeof d0);
    bm_date_format(bm_period_add(r->kind, r->start, 1) - 1, d1, sizeof d1);
    snprintf(lo, sizeof lo, "%d", r->lockout_days);
    snprintf(tz, sizeof tz, "%s", r->ref->timezone[0] ? r->ref->timezone : "UTC");
    const char *v[4] = {d0, d1, lo, tz};
    PGresult *res = s_rows(
        conn,
        "SELECT e.competitor_outlet_id IS NOT NULL, coalesce(b.code, c.code),"
        "       (e.visited_at AT TIME ZONE $4)::date - date '1970-01-01', 0, e.shopper_ref, 0"
        "  FROM evaluations e LEFT JOIN branches b ON b.id = e.outlet_branch_id"
        "  LEFT JOIN competitor_outlets c ON c.id = e.competitor_outlet_id"
        " WHERE e.shopper_ref <> '' AND e.review_status NOT IN ('rejected', 'voided')"
        "   AND (e.visited_at AT TIME ZONE $4)::date BETWEEN $1::date - $3::int AND $2::date + $3::int"
        " UNION ALL "
        "SELECT p.outlet_kind = 'competitor', coalesce(b.code, c.code),"
        "       p.planned_on - date '1970-01-01', p.window_days, p.shopper_ref, 1"
        "  FROM visit_plans p"
        "  LEFT JOIN branches b ON p.outlet_kind = 'branch' AND b.id = p.outlet_id"
        "  LEFT JOIN competitor_outlets c ON p.outlet_kind = 'competitor' AND c.id = p.outlet_id"
        " WHERE p.planned_on BETWEEN $1::date - $3::int - 31 AND $2::date + $3::int",
        4, v, "reading the visits and plans around the period", err);
    if (!res)
        return -1;
    int n = PQntuples(res);
    *seen = calloc((size_t)(n ? n : 1), sizeof **seen);
    if (!*seen) {
        PQclear(res);
        return bm_err_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int comp = PQgetvalue(res, i, 0)[0] == 't';
        const char *code = PQgetvalue(res, i, 1);
        int o = comp ? bm_q_ref_competitor(r->ref, code) : bm_q_ref_branch(r->ref, code);
        int64_t day = atoll(PQgetvalue(res, i, 2));
        int win = atoi(PQgetvalue(res, i, 3));
        if (o < 0)
            continue;       /* an inactive outlet */
        int64_t end = bm_period_add(r->kind, r->start, 1);
        if (!comp && PQgetvalue(res, i, 5)[0] == '1' && day >= r->start && day < end &&
            day + win >= today)
            r->rows[o].size.planned++;
        int s = s_shopper_index(r, PQgetvalue(res, i, 4));
        if (s < 0)
            continue;       /* not in the panel: cannot collide with it */
        (*seen)[(*nseen)++] = (bm_plan_visit_t){.competitor = comp, .outlet = o, .day = day,
                                                .window = win, .shopper = s};
    }
    PQclear(res);
    return 0;
}

/* Inserts the staffed visits in one transaction (all or nothing). */
static int s_write(PGconn *conn, bm_plan_result_t *r, bm_err_t *err)
{
    if (bm_db_exec(conn, "BEGIN", err) < 0)
        return -1;
    for (size_t i = 0; i < r->nvisits; i++) {
        const bm_plan_visit_t *x = &r->visits[i];
        if (x->shopper < 0)
            continue;
        char day[16], win[16];
        bm_date_format(x->day, day, sizeof day);
        snprintf(win, sizeof win, "%d", x->window);
        const char *v[8] = {x->competitor ? "competitor" : "branch",
                            x->competitor ? r->ref->competitors[x->outlet].code
                                          : r->ref->branches[x->outlet].code,
                            day, r->shoppers[x->shopper], bm_band_name(x->band),
                            x->surprise ? "surprise" : "scheduled", win, r->run_id};
        PGresult *res = PQexecParams(
            conn,
            "INSERT INTO visit_plans (outlet_kind, outlet_id, planned_on, channel, shopper_ref,"
            " time_band, visit_kind, window_days, plan_run)"
            " VALUES ($1, CASE WHEN $1 = 'branch' THEN (SELECT id FROM branches WHERE code = $2)"
            " ELSE (SELECT id FROM competitor_outlets WHERE code = $2) END,"
            " $3::date, 'visit', $4, $5, $6, $7::int, $8)",
            8, NULL, v, NULL, NULL, 0);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            bm_db_result_err(res, conn, "writing the visit plan", err);
        PQclear(res);
        if (!ok) {
            bm_err_t ignored;
            bm_db_exec(conn, "ROLLBACK", &ignored);
            return -1;
        }
    }
    if (bm_db_exec(conn, "COMMIT", err) < 0)
        return -1;
    r->written = 1;
    return 0;
}

/* Sizes the branches and allocates their visits. */
static int s_plan(const bm_plan_request_t *rq, bm_plan_result_t *r, int64_t today,
                  const bm_plan_visit_t *seen, size_t nseen, bm_err_t *err)
{
    int nb = r->ref->nbranches;
    bm_plan_branch_t *size = calloc((size_t)(nb ? nb : 1), sizeof *size);
    int *to_plan = calloc((size_t)(nb ? nb : 1), sizeof *to_plan);
    int rc = size && to_plan ? 0 : bm_err_set(err, "out of memory");
    if (rc == 0) {
        for (int b = 0; b < nb; b++)
            size[b] = r->rows[b].size;
        bm_plan_target_t tg = {rq->half_width, 3, 15.0};
        bm_plan_size(size, (size_t)nb, &tg, &r->pool_sd, &r->df);
        for (int b = 0; b < nb; b++) {
            r->rows[b].size = size[b];
            to_plan[b] = size[b].to_plan;
        }
        bm_plan_rules_t rules = {
            .first_day = r->start, .days = (int)(bm_period_add(r->kind, r->start, 1) - r->start),
            .from_day = today, .lockout_days = r->lockout_days,
            .surprise_share = rq->surprise_share, .surprise_window = rq->surprise_window,
            .competitor_share = rq->competitor_share, .ncompetitors = r->ref->ncompetitors,
            .nshoppers = r->nshoppers};
        rc = bm_plan_allocate(to_plan, nb, &rules, seen, nseen, &r->visits, &r->nvisits, err);
    }
    for (size_t i = 0; rc == 0 && i < r->nvisits; i++)
        if (!r->visits[i].competitor) {
            r->rows[r->visits[i].outlet].planned_now++;
            r->rows[r->visits[i].outlet].unstaffed += r->visits[i].shopper < 0;
        }
    free(size);
    free(to_plan);
    return rc;
}

int bm_plan_compute(PGconn *conn, const bm_plan_request_t *rq, bm_plan_result_t **out,
                    bm_err_t *err)
{
    *out = NULL;
    if (!(rq->half_width > 0) || rq->basis_periods < 1 || rq->basis_periods > 24 ||
        !(rq->competitor_share >= 0 && rq->competitor_share < 1) ||
        !(rq->surprise_share >= 0 && rq->surprise_share <= 1) || rq->surprise_window < 0 ||
        rq->surprise_window > 31)
        return bm_err_set(err, "invalid plan request");
    bm_plan_result_t *r = calloc(1, sizeof *r);
    if (!r)
        return bm_err_set(err, "out of memory");
    r->kind = rq->kind;
    r->half_width = rq->half_width;
    r->basis_periods = rq->basis_periods;
    snprintf(r->run_id, sizeof r->run_id, "plan-%lld", (long long)time(NULL));
    int64_t today = 0;
    bm_plan_visit_t *seen = NULL;
    size_t nseen = 0;
    int rc = (r->ref = bm_q_ref_load(conn, err)) ? 0 : -1;
    if (rc == 0 && !(r->rows = calloc((size_t)(r->ref->nbranches + 1), sizeof *r->rows)))
        rc = bm_err_set(err, "out of memory");
    if (rc == 0)
        rc = s_settings(conn, r, &today, err);
    if (rc == 0) {
        r->start = bm_period_start(r->kind, rq->at >= 0 ? rq->at : today);
        r->basis_first = bm_period_add(r->kind, r->start, -r->basis_periods);
        rc = s_basis(conn, r, err);
    }
    if (rc == 0)
        rc = s_shoppers(conn, rq, r, err);
    if (rc == 0)
        rc = s_seen(conn, r, today, &seen, &nseen, err);
    if (rc == 0)
        rc = s_plan(rq, r, today, seen, nseen, err);
    if (rc == 0 && rq->write)
        rc = s_write(conn, r, err);
    free(seen);
    if (rc < 0)
        bm_plan_result_destroy(&r);
    *out = r;
    return rc;
}
