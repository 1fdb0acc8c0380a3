/* reports: dispatch of a request to its report module (reports.h).  Owns
 * nothing beyond the result it returns. */
#include "reports.h"

#include <stdlib.h>

static int s_compute(bm_report_ctx_t *ctx, bm_result_t *res, bm_err_t *err)
{
    switch (res->kind) {
    case BM_REPORT_RANK:
        return bm_rank_compute(ctx, &res->u.rank, err);
    case BM_REPORT_SCORECARD:
        return bm_scorecard_compute(ctx, &res->u.scorecard, err);
    case BM_REPORT_COMPETITORS:
        return bm_competitors_compute(ctx, &res->u.competitors, err);
    case BM_REPORT_ALERTS:
        return bm_alerts_compute(ctx, &res->u.alerts, err);
    case BM_REPORT_SUMMARY:
        return bm_summary_compute(ctx, &res->u.summary, err);
    case BM_REPORT_ACTIONS:
        return bm_actions_compute(ctx, &res->u.actions, err);
    case BM_REPORT_FOLLOWUP:
        return bm_followup_compute(ctx, &res->u.followup, err);
    case BM_REPORT_METRICS:
    default:
        return BM_REPORT_OK;
    }
}

int bm_reports_run(PGconn *conn, const bm_request_t *rq, bm_result_t **out, bm_err_t *err)
{
    bm_result_t *res = calloc(1, sizeof *res);
    if (!res) {
        bm_err_set(err, "out of memory");
        return BM_REPORT_FAILED;
    }
    res->kind = rq->kind;
    if (rq->kind == BM_REPORT_METRICS) {
        *out = res;
        return BM_REPORT_OK;
    }
    bm_report_ctx_t ctx;
    int rc = bm_report_ctx_open(&ctx, conn, rq, err);
    if (rc == BM_REPORT_OK) {
        res->scope_limited = ctx.scope_limited;
        rc = s_compute(&ctx, res, err);
        /* Reports whose chain figures a scoped login gets from the
         * database's yardstick (rank says so itself). */
        if (rc == BM_REPORT_OK && ctx.scope_limited)
            res->chain_whole = res->kind == BM_REPORT_RANK || res->kind == BM_REPORT_SCORECARD ||
                               res->kind == BM_REPORT_COMPETITORS;
        bm_report_ctx_close(&ctx);
    }
    if (rc != BM_REPORT_OK) {
        bm_result_destroy(&res);
        return rc;
    }
    *out = res;
    return BM_REPORT_OK;
}

void bm_result_destroy(bm_result_t **res_p)
{
    bm_result_t *res = *res_p;
    if (!res)
        return;
    switch (res->kind) {
    case BM_REPORT_RANK:
        bm_rank_result_destroy(&res->u.rank);
        break;
    case BM_REPORT_SCORECARD:
        bm_scorecard_result_destroy(&res->u.scorecard);
        break;
    case BM_REPORT_COMPETITORS:
        bm_competitors_result_destroy(&res->u.competitors);
        break;
    case BM_REPORT_ALERTS:
        bm_alerts_result_destroy(&res->u.alerts);
        break;
    case BM_REPORT_SUMMARY:
        bm_summary_result_destroy(&res->u.summary);
        break;
    case BM_REPORT_ACTIONS:
        bm_actions_result_destroy(&res->u.actions);
        break;
    case BM_REPORT_FOLLOWUP:
        bm_followup_result_destroy(&res->u.followup);
        break;
    case BM_REPORT_METRICS:
    default:
        break;
    }
    free(res);
    *res_p = NULL;
}
