/* report_ctx: the shared first steps of every report (report_ctx.h).  Owns
 * the reference data until a result takes it. */
#include "report_ctx.h"

#include <string.h>

#include "db.h"

/* Whether the caller's role sees only part of the chain (migration 007). */
static int s_read_scope(bm_report_ctx_t *ctx, bm_err_t *err)
{
    PGresult *res = PQexec(ctx->conn, "SELECT bm_scope_limited(current_user)");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        bm_db_result_err(res, ctx->conn, "reading the access scope", err);
        PQclear(res);
        return BM_REPORT_FAILED;
    }
    ctx->scope_limited = !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    return BM_REPORT_OK;
}

static int s_open(bm_report_ctx_t *ctx, bm_err_t *err)
{
    const bm_request_t *rq = ctx->rq;
    /* A region's rank needs only that region's branches (the chain line
     * comes from the server's totals, bm_q_total). */
    ctx->ref = rq->region && rq->kind == BM_REPORT_RANK
                   ? bm_q_ref_load_region(ctx->conn, rq->region, err)
                   : bm_q_ref_load(ctx->conn, err);
    if (!ctx->ref)
        return BM_REPORT_FAILED;
    if (rq->region && (ctx->region = bm_q_ref_region(ctx->ref, rq->region)) < 0) {
        bm_err_set(err, "unknown region \"%s\"", rq->region);
        return BM_REPORT_BAD_ARG;
    }
    if (rq->branch && (ctx->branch = bm_q_ref_branch(ctx->ref, rq->branch)) < 0) {
        bm_err_set(err, "unknown branch \"%s\"", rq->branch);
        return BM_REPORT_BAD_ARG;
    }
    return s_read_scope(ctx, err);
}

int bm_report_ctx_open(bm_report_ctx_t *ctx, PGconn *conn, const bm_request_t *rq,
                       bm_err_t *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->conn = conn;
    ctx->rq = rq;
    ctx->region = ctx->branch = -1;
    int rc = s_open(ctx, err);
    if (rc != BM_REPORT_OK)
        bm_report_ctx_close(ctx);
    return rc;
}

void bm_report_ctx_close(bm_report_ctx_t *ctx)
{
    bm_q_ref_destroy(&ctx->ref);
    ctx->conn = NULL;
}

bm_q_ref_t *bm_report_ctx_take_ref(bm_report_ctx_t *ctx)
{
    bm_q_ref_t *ref = ctx->ref;
    ctx->ref = NULL;
    return ref;
}

/* Today (days since 1970-01-01) in the chain's time zone, as the
 * database's clock has it. */
static int s_today(const bm_report_ctx_t *ctx, int64_t *today, bm_err_t *err)
{
    const char *v[1] = {ctx->ref && ctx->ref->timezone[0] ? ctx->ref->timezone : "UTC"};
    PGresult *res = PQexecParams(ctx->conn, "SELECT (now() AT TIME ZONE $1)::date::text", 1,
                                 NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        bm_db_result_err(res, ctx->conn, "reading today's date", err);
        PQclear(res);
        return -1;
    }
    int ok = bm_date_parse(PQgetvalue(res, 0, 0), today, err) == 0;
    PQclear(res);
    return ok ? 0 : -1;
}

static void s_status(bm_period_kind_t kind, int64_t cur, int64_t today, bm_period_status_t *st)
{
    st->days = (int)(bm_period_add(kind, cur, 1) - cur);
    st->partial = !bm_period_complete(cur, st->days, today, &st->covered);
}

int bm_report_ctx_period_st(const bm_report_ctx_t *ctx, const bm_metric_t *only, int64_t *cur,
                            bm_period_status_t *st, bm_err_t *err)
{
    bm_period_kind_t kind = ctx->rq->period;
    bm_period_status_t local;
    int64_t today;
    if (!st)
        st = &local;
    if (s_today(ctx, &today, err) < 0)
        return -1;
    if (ctx->rq->has_at) {
        *cur = bm_period_start(kind, ctx->rq->at);
        s_status(kind, *cur, today, st);
        return 0;
    }
    int found = 0;
    for (const bm_metric_t *m = only ? only : bm_metrics; m->name; m++) {
        int64_t s;
        int rc = bm_q_latest(ctx->conn, m, kind, &s, err);
        if (rc < 0)
            return -1;
        if (rc == 1 && (!found || s > *cur)) {
            *cur = s;
            found = 1;
        }
        if (only)
            break;
    }
    if (!found)
        *cur = bm_period_start(kind, today);
    s_status(kind, *cur, today, st);
    if (found && st->partial) {       /* the last complete one instead */
        *cur = bm_period_add(kind, *cur, -1);
        s_status(kind, *cur, today, st);
    }
    return 0;
}

int bm_report_ctx_period(const bm_report_ctx_t *ctx, const bm_metric_t *only, int64_t *cur,
                         bm_err_t *err)
{
    return bm_report_ctx_period_st(ctx, only, cur, NULL, err);
}

double bm_report_ctx_min_n(const bm_report_ctx_t *ctx, const bm_metric_t *m)
{
    return ctx->rq->min_n > 0 ? ctx->rq->min_n : m->default_min_n;
}

int bm_report_ctx_in_scope(const bm_report_ctx_t *ctx, int b)
{
    return ctx->region < 0 || ctx->ref->branches[b].region == ctx->region;
}

bm_q_filter_t bm_report_ctx_filter(const bm_report_ctx_t *ctx, int competitors)
{
    bm_q_filter_t f;
    memset(&f, 0, sizeof f);
    f.channel = ctx->rq->channel ? ctx->rq->channel : "";
    f.segment = ctx->rq->segment ? ctx->rq->segment : "";
    f.section = ctx->rq->section ? ctx->rq->section : "";
    f.answer_target_s = ctx->rq->target_s;
    f.competitors = competitors;
    return f;
}

const char *bm_report_region_code(const bm_q_ref_t *ref, int r)
{
    return r >= 0 ? ref->regions[r].code : "";
}
