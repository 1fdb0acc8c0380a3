/* summary: the per-branch summary (summary.h).  Owns the result it
 * returns. */
#include "summary.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"

/* Quarter rows cover every record exactly once, and are the fewest. */
static const char s_summary_sql[] =
    "WITH q AS (SELECT 'quarter'::text AS k)"
    " SELECT b.id,"
    "  (SELECT coalesce(sum(intervals), 0) FROM rollup_traffic r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(receipts), 0) FROM rollup_sales r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(tickets), 0) FROM rollup_queue r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(calls), 0) FROM rollup_calls r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(complaints), 0) FROM rollup_complaints r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(responses), 0) FROM rollup_surveys r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  (SELECT coalesce(sum(gained + lost), 0) FROM rollup_customers r, q WHERE r.branch_id = b.id AND r.period_kind = q.k),"
    "  s.n, s.sum, s.sumsq, v.n, v.p, v.d"
    " FROM branches b"
    " LEFT JOIN (SELECT outlet_id, sum(n) AS n, sum(score_sum) AS sum, sum(score_sumsq) AS sumsq"
    "   FROM rollup_scores WHERE outlet_kind = 'branch' AND period_kind = 'quarter' AND section = ''"
    "   GROUP BY 1) s ON s.outlet_id = b.id"
    " LEFT JOIN (SELECT branch_id, sum(nps_n) AS n, sum(promoters) AS p, sum(detractors) AS d"
    "   FROM rollup_surveys WHERE period_kind = 'quarter' GROUP BY 1) v ON v.branch_id = b.id"
    " WHERE b.active ORDER BY b.code";

static void s_row(PGresult *res, int r, bm_summary_row_t *row)
{
    for (int k = 1; k <= BM_SUMMARY_KINDS; k++)
        row->records[k - 1] = atoll(PQgetvalue(res, r, k));
    double sn = strtod(PQgetvalue(res, r, 8), NULL);
    row->evaluations = sn;
    row->ms_score = bm_est_mean(sn, strtod(PQgetvalue(res, r, 9), NULL),
                                strtod(PQgetvalue(res, r, 10), NULL));
    row->ms_score_low_n = sn < 3;
    double vn = strtod(PQgetvalue(res, r, 11), NULL);
    row->nps = bm_est_nps(strtod(PQgetvalue(res, r, 12), NULL),
                          strtod(PQgetvalue(res, r, 13), NULL), vn);
    row->nps_n = vn;
    row->nps_low_n = vn < 30;
}

static int s_rows(bm_report_ctx_t *ctx, bm_summary_result_t *out, bm_err_t *err)
{
    PGresult *res = PQexec(ctx->conn, s_summary_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, ctx->conn, "reading the summary", err);
        PQclear(res);
        return -1;
    }
    out->rows = calloc((size_t)PQntuples(res) + 1, sizeof *out->rows);
    for (int r = 0; out->rows && r < PQntuples(res); r++) {
        int id = atoi(PQgetvalue(res, r, 0)), b = -1;
        for (int x = 0; x < ctx->ref->nbranches && b < 0; x++)
            if (ctx->ref->branches[x].id == id)
                b = x;
        if (b < 0 || !bm_report_ctx_in_scope(ctx, b))
            continue;
        bm_summary_row_t *row = &out->rows[out->nrows++];
        row->branch = b;
        s_row(res, r, row);
    }
    PQclear(res);
    return out->rows ? 0 : bm_err_set(err, "out of memory");
}

/* Shopper evaluations count only once approved (docs/workflow.md). */
static void s_pending(bm_report_ctx_t *ctx, bm_summary_result_t *out)
{
    PGresult *res = PQexec(ctx->conn, "SELECT count(*) FROM evaluations "
                                      "WHERE review_status IN ('received', 'on_hold')");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        out->has_pending = 1;
        out->pending = atoll(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
}

int bm_summary_compute(bm_report_ctx_t *ctx, bm_summary_result_t **out, bm_err_t *err)
{
    bm_summary_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    if (s_rows(ctx, res, err) < 0) {
        bm_summary_result_destroy(&res);
        return BM_REPORT_FAILED;
    }
    s_pending(ctx, res);
    res->ref = bm_report_ctx_take_ref(ctx);
    *out = res;
    return BM_REPORT_OK;
}

void bm_summary_result_destroy(bm_summary_result_t **res_p)
{
    bm_summary_result_t *res = *res_p;
    if (!res)
        return;
    bm_q_ref_destroy(&res->ref);
    free(res->rows);
    free(res);
    *res_p = NULL;
}
